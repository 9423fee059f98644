//! Validate: checks one read record against its pipeline plan and catalog type and returns a
//! [`Licence`] (with notes on what normalisation changed) or a [`RowReject`] naming every broken
//! rule. Pure: the run date is passed in, nothing is read or written here. Duplicate detection,
//! which needs the rows seen before, is the engine's (its `Dedupe` keys rows by
//! [`ValidRow::content_key`]).

pub mod rules;

use std::borrow::Cow;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::catalog::{FieldKind, keys};
use crate::licence::{FaceField, Licence, LicenceStatus, intern};
use crate::normalise::Normaliser;
use crate::normalise::{self, CellValue, dates, ids, width};
use crate::pipeline::{Binding, BoundColumn, IssuerPlan, Plan};
use crate::read::ReadError;
use crate::record::{Cell, Record, SourcePos};
pub use rules::{Problem, Rule};

/// A row that passed: the licence, what normalisation changed, and its content key.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRow {
    pub licence: Licence,
    /// Notes for the data team, e.g. a 15-digit ID upgraded (with the original).
    pub notes: Vec<String>,
    /// Hash of the normalised content: rows with equal keys are duplicates.
    pub content_key: [u8; 16],
    /// Path of a scanned image of the paper licence (存档副本), as written in the export.
    pub archive_copy: Option<String>,
    /// For a row that says revoked: the paper revocation's date (注销日期) and reason
    /// (注销原因), when the pipeline maps them.
    pub revoked_on: Option<NaiveDate>,
    pub revoked_reason: Option<String>,
}

/// A row that failed, with every problem found and its original cells.
#[derive(Debug, Clone, PartialEq)]
pub struct RowReject {
    pub pos: SourcePos,
    pub problems: Vec<Problem>,
    pub cells: Vec<String>,
}

impl RowReject {
    /// The first problem: its rule is the one the row is counted under.
    pub fn primary(&self) -> Option<&Problem> {
        self.problems.first()
    }

    /// A reject for a row the reader could not read.
    pub fn unreadable(err: &ReadError) -> RowReject {
        RowReject {
            pos: SourcePos {
                file: err.file.clone(),
                sheet: err.sheet.clone(),
                row: err.row.unwrap_or(0),
            },
            problems: vec![Problem::new("", Rule::Unreadable, err.kind.to_string())],
            cells: Vec::new(),
        }
    }
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Valid(Box<ValidRow>),
    Rejected(RowReject),
}

/// Checks records of one export against a plan bound to that export's headers.
pub struct Validator<'p> {
    plan: &'p Plan,
    binding: Binding,
    /// Issue dates after this day are refused.
    today: NaiveDate,
    /// Interned keys and labels, so a valid row does not re-allocate them.
    keys: Vec<(&'static str, &'static str)>,
}

/// What checking a row's columns found so far.
struct RowState {
    problems: Vec<Problem>,
    /// Notes for the data team (e.g. an upgraded ID).
    notes: Vec<String>,
    /// Each field's text, by catalog field index.
    values: Vec<Text>,
    /// Each date field's date, by catalog field index.
    dates: Vec<Option<NaiveDate>>,
    /// The validity end says 长期 (or the field is empty where the type allows that).
    open_ended: bool,
}

impl RowState {
    fn new(fields: usize) -> RowState {
        RowState {
            problems: Vec::new(),
            notes: Vec::new(),
            values: (0..fields).map(|_| Text::Owned(String::new())).collect(),
            dates: vec![None; fields],
            open_ended: false,
        }
    }
}

/// A row that broke no rule: what its licence (or its content key) is made from.
struct Passed {
    row: RowState,
    status: LicenceStatus,
    /// The issuer as printed, with (region, code).
    issuer: (String, (String, String)),
    issue_date: NaiveDate,
    dates: RowDates,
    /// The paper revocation's date and reason (see `revocation_of`).
    revocation: (Option<NaiveDate>, Option<String>),
}

/// The dates a licence's rules are checked on.
struct RowDates {
    issue: Option<NaiveDate>,
    valid_from: Option<NaiveDate>,
    valid_to: Option<NaiveDate>,
}

impl<'p> Validator<'p> {
    pub fn new(plan: &'p Plan, binding: Binding, today: NaiveDate) -> Validator<'p> {
        let keys =
            plan.licence_type.fields.iter().map(|f| (intern(&f.key), intern(&f.label))).collect();
        Validator { plan, binding, today, keys }
    }

    /// Checks one record. A valid row takes its texts out of the record instead of copying them.
    pub fn check(&self, mut rec: Record) -> RowOutcome {
        match self.checked(&rec) {
            Err(reject) => RowOutcome::Rejected(reject),
            Ok(mut passed) => {
                let revocation = std::mem::take(&mut passed.revocation);
                match self.valid_row(&mut rec, passed) {
                    RowOutcome::Valid(mut valid) => {
                        (valid.revoked_on, valid.revoked_reason) = revocation;
                        RowOutcome::Valid(valid)
                    }
                    other => other,
                }
            }
        }
    }

    /// Checks one record as [`Validator::check`] does, for a caller that keeps no licence (a
    /// `validate` that writes no files): a valid row's content key and position, with no
    /// licence built. The same rules decide, and the key is the one `check` gives the row.
    pub fn check_key(&self, rec: &Record) -> Result<([u8; 16], SourcePos), RowReject> {
        let passed = self.checked(rec)?;
        let values = passed.row.values.iter().map(|t| match t {
            Text::Owned(s) => s.as_str(),
            Text::Cell(i) => match rec.cells.get(*i) {
                Some(Cell::Text(s)) => s.as_str(),
                _ => "",
            },
        });
        let key =
            content_key(&self.plan.licence_type.code, &passed.issuer.1.1, passed.status, values);
        Ok((key, rec.pos.clone()))
    }

    /// Every rule over one record: what a valid row is made from, or the reject naming every
    /// broken rule.
    fn checked(&self, rec: &Record) -> Result<Passed, RowReject> {
        let ty = &self.plan.licence_type;
        let mut row = RowState::new(ty.fields.len());
        if rec.cells.len() != self.binding.width
            && rec.cells.iter().skip(self.binding.width).any(|c| !c.is_blank())
        {
            row.problems.push(Problem::new(
                "",
                Rule::Unreadable,
                format!("{} cells, the header has {}", rec.cells.len(), self.binding.width),
            ));
        }
        for col in &self.binding.columns {
            self.check_column(col, rec, &mut row);
        }
        let status = self.status_of(rec, &mut row.problems);
        let revocation = self.revocation_of(rec, status, &mut row.problems);
        let issuer = self.issuer_of(rec, &mut row.problems);
        if let Some((printed, _)) = &issuer
            && let Some(i) = ty.field_index(keys::ISSUER_NAME)
        {
            row.values[i] = Text::Owned(printed.clone());
        }
        let dates = self.check_dates(&mut row);

        let reject = |problems| RowReject {
            pos: rec.pos.clone(),
            problems,
            cells: rec.cells.iter().map(Cell::display).collect(),
        };
        if !row.problems.is_empty() {
            return Err(reject(row.problems));
        }
        let (Some(issue_date), Some(issuer)) = (dates.issue, issuer) else {
            // Unreachable when the catalog check passed (issue_date and issuer are required), but
            // a row is never lost: it is rejected.
            return Err(reject(vec![Problem::new(
                "",
                Rule::Required,
                "issue date or issuer missing",
            )]));
        };
        Ok(Passed { row, status, issuer, issue_date, dates, revocation })
    }

    /// The paper revocation's date and reason of a row that says revoked, from the columns
    /// `[status] revoked_on` and `revoked_reason` map (both `None` otherwise). A date that does
    /// not read is a `date` problem; a date after the run's day is `future_date` (a revocation
    /// cannot take effect later than it is recorded).
    fn revocation_of(
        &self,
        rec: &Record,
        status: LicenceStatus,
        problems: &mut Vec<Problem>,
    ) -> (Option<NaiveDate>, Option<String>) {
        if status != LicenceStatus::Revoked {
            return (None, None);
        }
        let plan = &self.plan.status;
        let label = plan.revoked_on.as_deref().unwrap_or("注销日期");
        let on = match self.binding.revoked_on.and_then(|i| rec.cells.get(i)) {
            None => None,
            Some(cell) => {
                let normalisers = normalise::Normaliser::defaults_for(&FieldKind::Date);
                match normalise::read_cell(cell, &FieldKind::Date, &normalisers) {
                    Ok(CellValue::Date(d)) => Some(d),
                    Ok(CellValue::Empty) => None,
                    // Every form a legacy export writes dates in (`dates::parse_date`).
                    Ok(CellValue::Text(text)) => match dates::parse_date(&text) {
                        Ok(d) => Some(d),
                        Err(e) => {
                            problems.push(Problem::new(
                                label,
                                Rule::Date,
                                format!("{text:?}: {e}"),
                            ));
                            None
                        }
                    },
                    Err(e) => {
                        problems.push(Problem::new(label, Rule::Date, e.to_string()));
                        None
                    }
                }
            }
        };
        if let Some(d) = on
            && d > self.today
        {
            problems.push(Problem::new(
                label,
                Rule::FutureDate,
                format!("revocation dated {d}, after {}", self.today),
            ));
        }
        let reason = self
            .binding
            .revoked_reason
            .and_then(|i| rec.cells.get(i))
            .map(|c| width::trim(&c.text()).to_string())
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(500).collect());
        (on, reason)
    }

    /// Reads, normalises and checks one mapped column into `row`.
    fn check_column(&self, col: &BoundColumn, rec: &Record, row: &mut RowState) {
        let ty = &self.plan.licence_type;
        let spec = &ty.fields[col.field];
        let cell = col.source.and_then(|i| rec.cells.get(i)).unwrap_or(&Cell::Empty);
        let whole_cell = |t: &str| match (cell, col.source) {
            (Cell::Text(s), Some(i)) if s.len() == t.len() => Some(i),
            _ => None,
        };
        let value = match normalise::read_cell(cell, &spec.kind, &col.normalisers) {
            Ok(v) => v,
            Err(e) => {
                let rule = match e {
                    normalise::CellError::LossyNumber { .. } => Rule::LossyNumber,
                    normalise::CellError::Date(_) => Rule::Date,
                    _ => Rule::CellType,
                };
                row.problems.push(Problem::new(&spec.label, rule, e.to_string()));
                return;
            }
        };
        let is_valid_to = spec.key == keys::VALID_TO;
        match value {
            CellValue::Empty => {
                if spec.required {
                    row.problems.push(Problem::new(&spec.label, Rule::Required, "empty"));
                } else if is_valid_to && ty.validity.open_ended {
                    row.open_ended = true;
                }
            }
            CellValue::Date(d) => {
                if matches!(spec.kind, FieldKind::Date) {
                    if is_valid_to && NaiveDate::from_ymd_opt(9999, 12, 31) == Some(d) {
                        row.open_ended = true;
                    } else {
                        row.dates[col.field] = Some(d);
                        row.values[col.field] = Text::Owned(d.to_string());
                    }
                } else {
                    row.values[col.field] = Text::Owned(d.to_string());
                }
            }
            CellValue::Text(text) if matches!(spec.kind, FieldKind::Date) => {
                let parsed = if is_valid_to {
                    dates::parse_validity_end(&text).map(|v| match v {
                        dates::ValidityEnd::Date(d) => Some(d),
                        dates::ValidityEnd::OpenEnded => None,
                    })
                } else {
                    dates::parse_date(&text).map(Some)
                };
                match parsed {
                    Ok(Some(d)) => {
                        row.dates[col.field] = Some(d);
                        row.values[col.field] = Text::Owned(d.to_string());
                    }
                    Ok(None) => {
                        if ty.validity.open_ended {
                            row.open_ended = true;
                            row.values[col.field] = Text::Owned(text.into_owned());
                        } else {
                            row.problems.push(Problem::new(
                                &spec.label,
                                Rule::OpenEnded,
                                format!("{text:?}: {} licences must have an end date", ty.name),
                            ));
                        }
                    }
                    Err(e) => row.problems.push(Problem::new(
                        &spec.label,
                        Rule::Date,
                        format!("{text:?}: {e}"),
                    )),
                }
            }
            CellValue::Text(mut text) => {
                if text.len() == 15 && col.normalisers.contains(&Normaliser::CitizenIdUpgrade) {
                    let mut owned = text.into_owned();
                    upgrade_id(
                        &spec.label,
                        &mut owned,
                        &mut row.notes,
                        &mut row.problems,
                        &spec.kind,
                        &ty.holder_code_type,
                    );
                    text = Cow::Owned(owned);
                }
                if let Err(p) = rules::check_length(spec, &text) {
                    row.problems.push(p);
                } else if let Err(p) = rules::check_kind(spec, &text, &ty.holder_code_type) {
                    row.problems.push(p);
                }
                row.values[col.field] = match text {
                    Cow::Borrowed(b) => match whole_cell(b) {
                        Some(i) => Text::Cell(i),
                        None => Text::Owned(b.to_owned()),
                    },
                    Cow::Owned(o) => Text::Owned(o),
                };
            }
        }
    }

    /// Cross-field date rules: no issue date in the future, validity after issue and within
    /// the type's longest term, open-ended validity only where the type allows it.
    fn check_dates(&self, row: &mut RowState) -> RowDates {
        let ty = &self.plan.licence_type;
        let date_of = |key: &str| ty.field_index(key).and_then(|i| row.dates[i]);
        let dates = RowDates {
            issue: date_of(keys::ISSUE_DATE),
            valid_from: date_of(keys::VALID_FROM),
            valid_to: date_of(keys::VALID_TO),
        };
        if let Some(issue) = dates.issue {
            if issue > self.today {
                let label = ty.field(keys::ISSUE_DATE).map(|f| f.label.as_str()).unwrap_or("");
                row.problems.push(Problem::new(
                    label,
                    Rule::FutureDate,
                    format!("{issue} is after {}", self.today),
                ));
            }
            let label = ty.field(keys::VALID_TO).map(|f| f.label.as_str()).unwrap_or("");
            if let Err(p) = rules::check_validity(
                label,
                dates.valid_from.unwrap_or(issue),
                dates.valid_to,
                ty.validity.max_years,
            ) {
                row.problems.push(p);
            }
        }
        if ty.field(keys::VALID_TO).is_some_and(|f| f.required)
            && dates.valid_to.is_none()
            && row.open_ended
            && !ty.validity.open_ended
        {
            let label = ty.field(keys::VALID_TO).map(|f| f.label.as_str()).unwrap_or("");
            row.problems.push(Problem::new(
                label,
                Rule::OpenEnded,
                "open-ended validity is not allowed for this type",
            ));
        }
        dates
    }

    /// The licence of a row without problems; its texts move out of the record.
    fn valid_row(&self, rec: &mut Record, passed: Passed) -> RowOutcome {
        let Passed { row, status, issuer: (issuer_name, issuer), issue_date, dates, .. } = passed;
        let dates = &dates;
        let ty = &self.plan.licence_type;
        let values: Vec<String> = row
            .values
            .into_iter()
            .map(|t| match t {
                Text::Owned(s) => s,
                Text::Cell(i) => match rec.cells.get_mut(i) {
                    Some(Cell::Text(s)) => std::mem::take(s),
                    _ => String::new(),
                },
            })
            .collect();
        let field_value =
            |key: &str| ty.field_index(key).map(|i| values[i].clone()).unwrap_or_default();
        let content_key =
            content_key(&ty.code, &issuer.1, status, values.iter().map(String::as_str));
        let licence = Licence {
            type_name: ty.name.clone(),
            type_code: ty.code.clone(),
            printed_no: field_value(keys::LICENCE_NO),
            issuer_name,
            issuer_code: issuer.1,
            holder_name: field_value(keys::HOLDER_NAME),
            holder_code: field_value(keys::HOLDER_CODE),
            holder_code_type: ty.holder_code_type.clone(),
            issue_date,
            valid_from: dates.valid_from.unwrap_or(issue_date),
            valid_to: dates.valid_to,
            region_code: issuer.0,
            status,
            fields: ty
                .fields
                .iter()
                .zip(values)
                .zip(&self.keys)
                .map(|((_, value), &(key, label))| FaceField { key, label, value })
                .collect(),
            pos: rec.pos.clone(),
        };
        let archive_copy = self
            .binding
            .archive_copy
            .and_then(|i| rec.cells.get(i))
            .map(|c| width::trim(&c.text()).to_string())
            .filter(|p| !p.is_empty());
        RowOutcome::Valid(Box::new(ValidRow {
            licence,
            notes: row.notes,
            content_key,
            archive_copy,
            revoked_on: None,
            revoked_reason: None,
        }))
    }

    fn status_of(&self, rec: &Record, problems: &mut Vec<Problem>) -> LicenceStatus {
        let plan = &self.plan.status;
        let cell = self.binding.status.and_then(|i| rec.cells.get(i)).map(Cell::text);
        let word = cell.as_deref().map(width::trim).unwrap_or_default();
        let label = plan.column.as_deref().unwrap_or("状态");
        if word.is_empty() {
            return match plan.default {
                Some(s) => s,
                None => {
                    problems.push(Problem::new(label, Rule::Status, "empty"));
                    LicenceStatus::Valid
                }
            };
        }
        match plan.lookup(word) {
            Some(s) => s,
            None => {
                let known: Vec<&str> = plan.words.iter().map(|(w, _)| w.as_str()).collect();
                problems.push(Problem::new(
                    label,
                    Rule::Status,
                    format!("{word:?} is not one of {}", known.join(", ")),
                ));
                LicenceStatus::Valid
            }
        }
    }

    /// The issuer as printed, with (region, code).
    fn issuer_of(
        &self,
        rec: &Record,
        problems: &mut Vec<Problem>,
    ) -> Option<(String, (String, String))> {
        match &self.plan.issuer {
            IssuerPlan::Fixed(k) => Some((k.name.clone(), (k.region.clone(), k.code.clone()))),
            IssuerPlan::FromColumn { column, .. } => {
                let printed = self
                    .binding
                    .issuer
                    .and_then(|i| rec.cells.get(i))
                    .map(|c| width::trim(&c.text()).to_string())
                    .unwrap_or_default();
                if printed.is_empty() {
                    problems.push(Problem::new(column, Rule::Required, "empty"));
                    return None;
                }
                match self.plan.issuer.resolve(&printed) {
                    Some(k) => Some((printed, (k.region.clone(), k.code.clone()))),
                    None => {
                        problems.push(Problem::new(
                            column,
                            Rule::Issuer,
                            format!("{printed:?} is not a known issuer of this pipeline"),
                        ));
                        None
                    }
                }
            }
        }
    }
}

/// Upgrades a 15-digit citizen ID in place (GB 11643: insert 19, add the check character),
/// noting the original; other values pass unchanged.
fn upgrade_id(
    label: &str,
    text: &mut String,
    notes: &mut Vec<String>,
    problems: &mut Vec<Problem>,
    kind: &FieldKind,
    holder_code_type: &str,
) {
    let is_person_code = match kind {
        FieldKind::CitizenId => true,
        FieldKind::HolderCode => holder_code_type == "111",
        _ => false,
    };
    if !is_person_code || text.len() != 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    match ids::upgrade_citizen_id_15(text) {
        Ok(up) => {
            let mut note = format!("{label}: upgraded from 15 digits ({text})");
            if up.legacy_1800s {
                note.push_str("; sequence 996-999: holder born in the 1800s, check the record");
            }
            notes.push(note);
            *text = up.id18;
        }
        Err(e) => {
            problems.push(Problem::new(label, Rule::CheckDigit, format!("15-digit ID {text}: {e}")))
        }
    }
}

/// A field's text while the row is checked: its own, or a whole cell of the record (moved out
/// only once the row is known to be valid, so that a reject still shows every cell).
enum Text {
    Owned(String),
    Cell(usize),
}

fn content_key<'a>(
    type_code: &str,
    issuer_code: &str,
    status: LicenceStatus,
    values: impl Iterator<Item = &'a str>,
) -> [u8; 16] {
    let mut h = Sha256::new();
    for part in [type_code, issuer_code, status.as_str()] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    for v in values {
        h.update(v.as_bytes());
        h.update([0x1f]);
    }
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// `check_key` decides every row as `check` does and gives a valid row the same content
    /// key, on every bundled fixture of every shipped pipeline (valid, rejected and duplicate
    /// rows; CSV in each encoding and workbooks).
    #[test]
    fn check_key_agrees_with_check_on_every_fixture_row() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let mut rows = 0;
        for pipeline in
            ["food-business-permit", "business-licence", "special-operations-certificate"]
        {
            let plan =
                crate::pipeline::load(&root.join(format!("pipelines/{pipeline}.toml"))).unwrap();
            for entry in std::fs::read_dir(root.join("fixtures").join(pipeline)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    continue;
                }
                let mut source = crate::read::open(&path, &plan.source_spec()).unwrap();
                let binding = plan.bind(source.headers()).unwrap();
                let validator = Validator::new(&plan, binding, today);
                while let Some(batch) = source.next_batch() {
                    for rec in batch.records().records.into_iter().flatten() {
                        rows += 1;
                        let by_key = validator.check_key(&rec);
                        match (validator.check(rec), by_key) {
                            (RowOutcome::Valid(row), Ok((key, pos))) => {
                                assert_eq!(row.content_key, key, "{}", row.licence.pos);
                                assert_eq!(row.licence.pos, pos);
                            }
                            (RowOutcome::Rejected(a), Err(b)) => assert_eq!(a, b),
                            (a, b) => panic!("{}: check {a:?}, check_key {b:?}", path.display()),
                        }
                    }
                }
            }
        }
        assert!(rows > 100, "only {rows} rows checked");
    }
}
