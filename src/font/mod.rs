//! The CJK face font (字体): located and parsed once per process, then shared read-only by every
//! render thread. It answers the questions layout and embedding ask — which glyph draws a
//! character, how wide it is, what the face's metrics are — and owns the CID-keyed CFF subsetter
//! ([`subset`]) that cuts a page's glyphs out of it. Nothing here knows about PDF (or OFD):
//! the writers that embed the face sit above it.
//!
//! Search order when nothing is configured: Noto Sans CJK SC (`NotoSansCJK-Regular.ttc`, face 2 =
//! Simplified Chinese, from `fonts-noto-cjk`), then WenQuanYi Micro Hei (`wqy-microhei.ttc`,
//! face 0). `ELICENCE_FONT=PATH[#INDEX]` overrides the search.

pub mod sfnt;
pub mod subset;

use std::path::{Path, PathBuf};

use subset::{CidCff, cff_table};

/// Why the face font could not be located or loaded. Each variant keeps the facts (paths, spec,
/// face index); the `Display` text is built from them.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    /// No usable CJK font at any of the searched paths.
    #[error(
        "no CJK font found (tried: {}); install one with `apt-get install fonts-noto-cjk` \
         or point ELICENCE_FONT at a font file (PATH[#INDEX])",
        display_paths(.tried)
    )]
    NotFound { tried: Vec<PathBuf> },

    /// `ELICENCE_FONT` is not `PATH` or `PATH#INDEX`.
    #[error("ELICENCE_FONT={spec:?} is not PATH or PATH#INDEX")]
    Spec { spec: String },

    /// The font file exists but face `index` could not be parsed.
    #[error("{}: face {index} is not a usable font", path.display())]
    Parse { path: PathBuf, index: usize },

    /// Reading the font file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Environment variable that overrides the font search: `PATH` or `PATH#INDEX`.
pub const FONT_ENV: &str = "ELICENCE_FONT";

/// Fonts tried in order when `ELICENCE_FONT` is unset: (path, face index).
pub const DEFAULT_FONTS: [(&str, usize); 2] = [
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
];

/// Character ranges whose glyphs are looked up once at load time, so that line wrapping and
/// text placement never go through the (slow) cmap/hmtx parsers: ASCII, CJK symbols and
/// punctuation, CJK unified ideographs, full-width forms. Anything else (e.g. 䶮 in extension A)
/// takes the slow path.
const CACHED_RANGES: [(u32, u32); 5] =
    [(0x20, 0x7E), (0xB7, 0xB7), (0x2010, 0x2027), (0x3000, 0x303F), (0x4E00, 0x9FFF)];
const CACHED_RANGE_FULLWIDTH: (u32, u32) = (0xFF00, 0xFFEF);

/// A glyph of the face font: its glyph id and advance width in font units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyph {
    pub gid: u16,
    pub advance: u16,
}

/// The parsed face font. Cheap to share (`Arc<FaceFont>`); `Send + Sync`.
pub struct FaceFont {
    parsed: printpdf::ParsedFont,
    path: PathBuf,
    index: usize,
    units_per_em: u16,
    name: String,
    /// Glyphs of the [`CACHED_RANGES`], indexed by code point (all below U+10000); gid 0 where
    /// the character is outside them or the font lacks it.
    cache: Vec<Glyph>,
    /// The face's CID-keyed `CFF ` table, parsed for fast per-page subsetting; `None` for
    /// TrueType and name-keyed CFF faces (those are subset by printpdf).
    cid_cff: Option<CidCff>,
}

impl std::fmt::Debug for FaceFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceFont")
            .field("path", &self.path)
            .field("index", &self.index)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Parse `PATH` or `PATH#INDEX` (the `ELICENCE_FONT` syntax).
pub fn parse_font_spec(spec: &str) -> Result<(PathBuf, usize), FontError> {
    let bad = || FontError::Spec { spec: spec.to_string() };
    let spec_trim = spec.trim();
    if spec_trim.is_empty() {
        return Err(bad());
    }
    match spec_trim.rsplit_once('#') {
        Some((path, index)) => {
            let index: usize = index.parse().map_err(|_| bad())?;
            if path.is_empty() {
                return Err(bad());
            }
            Ok((PathBuf::from(path), index))
        }
        None => Ok((PathBuf::from(spec_trim), 0)),
    }
}

impl FaceFont {
    /// Locate and load the face font: `ELICENCE_FONT` when set, else [`DEFAULT_FONTS`] in order.
    /// Fails with [`FontError::NotFound`] listing every path tried.
    pub fn load_default() -> Result<Self, FontError> {
        let env = std::env::var(FONT_ENV).ok();
        Self::locate(env.as_deref())
    }

    /// Like [`FaceFont::load_default`] with the override passed in instead of read from the
    /// environment: `Some("PATH[#INDEX]")` loads exactly that font.
    pub fn locate(spec: Option<&str>) -> Result<Self, FontError> {
        let (path, index) = Self::find(spec)?;
        Self::load(&path, index)
    }

    /// Where [`FaceFont::load_default`] would load the face font from (`ELICENCE_FONT`, else
    /// the first of [`DEFAULT_FONTS`] present), without reading it: parsing a CJK font takes
    /// about 90 MB, which a server that rarely draws should spend only when it does.
    pub fn find_default() -> Result<(PathBuf, usize), FontError> {
        Self::find(std::env::var(FONT_ENV).ok().as_deref())
    }

    fn find(spec: Option<&str>) -> Result<(PathBuf, usize), FontError> {
        if let Some(spec) = spec.filter(|s| !s.trim().is_empty()) {
            let (path, index) = parse_font_spec(spec)?;
            if !path.is_file() {
                return Err(FontError::NotFound { tried: vec![path] });
            }
            return Ok((path, index));
        }
        let mut tried = Vec::new();
        for (path, index) in DEFAULT_FONTS {
            let path = Path::new(path);
            if path.is_file() {
                return Ok((path.to_path_buf(), index));
            }
            tried.push(path.to_path_buf());
        }
        Err(FontError::NotFound { tried })
    }

    /// Load face `index` of the font file at `path` (a `.ttc` collection or a single `.ttf`/`.otf`).
    pub fn load(path: &Path, index: usize) -> Result<Self, FontError> {
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => FontError::NotFound { tried: vec![path.to_path_buf()] },
            _ => FontError::Io { path: path.to_path_buf(), source },
        })?;
        Self::from_bytes(&bytes, path, index)
    }

    /// Parse a font already in memory; `path` is only kept for messages.
    pub fn from_bytes(bytes: &[u8], path: &Path, index: usize) -> Result<Self, FontError> {
        let parse_err = || FontError::Parse { path: path.to_path_buf(), index };
        let mut warnings = Vec::new();
        let parsed =
            printpdf::ParsedFont::from_bytes(bytes, index, &mut warnings).ok_or_else(parse_err)?;
        let units_per_em = parsed.pdf_font_metrics.units_per_em;
        if units_per_em == 0 || parsed.cmap_subtable.is_none() {
            return Err(parse_err());
        }
        let name = parsed.font_name.clone().unwrap_or_else(|| "CJKFont".to_string());
        let mut font = FaceFont {
            parsed,
            path: path.to_path_buf(),
            index,
            units_per_em,
            name,
            cache: Vec::new(),
            cid_cff: cff_table(bytes, index).and_then(|t| CidCff::parse(t.to_vec()).ok()),
        };
        let ranges = CACHED_RANGES.into_iter().chain([CACHED_RANGE_FULLWIDTH]);
        let end = ranges.clone().map(|(_, hi)| hi as usize + 1).max().unwrap_or(0);
        let mut cache = vec![Glyph { gid: 0, advance: 0 }; end];
        for (lo, hi) in ranges {
            for cp in lo..=hi {
                if let Some(c) = char::from_u32(cp)
                    && let Some(g) = font.lookup_uncached(c)
                    && let Some(slot) = cache.get_mut(cp as usize)
                {
                    *slot = g;
                }
            }
        }
        font.cache = cache;
        Ok(font)
    }

    fn lookup_uncached(&self, c: char) -> Option<Glyph> {
        let gid = self.parsed.lookup_glyph_index(c as u32)?;
        if gid == 0 {
            return None;
        }
        Some(Glyph { gid, advance: self.parsed.get_horizontal_advance(gid) })
    }

    /// The glyph drawing `c`, or `None` when the font lacks it.
    pub fn glyph(&self, c: char) -> Option<Glyph> {
        match self.cache.get(c as usize) {
            Some(g) if g.gid != 0 => Some(*g),
            _ => self.lookup_uncached(c),
        }
    }

    /// Advance width of `c` in points at `size_pt`; 0 for characters the font lacks.
    pub fn advance_pt(&self, c: char, size_pt: f32) -> f32 {
        self.glyph(c).map_or(0.0, |g| self.units_to_pt(g.advance, size_pt))
    }

    /// Width of `text` in points at `size_pt` (sum of advances, no kerning: CJK text has none).
    pub fn text_width_pt(&self, text: &str, size_pt: f32) -> f32 {
        text.chars().map(|c| self.advance_pt(c, size_pt)).sum()
    }

    /// Font units → points at `size_pt`.
    pub fn units_to_pt(&self, units: u16, size_pt: f32) -> f32 {
        f32::from(units) * size_pt / f32::from(self.units_per_em)
    }

    /// Ascender height as a fraction of the em (for baseline placement).
    pub fn ascent_em(&self) -> f32 {
        self.parsed.font_metrics.ascent / f32::from(self.units_per_em)
    }

    /// Descender depth as a (negative) fraction of the em.
    pub fn descent_em(&self) -> f32 {
        self.parsed.font_metrics.descent / f32::from(self.units_per_em)
    }

    pub fn units_per_em(&self) -> u16 {
        self.units_per_em
    }

    /// PostScript name of the face, e.g. `NotoSansCJKsc-Regular`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the font was loaded from, and which face.
    pub fn source(&self) -> (&Path, usize) {
        (&self.path, self.index)
    }

    pub(crate) fn parsed(&self) -> &printpdf::ParsedFont {
        &self.parsed
    }

    /// The parsed CID-keyed CFF outlines, when the face has them.
    pub(crate) fn cid_cff(&self) -> Option<&CidCff> {
        self.cid_cff.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn face_font_is_send_and_sync() {
        assert_send_sync::<FaceFont>();
    }

    #[test]
    fn font_not_found_message_says_how_to_install() {
        let e = FontError::NotFound { tried: vec![PathBuf::from("/a.ttc")] };
        let msg = e.to_string();
        assert!(msg.contains("apt-get install fonts-noto-cjk"), "{msg}");
        assert!(msg.contains("/a.ttc"), "{msg}");
    }

    #[test]
    fn font_spec_parses_path_and_index() {
        assert_eq!(parse_font_spec("/x/y.ttc#2").unwrap(), (PathBuf::from("/x/y.ttc"), 2));
        assert_eq!(parse_font_spec("/x/y.ttf").unwrap(), (PathBuf::from("/x/y.ttf"), 0));
        assert!(matches!(parse_font_spec("/x/y.ttc#two"), Err(FontError::Spec { .. })));
        assert!(matches!(parse_font_spec("#1"), Err(FontError::Spec { .. })));
    }

    #[test]
    fn missing_font_lists_what_was_tried() {
        let err = FaceFont::locate(Some("/nonexistent/font.ttc#2")).unwrap_err();
        match err {
            FontError::NotFound { tried } => {
                assert_eq!(tried, vec![PathBuf::from("/nonexistent/font.ttc")])
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn default_font_has_cjk_digits_and_rare_characters() {
        let Ok(font) = FaceFont::locate(None) else {
            eprintln!("no CJK font installed; skipping");
            return;
        };
        for c in "食品经营许可证0123456789JY年月日：（）".chars() {
            assert!(font.glyph(c).is_some(), "{c}");
        }
        // A CJK ideograph is one em wide; a digit is narrower.
        let cjk = font.advance_pt('食', 10.0);
        assert!((cjk - 10.0).abs() < 0.5, "{cjk}");
        assert!(font.advance_pt('1', 10.0) < cjk);
        if font.name().starts_with("NotoSansCJK") {
            assert!(font.glyph('䶮').is_some());
        }
    }
}
