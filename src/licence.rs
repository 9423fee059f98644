//! A licence that passed validation (a valid row, normalised): what the renderers, the signer and
//! the registry work from. It carries the GB/T 36903 metadata as typed fields and every face field
//! of its catalog type as display text.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use chrono::NaiveDate;

use crate::record::SourcePos;

/// Lifecycle status as the export states it, after the pipeline's status vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenceStatus {
    /// 有效, 现势
    Valid,
    /// 变更, 延续, 换证
    Changed,
    /// 注销, 吊销, 撤销
    Revoked,
}

impl LicenceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenceStatus::Valid => "valid",
            LicenceStatus::Changed => "changed",
            LicenceStatus::Revoked => "revoked",
        }
    }
}

/// One face field: catalog key, Chinese label and normalised display value (empty when absent).
/// Key and label come from the catalog and are shared by every licence of the type (see
/// [`intern`]), so a validated row allocates only its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceField {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
}

/// The one shared copy of a catalog key or label. A catalog holds a few hundred of them and they
/// live as long as the process, so each distinct text is leaked once and then reused: a
/// million-row backfill does not allocate (and free, on another thread) two strings per field
/// and row.
pub fn intern(text: &str) -> &'static str {
    static TEXTS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&t) = texts.get(text) {
        return t;
    }
    let t: &'static str = Box::leak(text.to_owned().into_boxed_str());
    texts.insert(t);
    t
}

/// A validated licence. Codes are half-width and upper-case; dates are real dates; open-ended
/// validity is `valid_to: None` with `open_ended: true`, never a fake date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    /// Catalog type name (证照名称), e.g. 食品经营许可证.
    pub type_name: String,
    /// 21-char GB/T 36902 type code (证照类型代码).
    pub type_code: String,
    /// Printed licence number as on the paper (证照编号).
    pub printed_no: String,
    /// Issuing body as printed (颁发机构).
    pub issuer_name: String,
    /// Issuing body's USCC (颁发机构代码).
    pub issuer_code: String,
    /// Holder name (持证主体), display text as written.
    pub holder_name: String,
    /// Holder code (持证主体代码): USCC or citizen ID.
    pub holder_code: String,
    /// GB/T 36903 holder-code type: 001 USCC, 111 citizen ID, …
    pub holder_code_type: String,
    /// 颁发日期
    pub issue_date: NaiveDate,
    /// 有效期起始; the issue date when the export has no separate start.
    pub valid_from: NaiveDate,
    /// 有效期截止; `None` for open-ended validity (长期, 永久).
    pub valid_to: Option<NaiveDate>,
    /// 6-digit GB/T 2260 region code of the jurisdiction (证照所属管辖属地编码).
    pub region_code: String,
    pub status: LicenceStatus,
    /// Every catalog field in catalog order, including those above, as display text.
    pub fields: Vec<FaceField>,
    /// Where the row came from.
    pub pos: SourcePos,
}

impl Licence {
    /// The display value of a face field by catalog key.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|f| f.key == key).map(|f| f.value.as_str())
    }
}

/// The stored form of a [`Licence`] (a row staged for review keeps it until it is approved and
/// signed): the same facts, keys and labels as text.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredLicence {
    type_name: String,
    type_code: String,
    printed_no: String,
    issuer_name: String,
    issuer_code: String,
    holder_name: String,
    holder_code: String,
    holder_code_type: String,
    issue_date: NaiveDate,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
    region_code: String,
    status: LicenceStatus,
    /// `[key, label, value]` in catalog order.
    fields: Vec<(String, String, String)>,
    file: String,
    sheet: Option<String>,
    row: u64,
}

impl Licence {
    /// This licence as JSON, for [`Licence::from_json`].
    pub fn to_json(&self) -> String {
        let stored = StoredLicence {
            type_name: self.type_name.clone(),
            type_code: self.type_code.clone(),
            printed_no: self.printed_no.clone(),
            issuer_name: self.issuer_name.clone(),
            issuer_code: self.issuer_code.clone(),
            holder_name: self.holder_name.clone(),
            holder_code: self.holder_code.clone(),
            holder_code_type: self.holder_code_type.clone(),
            issue_date: self.issue_date,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            region_code: self.region_code.clone(),
            status: self.status,
            fields: self
                .fields
                .iter()
                .map(|f| (f.key.to_owned(), f.label.to_owned(), f.value.clone()))
                .collect(),
            file: self.pos.file.to_string(),
            sheet: self.pos.sheet.as_deref().map(str::to_owned),
            row: self.pos.row,
        };
        // A struct of strings, dates and numbers always serialises.
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The licence [`Licence::to_json`] wrote. Fails when `json` is not that form.
    pub fn from_json(json: &str) -> Result<Licence, serde_json::Error> {
        let s: StoredLicence = serde_json::from_str(json)?;
        Ok(Licence {
            type_name: s.type_name,
            type_code: s.type_code,
            printed_no: s.printed_no,
            issuer_name: s.issuer_name,
            issuer_code: s.issuer_code,
            holder_name: s.holder_name,
            holder_code: s.holder_code,
            holder_code_type: s.holder_code_type,
            issue_date: s.issue_date,
            valid_from: s.valid_from,
            valid_to: s.valid_to,
            region_code: s.region_code,
            status: s.status,
            fields: s
                .fields
                .into_iter()
                .map(|(key, label, value)| FaceField {
                    key: intern(&key),
                    label: intern(&label),
                    value,
                })
                .collect(),
            pos: SourcePos { file: s.file.into(), sheet: s.sheet.map(Into::into), row: s.row },
        })
    }
}
