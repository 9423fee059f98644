//! Duplicate rows within a run's input: the engine sees every valid row in input order and asks
//! [`Dedupe`] whether an equal row (same content key after normalisation) came before.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::record::SourcePos;

/// Finds rows equal to an earlier row after normalisation. Holds one 16-byte hash and one
/// packed position (8 bytes) per distinct row, never the rows themselves: about 25 bytes per
/// distinct row with the table's slack, so 10 million rows stay near 400 MB at worst, and the
/// usual million near 50 MB.
#[derive(Debug, Default)]
pub struct Dedupe {
    seen: HashMap<u128, u64, BuildHasherDefault<PrehashedKey>>,
    /// The (file, sheet) of every input seen so far; a packed position names one by index.
    sources: Vec<(Arc<str>, Option<Arc<str>>)>,
}

/// Bits of a packed position that hold the row; the rest name the source.
const ROW_BITS: u32 = 48;

impl Dedupe {
    /// `None` for a first occurrence; the first row's position for a duplicate.
    pub fn check(&mut self, key: [u8; 16], pos: &SourcePos) -> Option<SourcePos> {
        let key = u128::from_le_bytes(key);
        if let Some(&packed) = self.seen.get(&key) {
            return Some(self.unpack(packed));
        }
        let packed = self.pack(pos);
        self.seen.insert(key, packed);
        None
    }

    /// Distinct rows seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Makes room for about `more` further distinct rows at once. Growing step by step, the
    /// table doubles, and during each doubling the old and the new table are both held (at a
    /// million rows, 26 MB and 52 MB); sized once from the expected row count, the peak is
    /// the final table alone.
    pub fn reserve(&mut self, more: usize) {
        self.seen.reserve(more);
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    fn pack(&mut self, pos: &SourcePos) -> u64 {
        let same = |(f, s): &(Arc<str>, Option<Arc<str>>)| *f == pos.file && *s == pos.sheet;
        let source = match self.sources.iter().rposition(same) {
            Some(i) => i,
            None => {
                self.sources.push((Arc::clone(&pos.file), pos.sheet.clone()));
                self.sources.len() - 1
            }
        };
        // 65,536 inputs and 2^48 rows per input are far beyond any export; saturate rather than
        // wrap so that a wrong position can never name another input.
        let source = (source as u64).min((1 << (64 - ROW_BITS)) - 1);
        let row = pos.row.min((1 << ROW_BITS) - 1);
        (source << ROW_BITS) | row
    }

    fn unpack(&self, packed: u64) -> SourcePos {
        let source = (packed >> ROW_BITS) as usize;
        let row = packed & ((1 << ROW_BITS) - 1);
        let (file, sheet) =
            self.sources.get(source).cloned().unwrap_or_else(|| (Arc::from(""), None));
        SourcePos { file, sheet, row }
    }
}

/// The dedupe keys are already SHA-256 output: hashing them again is wasted work, so the table
/// uses 64 of their bits as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64;
    }
}
