//! Synthetic exports (`elicence gen`): realistic legacy exports of a pipeline's licence type —
//! plausible people, companies and addresses in Changchun, valid check characters, printed
//! numbers matching the catalog pattern, mixed date forms, issuers under old and new names,
//! status words with changes and revocations of earlier licences — with defects at a chosen
//! rate, and beside the export the outcome `elicence validate` must give each row
//! (`<FILE>.expected.csv`: `line,outcome,rule`).
//!
//! Deterministic: the same pipeline, options and seed give the same bytes (a hand-rolled
//! SplitMix64, no clock). Streaming: rows go to a buffered writer as they are made, so memory
//! does not grow with `--rows`.
//!
//! Modules: [`profile`] drafts licences per catalog type, [`defect`] breaks them, [`layout`]
//! maps them to the pipeline's columns, [`csv_out`] and [`xlsx_out`] write them; [`people`],
//! [`orgs`], [`places`], [`dates`] and [`rng`] are the raw material.

pub mod csv_out;
pub mod dates;
pub mod defect;
pub mod layout;
pub mod orgs;
pub mod people;
pub mod places;
pub mod profile;
pub mod rng;
pub mod xlsx_out;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use defect::{Defect, Expected, Targets};
use layout::Layout;
use profile::{Draft, Profile};
use rng::Rng;

use crate::pipeline::Plan;

/// File format of a generated export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// UTF-8 CSV (no BOM), CRLF line ends.
    Csv,
    /// GB18030 CSV (what "GBK" exports really are), CRLF line ends.
    CsvGbk,
    /// An xlsx workbook with a title row above the headers and inline strings.
    Xlsx,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenOptions {
    /// Data rows (header and title rows not counted).
    pub rows: u64,
    pub format: OutputFormat,
    /// Fraction of rows, 0 to 1, that get one defect.
    pub defect_rate: f64,
    pub seed: u64,
}

/// Why an export could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error(
        "cannot generate licences of type {type_id:?}: gen supports {}",
        profile::SUPPORTED_TYPES.join(", ")
    )]
    UnsupportedType { type_id: String },
    #[error("{rows} rows do not fit in an xlsx sheet (at most {max} data rows)")]
    TooManyRowsForXlsx { rows: u64, max: u64 },
    #[error("the defect rate must be between 0 and 1, got {rate}")]
    DefectRate { rate: f64 },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the workbook {}: {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
}

/// The most data rows an xlsx sheet holds (1,048,576 rows less the title and header rows).
pub const XLSX_MAX_ROWS: u64 = 1_048_576 - xlsx_out::DATA_START_ROW + 1;

/// How one cell is stored (workbooks only; CSV writes the text of every cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CellKind {
    #[default]
    Text,
    /// A number cell (a serial date without format, or a code that lost its digits).
    Number,
    /// A number cell with a date format: an Excel serial date.
    Date,
}

/// One row of the export: a text per column and how it is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportRow {
    pub cells: Vec<String>,
    pub kinds: Vec<CellKind>,
}

impl ExportRow {
    /// Empties the row to `width` blank text cells, keeping the allocations.
    pub fn reset(&mut self, width: usize) {
        self.cells.resize_with(width, String::new);
        self.kinds.resize(width, CellKind::Text);
        for c in &mut self.cells {
            c.clear();
        }
        for k in &mut self.kinds {
            *k = CellKind::Text;
        }
    }

    pub fn text(&self, col: usize) -> &str {
        self.cells.get(col).map_or("", String::as_str)
    }

    pub fn kind(&self, col: usize) -> CellKind {
        self.kinds.get(col).copied().unwrap_or_default()
    }

    /// Replaces a cell with text.
    pub fn set_text(&mut self, col: usize, text: &str) {
        if let Some(c) = self.cells.get_mut(col) {
            c.clear();
            c.push_str(text);
        }
        self.set_kind(col, CellKind::Text);
    }

    pub fn set_kind(&mut self, col: usize, kind: CellKind) {
        if let Some(k) = self.kinds.get_mut(col) {
            *k = kind;
        }
    }

    pub fn push_char(&mut self, col: usize, c: char) {
        if let Some(cell) = self.cells.get_mut(col) {
            cell.push(c);
        }
    }

    /// Rewrites ASCII digits and letters of a cell in full-width form (`２０１７`, `Ｘ`).
    /// Returns whether anything changed.
    pub fn to_full_width(&mut self, col: usize) -> bool {
        let Some(cell) = self.cells.get_mut(col) else { return false };
        if !cell.bytes().any(|b| b.is_ascii_alphanumeric()) {
            return false;
        }
        let wide: String = cell
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c)
                } else {
                    c
                }
            })
            .collect();
        *cell = wide;
        true
    }

    /// Copies `other` into this row, keeping allocations.
    pub fn copy_from(&mut self, other: &ExportRow) {
        self.cells.clone_from(&other.cells);
        self.kinds.clone_from(&other.kinds);
    }
}

/// Receives the rows of a generated export.
pub trait ExportWriter {
    /// Writes the header row (and any title rows above it).
    fn headers(&mut self, headers: &[String]) -> Result<(), GenError>;
    /// Writes one data row; returns the row number `validate` will report for it (1-based,
    /// header and title rows counted; a CSV record starts on that line).
    fn row(&mut self, row: &ExportRow) -> Result<u64, GenError>;
    /// Completes the file.
    fn finish(self: Box<Self>) -> Result<(), GenError>;
}

/// What a run of the generator produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub rows: u64,
    pub valid: u64,
    pub rejected: u64,
    pub duplicates: u64,
    /// Valid rows that change or revoke an earlier licence.
    pub lifecycle: u64,
    /// Rejected rows by rule name.
    pub rejects_by_rule: BTreeMap<&'static str, u64>,
    /// Rows by defect name.
    pub defects: BTreeMap<&'static str, u64>,
    pub expected_path: PathBuf,
}

/// Where the expected outcomes of `out` go: `<out>.expected.csv`.
pub fn expected_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".expected.csv");
    PathBuf::from(s)
}

/// Earlier valid rows, for exact duplicates: a small ring, so memory stays flat.
struct RecentRows {
    rows: Vec<ExportRow>,
    next: usize,
}

const RECENT_ROWS: usize = 32;

impl RecentRows {
    fn push(&mut self, row: &ExportRow) {
        if self.rows.len() < RECENT_ROWS {
            self.rows.push(row.clone());
        } else if let Some(slot) = self.rows.get_mut(self.next) {
            slot.copy_from(row);
        }
        self.next = (self.next + 1) % RECENT_ROWS;
    }

    fn pick(&self, rng: &mut Rng) -> Option<&ExportRow> {
        self.rows.get(rng.index(self.rows.len()))
    }
}

/// Licences that may still change or be revoked later in the export (each at most once, so
/// that nothing is changed after its revocation).
struct LiveLicences {
    drafts: Vec<Draft>,
}

const LIVE_LICENCES: usize = 1024;
/// Share of clean rows that change or revoke an earlier licence.
const LIFECYCLE_RATE: f64 = 0.05;
/// Share of fresh licences remembered for a later change or revocation.
const REMEMBER_RATE: f64 = 0.25;

impl LiveLicences {
    fn remember(&mut self, d: &Draft, rng: &mut Rng) {
        if self.drafts.len() < LIVE_LICENCES {
            self.drafts.push(d.clone());
        } else {
            let i = rng.index(self.drafts.len());
            if let Some(slot) = self.drafts.get_mut(i) {
                slot.clone_from(d);
            }
        }
    }

    fn take(&mut self, rng: &mut Rng) -> Option<Draft> {
        if self.drafts.is_empty() {
            return None;
        }
        Some(self.drafts.swap_remove(rng.index(self.drafts.len())))
    }
}

/// Generates `opts.rows` rows of `plan`'s type into `out` and their expected outcomes into
/// [`expected_path`]`(out)`.
///
/// Fails with [`GenError::UnsupportedType`] for a catalog type the generator cannot draft,
/// [`GenError::DefectRate`] for a rate outside 0..=1, [`GenError::TooManyRowsForXlsx`], or a
/// write error naming the file.
pub fn generate(plan: &Plan, opts: &GenOptions, out: &Path) -> Result<GenSummary, GenError> {
    if !(0.0..=1.0).contains(&opts.defect_rate) {
        return Err(GenError::DefectRate { rate: opts.defect_rate });
    }
    let workbook = opts.format == OutputFormat::Xlsx;
    if workbook && opts.rows > XLSX_MAX_ROWS {
        return Err(GenError::TooManyRowsForXlsx { rows: opts.rows, max: XLSX_MAX_ROWS });
    }
    let mut rng = Rng::new(opts.seed);
    let mut profile = Profile::new(plan, &mut rng, workbook)?;
    let layout = Layout::of(plan);
    let targets = Targets::of(&layout, plan, workbook);
    let defects = targets.applicable();
    let non_duplicate: Vec<Defect> =
        defects.iter().copied().filter(|d| *d != Defect::ExactDuplicate).collect();

    let mut writer: Box<dyn ExportWriter> = match opts.format {
        OutputFormat::Csv => Box::new(csv_out::CsvWriter::create(out, false)?),
        OutputFormat::CsvGbk => Box::new(csv_out::CsvWriter::create(out, true)?),
        OutputFormat::Xlsx => {
            let title = format!("{}发放台账", plan.licence_type.name);
            let shared = layout.columns.iter().map(|c| c.has_small_vocabulary()).collect();
            let width = layout.columns.len();
            Box::new(xlsx_out::XlsxWriter::create(out, &title, width, shared, opts.rows)?)
        }
    };
    let expected_path = expected_path(out);
    let write_err = |source| GenError::Write { path: expected_path.clone(), source };
    let mut expected = BufWriter::with_capacity(
        1 << 16,
        File::create(&expected_path)
            .map_err(|e| GenError::Write { path: expected_path.clone(), source: e })?,
    );
    expected.write_all(b"line,outcome,rule\n").map_err(write_err)?;
    writer.headers(&layout.headers())?;

    let mut summary = GenSummary { expected_path: expected_path.clone(), ..GenSummary::default() };
    let mut draft = Draft::default();
    let mut row = ExportRow::default();
    let mut recent = RecentRows { rows: Vec::with_capacity(RECENT_ROWS), next: 0 };
    let mut live = LiveLicences { drafts: Vec::with_capacity(LIVE_LICENCES) };
    let mut line_text = String::with_capacity(32);

    for _ in 0..opts.rows {
        let mut defect = if !defects.is_empty() && rng.chance(opts.defect_rate) {
            defects.get(rng.index(defects.len())).copied()
        } else {
            None
        };
        if defect == Some(Defect::ExactDuplicate) && recent.rows.is_empty() {
            defect = non_duplicate.get(rng.index(non_duplicate.len())).copied();
        }
        let outcome = match defect {
            Some(Defect::ExactDuplicate) => match recent.pick(&mut rng) {
                Some(earlier) => {
                    row.copy_from(earlier);
                    Expected::Duplicate
                }
                None => {
                    profile.draft(&mut draft, &mut rng);
                    profile.render(&draft, &layout, &mut row, &mut rng);
                    Expected::Valid
                }
            },
            Some(d) => {
                profile.draft(&mut draft, &mut rng);
                targets.prepare(d, &mut draft, &mut rng);
                profile.render(&draft, &layout, &mut row, &mut rng);
                targets.apply(d, &mut row, &draft, &profile, &mut rng)
            }
            None => {
                let mut lifecycle = false;
                if profile.has_lifecycle()
                    && rng.chance(LIFECYCLE_RATE)
                    && let Some(mut earlier) = live.take(&mut rng)
                {
                    let changed = rng.chance(0.6) && profile.change(&mut earlier, &mut rng);
                    if changed {
                        live.remember(&earlier, &mut rng);
                        lifecycle = true;
                    } else {
                        lifecycle = profile.revoke(&mut earlier, &mut rng);
                    }
                    if lifecycle {
                        profile.render(&earlier, &layout, &mut row, &mut rng);
                        summary.lifecycle += 1;
                    }
                }
                if !lifecycle {
                    profile.draft(&mut draft, &mut rng);
                    profile.render(&draft, &layout, &mut row, &mut rng);
                    if rng.chance(REMEMBER_RATE) {
                        live.remember(&draft, &mut rng);
                    }
                }
                Expected::Valid
            }
        };
        let line = writer.row(&row)?;
        line_text.clear();
        dates::push_uint(&mut line_text, line);
        line_text.push(',');
        line_text.push_str(outcome.outcome());
        line_text.push(',');
        line_text.push_str(outcome.rule());
        line_text.push('\n');
        expected.write_all(line_text.as_bytes()).map_err(write_err)?;

        summary.rows += 1;
        if let Some(d) = defect {
            *summary.defects.entry(d.name()).or_default() += 1;
        }
        match outcome {
            Expected::Valid => {
                summary.valid += 1;
                recent.push(&row);
            }
            Expected::Rejected(rule) => {
                summary.rejected += 1;
                *summary.rejects_by_rule.entry(rule.as_str()).or_default() += 1;
            }
            Expected::Duplicate => summary.duplicates += 1,
        }
    }
    writer.finish()?;
    expected.flush().map_err(write_err)?;
    Ok(summary)
}
