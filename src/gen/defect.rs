//! The defects a generated row may carry, and the outcome `elicence validate` must give it.
//!
//! Each defect breaks exactly one rule of the read/validate issue (so the row is rejected under
//! that rule and no other), or is a variant that normalisation must accept (full-width codes, a
//! 15-digit citizen ID), or makes the row an exact copy of an earlier valid row (a duplicate).
//! [`Targets`] finds, once per export, the columns each defect can aim at; a defect without a
//! target in a pipeline is never drawn for it.

use chrono::{Datelike, NaiveDate};
use regex::Regex;

use super::dates::{self, DateForm, add_days, add_years, push_ymd, ymd};
use super::layout::{Layout, Role};
use super::orgs::wrong_uscc_check;
use super::people::{self, id15_of, wrong_id_check};
use super::profile::{Draft, Profile, ValidTo};
use super::rng::Rng;
use super::{CellKind, ExportRow};
use crate::catalog::{FieldKind, keys};
use crate::normalise;
use crate::normalise::Normaliser;
use crate::pipeline::{IssuerPlan, Plan};
use crate::validate::Rule;

/// What `elicence validate` must make of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    Valid,
    Rejected(Rule),
    Duplicate,
}

impl Expected {
    /// The `outcome` column of the expected file.
    pub fn outcome(self) -> &'static str {
        match self {
            Expected::Valid => "valid",
            Expected::Rejected(_) => "rejected",
            Expected::Duplicate => "duplicate",
        }
    }

    /// The `rule` column: the reject rule as `validate` names it, else empty.
    pub fn rule(self) -> &'static str {
        match self {
            Expected::Rejected(rule) => rule.as_str(),
            _ => "",
        }
    }
}

/// One thing wrong (or merely unusual) with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// USCC with a wrong check character → `check_digit`.
    BadUsccCheck,
    /// Citizen ID with a wrong check character → `check_digit`.
    BadIdCheck,
    /// Citizen ID whose birth date does not exist (check character right) → `birth_date`.
    ImpossibleBirthDate,
    /// Enum value outside the catalog's list → `enum`.
    EnumOutside,
    /// Validity longer than the type's `max_years` → `validity_range`.
    ValidityTooLong,
    /// Validity ending on or before its start → `validity_order`.
    EndBeforeStart,
    /// A required field left blank (or only spaces) → `required`.
    RequiredBlank,
    /// A date that is not in the calendar (2019-02-29, 2018年4月31日) → `date`.
    BadCalendarDate,
    /// Licence number not matching the catalog pattern → `pattern`.
    PatternMismatch,
    /// Status word outside the pipeline's vocabulary → `status`.
    UnknownStatus,
    /// Issuer the pipeline does not know → `issuer`.
    UnknownIssuer,
    /// 长期/永久/9999-12-31 for a type that needs an end date → `open_ended`.
    OpenEndedNotAllowed,
    /// A text longer than its `max_len` → `max_length`.
    OverLong,
    /// Issue date after the run date (a typo such as 2071 for 2017) → `future_date`.
    FutureIssueDate,
    /// Workbooks only: an 18-digit ID stored as a number, digits lost → `lossy_number`.
    LossyNumber,
    /// Codes (and some dates) in full-width characters: valid after normalisation.
    FullWidthCodes,
    /// A 15-digit citizen ID: valid, upgraded to 18 digits.
    Id15,
    /// An exact copy of an earlier valid row → duplicate.
    ExactDuplicate,
}

impl Defect {
    /// Every defect, in the order they are drawn from.
    pub const ALL: [Defect; 18] = [
        Defect::BadUsccCheck,
        Defect::BadIdCheck,
        Defect::ImpossibleBirthDate,
        Defect::EnumOutside,
        Defect::ValidityTooLong,
        Defect::EndBeforeStart,
        Defect::RequiredBlank,
        Defect::BadCalendarDate,
        Defect::PatternMismatch,
        Defect::UnknownStatus,
        Defect::UnknownIssuer,
        Defect::OpenEndedNotAllowed,
        Defect::OverLong,
        Defect::FutureIssueDate,
        Defect::LossyNumber,
        Defect::FullWidthCodes,
        Defect::Id15,
        Defect::ExactDuplicate,
    ];

    /// A short name for summaries.
    pub fn name(self) -> &'static str {
        match self {
            Defect::BadUsccCheck => "bad-uscc-check",
            Defect::BadIdCheck => "bad-id-check",
            Defect::ImpossibleBirthDate => "impossible-birth-date",
            Defect::EnumOutside => "enum-outside",
            Defect::ValidityTooLong => "validity-too-long",
            Defect::EndBeforeStart => "end-before-start",
            Defect::RequiredBlank => "required-blank",
            Defect::BadCalendarDate => "bad-calendar-date",
            Defect::PatternMismatch => "pattern-mismatch",
            Defect::UnknownStatus => "unknown-status",
            Defect::UnknownIssuer => "unknown-issuer",
            Defect::OpenEndedNotAllowed => "open-ended-not-allowed",
            Defect::OverLong => "over-long",
            Defect::FutureIssueDate => "future-issue-date",
            Defect::LossyNumber => "lossy-number",
            Defect::FullWidthCodes => "full-width-codes",
            Defect::Id15 => "id-15",
            Defect::ExactDuplicate => "exact-duplicate",
        }
    }

    /// The outcome a row with this defect must get.
    pub fn expected(self) -> Expected {
        let rule = match self {
            Defect::BadUsccCheck | Defect::BadIdCheck => Rule::CheckDigit,
            Defect::ImpossibleBirthDate => Rule::BirthDate,
            Defect::EnumOutside => Rule::Enum,
            Defect::ValidityTooLong => Rule::ValidityRange,
            Defect::EndBeforeStart => Rule::ValidityOrder,
            Defect::RequiredBlank => Rule::Required,
            Defect::BadCalendarDate => Rule::Date,
            Defect::PatternMismatch => Rule::Pattern,
            Defect::UnknownStatus => Rule::Status,
            Defect::UnknownIssuer => Rule::Issuer,
            Defect::OpenEndedNotAllowed => Rule::OpenEnded,
            Defect::OverLong => Rule::MaxLength,
            Defect::FutureIssueDate => Rule::FutureDate,
            Defect::LossyNumber => Rule::LossyNumber,
            Defect::FullWidthCodes | Defect::Id15 => return Expected::Valid,
            Defect::ExactDuplicate => return Expected::Duplicate,
        };
        Expected::Rejected(rule)
    }
}

/// The licence-number column and what the validator holds it to.
#[derive(Debug, Clone)]
struct LicenceNoTarget {
    col: usize,
    pattern: Regex,
    max_len: Option<usize>,
    normalisers: Vec<Normaliser>,
}

/// The columns of one export that each defect can aim at.
#[derive(Debug, Clone)]
pub struct Targets {
    uscc: Option<usize>,
    citizen_id: Option<usize>,
    id_upgrade: bool,
    /// Enum columns with values outside their list.
    enums: Vec<(usize, Vec<String>)>,
    issue_date: Option<usize>,
    valid_from: Option<usize>,
    valid_to: Option<usize>,
    /// Date columns an impossible date may go in (not 有效期自, whose loss would also change
    /// the validity checks).
    dates: Vec<usize>,
    /// Required columns, and whether each is trimmed (so spaces count as blank).
    required: Vec<(usize, bool)>,
    licence_no: Option<LicenceNoTarget>,
    status: Option<usize>,
    unknown_status: Vec<String>,
    issuer: Option<usize>,
    unknown_issuers: Vec<String>,
    /// Text columns with a maximum length.
    long_text: Vec<(usize, usize)>,
    /// Code columns that fold full-width characters.
    full_width: Vec<usize>,
    /// Date columns that fold full-width characters.
    full_width_dates: Vec<usize>,
    max_years: Option<u32>,
    open_ended_allowed: bool,
    workbook: bool,
}

const UNKNOWN_STATUS: [&str; 7] = ["暂停", "待审核", "过期", "停业", "失效", "迁出", "吊销未注销"];

const UNKNOWN_ISSUERS: [&str; 6] = [
    "四平市铁西区市场监督管理局",
    "吉林市船营区市场监督管理局",
    "长春市绿园区市场监督管理局",
    "延吉市市场监督管理局",
    "通化市东昌区食品药品监督管理局",
    "长春市市场监管局",
];

/// Values that look like they belong to an enum but do not.
fn enum_impostors(key: &str) -> &'static [&'static str] {
    match key {
        "business_type" => &["食品生产者", "食品摊贩", "网络餐饮服务", "餐饮服务"],
        "entity_type" => &["外资企业", "个体工商户", "国有企业", "有限公司"],
        "gender" => &["未知", "男性", "M"],
        "operation_category" => &["焊工", "电工", "塔吊司机", "架子工"],
        _ => &["其他", "未填写", "不详"],
    }
}

impl Targets {
    /// Finds the targets in `layout` for `plan`.
    pub fn of(layout: &Layout, plan: &Plan, workbook: bool) -> Targets {
        let ty = &plan.licence_type;
        let hct = ty.holder_code_type.as_str();
        let mut t = Targets {
            uscc: layout.columns.iter().position(|c| c.is_uscc(hct)),
            citizen_id: layout.columns.iter().position(|c| c.is_citizen_id(hct)),
            id_upgrade: false,
            enums: Vec::new(),
            issue_date: layout.issue_date(),
            valid_from: layout.field(keys::VALID_FROM),
            valid_to: layout.valid_to(),
            dates: Vec::new(),
            required: Vec::new(),
            licence_no: None,
            status: layout.status(),
            unknown_status: UNKNOWN_STATUS
                .iter()
                .filter(|w| plan.status.lookup(w).is_none())
                .map(|w| w.to_string())
                .collect(),
            issuer: layout.issuer(),
            unknown_issuers: match &plan.issuer {
                IssuerPlan::FromColumn { .. } => UNKNOWN_ISSUERS
                    .iter()
                    .filter(|n| plan.issuer.resolve(n).is_none())
                    .map(|n| n.to_string())
                    .collect(),
                IssuerPlan::Fixed(_) => Vec::new(),
            },
            long_text: Vec::new(),
            full_width: Vec::new(),
            full_width_dates: Vec::new(),
            max_years: ty.validity.max_years,
            open_ended_allowed: ty.validity.open_ended,
            workbook,
        };
        t.id_upgrade = t
            .citizen_id
            .and_then(|i| layout.columns.get(i))
            .is_some_and(|c| c.normalises(Normaliser::CitizenIdUpgrade));
        for (i, col) in layout.columns.iter().enumerate() {
            match &col.role {
                Role::Issuer => t.required.push((i, true)),
                Role::Field { key, kind, required, max_len, normalisers } => {
                    let trims = normalisers.contains(&Normaliser::Trim);
                    if *required && key != keys::VALID_FROM {
                        t.required.push((i, trims));
                    }
                    match kind {
                        FieldKind::Enum(values) => {
                            let bad: Vec<String> = enum_impostors(key)
                                .iter()
                                .filter(|v| !values.iter().any(|x| x == *v))
                                .filter(|v| max_len.is_none_or(|m| v.chars().count() <= m))
                                .map(|v| v.to_string())
                                .collect();
                            if !bad.is_empty() {
                                t.enums.push((i, bad));
                            }
                        }
                        FieldKind::Date => {
                            if key != keys::VALID_FROM {
                                t.dates.push(i);
                            }
                            if normalisers.contains(&Normaliser::HalfWidth) {
                                t.full_width_dates.push(i);
                            }
                        }
                        FieldKind::Text => {
                            if let Some(m) = max_len {
                                t.long_text.push((i, *m));
                            }
                        }
                        FieldKind::LicenceNo(re) if t.licence_no.is_none() => {
                            t.licence_no = Some(LicenceNoTarget {
                                col: i,
                                pattern: re.clone(),
                                max_len: *max_len,
                                normalisers: normalisers.clone(),
                            });
                        }
                        _ => {}
                    }
                    if kind.is_code()
                        && normalisers.contains(&Normaliser::HalfWidth)
                        && !matches!(kind, FieldKind::Enum(_))
                    {
                        t.full_width.push(i);
                    }
                }
                Role::Status | Role::ArchiveCopy => {}
            }
        }
        t
    }

    /// The defects this export can carry, in [`Defect::ALL`] order.
    pub fn applicable(&self) -> Vec<Defect> {
        Defect::ALL.into_iter().filter(|d| self.can(*d)).collect()
    }

    fn can(&self, d: Defect) -> bool {
        match d {
            Defect::BadUsccCheck => self.uscc.is_some(),
            Defect::BadIdCheck | Defect::ImpossibleBirthDate => self.citizen_id.is_some(),
            Defect::EnumOutside => !self.enums.is_empty(),
            Defect::ValidityTooLong => self.max_years.is_some() && self.valid_to.is_some(),
            Defect::EndBeforeStart => self.valid_to.is_some() && self.issue_date.is_some(),
            Defect::RequiredBlank => !self.required.is_empty(),
            Defect::BadCalendarDate => !self.dates.is_empty(),
            Defect::PatternMismatch => self.licence_no.is_some(),
            Defect::UnknownStatus => self.status.is_some() && !self.unknown_status.is_empty(),
            Defect::UnknownIssuer => self.issuer.is_some() && !self.unknown_issuers.is_empty(),
            Defect::OpenEndedNotAllowed => !self.open_ended_allowed && self.valid_to.is_some(),
            Defect::OverLong => !self.long_text.is_empty(),
            Defect::FutureIssueDate => self.issue_date.is_some(),
            Defect::LossyNumber => self.workbook && self.citizen_id.is_some(),
            Defect::FullWidthCodes => !self.full_width.is_empty(),
            Defect::Id15 => self.id_upgrade,
            Defect::ExactDuplicate => true,
        }
    }

    /// Changes the draft before it is rendered, for defects that move dates or people.
    pub fn prepare(&self, defect: Defect, d: &mut Draft, rng: &mut Rng) {
        match defect {
            Defect::FutureIssueDate => {
                // A typo such as 2071 for 2017: far enough ahead for any run date.
                let year = rng.range(2040, 2090) as i32;
                d.issue = dates::draw_between(rng, ymd(year, 1, 1), ymd(year, 12, 31));
                if let Some(years) = self.max_years {
                    if d.valid_from.is_some() {
                        d.valid_from = Some(d.issue);
                    }
                    d.valid_to = ValidTo::Date(add_days(add_years(d.issue, years), -1));
                }
            }
            Defect::Id15 => {
                // 15-digit numbers were issued to people born in the 1900s.
                let region = d.person_id.get(..6).unwrap_or("220104").to_string();
                let old_id = std::mem::take(&mut d.person_id);
                d.birth = dates::draw_between(rng, ymd(1940, 1, 1), ymd(1985, 12, 31));
                people::push_citizen_id(&mut d.person_id, rng, &region, d.birth, d.male);
                if d.holder_code == old_id {
                    d.holder_code.clone_from(&d.person_id);
                }
            }
            _ => {}
        }
    }

    /// Breaks the rendered row. Returns the outcome the row must get (that of `defect`, or of
    /// the fallback used when the row leaves the defect nothing to aim at).
    pub fn apply(
        &self,
        defect: Defect,
        row: &mut ExportRow,
        d: &Draft,
        profile: &Profile,
        rng: &mut Rng,
    ) -> Expected {
        match defect {
            Defect::BadUsccCheck => {
                let Some(col) = self.uscc else { return self.blank_required(row, rng) };
                let code = row.text(col).trim().to_string();
                let right = code.chars().last().unwrap_or('0');
                let body: String = code.chars().take(17).collect();
                row.set_text(col, &body);
                row.push_char(col, wrong_uscc_check(right, rng));
            }
            Defect::BadIdCheck => {
                let Some(col) = self.citizen_id else { return self.blank_required(row, rng) };
                let id = row.text(col).trim().to_ascii_uppercase();
                let right = id.chars().last().unwrap_or('0');
                let body: String = id.chars().take(17).collect();
                row.set_text(col, &body);
                row.push_char(col, wrong_id_check(right, rng));
            }
            Defect::ImpossibleBirthDate => {
                let Some(col) = self.citizen_id else { return self.blank_required(row, rng) };
                let region = row.text(col).get(..6).unwrap_or("220104").to_string();
                let mut id = String::new();
                people::push_id_impossible_birth(&mut id, rng, &region, d.male);
                row.set_text(col, &id);
            }
            Defect::EnumOutside => {
                let Some((col, bad)) = self.enums.get(rng.index(self.enums.len())) else {
                    return self.blank_required(row, rng);
                };
                let value = bad.get(rng.index(bad.len())).map_or("其他", String::as_str);
                row.set_text(*col, value);
            }
            Defect::ValidityTooLong => {
                let (Some(col), Some(years)) = (self.valid_to, self.max_years) else {
                    return self.blank_required(row, rng);
                };
                let limit = add_years(self.validity_start(d), years);
                let end = add_days(limit, rng.range(1, 400));
                self.write_date(row, col, end, profile, rng);
            }
            Defect::EndBeforeStart => {
                let Some(col) = self.valid_to else { return self.blank_required(row, rng) };
                let end = add_days(self.validity_start(d), -rng.range(0, 400));
                self.write_date(row, col, end, profile, rng);
            }
            Defect::RequiredBlank => return self.blank_required(row, rng),
            Defect::BadCalendarDate => {
                let Some(&col) = self.dates.get(rng.index(self.dates.len())) else {
                    return self.blank_required(row, rng);
                };
                const IMPOSSIBLE: [(u32, u32); 7] =
                    [(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (2, 29)];
                let (m, day) = IMPOSSIBLE[rng.index(IMPOSSIBLE.len())];
                let mut year = d.issue.year();
                if NaiveDate::from_ymd_opt(year, m, day).is_some() {
                    // 29 February of a leap year exists: use the year after.
                    year += 1;
                }
                let mut text = String::new();
                push_ymd(&mut text, year, m, day, DateForm::draw_text(rng), '〇');
                row.set_text(col, &text);
            }
            Defect::PatternMismatch => {
                let Some(t) = &self.licence_no else { return self.blank_required(row, rng) };
                match bad_licence_no(t, &d.licence_no, rng) {
                    Some(bad) => row.set_text(t.col, &bad),
                    None => return self.blank_required(row, rng),
                }
            }
            Defect::UnknownStatus => {
                let Some(col) = self.status else { return self.blank_required(row, rng) };
                let word = self.unknown_status.get(rng.index(self.unknown_status.len()));
                row.set_text(col, word.map_or("暂停", String::as_str));
            }
            Defect::UnknownIssuer => {
                let Some(col) = self.issuer else { return self.blank_required(row, rng) };
                let name = self.unknown_issuers.get(rng.index(self.unknown_issuers.len()));
                row.set_text(col, name.map_or("", String::as_str));
            }
            Defect::OpenEndedNotAllowed => {
                let Some(col) = self.valid_to else { return self.blank_required(row, rng) };
                row.set_text(col, rng.pick(&["长期", "永久", "长期有效", "9999-12-31"]));
            }
            Defect::OverLong => {
                let Some(&(col, max)) = self.long_text.get(rng.index(self.long_text.len())) else {
                    return self.blank_required(row, rng);
                };
                let mut text = row.text(col).trim().to_string();
                let want = max + rng.range(1, 12) as usize;
                let mut n = text.chars().count();
                if n > want {
                    text = text.chars().take(want).collect();
                    n = want;
                }
                const FILLER: [char; 10] =
                    ['经', '营', '部', '分', '店', '综', '合', '服', '务', '站'];
                while n < want {
                    text.push(FILLER[n % FILLER.len()]);
                    n += 1;
                }
                row.set_text(col, &text);
            }
            Defect::FutureIssueDate => {}
            Defect::LossyNumber => {
                let Some(col) = self.citizen_id else { return self.blank_required(row, rng) };
                // Excel keeps 15 significant digits of a number.
                let digits: String = row.text(col).chars().take(15).collect();
                let shown = format!("{digits}000").parse::<f64>().unwrap_or(1.0e17);
                row.set_text(col, &format!("{shown}"));
                row.set_kind(col, CellKind::Number);
            }
            Defect::FullWidthCodes => {
                let mut done = false;
                for &col in &self.full_width {
                    if (!done || rng.chance(0.5)) && row.kind(col) == CellKind::Text {
                        done |= row.to_full_width(col);
                    }
                }
                for &col in &self.full_width_dates {
                    if rng.chance(0.5) && row.kind(col) == CellKind::Text {
                        row.to_full_width(col);
                    }
                }
            }
            Defect::Id15 => {
                if let Some(col) = self.citizen_id
                    && let Some(id15) = id15_of(&row.text(col).to_ascii_uppercase())
                {
                    row.set_text(col, &id15);
                }
            }
            Defect::ExactDuplicate => return Expected::Valid,
        }
        defect.expected()
    }

    fn validity_start(&self, d: &Draft) -> NaiveDate {
        if self.valid_from.is_some() { d.validity_start() } else { d.issue }
    }

    fn write_date(
        &self,
        row: &mut ExportRow,
        col: usize,
        date: NaiveDate,
        profile: &Profile,
        rng: &mut Rng,
    ) {
        let mut text = String::new();
        let kind = profile.push_date(&mut text, date, rng);
        row.set_text(col, &text);
        row.set_kind(col, kind);
    }

    /// Blanks a required column: the fallback of every defect, as every type has one.
    fn blank_required(&self, row: &mut ExportRow, rng: &mut Rng) -> Expected {
        let Some(&(col, trims)) = self.required.get(rng.index(self.required.len())) else {
            return Expected::Valid;
        };
        let blank = if trims { rng.pick(&["", "", "", "\u{3000}", " "]) } else { "" };
        row.set_text(col, blank);
        Expected::Rejected(Rule::Required)
    }
}

/// A licence number the pattern refuses but that still fits the field's length after the
/// column's normalisers: a dropped or added character, a letter O for a zero, a wrong prefix.
fn bad_licence_no(t: &LicenceNoTarget, good: &str, rng: &mut Rng) -> Option<String> {
    let chars: Vec<char> = good.chars().collect();
    let mut candidates: Vec<String> = Vec::with_capacity(5);
    candidates.push(chars.iter().take(chars.len().saturating_sub(1)).collect());
    candidates.push(chars.iter().skip(1).collect());
    if let Some(i) = chars.iter().skip(2).position(|c| *c == '0') {
        let mut v = chars.clone();
        if let Some(c) = v.get_mut(i + 2) {
            *c = 'O';
        }
        candidates.push(v.into_iter().collect());
    }
    let mut dashed: Vec<char> = chars.clone();
    dashed.insert(chars.len().min(4), '-');
    candidates.push(dashed.into_iter().collect());
    candidates.push(format!("QS{}", chars.iter().skip(2).collect::<String>()));
    let start = rng.index(candidates.len());
    (0..candidates.len())
        .filter_map(|k| candidates.get((start + k) % candidates.len()))
        .find(|c| {
            let seen = normalise::apply(c, &t.normalisers);
            !seen.is_empty()
                && !t.pattern.is_match(&seen)
                && t.max_len.is_none_or(|m| seen.chars().count() <= m)
        })
        .cloned()
}
