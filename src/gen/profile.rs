//! What a licence of each supported type looks like: [`Profile`] drafts one licence at a time
//! (a [`Draft`]: holder, people, places, dates, number, issuer, status word) consistent within
//! itself — the food permit number carries the business-type digit and the issuer's region, a
//! business licence number is the holder's USCC, a certificate holder's sex follows the ID —
//! and renders it into the export's columns with the mixed date forms and small noise (padding,
//! lowercase `x`, full-width brackets) that legacy exports have and the validator accepts.
//!
//! Supported catalog types: `food-business-permit`, `business-licence` and
//! `special-operations-certificate`. Lifecycle rows (a change or revocation of an earlier
//! licence) are drafted from an earlier draft with [`Profile::change`] and [`Profile::revoke`].

use chrono::NaiveDate;

use super::dates::{
    self, DateForm, add_days, add_years, draw_between, push_padded, push_uint, ymd,
};
use super::layout::{Layout, Role};
use super::orgs::{self, Registrant, UsccMaker};
use super::people;
use super::places::{self, DISTRICTS};
use super::rng::Rng;
use super::{CellKind, ExportRow, GenError};
use crate::catalog::FieldKind;
use crate::licence::LicenceStatus;
use crate::normalise::Normaliser;
use crate::pipeline::{IssuerPlan, Plan};

/// The catalog types the generator can draft.
pub const SUPPORTED_TYPES: [&str; 3] =
    ["food-business-permit", "business-licence", "special-operations-certificate"];

/// Earliest issue date drawn.
pub fn first_issue() -> NaiveDate {
    ymd(2012, 1, 1)
}

/// Latest issue (and validity start) date drawn: generated licences are never issued in the
/// future of any run date from 2026 on.
pub fn last_issue() -> NaiveDate {
    ymd(2025, 12, 31)
}

/// The end of a validity period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ValidTo {
    Date(NaiveDate),
    /// 长期, 永久, 9999-12-31: only for types that allow it.
    OpenEnded(&'static str),
    /// Left empty: open-ended for types that allow it.
    #[default]
    Blank,
}

/// One licence before it is written: everything the columns show.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub licence_no: String,
    pub holder_name: String,
    pub holder_code: String,
    /// Legal representative (法定代表人) of an organisation, or the holder of a personal
    /// certificate.
    pub person_name: String,
    pub person_id: String,
    pub male: bool,
    pub birth: NaiveDate,
    pub domicile: String,
    pub premises: String,
    /// The value of the type's main enum field (主体业态, 类型, 操作类别).
    pub category: String,
    pub scope: String,
    pub signer: String,
    pub supervisor: String,
    pub employer: String,
    pub capital: String,
    pub established: NaiveDate,
    pub issue: NaiveDate,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: ValidTo,
    pub issuer_printed: String,
    pub status_word: String,
    pub district: usize,
}

impl Draft {
    fn clear(&mut self) {
        for s in [
            &mut self.licence_no,
            &mut self.holder_name,
            &mut self.holder_code,
            &mut self.person_name,
            &mut self.person_id,
            &mut self.domicile,
            &mut self.premises,
            &mut self.category,
            &mut self.scope,
            &mut self.signer,
            &mut self.supervisor,
            &mut self.employer,
            &mut self.capital,
            &mut self.issuer_printed,
            &mut self.status_word,
        ] {
            s.clear();
        }
        self.valid_from = None;
        self.valid_to = ValidTo::Blank;
    }

    /// The date validity is counted from: 有效期自 when the type has one, else the issue date.
    pub fn validity_start(&self) -> NaiveDate {
        self.valid_from.unwrap_or(self.issue)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeKind {
    FoodPermit,
    BusinessLicence,
    SpecialOperations,
}

/// An issuer the export may print.
#[derive(Debug, Clone)]
struct Issuer {
    name: String,
    aliases: Vec<String>,
    region: String,
    /// People who sign for this issuer (签发人): a few per office.
    signers: Vec<String>,
}

/// Drafts licences of one catalog type for one pipeline.
pub struct Profile {
    kind: TypeKind,
    /// Values of the main enum field, with weights.
    categories: Vec<String>,
    category_weights: Vec<u32>,
    valid_words: Vec<String>,
    changed_words: Vec<String>,
    revoked_words: Vec<String>,
    /// An empty status cell means valid.
    blank_status_is_valid: bool,
    issuers: Vec<Issuer>,
    open_ended_allowed: bool,
    max_years: Option<u32>,
    uscc: UsccMaker,
    /// Next sequence number per (category, region or year): printed numbers never repeat.
    sequences: std::collections::HashMap<(usize, u32), u64>,
    workbook: bool,
}

impl Profile {
    /// The profile for `plan`'s catalog type. Fails with [`GenError::UnsupportedType`] for a
    /// type not in [`SUPPORTED_TYPES`].
    pub fn new(plan: &Plan, rng: &mut Rng, workbook: bool) -> Result<Profile, GenError> {
        let ty = &plan.licence_type;
        let (kind, category_key) = match ty.id.as_str() {
            "food-business-permit" => (TypeKind::FoodPermit, "business_type"),
            "business-licence" => (TypeKind::BusinessLicence, "entity_type"),
            "special-operations-certificate" => (TypeKind::SpecialOperations, "operation_category"),
            other => return Err(GenError::UnsupportedType { type_id: other.to_string() }),
        };
        let categories: Vec<String> = match ty.field(category_key).map(|f| &f.kind) {
            Some(FieldKind::Enum(values)) if !values.is_empty() => values.clone(),
            _ => vec![String::new()],
        };
        let category_weights = categories.iter().map(|c| category_weight(c)).collect();
        let words = |status: LicenceStatus| -> Vec<String> {
            plan.status.words.iter().filter(|(_, s)| *s == status).map(|(w, _)| w.clone()).collect()
        };
        let issuers: Vec<Issuer> = match &plan.issuer {
            IssuerPlan::Fixed(k) => vec![Issuer {
                name: k.name.clone(),
                aliases: Vec::new(),
                region: k.region.clone(),
                signers: Vec::new(),
            }],
            IssuerPlan::FromColumn { known, .. } => known
                .iter()
                .map(|k| Issuer {
                    name: k.name.clone(),
                    aliases: k.aliases.clone(),
                    region: k.region.clone(),
                    signers: Vec::new(),
                })
                .collect(),
        };
        let mut issuers = issuers;
        for issuer in &mut issuers {
            for _ in 0..4 {
                let mut name = String::new();
                let male = rng.chance(0.6);
                people::push_name(&mut name, rng, male);
                issuer.signers.push(name);
            }
        }
        Ok(Profile {
            kind,
            categories,
            category_weights,
            valid_words: words(LicenceStatus::Valid),
            changed_words: words(LicenceStatus::Changed),
            revoked_words: words(LicenceStatus::Revoked),
            blank_status_is_valid: plan.status.default == Some(LicenceStatus::Valid),
            issuers,
            open_ended_allowed: ty.validity.open_ended,
            max_years: ty.validity.max_years,
            uscc: UsccMaker::new(rng),
            sequences: std::collections::HashMap::new(),
            workbook,
        })
    }

    /// Whether lifecycle rows can be made: the vocabulary has change or revocation words.
    pub fn has_lifecycle(&self) -> bool {
        !self.changed_words.is_empty() || !self.revoked_words.is_empty()
    }

    fn next_sequence(&mut self, category: usize, bucket: u32) -> u64 {
        let n = self.sequences.entry((category, bucket)).or_insert(0);
        *n += 1;
        *n
    }

    fn pick_issuer(&self, rng: &mut Rng) -> usize {
        rng.index(self.issuers.len())
    }

    /// The name printed for issuer `i` on a licence of `issue`: bodies renamed in the 2018
    /// reform appear under their old name on older licences.
    fn print_issuer(&self, out: &mut String, i: usize, issue: NaiveDate, rng: &mut Rng) {
        let Some(issuer) = self.issuers.get(i) else { return };
        if issue < ymd(2018, 4, 1) && !issuer.aliases.is_empty() && rng.chance(0.85) {
            let alias = issuer.aliases.get(rng.index(issuer.aliases.len()));
            out.push_str(alias.map_or(issuer.name.as_str(), String::as_str));
        } else {
            out.push_str(&issuer.name);
        }
    }

    fn push_valid_status(&self, out: &mut String, rng: &mut Rng) {
        if self.blank_status_is_valid && rng.below(40) == 0 {
            return;
        }
        let i = if rng.chance(0.8) { 0 } else { rng.index(self.valid_words.len()) };
        if let Some(w) = self.valid_words.get(i) {
            out.push_str(w);
        }
    }

    /// Drafts a new licence into `d`.
    pub fn draft(&mut self, d: &mut Draft, rng: &mut Rng) {
        d.clear();
        let issuer = self.pick_issuer(rng);
        let region = self.issuers.get(issuer).map(|i| i.region.clone()).unwrap_or_default();
        d.district =
            places::district_of_region(&region).unwrap_or_else(|| places::draw_district(rng));
        let category = rng.weighted(&self.category_weights);
        if let Some(c) = self.categories.get(category) {
            d.category.push_str(c);
        }
        match self.kind {
            TypeKind::FoodPermit => self.draft_food(d, rng, &region, category),
            TypeKind::BusinessLicence => self.draft_business(d, rng, &region),
            TypeKind::SpecialOperations => self.draft_special(d, rng, category),
        }
        self.print_issuer(&mut d.issuer_printed, issuer, d.issue, rng);
        if let Some(i) = self.issuers.get(issuer) {
            if let Some(signer) = i.signers.get(rng.index(i.signers.len())) {
                d.signer.push_str(signer);
            }
            // 日常监督管理机构: the issuer's office for the holder's sub-district.
            let office = DISTRICTS.get(d.district).map_or("城区", |x| x.offices[rng.index(4)]);
            if d.issuer_printed.contains("食品药品监督管理局") {
                d.supervisor.push_str(&d.issuer_printed);
                d.supervisor.push_str(office);
                d.supervisor.push_str("食品药品监督管理所");
            } else {
                d.supervisor.push_str(&i.name);
                d.supervisor.push_str(office);
                d.supervisor.push_str("市场监督管理所");
            }
        }
        self.push_valid_status(&mut d.status_word, rng);
    }

    fn push_person(&self, d: &mut Draft, rng: &mut Rng, at: NaiveDate, male: bool) {
        d.male = male;
        d.birth = draw_between(rng, add_years_back(at, 62), add_years_back(at, 20));
        people::push_name(&mut d.person_name, rng, male);
        let region = people::draw_birth_region(rng);
        people::push_citizen_id(&mut d.person_id, rng, region, d.birth, male);
    }

    fn draft_food(&mut self, d: &mut Draft, rng: &mut Rng, region: &str, category: usize) {
        // 食品经营许可证 replaced the older permits from October 2015.
        d.issue = draw_between(rng, ymd(2015, 10, 1), last_issue());
        let years = if rng.chance(0.9) { 5 } else { 3 };
        let years = self.max_years.map_or(years, |m| years.min(m));
        d.valid_to = ValidTo::Date(add_days(add_years(d.issue, years), -1));
        // JY + 主体业态 digit + region (6) + sequence (6) + check digit.
        let digit = (category as u32 % 9) + 1;
        let region_code: u32 = region.parse().unwrap_or(220104);
        let seq = self.next_sequence(category, region_code) % 1_000_000;
        d.licence_no.push_str("JY");
        let start = d.licence_no.len();
        push_uint(&mut d.licence_no, u64::from(digit));
        push_padded(&mut d.licence_no, u64::from(region_code), 6);
        push_padded(&mut d.licence_no, seq, 6);
        let check = mod_11_10(d.licence_no.get(start..).unwrap_or(""));
        d.licence_no.push(char::from(b'0' + check));

        let registrant = match category {
            0 if rng.chance(0.6) => {
                orgs::push_shop(&mut d.holder_name, rng, d.district, &SHOPS);
                Registrant::IndividualBusiness
            }
            0 => {
                let industry = rng.pick(&["商贸", "食品", "超市", "农产品"]);
                orgs::push_company(&mut d.holder_name, rng, Some(industry), "有限公司");
                Registrant::Enterprise
            }
            1 if rng.chance(0.7) => {
                orgs::push_shop(&mut d.holder_name, rng, d.district, &RESTAURANTS);
                Registrant::IndividualBusiness
            }
            1 => {
                orgs::push_company(&mut d.holder_name, rng, Some("餐饮管理"), "有限公司");
                Registrant::Enterprise
            }
            _ => orgs::push_canteen(&mut d.holder_name, rng),
        };
        let modern = rng.chance(0.6);
        self.uscc.push(&mut d.holder_code, registrant, region, modern);
        let male = rng.chance(0.55);
        self.push_person(d, rng, d.issue, male);
        places::push_address(&mut d.domicile, rng, d.district);
        if rng.chance(0.6) {
            d.premises.push_str(&d.domicile);
        } else {
            places::push_address(&mut d.premises, rng, d.district);
        }
        if rng.chance(0.15) {
            d.domicile.clear();
        }
        let items: &[&str] = match category {
            0 => &FOOD_SALE,
            1 => &CATERING,
            _ => &CANTEEN,
        };
        push_items(&mut d.scope, rng, items, 1, 4, "，");
    }

    fn draft_business(&mut self, d: &mut Draft, rng: &mut Rng, region: &str) {
        d.established = draw_between(rng, ymd(1998, 1, 1), last_issue());
        let earliest = d.established.max(first_issue());
        d.issue = draw_between(rng, earliest, last_issue());
        d.valid_from = Some(d.established);
        d.valid_to = if self.open_ended_allowed {
            match rng.below(20) {
                0..=11 => ValidTo::OpenEnded("长期"),
                12 => ValidTo::OpenEnded("9999-12-31"),
                13 | 14 => ValidTo::Blank,
                _ => ValidTo::Date(add_days(add_years(d.established, 20), -1)),
            }
        } else {
            let years = self.max_years.unwrap_or(20);
            ValidTo::Date(add_days(add_years(d.established, years), -1))
        };
        let c = d.category.clone();
        let plain = c.replace(['(', ')', '（', '）'], "");
        let registrant = if plain.contains("合作社") {
            let county = DISTRICTS.get(rng.range(5, 10) as usize).map_or("榆树市", |x| x.name);
            d.holder_name.push_str(county);
            d.holder_name.push_str(rng.pick(&orgs::TRADE_NAMES));
            d.holder_name.push_str(rng.pick(&["玉米", "水稻", "蔬菜", "食用菌", "大豆", "养殖"]));
            d.holder_name.push_str(if plain.contains("养殖") {
                "专业合作社"
            } else {
                "种植专业合作社"
            });
            Registrant::Cooperative
        } else if plain.contains("股份") {
            orgs::push_company(&mut d.holder_name, rng, None, "股份有限公司");
            Registrant::Enterprise
        } else if plain.contains("个人独资") {
            let form = rng.pick(&["经销处", "商行", "中心"]);
            orgs::push_company(&mut d.holder_name, rng, None, form);
            Registrant::Enterprise
        } else if plain.contains("合伙") {
            orgs::push_company(&mut d.holder_name, rng, None, "中心（有限合伙）");
            Registrant::Enterprise
        } else {
            orgs::push_company(&mut d.holder_name, rng, None, "有限公司");
            Registrant::Enterprise
        };
        let modern = d.established >= ymd(2015, 10, 1);
        self.uscc.push(&mut d.holder_code, registrant, region, modern);
        d.licence_no.push_str(&d.holder_code);
        let male = rng.chance(0.7);
        self.push_person(d, rng, d.established.max(ymd(1990, 1, 1)), male);
        places::push_address(&mut d.domicile, rng, d.district);
        if !(plain.contains("个人独资") || plain.contains("合伙")) || rng.chance(0.5) {
            let amounts = [10u64, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000];
            let mut amount = amounts[rng.index(amounts.len())];
            if plain.contains("股份") {
                amount *= 10;
            }
            push_uint(&mut d.capital, amount);
            d.capital.push_str(if rng.chance(0.8) { "万元人民币" } else { "万元" });
        }
        push_items(&mut d.scope, rng, &BUSINESS_SCOPE, 2, 6, "；");
        if rng.chance(0.4) {
            d.scope.push_str("（依法须经批准的项目，经相关部门批准后方可开展经营活动）");
        }
    }

    fn draft_special(&mut self, d: &mut Draft, rng: &mut Rng, category: usize) {
        d.issue = draw_between(rng, first_issue(), last_issue());
        let years = self.max_years.unwrap_or(2).max(1);
        // Renewed every `years` years since first issue: the current period is on the row.
        let mut start = d.issue;
        let renewals = rng.below(6);
        for _ in 0..renewals {
            let next = add_years(start, years);
            if next > last_issue() {
                break;
            }
            start = next;
        }
        d.valid_from = Some(start);
        d.valid_to = ValidTo::Date(add_days(add_years(start, years), -1));
        let male = rng.chance(0.9);
        self.push_person(d, rng, d.issue, male);
        d.holder_name.push_str(&d.person_name);
        d.holder_code.push_str(&d.person_id);
        if rng.chance(0.85) {
            if rng.chance(0.2) {
                d.employer.push_str(rng.pick(&BIG_BUILDERS));
            } else {
                let form = rng.pick(&["建筑工程有限公司", "建设集团有限公司", "建筑安装有限公司"]);
                d.employer.push_str(rng.pick(&["长春市", "吉林省", "长春", "吉林"]));
                d.employer.push_str(rng.pick(&orgs::TRADE_NAMES));
                d.employer.push_str(form);
            }
        }
        // 吉 + class letter + category (2) + year of first issue (4) + sequence (6).
        use chrono::Datelike;
        let year = d.issue.year().unsigned_abs();
        let seq = self.next_sequence(category, year) % 1_000_000;
        d.licence_no.push('吉');
        d.licence_no.push(if rng.chance(0.85) { 'A' } else { 'B' });
        push_padded(&mut d.licence_no, category as u64 + 1, 2);
        push_padded(&mut d.licence_no, u64::from(year), 4);
        push_padded(&mut d.licence_no, seq, 6);
    }

    /// Turns `d` (an earlier valid licence) into a later change of it: a later issue date or a
    /// renewed period, and changed premises, representative or scope. False when the draft
    /// leaves no room for a later date before [`last_issue`] (make it a revocation instead).
    pub fn change(&mut self, d: &mut Draft, rng: &mut Rng) -> bool {
        if self.changed_words.is_empty() {
            return false;
        }
        match self.kind {
            TypeKind::FoodPermit | TypeKind::BusinessLicence => {
                let mut latest = last_issue();
                if let ValidTo::Date(end) = d.valid_to {
                    latest = latest.min(add_days(end, -1));
                }
                let earliest = add_days(d.issue, 30);
                if earliest > latest {
                    return false;
                }
                d.issue = draw_between(rng, earliest, latest);
                match rng.below(3) {
                    0 => {
                        d.person_name.clear();
                        d.person_id.clear();
                        let male = rng.chance(0.6);
                        self.push_person(d, rng, d.issue, male);
                    }
                    1 => {
                        d.scope.clear();
                        let items: &[&str] = match self.kind {
                            TypeKind::BusinessLicence => &BUSINESS_SCOPE,
                            _ => &FOOD_SALE,
                        };
                        let sep =
                            if self.kind == TypeKind::BusinessLicence { "；" } else { "，" };
                        push_items(&mut d.scope, rng, items, 1, 5, sep);
                    }
                    _ => {
                        d.premises.clear();
                        places::push_address(&mut d.premises, rng, d.district);
                        if self.kind == TypeKind::BusinessLicence {
                            d.domicile.clone_from(&d.premises);
                        }
                    }
                }
            }
            TypeKind::SpecialOperations => {
                // 延续: the next period starts the day after the current one ends.
                let ValidTo::Date(end) = d.valid_to else { return false };
                let next = add_days(end, 1);
                if next > last_issue() {
                    return false;
                }
                let years = self.max_years.unwrap_or(2).max(1);
                d.valid_from = Some(next);
                d.valid_to = ValidTo::Date(add_days(add_years(next, years), -1));
            }
        }
        d.status_word.clear();
        let word = self.changed_words.get(rng.index(self.changed_words.len()));
        d.status_word.push_str(word.map_or("", String::as_str));
        true
    }

    /// Turns `d` into its revocation (注销, 吊销, 撤销). False when the vocabulary has no word.
    pub fn revoke(&self, d: &mut Draft, rng: &mut Rng) -> bool {
        if self.revoked_words.is_empty() {
            return false;
        }
        d.status_word.clear();
        let word = self.revoked_words.get(rng.index(self.revoked_words.len()));
        d.status_word.push_str(word.map_or("", String::as_str));
        true
    }

    /// Writes `d` into `row`, one cell per layout column.
    pub fn render(&self, d: &Draft, layout: &Layout, row: &mut ExportRow, rng: &mut Rng) {
        row.reset(layout.columns.len());
        for (i, col) in layout.columns.iter().enumerate() {
            let (Some(cell), Some(kind)) = (row.cells.get_mut(i), row.kinds.get_mut(i)) else {
                continue;
            };
            match &col.role {
                Role::Status => cell.push_str(&d.status_word),
                Role::Issuer => cell.push_str(&d.issuer_printed),
                Role::ArchiveCopy => {}
                Role::Field { key, kind: field_kind, normalisers, .. } => {
                    let pad = normalisers.contains(&Normaliser::Trim);
                    match key.as_str() {
                        "licence_no" => cell.push_str(&d.licence_no),
                        "holder_name" => push_padded_text(cell, &d.holder_name, pad, rng),
                        "holder_code" => push_code(cell, &d.holder_code, col, rng),
                        "legal_rep" => push_padded_text(cell, &d.person_name, pad, rng),
                        "legal_rep_id" => push_code(cell, &d.person_id, col, rng),
                        "domicile" => cell.push_str(&d.domicile),
                        "premises" => cell.push_str(&d.premises),
                        "business_type" | "entity_type" | "operation_category" => {
                            push_enum(cell, &d.category, col, rng)
                        }
                        "gender" => cell.push_str(if d.male { "男" } else { "女" }),
                        "business_scope" => cell.push_str(&d.scope),
                        "signer" => cell.push_str(&d.signer),
                        "supervisor" => cell.push_str(&d.supervisor),
                        "employer" => cell.push_str(&d.employer),
                        "registered_capital" => cell.push_str(&d.capital),
                        "established" => *kind = self.push_date(cell, d.established, rng),
                        "issue_date" => *kind = self.push_date(cell, d.issue, rng),
                        "valid_from" => {
                            *kind = self.push_date(cell, d.validity_start(), rng);
                        }
                        "birth_date" => *kind = self.push_date(cell, d.birth, rng),
                        "valid_to" => match d.valid_to {
                            ValidTo::Date(end) => *kind = self.push_date(cell, end, rng),
                            ValidTo::OpenEnded(word) => cell.push_str(word),
                            ValidTo::Blank => {}
                        },
                        "issuer_name" => cell.push_str(&d.issuer_printed),
                        _ => push_by_kind(cell, d, field_kind),
                    }
                }
            }
        }
    }

    /// Writes `date` in a drawn form; returns the cell kind it needs.
    pub fn push_date(&self, cell: &mut String, date: NaiveDate, rng: &mut Rng) -> CellKind {
        let form = DateForm::draw(rng, self.workbook);
        dates::push_date(cell, date, form, rng);
        match form {
            DateForm::SerialCell => CellKind::Date,
            DateForm::SerialNumber => CellKind::Number,
            _ => CellKind::Text,
        }
    }
}

/// `at` minus `years` years.
fn add_years_back(at: NaiveDate, years: u32) -> NaiveDate {
    at.checked_sub_months(chrono::Months::new(years * 12)).unwrap_or(at)
}

/// ISO 7064 MOD 11,10 check digit of a digit string. The algorithm of the food permit's last
/// digit is not in our sources; this is the one GS15 registration numbers use, and the catalog
/// checks the pattern only.
fn mod_11_10(digits: &str) -> u8 {
    let mut p = 10u32;
    for c in digits.chars() {
        let s = (p + c.to_digit(10).unwrap_or(0)) % 10;
        let s = if s == 0 { 10 } else { s };
        p = (s * 2) % 11;
    }
    ((11 - p) % 10) as u8
}

/// Relative frequency of an enum value in real exports (unknown values weigh 10).
fn category_weight(value: &str) -> u32 {
    match value {
        "食品销售经营者" | "餐饮服务经营者" => 45,
        "单位食堂" => 10,
        "有限责任公司" => 35,
        "有限责任公司(自然人独资)" | "有限责任公司(自然人投资或控股)" => {
            20
        }
        "个人独资企业" => 10,
        "股份有限公司" | "合伙企业" | "农民专业合作社" => 5,
        "建筑电工" | "建筑架子工" => 25,
        "建筑起重机械司机" | "建筑起重信号司索工" => 18,
        _ => 10,
    }
}

/// Appends `min..=max` distinct items of `items` joined by `sep`; sometimes with a line break
/// inside the cell, as typed with Alt+Enter.
fn push_items(out: &mut String, rng: &mut Rng, items: &[&str], min: u64, max: u64, sep: &str) {
    let n = (rng.range(min as i64, max as i64) as usize).min(items.len()).min(64);
    let step = 1 + rng.index(items.len().saturating_sub(1).max(1));
    let mut taken: u64 = 0;
    let mut i = rng.index(items.len());
    for k in 0..n {
        let Some(item) = items.get(i) else { break };
        if taken & (1 << (i % 64)) != 0 {
            break;
        }
        taken |= 1 << (i % 64);
        if k > 0 {
            out.push_str(sep);
            if rng.below(100) == 0 {
                out.push('\n');
            }
        }
        out.push_str(item);
        i = (i + step) % items.len();
    }
}

/// Appends display text, sometimes padded with the spaces legacy systems leave (trimmed by the
/// validator).
fn push_padded_text(cell: &mut String, text: &str, pad: bool, rng: &mut Rng) {
    if pad && rng.below(100) == 0 {
        cell.push_str(rng.pick(&["\u{3000}", "\u{a0}", " "]));
        cell.push_str(text);
        cell.push_str(rng.pick(&["\u{a0}", " ", ""]));
    } else {
        cell.push_str(text);
    }
}

/// Appends a code; a citizen ID ending in X is sometimes written with a lowercase x when the
/// column folds case.
fn push_code(cell: &mut String, code: &str, col: &super::layout::Column, rng: &mut Rng) {
    match code.strip_suffix('X') {
        Some(body) if col.normalises(Normaliser::Upper) && rng.chance(0.2) => {
            cell.push_str(body);
            cell.push('x');
        }
        _ => cell.push_str(code),
    }
}

/// Appends an enum value; with half-width folding, brackets are sometimes full-width as typed.
fn push_enum(cell: &mut String, value: &str, col: &super::layout::Column, rng: &mut Rng) {
    if value.contains('(') && col.normalises(Normaliser::HalfWidth) && rng.chance(0.5) {
        for c in value.chars() {
            cell.push(match c {
                '(' => '（',
                ')' => '）',
                c => c,
            });
        }
    } else {
        cell.push_str(value);
    }
}

/// A value for a field the profile does not know, from its kind.
fn push_by_kind(cell: &mut String, d: &Draft, kind: &FieldKind) {
    match kind {
        FieldKind::Text | FieldKind::LicenceNo(_) => {}
        FieldKind::Date => {
            use chrono::Datelike;
            dates::push_ymd(
                cell,
                d.issue.year(),
                d.issue.month(),
                d.issue.day(),
                DateForm::Iso,
                '〇',
            );
        }
        FieldKind::Uscc | FieldKind::HolderCode => cell.push_str(&d.holder_code),
        FieldKind::CitizenId => cell.push_str(&d.person_id),
        FieldKind::OrgCode => cell.push_str(d.holder_code.get(8..17).unwrap_or("")),
        FieldKind::RegionCode => {
            cell.push_str(DISTRICTS.get(d.district).map_or("220104", |x| x.region));
        }
        FieldKind::Enum(values) => {
            if let Some(v) = values.first() {
                cell.push_str(v);
            }
        }
    }
}

const SHOPS: [&str; 10] = [
    "超市",
    "便利店",
    "食品商店",
    "粮油店",
    "副食店",
    "商店",
    "食杂店",
    "水果店",
    "烟酒商行",
    "生鲜超市",
];

const RESTAURANTS: [&str; 14] = [
    "饺子馆",
    "烧烤店",
    "面馆",
    "火锅店",
    "饭店",
    "酒家",
    "餐厅",
    "快餐店",
    "包子铺",
    "麻辣烫店",
    "砂锅居",
    "家常菜馆",
    "冷面馆",
    "串店",
];

const FOOD_SALE: [&str; 10] = [
    "预包装食品（含冷藏冷冻食品）销售",
    "预包装食品（不含冷藏冷冻食品）销售",
    "散装食品（含冷藏冷冻食品）销售",
    "散装食品（不含冷藏冷冻食品）销售",
    "特殊食品销售（保健食品）",
    "特殊食品销售（婴幼儿配方乳粉）",
    "特殊食品销售（其他婴幼儿配方食品）",
    "食用农产品销售",
    "酒类销售（不含散装酒）",
    "散装熟食销售",
];

const CATERING: [&str; 8] = [
    "热食类食品制售",
    "冷食类食品制售",
    "生食类食品制售",
    "糕点类食品（含裱花蛋糕）制售",
    "糕点类食品（不含裱花蛋糕）制售",
    "自制饮品制售（不含自酿酒）",
    "其他类食品制售",
    "网络经营",
];

const CANTEEN: [&str; 4] = [
    "热食类食品制售",
    "冷食类食品制售",
    "单位食堂（职工食堂）餐饮服务",
    "单位食堂（学校食堂）餐饮服务",
];

const BUSINESS_SCOPE: [&str; 27] = [
    "软件开发",
    "信息技术咨询服务",
    "日用百货零售",
    "预包装食品销售",
    "道路货物运输（不含危险货物）",
    "建筑工程施工",
    "房地产开发经营",
    "企业管理咨询",
    "广告设计、代理",
    "货物进出口",
    "技术进出口",
    "五金产品零售",
    "汽车零配件销售",
    "家用电器销售",
    "餐饮服务",
    "农产品收购",
    "粮食种植",
    "蔬菜种植",
    "物业管理",
    "劳务派遣服务",
    "会议及展览服务",
    "电子产品销售",
    "建筑材料销售",
    "机械设备租赁",
    "仓储服务（不含危险化学品）",
    "医疗器械经营",
    "教育咨询服务（不含涉许可审批的教育培训活动）",
];

const BIG_BUILDERS: [&str; 4] = [
    "吉林建工集团有限公司",
    "长春建工集团有限公司",
    "中国建筑第八工程局有限公司",
    "中铁九局集团有限公司",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mod_11_10_matches_gs15() {
        // GS15 numbers from domain.md validate with the same digit.
        assert_eq!(mod_11_10("31023000171614"), 6);
        assert_eq!(mod_11_10("11010800000001"), 6);
    }

    #[test]
    fn items_are_distinct() {
        let mut rng = Rng::new(2);
        for _ in 0..500 {
            let mut s = String::new();
            push_items(&mut s, &mut rng, &FOOD_SALE, 1, 4, "，");
            let parts: Vec<&str> = s.split('，').map(str::trim).collect();
            let mut sorted = parts.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), parts.len(), "{s}");
            assert!(!s.is_empty());
        }
    }
}
