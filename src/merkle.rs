//! The Merkle tree of a transparency log (RFC 6962 §2.1; proofs as RFC 9162 §2.1.3–2.1.4
//! verify them): leaf hash `SHA-256(0x00 ‖ leaf)`, node hash `SHA-256(0x01 ‖ left ‖ right)`,
//! a tree of n leaves split at the largest power of two below n. Pure functions over the
//! leaf hashes in log order; anyone holding a leaf, a proof and a published root can check
//! them with these (or any other RFC 6962 implementation) without the registry.
//!
//! The free functions compute roots and proofs from the leaf hashes by recursion (depth
//! log₂ n, work O(n)): a few seconds at tens of millions of leaves. A [`Tree`] keeps the roots of
//! its aligned subtrees of a block of leaves or more, for a server that proves inclusion for every
//! request, in memory a hundredth of the leaf hashes'.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ leaf)` (RFC 6962 §2.1).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)` (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let k = n.next_power_of_two() / 2;
    if k == n { n / 2 } else { k }
}

/// The Merkle tree hash MTH of the leaves with these hashes; the empty tree's is
/// `SHA-256("")`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest(b"").into(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1 PATH), `None` when
/// the index is outside the tree.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    prove_inclusion(&Slice(leaves), leaves.len(), index)
}

/// The consistency proof between the first `old_size` leaves and all of `leaves` (RFC 6962
/// §2.1.2 PROOF); empty when the sizes are equal or the old tree is empty, `None` when
/// `old_size` exceeds the tree.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    prove_consistency(&Slice(leaves), leaves.len(), old_size)
}

/// The roots of a tree's subtrees `[start, start + len)`, as proofs need them.
trait Subtrees {
    fn subtree_root(&self, start: usize, len: usize) -> Hash;
}

/// Subtree roots computed from the leaf hashes each time (linear in the subtree's size).
struct Slice<'a>(&'a [Hash]);

impl Subtrees for Slice<'_> {
    fn subtree_root(&self, start: usize, len: usize) -> Hash {
        root(&self.0[start..start + len])
    }
}

fn prove_inclusion(tree: &impl Subtrees, size: usize, index: usize) -> Option<Vec<Hash>> {
    if index >= size {
        return None;
    }
    let mut proof = Vec::new();
    path(tree, index, 0, size, &mut proof);
    Some(proof)
}

fn path(tree: &impl Subtrees, m: usize, start: usize, n: usize, out: &mut Vec<Hash>) {
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(tree, m, start, k, out);
        out.push(tree.subtree_root(start + k, n - k));
    } else {
        path(tree, m - k, start + k, n - k, out);
        out.push(tree.subtree_root(start, k));
    }
}

fn prove_consistency(tree: &impl Subtrees, size: usize, old_size: usize) -> Option<Vec<Hash>> {
    if old_size > size {
        return None;
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < size {
        subproof(tree, old_size, (0, size), true, &mut proof);
    }
    Some(proof)
}

fn subproof(
    tree: &impl Subtrees,
    m: usize,
    (start, n): (usize, usize),
    whole: bool,
    out: &mut Vec<Hash>,
) {
    if m == n {
        if !whole {
            out.push(tree.subtree_root(start, n));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(tree, m, (start, k), whole, out);
        out.push(tree.subtree_root(start + k, n - k));
    } else {
        subproof(tree, m - k, (start + k, n - k), false, out);
        out.push(tree.subtree_root(start, k));
    }
}

/// Leaves per block of a [`Tree`]: it keeps no hash below a block's root (but the last, partial
/// block's leaves).
pub const BLOCK_LEAVES: usize = 256;

/// A tree kept as the roots of its complete aligned subtrees of a block ([`BLOCK_LEAVES`]) or
/// more (level `i` holds the roots of the subtrees of `block · 2^i` leaves starting at
/// multiples of that) and the leaves of its last, partial block: about n/128 hashes (2.5 MB at
/// ten million leaves, where the leaf hashes alone are 320 MB), built from the leaf hashes
/// streamed once ([`TreeBuilder`]). Its root takes O(log n) hashes; a proof also needs the
/// leaves of the one or two complete blocks the RFC 6962 splits cut into (the proved leaf's
/// own block; for consistency, the old tree's last block), which it reads back through the
/// caller's `read` (a range query). Every range a proof names starts at a multiple of a power
/// of two at least its length, so a range shorter than a block lies inside one block.
#[derive(Debug, Clone)]
pub struct Tree {
    size: usize,
    block: usize,
    levels: Vec<Vec<Hash>>,
    /// The leaves after the last complete block.
    tail: Vec<Hash>,
}

/// Builds a [`Tree`] from its leaf hashes in log order.
#[derive(Debug, Clone)]
pub struct TreeBuilder {
    tree: Tree,
}

impl Default for TreeBuilder {
    fn default() -> TreeBuilder {
        TreeBuilder::with_block(BLOCK_LEAVES)
    }
}

impl TreeBuilder {
    /// A builder of trees with blocks of `block` leaves (a power of two; others are rounded up).
    pub fn with_block(block: usize) -> TreeBuilder {
        let block = block.max(1).next_power_of_two();
        TreeBuilder { tree: Tree { size: 0, block, levels: Vec::new(), tail: Vec::new() } }
    }

    /// Appends the next leaf's hash.
    pub fn push(&mut self, leaf: Hash) {
        let tree = &mut self.tree;
        tree.size += 1;
        tree.tail.push(leaf);
        if tree.tail.len() < tree.block {
            return;
        }
        let mut hash = root(&tree.tail);
        tree.tail.clear();
        // Each level's new root pairs with the one before it when it is a right child.
        for level in 0.. {
            if tree.levels.len() <= level {
                tree.levels.push(Vec::new());
            }
            let Some(kept) = tree.levels.get_mut(level) else { break };
            kept.push(hash);
            if kept.len() % 2 == 1 {
                break;
            }
            let (left, right) = (kept[kept.len() - 2], kept[kept.len() - 1]);
            hash = node_hash(&left, &right);
        }
    }

    /// The tree of the leaves pushed.
    pub fn finish(self) -> Tree {
        self.tree
    }
}

impl Tree {
    /// Number of leaves.
    pub fn size(&self) -> usize {
        self.size
    }

    /// MTH of the whole tree, as [`root`] computes it.
    pub fn root(&self) -> Hash {
        let kept = Blocks { tree: self, read: BTreeMap::new(), missing: RefCell::default() };
        match self.size {
            0 => Sha256::digest(b"").into(),
            n => kept.subtree_root(0, n),
        }
    }

    /// As [`inclusion_proof`] over the tree's leaves; `read(start, end)` returns the leaf
    /// hashes of `start..end` (one block) when the proof needs them.
    pub fn inclusion_proof<E>(
        &self,
        index: usize,
        read: impl FnMut(usize, usize) -> Result<Vec<Hash>, E>,
    ) -> Result<Option<Vec<Hash>>, E> {
        self.prove(read, |blocks| prove_inclusion(blocks, self.size, index))
    }

    /// As [`consistency_proof`] over the tree's leaves; `read` as for
    /// [`Tree::inclusion_proof`].
    pub fn consistency_proof<E>(
        &self,
        old_size: usize,
        read: impl FnMut(usize, usize) -> Result<Vec<Hash>, E>,
    ) -> Result<Option<Vec<Hash>>, E> {
        self.prove(read, |blocks| prove_consistency(blocks, self.size, old_size))
    }

    /// Runs `proof` once to learn which blocks' leaves it needs (the shape of a proof depends
    /// on sizes and indices only), reads them, and runs it again with them.
    fn prove<T, E>(
        &self,
        mut read: impl FnMut(usize, usize) -> Result<Vec<Hash>, E>,
        proof: impl Fn(&Blocks<'_>) -> T,
    ) -> Result<T, E> {
        let probe = Blocks { tree: self, read: BTreeMap::new(), missing: RefCell::default() };
        let first = proof(&probe);
        let missing = probe.missing.into_inner();
        if missing.is_empty() {
            return Ok(first);
        }
        let mut blocks = BTreeMap::new();
        for b in missing {
            let start = b * self.block;
            blocks.insert(b, read(start, (start + self.block).min(self.size))?);
        }
        Ok(proof(&Blocks { tree: self, read: blocks, missing: RefCell::default() }))
    }
}

/// A [`Tree`] with the leaves of some complete blocks read back; records the blocks it was
/// asked for and did not have.
struct Blocks<'a> {
    tree: &'a Tree,
    read: BTreeMap<usize, Vec<Hash>>,
    missing: RefCell<BTreeSet<usize>>,
}

impl Subtrees for Blocks<'_> {
    fn subtree_root(&self, start: usize, len: usize) -> Hash {
        let tree = self.tree;
        let block = tree.block;
        if len >= block && len.is_power_of_two() && start.is_multiple_of(len) {
            let level = (len / block).trailing_zeros() as usize;
            if let Some(kept) = tree.levels.get(level).and_then(|l| l.get(start / len)) {
                return *kept;
            }
        }
        let (first, last) = (start / block, (start + len - 1) / block);
        if first == last {
            let tail_start = tree.size - tree.tail.len();
            let (leaves, offset) = if start >= tail_start {
                (Some(&tree.tail), start - tail_start)
            } else {
                (self.read.get(&first), start - first * block)
            };
            let Some(leaves) = leaves else {
                self.missing.borrow_mut().insert(first);
                return [0; 32];
            };
            // A block read short (a damaged log) gives a root no proof verifies against.
            return leaves.get(offset..offset + len).map_or([0; 32], root);
        }
        let k = split(len);
        node_hash(&self.subtree_root(start, k), &self.subtree_root(start + k, len - k))
    }
}

/// The root of a log fed its leaf hashes one at a time, in log order, holding only the roots
/// of its perfect subtrees (one per set bit of the size: memory O(log n)). The leaves of
/// n = 2^a + 2^b + … (a > b > …) form the perfect subtrees P_a, P_b, … left to right, and
/// MTH = node(P_a, node(P_b, …)), since each split point is the largest power of two below
/// what is left.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first.
    subtrees: Vec<Hash>,
}

impl RootBuilder {
    /// Appends the next leaf's hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each low set bit is a perfect subtree of the new one's size: merge, as in a carry.
        while size & 1 == 1 {
            let Some(left) = self.subtrees.pop() else { break };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.subtrees.push(hash);
        self.size += 1;
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of the leaves pushed so far, as [`root`] computes it.
    pub fn root(&self) -> Hash {
        match self.subtrees.split_last() {
            None => Sha256::digest(b"").into(),
            Some((last, rest)) => {
                rest.iter().rev().fold(*last, |right, left| node_hash(left, &right))
            }
        }
    }
}

/// Checks an audit path (RFC 9162 §2.1.3.2): leaf `leaf` is at `index` in the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 test leaves (certificate-transparency / transparency-dev `merkle` test data).
    fn leaves() -> Vec<Hash> {
        let raw: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        raw.iter().map(|l| leaf_hash(l)).collect()
    }

    #[test]
    fn roots_match_the_rfc_6962_test_vectors() {
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = leaves();
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(hex::encode(root(&leaves[..=n])), *want, "size {}", n + 1);
        }
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let five: Vec<Hash> = (0u8..5).map(|b| leaf_hash(&[b])).collect();
        assert_eq!(
            hex::encode(root(&five)),
            "b855b42d6c30f5b087e05266783fbd6e394f7b926013ccaa67700a8b0c5a596f"
        );
    }

    /// The streaming root equals the recursive one at every size, through several carries.
    #[test]
    fn the_root_builder_agrees_with_the_recursive_root() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut builder = RootBuilder::default();
        assert_eq!(builder.root(), root(&[]));
        for n in 1..=leaves.len() {
            builder.push(leaves[n - 1]);
            assert_eq!(builder.size(), n as u64);
            assert_eq!(builder.root(), root(&leaves[..n]), "size {n}");
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_a_changed_one_does_not() {
        let leaves = leaves();
        for n in 1..=leaves.len() {
            let tree = &leaves[..n];
            let r = root(tree);
            for (i, leaf) in tree.iter().enumerate() {
                let proof = inclusion_proof(tree, i).unwrap_or_default();
                assert!(verify_inclusion(leaf, i as u64, n as u64, &proof, &r), "{i} in {n}");
                if let Some((first, _)) = proof.split_first() {
                    let mut bad = proof.clone();
                    bad[0] = leaf_hash(first);
                    assert!(!verify_inclusion(leaf, i as u64, n as u64, &bad, &r));
                }
                let other = leaf_hash(b"not in the log");
                assert!(!verify_inclusion(&other, i as u64, n as u64, &proof, &r));
            }
            for m in 0..=n {
                let proof = consistency_proof(tree, m).unwrap_or_default();
                let old = root(&tree[..m]);
                assert!(verify_consistency(m as u64, n as u64, &old, &r, &proof), "{m}→{n}");
                if m > 0 && m < n {
                    let edited = leaf_hash(b"edited");
                    let mut history = tree[..m].to_vec();
                    history[m - 1] = edited;
                    assert!(!verify_consistency(m as u64, n as u64, &root(&history), &r, &proof));
                }
            }
        }
        assert_eq!(inclusion_proof(&leaves, 8), None);
        assert_eq!(consistency_proof(&leaves, 9), None);
    }

    #[test]
    fn proofs_have_the_rfc_6962_shape() {
        // RFC 6962 §2.1.3's example tree of 7 leaves: the path of leaf 3 (d) is [c, g, l]
        // (c = leaf 2, g = hash(a, b), l = hash(i, j) over leaves 4..7).
        let leaves = leaves();
        let tree = &leaves[..7];
        let proof = inclusion_proof(tree, 3).unwrap_or_default();
        assert_eq!(proof, vec![tree[2], root(&tree[..2]), root(&tree[4..])]);
        // Consistency 3 → 7: [c, d, g, l].
        let proof = consistency_proof(tree, 3).unwrap_or_default();
        assert_eq!(proof, vec![tree[2], tree[3], root(&tree[..2]), root(&tree[4..])]);
    }

    /// A tree fed `leaves` in blocks of `block`, with `read` answering from the same leaves.
    fn kept(leaves: &[Hash], block: usize) -> Tree {
        let mut builder = TreeBuilder::with_block(block);
        for leaf in leaves {
            builder.push(*leaf);
        }
        builder.finish()
    }

    proptest::proptest! {
        /// A kept tree gives the same roots and proofs as the leaf hashes do, for every size,
        /// leaf, old size and block size (sizes around powers of two included), reading back
        /// only whole blocks before its tail.
        #[test]
        fn a_kept_tree_proves_as_the_leaves_do(
            size in 0usize..300,
            pick in 0usize..1000,
            block_bits in 0u32..6,
        ) {
            let block = 1usize << block_bits;
            let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect();
            let tree = kept(&leaves, block);
            let mut reads = Vec::new();
            let mut read = |start: usize, end: usize| -> Result<Vec<Hash>, ()> {
                reads.push((start, end));
                Ok(leaves[start..end].to_vec())
            };
            proptest::prop_assert_eq!(tree.size(), size);
            proptest::prop_assert_eq!(tree.root(), root(&leaves));
            let index = pick % (size + 1);
            proptest::prop_assert_eq!(
                tree.inclusion_proof(index, &mut read),
                Ok(inclusion_proof(&leaves, index))
            );
            proptest::prop_assert_eq!(
                tree.consistency_proof(index, &mut read),
                Ok(consistency_proof(&leaves, index))
            );
            proptest::prop_assert!(reads.len() <= 2, "{:?}", reads);
            for (start, end) in reads {
                proptest::prop_assert!(start % block == 0 && end - start == block);
            }
        }
    }

    /// A tree of a million leaves keeps 2 · 10⁶ / 256 hashes, and a proof reads one block.
    #[test]
    fn a_large_tree_keeps_a_hundredth_and_reads_one_block() {
        let leaves: Vec<Hash> = (0u32..1_000_003).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let tree = kept(&leaves, BLOCK_LEAVES);
        let kept_hashes: usize = tree.levels.iter().map(Vec::len).sum::<usize>() + tree.tail.len();
        assert!(kept_hashes < 2 * leaves.len() / BLOCK_LEAVES + 64, "{kept_hashes}");
        let mut reads = 0;
        let index = 777_777;
        let proof = tree
            .inclusion_proof(index, |start, end| -> Result<_, ()> {
                reads += 1;
                Ok(leaves[start..end].to_vec())
            })
            .ok()
            .flatten()
            .unwrap_or_default();
        assert_eq!(reads, 1);
        assert!(verify_inclusion(
            &leaves[index],
            index as u64,
            leaves.len() as u64,
            &proof,
            &tree.root()
        ));
    }
}
