//! The checked pipeline: [`load`] reads a pipeline file and its catalog, checks everything and
//! returns a [`Plan`] or every problem at once. [`Plan::bind`] then resolves the plan's columns
//! against the headers an export actually has.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::spec::{self, PipelineSpec, SheetSpec};
use crate::catalog::load::Problems;
use crate::catalog::{self, ConfigProblem, LicenceType, keys};
use crate::codes;
use crate::licence::LicenceStatus;
use crate::normalise::{Normaliser, width};
use crate::read::{Encoding, ExpectedHeader, Format, Limits, SheetSel, SourceSpec};

/// One mapped column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    pub header: String,
    /// Other names of the column (`aliases`), trimmed.
    pub aliases: Vec<String>,
    /// Index of the field in the catalog type's `fields`.
    pub field: usize,
    pub normalisers: Vec<Normaliser>,
    pub optional: bool,
}

/// The status vocabulary: status words (trimmed) to lifecycle status.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusPlan {
    pub column: Option<String>,
    /// Status of an empty cell; `None` makes an empty status a reject.
    pub default: Option<LicenceStatus>,
    pub words: Vec<(String, LicenceStatus)>,
    /// Header of the paper revocation's date (注销日期), if mapped.
    pub revoked_on: Option<String>,
    /// Header of the paper revocation's reason (注销原因), if mapped.
    pub revoked_reason: Option<String>,
}

impl StatusPlan {
    /// The status a word stands for.
    pub fn lookup(&self, word: &str) -> Option<LicenceStatus> {
        self.words.iter().find(|(w, _)| w == word).map(|(_, s)| *s)
    }
}

/// The face formats a run or preview writes (`--formats pdf,xml,ofd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    pub pdf: bool,
    pub xml: bool,
    pub ofd: bool,
}

impl Default for Formats {
    /// PDF and XML.
    fn default() -> Formats {
        Formats { pdf: true, xml: true, ofd: false }
    }
}

impl std::str::FromStr for Formats {
    type Err = String;

    /// A comma-separated list of `pdf`, `xml`, `ofd` (at least one, each at most once).
    fn from_str(text: &str) -> Result<Formats, String> {
        let mut f = Formats { pdf: false, xml: false, ofd: false };
        for name in text.split(',').map(str::trim) {
            let slot = match name {
                "pdf" => &mut f.pdf,
                "xml" => &mut f.xml,
                "ofd" => &mut f.ofd,
                other => return Err(format!("unknown format {other:?} (pdf, xml, ofd)")),
            };
            if *slot {
                return Err(format!("format {name:?} given twice"));
            }
            *slot = true;
        }
        Ok(f)
    }
}

/// How far a PDF signature goes (ETSI EN 319 142-1 §5: PAdES baseline levels). Each level
/// includes the one before: B-T adds a signature timestamp, B-LT a `/DSS` with the chains and
/// CRLs, B-LTA a document timestamp over all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PadesLevel {
    BB,
    BT,
    BLt,
    BLta,
}

impl PadesLevel {
    /// `b-b`, `b-t`, `b-lt` or `b-lta`.
    pub fn name(self) -> &'static str {
        match self {
            PadesLevel::BB => "b-b",
            PadesLevel::BT => "b-t",
            PadesLevel::BLt => "b-lt",
            PadesLevel::BLta => "b-lta",
        }
    }

    /// Whether the level needs a time-stamping authority (B-T and above).
    pub fn needs_tsa(self) -> bool {
        self >= PadesLevel::BT
    }

    /// The level asked for, else B-T with a TSA and B-B without.
    pub fn resolve(asked: Option<PadesLevel>, tsa: bool) -> PadesLevel {
        asked.unwrap_or(if tsa { PadesLevel::BT } else { PadesLevel::BB })
    }
}

impl std::fmt::Display for PadesLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PadesLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<PadesLevel, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "b-b" => Ok(PadesLevel::BB),
            "b-t" => Ok(PadesLevel::BT),
            "b-lt" => Ok(PadesLevel::BLt),
            "b-lta" => Ok(PadesLevel::BLta),
            other => Err(format!("unknown PAdES level {other:?} (b-b, b-t, b-lt, b-lta)")),
        }
    }
}

/// A PAdES level above B-B asked for without a time-stamping authority (configuration).
#[derive(Debug, thiserror::Error)]
#[error(
    "PAdES level {level} needs a time-stamping authority: give --tsa URL (or ELICENCE_TSA, or \
     the pipeline's [output] tsa), or ask for a lower --pades-level"
)]
pub struct LevelNeedsTsa {
    pub level: PadesLevel,
}

/// An issuing body with its code and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownIssuer {
    pub name: String,
    pub code: String,
    pub region: String,
    pub aliases: Vec<String>,
}

impl KnownIssuer {
    fn answers_to(&self, printed: &str) -> bool {
        self.name == printed || self.aliases.iter().any(|a| a == printed)
    }
}

/// Who issued the licences of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerPlan {
    Fixed(KnownIssuer),
    /// Issuer as printed in a column, mapped to its code through the known list.
    FromColumn {
        column: String,
        known: Vec<KnownIssuer>,
    },
}

impl IssuerPlan {
    /// Every issuer the plan knows (the fixed one, or the known list).
    pub fn known(&self) -> Vec<&KnownIssuer> {
        match self {
            IssuerPlan::Fixed(k) => vec![k],
            IssuerPlan::FromColumn { known, .. } => known.iter().collect(),
        }
    }

    /// The known issuer for a printed name (its current name or an old one).
    pub fn resolve(&self, printed: &str) -> Option<&KnownIssuer> {
        match self {
            IssuerPlan::Fixed(k) => Some(k),
            IssuerPlan::FromColumn { known, .. } => known.iter().find(|k| k.answers_to(printed)),
        }
    }
}

/// A checked pipeline, ready to bind to an export's headers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    /// Pipeline name: the file name without `.toml`.
    pub name: String,
    pub licence_type: LicenceType,
    pub source: SourceSpec,
    pub columns: Vec<ColumnPlan>,
    pub status: StatusPlan,
    pub issuer: IssuerPlan,
    pub archive_copy_column: Option<String>,
    /// `[output] formats`: what a run writes unless `--formats` says otherwise.
    pub formats: Formats,
    /// `[output] tsa`: the TSA that timestamps every signature unless `--tsa` names another.
    pub tsa: Option<String>,
    /// `[output] public_url`: the verification page the QR codes open unless `--public-url`
    /// names another (checked when a run starts).
    pub public_url: Option<String>,
    /// `[output] pades_level`, unless `--pades-level` says otherwise.
    pub pades_level: Option<PadesLevel>,
    pub layout_path: PathBuf,
    pub catalog_dir: PathBuf,
    /// Rows are staged for review before issue: the pipeline's `review = true` or its type's.
    pub review: bool,
    /// The key set's default signer may sign for an issuer without an identity of its own
    /// (`allow_default_signer = true`; the key set checks it when a run loads it).
    pub allow_default_signer: bool,
}

/// Every problem in a pipeline file (and its catalog).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PipelineError {
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the pipeline:", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// A mapped column resolved against an export's headers.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundColumn {
    /// Index into the record's cells; `None` for an optional column the export lacks.
    pub source: Option<usize>,
    pub field: usize,
    pub normalisers: Vec<Normaliser>,
}

/// A plan resolved against one export's headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub columns: Vec<BoundColumn>,
    pub status: Option<usize>,
    pub issuer: Option<usize>,
    pub archive_copy: Option<usize>,
    /// The paper revocation's date and reason columns (`[status] revoked_on`, `revoked_reason`).
    pub revoked_on: Option<usize>,
    pub revoked_reason: Option<usize>,
    /// Number of header cells.
    pub width: usize,
}

/// Reads a pipeline file and its catalog and checks both. Fails with every problem found.
pub fn load(path: &Path) -> Result<Plan, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError {
        problems: vec![ConfigProblem {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read pipeline file: {e}"),
        }],
    })?;
    let mut p = Problems { file: path, text: &text, found: Vec::new() };
    let raw: PipelineSpec = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            p.at(e.span().map(|s| s.start), "", e.message().trim().to_string());
            return Err(PipelineError { problems: p.found });
        }
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let catalog_dir = base.join(raw.catalog.as_deref().unwrap_or("catalog"));
    let catalog = match catalog::load_dir(&catalog_dir) {
        Ok(c) => c,
        Err(e) => {
            p.found.extend(e.problems);
            return Err(PipelineError { problems: p.found });
        }
    };
    let Some(ty) = catalog.get(raw.licence_type.get_ref()).cloned() else {
        let known: Vec<&str> = catalog.types.iter().map(|t| t.id.as_str()).collect();
        p.at(
            Some(raw.licence_type.span().start),
            "type",
            format!(
                "no catalog type {:?} in {}; known: {}",
                raw.licence_type.get_ref(),
                catalog_dir.display(),
                known.join(", ")
            ),
        );
        return Err(PipelineError { problems: p.found });
    };
    let source = build_source(&mut p, &raw.source);
    let columns = build_columns(&mut p, &ty, &raw.column);
    let status = build_status(&mut p, &raw.status);
    let issuer = build_issuer(&mut p, &raw.issuer);
    check_coverage(&mut p, &ty, &columns, &issuer);
    let formats = build_formats(&mut p, raw.output.as_ref());
    let tsa = build_tsa(&mut p, raw.output.as_ref());
    let public_url = build_public_url(raw.output.as_ref());
    let pades_level = build_pades_level(&mut p, raw.output.as_ref());
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let layout_path =
        base.join(raw.layout.clone().unwrap_or_else(|| format!("layouts/{}.toml", ty.id)));
    let review = raw.review || ty.review;
    if !p.found.is_empty() {
        return Err(PipelineError { problems: p.found });
    }
    Ok(Plan {
        path: path.to_path_buf(),
        name,
        licence_type: ty,
        source,
        columns,
        status,
        issuer,
        archive_copy_column: raw.archive_copy_column,
        formats,
        tsa,
        public_url,
        pades_level,
        review,
        allow_default_signer: raw.allow_default_signer,
        layout_path,
        catalog_dir,
    })
}

/// `[output] pades_level`: b-b, b-t, b-lt or b-lta (whether a TSA is there is checked when a
/// run starts, since `--tsa` may give it).
fn build_pades_level(p: &mut Problems<'_>, raw: Option<&spec::OutputSpec>) -> Option<PadesLevel> {
    let level = raw.and_then(|o| o.pades_level.as_ref())?;
    match level.get_ref().parse() {
        Ok(level) => Some(level),
        Err(message) => {
            p.at(Some(level.span().start), "output.pades_level", message);
            None
        }
    }
}

/// `[output] tsa`: an http:// or https:// URL (reached only when a run starts).
fn build_tsa(p: &mut Problems<'_>, raw: Option<&spec::OutputSpec>) -> Option<String> {
    let url = raw.and_then(|o| o.tsa.as_ref())?;
    let lower = url.get_ref().to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Some(url.get_ref().clone())
    } else {
        let message = format!("{:?} is not an http:// or https:// URL", url.get_ref());
        p.at(Some(url.span().start), "output.tsa", message);
        None
    }
}

/// `[output] public_url`, as written: whether a QR code can carry it is the render stage's
/// question (`render::check_public_url`), asked when a run or render starts.
fn build_public_url(raw: Option<&spec::OutputSpec>) -> Option<String> {
    raw.and_then(|o| o.public_url.as_ref()).map(|u| u.get_ref().clone())
}

fn build_formats(p: &mut Problems<'_>, raw: Option<&spec::OutputSpec>) -> Formats {
    let Some(list) = raw.and_then(|o| o.formats.as_ref()) else {
        return Formats::default();
    };
    match list.get_ref().join(",").parse::<Formats>() {
        Ok(f) => f,
        Err(message) => {
            p.at(Some(list.span().start), "output.formats", message);
            Formats::default()
        }
    }
}

fn build_source(p: &mut Problems<'_>, raw: &spec::SourceSpec) -> SourceSpec {
    let format = match raw.format.as_ref().map(|s| (s.get_ref().as_str(), s.span().start)) {
        None | Some(("auto", _)) => Format::Auto,
        Some(("csv", _)) => Format::Csv,
        Some(("xlsx", _)) => Format::Xlsx,
        Some(("xls", _)) => Format::Xls,
        Some(("ods", _)) => Format::Ods,
        Some((other, at)) => {
            p.at(
                Some(at),
                "source.format",
                format!("unknown format {other:?}; expected auto, csv, xlsx, xls or ods"),
            );
            Format::Auto
        }
    };
    let encoding =
        match raw.encoding.as_ref().map(|s| (s.get_ref().to_ascii_lowercase(), s.span().start)) {
            None => Encoding::Auto,
            Some((e, at)) => match e.as_str() {
                "auto" => Encoding::Auto,
                "utf-8" | "utf8" => Encoding::Utf8,
                "gbk" | "gb2312" => Encoding::Gbk,
                "gb18030" => Encoding::Gb18030,
                other => {
                    p.at(
                        Some(at),
                        "source.encoding",
                        format!("unknown encoding {other:?}; expected auto, utf-8, gbk or gb18030"),
                    );
                    Encoding::Auto
                }
            },
        };
    let delimiter = match raw.delimiter.as_ref() {
        None => b',',
        Some(d) => match d.get_ref().as_str() {
            "\\t" | "\t" | "tab" => b'\t',
            // A quote or a line end cannot separate fields: they already mean something.
            s if s.len() == 1 && s.is_ascii() && !matches!(s, "\"" | "\r" | "\n") => {
                s.as_bytes()[0]
            }
            other => {
                p.at(
                    Some(d.span().start),
                    "source.delimiter",
                    format!("{other:?} must be one ASCII character other than a quote, CR or LF"),
                );
                b','
            }
        },
    };
    let sheet = match &raw.sheet {
        None => SheetSel::Index(0),
        Some(SheetSpec::Index(i)) => SheetSel::Index(*i),
        Some(SheetSpec::Name(n)) => SheetSel::Name(n.clone()),
    };
    SourceSpec {
        format,
        encoding,
        delimiter,
        sheet,
        header_row: raw.header_row,
        expected_headers: Vec::new(),
        limits: Limits::default(),
    }
}

fn build_columns(
    p: &mut Problems<'_>,
    ty: &LicenceType,
    raw: &[toml::Spanned<spec::ColumnSpec>],
) -> Vec<ColumnPlan> {
    let mut out: Vec<ColumnPlan> = Vec::with_capacity(raw.len());
    for (i, col) in raw.iter().enumerate() {
        let at = Some(col.span().start);
        let c = col.get_ref();
        let header = width::trim(&c.header).to_string();
        if header.is_empty() {
            p.at(at, format!("column[{i}].header"), "header must not be empty");
        }
        let Some(field) = ty.field_index(&c.field) else {
            p.at(
                at,
                format!("column[{i}].field"),
                format!("{:?} is not a field of {} ({})", c.field, ty.name, ty.id),
            );
            continue;
        };
        if out.iter().any(|o| o.field == field) {
            p.at(at, format!("column[{i}].field"), format!("field {:?} is mapped twice", c.field));
        }
        if out.iter().any(|o| o.names().any(|n| n == header)) {
            p.at(at, format!("column[{i}].header"), format!("header {header:?} is mapped twice"));
        }
        let mut aliases: Vec<String> = Vec::with_capacity(c.aliases.len());
        for alias in &c.aliases {
            let alias = width::trim(alias).to_string();
            if alias.is_empty() {
                p.at(at, format!("column[{i}].aliases"), "an alias must not be empty");
            } else if alias == header
                || aliases.contains(&alias)
                || out.iter().any(|o| o.names().any(|n| n == alias))
            {
                p.at(
                    at,
                    format!("column[{i}].aliases"),
                    format!("header {alias:?} is mapped twice"),
                );
            } else {
                aliases.push(alias);
            }
        }
        let spec = &ty.fields[field];
        let normalisers = match &c.normalise {
            None => Normaliser::defaults_for(&spec.kind),
            Some(names) => {
                let mut ns = Vec::with_capacity(names.len());
                for n in names {
                    match Normaliser::parse(n) {
                        Some(x) => ns.push(x),
                        None => p.at(
                            at,
                            format!("column[{i}].normalise"),
                            format!(
                                "unknown normaliser {n:?}; expected trim, half_width, upper, \
                                 collapse_spaces or citizen_id_upgrade"
                            ),
                        ),
                    }
                }
                ns
            }
        };
        if c.optional && spec.required {
            p.at(
                at,
                format!("column[{i}].optional"),
                format!("field {:?} is required by the catalog", c.field),
            );
        }
        out.push(ColumnPlan { header, aliases, field, normalisers, optional: c.optional });
    }
    out
}

fn parse_status(word: &str) -> Option<LicenceStatus> {
    match word {
        "valid" => Some(LicenceStatus::Valid),
        "changed" => Some(LicenceStatus::Changed),
        "revoked" => Some(LicenceStatus::Revoked),
        _ => None,
    }
}

fn build_status(p: &mut Problems<'_>, raw: &toml::Spanned<spec::StatusSpec>) -> StatusPlan {
    let at = Some(raw.span().start);
    let s = raw.get_ref();
    let default = match s.default.as_deref() {
        None => Some(LicenceStatus::Valid),
        Some("reject") => None,
        Some(w) => parse_status(w).or_else(|| {
            p.at(
                at,
                "status.default",
                format!("{w:?}: expected valid, changed, revoked or reject"),
            );
            None
        }),
    };
    let mut words: Vec<(String, LicenceStatus)> = Vec::new();
    for (list, status) in [
        (&s.valid, LicenceStatus::Valid),
        (&s.changed, LicenceStatus::Changed),
        (&s.revoked, LicenceStatus::Revoked),
    ] {
        for w in list {
            let w = width::trim(w).to_string();
            if let Some((_, other)) = words.iter().find(|(x, _)| *x == w) {
                p.at(
                    at,
                    "status",
                    format!("{w:?} is both {} and {}", other.as_str(), status.as_str()),
                );
            }
            words.push((w, status));
        }
    }
    if s.column.is_some() && words.is_empty() {
        p.at(at, "status", "a status column needs its vocabulary (valid, changed, revoked)");
    }
    let header = |c: &Option<String>| c.as_deref().map(|c| width::trim(c).to_string());
    StatusPlan {
        column: header(&s.column),
        default,
        words,
        revoked_on: header(&s.revoked_on),
        revoked_reason: header(&s.revoked_reason),
    }
}

fn check_known(p: &mut Problems<'_>, at: Option<usize>, key: &str, k: &KnownIssuer) {
    if let Err(e) = codes::check_uscc(&k.code) {
        p.at(at, format!("{key}.code"), format!("{}: {e}", k.code));
    }
    if let Err(e) = codes::check_region_code(&k.region) {
        p.at(at, format!("{key}.region"), format!("{}: {e}", k.region));
    }
}

fn build_issuer(p: &mut Problems<'_>, raw: &toml::Spanned<spec::IssuerSpec>) -> IssuerPlan {
    let at = Some(raw.span().start);
    let s = raw.get_ref();
    let known: Vec<KnownIssuer> = s
        .known
        .iter()
        .map(|k| KnownIssuer {
            name: width::trim(&k.name).to_string(),
            code: k.code.clone(),
            region: k.region.clone(),
            aliases: k.aliases.iter().map(|a| width::trim(a).to_string()).collect(),
        })
        .collect();
    for (i, k) in known.iter().enumerate() {
        check_known(p, at, &format!("issuer.known[{i}]"), k);
    }
    match (&s.column, &s.name, &s.code) {
        (Some(column), None, None) => {
            if known.is_empty() {
                p.at(
                    at,
                    "issuer.known",
                    "an issuer column needs the known issuers and their codes",
                );
            }
            IssuerPlan::FromColumn { column: width::trim(column).to_string(), known }
        }
        (None, Some(name), Some(code)) => {
            let k = KnownIssuer {
                name: name.clone(),
                code: code.clone(),
                region: s.region.clone().unwrap_or_default(),
                aliases: Vec::new(),
            };
            check_known(p, at, "issuer", &k);
            IssuerPlan::Fixed(k)
        }
        _ => {
            p.at(at, "issuer", "give either `column` (with `known` issuers) or a fixed `name`, `code` and `region`");
            IssuerPlan::FromColumn { column: String::new(), known }
        }
    }
}

fn check_coverage(
    p: &mut Problems<'_>,
    ty: &LicenceType,
    columns: &[ColumnPlan],
    issuer: &IssuerPlan,
) {
    let mapped: HashSet<usize> = columns.iter().map(|c| c.field).collect();
    for (i, f) in ty.fields.iter().enumerate() {
        if f.key == keys::ISSUER_NAME {
            if mapped.contains(&i) {
                p.at(None, "column", "issuer_name comes from [issuer]; do not map it as a column");
            }
            continue;
        }
        if f.required && !mapped.contains(&i) {
            p.at(None, "column", format!("required field {:?} ({}) has no column", f.key, f.label));
        }
    }
    if let IssuerPlan::FromColumn { column, .. } = issuer
        && columns.iter().any(|c| c.names().any(|n| n == column.as_str()))
    {
        p.at(None, "issuer.column", format!("{column:?} is also mapped as a field column"));
    }
}

impl ColumnPlan {
    /// The header and its aliases.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.header.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

/// Why a plan does not bind to an export's header row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindProblems {
    /// Headers absent (with their aliases: `许可证编号 (or 许可证号)`).
    pub missing: Vec<String>,
    /// Columns found under more than one of their names: the names present, for each.
    pub ambiguous: Vec<Vec<String>>,
}

impl Plan {
    /// The headers an export must have (used to find the header row below title rows), each
    /// under any of its names.
    pub fn expected_headers(&self) -> Vec<ExpectedHeader> {
        let mut h: Vec<ExpectedHeader> = self
            .columns
            .iter()
            .filter(|c| !c.optional)
            .map(|c| ExpectedHeader { names: c.names().map(str::to_owned).collect() })
            .collect();
        if let Some(c) = &self.status.column {
            h.push(c.as_str().into());
        }
        if let IssuerPlan::FromColumn { column, .. } = &self.issuer {
            h.push(column.as_str().into());
        }
        h
    }

    /// The read spec with the expected headers filled in.
    pub fn source_spec(&self) -> SourceSpec {
        let mut s = self.source.clone();
        s.expected_headers = self.expected_headers();
        s
    }

    /// Resolves the plan against an export's header cells. Fails naming every missing header
    /// and every column present under two of its names (header and alias).
    pub fn bind(&self, headers: &[String]) -> Result<Binding, BindProblems> {
        let find = |h: &str| headers.iter().position(|x| width::trim(x) == h);
        let mut missing = Vec::new();
        let mut ambiguous = Vec::new();
        let mut columns = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let found: Vec<(&str, usize)> =
                c.names().filter_map(|n| find(n).map(|i| (n, i))).collect();
            if found.len() > 1 {
                ambiguous.push(found.iter().map(|(n, _)| (*n).to_owned()).collect());
            }
            let source = found.first().map(|(_, i)| *i);
            if source.is_none() && !c.optional {
                let expected = ExpectedHeader { names: c.names().map(str::to_owned).collect() };
                missing.push(expected.describe());
            }
            columns.push(BoundColumn {
                source,
                field: c.field,
                normalisers: c.normalisers.clone(),
            });
        }
        let mut lookup = |h: &Option<String>| -> Option<usize> {
            let h = h.as_ref()?;
            let i = find(h);
            if i.is_none() {
                missing.push(h.clone());
            }
            i
        };
        let status = lookup(&self.status.column);
        let issuer = match &self.issuer {
            IssuerPlan::FromColumn { column, .. } => lookup(&Some(column.clone())),
            IssuerPlan::Fixed(_) => None,
        };
        let archive_copy = lookup(&self.archive_copy_column);
        let revoked_on = lookup(&self.status.revoked_on);
        let revoked_reason = lookup(&self.status.revoked_reason);
        if missing.is_empty() && ambiguous.is_empty() {
            Ok(Binding {
                columns,
                status,
                issuer,
                archive_copy,
                revoked_on,
                revoked_reason,
                width: headers.len(),
            })
        } else {
            Err(BindProblems { missing, ambiguous })
        }
    }
}
