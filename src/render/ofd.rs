//! The OFD licence face (版式文档, GB/T 33190-2016): one A4 page per licence with the same face
//! as the PDF — the text lines come from the same layout pass ([`PdfRenderer`]), converted to
//! millimetres (OFD's unit, y downward) with explicit per-glyph advances (`DeltaX`) so no
//! reader re-measures them; the face font embedded as two subsets, the layout's labels
//! (`Res/font_2.otf`, made once per layout and the same file in every OFD of it) and the
//! licence's values (`Res/font_4.otf`), each with a conventional `FontName` for readers that
//! ignore embedded fonts; the QR code as a filled
//! path; the GB/T 36903 metadata in `DocInfo/CustomDatas`.
//!
//! The result is an [`OfdPackage`]: the files of the package in a fixed order, not yet a zip,
//! because the seal (`seal::ofd`) adds its files and references every one of these first.
//! `OFD.xml` already points at `/Doc_0/Signs/Signatures.xml`: every OFD elicence writes is
//! sealed. [`OfdPackage::to_zip`] writes the zip deterministically (fixed entry order, DOS
//! times from the creation time, deflate level fixed, no extra fields), so the same licence,
//! keys and clock give byte-identical files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sm3::Sm3;

use crate::font::FaceFont;
use crate::licence::Licence;
use crate::pdf::embed::subset_gids;
use crate::render::RenderError;
use crate::render::layout::{PAGE_HEIGHT_MM, PAGE_WIDTH_MM};
use crate::render::pdf::{
    Face, PAGE_H_PT, PT_PER_MM, PdfRenderer, QR_QUIET, glyphs_of, seal_centre_mm,
};
use crate::render::zipfile::{Method, write_zip};

/// The OFD namespace (GB/T 33190-2016).
pub const OFD_NS: &str = "http://www.ofdspec.org/2016";
/// Where the package's signature list lives (written by the seal).
pub const SIGNATURES_PATH: &str = "Doc_0/Signs/Signatures.xml";
/// The one page's content, the file a page tamper test changes.
pub const PAGE_CONTENT_PATH: &str = "Doc_0/Pages/Page_0/Content.xml";
/// The conventional font name given beside the embedded subset: the face font is a sans-serif
/// (黑体) face, and every Chinese reader has a font of that name.
pub const CONVENTIONAL_FONT_NAME: &str = "黑体";
/// Text colour (near-black, as the PDF's `0.08 g`) and frame colour (the PDF's dark bronze).
const TEXT_RGB: &str = "20 20 20";
const FRAME_RGB: &str = "140 97 31";
/// Unit ids fixed by the writer: the page, the font of the layout's labels, the layer and the
/// font of the licence's values; objects follow.
const PAGE_ID: u32 = 1;
const LABELS_FONT_ID: u32 = 2;
const LAYER_ID: u32 = 3;
const VALUES_FONT_ID: u32 = 4;
/// Deflate level of the XML entries (fixed: part of what makes the bytes reproducible). Level 1
/// of libdeflate writes the page's 14.7 KB of XML as 3.5 KB in a third of level 6's time.
const ZIP_LEVEL: u32 = 1;

/// Whether an entry is stored rather than deflated: the font (CFF charstrings shrink by 17 %),
/// the seal (its picture is a PNG) and the signature value (which holds the seal) — deflating
/// them cost more than half of an OFD's CPU time for a few kilobytes — and entries under
/// 2 KB, for which setting up a compressor (its tables zeroed) cost more than the ≈ 1.5 KB a
/// package saves.
fn stored(path: &str, len: usize) -> bool {
    len < 2048 || [".otf", ".ttf", ".esl", ".dat"].iter().any(|ext| path.ends_with(ext))
}

/// Where the seal's picture goes: a `StampAnnot` on page [`OfdPackage::page_id`], `Boundary`
/// in mm (x, y, w, h from the top-left).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StampSpot {
    pub page_id: u32,
    pub boundary: [f32; 4],
}

/// A file that many packages hold byte for byte (the font of a layout's labels), made once,
/// with its SM3 digest made once too: the seal references every file by its SM3.
#[derive(Debug, PartialEq, Eq)]
pub struct SharedFile {
    path: String,
    bytes: Vec<u8>,
    sm3: [u8; 32],
}

impl SharedFile {
    /// The file at `path` (inside the zip, no leading `/`) holding `bytes`.
    pub fn new(path: String, bytes: Vec<u8>) -> SharedFile {
        let sm3 = <Sm3 as sm3::Digest>::digest(&bytes).into();
        SharedFile { path, bytes, sm3 }
    }

    /// Its path inside the package.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The SM3 digest of [`SharedFile::bytes`].
    pub fn sm3(&self) -> &[u8; 32] {
        &self.sm3
    }
}

/// An unsealed OFD: its files (path inside the zip without a leading `/`, bytes) in the order
/// they are written — the licence's own `entries`, then the `shared` ones — and where the
/// seal's stamp goes.
#[derive(Debug, Clone, PartialEq)]
pub struct OfdPackage {
    pub entries: Vec<(String, Vec<u8>)>,
    pub shared: Vec<Arc<SharedFile>>,
    pub stamp: StampSpot,
    pub created: DateTime<Utc>,
}

impl OfdPackage {
    /// Every file in the order written: path, bytes, and the SM3 digest when it is known
    /// already (a shared file's).
    pub fn files(&self) -> impl Iterator<Item = (&str, &[u8], Option<&[u8; 32]>)> {
        let own = self.entries.iter().map(|(p, b)| (p.as_str(), b.as_slice(), None));
        own.chain(self.shared.iter().map(|f| (f.path(), f.bytes(), Some(f.sm3()))))
    }

    /// The bytes of the file at `path`, if present.
    pub fn entry(&self, path: &str) -> Option<&[u8]> {
        self.files().find(|(p, _, _)| *p == path).map(|(_, b, _)| b)
    }

    /// The package as a zip: entries in order, XML of 2 KB or more deflated at a fixed level,
    /// other entries stored (see [`stored`]), every entry dated `created` (DOS time, UTC;
    /// clamped to 1980–2107), no extra fields. Same package ⇒ same bytes. Fails only if the
    /// zip writer fails.
    pub fn to_zip(&self) -> Result<Vec<u8>, RenderError> {
        self.to_zip_with(&[])
    }

    /// [`OfdPackage::to_zip`] with the files `extra` (path, bytes) written after the
    /// package's own (the seal's files), without copying the package.
    pub fn to_zip_with(&self, extra: &[(&str, &[u8])]) -> Result<Vec<u8>, RenderError> {
        let own = self.files().map(|(path, bytes, _)| (path, bytes));
        let all = own.chain(extra.iter().copied()).map(|(path, bytes)| {
            let method = if stored(path, bytes.len()) {
                Method::Stored
            } else {
                Method::Deflated(ZIP_LEVEL)
            };
            (path, bytes, method)
        });
        write_zip(all, self.created, 64 * 1024)
            .map_err(|e| RenderError::Ofd { reason: e.to_string() })
    }
}

/// Renders the OFD face of `licence` with the layout pass of `pdf` (same font, same layouts,
/// same positions): `identifier` is the 证照标识, `qr_payload` the QR string, `created` the
/// creation time (DocInfo and zip dates). Fails as [`PdfRenderer::render`] does on overflow
/// or a missing glyph, and with [`RenderError::Ofd`] when the font cannot be subset.
pub fn render_ofd(
    pdf: &PdfRenderer,
    licence: &Licence,
    identifier: &str,
    qr_payload: &str,
    created: DateTime<Utc>,
) -> Result<OfdPackage, RenderError> {
    render_ofd_face(
        pdf,
        &pdf.lay_out(licence, identifier, qr_payload)?,
        licence,
        identifier,
        created,
    )
}

/// [`render_ofd`] of a face already laid out by [`PdfRenderer::lay_out`] (the one its PDF was
/// written from: the text, the QR code and the font subset are not made again).
pub fn render_ofd_face(
    pdf: &PdfRenderer,
    face: &Face<'_>,
    licence: &Licence,
    identifier: &str,
    created: DateTime<Utc>,
) -> Result<OfdPackage, RenderError> {
    let font = pdf.font();
    // The layout's words (title, caption, box labels) are the same on every face of the layout:
    // their font file, and its SM3 digest, are made once and shared; each licence embeds a
    // second font of its values only. When the labels' font cannot be made, one font of every
    // glyph serves both.
    let labels = face.label_font_file(|used| {
        let bytes = font_file(font, used, None).ok()?;
        Some(SharedFile::new(
            format!("Doc_0/Res/{}", font_file_name(LABELS_FONT_ID, &bytes)),
            bytes,
        ))
    });
    let values = match &labels {
        Some(_) => {
            let used = glyphs_of(face.texts().filter(|run| !run.label));
            let cff = font.cid_cff().and_then(|cff| cff.subset(&subset_gids(&used)).ok());
            font_file(font, &used, cff.as_deref())?
        }
        None => font_file(font, face.used(), face.cff_subset())?,
    };
    let values_name = font_file_name(VALUES_FONT_ID, &values);
    let fonts = FontIds {
        labels: if labels.is_some() { LABELS_FONT_ID } else { VALUES_FONT_ID },
        values: VALUES_FONT_ID,
    };

    let (content, max_id) = page_content(pdf, face, fonts);
    let ofd_xml = ofd_xml(licence, identifier, created);
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Document xmlns:ofd=\"{OFD_NS}\">\
         <ofd:CommonData><ofd:MaxUnitID>{max_id}</ofd:MaxUnitID><ofd:PageArea>\
         <ofd:PhysicalBox>0 0 {} {}</ofd:PhysicalBox></ofd:PageArea>\
         <ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData>\
         <ofd:Pages><ofd:Page ID=\"{PAGE_ID}\" BaseLoc=\"Pages/Page_0/Content.xml\"/></ofd:Pages>\
         </ofd:Document>",
        mm_num(PAGE_WIDTH_MM),
        mm_num(PAGE_HEIGHT_MM)
    );
    let mut public_res = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Res xmlns:ofd=\"{OFD_NS}\" \
         BaseLoc=\"Res\"><ofd:Fonts>"
    );
    let res_name = |path: &str| path.rsplit('/').next().unwrap_or_default().to_owned();
    let font_list = labels
        .iter()
        .map(|f| (LABELS_FONT_ID, res_name(f.path())))
        .chain([(VALUES_FONT_ID, values_name.clone())]);
    for (id, file) in font_list {
        let _ = write!(public_res, "<ofd:Font ID=\"{id}\" FontName=\"");
        escape_attr(CONVENTIONAL_FONT_NAME, &mut public_res);
        public_res.push_str("\" FamilyName=\"");
        escape_attr(CONVENTIONAL_FONT_NAME, &mut public_res);
        let _ = write!(public_res, "\"><ofd:FontFile>{file}</ofd:FontFile></ofd:Font>");
    }
    public_res.push_str("</ofd:Fonts></ofd:Res>");

    let stamp = stamp_spot(face);
    Ok(OfdPackage {
        entries: vec![
            ("OFD.xml".to_string(), ofd_xml.into_bytes()),
            ("Doc_0/Document.xml".to_string(), document.into_bytes()),
            ("Doc_0/PublicRes.xml".to_string(), public_res.into_bytes()),
            (PAGE_CONTENT_PATH.to_string(), content.into_bytes()),
            (format!("Doc_0/Res/{values_name}"), values),
        ],
        shared: labels.into_iter().collect(),
        stamp,
        created,
    })
}

/// Which font the page's lines use: the labels' (the layout's words) and the values' (the
/// licence's); the same id when one font serves both.
#[derive(Debug, Clone, Copy)]
struct FontIds {
    labels: u32,
    values: u32,
}

/// The font file of the glyphs `used`: the fast CID-keyed CFF subset (`cff`, when made, else
/// made here) in an OpenType wrapper; printpdf's general subsetter (several ms a page) for faces
/// without CID-keyed CFF outlines.
fn font_file(
    font: &FaceFont,
    used: &BTreeMap<u16, String>,
    cff: Option<&[u8]>,
) -> Result<Vec<u8>, RenderError> {
    let fast = match cff {
        Some(cff) => crate::font::sfnt::opentype_from_cff(font, used, cff),
        None => crate::font::sfnt::opentype_subset(font, used),
    };
    match fast {
        Some(bytes) => Ok(bytes),
        None => Ok(printpdf::subset_font(font.parsed(), used)
            .map_err(|reason| RenderError::Ofd { reason: format!("font subset: {reason}") })?
            .bytes),
    }
}

/// `font_<id>.otf` for an OpenType/CFF file, `font_<id>.ttf` for a TrueType one.
fn font_file_name(id: u32, bytes: &[u8]) -> String {
    let ext = if bytes.starts_with(b"OTTO") { "otf" } else { "ttf" };
    format!("font_{id}.{ext}")
}

/// The seal's place: the layout's seal diameter (40 mm without one) centred over the issuer
/// block, as the PDF places its seal image.
fn stamp_spot(face: &Face<'_>) -> StampSpot {
    let (cx, cy) = seal_centre_mm(face.layout());
    let d = face.layout().seal.as_ref().map_or(40.0, |s| s.size);
    StampSpot { page_id: PAGE_ID, boundary: [cx - d / 2.0, cy - d / 2.0, d, d] }
}

/// `OFD.xml`: DocInfo (DocID from the identifier, title, author = issuer, dates, creator) with
/// the GB/T 36903 metadata as `CustomData`, the document root and the signature list.
fn ofd_xml(licence: &Licence, identifier: &str, created: DateTime<Utc>) -> String {
    let doc_id = hex::encode(&Sha256::digest(identifier.as_bytes())[..16]);
    let mut x = String::with_capacity(2048);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:OFD xmlns:ofd=\"{OFD_NS}\" \
         Version=\"1.0\" DocType=\"OFD\"><ofd:DocBody><ofd:DocInfo><ofd:DocID>{doc_id}</ofd:DocID>"
    );
    element(&mut x, "Title", &format!("{} {}", licence.type_name, licence.printed_no));
    element(&mut x, "Author", &licence.issuer_name);
    element(&mut x, "CreationDate", &created.format("%Y-%m-%d").to_string());
    element(&mut x, "Creator", "elicence");
    element(&mut x, "CreatorVersion", env!("CARGO_PKG_VERSION"));
    x.push_str("<ofd:CustomDatas>");
    let date = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let valid_to = licence.valid_to.map_or_else(|| "长期".to_string(), date);
    // GB/T 36903 metadata, the names of the XML e-licence's <Metadata> elements.
    let custom = [
        ("Name", licence.type_name.as_str()),
        ("TypeCode", licence.type_code.as_str()),
        ("Number", licence.printed_no.as_str()),
        ("Identifier", identifier),
        ("Issuer", licence.issuer_name.as_str()),
        ("IssuerCode", licence.issuer_code.as_str()),
        ("IssueDate", &date(licence.issue_date)),
        ("HolderName", licence.holder_name.as_str()),
        ("HolderCode", licence.holder_code.as_str()),
        ("HolderCodeType", licence.holder_code_type.as_str()),
        ("ValidFrom", &date(licence.valid_from)),
        ("ValidTo", &valid_to),
        ("RegionCode", licence.region_code.as_str()),
        ("Status", licence.status.as_str()),
    ];
    for (name, value) in custom {
        let _ = write!(x, "<ofd:CustomData Name=\"{name}\">");
        escape_text(value, &mut x);
        x.push_str("</ofd:CustomData>");
    }
    x.push_str("</ofd:CustomDatas></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>");
    let _ =
        write!(x, "<ofd:Signatures>/{SIGNATURES_PATH}</ofd:Signatures></ofd:DocBody></ofd:OFD>");
    x
}

/// The page: frame, text objects and QR path in one layer. Returns the XML and the largest
/// unit id used.
fn page_content(pdf: &PdfRenderer, face: &Face<'_>, fonts: FontIds) -> (String, u32) {
    let mut x = String::with_capacity(32 * 1024);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Page xmlns:ofd=\"{OFD_NS}\">\
         <ofd:Content><ofd:Layer ID=\"{LAYER_ID}\">"
    );
    let mut next_id = VALUES_FONT_ID + 1;
    let mut id = || {
        let n = next_id;
        next_id += 1;
        n
    };
    if face.layout().frame {
        // The PDF's double border: heavy outer rule at 10 mm, thin inner one at 12.5 mm.
        for (inset, width_pt) in [(10.0_f32, 2.2_f32), (12.5, 0.6)] {
            let (w, h) = (PAGE_WIDTH_MM - 2.0 * inset, PAGE_HEIGHT_MM - 2.0 * inset);
            let _ = write!(
                x,
                "<ofd:PathObject ID=\"{}\" Boundary=\"{} {} {} {}\" LineWidth=\"{}\" \
                 Stroke=\"true\" Fill=\"false\"><ofd:StrokeColor Value=\"{FRAME_RGB}\"/>\
                 <ofd:AbbreviatedData>M 0 0 L {} 0 L {} {} L 0 {} C</ofd:AbbreviatedData>\
                 </ofd:PathObject>",
                id(),
                mm_num(inset),
                mm_num(inset),
                mm_num(w),
                mm_num(h),
                mm_num(width_pt / PT_PER_MM),
                mm_num(w),
                mm_num(w),
                mm_num(h),
                mm_num(h)
            );
        }
    }
    let font = pdf.font();
    for run in face.texts() {
        let font_id = if run.label { fonts.labels } else { fonts.values };
        if run.glyphs.is_empty() {
            continue;
        }
        let size = run.size / PT_PER_MM;
        let spacing = run.spacing / PT_PER_MM;
        let left = run.x / PT_PER_MM;
        let baseline = (PAGE_H_PT - run.y) / PT_PER_MM;
        let advances: Vec<f32> =
            run.glyphs.iter().map(|(_, c)| font.advance_pt(*c, run.size) / PT_PER_MM).collect();
        let width: f32 =
            advances.iter().sum::<f32>() + spacing * run.glyphs.len().saturating_sub(1) as f32;
        // The boundary holds the em box: from one size above the baseline to 0.2 size below.
        let top = baseline - size;
        let _ = write!(
            x,
            "<ofd:TextObject ID=\"{}\" Boundary=\"{} {} {} {}\" Font=\"{font_id}\" Size=\"{}\">\
             <ofd:FillColor Value=\"{TEXT_RGB}\"/><ofd:TextCode X=\"0\" Y=\"{}\"",
            id(),
            mm_num(left),
            mm_num(top),
            mm_num(width + 0.1),
            mm_num(size * 1.2),
            mm_num(size),
            mm_num(size)
        );
        let gaps: Vec<i64> = advances
            .iter()
            .take(advances.len().saturating_sub(1))
            .map(|a| thousandths(a + spacing))
            .collect();
        if !gaps.is_empty() {
            x.push_str(" DeltaX=\"");
            delta_x(&gaps, &mut x);
            x.push('"');
        }
        x.push('>');
        let text: String = run.glyphs.iter().map(|(_, c)| *c).collect();
        escape_text(&text, &mut x);
        x.push_str("</ofd:TextCode></ofd:TextObject>");
    }
    write_qr(&mut x, face, id());
    x.push_str("</ofd:Layer></ofd:Content></ofd:Page>");
    (x, next_id - 1)
}

/// The QR code: one path of the dark runs (module rows from the top), each stroked as a line
/// along the middle of its row with the module's height as line width and butt caps (the
/// default of GB/T 33190-2016 §9.1, written out), which covers exactly the run's modules, as
/// the PDF's filled rectangles do, in half the bytes of an outline per run (a page's XML
/// is mostly its QR code, and every byte of it is hashed, deflated and stored). Lengths in mm
/// inside the QR square (quiet zone included).
fn write_qr(x: &mut String, face: &Face<'_>, id: u32) {
    let qr = face.qr();
    let spot = &face.layout().qr;
    let modules = qr.width() + 2 * QR_QUIET;
    let m = spot.size / modules as f32;
    let _ = write!(
        x,
        "<ofd:PathObject ID=\"{id}\" Boundary=\"{} {} {} {}\" LineWidth=\"{}\" Cap=\"Butt\" \
         Stroke=\"true\" Fill=\"false\"><ofd:StrokeColor Value=\"0 0 0\"/><ofd:AbbreviatedData>",
        mm_num(spot.x),
        mm_num(spot.y),
        mm_num(spot.size),
        mm_num(spot.size),
        mm_num(m)
    );
    // Every end lies on the module grid and every row's middle is a grid line plus half a
    // module: each is formatted once (a few dozen numbers) rather than per run.
    let edges: Vec<String> = (0..=modules).map(|i| mm_num(i as f32 * m)).collect();
    let middles: Vec<String> = (0..modules).map(|i| mm_num((i as f32 + 0.5) * m)).collect();
    let edge = |i: usize| edges.get(i).map_or("0", String::as_str);
    let middle = |i: usize| middles.get(i).map_or("0", String::as_str);
    let mut first = true;
    for r in qr.runs() {
        let y = middle(r.row + QR_QUIET);
        let (x0, x1) = (edge(r.col + QR_QUIET), edge(r.col + QR_QUIET + r.len));
        if !first {
            x.push(' ');
        }
        first = false;
        for part in ["M ", x0, " ", y, " L ", x1, " ", y] {
            x.push_str(part);
        }
    }
    x.push_str("</ofd:AbbreviatedData></ofd:PathObject>");
}

/// `DeltaX` with runs of equal gaps (in thousandths of a millimetre) written `g N v`
/// (GB/T 33190-2016), appended to `out`.
fn delta_x(gaps: &[i64], out: &mut String) {
    let mut i = 0;
    while i < gaps.len() {
        let mut j = i + 1;
        while j < gaps.len() && gaps[j] == gaps[i] {
            j += 1;
        }
        if i > 0 {
            out.push(' ');
        }
        if j - i > 1 {
            let _ = write!(out, "g {} ", j - i);
        }
        push_mm(out, gaps[i]);
        i = j;
    }
}

/// `v` mm in thousandths of a millimetre, rounded as `format!("{v:.3}")` rounds (ties to
/// even; an f32 times 1000 is exact in f64); 0 for what is not a finite length.
fn thousandths(v: f32) -> i64 {
    let t = (f64::from(v) * 1000.0).round_ties_even();
    if !t.is_finite() || t.abs() >= 1e15 { 0 } else { t as i64 }
}

/// Appends a length given in thousandths of a mm with at most three decimals, no trailing
/// zeros, written with integer formatting: the page has hundreds of numbers and float
/// formatting was a tenth of an OFD's CPU time.
fn push_mm(out: &mut String, t: i64) {
    let (whole, frac) = (t.unsigned_abs() / 1000, t.unsigned_abs() % 1000);
    let sign = if t < 0 { "-" } else { "" };
    let _ = match frac {
        0 => write!(out, "{sign}{whole}"),
        f if f % 100 == 0 => write!(out, "{sign}{whole}.{}", f / 100),
        f if f % 10 == 0 => write!(out, "{sign}{whole}.{:02}", f / 10),
        f => write!(out, "{sign}{whole}.{f:03}"),
    };
}

/// A length in mm with at most three decimals, no trailing zeros.
fn mm_num(v: f32) -> String {
    let mut out = String::with_capacity(8);
    push_mm(&mut out, thousandths(v));
    out
}

fn element(x: &mut String, name: &str, value: &str) {
    let _ = write!(x, "<ofd:{name}>");
    escape_text(value, x);
    let _ = write!(x, "</ofd:{name}>");
}

/// XML text escapes: `&`, `<`, `>`; control characters other than TAB/LF become spaces.
fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// XML attribute escapes: `&`, `<`, `"`.
fn escape_attr(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mm_num_writes_what_float_formatting_wrote() {
        let old = |v: f32| {
            let mut s = format!("{v:.3}");
            while s.ends_with('0') {
                s.pop();
            }
            if s.ends_with('.') {
                s.pop();
            }
            if s == "-0" { "0".to_string() } else { s }
        };
        let mut v = -300.0f32;
        while v < 300.0 {
            assert_eq!(super::mm_num(v), old(v), "{v}");
            v += 0.0625 / 7.0;
        }
        for v in [0.0, -0.0, 0.0625, 0.0005, 1.0005, 210.0, 297.000_5, -0.000_4, 12.345_678] {
            assert_eq!(super::mm_num(v), old(v), "{v}");
        }
    }

    #[test]
    fn delta_x_groups_equal_gaps() {
        let dx = |gaps: &[i64]| {
            let mut out = String::new();
            delta_x(gaps, &mut out);
            out
        };
        assert_eq!(dx(&[3500, 3500, 3500, 1200, 3500]), "g 3 3.5 1.2 3.5");
        assert_eq!(dx(&[1000]), "1");
        assert_eq!(dx(&[-20, -20]), "g 2 -0.02");
        assert_eq!(dx(&[]), "");
    }

    #[test]
    fn lengths_are_short() {
        assert_eq!(mm_num(210.0), "210");
        assert_eq!(mm_num(3.52777), "3.528");
        assert_eq!(mm_num(-0.0001), "0");
    }

    #[test]
    fn the_same_licence_gives_the_same_package() {
        let Ok(font) = crate::font::FaceFont::locate(None) else {
            return;
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/layouts");
        let layouts = crate::render::Layout::load_dir(&dir).unwrap();
        let pdf = PdfRenderer::new(std::sync::Arc::new(font), layouts).unwrap();
        let mut l = crate::render::test_support::licence();
        l.fields[1].value = "预包装食品销售".into();
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let id = "1.2.156.3005.2.11100000MB0327169X001.11220104MB1234567X.JY12201020000123.001.Q";
        let a = render_ofd(&pdf, &l, id, "ELIC1:X:0123456789ABCDEF", created).unwrap();
        let b = render_ofd(&pdf, &l, id, "ELIC1:X:0123456789ABCDEF", created).unwrap();
        assert_eq!(a.to_zip().unwrap(), b.to_zip().unwrap());
        let page = String::from_utf8(a.entry(PAGE_CONTENT_PATH).unwrap().to_vec()).unwrap();
        assert!(page.contains(">食品经营许可证</ofd:TextCode>"), "{page}");
        assert!(page.contains("DeltaX=\""));
        let ofd = String::from_utf8(a.entry("OFD.xml").unwrap().to_vec()).unwrap();
        assert!(ofd.contains("<ofd:CustomData Name=\"IssuerCode\">11220104MB1234567X<"));
    }
}
