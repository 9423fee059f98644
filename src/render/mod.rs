//! Renderers: turn a validated [`Licence`](crate::licence::Licence) into the two artefacts that
//! get signed — the PDF licence face ([`pdf`]) and the XML e-licence ([`xml`]) — plus the
//! verification string printed as a QR code on the face ([`qr`]).
//!
//! Everything here is pure once loaded: the CJK font ([`crate::font::FaceFont`]), the face layouts
//! ([`layout::Layout`]) and the seal images are read by explicit loaders at start-up; rendering
//! itself touches no file and no clock (the creation time is passed in), so the same input
//! always gives the same bytes. The page is laid out here; the PDF file it goes into, the font
//! embedding and compression are [`crate::pdf`]'s.

pub mod layout;
pub mod ofd;
pub mod pdf;
pub mod qr;
mod wrap;
pub mod xml;
mod zipfile;

use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};

use crate::font::FontError;
use crate::pdf::PdfError;

pub use layout::Layout;
pub use pdf::PdfRenderer;
pub use qr::{QrMatrix, face_qr_payload, parse_qr_payload, qr_payload};

/// Checks a public verification URL for the faces' QR codes (see [`qr::check_public_url`]) and
/// returns it without a trailing `/`.
pub fn check_public_url(url: &str) -> Result<String, RenderError> {
    qr::check_public_url(url)
        .map_err(|reason| RenderError::PublicUrl { url: url.to_owned(), reason })
}
pub use xml::{SealMeta, render_xml};

/// Errors of the render stage. Each variant keeps the facts (file, key, field, character);
/// the `Display` text is built from them.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The face font could not be located or loaded.
    #[error(transparent)]
    Font(#[from] FontError),

    /// Reading a layout or seal file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A layout file is malformed or inconsistent. `key` is the TOML key path (`box[3].w`).
    #[error("{}: {key}: {reason}", file.display())]
    Layout { file: PathBuf, key: String, reason: String },

    /// A layout box names a field the catalog type does not have.
    #[error("{}: {key}: field {field:?} is not in the catalog for this type", file.display())]
    LayoutUnknownField { file: PathBuf, key: String, field: String },

    /// Two layout files claim the same licence type.
    #[error("{}: type {type_name:?} already has a layout in {}", file.display(), first.display())]
    DuplicateLayout { file: PathBuf, first: PathBuf, type_name: String },

    /// A seal PNG could not be decoded.
    #[error("{}: seal image: {reason}", path.display())]
    Seal { path: PathBuf, reason: String },

    /// A value does not fit its box even after shrinking the font one step.
    #[error("field {field}: text does not fit its box")]
    Overflow { field: String },

    /// The face font has no glyph for a character of this field.
    #[error("field {field}: the face font has no glyph for {ch:?} (U+{:04X})", *ch as u32)]
    MissingGlyph { field: String, ch: char },

    /// The face could not be written as a PDF (font subsetting or serialisation).
    #[error(transparent)]
    Pdf(#[from] PdfError),

    /// The QR payload is too long for a QR code.
    #[error("QR payload of {len} bytes cannot be encoded")]
    QrEncode { len: usize },

    /// The OFD package could not be written (font subset, zip).
    #[error("OFD: {reason}")]
    Ofd { reason: String },

    /// The public verification URL (`--public-url`, `[output] public_url`) cannot go in a QR code.
    #[error("public URL {url:?} {reason}")]
    PublicUrl { url: String, reason: &'static str },

    /// A scanned QR payload is neither `ELIC1:<identifier>:<16 hex>` nor
    /// `<URL>/v/<identifier>?d=<16 hex>`.
    #[error(
        "QR payload is not ELIC1:<identifier>:<16 hex digits> or <URL>/v/<identifier>?d=<16 hex digits>: {reason}"
    )]
    QrPayload { reason: &'static str },
}

/// A date the way Chinese licences print it: `2017年4月24日` (no leading zeros).
pub fn chinese_date(date: NaiveDate) -> String {
    format!("{}年{}月{}日", date.year(), date.month(), date.day())
}

/// The validity end as printed: a Chinese date, or 长期 for open-ended validity.
pub fn chinese_valid_to(valid_to: Option<NaiveDate>) -> String {
    match valid_to {
        Some(d) => chinese_date(d),
        None => "长期".to_string(),
    }
}

/// A small licence shared by the unit tests of this module.
#[cfg(test)]
pub(crate) mod test_support {
    use chrono::NaiveDate;

    use crate::licence::{FaceField, Licence, LicenceStatus};
    use crate::record::SourcePos;

    pub(crate) fn licence() -> Licence {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        Licence {
            type_name: "食品经营许可证".into(),
            type_code: "11100000MB0327169X001".into(),
            printed_no: "JY12201020000123".into(),
            issuer_name: "长春市朝阳区市场监督管理局".into(),
            issuer_code: "11220104MB1234567X".into(),
            holder_name: "长春市王䶮餐饮有限公司".into(),
            holder_code: "91220104MA0Y123456".into(),
            holder_code_type: "001".into(),
            issue_date: d(2017, 4, 24),
            valid_from: d(2017, 4, 24),
            valid_to: Some(d(2022, 4, 23)),
            region_code: "220104".into(),
            status: LicenceStatus::Valid,
            fields: vec![
                FaceField {
                    key: "holder_name",
                    label: "经营者名称",
                    value: "长春市王䶮餐饮有限公司".into(),
                },
                FaceField {
                    key: "business_scope",
                    label: "经营项目",
                    value: "A & B <c> \"d\" 'e'\r\nf".into(),
                },
                FaceField { key: "note", label: "a\"b\tc", value: String::new() },
            ],
            pos: SourcePos { file: "t.csv".into(), sheet: None, row: 2 },
        }
    }

    /// Renders the test licence with every shipped layout (seal or not) and the default layout.
    pub(crate) fn rendered_samples() -> Vec<crate::pdf::RenderedPdf> {
        let Ok(font) = crate::font::FaceFont::locate(None) else {
            return Vec::new();
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/layouts");
        let layouts = crate::render::Layout::load_dir(&dir).unwrap();
        let types: Vec<String> = layouts.iter().map(|l| l.type_name.clone()).collect();
        let renderer = crate::render::PdfRenderer::new(std::sync::Arc::new(font), layouts).unwrap();
        let created = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let id = "1.2.156.3005.2.11100000MB0327169X001.11220104MB1234567X.JY12201020000123.001.Q";
        let mut l = licence();
        l.fields[1].value = "预包装食品销售".into();
        types
            .into_iter()
            .chain(["某某登记证".to_string()])
            .filter_map(|t| {
                l.type_name = t;
                // A shipped layout may need fields the test licence lacks: those are skipped.
                renderer.render_signable(&l, id, "ELIC1:X:0123456789ABCDEF", created).ok()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_dates_have_no_leading_zeros() {
        let d = NaiveDate::from_ymd_opt(2017, 4, 24).unwrap();
        assert_eq!(chinese_date(d), "2017年4月24日");
        assert_eq!(chinese_valid_to(None), "长期");
        assert_eq!(chinese_valid_to(NaiveDate::from_ymd_opt(2022, 4, 23)), "2022年4月23日");
    }

    #[test]
    fn font_errors_read_as_before() {
        let inner = FontError::NotFound { tried: vec![PathBuf::from("/a.ttc")] };
        let text = inner.to_string();
        let e = RenderError::from(inner);
        assert_eq!(e.to_string(), text, "a wrapped font error prints as itself");
        assert!(text.contains("apt-get install fonts-noto-cjk"), "{text}");
    }
}
