//! Map & normalise: turns one source cell into the text (or date) the validator checks, applying
//! the pipeline's normalisers. Display text is kept as written (never NFKC: it would rewrite
//! （） in company names); only codes and dates are folded to half-width.

pub mod dates;
pub mod ids;
pub mod width;

use std::borrow::Cow;

use chrono::NaiveDate;

use crate::catalog::FieldKind;
use crate::record::Cell;

/// A text transformation applied to a cell before its kind is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normaliser {
    /// Strip leading and trailing whitespace, including NBSP and U+3000.
    Trim,
    /// Full-width ASCII (`２０１７`, `Ｘ`) to half-width.
    HalfWidth,
    /// ASCII letters to upper case (codes only: `x` → `X`).
    Upper,
    /// Runs of inner whitespace to one space.
    CollapseSpaces,
    /// 15-digit citizen ID numbers to 18 digits (GB 11643), keeping the original.
    CitizenIdUpgrade,
}

impl Normaliser {
    /// The normaliser a pipeline file names `name`, if any.
    pub fn parse(name: &str) -> Option<Normaliser> {
        Some(match name {
            "trim" => Normaliser::Trim,
            "half_width" => Normaliser::HalfWidth,
            "upper" => Normaliser::Upper,
            "collapse_spaces" => Normaliser::CollapseSpaces,
            "citizen_id_upgrade" => Normaliser::CitizenIdUpgrade,
            _ => return None,
        })
    }

    /// The normalisers a field kind gets when the pipeline names none.
    pub fn defaults_for(kind: &FieldKind) -> Vec<Normaliser> {
        use Normaliser::*;
        match kind {
            FieldKind::CitizenId => vec![Trim, HalfWidth, Upper, CitizenIdUpgrade],
            FieldKind::HolderCode => vec![Trim, HalfWidth, Upper, CitizenIdUpgrade],
            k if k.is_code() => vec![Trim, HalfWidth, Upper],
            FieldKind::Date => vec![Trim, HalfWidth],
            _ => vec![Trim],
        }
    }
}

/// Why a cell could not be turned into text for its field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CellError {
    /// A code stored as a number: digits beyond 15 significant figures, or leading zeros, are lost.
    #[error("stored as the number {shown}; digits are lost, fix the export (store codes as text)")]
    LossyNumber { shown: String },
    /// A spreadsheet error value.
    #[error("spreadsheet error value {value}")]
    ErrorValue { value: String },
    /// A date cell in a field that is not a date.
    #[error("a date cell ({date}) where a {kind} is expected")]
    DateInCodeField { date: String, kind: &'static str },
    /// A date serial number that is no date.
    #[error("{0}")]
    Date(#[from] dates::DateError),
}

/// A cell read for its field: normalised text, or a date for date cells.
#[derive(Debug, Clone, PartialEq)]
pub enum CellValue<'a> {
    Empty,
    Text(Cow<'a, str>),
    /// A date cell already converted (Excel serial or ISO date).
    Date(NaiveDate),
}

/// Number of digits a numeric cell must have to be read as each code kind without loss.
fn exact_digits(kind: &FieldKind) -> Option<usize> {
    match kind {
        FieldKind::RegionCode => Some(6),
        _ => None,
    }
}

/// Reads a cell for a field of `kind`, applying `normalisers` to text.
pub fn read_cell<'a>(
    cell: &'a Cell,
    kind: &FieldKind,
    normalisers: &[Normaliser],
) -> Result<CellValue<'a>, CellError> {
    match cell {
        Cell::Empty => Ok(CellValue::Empty),
        Cell::Text(s) => {
            let t = apply(s, normalisers);
            if t.is_empty() { Ok(CellValue::Empty) } else { Ok(CellValue::Text(t)) }
        }
        Cell::Number(n) => read_number(*n, kind),
        Cell::Bool(b) => Ok(CellValue::Text(Cow::Owned(b.to_string()))),
        Cell::ExcelDate { serial, date1904 } => {
            let date = dates::excel_serial_to_date(*serial, *date1904)?;
            if kind.is_code() {
                Err(CellError::DateInCodeField { date: date.to_string(), kind: kind.name() })
            } else {
                Ok(CellValue::Date(date))
            }
        }
        Cell::IsoDate(s) => {
            let date = dates::parse_date(s)?;
            Ok(CellValue::Date(date))
        }
        Cell::Error(e) => Err(CellError::ErrorValue { value: e.clone() }),
    }
}

fn read_number(n: f64, kind: &FieldKind) -> Result<CellValue<'static>, CellError> {
    let shown = cell_number_text(n);
    if matches!(kind, FieldKind::Date) {
        // An unformatted date cell: a bare serial number (1900 system).
        return Ok(CellValue::Date(dates::excel_serial_to_date(n, false)?));
    }
    if kind.is_code() {
        // Excel keeps 15 significant digits: an 18-character code stored as a number has lost
        // digits, and a code with leading zeros has lost them. Never "repair" it.
        let integral = n.fract() == 0.0 && n.abs() < 1e15;
        let fits = exact_digits(kind).is_none_or(|d| shown.len() == d);
        if !integral
            || !fits
            || matches!(
                kind,
                FieldKind::Uscc | FieldKind::CitizenId | FieldKind::HolderCode | FieldKind::OrgCode
            )
        {
            return Err(CellError::LossyNumber { shown });
        }
    }
    Ok(CellValue::Text(Cow::Owned(shown)))
}

/// A number as Excel would show it in a General cell (integers without `.0`, large ones in
/// scientific notation as `1.10105E+17`).
pub fn cell_number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else if n.abs() >= 1e15 {
        let s = format!("{n:.5E}");
        // `1.10105E17` → `1.10105E+17`, the way a spreadsheet shows it.
        s.replacen("E", "E+", 1)
    } else {
        format!("{n}")
    }
}

/// Applies normalisers to text. Borrows when nothing changes (the common case).
pub fn apply<'a>(s: &'a str, normalisers: &[Normaliser]) -> Cow<'a, str> {
    let mut out: Cow<'a, str> = Cow::Borrowed(s);
    for n in normalisers {
        out = match n {
            Normaliser::Trim => match out {
                Cow::Borrowed(b) => Cow::Borrowed(width::trim(b)),
                Cow::Owned(o) => Cow::Owned(width::trim(&o).to_string()),
            },
            Normaliser::HalfWidth => match out {
                Cow::Borrowed(b) => width::to_half_width(b),
                Cow::Owned(o) => Cow::Owned(width::to_half_width(&o).into_owned()),
            },
            Normaliser::Upper => {
                if out.bytes().any(|b| b.is_ascii_lowercase()) {
                    Cow::Owned(out.to_ascii_uppercase())
                } else {
                    out
                }
            }
            Normaliser::CollapseSpaces => {
                if out.contains("  ") || out.contains(['\t', '\n', '\r', '\u{3000}', '\u{a0}']) {
                    Cow::Owned(out.split_whitespace().collect::<Vec<_>>().join(" "))
                } else {
                    out
                }
            }
            // Applied by the validator, which keeps the original beside the upgraded number.
            Normaliser::CitizenIdUpgrade => out,
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_numbers_are_refused_for_codes() {
        let n = Cell::Number(110105194912310000.0);
        assert!(matches!(
            read_cell(&n, &FieldKind::CitizenId, &[]),
            Err(CellError::LossyNumber { .. })
        ));
        let shown = cell_number_text(110105194912310000.0);
        assert_eq!(shown, "1.10105E+17");
        assert_eq!(
            read_cell(&Cell::Number(220104.0), &FieldKind::RegionCode, &[]).unwrap(),
            CellValue::Text(Cow::Borrowed("220104"))
        );
        assert_eq!(
            read_cell(&Cell::Number(42.0), &FieldKind::Text, &[]).unwrap(),
            CellValue::Text(Cow::Borrowed("42"))
        );
    }

    #[test]
    fn normalisers_chain() {
        use Normaliser::*;
        assert_eq!(apply("\u{3000}ｊｙ１２３\u{a0}", &[Trim, HalfWidth, Upper]), "JY123");
        assert_eq!(apply("  长春市 （朝阳）  ", &[Trim]), "长春市 （朝阳）");
        assert!(matches!(apply("ABC", &[Trim, HalfWidth, Upper]), Cow::Borrowed(_)));
    }
}
