//! `review show`: one staged item as a reviewer needs it (审核): the fields it would issue, how
//! they differ from the version it changes or revokes, and the unsigned preview. Shared by
//! `elicence review show` and `GET /api/v1/review/{id}`.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;

use crate::licence::Licence;
use crate::registry::{FileKind, Registry, ReviewAction, ReviewItem};

/// A field of the staged licence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedField {
    pub key: String,
    pub label: String,
    pub value: String,
}

/// A field whose staged value is not the compared version's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDifference {
    pub key: String,
    pub label: String,
    /// The compared version's value (empty when it had none).
    pub current: String,
    pub staged: String,
}

/// What the item is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// A new licence: nothing to compare with.
    New,
    /// The version it changes or revokes, not issued yet itself (pending review too).
    NotIssued(String),
    /// The version it changes or revokes.
    Version(String),
}

/// One staged item with its fields, differences and preview.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewDetail {
    pub item: ReviewItem,
    pub fields: Vec<StagedField>,
    /// The identifier of the version compared with, when there is one in the registry.
    pub compared_with: Option<String>,
    #[serde(skip)]
    pub baseline: Baseline,
    pub differences: Vec<FieldDifference>,
    /// SHA-256 of the unsigned preview PDF in the store (none for a revocation).
    pub preview_sha256: Option<String>,
}

/// Field → value of a licence's stored face fields.
fn fields_of(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str::<BTreeMap<String, serde_json::Value>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
        .collect()
}

/// Review item `id` in detail, or `None` when there is no such item.
pub fn detail(registry: &Registry, id: i64) -> anyhow::Result<Option<ReviewDetail>> {
    let Some(item) = registry.review_item(id)? else {
        return Ok(None);
    };
    let licence = Licence::from_json(&item.licence_json)
        .with_context(|| format!("review item {}: stored licence does not read back", item.id))?;
    let fields: Vec<StagedField> = licence
        .fields
        .iter()
        .map(|f| StagedField {
            key: f.key.to_owned(),
            label: f.label.to_owned(),
            value: f.value.clone(),
        })
        .collect();
    // The version it changes or revokes (the current one when staged).
    let base = item.previous_identifier.clone().or(match item.action {
        ReviewAction::Revoke => Some(item.identifier.clone()),
        _ => None,
    });
    let current = match &base {
        Some(id) => registry.licence_by_identifier(id)?.map(|v| fields_of(&v.fields_json)),
        None => None,
    };
    let differences = match &current {
        None => Vec::new(),
        Some(current) => fields
            .iter()
            .filter_map(|f| {
                let before = current.get(&f.key).cloned().unwrap_or_default();
                (before != f.value).then(|| FieldDifference {
                    key: f.key.clone(),
                    label: f.label.clone(),
                    current: before,
                    staged: f.value.clone(),
                })
            })
            .collect(),
    };
    let baseline = match (base, current.is_some()) {
        (None, _) => Baseline::New,
        (Some(b), false) => Baseline::NotIssued(b),
        (Some(b), true) => Baseline::Version(b),
    };
    let compared_with = match &baseline {
        Baseline::Version(b) => Some(b.clone()),
        _ => None,
    };
    let preview_sha256 = item.preview_sha256.clone();
    Ok(Some(ReviewDetail { item, fields, compared_with, baseline, differences, preview_sha256 }))
}

impl ReviewDetail {
    /// Where the preview is, for a store in a folder (`None` without a preview).
    pub fn preview_path(
        &self,
        registry: &Registry,
    ) -> Result<Option<std::path::PathBuf>, crate::registry::StoreError> {
        self.preview_sha256
            .as_deref()
            .map(|sha| registry.store().path_of(sha, FileKind::Pdf))
            .transpose()
    }
}
