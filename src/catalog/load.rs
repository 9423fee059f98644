//! Loading catalog files: TOML → raw structs (serde, no checks) → [`LicenceType`], collecting
//! every problem of every file with its file, line and key, so that `catalog check` reports them
//! all at once.

use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::{
    Authority, Catalog, FieldKind, FieldSpec, HolderCategory, Level, LicenceType, Sharing,
    ValidityRange, keys,
};
use crate::codes;

/// Holder-code types of GB/T 36903 that a catalog may name.
const HOLDER_CODE_TYPES: [&str; 9] =
    ["001", "099", "111", "411", "412", "413", "414", "511", "516"];

/// One problem in one catalog file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `field[3].kind`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => {
                write!(f, "{}:{}: {}: {}", self.file.display(), line, self.key, self.message)
            }
            None => write!(f, "{}: {}: {}", self.file.display(), self.key, self.message),
        }
    }
}

/// Every problem found while loading a catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CatalogError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the catalog:", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawType {
    name: Spanned<String>,
    code: Spanned<String>,
    #[serde(default)]
    local_code: bool,
    issuing_level: Level,
    holder_category: HolderCategory,
    holder_code_type: Spanned<String>,
    #[serde(default)]
    single_instance: bool,
    #[serde(default)]
    review: bool,
    check_answer_days: Option<u32>,
    definer: RawAuthority,
    validity: RawValidity,
    sharing: RawSharing,
    service_item: Option<RawServiceItem>,
    #[serde(default)]
    field: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    name: String,
    uscc: Spanned<String>,
    level: Level,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidity {
    max_years: Option<u32>,
    #[serde(default)]
    open_ended: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSharing {
    mode: Spanned<String>,
    #[serde(default)]
    scope: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServiceItem {
    name: String,
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    key: String,
    label: String,
    kind: String,
    #[serde(default)]
    required: bool,
    max_len: Option<usize>,
    #[serde(default)]
    values: Vec<String>,
    pattern: Option<String>,
    #[serde(default)]
    personal: bool,
    #[serde(default)]
    trade_secret: bool,
}

/// Collects problems for one configuration file (catalog or pipeline), turning byte offsets
/// into line numbers.
pub(crate) struct Problems<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
    pub(crate) found: Vec<ConfigProblem>,
}

impl Problems<'_> {
    pub(crate) fn at(
        &mut self,
        offset: Option<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = offset.map(|o| line_of(self.text, o));
        self.found.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line,
            key: key.into(),
            message: message.into(),
        });
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Loads every `*.toml` in `dir` (sorted by name). Fails with every problem of every file.
pub fn load_dir(dir: &Path) -> Result<Catalog, CatalogError> {
    CatalogSources::read_dir(dir)?.load(dir)
}

/// A catalog as its files: file name → TOML text, sorted by name. What a registry publishes
/// (`elicence catalog publish`) and compares by [`CatalogSources::sha256`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CatalogSources {
    pub files: std::collections::BTreeMap<String, String>,
}

impl CatalogSources {
    /// Reads every `*.toml` file of `dir` (not parsed). Fails when the folder or a file cannot
    /// be read, or when it has no catalog file.
    pub fn read_dir(dir: &Path) -> Result<CatalogSources, CatalogError> {
        let problem = |file: &Path, message: String| ConfigProblem {
            file: file.to_path_buf(),
            line: None,
            key: String::new(),
            message,
        };
        let paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                let p = problem(dir, format!("cannot read catalog folder: {e}"));
                return Err(CatalogError { problems: vec![p] });
            }
        };
        let mut sources = CatalogSources::default();
        let mut problems = Vec::new();
        for path in &paths {
            let name =
                path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    sources.files.insert(name, text);
                }
                Err(e) => problems.push(problem(path, format!("cannot read: {e}"))),
            }
        }
        if paths.is_empty() {
            problems.push(problem(dir, "no catalog files (*.toml) in this folder".into()));
        }
        if problems.is_empty() { Ok(sources) } else { Err(CatalogError { problems }) }
    }

    /// Parses and checks every file (problems name `origin`/file name). Fails with every
    /// problem of every file.
    pub fn load(&self, origin: &Path) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        let mut problems = Vec::new();
        for (name, text) in &self.files {
            let id = Path::new(name).file_stem().map(|s| s.to_string_lossy().into_owned());
            match parse(&origin.join(name), &id.unwrap_or_default(), text) {
                Ok(t) => catalog.types.push(t),
                Err(e) => problems.extend(e.problems),
            }
        }
        check_unique(&catalog, &mut problems);
        if problems.is_empty() { Ok(catalog) } else { Err(CatalogError { problems }) }
    }

    /// SHA-256 (lower-case hex) of the canonical form: for each file by name, its name, a 0
    /// byte, its length (8 bytes, big-endian) and its text. Equal files, equal hash.
    pub fn sha256(&self) -> String {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        for (name, text) in &self.files {
            h.update(name.as_bytes());
            h.update([0]);
            h.update((text.len() as u64).to_be_bytes());
            h.update(text.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

fn check_unique(catalog: &Catalog, problems: &mut Vec<ConfigProblem>) {
    for (i, t) in catalog.types.iter().enumerate() {
        if let Some(other) =
            catalog.types[..i].iter().find(|o| o.code == t.code || o.name == t.name)
        {
            problems.push(ConfigProblem {
                file: PathBuf::from(format!("{}.toml", t.id)),
                line: None,
                key: "code".into(),
                message: format!(
                    "type {} ({}) duplicates {} ({})",
                    t.name, t.code, other.name, other.id
                ),
            });
        }
    }
}

/// Loads and checks one catalog file.
pub fn load_file(path: &Path) -> Result<LicenceType, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|e| CatalogError {
        problems: vec![ConfigProblem {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    parse(path, &id, &text)
}

/// Parses catalog text; `path` is only used in problems.
pub(crate) fn parse(path: &Path, id: &str, text: &str) -> Result<LicenceType, CatalogError> {
    let mut p = Problems { file: path, text, found: Vec::new() };
    let raw: RawType = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            p.at(e.span().map(|s| s.start), "", e.message().trim().to_string());
            return Err(CatalogError { problems: p.found });
        }
    };
    let ty = build(&mut p, id, raw);
    if p.found.is_empty() { Ok(ty) } else { Err(CatalogError { problems: p.found }) }
}

fn build(p: &mut Problems<'_>, id: &str, raw: RawType) -> LicenceType {
    let code = raw.code.get_ref().clone();
    check_type_code(p, &raw.code);
    if let Err(e) = codes::check_uscc(raw.definer.uscc.get_ref()) {
        p.at(Some(raw.definer.uscc.span().start), "definer.uscc", e.to_string());
    } else if code.len() == 21 && !code.starts_with(raw.definer.uscc.get_ref().as_str()) {
        p.at(
            Some(raw.code.span().start),
            "code",
            "must begin with the definer's USCC (GB/T 36902)",
        );
    }
    if !HOLDER_CODE_TYPES.contains(&raw.holder_code_type.get_ref().as_str()) {
        p.at(
            Some(raw.holder_code_type.span().start),
            "holder_code_type",
            format!("unknown holder-code type; expected one of {}", HOLDER_CODE_TYPES.join(", ")),
        );
    }
    let sharing = match raw.sharing.mode.get_ref().as_str() {
        "unconditional" | "not_shared" if !raw.sharing.scope.is_empty() => {
            p.at(
                Some(raw.sharing.mode.span().start),
                "sharing.scope",
                "a scope is only for conditional sharing",
            );
            Sharing::NotShared
        }
        "unconditional" => Sharing::Unconditional,
        "not_shared" => Sharing::NotShared,
        "conditional" => {
            if raw.sharing.scope.is_empty() {
                p.at(
                    Some(raw.sharing.mode.span().start),
                    "sharing.scope",
                    "conditional sharing needs the department codes in scope",
                );
            }
            for (i, dept) in raw.sharing.scope.iter().enumerate() {
                if let Err(e) = codes::check_uscc(dept.get_ref()) {
                    p.at(
                        Some(dept.span().start),
                        format!("sharing.scope[{i}]"),
                        format!("{}: {e}", dept.get_ref()),
                    );
                }
            }
            Sharing::Conditional {
                scope: raw.sharing.scope.iter().map(|s| s.get_ref().clone()).collect(),
            }
        }
        other => {
            p.at(
                Some(raw.sharing.mode.span().start),
                "sharing.mode",
                format!(
                    "unknown mode {other:?}; expected unconditional, conditional or not_shared"
                ),
            );
            Sharing::NotShared
        }
    };
    let mut fields: Vec<FieldSpec> = Vec::with_capacity(raw.field.len());
    for (i, table) in raw.field.iter().enumerate() {
        let at = Some(table.span().start);
        let value = toml::Value::Table(table.get_ref().clone());
        match RawField::deserialize(value) {
            Ok(f) => {
                if let Some(spec) = build_field(p, at, i, f) {
                    if fields.iter().any(|x| x.key == spec.key) {
                        p.at(
                            at,
                            format!("field[{i}].key"),
                            format!("duplicate key {:?}", spec.key),
                        );
                    }
                    fields.push(spec);
                }
            }
            Err(e) => p.at(at, format!("field[{i}]"), e.message().trim().to_string()),
        }
    }
    check_reserved_fields(p, &fields, raw.holder_category);
    LicenceType {
        id: id.to_string(),
        name: raw.name.get_ref().clone(),
        code,
        local_code: raw.local_code,
        definer: Authority {
            name: raw.definer.name,
            uscc: raw.definer.uscc.get_ref().clone(),
            level: raw.definer.level,
        },
        issuing_level: raw.issuing_level,
        holder_category: raw.holder_category,
        holder_code_type: raw.holder_code_type.get_ref().clone(),
        validity: ValidityRange {
            max_years: raw.validity.max_years,
            open_ended: raw.validity.open_ended,
        },
        single_instance: raw.single_instance,
        review: raw.review,
        check_answer_days: raw
            .check_answer_days
            .unwrap_or(crate::workdays::DEFAULT_CHECK_ANSWER_DAYS),
        sharing,
        service_item: raw.service_item.map(|s| (s.name, s.code)),
        fields,
    }
}

// GB/T 36902: type code = the defining authority's 18-char USCC + a 3-digit sequence.
fn check_type_code(p: &mut Problems<'_>, code: &Spanned<String>) {
    let c = code.get_ref();
    let at = Some(code.span().start);
    if c.chars().count() != 21 {
        p.at(at, "code", format!("type code must be 21 characters, found {}", c.chars().count()));
    } else if !c[18..].bytes().all(|b| b.is_ascii_digit()) {
        p.at(at, "code", "the last 3 characters of a type code must be digits");
    } else if let Err(e) = codes::check_uscc(&c[..18]) {
        p.at(at, "code", format!("the first 18 characters must be a USCC: {e}"));
    }
}

fn build_field(
    p: &mut Problems<'_>,
    at: Option<usize>,
    i: usize,
    f: RawField,
) -> Option<FieldSpec> {
    let key_ok = !f.key.is_empty()
        && f.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !key_ok {
        p.at(at, format!("field[{i}].key"), format!("{:?} must be lower_snake_case ASCII", f.key));
    }
    if f.label.trim().is_empty() {
        p.at(at, format!("field[{i}].label"), "label must not be empty");
    }
    if !f.values.is_empty() && f.kind != "enum" {
        p.at(at, format!("field[{i}].values"), "values are only for kind = \"enum\"");
    }
    if f.pattern.is_some() && f.kind != "licence_no" {
        p.at(at, format!("field[{i}].pattern"), "pattern is only for kind = \"licence_no\"");
    }
    let kind = match f.kind.as_str() {
        "text" => FieldKind::Text,
        "date" => FieldKind::Date,
        "uscc" => FieldKind::Uscc,
        "citizen_id" => FieldKind::CitizenId,
        "org_code" => FieldKind::OrgCode,
        "region_code" => FieldKind::RegionCode,
        "holder_code" => FieldKind::HolderCode,
        "enum" => {
            if f.values.is_empty() {
                p.at(at, format!("field[{i}].values"), "an enum needs its values");
            }
            FieldKind::Enum(f.values.clone())
        }
        "licence_no" => match f.pattern.as_deref() {
            None => {
                p.at(at, format!("field[{i}].pattern"), "a licence_no needs a pattern");
                return None;
            }
            Some(pat) => match Regex::new(&format!("^(?:{pat})$")) {
                Ok(re) => FieldKind::LicenceNo(re),
                Err(e) => {
                    p.at(at, format!("field[{i}].pattern"), format!("bad pattern: {e}"));
                    return None;
                }
            },
        },
        other => {
            p.at(
                at,
                format!("field[{i}].kind"),
                format!(
                    "unknown kind {other:?}; expected text, date, uscc, citizen_id, org_code, \
                     region_code, holder_code, enum or licence_no"
                ),
            );
            return None;
        }
    };
    if f.max_len == Some(0) {
        p.at(at, format!("field[{i}].max_len"), "max_len must be at least 1");
    }
    Some(FieldSpec {
        key: f.key,
        label: f.label,
        kind,
        required: f.required,
        max_len: f.max_len,
        personal: f.personal,
        trade_secret: f.trade_secret,
    })
}

fn check_reserved_fields(p: &mut Problems<'_>, fields: &[FieldSpec], holder: HolderCategory) {
    for key in keys::REQUIRED {
        match fields.iter().find(|f| f.key == key) {
            None => p.at(None, "field", format!("missing required field {key:?}")),
            Some(f) if !f.required => {
                p.at(None, format!("field.{key}"), "this field must be required = true")
            }
            Some(_) => {}
        }
    }
    for f in fields {
        let expected: &[&str] = match f.key.as_str() {
            keys::ISSUE_DATE | keys::VALID_FROM | keys::VALID_TO => &["date"],
            keys::HOLDER_CODE => match holder {
                HolderCategory::Organisation => &["holder_code", "uscc"],
                HolderCategory::Person => &["holder_code", "citizen_id"],
            },
            keys::LICENCE_NO => &["licence_no", "text"],
            _ => continue,
        };
        if !expected.contains(&f.kind.name()) {
            p.at(
                None,
                format!("field.{}.kind", f.key),
                format!("must be {}, found {}", expected.join(" or "), f.kind.name()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "测试许可证"
code = "11100000000013338W032"
issuing_level = "county"
holder_category = "organisation"
holder_code_type = "001"
[definer]
name = "住房和城乡建设部"
uscc = "11100000000013338W"
level = "national"
[validity]
max_years = 5
[sharing]
mode = "unconditional"
[[field]]
key = "licence_no"
label = "编号"
kind = "text"
required = true
[[field]]
key = "holder_name"
label = "名称"
kind = "text"
required = true
[[field]]
key = "holder_code"
label = "统一社会信用代码"
kind = "uscc"
required = true
[[field]]
key = "issuer_name"
label = "发证机关"
kind = "text"
required = true
[[field]]
key = "issue_date"
label = "发证日期"
kind = "date"
required = true
"#;

    #[test]
    fn good_file_loads() {
        let t = parse(Path::new("t.toml"), "t", GOOD).expect("loads");
        assert_eq!(t.fields.len(), 5);
        assert_eq!(t.sharing, Sharing::Unconditional);
    }

    #[test]
    fn every_problem_is_reported_with_line_and_key() {
        let bad = GOOD
            .replace("11100000000013338W032", "11100000000013338X03")
            .replace("kind = \"date\"", "kind = \"datum\"")
            .replace("mode = \"unconditional\"", "mode = \"conditional\"");
        let err = parse(Path::new("t.toml"), "t", &bad).unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"code"), "{keys:?}");
        assert!(keys.contains(&"field[4].kind"), "{keys:?}");
        assert!(keys.contains(&"sharing.scope"), "{keys:?}");
        let code = err.problems.iter().find(|p| p.key == "code").unwrap();
        assert_eq!(code.line, Some(3));
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse(Path::new("t.toml"), "t", "name = \"x\"\ncode = \n").unwrap_err();
        assert_eq!(err.problems[0].line, Some(2));
    }
}
