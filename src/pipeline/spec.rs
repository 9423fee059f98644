//! The raw form of a pipeline file, exactly as written (serde, `deny_unknown_fields`). Nothing
//! here is checked; [`super::Plan`] does that.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Catalog type: id (file stem), type code or Chinese name.
    #[serde(rename = "type")]
    pub licence_type: Spanned<String>,
    /// Catalog folder, relative to the pipeline file. Default: `catalog`.
    pub catalog: Option<String>,
    /// Layout file for the PDF face, relative to the pipeline file.
    /// Default: `layouts/<catalog id>.toml`.
    pub layout: Option<String>,
    #[serde(default)]
    pub source: SourceSpec,
    pub column: Vec<Spanned<ColumnSpec>>,
    pub status: Spanned<StatusSpec>,
    pub issuer: Spanned<IssuerSpec>,
    /// Column holding the path of a scanned image of the paper licence (存档副本), if any.
    pub archive_copy_column: Option<String>,
    /// What a run writes.
    pub output: Option<OutputSpec>,
    /// Stage every row for review before issue (采集 → 审核 → 签发), whatever the catalog type
    /// says. Default: the type's `review`.
    #[serde(default)]
    pub review: bool,
    /// Let the key set's default signer (`signer.key` at its top) sign for an issuer that has
    /// no identity of its own in the key set. Default: every issuer needs its own.
    #[serde(default)]
    pub allow_default_signer: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Face formats written by default: any of "pdf", "xml", "ofd" (`--formats` overrides).
    pub formats: Option<Spanned<Vec<String>>>,
    /// RFC 3161 TSA every signature is timestamped by (`--tsa` / `ELICENCE_TSA` override).
    pub tsa: Option<Spanned<String>>,
    /// Base URL of the public verification page each face's QR code opens
    /// (`--public-url` / `ELICENCE_PUBLIC_URL` override).
    pub public_url: Option<Spanned<String>>,
    /// PAdES level of the PDF signatures: b-b, b-t, b-lt, b-lta (`--pades-level` overrides).
    pub pades_level: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// auto (by extension) | csv | xlsx | xls | ods
    pub format: Option<Spanned<String>>,
    /// auto | utf-8 | gbk | gb18030
    pub encoding: Option<Spanned<String>>,
    /// One ASCII character; `\t` for tab. Default `,`.
    pub delimiter: Option<Spanned<String>>,
    /// Sheet name or 0-based index. Default: the first sheet.
    pub sheet: Option<SheetSpec>,
    /// 1-based header row; found automatically when absent.
    pub header_row: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SheetSpec {
    Index(usize),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Header text in the export (trimmed).
    pub header: String,
    /// Other names of the same column in other exports (`许可证号` for `许可证编号`): the column
    /// is found under any one of them; an export holding two of them is refused.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Catalog field key.
    pub field: String,
    /// Normalisers applied in order; default by field kind.
    pub normalise: Option<Vec<String>>,
    /// The column may be missing from an export (the field is then empty).
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSpec {
    /// Column holding the status word; without it every row is `valid`.
    pub column: Option<String>,
    /// Status of a row whose status cell is empty. Default: `valid`.
    pub default: Option<String>,
    #[serde(default)]
    pub valid: Vec<String>,
    #[serde(default)]
    pub revoked: Vec<String>,
    #[serde(default)]
    pub changed: Vec<String>,
    /// Column with the paper licence's revocation date (注销日期): a revocation takes effect on
    /// it (Art. 10, in step with the paper). Without it, on the day it is recorded.
    pub revoked_on: Option<String>,
    /// Column with the paper revocation's reason (注销原因).
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSpec {
    /// Column holding the issuer as printed. Without it the issuer is fixed (`name`, `code`).
    pub column: Option<String>,
    /// Fixed issuer name.
    pub name: Option<String>,
    /// Fixed issuer USCC.
    pub code: Option<String>,
    /// Fixed issuer's 6-digit region code.
    pub region: Option<String>,
    /// Issuers that may appear in the column, with their codes; renamed bodies list old names.
    #[serde(default)]
    pub known: Vec<KnownIssuerSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownIssuerSpec {
    pub name: String,
    pub code: String,
    pub region: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}
