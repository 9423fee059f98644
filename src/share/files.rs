//! A department obtains the signed e-licence itself (Art. 5: 通过系统获取电子证照): the stored
//! PDF or XML of one version, exactly as issued (its hash checked against the registry), within
//! the department's rights. The file shows every field, so a type with personal or trade-secret
//! fields needs a grant with unmasking, as a copy for use does. Every answer and refusal is
//! audited. `elicence serve` calls [`signed_file`]; nothing here prints.

use serde_json::json;

use crate::catalog::Catalog;
use crate::registry::{AuditEntry, Department, FileKind, Registry};
use crate::share::{self, Ask, ShareError, action};

/// The stored file of `kind` of version `identifier` for `department` (asking for `reason`,
/// already checked), after its rights: the type's sharing mode and, when the type has protected
/// fields, a grant with unmasking. Fails with [`ShareError::Input`] on a malformed identifier,
/// [`ShareError::NotFound`] when the registry holds no such version or no file of that kind,
/// [`ShareError::NotPermitted`] outside the rights (audited), and [`ShareError::Registry`] when
/// the stored file is missing or altered.
pub fn signed_file(
    registry: &mut Registry,
    catalog: &Catalog,
    department: &Department,
    reason: &str,
    (identifier, kind): (&str, FileKind),
    ask: &Ask<'_>,
) -> Result<Vec<u8>, ShareError> {
    share::check_identifier(registry, ask, Some(reason), identifier)?;
    let Some(version) = registry.licence_by_identifier(identifier)? else {
        return Err(ShareError::NotFound { what: identifier.to_owned() });
    };
    let grants = registry.grants_of(&department.code)?;
    if let Some(refusal) = share::whole_face_refusal(catalog, &grants, department, &version) {
        let what = format!("obtain the {} of {identifier}", kind.ext());
        return Err(share::refuse(registry, ask, Some(reason), department, (what, refusal)));
    }
    let Some(stored) = version.file(kind) else {
        return Err(ShareError::NotFound { what: format!("the {} of {identifier}", kind.ext()) });
    };
    let stored = stored.clone();
    let sha256 = stored.sha256.clone();
    let bytes = registry.read_file(&stored)?;
    registry.audit_append(&AuditEntry {
        action: action::FILE.into(),
        operator: department.code.clone(),
        at: ask.at,
        subject: identifier.to_owned(),
        reason: Some(reason.to_owned()),
        details: json!({"department": department.code, "kind": kind.ext(), "sha256": sha256}),
    })?;
    Ok(bytes)
}
