//! The CFF structures the subsetter reads and writes (Adobe TN #5176): INDEXes (§5), DICTs
//! (§4), the charset (§13) and FDSelect (§19). Every read is bounds-checked and returns a
//! [`CffError`] instead of panicking: the font file is input.

use super::CffError;

pub(super) fn be(data: &[u8], at: usize, n: usize) -> Result<usize, CffError> {
    let bytes = data.get(at..at + n).ok_or(CffError::Truncated { offset: at })?;
    Ok(bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
}

pub(super) fn malformed(what: &'static str) -> CffError {
    CffError::Malformed { what }
}

/// Position of an INDEX inside the CFF data (TN #5176 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Index {
    pub(super) count: usize,
    off_size: usize,
    /// First byte of the offset array.
    offsets: usize,
    /// Byte before the object data (offsets are 1-based).
    data_base: usize,
    /// One past the last byte of the INDEX.
    pub(super) end: usize,
}

impl Index {
    pub(super) fn parse(data: &[u8], start: usize) -> Result<Index, CffError> {
        let count = be(data, start, 2)?;
        if count == 0 {
            return Ok(Index {
                count,
                off_size: 1,
                offsets: start + 2,
                data_base: start + 2,
                end: start + 2,
            });
        }
        let off_size = be(data, start + 2, 1)?;
        if !(1..=4).contains(&off_size) {
            return Err(malformed("INDEX offset size"));
        }
        let offsets = start + 3;
        let data_base = offsets + (count + 1) * off_size - 1;
        let last = be(data, offsets + count * off_size, off_size)?;
        let end = data_base + last;
        if last == 0 || end > data.len() {
            return Err(CffError::Truncated { offset: end });
        }
        Ok(Index { count, off_size, offsets, data_base, end })
    }

    /// Object `i`, or `None` when out of range or its offsets are inconsistent.
    pub(super) fn get<'a>(&self, data: &'a [u8], i: usize) -> Option<&'a [u8]> {
        if i >= self.count {
            return None;
        }
        let a = be(data, self.offsets + i * self.off_size, self.off_size).ok()?;
        let b = be(data, self.offsets + (i + 1) * self.off_size, self.off_size).ok()?;
        if a == 0 || b < a || self.data_base + b > self.end {
            return None;
        }
        data.get(self.data_base + a..self.data_base + b)
    }
}

/// Write an INDEX of `items` (empty slices are allowed: emptied subroutines).
pub(super) fn write_index<'a>(
    out: &mut Vec<u8>,
    items: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
) {
    let count = items.len();
    out.extend_from_slice(&(count as u16).to_be_bytes());
    if count == 0 {
        return;
    }
    let total: usize = items.clone().map(<[u8]>::len).sum();
    let off_size = match total + 1 {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    };
    out.push(off_size as u8);
    let mut offset = 1usize;
    let push_off = |out: &mut Vec<u8>, v: usize| {
        out.extend_from_slice(&(v as u32).to_be_bytes()[4 - off_size..]);
    };
    push_off(out, offset);
    for item in items.clone() {
        offset += item.len();
        push_off(out, offset);
    }
    for item in items {
        out.extend_from_slice(item);
    }
}

/// Bytes an INDEX of `count` items with `total` data bytes takes.
pub(super) fn index_len(count: usize, total: usize) -> usize {
    if count == 0 {
        return 2;
    }
    let off_size = match total + 1 {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    };
    3 + (count + 1) * off_size + total
}

/// One DICT entry: the operator and its operands, raw and (for integers) decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DictEntry {
    pub(super) op: u16,
    raw: Vec<u8>,
    /// Integer operands; a real operand is `None`.
    pub(super) ints: Vec<Option<i64>>,
}

impl DictEntry {
    pub(super) fn int(&self, i: usize) -> Option<usize> {
        self.ints.get(i).copied().flatten().and_then(|v| usize::try_from(v).ok())
    }
}

/// Parse a DICT (TN #5176 §4).
pub(super) fn parse_dict(bytes: &[u8]) -> Result<Vec<DictEntry>, CffError> {
    let mut entries = Vec::new();
    let mut raw_start = 0;
    let mut ints = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b0 = bytes.get(i).copied().unwrap_or_default();
        let here = i;
        let byte = |k: usize| -> Result<i64, CffError> {
            bytes
                .get(here + k)
                .map(|b| i64::from(*b))
                .ok_or(CffError::Truncated { offset: here + k })
        };
        match b0 {
            0..=21 => {
                let (op, len) =
                    if b0 == 12 { (0x0C00 | byte(1)? as u16, 2) } else { (u16::from(b0), 1) };
                let raw = bytes.get(raw_start..i).unwrap_or_default().to_vec();
                entries.push(DictEntry { op, raw, ints: std::mem::take(&mut ints) });
                i += len;
                raw_start = i;
            }
            28 => {
                ints.push(Some(i64::from(((byte(1)? << 8) | byte(2)?) as u16 as i16)));
                i += 3;
            }
            29 => {
                let v = (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?;
                ints.push(Some(i64::from(v as u32 as i32)));
                i += 5;
            }
            30 => {
                // Real: nibbles up to and including an 0xF nibble.
                i += 1;
                loop {
                    let b = bytes.get(i).copied().ok_or(CffError::Truncated { offset: i })?;
                    i += 1;
                    if b & 0x0F == 0x0F || b >> 4 == 0x0F {
                        break;
                    }
                }
                ints.push(None);
            }
            32..=246 => {
                ints.push(Some(i64::from(b0) - 139));
                i += 1;
            }
            247..=250 => {
                ints.push(Some((i64::from(b0) - 247) * 256 + byte(1)? + 108));
                i += 2;
            }
            251..=254 => {
                ints.push(Some(-(i64::from(b0) - 251) * 256 - byte(1)? - 108));
                i += 2;
            }
            _ => return Err(malformed("reserved DICT byte")),
        }
    }
    if !ints.is_empty() {
        return Err(malformed("DICT ends with operands"));
    }
    Ok(entries)
}

/// A DICT integer operand in the fixed 5-byte form, so that DICT lengths do not depend on the
/// offsets they hold.
fn push_int5(out: &mut Vec<u8>, v: usize) {
    out.push(29);
    out.extend_from_slice(&(v as u32).to_be_bytes());
}

/// Serialise `entries`, replacing the operands of the operators `fixed` lists.
pub(super) fn write_dict(
    out: &mut Vec<u8>,
    entries: &[DictEntry],
    fixed: &[(u16, &[usize])],
    drop: &[u16],
) {
    for e in entries.iter().filter(|e| !drop.contains(&e.op)) {
        match fixed.iter().find(|(op, _)| *op == e.op) {
            Some((_, values)) => values.iter().for_each(|v| push_int5(out, *v)),
            None => out.extend_from_slice(&e.raw),
        }
        if e.op >= 0x0C00 {
            out.extend_from_slice(&[12, (e.op & 0xFF) as u8]);
        } else {
            out.push(e.op as u8);
        }
    }
}

pub(super) fn parse_charset(d: &[u8], at: usize, n: usize) -> Result<Vec<u16>, CffError> {
    if at <= 2 {
        return Err(malformed("predefined charset in a CID-keyed font"));
    }
    let mut cids = Vec::with_capacity(n);
    cids.push(0u16);
    let format = be(d, at, 1)?;
    let mut pos = at + 1;
    match format {
        0 => {
            while cids.len() < n {
                cids.push(be(d, pos, 2)? as u16);
                pos += 2;
            }
        }
        1 | 2 => {
            let left_len = if format == 1 { 1 } else { 2 };
            while cids.len() < n {
                let first = be(d, pos, 2)?;
                let left = be(d, pos + 2, left_len)?;
                pos += 2 + left_len;
                for k in 0..=left {
                    if cids.len() == n {
                        break;
                    }
                    let cid = u16::try_from(first + k).map_err(|_| malformed("charset CID"))?;
                    cids.push(cid);
                }
            }
        }
        _ => return Err(malformed("charset format")),
    }
    Ok(cids)
}

pub(super) fn parse_fd_select(d: &[u8], at: usize, n: usize) -> Result<Vec<u8>, CffError> {
    match be(d, at, 1)? {
        0 => Ok(d
            .get(at + 1..at + 1 + n)
            .ok_or(CffError::Truncated { offset: at + 1 + n })?
            .to_vec()),
        3 => {
            let ranges = be(d, at + 1, 2)?;
            let mut fds = vec![0u8; n];
            for r in 0..ranges {
                let rec = at + 3 + r * 3;
                let first = be(d, rec, 2)?;
                let fd = be(d, rec + 2, 1)? as u8;
                let next = be(d, rec + 3, 2)?;
                if first > next || next > n {
                    return Err(malformed("FDSelect range"));
                }
                fds.get_mut(first..next).unwrap_or_default().fill(fd);
            }
            Ok(fds)
        }
        _ => Err(malformed("FDSelect format")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::font::subset::{OP_CHAR_STRINGS, OP_ROS};

    #[test]
    fn index_round_trips_with_empty_entries() {
        let items: [&[u8]; 4] = [b"abc", b"", b"de", b""];
        let mut out = vec![0xEE];
        write_index(&mut out, items.iter().copied());
        assert_eq!(out.len(), 1 + index_len(4, 5));
        let index = Index::parse(&out, 1).unwrap();
        assert_eq!(index.count, 4);
        assert_eq!(index.end, out.len());
        for (i, item) in items.iter().enumerate() {
            assert_eq!(index.get(&out, i), Some(*item));
        }
        assert_eq!(index.get(&out, 4), None);
        // Large data switches to wider offsets.
        let big = vec![7u8; 70_000];
        let mut out = Vec::new();
        write_index(&mut out, [big.as_slice(), b"x"].into_iter());
        assert_eq!(out.get(2), Some(&3));
        assert_eq!(out.len(), index_len(2, 70_001));
        assert_eq!(Index::parse(&out, 0).unwrap().get(&out, 1), Some(&b"x"[..]));
        let mut empty = Vec::new();
        write_index(&mut empty, std::iter::empty());
        assert_eq!(empty, [0, 0]);
    }

    #[test]
    fn dict_operands_decode_and_reencode() {
        // 100 -1000 1.5 CharStrings(17) ; 1000 ROS(12 30)
        let bytes = [239, 254, 124, 30, 0x1A, 0x5F, 17, 28, 0x03, 0xE8, 12, 30];
        let d = parse_dict(&bytes).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].op, OP_CHAR_STRINGS);
        assert_eq!(d[0].ints, vec![Some(100), Some(-1000), None]);
        assert_eq!(d[1].op, OP_ROS);
        assert_eq!(d[1].int(0), Some(1000));
        let mut out = Vec::new();
        write_dict(&mut out, &d, &[(OP_CHAR_STRINGS, &[70_000])], &[]);
        let again = parse_dict(&out).unwrap();
        assert_eq!(again[0].ints, vec![Some(70_000)]);
        assert_eq!(again[1], d[1]);
        assert!(parse_dict(&[28, 1]).is_err());
        assert!(parse_dict(&[139]).is_err(), "operands without an operator");
    }
}
