//! The visible watermark of a copy for use (加注件): the stored, signed licence PDF with its
//! signature removed, one more content stream drawn over the face, and a new signature by the
//! registry's key (the caller signs).
//!
//! Approach: the copy starts from the registry's own stored PDF (so the face is exactly the
//! licence's), drops the original signature field (`/AcroForm`, the page's `/Annots`, then the
//! orphaned signature objects), and adds a second content stream with:
//! - the watermark text ("仅供<事由>使用 · <部门> · 有效期至 <日期>") in red along the bottom of
//!   the page, wrapped to the page width, and
//! - a large translucent diagonal "加注件 仅供…使用" across the face,
//!
//! drawn in a subset of the same CJK face font ([`FaceFont`]), embedded as its own Type0 font
//! (`/FW`) with a `/ToUnicode` map so that `pdftotext` gives the watermark back. The original's
//! bytes are never handed out: the copy is a new file with a new signature and its own hash.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lopdf::{Dictionary, Document, Object, ObjectId, Stream};
use thiserror::Error;

use crate::font::FaceFont;
use crate::pdf::embed::{self, DescriptorMetrics};
use crate::pdf::{EmbeddedFont, PdfError, SubsetPath};

/// Resource names of the watermark font and graphics state.
const FONT_RES: &str = "FW";
const GS_RES: &str = "GSW";
/// Default page size (A4, points) when the page has no readable `/MediaBox`.
const A4: (f32, f32) = (595.28, 841.89);
const MARGIN: f32 = 36.0;
const FOOTER_SIZE: f32 = 9.0;

/// Why a copy could not be watermarked.
#[derive(Debug, Error)]
pub enum WatermarkError {
    #[error("stored PDF does not parse: {detail}")]
    Parse { detail: String },
    #[error("stored PDF has no {what}")]
    Structure { what: &'static str },
    #[error("the face font has no glyph for {ch:?}")]
    MissingGlyph { ch: char },
    #[error("font subset: {reason}")]
    Subset { reason: String },
    #[error("PDF write: {detail}")]
    Write { detail: String },
}

/// The watermark line: `仅供<reason>使用 · <department> · 有效期至 <YYYY-MM-DD>`.
pub fn watermark_text(reason: &str, department: &str, expires: chrono::NaiveDate) -> String {
    format!("仅供{reason}使用 · {department} · 有效期至 {}", expires.format("%Y-%m-%d"))
}

/// The diagonal banner: `加注件 仅供<reason>使用`, the reason shortened to 16 characters.
pub fn banner_text(reason: &str) -> String {
    let short: String = reason.chars().take(16).collect();
    let ellipsis = if reason.chars().count() > 16 { "…" } else { "" };
    format!("加注件 仅供{short}{ellipsis}使用")
}

/// `pdf` (a signed licence face) without its signature and with `text` and `banner` drawn over
/// page 1, unsigned, ready to be signed again.
pub fn watermark(
    pdf: &[u8],
    font: &FaceFont,
    text: &str,
    banner: &str,
) -> Result<Vec<u8>, WatermarkError> {
    let mut doc =
        Document::load_mem(pdf).map_err(|e| WatermarkError::Parse { detail: e.to_string() })?;
    let page_id = *doc.get_pages().get(&1).ok_or(WatermarkError::Structure { what: "page" })?;
    let (width, height) = media_box(&doc, page_id).unwrap_or(A4);

    // Drop the original signature: field, widget and (after pruning) the signature dictionary.
    if let Ok(catalog) = doc.catalog_mut() {
        catalog.remove(b"AcroForm");
    }

    let glyphs_of = |s: &str| -> Result<Vec<(u16, char)>, WatermarkError> {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .map(|c| {
                font.glyph(c).map(|g| (g.gid, c)).ok_or(WatermarkError::MissingGlyph { ch: c })
            })
            .collect()
    };
    let text_glyphs = glyphs_of(text)?;
    let banner_glyphs = glyphs_of(banner)?;
    let used: BTreeMap<u16, String> =
        text_glyphs.iter().chain(&banner_glyphs).map(|(g, c)| (*g, c.to_string())).collect();
    let embedded = Embedded::subset(font, &used)?;

    let width_of = |glyphs: &[(u16, char)], size: f32| -> f32 {
        glyphs.iter().map(|(_, c)| font.advance_pt(*c, size)).sum()
    };
    let mut content = String::new();
    // Diagonal banner, centred, translucent.
    let diagonal = (width * width + height * height).sqrt();
    let banner_w1 = width_of(&banner_glyphs, 1.0).max(1.0);
    let size = (diagonal * 0.7 / banner_w1).min(48.0);
    let angle = height.atan2(width);
    let (sin, cos) = angle.sin_cos();
    let w = banner_w1 * size;
    let x = width / 2.0 - cos * w / 2.0 + sin * size * 0.35;
    let y = height / 2.0 - sin * w / 2.0 - cos * size * 0.35;
    let _ = writeln!(
        content,
        "q /{GS_RES} gs 0.8 0.1 0.1 rg BT /{FONT_RES} {size:.2} Tf {cos:.4} {sin:.4} {:.4} {cos:.4} {x:.2} {y:.2} Tm <{}> Tj ET Q",
        -sin,
        embedded.hex(&banner_glyphs)
    );
    // The full watermark text, wrapped, along the bottom.
    let max_w = width - 2.0 * MARGIN;
    let mut lines: Vec<Vec<(u16, char)>> = vec![Vec::new()];
    let mut line_w = 0.0;
    for g in text_glyphs {
        let adv = font.advance_pt(g.1, FOOTER_SIZE);
        if line_w + adv > max_w && lines.last().is_some_and(|l| !l.is_empty()) {
            lines.push(Vec::new());
            line_w = 0.0;
        }
        line_w += adv;
        if let Some(l) = lines.last_mut() {
            l.push(g);
        }
    }
    let pitch = FOOTER_SIZE * 1.4;
    for (i, line) in lines.iter().enumerate() {
        let y = MARGIN * 0.6 + (lines.len() - 1 - i) as f32 * pitch;
        let x = (width - width_of(line, FOOTER_SIZE)) / 2.0;
        let _ = writeln!(
            content,
            "q 0.75 0 0 rg BT /{FONT_RES} {FOOTER_SIZE} Tf 1 0 0 1 {x:.2} {y:.2} Tm <{}> Tj ET Q",
            embedded.hex(line)
        );
    }

    let font_id = embedded.add_to(&mut doc)?;
    let gs_id = doc.add_object(Dictionary::from_iter(vec![
        ("Type", Object::Name(b"ExtGState".to_vec())),
        ("ca", Object::Real(0.22)),
        ("CA", Object::Real(0.22)),
    ]));
    let mut stream = Stream::new(Dictionary::new(), content.into_bytes());
    stream.compress().map_err(|e| WatermarkError::Write { detail: e.to_string() })?;
    let content_id = doc.add_object(stream);

    // Page: no widget, a second content stream, the font and graphics state in its resources.
    let resources = resources_of(&doc, page_id)?;
    let page = doc
        .get_object_mut(page_id)
        .and_then(Object::as_dict_mut)
        .map_err(|_| WatermarkError::Structure { what: "page dictionary" })?;
    page.remove(b"Annots");
    let contents = match page.get(b"Contents") {
        Ok(Object::Array(items)) => {
            let mut items = items.clone();
            items.push(Object::Reference(content_id));
            items
        }
        Ok(other) => vec![other.clone(), Object::Reference(content_id)],
        Err(_) => vec![Object::Reference(content_id)],
    };
    page.set("Contents", Object::Array(contents));
    let mut resources = resources;
    add_entry(&mut resources, "Font", FONT_RES, font_id);
    add_entry(&mut resources, "ExtGState", GS_RES, gs_id);
    page.set("Resources", Object::Dictionary(resources));

    doc.prune_objects();
    doc.reference_table.cross_reference_type = lopdf::xref::XrefType::CrossReferenceTable;
    let mut out = Vec::with_capacity(pdf.len() + 16 * 1024);
    doc.save_to(&mut out).map_err(|e| WatermarkError::Write { detail: e.to_string() })?;
    Ok(out)
}

fn media_box(doc: &Document, page_id: ObjectId) -> Option<(f32, f32)> {
    let page = doc.get_dictionary(page_id).ok()?;
    let b = page.get(b"MediaBox").ok()?.as_array().ok()?;
    let n = |i: usize| b.get(i).and_then(|o| o.as_float().ok());
    Some((n(2)? - n(0)?, n(3)? - n(1)?))
}

/// The page's resource dictionary, resolved (inline or referenced), as an owned copy.
fn resources_of(doc: &Document, page_id: ObjectId) -> Result<Dictionary, WatermarkError> {
    let page = doc
        .get_dictionary(page_id)
        .map_err(|_| WatermarkError::Structure { what: "page dictionary" })?;
    match page.get(b"Resources") {
        Ok(Object::Dictionary(d)) => Ok(d.clone()),
        Ok(Object::Reference(id)) => doc
            .get_dictionary(*id)
            .cloned()
            .map_err(|_| WatermarkError::Structure { what: "resources" }),
        _ => Ok(Dictionary::new()),
    }
}

/// Adds `/category << /name id >>` to resources, keeping what is there.
fn add_entry(resources: &mut Dictionary, category: &str, name: &str, id: ObjectId) {
    let mut sub = match resources.get(category.as_bytes()) {
        Ok(Object::Dictionary(d)) => d.clone(),
        _ => Dictionary::new(),
    };
    sub.set(name, Object::Reference(id));
    resources.set(category, Object::Dictionary(sub));
}

/// The watermark's font: a printpdf subset of the face font with a fixed subset tag.
struct Embedded {
    font: EmbeddedFont,
    base_font: String,
}

impl Embedded {
    fn subset(font: &FaceFont, used: &BTreeMap<u16, String>) -> Result<Embedded, WatermarkError> {
        // printpdf's subsetter, not the renderer's fast CFF path: a copy is made once, and the
        // copy's bytes must stay what they have been.
        let font = EmbeddedFont::subset(font, used, SubsetPath::Printpdf).map_err(|e| match e {
            PdfError::Subset { reason } => WatermarkError::Subset { reason },
            PdfError::Write { reason } => WatermarkError::Write { detail: reason },
        })?;
        let base_font = font.base_font("WMARKA");
        Ok(Embedded { font, base_font })
    }

    fn hex(&self, glyphs: &[(u16, char)]) -> String {
        let mut s = String::with_capacity(glyphs.len() * 4);
        for (gid, _) in glyphs {
            let _ = write!(s, "{:04X}", self.font.code(*gid));
        }
        s
    }

    /// Adds the Type0 font and its parts to `doc`; returns the Type0 font's id.
    fn add_to(&self, doc: &mut Document) -> Result<ObjectId, WatermarkError> {
        let compressed = |dict: Dictionary, data: Vec<u8>| -> Result<Stream, WatermarkError> {
            let mut s = Stream::new(dict, data);
            s.compress().map_err(|e| WatermarkError::Write { detail: e.to_string() })?;
            Ok(s)
        };
        let program = self.font.program();
        let program_id =
            doc.add_object(compressed(program.stream_dict(), program.bytes().to_vec())?);
        let (ascent, descent) = (self.font.ascent(), self.font.descent());
        // The box of an em square from the descender to the ascender, not the face's own box.
        let metrics = DescriptorMetrics { bbox: [0, descent, 1000, ascent], ascent, descent };
        let descriptor_id =
            doc.add_object(embed::font_descriptor(&self.base_font, program, metrics, program_id));
        // One `/W` entry per glyph, default widths included.
        let mut widths = Vec::new();
        for (code, _, w) in self.font.glyphs() {
            widths.push(Object::Integer(i64::from(*code)));
            widths.push(Object::Array(vec![Object::Integer(*w)]));
        }
        let cid_id =
            doc.add_object(embed::cid_font(&self.base_font, program, descriptor_id, widths));
        let to_unicode_id =
            doc.add_object(compressed(Dictionary::new(), self.font.to_unicode_cmap())?);
        Ok(doc.add_object(embed::type0_font(&self.base_font, cid_id, to_unicode_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(
            watermark_text("医保定点审核", "长春市医疗保障局", d),
            "仅供医保定点审核使用 · 长春市医疗保障局 · 有效期至 2026-12-31"
        );
        assert_eq!(banner_text("短"), "加注件 仅供短使用");
        assert_eq!(banner_text(&"长".repeat(20)), format!("加注件 仅供{}…使用", "长".repeat(16)));
    }
}
