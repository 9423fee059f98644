//! A copy for use (加注件) of a licence for one department and one purpose: the registry's stored
//! PDF face gets a visible watermark ("仅供<事由>使用 · <部门> · 有效期至 <日期>", see
//! [`super::watermark`]), its original signature is removed, the copy is signed by the
//! registry's key, recorded (by its SHA-256) in `copies` and audited. `elicence verify --data`
//! recognises the file as a copy for use, and as expired after its date. The original file is
//! never handed out. `elicence copy` and `POST /api/v1/copies` both call this module; the
//! signer and the face font are loaded by the caller, once.
//!
//! Who gets a copy: the face shows every field in clear, so the department needs the rights to
//! the whole face ([`super::whole_face_refusal`]). What is copied: the current version only,
//! and not while the issuer's `inconsistent` check answer stands (`disputed`): a copy would
//! carry a face its issuer has said is wrong. An expired licence is copied: the face prints its
//! 有效期, and `verify` of the copy reports the licence as expired (exit 1).
//!
//! Two steps, so a caller writing a file can put the bytes on disk before they are recorded
//! (a copy on disk is always a recorded one): [`prepare`] checks and signs, [`record`] records;
//! [`make`] does both.

use chrono::NaiveDate;
use serde_json::json;
use thiserror::Error;

use super::{
    Ask, Refusal, ShareError, action, audit_refusal, check_identifier, refuse, watermark,
    whole_face_refusal,
};
use crate::catalog::Catalog;
use crate::font::FaceFont;
use crate::registry::{
    AuditEntry, Department, FileKind, Registry, RegistryError, RegistryStatus, sha256_hex,
};
use crate::sign::pades::{PdfSignOptions, sign_pdf};
use crate::sign::{SignError, Signer};

/// What a department asks a copy for; `reason` (事由) is already checked.
#[derive(Debug, Clone)]
pub struct CopyRequest<'a> {
    /// The version to copy, as typed.
    pub identifier: &'a str,
    pub reason: &'a str,
    /// Last day the copy may be used: today or later.
    pub expires: NaiveDate,
}

/// A signed copy, not yet recorded.
#[derive(Debug, Clone)]
pub struct SignedCopy {
    pub identifier: String,
    pub department: String,
    pub reason: String,
    pub expires: NaiveDate,
    /// The signed PDF.
    pub pdf: Vec<u8>,
    pub sha256: String,
    at: chrono::DateTime<chrono::Utc>,
}

/// Why no copy was made.
#[derive(Debug, Error)]
pub enum CopyError {
    /// Bad input, authentication, rights (refusals audited), or no such licence.
    #[error(transparent)]
    Share(#[from] ShareError),
    /// Only a current version is copied (not superseded, revoked or disputed).
    #[error("{identifier} is {status}: only a current licence is copied")]
    NotCurrent { identifier: String, status: &'static str },
    #[error("{identifier}: the registry holds no PDF face to copy")]
    NoFace { identifier: String },
    #[error("cannot watermark the stored face of {identifier}")]
    Watermark {
        identifier: String,
        #[source]
        source: watermark::WatermarkError,
    },
    #[error("cannot sign the copy of {identifier}")]
    Sign {
        identifier: String,
        #[source]
        source: SignError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl CopyError {
    /// The exit code: those of [`ShareError`], 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            CopyError::Share(e) => e.exit_code(),
            _ => crate::exit::FAILURE,
        }
    }
}

/// The name of a status that is not copied.
fn status_name(status: &RegistryStatus) -> Option<&'static str> {
    match status {
        RegistryStatus::Current | RegistryStatus::Expired { .. } => None,
        RegistryStatus::Superseded { .. } => Some("superseded"),
        RegistryStatus::Revoked { .. } => Some("revoked"),
        RegistryStatus::Disputed { .. } => Some("disputed"),
        RegistryStatus::Unknown => Some("unknown"),
    }
}

/// Checks `request` of `department` (authenticated by the caller) and signs its copy with
/// `signer`, drawing the watermark with `font`; nothing is recorded yet (see [`record`]).
/// Fails with [`CopyError::Share`] on a malformed identifier or a past `expires` (audited
/// `bad_input`), an unknown licence, or rights short of the whole face (audited);
/// [`CopyError::NotCurrent`] for a version that is not copied; the other variants when the
/// stored face cannot be read, watermarked or signed.
pub fn prepare(
    registry: &mut Registry,
    catalog: &Catalog,
    (signer, font): (&dyn Signer, &FaceFont),
    department: &Department,
    request: &CopyRequest<'_>,
    ask: &Ask<'_>,
) -> Result<SignedCopy, CopyError> {
    let identifier = request.identifier.trim();
    let reason = request.reason;
    check_identifier(registry, ask, Some(reason), identifier)?;
    if request.expires < ask.at.date_naive() {
        let e = ShareError::from(super::input::InputError::Invalid {
            field: "expires",
            reason: format!("{} is in the past", request.expires),
        });
        audit_refusal(registry, ask, Some(reason), Refusal::BadInput, &e.to_string())?;
        return Err(e.into());
    }
    let Some(version) = registry.licence_by_identifier(identifier)? else {
        return Err(ShareError::NotFound { what: identifier.to_owned() }.into());
    };
    let grants = registry.grants_of(&department.code)?;
    if let Some(refusal) = whole_face_refusal(catalog, &grants, department, &version) {
        let what = format!("have a copy of {identifier}");
        return Err(refuse(registry, ask, Some(reason), department, (what, refusal)).into());
    }
    let status = registry.status_on(&version, ask.at.date_naive())?;
    if let Some(status) = status_name(&status) {
        return Err(CopyError::NotCurrent { identifier: identifier.to_owned(), status });
    }
    let stored = version
        .file(FileKind::Pdf)
        .ok_or_else(|| CopyError::NoFace { identifier: identifier.to_owned() })?;
    let original = registry.read_file(stored)?;

    let text = watermark::watermark_text(reason, &department.name, request.expires);
    let unsigned = watermark::watermark(&original, font, &text, &watermark::banner_text(reason))
        .map_err(|source| CopyError::Watermark { identifier: identifier.to_owned(), source })?;
    let opts = PdfSignOptions {
        reason: format!("加注件：{text}"),
        location: String::new(),
        name: department.name.clone(),
        tsa: None,
    };
    let pdf = sign_pdf(&unsigned, signer, ask.at, &opts)
        .map_err(|source| CopyError::Sign { identifier: identifier.to_owned(), source })?;
    Ok(SignedCopy {
        identifier: identifier.to_owned(),
        department: department.code.clone(),
        reason: reason.to_owned(),
        expires: request.expires,
        sha256: sha256_hex(&pdf),
        pdf,
        at: ask.at,
    })
}

/// Records `copy` in `copies` with its audit entry (`share_copy`); returns the copy's number.
pub fn record(registry: &mut Registry, copy: &SignedCopy) -> Result<i64, RegistryError> {
    registry.copy_record(
        &copy.identifier,
        &copy.department,
        &copy.reason,
        copy.expires,
        &copy.sha256,
        copy.at,
        &AuditEntry {
            action: action::COPY.into(),
            operator: copy.department.clone(),
            at: copy.at,
            subject: copy.identifier.clone(),
            reason: Some(copy.reason.clone()),
            details: json!({
                "department": copy.department,
                "expires": copy.expires.to_string(),
                "sha256": copy.sha256,
            }),
        },
    )
}

/// [`prepare`] then [`record`]: the recorded copy and its number.
pub fn make(
    registry: &mut Registry,
    catalog: &Catalog,
    keys: (&dyn Signer, &FaceFont),
    department: &Department,
    request: &CopyRequest<'_>,
    ask: &Ask<'_>,
) -> Result<(i64, SignedCopy), CopyError> {
    let copy = prepare(registry, catalog, keys, department, request, ask)?;
    let id = record(registry, &copy)?;
    Ok((id, copy))
}
