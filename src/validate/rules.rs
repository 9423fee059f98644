//! The rules a row can break, and the pure checks behind them. Each check takes normalised text
//! (or dates) and returns the [`Problem`] it found; nothing here touches files or the clock.

use std::fmt;

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::catalog::{FieldKind, FieldSpec};
use crate::codes;

/// A rule a row can break. The snake_case name is what rejects files and reports show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A required field is empty.
    Required,
    /// Longer than the field's `max_len` characters.
    MaxLength,
    /// Not one of the enum's values.
    Enum,
    /// A licence number that does not match its pattern.
    Pattern,
    /// A code (USCC, citizen ID, organisation or region code) with a bad length, character or
    /// check character.
    CheckDigit,
    /// A citizen ID whose birth date does not exist.
    BirthDate,
    /// A date that cannot be read or does not exist.
    Date,
    /// Open-ended validity (长期) for a type that does not allow it.
    OpenEnded,
    /// Validity ends on or before the issue date, or starts after it ends.
    ValidityOrder,
    /// Validity longer than the type allows.
    ValidityRange,
    /// Issue date after the run's date.
    FutureDate,
    /// A code stored as a spreadsheet number that lost digits (`1.10105E+17`) or leading zeros.
    LossyNumber,
    /// A spreadsheet error value (`#N/A`) or a value of the wrong cell type.
    CellType,
    /// A status word outside the pipeline's vocabulary.
    Status,
    /// An issuer the pipeline does not know.
    Issuer,
    /// The row could not be read: undecodable bytes, wrong field count, NUL bytes, oversized field.
    Unreadable,
    /// Registry: the holder already has a live licence of this single-instance type.
    SingleInstance,
    /// Registry: changed content for a revoked licence (an export does not re-issue it).
    ChangeAfterRevoke,
    /// The natural key makes no GB/T 36904 identifier.
    Identifier,
    /// The licence could not be rendered or signed (e.g. a value that does not fit its box).
    Render,
    /// The scanned archive copy named by the row is missing or not an image.
    ArchiveCopy,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::MaxLength => "max_length",
            Rule::Enum => "enum",
            Rule::Pattern => "pattern",
            Rule::CheckDigit => "check_digit",
            Rule::BirthDate => "birth_date",
            Rule::Date => "date",
            Rule::OpenEnded => "open_ended",
            Rule::ValidityOrder => "validity_order",
            Rule::ValidityRange => "validity_range",
            Rule::FutureDate => "future_date",
            Rule::LossyNumber => "lossy_number",
            Rule::CellType => "cell_type",
            Rule::Status => "status",
            Rule::Issuer => "issuer",
            Rule::Unreadable => "unreadable",
            Rule::SingleInstance => "single_instance",
            Rule::ChangeAfterRevoke => "change_after_revoke",
            Rule::Identifier => "identifier",
            Rule::Render => "render",
            Rule::ArchiveCopy => "archive_copy",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule in one field (by its Chinese label, or the source header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub rule: Rule,
    pub message: String,
}

impl Problem {
    pub fn new(field: &str, rule: Rule, message: impl Into<String>) -> Problem {
        Problem { field: field.to_string(), rule, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.rule)
    }
}

/// Length in characters against the field's `max_len`.
pub fn check_length(spec: &FieldSpec, value: &str) -> Result<(), Problem> {
    match spec.max_len {
        Some(max) => {
            let n = value.chars().count();
            if n > max {
                Err(Problem::new(
                    &spec.label,
                    Rule::MaxLength,
                    format!("{n} characters, at most {max}"),
                ))
            } else {
                Ok(())
            }
        }
        None => Ok(()),
    }
}

/// The kind-specific check of a non-empty normalised text value (dates are checked elsewhere).
/// `holder_code_type` decides what a holder code must be (001 USCC, 111 citizen ID).
pub fn check_kind(spec: &FieldSpec, value: &str, holder_code_type: &str) -> Result<(), Problem> {
    let code_problem = |e: codes::CodeError| {
        let rule = if matches!(e, codes::CodeError::BadBirthDate { .. }) {
            Rule::BirthDate
        } else {
            Rule::CheckDigit
        };
        Problem::new(&spec.label, rule, e.to_string())
    };
    match &spec.kind {
        FieldKind::Text | FieldKind::Date => Ok(()),
        FieldKind::Uscc => codes::check_uscc(value).map_err(code_problem),
        FieldKind::CitizenId => codes::check_citizen_id(value).map(|_| ()).map_err(code_problem),
        FieldKind::OrgCode => codes::check_org_code(value).map_err(code_problem),
        FieldKind::RegionCode => codes::check_region_code(value).map_err(code_problem),
        FieldKind::HolderCode => match holder_code_type {
            "001" => codes::check_uscc(value).map_err(code_problem),
            "111" => codes::check_citizen_id(value).map(|_| ()).map_err(code_problem),
            _ => Ok(()),
        },
        FieldKind::Enum(values) => {
            if values.iter().any(|v| v == value) {
                Ok(())
            } else {
                Err(Problem::new(
                    &spec.label,
                    Rule::Enum,
                    format!("{value:?} is not one of {}", values.join(", ")),
                ))
            }
        }
        FieldKind::LicenceNo(re) => {
            if re.is_match(value) {
                Ok(())
            } else {
                Err(Problem::new(
                    &spec.label,
                    Rule::Pattern,
                    format!("{value:?} does not match {}", re.as_str()),
                ))
            }
        }
    }
}

/// Validity must end after it starts, and within the type's longest span.
pub fn check_validity(
    label: &str,
    start: NaiveDate,
    end: Option<NaiveDate>,
    max_years: Option<u32>,
) -> Result<(), Problem> {
    let Some(end) = end else { return Ok(()) };
    if end <= start {
        return Err(Problem::new(
            label,
            Rule::ValidityOrder,
            format!("ends {end}, not after {start}"),
        ));
    }
    if let Some(years) = max_years {
        let limit = start.checked_add_months(Months::new(years * 12)).unwrap_or(NaiveDate::MAX);
        if end > limit {
            return Err(Problem::new(
                label,
                Rule::ValidityRange,
                format!("{start} to {end} is longer than {years} years (latest {limit})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn validity_rules() {
        assert!(
            check_validity("有效期至", d("2017-04-24"), Some(d("2022-04-23")), Some(5)).is_ok()
        );
        assert!(
            check_validity("有效期至", d("2017-04-24"), Some(d("2022-04-24")), Some(5)).is_ok()
        );
        let e = check_validity("有效期至", d("2017-04-24"), Some(d("2022-04-25")), Some(5))
            .unwrap_err();
        assert_eq!(e.rule, Rule::ValidityRange);
        let e = check_validity("有效期至", d("2017-04-24"), Some(d("2017-04-24")), Some(5))
            .unwrap_err();
        assert_eq!(e.rule, Rule::ValidityOrder);
        assert!(check_validity("有效期至", d("2017-04-24"), None, Some(5)).is_ok());
    }

    #[test]
    fn enum_and_pattern() {
        let spec = FieldSpec {
            key: "business_type".into(),
            label: "主体业态".into(),
            kind: FieldKind::Enum(vec!["单位食堂".into()]),
            required: true,
            max_len: None,
            personal: false,
            trade_secret: false,
        };
        assert!(check_kind(&spec, "单位食堂", "001").is_ok());
        assert_eq!(check_kind(&spec, "食堂", "001").unwrap_err().rule, Rule::Enum);
        let spec = FieldSpec {
            kind: FieldKind::LicenceNo(regex::Regex::new("^(?:JY[0-9]{14})$").unwrap()),
            ..spec
        };
        assert!(check_kind(&spec, "JY12201040000016", "001").is_ok());
        assert_eq!(check_kind(&spec, "JY1220104000001", "001").unwrap_err().rule, Rule::Pattern);
    }
}
