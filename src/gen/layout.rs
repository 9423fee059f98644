//! The columns of a generated export, taken from the pipeline: its `[[column]]` headers in
//! order, then the status column, the issuer column and the archive-copy column when the
//! pipeline has them. Each column knows what the validator will do with it (field kind,
//! required, length, normalisers), which is what the defects aim at.

use crate::catalog::{FieldKind, keys};
use crate::normalise::Normaliser;
use crate::pipeline::{IssuerPlan, Plan};

/// What a column holds.
#[derive(Debug, Clone)]
pub enum Role {
    /// A catalog field.
    Field {
        key: String,
        kind: FieldKind,
        required: bool,
        max_len: Option<usize>,
        normalisers: Vec<Normaliser>,
    },
    /// The status word (状态).
    Status,
    /// The issuer as printed (发证机关).
    Issuer,
    /// The path of a scanned copy: left empty.
    ArchiveCopy,
}

/// One column of the export.
#[derive(Debug, Clone)]
pub struct Column {
    pub header: String,
    pub role: Role,
}

impl Column {
    /// The catalog field key, for field columns.
    pub fn key(&self) -> Option<&str> {
        match &self.role {
            Role::Field { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Whether the column's normalisers include `n`.
    pub fn normalises(&self, n: Normaliser) -> bool {
        matches!(&self.role, Role::Field { normalisers, .. } if normalisers.contains(&n))
    }

    /// Whether the column takes its values from a small vocabulary (status words, issuers,
    /// enum values, a few signers and offices): worth a workbook's shared-strings table.
    pub fn has_small_vocabulary(&self) -> bool {
        match &self.role {
            Role::Status | Role::Issuer => true,
            Role::Field { kind: FieldKind::Enum(_), .. } => true,
            Role::Field { key, .. } => key == "signer" || key == "supervisor",
            Role::ArchiveCopy => false,
        }
    }

    /// Whether the validator reads this column as a citizen ID.
    pub fn is_citizen_id(&self, holder_code_type: &str) -> bool {
        match &self.role {
            Role::Field { kind: FieldKind::CitizenId, .. } => true,
            Role::Field { kind: FieldKind::HolderCode, .. } => holder_code_type == "111",
            _ => false,
        }
    }

    /// Whether the validator reads this column as a USCC.
    pub fn is_uscc(&self, holder_code_type: &str) -> bool {
        match &self.role {
            Role::Field { kind: FieldKind::Uscc, .. } => true,
            Role::Field { kind: FieldKind::HolderCode, .. } => holder_code_type == "001",
            _ => false,
        }
    }
}

/// The columns of the export, in order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub columns: Vec<Column>,
}

impl Layout {
    /// The export columns of `plan`.
    pub fn of(plan: &Plan) -> Layout {
        let ty = &plan.licence_type;
        let mut columns: Vec<Column> = plan
            .columns
            .iter()
            .filter_map(|c| {
                let f = ty.fields.get(c.field)?;
                Some(Column {
                    header: c.header.clone(),
                    role: Role::Field {
                        key: f.key.clone(),
                        kind: f.kind.clone(),
                        // An optional column may be left out of an export: then its field is
                        // empty, but when present a required field must be filled.
                        required: f.required,
                        max_len: f.max_len,
                        normalisers: c.normalisers.clone(),
                    },
                })
            })
            .collect();
        if let Some(c) = &plan.status.column {
            columns.push(Column { header: c.clone(), role: Role::Status });
        }
        if let IssuerPlan::FromColumn { column, .. } = &plan.issuer {
            columns.push(Column { header: column.clone(), role: Role::Issuer });
        }
        if let Some(c) = &plan.archive_copy_column {
            columns.push(Column { header: c.clone(), role: Role::ArchiveCopy });
        }
        Layout { columns }
    }

    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.header.clone()).collect()
    }

    /// The first column mapped to field `key`.
    pub fn field(&self, key: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.key() == Some(key))
    }

    /// The status column.
    pub fn status(&self) -> Option<usize> {
        self.columns.iter().position(|c| matches!(c.role, Role::Status))
    }

    /// The issuer column.
    pub fn issuer(&self) -> Option<usize> {
        self.columns.iter().position(|c| matches!(c.role, Role::Issuer))
    }

    /// The issue-date column.
    pub fn issue_date(&self) -> Option<usize> {
        self.field(keys::ISSUE_DATE)
    }

    /// The validity-end column.
    pub fn valid_to(&self) -> Option<usize> {
        self.field(keys::VALID_TO)
    }
}
