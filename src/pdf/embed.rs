//! Embedding the face font in a PDF (ISO 32000-1 §9.6–9.10): a page's glyphs are cut out of
//! the [`FaceFont`] ([`EmbeddedFont::subset`]) and written as a Type0 font with Identity-H
//! encoding over one CIDFont, its descriptor, the font program and a `/ToUnicode` CMap so that
//! text extraction gives the characters back.
//!
//! Two subsetters: CID-keyed CFF faces (Noto Sans CJK) go through our own
//! [`crate::font::subset`] (codes are the font's CIDs, per-glyph work is done once per
//! process); anything else, or a glyph the fast path cannot follow, goes through printpdf's
//! general subsetter (codes are subset glyph ids).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use lopdf::{Dictionary, Object, ObjectId};
use sha2::{Digest, Sha256};

use super::PdfError;
use super::objects::name;
use crate::font::FaceFont;

/// `/DW` of the CID font: the advance of an ideograph, in 1/1000 em.
pub const DEFAULT_WIDTH: i64 = 1000;

/// The embedded font program and the PDF font type it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FontProgram {
    /// Bare CID-keyed CFF table (`/FontFile3 /CIDFontType0C`); codes are the font's CIDs.
    CidCff(Vec<u8>),
    /// Whole OpenType/CFF sfnt (`/FontFile3 /OpenType`); codes are subset gids.
    OpenType(Vec<u8>),
    /// TrueType (`/FontFile2`); codes are subset gids.
    TrueType(Vec<u8>),
}

impl FontProgram {
    /// The program bytes (uncompressed).
    pub fn bytes(&self) -> &[u8] {
        match self {
            FontProgram::CidCff(b) | FontProgram::OpenType(b) | FontProgram::TrueType(b) => b,
        }
    }

    /// `/Subtype` of the descendant CIDFont (§9.7.4): CFF outlines or TrueType outlines.
    pub fn cid_font_subtype(&self) -> &'static str {
        match self {
            FontProgram::CidCff(_) | FontProgram::OpenType(_) => "CIDFontType0",
            FontProgram::TrueType(_) => "CIDFontType2",
        }
    }

    /// The font descriptor key that holds the program (§9.9 Table 126).
    pub fn descriptor_key(&self) -> &'static str {
        match self {
            FontProgram::CidCff(_) | FontProgram::OpenType(_) => "FontFile3",
            FontProgram::TrueType(_) => "FontFile2",
        }
    }

    /// The program stream's dictionary before compression (§9.9 Table 127): `/Subtype` of a
    /// `/FontFile3`, `/Length1` of a `/FontFile2`.
    pub fn stream_dict(&self) -> Dictionary {
        let mut dict = Dictionary::new();
        match self {
            FontProgram::CidCff(_) => dict.set("Subtype", name("CIDFontType0C")),
            FontProgram::OpenType(_) => dict.set("Subtype", name("OpenType")),
            FontProgram::TrueType(b) => dict.set("Length1", Object::Integer(b.len() as i64)),
        }
        dict
    }
}

/// The glyphs a subset of `used` keeps besides `.notdef` (which every subset has), ascending.
pub fn subset_gids(used: &BTreeMap<u16, String>) -> Vec<u16> {
    used.keys().copied().filter(|g| *g != 0).collect()
}

/// Which subsetter [`EmbeddedFont::subset`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubsetPath {
    /// Our CID-keyed CFF subsetter when the face has CID-keyed CFF outlines, else printpdf's.
    Fast,
    /// printpdf's general subsetter, always.
    Printpdf,
}

/// A subset of the face font ready for embedding, and the glyph id → Identity-H code map of
/// the text drawn with it.
#[derive(Debug)]
pub struct EmbeddedFont {
    /// Original gid → code written in the content stream.
    codes: HashMap<u16, u16>,
    /// (code, text, width in 1/1000 em), ascending by code.
    glyphs: Vec<(u16, String, i64)>,
    program: FontProgram,
    /// The face's PostScript name without characters a PDF name would escape.
    face_name: String,
    ascent: i64,
    descent: i64,
    bbox: [i64; 4],
}

impl EmbeddedFont {
    /// Subsets `font` to the glyphs `used` (gid → text they stand for), with the subsetter
    /// `path` allows. Fails with [`PdfError::Subset`] when printpdf cannot subset the face.
    pub fn subset(
        font: &FaceFont,
        used: &BTreeMap<u16, String>,
        path: SubsetPath,
    ) -> Result<Self, PdfError> {
        let cff_subset = match path {
            SubsetPath::Fast => font.cid_cff().and_then(|cff| cff.subset(&subset_gids(used)).ok()),
            SubsetPath::Printpdf => None,
        };
        EmbeddedFont::with_cff_subset(font, used, cff_subset)
    }

    /// As [`EmbeddedFont::subset`] on the fast path, with the CID-keyed CFF subset of `used`
    /// already made (`CidCff::subset` of [`subset_gids`]), so that a page embedded in several
    /// formats subsets its font once; `None` takes printpdf's subsetter.
    pub fn with_cff_subset(
        font: &FaceFont,
        used: &BTreeMap<u16, String>,
        cff_subset: Option<Vec<u8>>,
    ) -> Result<Self, PdfError> {
        let parsed = font.parsed();
        // Fast path: CID-keyed CFF faces (Noto Sans CJK) are subset from per-glyph data kept for
        // the life of the process; codes are the original CIDs. Anything else, or a glyph the fast
        // path cannot follow, goes through printpdf's general subsetter.
        let fast = font.cid_cff().zip(cff_subset).and_then(|(cff, bytes)| {
            let mapping: Vec<(u16, u16, &String)> = used
                .iter()
                .map(|(gid, text)| cff.cid(*gid).map(|cid| (*gid, cid, text)))
                .collect::<Option<_>>()?;
            Some((FontProgram::CidCff(bytes), mapping))
        });
        let (program, mapping): (FontProgram, Vec<(u16, u16, &String)>) = match fast {
            Some(f) => f,
            None => {
                let subset = printpdf::subset_font(parsed, used)
                    .map_err(|reason| PdfError::Subset { reason })?;
                let cid_map = printpdf::cff_charset_gid_to_cid_map(&subset.bytes, 0);
                let program = match printpdf::extract_cid_keyed_cff(&subset.bytes, 0) {
                    Some(cff) => FontProgram::CidCff(cff),
                    None if subset.bytes.starts_with(b"OTTO") => {
                        FontProgram::OpenType(subset.bytes)
                    }
                    None => FontProgram::TrueType(subset.bytes),
                };
                let mapping = subset
                    .glyph_mapping
                    .iter()
                    .filter_map(|(orig, (new_gid, _))| {
                        let code = match (&program, &cid_map) {
                            (FontProgram::CidCff(_), Some(m)) => {
                                m.get(new_gid).copied().unwrap_or(*new_gid)
                            }
                            _ => *new_gid,
                        };
                        used.get(orig).map(|text| (*orig, code, text))
                    })
                    .collect();
                (program, mapping)
            }
        };
        // `FaceFont` refuses a face with 0 units per em; `max` keeps the division safe anyway.
        let upm = i64::from(font.units_per_em().max(1));
        let scale = |v: i64| v * 1000 / upm;
        let mut codes = HashMap::with_capacity(used.len());
        let mut glyphs = Vec::with_capacity(used.len());
        for (orig, code, text) in mapping {
            codes.insert(orig, code);
            let advance = scale(i64::from(parsed.get_horizontal_advance(orig)));
            glyphs.push((code, text.clone(), advance));
        }
        glyphs.sort_by_key(|g| g.0);
        let m = &parsed.pdf_font_metrics;
        Ok(EmbeddedFont {
            codes,
            glyphs,
            program,
            face_name: font.name().replace([' ', '/', '(', ')'], ""),
            ascent: scale(parsed.font_metrics.ascent.round() as i64),
            descent: scale(parsed.font_metrics.descent.round() as i64),
            bbox: [
                scale(i64::from(m.x_min)),
                scale(i64::from(m.y_min)),
                scale(i64::from(m.x_max)),
                scale(i64::from(m.y_max)),
            ],
        })
    }

    /// Original glyph id → the code that draws it with this font.
    pub fn codes(&self) -> &HashMap<u16, u16> {
        &self.codes
    }

    /// The code drawing glyph `gid`, or 0 (`.notdef`) when the subset lacks it.
    pub fn code(&self, gid: u16) -> u16 {
        self.codes.get(&gid).copied().unwrap_or(0)
    }

    /// (code, text, width in 1/1000 em) of every glyph, ascending by code.
    pub fn glyphs(&self) -> &[(u16, String, i64)] {
        &self.glyphs
    }

    /// The font program.
    pub fn program(&self) -> &FontProgram {
        &self.program
    }

    /// Ascender, in 1/1000 em.
    pub fn ascent(&self) -> i64 {
        self.ascent
    }

    /// Descender (negative), in 1/1000 em.
    pub fn descent(&self) -> i64 {
        self.descent
    }

    /// The face's bounding box (xmin, ymin, xmax, ymax), in 1/1000 em.
    pub fn bbox(&self) -> [i64; 4] {
        self.bbox
    }

    /// A subset tag (ISO 32000-1 §9.6.4): six capitals derived from the glyph set, so that the
    /// same glyphs give the same tag.
    pub fn hashed_subset_tag(&self) -> String {
        let mut h = Sha256::new();
        for (code, text, _) in &self.glyphs {
            h.update(code.to_be_bytes());
            h.update(text.as_bytes());
        }
        h.finalize().iter().take(6).map(|b| char::from(b'A' + b % 26)).collect()
    }

    /// `/BaseFont` of a subset (§9.6.4): `tag+PostScriptName`.
    pub fn base_font(&self, tag: &str) -> String {
        format!("{tag}+{}", self.face_name)
    }

    /// `/W` array (§9.7.4.3): runs of consecutive codes share one width list; glyphs of the
    /// default width ([`DEFAULT_WIDTH`], every ideograph) are left out.
    pub fn widths(&self) -> Vec<Object> {
        let mut out = Vec::new();
        let mut start: Option<u16> = None;
        let mut prev = 0u16;
        let mut run: Vec<Object> = Vec::new();
        for (code, _, w) in self.glyphs.iter().filter(|g| g.2 != DEFAULT_WIDTH) {
            match start {
                Some(_) if *code == prev.wrapping_add(1) => run.push(Object::Integer(*w)),
                _ => {
                    if let Some(s) = start {
                        out.push(Object::Integer(i64::from(s)));
                        out.push(Object::Array(std::mem::take(&mut run)));
                    }
                    start = Some(*code);
                    run.push(Object::Integer(*w));
                }
            }
            prev = *code;
        }
        if let Some(s) = start {
            out.push(Object::Integer(i64::from(s)));
            out.push(Object::Array(run));
        }
        out
    }

    /// The `/ToUnicode` CMap (§9.10.3) of this subset.
    pub fn to_unicode_cmap(&self) -> Vec<u8> {
        to_unicode_cmap(&self.glyphs)
    }
}

/// A `/ToUnicode` CMap for an Identity-H font: each (code, text, width) glyph maps its 2-byte
/// code back to its text, so that text extraction gives the characters back.
pub fn to_unicode_cmap(glyphs: &[(u16, String, i64)]) -> Vec<u8> {
    let mut s = String::with_capacity(256 + glyphs.len() * 16);
    s.push_str(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for chunk in glyphs.chunks(100) {
        let _ = writeln!(s, "{} beginbfchar", chunk.len());
        for (code, text, _) in chunk {
            let _ = write!(s, "<{code:04X}> <");
            for unit in text.encode_utf16() {
                let _ = write!(s, "{unit:04X}");
            }
            s.push_str(">\n");
        }
        s.push_str("endbfchar\n");
    }
    s.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    s.into_bytes()
}

/// The Type0 font (§9.7.6): Identity-H over the CIDFont `descendant`, with its `/ToUnicode`.
pub fn type0_font(base_font: &str, descendant: ObjectId, to_unicode: ObjectId) -> Dictionary {
    Dictionary::from_iter(vec![
        ("Type", name("Font")),
        ("Subtype", name("Type0")),
        ("BaseFont", name(base_font)),
        ("Encoding", name("Identity-H")),
        ("DescendantFonts", Object::Array(vec![Object::Reference(descendant)])),
        ("ToUnicode", Object::Reference(to_unicode)),
    ])
}

/// The descendant CIDFont (§9.7.4) of `program`'s type, `Adobe-Identity-0`, with `/DW`
/// [`DEFAULT_WIDTH`] and the `/W` array `widths`; a TrueType one maps CIDs to glyphs by
/// identity.
pub fn cid_font(
    base_font: &str,
    program: &FontProgram,
    descriptor: ObjectId,
    widths: Vec<Object>,
) -> Dictionary {
    let subtype = program.cid_font_subtype();
    let mut cid_font = Dictionary::from_iter(vec![
        ("Type", name("Font")),
        ("Subtype", name(subtype)),
        ("BaseFont", name(base_font)),
        (
            "CIDSystemInfo",
            Object::Dictionary(Dictionary::from_iter(vec![
                ("Registry", Object::string_literal("Adobe")),
                ("Ordering", Object::string_literal("Identity")),
                ("Supplement", Object::Integer(0)),
            ])),
        ),
        ("FontDescriptor", Object::Reference(descriptor)),
        ("DW", Object::Integer(DEFAULT_WIDTH)),
        ("W", Object::Array(widths)),
    ]);
    if subtype == "CIDFontType2" {
        cid_font.set("CIDToGIDMap", name("Identity"));
    }
    cid_font
}

/// Vertical metrics and box of a font descriptor, in 1/1000 em.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorMetrics {
    pub bbox: [i64; 4],
    pub ascent: i64,
    pub descent: i64,
}

/// The font descriptor (§9.8): a symbolic, upright face whose program is `font_file`.
pub fn font_descriptor(
    base_font: &str,
    program: &FontProgram,
    metrics: DescriptorMetrics,
    font_file: ObjectId,
) -> Dictionary {
    Dictionary::from_iter(vec![
        ("Type", name("FontDescriptor")),
        ("FontName", name(base_font)),
        ("Flags", Object::Integer(4)),
        ("FontBBox", Object::Array(metrics.bbox.iter().map(|v| Object::Integer(*v)).collect())),
        ("ItalicAngle", Object::Integer(0)),
        ("Ascent", Object::Integer(metrics.ascent)),
        ("Descent", Object::Integer(metrics.descent)),
        ("CapHeight", Object::Integer(metrics.ascent)),
        ("StemV", Object::Integer(80)),
        (program.descriptor_key(), Object::Reference(font_file)),
    ])
}
