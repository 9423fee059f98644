//! Rights (共享权限): may a department see a licence of a type, and which of its fields in clear.
//! Pure: decided from the catalog's sharing mode, the licence's issuer and the department's
//! grants, with no I/O.
//!
//! - 无条件共享 (unconditional): any enabled department.
//! - 有条件共享 (conditional): the departments in the type's scope, and the issuer.
//! - 不予共享 (not shared): the issuer only.
//!
//! Fields marked personal or trade-secret in the catalog are masked (see [`super::mask`]) for
//! every department, the issuer included, unless it holds a grant with unmasking for the type:
//! rights are uniform and explicit, an issuer that needs its own data in clear through this
//! channel is granted it like anyone else.

use serde::Serialize;

use crate::catalog::{LicenceType, Sharing};
use crate::share::mask::{MaskStyle, mask};

/// Why a department may see a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// The department issued the licence.
    Issuer,
    /// The type is shared unconditionally.
    Unconditional,
    /// The department is in the type's sharing scope.
    InScope,
}

/// Why a department may not see a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Denial {
    #[error("the department is disabled")]
    Disabled,
    #[error("the type is shared conditionally and the department is not in its scope")]
    NotInScope,
    #[error("the type is not shared (issuer only)")]
    NotShared,
    #[error("the licence type is not in the catalog")]
    UnknownType,
}

/// Whether `department` (enabled or not) may see a licence issued by `issuer_code` of a type
/// shared as `sharing`.
pub fn access(
    sharing: &Sharing,
    issuer_code: &str,
    department: &str,
    enabled: bool,
) -> Result<Access, Denial> {
    if !enabled {
        return Err(Denial::Disabled);
    }
    if department == issuer_code {
        return Ok(Access::Issuer);
    }
    match sharing {
        Sharing::Unconditional => Ok(Access::Unconditional),
        Sharing::Conditional { scope } if scope.iter().any(|c| c == department) => {
            Ok(Access::InScope)
        }
        Sharing::Conditional { .. } => Err(Denial::NotInScope),
        Sharing::NotShared => Err(Denial::NotShared),
    }
}

/// One field as shown to a department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedField {
    pub key: String,
    pub label: String,
    pub value: String,
    /// The value is masked (personal or trade secret, no unmasking grant).
    pub masked: bool,
}

/// Whether a field's value is protected (personal or trade secret).
pub fn is_protected(licence_type: &LicenceType, key: &str) -> bool {
    licence_type.field(key).is_some_and(|f| f.personal || f.trade_secret)
}

/// `value` of field `key` as a department sees it: in clear, or masked when the field is
/// protected and `unmask` is false. A key the catalog does not know is treated as protected
/// (masked whole) unless `unmask`: data the catalog does not describe is not shared in clear.
pub fn shown(licence_type: &LicenceType, key: &str, value: &str, unmask: bool) -> (String, bool) {
    match licence_type.field(key) {
        Some(spec) if spec.personal || spec.trade_secret => {
            if unmask {
                (value.to_string(), false)
            } else {
                (mask(value, MaskStyle::for_field(spec, &licence_type.holder_code_type)), true)
            }
        }
        Some(_) => (value.to_string(), false),
        None if unmask => (value.to_string(), false),
        None => (mask(value, MaskStyle::Other), true),
    }
}

/// The licence's fields (catalog key → stored value) as a department sees them, in catalog
/// order, then any stored key the catalog lacks.
pub fn shared_fields(
    licence_type: &LicenceType,
    fields: &serde_json::Map<String, serde_json::Value>,
    unmask: bool,
) -> Vec<SharedField> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::with_capacity(fields.len());
    for spec in &licence_type.fields {
        let Some(v) = fields.get(&spec.key) else { continue };
        let (value, masked) = shown(licence_type, &spec.key, &text(v), unmask);
        out.push(SharedField { key: spec.key.clone(), label: spec.label.clone(), value, masked });
    }
    for (key, v) in fields {
        if licence_type.field(key).is_none() {
            let (value, masked) = shown(licence_type, key, &text(v), unmask);
            out.push(SharedField { key: key.clone(), label: key.clone(), value, masked });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{FieldKind, FieldSpec};

    const ISSUER: &str = "11220104MB1875524M";
    const IN_SCOPE: &str = "11220100MB18300819";
    const OTHER: &str = "11220100MB1560013P";

    fn field(key: &str, label: &str, kind: FieldKind, personal: bool, secret: bool) -> FieldSpec {
        FieldSpec {
            key: key.into(),
            label: label.into(),
            kind,
            required: true,
            max_len: None,
            personal,
            trade_secret: secret,
        }
    }

    fn licence_type(sharing: Sharing) -> LicenceType {
        let catalog = crate::catalog::load_dir(std::path::Path::new("pipelines/catalog"))
            .expect("shipped catalog loads");
        let mut t = catalog.get("food-business-permit").expect("food type").clone();
        t.sharing = sharing;
        t.fields.push(field("contact_phone", "联系电话", FieldKind::Text, true, false));
        t.fields.push(field("warehouse_address", "仓库地址", FieldKind::Text, false, true));
        t
    }

    fn conditional() -> Sharing {
        Sharing::Conditional { scope: vec![IN_SCOPE.into()] }
    }

    #[test]
    fn unconditional_any_enabled_department() {
        let s = Sharing::Unconditional;
        assert_eq!(access(&s, ISSUER, OTHER, true), Ok(Access::Unconditional));
        assert_eq!(access(&s, ISSUER, IN_SCOPE, true), Ok(Access::Unconditional));
        assert_eq!(access(&s, ISSUER, ISSUER, true), Ok(Access::Issuer));
        assert_eq!(access(&s, ISSUER, OTHER, false), Err(Denial::Disabled));
    }

    #[test]
    fn conditional_scope_and_issuer_only() {
        let s = conditional();
        assert_eq!(access(&s, ISSUER, IN_SCOPE, true), Ok(Access::InScope));
        assert_eq!(access(&s, ISSUER, ISSUER, true), Ok(Access::Issuer));
        assert_eq!(access(&s, ISSUER, OTHER, true), Err(Denial::NotInScope));
        assert_eq!(access(&s, ISSUER, IN_SCOPE, false), Err(Denial::Disabled));
    }

    #[test]
    fn not_shared_issuer_only() {
        let s = Sharing::NotShared;
        assert_eq!(access(&s, ISSUER, ISSUER, true), Ok(Access::Issuer));
        assert_eq!(access(&s, ISSUER, IN_SCOPE, true), Err(Denial::NotShared));
        assert_eq!(access(&s, ISSUER, OTHER, true), Err(Denial::NotShared));
        assert_eq!(access(&s, ISSUER, ISSUER, false), Err(Denial::Disabled));
    }

    fn stored() -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({
            "licence_no": "JY12201040000016",
            "holder_name": "长春市朝阳区禾丰食品商店",
            "legal_rep": "张伟",
            "legal_rep_id": "220104198005120318",
            "premises": "吉林省长春市朝阳区红旗街1号",
            "contact_phone": "13812345678",
            "warehouse_address": "吉林省长春市绿园区仓储路9号",
            "uncatalogued": "x",
        });
        match v {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn value<'a>(fields: &'a [SharedField], key: &str) -> &'a SharedField {
        fields.iter().find(|f| f.key == key).expect(key)
    }

    /// Masking does not depend on the sharing mode or on why access was granted: every
    /// (sharing mode × access) pair that grants access masks the same fields the same way.
    #[test]
    fn every_mode_and_right_masks_protected_fields_without_the_grant() {
        for sharing in [Sharing::Unconditional, conditional(), Sharing::NotShared] {
            let t = licence_type(sharing.clone());
            for dept in [ISSUER, IN_SCOPE, OTHER] {
                if access(&sharing, ISSUER, dept, true).is_err() {
                    continue;
                }
                let masked = shared_fields(&t, &stored(), false);
                assert_eq!(value(&masked, "legal_rep").value, "张**");
                assert_eq!(value(&masked, "legal_rep_id").value, "2201**********0318");
                assert_eq!(value(&masked, "contact_phone").value, "138****5678");
                assert_eq!(value(&masked, "warehouse_address").value, "吉林省长春市***");
                assert_eq!(value(&masked, "uncatalogued").value, "***");
                assert!(value(&masked, "legal_rep").masked);
                // Not protected: in clear.
                assert_eq!(value(&masked, "premises").value, "吉林省长春市朝阳区红旗街1号");
                assert!(!value(&masked, "premises").masked);
                assert_eq!(value(&masked, "holder_name").value, "长春市朝阳区禾丰食品商店");

                let clear = shared_fields(&t, &stored(), true);
                assert!(clear.iter().all(|f| !f.masked), "{dept}: {clear:?}");
                assert_eq!(value(&clear, "legal_rep_id").value, "220104198005120318");
                assert_eq!(value(&clear, "warehouse_address").value, "吉林省长春市绿园区仓储路9号");
            }
        }
    }

    #[test]
    fn catalog_order_then_unknown_keys() {
        let t = licence_type(Sharing::Unconditional);
        let keys: Vec<_> = shared_fields(&t, &stored(), false).into_iter().map(|f| f.key).collect();
        assert_eq!(keys.first().map(String::as_str), Some("licence_no"));
        assert_eq!(keys.last().map(String::as_str), Some("uncatalogued"));
    }
}
