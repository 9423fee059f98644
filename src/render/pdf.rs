//! The PDF licence face (证照版式文件): one A4 page per licence, laid out by the type's
//! [`Layout`], with an embedded subset of the CJK face font, the verification QR code drawn as
//! vector rectangles and the seal image.
//!
//! This module owns the page: text shaped and placed from the layout, the content stream, the
//! page's objects and their fixed numbers. The file around it — font embedding, compression,
//! the writer with its xref table — is [`crate::pdf`]'s, and keeps the output under control:
//! - deterministic: objects are numbered in a fixed order, the subset tag and the trailer `/ID`
//!   are hashes of the content, the dates are the `created` argument ⇒ the same licence,
//!   identifier and time give byte-identical files;
//! - plain objects and a classic xref table (no object streams), PDF 1.7, so that a signature
//!   can be appended as an incremental update;
//! - small: one subset font (Identity-H, `/ToUnicode` for text extraction), Flate-compressed
//!   streams, seal images decoded and compressed once at start-up.
//!
//! Coordinates in layouts are millimetres from the top-left corner; PDF user space is points
//! from the bottom-left.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use lopdf::{Dictionary, Object, Stream};

use crate::font::FaceFont;
use crate::licence::Licence;
use crate::pdf::compress::{FONT_PROGRAM_LEVEL, IMAGE_LEVEL, TEXT_LEVEL, compressed, zlib};
use crate::pdf::embed::{self, DescriptorMetrics, subset_gids};
use crate::pdf::objects::{date, name, utf16_text_string};
use crate::pdf::{DocumentRoots, EmbeddedFont, RenderedPdf, write_file};
use crate::render::layout::{FieldBox, Layout, PAGE_HEIGHT_MM, PAGE_WIDTH_MM};
use crate::render::ofd::SharedFile;
use crate::render::qr::QrMatrix;
use crate::render::wrap::{run_width, wrap};
use crate::render::{RenderError, chinese_date, chinese_valid_to};

pub(crate) const PT_PER_MM: f32 = 72.0 / 25.4;
const PAGE_W_PT: f32 = PAGE_WIDTH_MM * PT_PER_MM;
pub(crate) const PAGE_H_PT: f32 = PAGE_HEIGHT_MM * PT_PER_MM;
/// Line pitch as a multiple of the font size.
const LINE_PITCH: f32 = 1.45;
/// Top of the CJK ideographic em box above the baseline, in em (ideographic box −0.12…0.88).
const IDEO_TOP_EM: f32 = 0.88;
/// "One step" of shrinking when a value overflows its box, in points.
const SHRINK_STEP_PT: f32 = 1.5;
/// Smallest size a label or issuer line is shrunk to before giving up.
const MIN_SHRINK_PT: f32 = 6.0;
/// Space between the label column and the value, in mm.
const LABEL_GAP_MM: f32 = 2.0;
/// Quiet zone around the QR code, in modules (ISO/IEC 18004 asks for 4).
pub(crate) const QR_QUIET: usize = 4;
/// Resource names.
const FONT_RES: &str = "F1";
const SEAL_RES: &str = "Im1";
/// Text colour (near-black) and frame colour (dark bronze).
const TEXT_GRAY: &str = "0.08 g";
const FRAME_RGB: &str = "0.55 0.38 0.12 RG";

fn mm(v: f32) -> f32 {
    v * PT_PER_MM
}

/// PDF y (points from the bottom) of a layout y (mm from the top).
fn y_pt(y_mm: f32) -> f32 {
    PAGE_H_PT - mm(y_mm)
}

/// Decoded seal picture, compressed once.
struct SealImage {
    width: u32,
    height: u32,
    rgb_deflated: Vec<u8>,
    alpha_deflated: Option<Vec<u8>>,
}

/// A layout plus what can be computed once per type: the frame and the title.
struct Prepared {
    layout: Layout,
    static_ops: String,
    static_texts: Vec<TextRun>,
    seal: Option<usize>,
    /// The OFD's font files of the label glyphs of this layout's faces, by glyph set (see
    /// [`Face::label_font_file`]): one entry while every face has the same labels.
    label_fonts: RwLock<HashMap<Vec<u16>, Arc<SharedFile>>>,
}

/// How many label fonts a layout keeps (faces of one type share their labels, so one is the
/// rule; the bound keeps memory flat whatever the input).
const LABEL_FONTS_KEPT: usize = 16;

/// Glyph id → the text it stands for, of every glyph of `runs`.
pub(crate) fn glyphs_of<'a>(runs: impl Iterator<Item = &'a TextRun>) -> BTreeMap<u16, String> {
    let mut used = BTreeMap::new();
    for run in runs {
        for (gid, ch) in &run.glyphs {
            used.entry(*gid).or_insert_with(|| ch.to_string());
        }
    }
    used
}

/// One line of positioned text: `x` and the baseline `y` in PDF points (from the bottom-left),
/// the size in points.
#[derive(Debug, Clone)]
pub(crate) struct TextRun {
    pub(crate) x: f32,
    pub(crate) y: f32,
    pub(crate) size: f32,
    /// Extra character spacing in points (`Tc`).
    pub(crate) spacing: f32,
    pub(crate) glyphs: Vec<(u16, char)>,
    /// The layout's own words (its title, caption or a box's label), the same on every face of
    /// the layout; `false` for a licence's values.
    pub(crate) label: bool,
}

/// The prepared layout a face uses: its type's, or one made for a type without a layout file.
enum PreparedRef<'a> {
    Shared(&'a Prepared),
    Own(Box<Prepared>),
}

impl std::ops::Deref for PreparedRef<'_> {
    type Target = Prepared;
    fn deref(&self) -> &Prepared {
        match self {
            PreparedRef::Shared(p) => p,
            PreparedRef::Own(p) => p,
        }
    }
}

/// One licence's face laid out once for every face format (the PDF here, the OFD in
/// [`super::ofd`]): the layout, every line of text (static and licence-specific), the QR code,
/// the glyph set and, for CID-keyed CFF faces, the subset font program both formats embed. Made
/// by [`PdfRenderer::lay_out`]; a licence written as PDF and OFD is laid out, encoded and
/// subset once.
pub struct Face<'a> {
    prepared: PreparedRef<'a>,
    /// The licence's own lines (the layout's static lines are in `prepared`).
    licence_texts: Vec<TextRun>,
    qr: QrMatrix,
    used: BTreeMap<u16, String>,
    cff_subset: Option<Vec<u8>>,
    title: String,
}

impl Face<'_> {
    /// The layout the face follows.
    pub(crate) fn layout(&self) -> &Layout {
        &self.prepared.layout
    }

    /// Every line of text: the layout's static lines, then the licence's.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &TextRun> {
        self.prepared.static_texts.iter().chain(&self.licence_texts)
    }

    /// The OFD's font file of the face's label glyphs (every glyph of its
    /// [`TextRun::label`] lines), shared by every face of the layout with the same labels:
    /// `make` runs the first time the layout's faces need that glyph set. `None` when the face
    /// has no labels or `make` gives none.
    pub(crate) fn label_font_file(
        &self,
        make: impl FnOnce(&BTreeMap<u16, String>) -> Option<SharedFile>,
    ) -> Option<Arc<SharedFile>> {
        let used = glyphs_of(self.texts().filter(|run| run.label));
        if used.is_empty() {
            return None;
        }
        let key: Vec<u16> = used.keys().copied().collect();
        let cache = &self.prepared.label_fonts;
        // A poisoned lock only costs the cache: the file is made again.
        if let Some(file) = cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Some(file);
        }
        let file = Arc::new(make(&used)?);
        if let Ok(mut c) = cache.write()
            && c.len() < LABEL_FONTS_KEPT
        {
            c.entry(key).or_insert_with(|| Arc::clone(&file));
        }
        Some(file)
    }

    /// The verification QR code.
    pub(crate) fn qr(&self) -> &QrMatrix {
        &self.qr
    }

    /// Glyph id → the text it stands for, of every glyph on the page.
    pub(crate) fn used(&self) -> &BTreeMap<u16, String> {
        &self.used
    }

    /// The CID-keyed CFF subset of [`Face::used`], when the face font has CID-keyed CFF
    /// outlines and every glyph could be subset.
    pub(crate) fn cff_subset(&self) -> Option<&[u8]> {
        self.cff_subset.as_deref()
    }
}

/// Renders licence faces. Build once (font, layouts and seal images are loaded here), then call
/// [`PdfRenderer::render`] from any number of threads.
pub struct PdfRenderer {
    font: Arc<FaceFont>,
    layouts: HashMap<String, Prepared>,
    seals: Vec<SealImage>,
}

impl std::fmt::Debug for PdfRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<&String> = self.layouts.keys().collect();
        types.sort();
        f.debug_struct("PdfRenderer")
            .field("font", &self.font)
            .field("layouts", &types)
            .finish_non_exhaustive()
    }
}

impl PdfRenderer {
    /// Prepare the renderer: lay out each layout's static content and decode its seal PNG
    /// (the only file access). Fails when a seal cannot be read or decoded, when the font lacks
    /// a glyph of a title, or when two layouts claim the same type.
    pub fn new(font: Arc<FaceFont>, layouts: Vec<Layout>) -> Result<Self, RenderError> {
        let mut seals = Vec::new();
        let mut seal_index: HashMap<PathBuf, usize> = HashMap::new();
        let mut prepared: HashMap<String, Prepared> = HashMap::new();
        for layout in layouts {
            let seal = match &layout.seal {
                Some(spot) => Some(match seal_index.get(&spot.path) {
                    Some(i) => *i,
                    None => {
                        seals.push(load_seal(&spot.path)?);
                        seal_index.insert(spot.path.clone(), seals.len() - 1);
                        seals.len() - 1
                    }
                }),
                None => None,
            };
            let p = prepare(&font, layout, seal)?;
            if let Some(first) = prepared.get(&p.layout.type_name) {
                return Err(RenderError::DuplicateLayout {
                    file: p.layout.source.clone(),
                    first: first.layout.source.clone(),
                    type_name: p.layout.type_name.clone(),
                });
            }
            prepared.insert(p.layout.type_name.clone(), p);
        }
        Ok(PdfRenderer { font, layouts: prepared, seals })
    }

    /// The layout used for `type_name`, if one was loaded (else [`Layout::default_for`] is used).
    pub fn layout_for(&self, type_name: &str) -> Option<&Layout> {
        self.layouts.get(type_name).map(|p| &p.layout)
    }

    /// The face font.
    pub fn font(&self) -> &FaceFont {
        &self.font
    }

    /// Render the licence face as an unsigned PDF.
    ///
    /// `identifier` is the 证照标识 printed on the face, `qr_payload` the string encoded in the QR
    /// code (see [`crate::render::qr::qr_payload`]), `created` the document creation time written
    /// into the metadata. Same arguments ⇒ same bytes. Fails with [`RenderError::Overflow`] when
    /// a value does not fit its box even one font step smaller, and with
    /// [`RenderError::MissingGlyph`] when the font cannot draw a character.
    pub fn render(
        &self,
        licence: &Licence,
        identifier: &str,
        qr_payload: &str,
        created: DateTime<Utc>,
    ) -> Result<Vec<u8>, RenderError> {
        self.render_signable(licence, identifier, qr_payload, created).map(RenderedPdf::into_bytes)
    }

    /// [`PdfRenderer::render`], returning the same bytes together with where the catalog, the
    /// page and the cross-reference table are ([`RenderedPdf`]), so that a signer can append its
    /// signature as an incremental update without parsing them.
    pub fn render_signable(
        &self,
        licence: &Licence,
        identifier: &str,
        qr_payload: &str,
        created: DateTime<Utc>,
    ) -> Result<RenderedPdf, RenderError> {
        self.render_face(&self.lay_out(licence, identifier, qr_payload)?, created)
    }

    /// Lays out the face of `licence` once, for [`PdfRenderer::render_face`] and the OFD
    /// ([`super::ofd::render_ofd_face`]): every line of text placed, the QR code of
    /// `qr_payload` encoded, the glyph set collected and, for a CID-keyed CFF face, subset.
    /// Fails as [`PdfRenderer::render`] does on overflow or a missing glyph.
    pub fn lay_out(
        &self,
        licence: &Licence,
        identifier: &str,
        qr_payload: &str,
    ) -> Result<Face<'_>, RenderError> {
        let prepared = match self.layouts.get(&licence.type_name) {
            Some(p) => PreparedRef::Shared(p),
            None => {
                let layout = Layout::default_for(&licence.type_name, &licence.fields);
                PreparedRef::Own(Box::new(prepare(&self.font, layout, None)?))
            }
        };
        let mut page = PageBuilder { font: &self.font, texts: Vec::with_capacity(64) };
        page.licence_texts(&prepared.layout, licence, identifier)?;
        let qr = QrMatrix::encode(qr_payload)?;
        let used = glyphs_of(prepared.static_texts.iter().chain(&page.texts));
        let cff_subset = self.font.cid_cff().and_then(|cff| cff.subset(&subset_gids(&used)).ok());
        let title = format!("{} {}", licence.type_name, licence.printed_no);
        Ok(Face { prepared, licence_texts: page.texts, qr, used, cff_subset, title })
    }

    /// The PDF of a face laid out by [`PdfRenderer::lay_out`] (see
    /// [`PdfRenderer::render_signable`]); `created` is the document creation time.
    pub fn render_face(
        &self,
        face: &Face<'_>,
        created: DateTime<Utc>,
    ) -> Result<RenderedPdf, RenderError> {
        let font = EmbeddedFont::with_cff_subset(&self.font, &face.used, face.cff_subset.clone())?;
        self.write_face(face, &font, created)
    }

    /// [`PdfRenderer::render`] with printpdf's font subsetter (the fast one's reference).
    #[cfg(test)]
    fn render_printpdf_subset(
        &self,
        licence: &Licence,
        identifier: &str,
        qr_payload: &str,
        created: DateTime<Utc>,
    ) -> Result<RenderedPdf, RenderError> {
        let face = self.lay_out(licence, identifier, qr_payload)?;
        let font = EmbeddedFont::subset(&self.font, &face.used, crate::pdf::SubsetPath::Printpdf)?;
        self.write_face(&face, &font, created)
    }

    fn write_face(
        &self,
        face: &Face<'_>,
        font: &EmbeddedFont,
        created: DateTime<Utc>,
    ) -> Result<RenderedPdf, RenderError> {
        let prepared = &*face.prepared;
        let seal = prepared.seal.and_then(|i| self.seals.get(i));
        let mut content = String::with_capacity(16 * 1024);
        content.push_str(&prepared.static_ops);
        content.push_str(TEXT_GRAY);
        content.push('\n');
        for run in face.texts() {
            write_text_run(&mut content, run, font.codes());
        }
        write_qr(&mut content, &prepared.layout, &face.qr);
        if let Some(seal) = seal {
            write_seal(&mut content, &prepared.layout, seal);
        }
        assemble(font, content.into_bytes(), seal, &face.title, created)
    }
}

/// Lay out the static part of a layout once.
fn prepare(font: &FaceFont, layout: Layout, seal: Option<usize>) -> Result<Prepared, RenderError> {
    let mut static_ops = String::new();
    if layout.frame {
        // Double border: a heavy outer rule and a thin inner one.
        let _ = writeln!(
            static_ops,
            "q {FRAME_RGB} 2.2 w {} {} {} {} re S 0.6 w {} {} {} {} re S Q",
            num(mm(10.0)),
            num(mm(10.0)),
            num(PAGE_W_PT - mm(20.0)),
            num(PAGE_H_PT - mm(20.0)),
            num(mm(12.5)),
            num(mm(12.5)),
            num(PAGE_W_PT - mm(25.0)),
            num(PAGE_H_PT - mm(25.0)),
        );
    }
    let mut b = PageBuilder { font, texts: Vec::new() };
    let title = layout.title.text.clone().unwrap_or_else(|| layout.type_name.clone());
    let size = layout.title.size;
    let glyphs = b.shape("title", &title)?;
    let spacing = layout.title.spacing * size;
    let width = run_width(font, &glyphs, size, spacing);
    if width > PAGE_W_PT - mm(30.0) {
        return Err(RenderError::Overflow { field: "title".into() });
    }
    b.texts.push(TextRun {
        x: (PAGE_W_PT - width) / 2.0,
        y: y_pt(layout.title.y) - IDEO_TOP_EM * size,
        size,
        spacing,
        glyphs,
        label: true,
    });
    if let Some(caption) = &layout.qr.caption {
        let size = 7.0;
        let glyphs = b.shape("qr.caption", caption)?;
        let w = run_width(font, &glyphs, size, 0.0);
        b.texts.push(TextRun {
            x: mm(layout.qr.x + layout.qr.size / 2.0) - w / 2.0,
            y: y_pt(layout.qr.y + layout.qr.size) - IDEO_TOP_EM * size,
            size,
            spacing: 0.0,
            glyphs,
            label: true,
        });
    }
    Ok(Prepared {
        layout,
        static_ops,
        static_texts: b.texts,
        seal,
        label_fonts: RwLock::new(HashMap::new()),
    })
}
struct PageBuilder<'a> {
    font: &'a FaceFont,
    texts: Vec<TextRun>,
}

impl PageBuilder<'_> {
    /// Map text to glyphs; control characters become spaces. Fails on a character the font
    /// cannot draw.
    fn shape(&self, field: &str, text: &str) -> Result<Vec<(u16, char)>, RenderError> {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .map(|c| match self.font.glyph(c) {
                Some(g) => Ok((g.gid, c)),
                None => Err(RenderError::MissingGlyph { field: field.to_string(), ch: c }),
            })
            .collect()
    }

    fn push_line(&mut self, x: f32, top_pt: f32, size: f32, glyphs: Vec<(u16, char)>) {
        let y = top_pt - IDEO_TOP_EM * size;
        self.texts.push(TextRun { x, y, size, spacing: 0.0, glyphs, label: false });
    }

    /// Everything that depends on the licence: boxes, printed number, identifier, issuer.
    fn licence_texts(
        &mut self,
        layout: &Layout,
        licence: &Licence,
        identifier: &str,
    ) -> Result<(), RenderError> {
        for b in &layout.boxes {
            let Some(field) = licence.fields.iter().find(|f| f.key == b.field) else {
                continue; // the catalog has no such field: nothing to print
            };
            let label = b.label.as_deref().unwrap_or(field.label);
            let value = display_value(&b.field, &field.value, licence);
            self.field_box(layout, b, label, &value)?;
        }
        if let Some(spot) = &layout.printed_no {
            let label = spot.label.as_deref().unwrap_or("编号");
            let text = format!("{label}：{}", licence.printed_no);
            let glyphs = self.shape("printed_no", &text)?;
            self.push_line(mm(spot.x), y_pt(spot.y), spot.size, glyphs);
        }
        let spot = &layout.identifier;
        let label = spot.label.as_deref().unwrap_or("证照标识");
        let text = format!("{label}：{identifier}");
        let glyphs = self.shape("identifier", &text)?;
        if mm(spot.x) + run_width(self.font, &glyphs, spot.size, 0.0) > PAGE_W_PT - mm(12.5) {
            return Err(RenderError::Overflow { field: "identifier".into() });
        }
        self.push_line(mm(spot.x), y_pt(spot.y), spot.size, glyphs);
        self.issuer_block(layout, licence)
    }

    /// Issuer name over the issue date, each line centred in the block, shrunk to fit.
    fn issuer_block(&mut self, layout: &Layout, licence: &Licence) -> Result<(), RenderError> {
        let spot = &layout.issuer;
        let date = chinese_date(licence.issue_date);
        let lines = spot
            .caption
            .iter()
            .map(|c| ("issuer.caption", c.as_str()))
            .chain([("issuer_name", licence.issuer_name.as_str()), ("issue_date", date.as_str())]);
        let width = mm(spot.w);
        let mut top = y_pt(spot.y);
        for (field, text) in lines {
            let glyphs = self.shape(field, text)?;
            let mut size = spot.size;
            let mut w = run_width(self.font, &glyphs, size, 0.0);
            if w > width {
                size = (size * width / w).max(MIN_SHRINK_PT);
                w = run_width(self.font, &glyphs, size, 0.0);
                if w > width + 0.01 {
                    return Err(RenderError::Overflow { field: field.to_string() });
                }
            }
            self.push_line(mm(spot.x) + (width - w) / 2.0, top, size, glyphs);
            top -= spot.size * 1.7;
        }
        Ok(())
    }

    /// Label (justified over a fixed width) and value (wrapped, shrunk one step if needed).
    fn field_box(
        &mut self,
        layout: &Layout,
        b: &FieldBox,
        label: &str,
        value: &str,
    ) -> Result<(), RenderError> {
        let size = layout.box_size(b);
        let label_w = mm(layout.box_label_width(b));
        let value_x = mm(b.x) + label_w + if label_w > 0.0 { mm(LABEL_GAP_MM) } else { 0.0 };
        let value_w = mm(b.x + b.w) - value_x;
        let box_h = mm(b.h);

        let value_glyphs = self.shape(&b.field, value)?;
        let (value_size, lines) = [size, size - SHRINK_STEP_PT]
            .into_iter()
            .find_map(|s| {
                let lines = if b.wrap {
                    wrap(self.font, &value_glyphs, s, value_w)
                } else {
                    let fits = run_width(self.font, &value_glyphs, s, 0.0) <= value_w;
                    fits.then(|| vec![value_glyphs.clone()])
                }?;
                let block = (lines.len().max(1) - 1) as f32 * s * LINE_PITCH + s;
                (block <= box_h + 0.01).then_some((s, lines))
            })
            .ok_or_else(|| RenderError::Overflow { field: b.field.clone() })?;

        // The value block is centred vertically in its box; the label sits on its first line.
        let block_h = (lines.len().max(1) - 1) as f32 * value_size * LINE_PITCH + value_size;
        let top = y_pt(b.y) - (box_h - block_h) / 2.0;

        if label_w > 0.0 && !label.is_empty() {
            let glyphs = self.shape(&b.field, label)?;
            let natural = run_width(self.font, &glyphs, size, 0.0);
            // Labels are set at their natural width: letter-spaced labels (住　　所) confuse the
            // reading order of text extraction (pdftotext), which must give the face back.
            let label_size = if natural > label_w {
                let s = size * label_w / natural;
                if s < MIN_SHRINK_PT {
                    return Err(RenderError::Overflow { field: b.field.clone() });
                }
                s
            } else {
                size
            };
            self.texts.push(TextRun {
                x: mm(b.x),
                y: top - IDEO_TOP_EM * value_size,
                size: label_size,
                spacing: 0.0,
                glyphs,
                label: true,
            });
        }
        for (i, line) in lines.into_iter().enumerate() {
            let line_top = top - i as f32 * value_size * LINE_PITCH;
            self.push_line(value_x, line_top, value_size, line);
        }
        Ok(())
    }
}

/// The printed form of a field value: validity and issue dates from the typed licence fields
/// (Chinese dates, 长期), ISO dates (`2017-04-24`) in Chinese form, anything else as is.
fn display_value(key: &str, value: &str, licence: &Licence) -> String {
    match key {
        "valid_to" => chinese_valid_to(licence.valid_to),
        "valid_from" => chinese_date(licence.valid_from),
        "issue_date" => chinese_date(licence.issue_date),
        _ => match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            Ok(d) if value.len() == 10 => chinese_date(d),
            _ => value.to_string(),
        },
    }
}

/// A number for a content stream: at most two decimals, no trailing zeros.
fn num(v: f32) -> String {
    let mut s = format!("{v:.2}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    if s == "-0" { "0".to_string() } else { s }
}

fn write_text_run(out: &mut String, run: &TextRun, codes: &HashMap<u16, u16>) {
    let _ = write!(
        out,
        "BT /{FONT_RES} {} Tf {} Tc 1 0 0 1 {} {} Tm <",
        num(run.size),
        num(run.spacing),
        num(run.x),
        num(run.y)
    );
    for (gid, _) in &run.glyphs {
        let code = codes.get(gid).copied().unwrap_or(0);
        let _ = write!(out, "{code:04X}");
    }
    out.push_str("> Tj ET\n");
}

/// Dark modules as merged horizontal runs, one `re` each in module units (a `cm` scales them to
/// the layout size, so the numbers stay short integers), filled once.
fn write_qr(out: &mut String, layout: &Layout, qr: &QrMatrix) {
    let spot = &layout.qr;
    let modules = qr.width() + 2 * QR_QUIET;
    let m = mm(spot.size) / modules as f32;
    // Origin at the bottom-left of the quiet zone; module rows counted from the top.
    let _ = writeln!(
        out,
        "q 0 g {} 0 0 {} {} {} cm",
        num(m),
        num(m),
        num(mm(spot.x)),
        num(y_pt(spot.y + spot.size))
    );
    let top = modules - QR_QUIET;
    for r in qr.runs() {
        let _ = writeln!(out, "{} {} {} 1 re", r.col + QR_QUIET, top - r.row - 1, r.len);
    }
    out.push_str("f Q\n");
}

/// Centre of the seal over the issuer block, mm from the top-left (as [`write_seal`] places it).
pub(crate) fn seal_centre_mm(layout: &Layout) -> (f32, f32) {
    let issuer = &layout.issuer;
    let lines = 2.0 + if issuer.caption.is_some() { 1.0 } else { 0.0 };
    let block_h_mm = ((lines - 1.0) * issuer.size * 1.7 + issuer.size) / PT_PER_MM;
    (issuer.x + issuer.w / 2.0, issuer.y + block_h_mm / 2.0)
}

/// The seal image centred over the issuer block.
fn write_seal(out: &mut String, layout: &Layout, _seal: &SealImage) {
    let Some(spot) = &layout.seal else { return };
    let issuer = &layout.issuer;
    let lines = 2.0 + if issuer.caption.is_some() { 1.0 } else { 0.0 };
    let block_h_mm = ((lines - 1.0) * issuer.size * 1.7 + issuer.size) / PT_PER_MM;
    let cx = mm(issuer.x + issuer.w / 2.0);
    let cy = y_pt(issuer.y + block_h_mm / 2.0);
    let d = mm(spot.size);
    let _ = writeln!(
        out,
        "q {} 0 0 {} {} {} cm /{SEAL_RES} Do Q",
        num(d),
        num(d),
        num(cx - d / 2.0),
        num(cy - d / 2.0)
    );
}

fn load_seal(path: &std::path::Path) -> Result<SealImage, RenderError> {
    let bytes = std::fs::read(path)
        .map_err(|source| RenderError::Io { path: path.to_path_buf(), source })?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| RenderError::Seal { path: path.to_path_buf(), reason: e.to_string() })?
        .to_rgba8();
    let (width, height) = img.dimensions();
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    let mut alpha = Vec::with_capacity((width * height) as usize);
    for p in img.pixels() {
        rgb.extend_from_slice(&p.0[..3]);
        alpha.push(p.0[3]);
    }
    let has_alpha = alpha.iter().any(|a| *a != 255);
    let seal_err = |e: crate::pdf::compress::DeflateError| RenderError::Seal {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    Ok(SealImage {
        width,
        height,
        rgb_deflated: deflate(rgb).map_err(seal_err)?,
        alpha_deflated: if has_alpha { Some(deflate(alpha).map_err(seal_err)?) } else { None },
    })
}

fn deflate(data: Vec<u8>) -> Result<Vec<u8>, crate::pdf::compress::DeflateError> {
    zlib(&data, IMAGE_LEVEL)
}

/// Object numbers of the one-page document.
const CATALOG_ID: u32 = 1;
const PAGE_ID: u32 = 3;
const INFO_ID: u32 = 10;

/// Write the one-page document (see [`page_objects`]).
fn assemble(
    font: &EmbeddedFont,
    content: Vec<u8>,
    seal: Option<&SealImage>,
    title: &str,
    created: DateTime<Utc>,
) -> Result<RenderedPdf, RenderError> {
    let roots = DocumentRoots { catalog: CATALOG_ID, page: PAGE_ID, info: INFO_ID };
    write_file(&page_objects(font, content, seal, title, created)?, roots)
        .map_err(RenderError::from)
}

/// The objects of the one-page document. Object numbers are fixed: 1 catalog, 2 pages, 3 page,
/// 4 contents, 5 font, 6 CID font, 7 descriptor, 8 font program, 9 ToUnicode, 10 info,
/// 11/12 seal image and mask. The catalog has no `/AcroForm` and the page no `/Annots`: the
/// signer adds them in its incremental update.
fn page_objects(
    font: &EmbeddedFont,
    content: Vec<u8>,
    seal: Option<&SealImage>,
    title: &str,
    created: DateTime<Utc>,
) -> Result<BTreeMap<u32, Object>, RenderError> {
    let mut objects = BTreeMap::new();
    let id = |n: u32| (n, 0u16);

    objects.insert(
        1,
        Object::Dictionary(Dictionary::from_iter(vec![
            ("Type", name("Catalog")),
            ("Pages", Object::Reference(id(2))),
        ])),
    );
    objects.insert(
        2,
        Object::Dictionary(Dictionary::from_iter(vec![
            ("Type", name("Pages")),
            ("Kids", Object::Array(vec![Object::Reference(id(3))])),
            ("Count", Object::Integer(1)),
        ])),
    );
    let mut resources = Dictionary::from_iter(vec![(
        "Font",
        Object::Dictionary(Dictionary::from_iter(vec![(FONT_RES, Object::Reference(id(5)))])),
    )]);
    if seal.is_some() {
        resources.set(
            "XObject",
            Object::Dictionary(Dictionary::from_iter(vec![(SEAL_RES, Object::Reference(id(11)))])),
        );
    }
    objects.insert(
        3,
        Object::Dictionary(Dictionary::from_iter(vec![
            ("Type", name("Page")),
            ("Parent", Object::Reference(id(2))),
            (
                "MediaBox",
                Object::Array(vec![
                    Object::Integer(0),
                    Object::Integer(0),
                    Object::Real(PAGE_W_PT),
                    Object::Real(PAGE_H_PT),
                ]),
            ),
            ("Resources", Object::Dictionary(resources)),
            ("Contents", Object::Reference(id(4))),
        ])),
    );
    objects.insert(4, Object::Stream(compressed(Dictionary::new(), &content, TEXT_LEVEL)?));

    // Font: Type0 / Identity-H over one CIDFont.
    let base_font = font.base_font(&font.hashed_subset_tag());
    let program = font.program();
    objects.insert(5, Object::Dictionary(embed::type0_font(&base_font, id(6), id(9))));
    objects
        .insert(6, Object::Dictionary(embed::cid_font(&base_font, program, id(7), font.widths())));
    let metrics =
        DescriptorMetrics { bbox: font.bbox(), ascent: font.ascent(), descent: font.descent() };
    objects
        .insert(7, Object::Dictionary(embed::font_descriptor(&base_font, program, metrics, id(8))));
    objects.insert(
        8,
        Object::Stream(compressed(program.stream_dict(), program.bytes(), FONT_PROGRAM_LEVEL)?),
    );
    objects.insert(
        9,
        Object::Stream(compressed(Dictionary::new(), &font.to_unicode_cmap(), TEXT_LEVEL)?),
    );
    objects.insert(
        10,
        Object::Dictionary(Dictionary::from_iter(vec![
            ("Title", utf16_text_string(title)),
            ("Producer", Object::string_literal("elicence")),
            ("Creator", Object::string_literal("elicence render")),
            ("CreationDate", date(created)),
            ("ModDate", date(created)),
        ])),
    );
    if let Some(seal) = seal {
        let mut dict = Dictionary::from_iter(vec![
            ("Type", name("XObject")),
            ("Subtype", name("Image")),
            ("Width", Object::Integer(i64::from(seal.width))),
            ("Height", Object::Integer(i64::from(seal.height))),
            ("ColorSpace", name("DeviceRGB")),
            ("BitsPerComponent", Object::Integer(8)),
            ("Filter", name("FlateDecode")),
        ]);
        if let Some(alpha) = &seal.alpha_deflated {
            dict.set("SMask", Object::Reference(id(12)));
            objects.insert(
                12,
                Object::Stream(
                    Stream::new(
                        Dictionary::from_iter(vec![
                            ("Type", name("XObject")),
                            ("Subtype", name("Image")),
                            ("Width", Object::Integer(i64::from(seal.width))),
                            ("Height", Object::Integer(i64::from(seal.height))),
                            ("ColorSpace", name("DeviceGray")),
                            ("BitsPerComponent", Object::Integer(8)),
                            ("Filter", name("FlateDecode")),
                        ]),
                        alpha.clone(),
                    )
                    .with_compression(false),
                ),
            );
        }
        objects.insert(
            11,
            Object::Stream(Stream::new(dict, seal.rgb_deflated.clone()).with_compression(false)),
        );
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(0.004), "0");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(595.2756), "595.28");
    }

    #[test]
    fn display_value_uses_typed_dates() {
        let mut l = crate::render::test_support::licence();
        assert_eq!(display_value("valid_to", "", &l), "2022年4月23日");
        l.valid_to = None;
        assert_eq!(display_value("valid_to", "2022-04-23", &l), "长期");
        assert_eq!(display_value("established", "2010-01-05", &l), "2010年1月5日");
        assert_eq!(display_value("x", "2010-1-5 ok", &l), "2010-1-5 ok");
    }

    /// Rasterise page 1 at 72 dpi with poppler; `None` when pdftoppm is missing.
    fn raster(pdf: &[u8], dir: &std::path::Path, name: &str) -> Option<Vec<u8>> {
        let file = dir.join(format!("{name}.pdf"));
        std::fs::write(&file, pdf).ok()?;
        let prefix = dir.join(name);
        let status = std::process::Command::new("pdftoppm")
            .args(["-r", "72", "-gray", "-singlefile"])
            .arg(&file)
            .arg(&prefix)
            .status()
            .ok()?;
        assert!(status.success());
        std::fs::read(prefix.with_extension("pgm")).ok()
    }

    #[test]
    fn fast_font_subset_draws_the_same_page_as_printpdf() {
        let Ok(font) = FaceFont::locate(None) else {
            return;
        };
        if font.cid_cff().is_none() {
            eprintln!("face font is not CID-keyed CFF; the fast subsetter is not used");
            return;
        }
        let renderer = PdfRenderer::new(Arc::new(font), Vec::new()).unwrap();
        let mut l = crate::render::test_support::licence();
        l.fields[1].value =
            "预包装食品销售（含冷藏冷冻食品），散装食品销售，热食类食品制售 ABC123 coffee".into();
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let id = "1.2.156.3005.2.11100000MB0327169X001.11220104MB1234567X.JY12201020000123.001.Q";
        let fast = renderer
            .render_signable(&l, id, "ELIC1:X:0123456789ABCDEF", created)
            .unwrap()
            .into_bytes();
        let slow = renderer
            .render_printpdf_subset(&l, id, "ELIC1:X:0123456789ABCDEF", created)
            .unwrap()
            .into_bytes();
        assert_ne!(fast, slow, "the two paths embed different font programs");
        let dir = tempfile::tempdir().unwrap();
        let (Some(a), Some(b)) =
            (raster(&fast, dir.path(), "fast"), raster(&slow, dir.path(), "slow"))
        else {
            eprintln!("pdftoppm not installed; skipping the pixel comparison");
            return;
        };
        assert!(a.len() > 100_000);
        assert!(a == b, "pages differ when drawn by poppler");
    }

    #[test]
    fn written_file_is_what_lopdf_writes_and_layout_points_at_it() {
        let samples = crate::render::test_support::rendered_samples();
        if samples.is_empty() {
            eprintln!("no face font; skipped");
            return;
        }
        assert!(samples.len() >= 2, "a layout with a seal and the default one");
        assert!(samples.iter().any(|r| r.layout().size == 13), "one with a seal");
        assert!(samples.iter().any(|r| r.layout().size == 11), "one without");
        for rendered in samples {
            let bytes = rendered.bytes();
            // lopdf reads the file back and writes the very same bytes (including /ID).
            let mut doc = lopdf::Document::load_mem(bytes).unwrap();
            let mut again = Vec::new();
            doc.save_to(&mut again).unwrap();
            assert!(again == bytes, "hand-written file differs from lopdf's serialisation");
            // The layout points at what lopdf found.
            let l = rendered.layout();
            let root = doc.trailer.get(b"Root").unwrap().as_reference().unwrap();
            assert_eq!(root, (l.catalog.number, 0));
            assert_eq!(*doc.get_pages().get(&1).unwrap(), (l.page.number, 0));
            assert_eq!(doc.xref_start, l.xref_offset);
            assert_eq!(doc.trailer.get(b"Size").unwrap().as_i64().unwrap(), i64::from(l.size));
            for span in [&l.catalog, &l.page] {
                let dict = &bytes[span.dict.clone()];
                assert!(dict.starts_with(b"<<") && dict.ends_with(b">>"));
                let header = format!("{} 0 obj\n", span.number);
                assert!(bytes[..span.dict.start].ends_with(header.as_bytes()));
            }
            assert!(!bytes[l.catalog.dict.clone()].windows(9).any(|w| w == b"/AcroForm"));
            assert!(!bytes[l.page.dict.clone()].windows(7).any(|w| w == b"/Annots"));
            let entries = &bytes[l.trailer_entries.clone()];
            assert!(entries.starts_with(b"/Root 1 0 R/Info 10 0 R/ID[<"), "{entries:?}");
            assert!(bytes[l.trailer_entries.end..].starts_with(b"/Size "));
            assert!(bytes[l.xref_offset..].starts_with(b"xref\n0 "));
        }
    }
}
