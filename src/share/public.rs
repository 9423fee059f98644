//! What anyone may learn about a licence without logging in (the public verification page
//! `/v/{identifier}`): its type, issuer, printed number, validity and status; never the holder
//! or any field value. The status comes from [`crate::registry::Registry::status_on`] (the rules
//! of time and checks). Pure.

use chrono::NaiveDate;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::registry::{RegistryStatus, VersionRow};

/// The public status of a licence version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PublicStatus {
    /// 有效: the current version, within its validity.
    Current,
    /// 已变更: replaced by `by`.
    Superseded { by: String },
    /// 已注销: revoked on `on`.
    Revoked { on: NaiveDate },
    /// 已过期: the current version, but its validity ended on `on`.
    Expired { on: NaiveDate },
    /// 存疑: the issuer answered a check (核查) `inconsistent`, and that answer stands.
    Disputed { since: NaiveDate },
}

/// A licence as the public sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PublicLicence {
    pub identifier: String,
    /// The catalog's name of the type (its code when the catalog no longer has it).
    pub type_name: String,
    pub issuer_code: String,
    pub printed_no: String,
    pub issue_date: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    #[serde(flatten)]
    pub status: PublicStatus,
}

/// The public view of `v`, whose status is `status`.
pub fn public_view(catalog: &Catalog, v: &VersionRow, status: RegistryStatus) -> PublicLicence {
    let type_name = catalog
        .types
        .iter()
        .find(|t| t.code == v.key.type_code)
        .map_or_else(|| v.key.type_code.clone(), |t| t.name.clone());
    let status = match status {
        RegistryStatus::Superseded { by } => PublicStatus::Superseded { by },
        // Never the reason or the operator: only that and when.
        // The page shows when the revocation takes effect (the paper's 注销日期).
        RegistryStatus::Revoked { effective, .. } => PublicStatus::Revoked { on: effective },
        RegistryStatus::Expired { on } => PublicStatus::Expired { on },
        RegistryStatus::Disputed { since, .. } => {
            PublicStatus::Disputed { since: since.date_naive() }
        }
        RegistryStatus::Current | RegistryStatus::Unknown => PublicStatus::Current,
    };
    PublicLicence {
        identifier: v.identifier.clone(),
        type_name,
        issuer_code: v.key.issuer_code.clone(),
        printed_no: v.key.printed_no.clone(),
        issue_date: v.issue_date,
        valid_to: v.valid_to,
        status,
    }
}
