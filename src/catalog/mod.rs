//! The catalog (目录) of licence types, one GB/T 36902 entry per type: who defines it, who may
//! hold it, how long it may be valid, how it is shared, and the fields a licence of that type
//! carries. Loaded from `pipelines/catalog/*.toml` by [`load`]; checked as a whole so that every
//! error in every file is reported at once.

pub(crate) mod load;

use std::fmt;

use regex::Regex;
use serde::Serialize;

pub use load::{CatalogError, CatalogSources, ConfigProblem, line_of, load_dir, load_file};

/// The catalog folder of a source checkout, relative to the working directory.
pub const CHECKOUT_DIR: &str = "pipelines/catalog";
/// The catalog folder the Debian package installs.
pub const PACKAGED_DIR: &str = "/usr/share/elicence/catalog";

/// The default catalog folder: `pipelines/catalog` when the working directory has one (a
/// checkout, or a folder of one's own pipelines), else the packaged `/usr/share/elicence/catalog`
/// when it exists, else `pipelines/catalog` (so that the error names what was looked for).
pub fn default_dir() -> std::path::PathBuf {
    let checkout = std::path::Path::new(CHECKOUT_DIR);
    let packaged = std::path::Path::new(PACKAGED_DIR);
    if !checkout.is_dir() && packaged.is_dir() {
        return packaged.to_path_buf();
    }
    checkout.to_path_buf()
}

/// Field keys with a fixed meaning across all types: the GB/T 36903 metadata is taken from them.
pub mod keys {
    /// 证照编号: printed licence number.
    pub const LICENCE_NO: &str = "licence_no";
    /// 持证主体: holder name.
    pub const HOLDER_NAME: &str = "holder_name";
    /// 持证主体代码: holder code (USCC or citizen ID).
    pub const HOLDER_CODE: &str = "holder_code";
    /// 颁发机构: issuer as printed.
    pub const ISSUER_NAME: &str = "issuer_name";
    /// 颁发日期.
    pub const ISSUE_DATE: &str = "issue_date";
    /// 有效期起始 (optional; defaults to the issue date).
    pub const VALID_FROM: &str = "valid_from";
    /// 有效期截止.
    pub const VALID_TO: &str = "valid_to";
    /// Keys every catalog type must define.
    pub const REQUIRED: [&str; 5] = [LICENCE_NO, HOLDER_NAME, HOLDER_CODE, ISSUER_NAME, ISSUE_DATE];
}

/// Administrative level of an authority (GB/T 36902: 国家级, 省(部)级, 地市级, 区县级).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 国家级
    National,
    /// 省(部)级
    Provincial,
    /// 地市级
    Prefectural,
    /// 区县级
    County,
}

impl Level {
    pub fn chinese(self) -> &'static str {
        match self {
            Level::National => "国家级",
            Level::Provincial => "省(部)级",
            Level::Prefectural => "地市级",
            Level::County => "区县级",
        }
    }
}

/// Who may hold a licence of this type (持证主体类别).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderCategory {
    /// 法人和其他组织
    Organisation,
    /// 自然人
    Person,
}

/// The authority that defines a licence type (证照定义机构).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authority {
    pub name: String,
    pub uscc: String,
    pub level: Level,
}

/// How a type is shared between government bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Sharing {
    /// 无条件共享: any enabled department.
    Unconditional,
    /// 有条件共享: only the departments in scope (by USCC), and the issuer.
    Conditional { scope: Vec<String> },
    /// 不予共享: the issuer only.
    NotShared,
}

/// Allowed validity of a licence of this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ValidityRange {
    /// Longest allowed span from issue (or start) date to end date, in whole years.
    pub max_years: Option<u32>,
    /// Whether an open-ended validity (长期) is allowed.
    pub open_ended: bool,
}

/// What a field's value must be.
#[derive(Debug, Clone)]
pub enum FieldKind {
    Text,
    Date,
    /// 统一社会信用代码 (GB 32100).
    Uscc,
    /// 公民身份号码 (GB 11643).
    CitizenId,
    /// 组织机构代码 (GB 11714).
    OrgCode,
    /// 行政区划代码 (GB/T 2260).
    RegionCode,
    /// The holder code: a USCC or a citizen ID according to the type's holder-code type.
    HolderCode,
    Enum(Vec<String>),
    /// A printed licence number matching a pattern (anchored).
    LicenceNo(Regex),
}

impl FieldKind {
    pub fn name(&self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Date => "date",
            FieldKind::Uscc => "uscc",
            FieldKind::CitizenId => "citizen_id",
            FieldKind::OrgCode => "org_code",
            FieldKind::RegionCode => "region_code",
            FieldKind::HolderCode => "holder_code",
            FieldKind::Enum(_) => "enum",
            FieldKind::LicenceNo(_) => "licence_no",
        }
    }

    /// Whether values are codes (half-width, upper-case, no inner text).
    pub fn is_code(&self) -> bool {
        matches!(
            self,
            FieldKind::Uscc
                | FieldKind::CitizenId
                | FieldKind::OrgCode
                | FieldKind::RegionCode
                | FieldKind::HolderCode
                | FieldKind::LicenceNo(_)
        )
    }
}

impl PartialEq for FieldKind {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldKind::Enum(a), FieldKind::Enum(b)) => a == b,
            (FieldKind::LicenceNo(a), FieldKind::LicenceNo(b)) => a.as_str() == b.as_str(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// One field of a licence type.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub key: String,
    /// Chinese label as printed on the licence.
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
    /// Maximum length in characters (not bytes).
    pub max_len: Option<usize>,
    /// Personal data (个人信息): masked when shared unless the right covers it.
    pub personal: bool,
    /// Trade secret (商业秘密): masked when shared unless the right covers it.
    pub trade_secret: bool,
}

/// A licence type: one GB/T 36902 catalog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LicenceType {
    /// Short id: the catalog file name without `.toml`, e.g. `food-business-permit`.
    pub id: String,
    /// 证照类型名称
    pub name: String,
    /// 21-char 证照类型代码: definer USCC + 3-digit sequence.
    pub code: String,
    /// True when the code was derived locally (not from the national catalog).
    pub local_code: bool,
    pub definer: Authority,
    pub issuing_level: Level,
    pub holder_category: HolderCategory,
    /// GB/T 36903 holder-code type: 001 USCC, 111 citizen ID, …
    pub holder_code_type: String,
    pub validity: ValidityRange,
    /// Only one live licence per holder (e.g. a business licence).
    pub single_instance: bool,
    /// Versions of this type are reviewed before issue (采集 → 审核 → 签发): a run stages them
    /// and a reviewer approves them (`review = true`).
    pub review: bool,
    /// Working days the issuer has to answer a check request (核查) about a licence of this
    /// type (`check_answer_days`, default 5; weekends and listed holidays skipped).
    pub check_answer_days: u32,
    pub sharing: Sharing,
    /// Linked government service item (关联事项): name and code, when known.
    pub service_item: Option<(String, String)>,
    pub fields: Vec<FieldSpec>,
}

impl LicenceType {
    pub fn field(&self, key: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.key == key)
    }

    pub fn field_index(&self, key: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.key == key)
    }
}

/// All licence types, in file-name order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub types: Vec<LicenceType>,
}

impl Catalog {
    /// A type by id (file stem), type code or Chinese name.
    pub fn get(&self, which: &str) -> Option<&LicenceType> {
        self.types.iter().find(|t| t.id == which || t.code == which || t.name == which)
    }
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sharing::Unconditional => f.write_str("unconditional"),
            Sharing::Conditional { scope } => {
                write!(f, "conditional ({} departments)", scope.len())
            }
            Sharing::NotShared => f.write_str("not shared"),
        }
    }
}
