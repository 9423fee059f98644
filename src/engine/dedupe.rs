//! Duplicate rows within a run's input: the engine sees every valid row in input order and asks
//! [`Dedupe`] whether an equal row (same content key after normalisation) came before.
//!
//! Memory: one 16-byte slot per distinct row and the table's slack: 96 bits of the row's
//! content key and a 32-bit position. Slots live in 64 open-addressing shards (linear
//! probing, at most 4/5 full) that grow one at a time by half, so growing never holds two
//! copies of the whole table. Sized from the expected row count ([`Dedupe::reserve`]), 10
//! million distinct rows take about 200 MB; the same rows in a `HashMap<u128, u64>` took 400.
//!
//! Exactness: the content key is 128 bits of a SHA-256 over the row's normalised fields; the
//! table compares 96 of them. Two distinct rows are taken for duplicates only if their keys
//! agree on those 96 bits: for n distinct rows the chance that any pair does is below
//! n² / 2⁹⁷, i.e. 6 × 10⁻¹⁶ at 10 million rows and 10⁻¹⁰ at the 4 billion rows the positions
//! can name. That is far below the rate of undetected memory errors on the machine running
//! it, so a hit is not confirmed by re-reading the first row.

use std::collections::HashMap;
use std::sync::Arc;

use crate::record::SourcePos;

/// Shards of the table; a power of two, picked by key bits the slot index does not use.
const SHARDS: usize = 64;
/// A shard grows when more than `LOAD_NUM / LOAD_DEN` of its slots are taken. Linear probing
/// at 4/5 looks at about 13 slots (3–4 cache lines) for a new key: a few percent of a
/// validate run's CPU, for 200 MB instead of 215 at 10 million rows.
const LOAD_NUM: usize = 4;
const LOAD_DEN: usize = 5;
/// Slots of an empty shard's first allocation.
const MIN_SLOTS: usize = 64;

/// Finds rows equal to an earlier row after normalisation. Holds 96 bits of each distinct row's
/// content key and its position (a 32-bit number that [`Positions`] maps back to file, sheet
/// and row), never the rows themselves.
#[derive(Debug)]
pub struct Dedupe {
    shards: Vec<Shard>,
    /// Rows whose position number does not fit 32 bits (after 4 billion lines of input).
    wide: HashMap<[u8; 12], SourcePos>,
    positions: Positions,
    len: usize,
}

impl Default for Dedupe {
    fn default() -> Self {
        Dedupe {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            wide: HashMap::new(),
            positions: Positions::default(),
            len: 0,
        }
    }
}

impl Dedupe {
    /// `None` for a first occurrence; the first row's position for a duplicate.
    pub fn check(&mut self, key: [u8; 16], pos: &SourcePos) -> Option<SourcePos> {
        let mut short = [0u8; 12];
        short.copy_from_slice(key.get(..12).unwrap_or(&[0; 12]));
        let key = u128::from_le_bytes(key) & ((1u128 << 96) - 1);
        let shard = self.shards.get_mut(shard_of(key))?;
        if let Some(value) = shard.get(key) {
            return Some(self.positions.unpack(value));
        }
        if !self.wide.is_empty()
            && let Some(first) = self.wide.get(&short)
        {
            return Some(first.clone());
        }
        match self.positions.pack(pos) {
            Some(value) => shard.insert(key, value),
            None => {
                self.wide.insert(short, pos.clone());
            }
        }
        self.len += 1;
        None
    }

    /// Distinct rows seen.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for about `more` further distinct rows at once, so that the shards do not
    /// grow step by step (each step rehashes a shard; sized once, the table is at its final
    /// size from the start and about 4/5 full at the end).
    pub fn reserve(&mut self, more: usize) {
        // Keys spread over the shards binomially: room for four standard deviations above
        // the mean keeps every shard from growing (0.25 % more at 10 million rows).
        let mean = (self.len + more).div_ceil(SHARDS);
        let per_shard = mean + 4 * mean.isqrt() + 16;
        for shard in &mut self.shards {
            shard.reserve(per_shard);
        }
    }

    /// Bytes held by the table's slots (for tests and benchmarks).
    pub fn slot_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.slots.len() * 16).sum()
    }
}

/// The shard of a key: bits 64..70, which the slot index (bits 0..64) does not use.
fn shard_of(key: u128) -> usize {
    ((key >> 64) as usize) & (SHARDS - 1)
}

/// One open-addressing table. A slot is `key << 32 | (value + 1)`; 0 is an empty slot.
#[derive(Debug, Default)]
struct Shard {
    slots: Vec<u128>,
    taken: usize,
}

impl Shard {
    /// The home slot of `key`: its low 64 bits (uniform: they are SHA-256 output) scaled to
    /// the table's length, which need not be a power of two.
    fn home(&self, key: u128) -> usize {
        (((key as u64) as u128 * self.slots.len() as u128) >> 64) as usize
    }

    fn get(&self, key: u128) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let slot = *self.slots.get(i)?;
            if slot == 0 {
                return None;
            }
            if slot >> 32 == key {
                return Some((slot as u32).wrapping_sub(1));
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
    }

    /// Inserts a key known to be absent.
    fn insert(&mut self, key: u128, value: u32) {
        if (self.taken + 1) * LOAD_DEN > self.slots.len() * LOAD_NUM {
            self.resize(((self.taken + 1) * 3 / 2).max(MIN_SLOTS));
        }
        self.put((key << 32) | (u128::from(value) + 1));
        self.taken += 1;
    }

    fn put(&mut self, slot: u128) {
        let len = self.slots.len();
        let mut i = self.home(slot >> 32);
        for _ in 0..len {
            match self.slots.get_mut(i) {
                Some(s) if *s == 0 => {
                    *s = slot;
                    return;
                }
                _ => i = if i + 1 == len { 0 } else { i + 1 },
            }
        }
    }

    fn reserve(&mut self, keys: usize) {
        if keys * LOAD_DEN > self.slots.len() * LOAD_NUM {
            self.resize(keys);
        }
    }

    /// Rebuilds the shard with room for `keys` keys at the load limit.
    fn resize(&mut self, keys: usize) {
        let len = (keys * LOAD_DEN).div_ceil(LOAD_NUM).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![0; len]);
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.put(slot);
        }
    }
}

/// Numbers positions in input order so that 32 bits name one: a run of rows of one source gets
/// consecutive numbers from its first row on (`base + row - first_row`); a new source, or a row
/// before the last one seen, starts a new run.
#[derive(Debug, Default)]
struct Positions {
    runs: Vec<Run>,
}

#[derive(Debug)]
struct Run {
    base: u64,
    first_row: u64,
    last_row: u64,
    file: Arc<str>,
    sheet: Option<Arc<str>>,
}

impl Positions {
    /// Largest number handed out; `u32::MAX` is kept free so that `value + 1` fits a slot.
    const MAX: u64 = u32::MAX as u64 - 1;

    /// The number of `pos`, or `None` once the numbers are used up.
    fn pack(&mut self, pos: &SourcePos) -> Option<u32> {
        let continues = self.runs.last().is_some_and(|run| {
            run.file == pos.file && run.sheet == pos.sheet && pos.row >= run.last_row
        });
        if !continues {
            let base =
                self.runs.last().map_or(0, |run| run.base + (run.last_row - run.first_row) + 1);
            if base > Self::MAX {
                return None;
            }
            self.runs.push(Run {
                base,
                first_row: pos.row,
                last_row: pos.row,
                file: Arc::clone(&pos.file),
                sheet: pos.sheet.clone(),
            });
        }
        let run = self.runs.last_mut()?;
        let value = run.base.checked_add(pos.row - run.first_row).filter(|&v| v <= Self::MAX)?;
        run.last_row = pos.row;
        u32::try_from(value).ok()
    }

    fn unpack(&self, value: u32) -> SourcePos {
        let value = u64::from(value);
        let i = self.runs.partition_point(|run| run.base <= value).saturating_sub(1);
        match self.runs.get(i) {
            Some(run) => SourcePos {
                file: Arc::clone(&run.file),
                sheet: run.sheet.clone(),
                row: run.first_row + (value - run.base),
            },
            None => SourcePos { file: Arc::from(""), sheet: None, row: 0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(file: &str, row: u64) -> SourcePos {
        SourcePos { file: Arc::from(file), sheet: None, row }
    }

    fn key(n: u64) -> [u8; 16] {
        // Spread like SHA-256 output: a multiplicative hash of `n` in both halves.
        let a = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let b = (n ^ 0xDEAD_BEEF).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        (u128::from(a) | (u128::from(b) << 64)).to_le_bytes()
    }

    #[test]
    fn first_occurrence_then_duplicate_with_the_first_position() {
        let mut d = Dedupe::default();
        for row in 2..20_000u64 {
            assert_eq!(d.check(key(row), &pos("a.csv", row)), None);
        }
        assert_eq!(d.len(), 19_998);
        for row in [2u64, 3, 777, 19_999] {
            assert_eq!(d.check(key(row), &pos("a.csv", 30_000)), Some(pos("a.csv", row)));
        }
        assert_eq!(d.len(), 19_998);
    }

    #[test]
    fn positions_across_sources_sheets_and_gaps() {
        let mut d = Dedupe::default();
        let sheet = |row| SourcePos { file: Arc::from("b.xlsx"), sheet: Some(Arc::from("S")), row };
        let firsts =
            [pos("a.csv", 5), pos("a.csv", 9_000_000), sheet(2), pos("c.csv", 3), sheet(4)];
        for (i, p) in firsts.iter().enumerate() {
            assert_eq!(d.check(key(i as u64), p), None);
        }
        for (i, p) in firsts.iter().enumerate() {
            assert_eq!(d.check(key(i as u64), &pos("z.csv", 1)).as_ref(), Some(p));
        }
    }

    #[test]
    fn keys_that_share_their_slot_bits_stay_distinct() {
        // Same low 64 bits (home slot) and same shard, different in the rest of the 96 bits.
        let mut d = Dedupe::default();
        for i in 0..500u128 {
            let k = (0x1234_5678_9ABC_DEF0u128 | (i << 70)).to_le_bytes();
            assert_eq!(d.check(k, &pos("a.csv", i as u64 + 1)), None, "key {i}");
        }
        assert_eq!(d.len(), 500);
    }

    #[test]
    fn positions_past_32_bits_go_to_the_wide_map() {
        let mut d = Dedupe::default();
        let near = u64::from(u32::MAX) - 3;
        assert_eq!(d.check(key(1), &pos("a.csv", 1)), None);
        for (i, row) in (near..near + 8).enumerate() {
            assert_eq!(d.check(key(10 + i as u64), &pos("a.csv", row)), None);
        }
        assert!(!d.wide.is_empty());
        for (i, row) in (near..near + 8).enumerate() {
            assert_eq!(d.check(key(10 + i as u64), &pos("b.csv", 1)), Some(pos("a.csv", row)));
        }
        assert_eq!(d.check(key(1), &pos("b.csv", 1)), Some(pos("a.csv", 1)));
    }

    #[test]
    fn reserved_table_stays_at_sixteen_bytes_a_slot_and_four_fifths_full() {
        let mut d = Dedupe::default();
        d.reserve(100_000);
        let reserved = d.slot_bytes();
        for row in 0..100_000u64 {
            d.check(key(row), &pos("a.csv", row + 2));
        }
        assert_eq!(d.slot_bytes(), reserved, "no shard grew");
        assert!(reserved <= 100_000 * 16 * 5 / 4 * 115 / 100, "{reserved} bytes");
    }
}
