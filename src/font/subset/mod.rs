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

mod charstring;
mod tables;

use std::sync::OnceLock;

use charstring::Flatten;
use tables::{
    DictEntry, Index, be, index_len, malformed, parse_charset, parse_dict, parse_fd_select,
    write_dict, write_index,
};

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
    use crate::font::FaceFont;

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
