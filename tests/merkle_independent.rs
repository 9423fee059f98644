//! The transparency log's Merkle tree against an independent implementation: a few lines of
//! Python written from RFC 6962 §2.1 (MTH, PATH, PROOF), over leaf sets of every size up to 70.

use std::process::Command;

use elicence::merkle::{consistency_proof, inclusion_proof, leaf_hash, root};

const PYTHON: &str = r#"
import hashlib, json, sys
H = lambda b: hashlib.sha256(b).digest()
def split(n):
    k = 1
    while k * 2 < n: k *= 2
    return k
def mth(d):
    if not d: return H(b"")
    if len(d) == 1: return H(b"\x00" + d[0])
    k = split(len(d)); return H(b"\x01" + mth(d[:k]) + mth(d[k:]))
def path(m, d):
    if len(d) <= 1: return []
    k = split(len(d))
    return path(m, d[:k]) + [mth(d[k:])] if m < k else path(m - k, d[k:]) + [mth(d[:k])]
def sub(m, d, b):
    if m == len(d): return [] if b else [mth(d)]
    k = split(len(d))
    return sub(m, d[:k], b) + [mth(d[k:])] if m <= k else sub(m - k, d[k:], False) + [mth(d[:k])]
out = []
for n in range(1, 71):
    d = [("leaf %d" % i).encode() for i in range(n)]
    out.append({"root": mth(d).hex(),
                "paths": [[h.hex() for h in path(m, d)] for m in range(n)],
                "proofs": [[h.hex() for h in sub(m, d, True)] if 0 < m < n else [] for m in range(n + 1)]})
json.dump(out, sys.stdout)
"#;

#[test]
fn roots_and_proofs_agree_with_an_independent_python_implementation() {
    let out = Command::new("python3").args(["-c", PYTHON]).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let hexes = |v: &[[u8; 32]]| v.iter().map(hex::encode).collect::<Vec<_>>();
    for (i, want) in expected.iter().enumerate() {
        let n = i + 1;
        let leaves: Vec<[u8; 32]> =
            (0..n).map(|j| leaf_hash(format!("leaf {j}").as_bytes())).collect();
        assert_eq!(hex::encode(root(&leaves)), want["root"], "root of {n}");
        for m in 0..n {
            let ours = hexes(&inclusion_proof(&leaves, m).expect("in range"));
            assert_eq!(serde_json::json!(ours), want["paths"][m], "path {m} of {n}");
        }
        for m in 0..=n {
            let ours = hexes(&consistency_proof(&leaves, m).expect("in range"));
            assert_eq!(serde_json::json!(ours), want["proofs"][m], "proof {m} → {n}");
        }
    }
}
