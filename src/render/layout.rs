//! Face layouts (版式): where each face field of one licence type goes on the A4 page.
//!
//! One TOML file per catalog type under `pipelines/layouts/` (`food-business-permit.toml`, …).
//! A layout names the type it draws, the title, one `[[box]]` per printed face field (catalog key,
//! optional label override, position and size in millimetres from the top-left corner, font size,
//! whether the value wraps), and the fixed elements: identifier line (证照标识), printed number,
//! issuer block with issue date, QR code and optional seal image (a PNG path relative to the
//! layout file). Which fields appear is the layout's decision: personal data such as an ID number
//! stays off the face unless a box names it.
//!
//! Parsing is plain serde with `deny_unknown_fields`; errors name the file and the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::licence::FaceField;
use crate::render::RenderError;

/// A4 portrait, in millimetres.
pub const PAGE_WIDTH_MM: f32 = 210.0;
pub const PAGE_HEIGHT_MM: f32 = 297.0;

const MIN_FONT_PT: f32 = 5.0;
const MAX_FONT_PT: f32 = 48.0;

fn default_page() -> String {
    "A4".to_string()
}
fn default_font_size() -> f32 {
    11.0
}
fn default_label_width() -> f32 {
    32.0
}
fn default_title_size() -> f32 {
    26.0
}
fn default_title_y() -> f32 {
    30.0
}
fn default_small_size() -> f32 {
    8.0
}
fn default_true() -> bool {
    true
}

/// One licence type's face layout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Catalog type name this layout draws (证照名称), e.g. 食品经营许可证.
    pub type_name: String,
    /// Only `"A4"` (portrait) is supported.
    #[serde(default = "default_page")]
    pub page: String,
    /// Draw the double border frame.
    #[serde(default = "default_true")]
    pub frame: bool,
    /// Default font size of box labels and values, in points.
    #[serde(default = "default_font_size")]
    pub font_size: f32,
    /// Default width of the label column inside a box, in millimetres.
    #[serde(default = "default_label_width")]
    pub label_width: f32,
    #[serde(default)]
    pub title: Title,
    #[serde(default, rename = "box")]
    pub boxes: Vec<FieldBox>,
    /// Printed licence number line (证照编号), when no box shows `licence_no`.
    #[serde(default)]
    pub printed_no: Option<TextSpot>,
    pub identifier: TextSpot,
    pub issuer: IssuerSpot,
    pub qr: QrSpot,
    #[serde(default)]
    pub seal: Option<SealSpot>,
    /// The file this layout came from (set by the loader; relative seal paths resolve against
    /// its folder).
    #[serde(skip)]
    pub source: PathBuf,
}

/// The title line, centred.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Title {
    /// Title text; the licence's type name when absent.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default = "default_title_size")]
    pub size: f32,
    /// Top of the title line, mm from the top edge.
    #[serde(default = "default_title_y")]
    pub y: f32,
    /// Extra space between title characters, in em.
    #[serde(default)]
    pub spacing: f32,
}

impl Default for Title {
    fn default() -> Self {
        Title { text: None, size: default_title_size(), y: default_title_y(), spacing: 0.0 }
    }
}

/// A face field drawn as `label  value` inside a box.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldBox {
    /// Catalog key of the face field.
    pub field: String,
    /// Label override; the catalog label when absent; `""` for no label.
    #[serde(default)]
    pub label: Option<String>,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// Font size in points; the layout's `font_size` when absent.
    #[serde(default)]
    pub size: Option<f32>,
    /// Width of the label column in mm; the layout's `label_width` when absent.
    #[serde(default)]
    pub label_width: Option<f32>,
    /// Wrap long values onto several lines inside the box.
    #[serde(default)]
    pub wrap: bool,
}

/// A single line of text at a position (identifier, printed number).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSpot {
    pub x: f32,
    pub y: f32,
    #[serde(default = "default_small_size")]
    pub size: f32,
    /// Label before the value; a default per element when absent.
    #[serde(default)]
    pub label: Option<String>,
}

/// The issuer block: issuer name over the issue date, centred in `w`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpot {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    #[serde(default = "default_font_size")]
    pub size: f32,
    /// Line above the issuer name, e.g. 发证机关（盖章）; none when absent.
    #[serde(default)]
    pub caption: Option<String>,
}

/// The QR code square (quiet zone included), and its caption below.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrSpot {
    pub x: f32,
    pub y: f32,
    pub size: f32,
    #[serde(default)]
    pub caption: Option<String>,
}

/// The seal image, centred over the issuer block.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealSpot {
    /// PNG path, relative to the layout file.
    pub path: PathBuf,
    /// Diameter in mm.
    pub size: f32,
}

impl Layout {
    /// Parse a layout from TOML text; `source` names the file in errors and anchors the seal path.
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Self, RenderError> {
        let mut layout: Layout = toml::from_str(text).map_err(|e| RenderError::Layout {
            file: source.to_path_buf(),
            key: toml_error_key(&e, text),
            reason: e.message().to_string(),
        })?;
        layout.source = source.to_path_buf();
        if let Some(seal) = layout.seal.as_mut()
            && seal.path.is_relative()
        {
            let base = source.parent().unwrap_or(Path::new("."));
            seal.path = base.join(&seal.path);
        }
        layout.validate()?;
        Ok(layout)
    }

    /// Read and parse one layout file.
    pub fn load(path: &Path) -> Result<Self, RenderError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RenderError::Io { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text, path)
    }

    /// Load every `*.toml` in `dir` (sorted by file name). All broken files are reported
    /// together; two files for the same type are an error.
    pub fn load_dir(dir: &Path) -> Result<Vec<Layout>, Vec<RenderError>> {
        let entries = std::fs::read_dir(dir)
            .map_err(|source| vec![RenderError::Io { path: dir.to_path_buf(), source }])?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut layouts = Vec::new();
        let mut errors = Vec::new();
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for path in paths {
            match Self::load(&path) {
                Ok(layout) => {
                    if let Some(first) = seen.get(&layout.type_name) {
                        errors.push(RenderError::DuplicateLayout {
                            file: path.clone(),
                            first: first.clone(),
                            type_name: layout.type_name.clone(),
                        });
                    } else {
                        seen.insert(layout.type_name.clone(), path.clone());
                        layouts.push(layout);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() { Ok(layouts) } else { Err(errors) }
    }

    /// A fallback layout that stacks every face field in catalog order down the page, wrapping
    /// each value. Fields ending in `_id` (personal ID numbers) and the issuer/issue date (shown
    /// in the issuer block) are left off.
    pub fn default_for(type_name: &str, fields: &[FaceField]) -> Layout {
        let shown: Vec<&FaceField> = fields
            .iter()
            .filter(|f| !f.key.ends_with("_id") && f.key != "issuer_name" && f.key != "issue_date")
            .collect();
        // Give each box as many lines as its value needs at 10 pt (8 pt if that does not fit
        // between the title and the issuer block).
        let (top, bottom, x, w, label_w) = (50.0_f32, 222.0_f32, 25.0_f32, 160.0_f32, 34.0_f32);
        let value_w_pt = (w - label_w - 2.0) * 72.0 / 25.4;
        let heights = |size: f32| -> Vec<f32> {
            shown
                .iter()
                .map(|f| {
                    let chars = f.value.chars().count().max(1) as f32;
                    let lines = (chars * size / value_w_pt).ceil().max(1.0);
                    ((lines - 1.0) * size * 1.45 + size) * 25.4 / 72.0 + 3.5
                })
                .collect()
        };
        let mut size = 10.0;
        let mut hs = heights(size);
        if hs.iter().sum::<f32>() > bottom - top {
            size = 8.0;
            hs = heights(size);
        }
        let mut y = top;
        let boxes = shown
            .iter()
            .zip(hs)
            .map(|(f, h)| {
                let b = FieldBox {
                    field: f.key.to_string(),
                    label: None,
                    x,
                    y,
                    w,
                    h: h.min(PAGE_HEIGHT_MM - 20.0 - y).max(1.0),
                    size: Some(size),
                    label_width: Some(label_w),
                    wrap: true,
                };
                y += h;
                b
            })
            .collect();
        let has_no = shown.iter().any(|f| f.key == "licence_no");
        Layout {
            type_name: type_name.to_string(),
            page: default_page(),
            frame: true,
            font_size: default_font_size(),
            label_width: default_label_width(),
            title: Title::default(),
            boxes,
            printed_no: (!has_no).then_some(TextSpot { x: 25.0, y: 42.0, size: 10.0, label: None }),
            identifier: TextSpot { x: 25.0, y: 276.0, size: 7.5, label: None },
            issuer: IssuerSpot { x: 115.0, y: 236.0, w: 70.0, size: 11.0, caption: None },
            qr: QrSpot { x: 25.0, y: 230.0, size: 34.0, caption: None },
            seal: None,
            source: PathBuf::from("<default>"),
        }
    }

    /// Report every box naming a key that `catalog_keys` (the type's catalog fields) lacks.
    pub fn check(&self, catalog_keys: &[&str]) -> Result<(), Vec<RenderError>> {
        let errors: Vec<RenderError> = self
            .boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| !catalog_keys.contains(&b.field.as_str()))
            .map(|(i, b)| RenderError::LayoutUnknownField {
                file: self.source.clone(),
                key: format!("box[{i}].field"),
                field: b.field.clone(),
            })
            .collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Font size of a box, in points.
    pub fn box_size(&self, b: &FieldBox) -> f32 {
        b.size.unwrap_or(self.font_size)
    }

    /// Label column width of a box, in mm (0 when the box has no label).
    pub fn box_label_width(&self, b: &FieldBox) -> f32 {
        if b.label.as_deref() == Some("") { 0.0 } else { b.label_width.unwrap_or(self.label_width) }
    }

    fn validate(&self) -> Result<(), RenderError> {
        let err = |key: String, reason: &str| RenderError::Layout {
            file: self.source.clone(),
            key,
            reason: reason.to_string(),
        };
        if self.page != "A4" {
            return Err(err("page".into(), "only \"A4\" (portrait) is supported"));
        }
        if self.type_name.trim().is_empty() {
            return Err(err("type_name".into(), "must not be empty"));
        }
        let size_ok = |s: f32| (MIN_FONT_PT..=MAX_FONT_PT).contains(&s);
        let on_page = |x: f32, y: f32, w: f32, h: f32| {
            x >= 0.0
                && y >= 0.0
                && w > 0.0
                && h > 0.0
                && x + w <= PAGE_WIDTH_MM
                && y + h <= PAGE_HEIGHT_MM
        };
        if !size_ok(self.font_size) {
            return Err(err("font_size".into(), "font size must be 5–48 pt"));
        }
        if !size_ok(self.title.size) {
            return Err(err("title.size".into(), "font size must be 5–48 pt"));
        }
        for (i, b) in self.boxes.iter().enumerate() {
            if b.field.trim().is_empty() {
                return Err(err(format!("box[{i}].field"), "must not be empty"));
            }
            if !on_page(b.x, b.y, b.w, b.h) {
                return Err(err(format!("box[{i}]"), "box must lie on the A4 page"));
            }
            if !size_ok(self.box_size(b)) {
                return Err(err(format!("box[{i}].size"), "font size must be 5–48 pt"));
            }
            if self.box_label_width(b) >= b.w {
                return Err(err(
                    format!("box[{i}].label_width"),
                    "label column must be narrower than the box",
                ));
            }
        }
        let spots =
            [("identifier", Some(&self.identifier)), ("printed_no", self.printed_no.as_ref())];
        for (key, spot) in spots {
            if let Some(s) = spot {
                if !on_page(s.x, s.y, 1.0, 1.0) {
                    return Err(err(key.into(), "position must lie on the A4 page"));
                }
                if !size_ok(s.size) {
                    return Err(err(format!("{key}.size"), "font size must be 5–48 pt"));
                }
            }
        }
        if !on_page(self.issuer.x, self.issuer.y, self.issuer.w, 1.0) {
            return Err(err("issuer".into(), "block must lie on the A4 page"));
        }
        if !on_page(self.qr.x, self.qr.y, self.qr.size, self.qr.size) || self.qr.size < 15.0 {
            return Err(err("qr".into(), "QR square must lie on the page and be at least 15 mm"));
        }
        if let Some(seal) = &self.seal
            && !(10.0..=60.0).contains(&seal.size)
        {
            return Err(err("seal.size".into(), "seal diameter must be 10–60 mm"));
        }
        let shows_no = self.boxes.iter().any(|b| b.field == "licence_no");
        if !shows_no && self.printed_no.is_none() {
            return Err(err(
                "printed_no".into(),
                "the printed number must appear: add [printed_no] or a box with field = \"licence_no\"",
            ));
        }
        Ok(())
    }
}

/// The dotted key path of a TOML error (`box[2].wrap`), from its span, or `"(document)"`.
fn toml_error_key(e: &toml::de::Error, text: &str) -> String {
    let Some(span) = e.span() else {
        return "(document)".to_string();
    };
    let line_no = text.get(..span.start).map_or(0, |s| s.matches('\n').count()) + 1;
    // Find the table header governing this line, and the key on the line itself.
    let mut table = String::new();
    let mut box_index: Option<usize> = None;
    let mut boxes = 0usize;
    for line in text.lines().take(line_no) {
        let t = line.trim();
        if t.starts_with("[[box]]") {
            box_index = Some(boxes);
            boxes += 1;
            table = String::new();
        } else if let Some(name) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            box_index = None;
            table = name.trim().to_string();
        }
    }
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let key = line.split_once('=').map(|(k, _)| k.trim().to_string()).unwrap_or_default();
    let prefix = match box_index {
        Some(i) => format!("box[{i}]"),
        None => table,
    };
    match (prefix.is_empty(), key.is_empty()) {
        (true, true) => format!("line {line_no}"),
        (true, false) => key,
        (false, true) => prefix,
        (false, false) => format!("{prefix}.{key}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
type_name = "测试证"
[[box]]
field = "licence_no"
x = 20.0
y = 50.0
w = 170.0
h = 8.0
[identifier]
x = 20.0
y = 280.0
[issuer]
x = 120.0
y = 240.0
w = 60.0
[qr]
x = 20.0
y = 240.0
size = 30.0
"#;

    #[test]
    fn minimal_layout_parses_with_defaults() {
        let l = Layout::from_toml_str(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(l.page, "A4");
        assert_eq!(l.boxes.len(), 1);
        assert_eq!(l.box_size(&l.boxes[0]), 11.0);
        assert!(l.title.text.is_none());
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let text = MINIMAL.replace("h = 8.0", "h = 8.0\nwarp = true");
        match Layout::from_toml_str(&text, Path::new("bad.toml")).unwrap_err() {
            RenderError::Layout { file, key, reason } => {
                assert_eq!(file, PathBuf::from("bad.toml"));
                assert_eq!(key, "box[0].warp");
                assert!(reason.contains("warp"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn box_off_the_page_is_rejected() {
        let text = MINIMAL.replace("w = 170.0", "w = 200.0");
        match Layout::from_toml_str(&text, Path::new("bad.toml")).unwrap_err() {
            RenderError::Layout { key, .. } => assert_eq!(key, "box[0]"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn printed_number_must_appear() {
        let text = MINIMAL.replace("field = \"licence_no\"", "field = \"holder_name\"");
        match Layout::from_toml_str(&text, Path::new("bad.toml")).unwrap_err() {
            RenderError::Layout { key, .. } => assert_eq!(key, "printed_no"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn check_reports_fields_missing_from_the_catalog() {
        let l = Layout::from_toml_str(MINIMAL, Path::new("t.toml")).unwrap();
        assert!(l.check(&["licence_no", "holder_name"]).is_ok());
        let errs = l.check(&["holder_name"]).unwrap_err();
        assert!(matches!(
            &errs[..],
            [RenderError::LayoutUnknownField { key, field, .. }] if key == "box[0].field" && field == "licence_no"
        ));
    }

    #[test]
    fn seal_path_resolves_against_the_layout_folder() {
        let text = format!("{MINIMAL}\n[seal]\npath = \"seal.png\"\nsize = 40.0\n");
        let l = Layout::from_toml_str(&text, Path::new("/a/b/t.toml")).unwrap();
        assert_eq!(l.seal.unwrap().path, PathBuf::from("/a/b/seal.png"));
    }

    #[test]
    fn shipped_layouts_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/layouts");
        let layouts = Layout::load_dir(&dir).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(layouts.len(), 8);
    }

    #[test]
    fn default_layout_leaves_personal_ids_off() {
        let f = |k: &str| {
            let k = crate::licence::intern(k);
            FaceField { key: k, label: k, value: String::new() }
        };
        let l = Layout::default_for("X证", &[f("licence_no"), f("legal_rep_id"), f("holder_name")]);
        let keys: Vec<&str> = l.boxes.iter().map(|b| b.field.as_str()).collect();
        assert_eq!(keys, ["licence_no", "holder_name"]);
        assert!(l.validate().is_ok());
    }
}
