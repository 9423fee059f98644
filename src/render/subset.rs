//! Page-at-a-time subsetting of CID-keyed CFF fonts (the `CFF ` table of Noto Sans CJK and other
//! OpenType/CFF CJK faces).
//!
//! The font is parsed once per process ([`CidCff::parse`]). The first time a glyph is used, its
//! charstring is flattened: every subroutine call is replaced by the subroutine's body
//! (desubroutinised, as fontTools' `--desubroutinize` does), and the result is kept for the life
//! of the process. A page's subset ([`CidCff::subset`]) then only copies bytes: no pass over the
//! font's character map, no sfnt wrapper, no re-parsing, and no subroutine INDEXes (which in Noto
//! Sans CJK run to tens of thousands of entries and would have to be carried, emptied, to keep
//! their call bias).
//!
//! The output is a bare CID-keyed CFF for `/FontFile3 /Subtype /CIDFontType0C` (ISO 32000-1
//! §9.9): glyph 0 (`.notdef`) first, then the requested glyphs in the order given; every glyph
//! keeps its CID (the charset maps new glyph ids to the original CIDs), so the Identity-H codes in
//! the content stream are the original CIDs. Only the Font DICTs the page uses are kept, their
//! Private DICTs without `Subrs`. Name and String INDEXes and every other DICT entry are copied as
//! they are.
//!
//! Formats: Adobe TN #5176 (CFF) and TN #5177 (Type 2 charstrings). Anything this module does not
//! understand (a name-keyed CFF, arithmetic charstring operators) is an error, and the caller
//! falls back to printpdf's general subsetter.

use std::sync::OnceLock;

/// Why a CFF table or a glyph could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CffError {
    /// The data ends before a structure it announces.
    #[error("CFF data ends early (at byte {offset})")]
    Truncated { offset: usize },
    /// A structure is present but not valid.
    #[error("malformed CFF: {what}")]
    Malformed { what: &'static str },
    /// The Top DICT has no `ROS` operator: a name-keyed font.
    #[error("the CFF font is not CID-keyed")]
    NotCidKeyed,
    /// A glyph's charstring cannot be followed.
    #[error("glyph {gid}: {what}")]
    Charstring { gid: u16, what: &'static str },
    /// The glyph id is beyond the font's glyph count.
    #[error("glyph {gid} is not in the font")]
    NoSuchGlyph { gid: u16 },
}

const OP_CHARSET: u16 = 15;
const OP_ENCODING: u16 = 16;
const OP_CHAR_STRINGS: u16 = 17;
const OP_PRIVATE: u16 = 18;
const OP_SUBRS: u16 = 19;
const OP_ROS: u16 = 0x0C00 | 30;
const OP_FD_ARRAY: u16 = 0x0C00 | 36;
const OP_FD_SELECT: u16 = 0x0C00 | 37;
/// Type 2 argument stack limit (TN #5177 appendix B).
const MAX_STACK: usize = 48;
/// Subroutine nesting limit (TN #5177 appendix B).
const MAX_SUBR_DEPTH: u8 = 10;

fn be(data: &[u8], at: usize, n: usize) -> Result<usize, CffError> {
    let bytes = data.get(at..at + n).ok_or(CffError::Truncated { offset: at })?;
    Ok(bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)))
}

fn malformed(what: &'static str) -> CffError {
    CffError::Malformed { what }
}

/// Position of an INDEX inside the CFF data (TN #5176 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Index {
    count: usize,
    off_size: usize,
    /// First byte of the offset array.
    offsets: usize,
    /// Byte before the object data (offsets are 1-based).
    data_base: usize,
    /// One past the last byte of the INDEX.
    end: usize,
}

impl Index {
    fn parse(data: &[u8], start: usize) -> Result<Index, CffError> {
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
    fn get<'a>(&self, data: &'a [u8], i: usize) -> Option<&'a [u8]> {
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
fn write_index<'a>(out: &mut Vec<u8>, items: impl ExactSizeIterator<Item = &'a [u8]> + Clone) {
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
fn index_len(count: usize, total: usize) -> usize {
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
struct DictEntry {
    op: u16,
    raw: Vec<u8>,
    /// Integer operands; a real operand is `None`.
    ints: Vec<Option<i64>>,
}

impl DictEntry {
    fn int(&self, i: usize) -> Option<usize> {
        self.ints.get(i).copied().flatten().and_then(|v| usize::try_from(v).ok())
    }
}

/// Parse a DICT (TN #5176 §4).
fn parse_dict(bytes: &[u8]) -> Result<Vec<DictEntry>, CffError> {
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
fn write_dict(out: &mut Vec<u8>, entries: &[DictEntry], fixed: &[(u16, &[usize])], drop: &[u16]) {
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

/// A Font DICT of the FDArray with its Private DICT and local subroutines.
#[derive(Debug)]
struct FontDict {
    dict: Vec<DictEntry>,
    private: Vec<DictEntry>,
    local_subrs: Option<Index>,
}

/// A parsed CID-keyed CFF table. `Send + Sync`; parse once, subset per page.
pub struct CidCff {
    data: Vec<u8>,
    name_index: (usize, usize),
    string_index: (usize, usize),
    top: Vec<DictEntry>,
    global_subrs: Index,
    char_strings: Index,
    /// Glyph id → CID.
    cids: Vec<u16>,
    /// Glyph id → Font DICT.
    fd_select: Vec<u8>,
    fonts: Vec<FontDict>,
    /// Glyph id → its flattened charstring, made on first use.
    flat: Vec<OnceLock<Result<Vec<u8>, CffError>>>,
}

impl std::fmt::Debug for CidCff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CidCff")
            .field("bytes", &self.data.len())
            .field("glyphs", &self.cids.len())
            .field("font_dicts", &self.fonts.len())
            .finish_non_exhaustive()
    }
}

impl CidCff {
    /// Parse a `CFF ` table. Fails with [`CffError::NotCidKeyed`] for a name-keyed font and with
    /// another variant when the table is damaged or uses a structure this module lacks.
    pub fn parse(data: Vec<u8>) -> Result<CidCff, CffError> {
        let d = &data;
        if be(d, 0, 1)? != 1 {
            return Err(malformed("CFF major version is not 1"));
        }
        let names = Index::parse(d, be(d, 2, 1)?)?;
        let tops = Index::parse(d, names.end)?;
        let strings = Index::parse(d, tops.end)?;
        let global_subrs = Index::parse(d, strings.end)?;
        if names.count != 1 || tops.count != 1 {
            return Err(malformed("not exactly one font in the CFF"));
        }
        let top = parse_dict(tops.get(d, 0).ok_or(malformed("Top DICT"))?)?;
        let find = |op| top.iter().find(|e| e.op == op);
        if find(OP_ROS).is_none() {
            return Err(CffError::NotCidKeyed);
        }
        let offset_of = |op, what| find(op).and_then(|e| e.int(0)).ok_or(malformed(what));
        let char_strings = Index::parse(d, offset_of(OP_CHAR_STRINGS, "CharStrings offset")?)?;
        let n = char_strings.count;
        if n == 0 || n > usize::from(u16::MAX) {
            return Err(malformed("glyph count"));
        }
        let cids = parse_charset(d, offset_of(OP_CHARSET, "charset offset")?, n)?;
        let fd_select = parse_fd_select(d, offset_of(OP_FD_SELECT, "FDSelect offset")?, n)?;
        let fd_array = Index::parse(d, offset_of(OP_FD_ARRAY, "FDArray offset")?)?;
        if fd_array.count == 0 || fd_array.count > 256 {
            return Err(malformed("FDArray count"));
        }
        let mut fonts = Vec::with_capacity(fd_array.count);
        for i in 0..fd_array.count {
            let dict = parse_dict(fd_array.get(d, i).ok_or(malformed("Font DICT"))?)?;
            let p = dict.iter().find(|e| e.op == OP_PRIVATE).ok_or(malformed("no Private DICT"))?;
            let (size, offset) =
                p.int(0).zip(p.int(1)).ok_or(malformed("Private DICT size/offset"))?;
            let private_bytes =
                d.get(offset..offset + size).ok_or(CffError::Truncated { offset })?;
            let private = parse_dict(private_bytes)?;
            let local_subrs = match private.iter().find(|e| e.op == OP_SUBRS) {
                Some(e) => {
                    let rel = e.int(0).ok_or(malformed("Subrs offset"))?;
                    Some(Index::parse(d, offset + rel)?)
                }
                None => None,
            };
            fonts.push(FontDict { dict, private, local_subrs });
        }
        if fd_select.iter().any(|fd| usize::from(*fd) >= fonts.len()) {
            return Err(malformed("FDSelect names a missing Font DICT"));
        }
        let flat = (0..n).map(|_| OnceLock::new()).collect();
        Ok(CidCff {
            name_index: (be(d, 2, 1)?, names.end),
            string_index: (tops.end, strings.end),
            top,
            global_subrs,
            char_strings,
            cids,
            fd_select,
            fonts,
            flat,
            data,
        })
    }

    /// Number of glyphs.
    pub fn glyph_count(&self) -> usize {
        self.cids.len()
    }

    /// The CID of glyph `gid` (the Identity-H code that draws it from a subset).
    pub fn cid(&self, gid: u16) -> Option<u16> {
        self.cids.get(usize::from(gid)).copied()
    }

    /// Glyph `gid`'s charstring with every subroutine call inlined, made on first use and then
    /// kept.
    fn flat(&self, gid: u16) -> Result<&[u8], CffError> {
        let slot = self.flat.get(usize::from(gid)).ok_or(CffError::NoSuchGlyph { gid })?;
        slot.get_or_init(|| self.flatten(gid)).as_deref().map_err(Clone::clone)
    }

    fn flatten(&self, gid: u16) -> Result<Vec<u8>, CffError> {
        let err = |what| CffError::Charstring { gid, what };
        let code = self.char_strings.get(&self.data, usize::from(gid)).ok_or(err("charstring"))?;
        let fd = self.fd_select.get(usize::from(gid)).copied().unwrap_or_default();
        let local = self.fonts.get(usize::from(fd)).and_then(|f| f.local_subrs);
        let mut scan = Flatten {
            data: &self.data,
            global: self.global_subrs,
            local,
            stack: Vec::with_capacity(MAX_STACK),
            stems: 0,
            ended: false,
            out: Vec::with_capacity(code.len() * 3),
        };
        scan.run(code, 0).map_err(err)?;
        if !scan.ended {
            return Err(err("charstring has no endchar"));
        }
        Ok(scan.out)
    }

    /// A CID-keyed CFF holding `.notdef` and the glyphs `gids` (in that order; glyph 0 and
    /// repeats are skipped). Fails when a glyph is not in the font or its charstring cannot be
    /// followed.
    pub fn subset(&self, gids: &[u16]) -> Result<Vec<u8>, CffError> {
        let mut ids: Vec<u16> = Vec::with_capacity(gids.len() + 1);
        ids.push(0);
        for g in gids {
            if *g != 0 && !ids.contains(g) {
                ids.push(*g);
            }
        }
        let mut char_strings: Vec<&[u8]> = Vec::with_capacity(ids.len());
        let mut fd_used = vec![false; self.fonts.len()];
        let mut glyph_fd = Vec::with_capacity(ids.len());
        for &gid in &ids {
            char_strings.push(self.flat(gid)?);
            let fd = usize::from(self.fd_select.get(usize::from(gid)).copied().unwrap_or_default());
            glyph_fd.push(fd);
            if let Some(u) = fd_used.get_mut(fd) {
                *u = true;
            }
        }
        let mut new_fd = vec![0u8; self.fonts.len()];
        let kept: Vec<usize> = (0..self.fonts.len()).filter(|i| fd_used[*i]).collect();
        for (new, old) in kept.iter().enumerate() {
            new_fd[*old] = new as u8;
        }
        let d = &self.data;
        // Private DICTs of the kept Font DICTs, without Subrs (nothing calls a subroutine).
        let privates: Vec<Vec<u8>> = kept
            .iter()
            .filter_map(|old| self.fonts.get(*old))
            .map(|font| {
                let mut p = Vec::with_capacity(128);
                write_dict(&mut p, &font.private, &[], &[OP_SUBRS]);
                p
            })
            .collect();

        // Layout: header, Name, Top DICT, String, Global Subr INDEXes, then charset, FDSelect,
        // CharStrings, FDArray, Private DICTs each followed by its Subrs.
        let top_ops = [OP_CHARSET, OP_FD_SELECT, OP_CHAR_STRINGS, OP_FD_ARRAY];
        let drop = [OP_ENCODING, OP_PRIVATE];
        let mut top = Vec::new();
        let zeros: Vec<(u16, &[usize])> = top_ops.iter().map(|op| (*op, &[0usize][..])).collect();
        write_dict(&mut top, &self.top, &zeros, &drop);
        let top_len = top.len();
        let (name_a, name_b) = self.name_index;
        let (str_a, str_b) = self.string_index;
        let header_len = 4;
        let charset_at = header_len
            + (name_b - name_a)
            + index_len(1, top_len)
            + (str_b - str_a)
            + index_len(0, 0);
        let charset_len = 1 + 2 * (ids.len() - 1);
        let fd_select_at = charset_at + charset_len;
        let char_strings_at = fd_select_at + 1 + ids.len();
        let cs_total: usize = char_strings.iter().map(|c| c.len()).sum();
        let fd_array_at = char_strings_at + index_len(char_strings.len(), cs_total);
        let font_dicts_unplaced: Vec<Vec<u8>> = kept
            .iter()
            .filter_map(|old| self.fonts.get(*old))
            .map(|f| {
                let mut v = Vec::new();
                write_dict(&mut v, &f.dict, &[(OP_PRIVATE, &[0, 0])], &[]);
                v
            })
            .collect();
        let fd_total: usize = font_dicts_unplaced.iter().map(Vec::len).sum();
        let mut private_at = fd_array_at + index_len(kept.len(), fd_total);
        let mut font_dicts = Vec::with_capacity(kept.len());
        for (old, p) in kept.iter().zip(&privates) {
            let Some(f) = self.fonts.get(*old) else { continue };
            let mut v = Vec::new();
            write_dict(&mut v, &f.dict, &[(OP_PRIVATE, &[p.len(), private_at])], &[]);
            font_dicts.push(v);
            private_at += p.len();
        }

        let mut out = Vec::with_capacity(private_at);
        out.extend_from_slice(&[1, 0, header_len as u8, 4]);
        out.extend_from_slice(d.get(name_a..name_b).unwrap_or_default());
        top.clear();
        let placed = [
            (OP_CHARSET, charset_at),
            (OP_FD_SELECT, fd_select_at),
            (OP_CHAR_STRINGS, char_strings_at),
            (OP_FD_ARRAY, fd_array_at),
        ];
        let values: Vec<[usize; 1]> = placed.iter().map(|(_, v)| [*v]).collect();
        let fixed: Vec<(u16, &[usize])> =
            placed.iter().zip(&values).map(|((op, _), v)| (*op, &v[..])).collect();
        write_dict(&mut top, &self.top, &fixed, &drop);
        write_index(&mut out, std::iter::once(top.as_slice()));
        out.extend_from_slice(d.get(str_a..str_b).unwrap_or_default());
        write_index(&mut out, std::iter::empty()); // no global subroutines
        // charset format 0: the CID of every glyph after .notdef.
        out.push(0);
        for g in ids.iter().skip(1) {
            out.extend_from_slice(&self.cid(*g).unwrap_or_default().to_be_bytes());
        }
        // FDSelect format 0: one Font DICT number per glyph.
        out.push(0);
        out.extend(glyph_fd.iter().map(|fd| new_fd.get(*fd).copied().unwrap_or_default()));
        write_index(&mut out, char_strings.iter().copied());
        write_index(&mut out, font_dicts.iter().map(Vec::as_slice));
        for p in &privates {
            out.extend_from_slice(p);
        }
        debug_assert_eq!(out.len(), private_at);
        Ok(out)
    }
}

fn parse_charset(d: &[u8], at: usize, n: usize) -> Result<Vec<u16>, CffError> {
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

fn parse_fd_select(d: &[u8], at: usize, n: usize) -> Result<Vec<u8>, CffError> {
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

/// Call bias of a subroutine INDEX (TN #5177 §4.7).
fn subr_bias(count: usize) -> i64 {
    if count < 1240 {
        107
    } else if count < 33900 {
        1131
    } else {
        32768
    }
}

/// Flattens a Type 2 charstring: copies it token by token, replacing each `callsubr` /
/// `callgsubr` and the number before it by the subroutine's body (without its `return`). Follows
/// the operand stack (subroutine numbers, kept with where their token starts in the output) and
/// the stem count (the length of `hintmask`/`cntrmask`).
struct Flatten<'a> {
    data: &'a [u8],
    global: Index,
    local: Option<Index>,
    /// Operand values and where each one's token starts in `out`.
    stack: Vec<(i64, usize)>,
    stems: usize,
    ended: bool,
    out: Vec<u8>,
}

impl Flatten<'_> {
    fn number(&mut self, v: i64, token: &[u8]) -> Result<(), &'static str> {
        if self.stack.len() >= MAX_STACK {
            return Err("argument stack overflow");
        }
        self.stack.push((v, self.out.len()));
        self.out.extend_from_slice(token);
        Ok(())
    }

    fn operator(&mut self, token: &[u8]) {
        self.stack.clear();
        self.out.extend_from_slice(token);
    }

    fn run(&mut self, code: &[u8], depth: u8) -> Result<(), &'static str> {
        if depth > MAX_SUBR_DEPTH {
            return Err("subroutines nested too deeply");
        }
        let mut i = 0;
        while let Some(&b0) = code.get(i) {
            let token = |len: usize| code.get(i..i + len).ok_or("charstring ends early");
            let byte =
                |k: usize| code.get(i + k).map(|b| i64::from(*b)).ok_or("charstring ends early");
            let len = match b0 {
                32..=246 => {
                    self.number(i64::from(b0) - 139, token(1)?)?;
                    1
                }
                247..=250 => {
                    self.number((i64::from(b0) - 247) * 256 + byte(1)? + 108, token(2)?)?;
                    2
                }
                251..=254 => {
                    self.number(-(i64::from(b0) - 251) * 256 - byte(1)? - 108, token(2)?)?;
                    2
                }
                28 => {
                    let v = i64::from(((byte(1)? << 8) | byte(2)?) as u16 as i16);
                    self.number(v, token(3)?)?;
                    3
                }
                255 => {
                    // 16.16 fixed: only the integer part can matter (as a subroutine number).
                    let v = (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?;
                    self.number(i64::from((v as u32 as i32) >> 16), token(5)?)?;
                    5
                }
                // hstem, vstem, hstemhm, vstemhm: pairs of arguments (an odd one is the width).
                1 | 3 | 18 | 23 => {
                    self.stems += self.stack.len() / 2;
                    self.operator(token(1)?);
                    1
                }
                // hintmask, cntrmask: arguments left on the stack are an implied vstem; then one
                // mask bit per stem.
                19 | 20 => {
                    self.stems += self.stack.len() / 2;
                    let len = 1 + self.stems.div_ceil(8);
                    self.operator(token(len)?);
                    len
                }
                10 | 29 => {
                    let (n, start) = self.stack.pop().ok_or("subroutine call without a number")?;
                    let index = if b0 == 10 {
                        self.local.ok_or("callsubr without Subrs")?
                    } else {
                        self.global
                    };
                    let k = usize::try_from(n + subr_bias(index.count))
                        .ok()
                        .filter(|k| *k < index.count)
                        .ok_or("subroutine number out of range")?;
                    let sub = index.get(self.data, k).ok_or("subroutine")?;
                    // The number is the last token written (operators empty the stack).
                    self.out.truncate(start);
                    self.run(sub, depth + 1)?;
                    if self.ended {
                        return Ok(());
                    }
                    1
                }
                11 => return Ok(()), // return: the caller goes on
                14 => {
                    if self.stack.len() >= 4 {
                        return Err("endchar with accent arguments (seac)");
                    }
                    self.operator(token(1)?);
                    self.ended = true;
                    return Ok(());
                }
                12 => match byte(1)? {
                    // dotsection (deprecated), hflex, flex, hflex1, flex1
                    0 | 34..=37 => {
                        self.operator(token(2)?);
                        2
                    }
                    _ => return Err("arithmetic or unknown escape operator"),
                },
                // Path operators: rmoveto … hvcurveto.
                4..=8 | 21 | 22 | 24..=27 | 30 | 31 => {
                    self.operator(token(1)?);
                    1
                }
                _ => return Err("reserved operator"),
            };
            i += len;
        }
        Ok(())
    }
}

/// The `CFF ` table of face `index` of an sfnt or a TrueType collection, or `None` when the face
/// has none (a TrueType-outline font) or the directory is damaged.
pub fn cff_table(font_file: &[u8], index: usize) -> Option<&[u8]> {
    let get = |at: usize, n: usize| be(font_file, at, n).ok();
    let sfnt = if font_file.get(..4) == Some(b"ttcf") {
        if index >= get(8, 4)? {
            return None;
        }
        get(12 + 4 * index, 4)?
    } else {
        0
    };
    let tables = get(sfnt + 4, 2)?;
    (0..tables).find_map(|t| {
        let rec = sfnt + 12 + 16 * t;
        if font_file.get(rec..rec + 4)? != b"CFF " {
            return None;
        }
        let (offset, len) = (get(rec + 8, 4)?, get(rec + 12, 4)?);
        font_file.get(offset..offset.checked_add(len)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::FaceFont;

    /// The Noto Sans CJK SC `CFF ` table, when the font is installed.
    fn noto() -> Option<CidCff> {
        let font = FaceFont::locate(None).ok()?;
        font.cid_cff()?;
        let (path, index) = font.source();
        let bytes = std::fs::read(path).ok()?;
        CidCff::parse(cff_table(&bytes, index)?.to_vec()).ok()
    }

    fn gids(font: &FaceFont, text: &str) -> Vec<u16> {
        let mut g: Vec<u16> = text.chars().filter_map(|c| font.glyph(c)).map(|g| g.gid).collect();
        g.sort_unstable();
        g.dedup();
        g
    }

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

    /// Flatten a hand-made charstring over hand-made subroutine INDEXes.
    fn flatten(code: &[u8], global: &[&[u8]], local: &[&[u8]]) -> Result<Vec<u8>, &'static str> {
        let mut data = Vec::new();
        write_index(&mut data, global.iter().copied());
        let g = Index::parse(&data, 0).unwrap();
        let at = data.len();
        write_index(&mut data, local.iter().copied());
        let l = Index::parse(&data, at).unwrap();
        let mut f = Flatten {
            data: &data,
            global: g,
            local: Some(l),
            stack: Vec::new(),
            stems: 0,
            ended: false,
            out: Vec::new(),
        };
        f.run(code, 0)?;
        if !f.ended {
            return Err("no endchar");
        }
        Ok(f.out)
    }

    #[test]
    fn flatten_inlines_subroutines_with_bias() {
        // Bias 107 for small INDEXes: operand -107 (byte 32) calls subroutine 0, -106 calls 1.
        let moveto: &[u8] = &[139, 140, 21, 11]; // 0 1 rmoveto return
        let line_then_local_1: &[u8] = &[141, 6, 33, 10, 11]; // 2 hlineto, callsubr 1, return
        let vline: &[u8] = &[142, 7, 11]; // 3 vlineto return
        // 5 (width) callgsubr 0, callgsubr 1, endchar
        let code = [144, 32, 29, 33, 29, 14];
        let flat = flatten(&code, &[moveto, line_then_local_1], &[moveto, vline]).unwrap();
        assert_eq!(flat, [144, 139, 140, 21, 141, 6, 142, 7, 14]);
        // An argument pushed by the caller and used inside the subroutine stays in place.
        let uses_arg: &[u8] = &[139, 5, 11]; // (x) 0 rlineto return
        assert_eq!(flatten(&[150, 32, 29, 14], &[uses_arg], &[]).unwrap(), [150, 139, 5, 14]);
        // endchar inside a subroutine ends the glyph.
        let end: &[u8] = &[14];
        assert_eq!(flatten(&[32, 29], &[end], &[]).unwrap(), [14]);
        // A flat charstring flattens to itself.
        assert_eq!(flatten(&flat, &[], &[]).unwrap(), flat);
        // Out-of-range numbers, missing endchar and runaway recursion are errors, not panics.
        let ret: &[u8] = &[11];
        assert!(flatten(&[34, 29, 14], &[ret], &[]).is_err());
        assert!(flatten(&[32, 29], &[ret], &[]).is_err());
        let recurse: &[u8] = &[32, 29, 11];
        assert!(flatten(&[32, 29, 14], &[recurse], &[]).is_err());
        assert!(flatten(&[29, 14], &[ret], &[]).is_err(), "call with an empty stack");
        assert!(flatten(&[12, 24, 14], &[], &[]).is_err(), "arithmetic operators are refused");
        assert!(flatten(&[28, 1], &[], &[]).is_err(), "truncated operand");
    }

    #[test]
    fn flatten_copies_hint_mask_bytes_by_stem_count() {
        // Three stem pairs via hstemhm, then an implied vstem (2 args) at hintmask: 4 stems ⇒ one
        // mask byte. The mask byte 0x1D (29 = callgsubr) must be copied, not called.
        let code = [139, 139, 139, 139, 139, 139, 18, 139, 139, 19, 0x1D, 14];
        assert_eq!(flatten(&code, &[], &[]).unwrap(), code);
        // Nine stems ⇒ two mask bytes; a hintmask inside a subroutine counts the caller's stems.
        let mut code = vec![139; 18];
        code.extend_from_slice(&[1, 32, 29, 14]);
        let mask: &[u8] = &[19, 0x1D, 0x0A, 11];
        let flat = flatten(&code, &[mask], &[]).unwrap();
        assert_eq!(flat.get(19..), Some(&[19, 0x1D, 0x0A, 14][..]));
    }

    #[test]
    fn damaged_tables_are_errors() {
        assert!(CidCff::parse(Vec::new()).is_err());
        assert!(CidCff::parse(vec![1, 0, 4, 4, 0, 1, 1]).is_err());
        let Some(font) = noto() else { return };
        // Every truncation of a real table's head fails cleanly.
        for len in [3, 10, 40, 200, 1000, 5000] {
            assert!(CidCff::parse(font.data.get(..len).unwrap_or_default().to_vec()).is_err());
        }
        assert!(matches!(font.subset(&[u16::MAX]), Err(CffError::NoSuchGlyph { .. })));
    }

    #[test]
    fn noto_subset_keeps_charstrings_cids_and_subroutines() {
        let Some(cff) = noto() else {
            eprintln!("Noto Sans CJK not installed; skipping");
            return;
        };
        let Ok(face) = FaceFont::locate(None) else { return };
        let ids =
            gids(&face, "食品经营许可证长春市王䶮餐饮管理有限公司0123456789ABCXYZ：（），。、");
        let out = cff.subset(&ids).unwrap();
        let sub = CidCff::parse(out.clone()).unwrap();
        assert_eq!(sub.glyph_count(), ids.len() + 1);
        assert_eq!(sub.global_subrs.count, 0);
        assert!(sub.fonts.iter().all(|f| f.local_subrs.is_none()));
        for (new, old) in std::iter::once(&0).chain(&ids).enumerate() {
            let new = new as u16;
            assert_eq!(sub.cid(new), cff.cid(*old), "CID of glyph {old}");
            // The subset holds the flattened charstring, which flattens to itself there (so it
            // calls no subroutine).
            let flat = cff.flat(*old).unwrap();
            assert_eq!(sub.char_strings.get(&sub.data, usize::from(new)), Some(flat));
            assert_eq!(sub.flat(new).unwrap(), flat);
            let fd = |f: &CidCff, g: u16| usize::from(f.fd_select[usize::from(g)]);
            let (sf, of) = (&sub.fonts[fd(&sub, new)], &cff.fonts[fd(&cff, *old)]);
            let without =
                |d: &[DictEntry], op| d.iter().filter(|e| e.op != op).cloned().collect::<Vec<_>>();
            assert_eq!(without(&sf.dict, OP_PRIVATE), without(&of.dict, OP_PRIVATE));
            assert_eq!(without(&sf.private, OP_SUBRS), without(&of.private, OP_SUBRS));
        }
        assert!(sub.fonts.len() < cff.fonts.len(), "unused Font DICTs are dropped");
        // An independent reader (allsorts, through printpdf) sees the same CIDs.
        let map = printpdf::cff_charset_gid_to_cid_map(&out, 0).unwrap();
        for (new, old) in ids.iter().enumerate() {
            assert_eq!(map.get(&((new + 1) as u16)).copied(), cff.cid(*old));
        }
        // Same input, same bytes.
        assert_eq!(cff.subset(&ids).unwrap(), out);
    }
}
