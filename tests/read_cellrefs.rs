//! Property test for issue 19: whatever is done to the cell references of a valid xlsx
//! worksheet (overlong, out of order, duplicated, lower case, dropped, moved), no value changes
//! column or row silently. Either every value is read at the position its reference names, or
//! reading ends in a `BadReference` error naming the sheet, the row and the first reference in
//! the sheet's order that is wrong; a value that lands right of the header's last column is a
//! row-level `WrongFieldCount` for its row.
//!
//! The expected outcome comes from a model written here, independent of the reader: references
//! are A1 style within `XFD1048576`, parsed with wide arithmetic; a cell without a reference
//! follows the cell before it in its `<row>`; the cells must come in strictly increasing
//! (row, column) order. The workbook is written with the `zip` crate, one worksheet with inline
//! strings, so the cell XML is exactly what the test says.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use elicence::read::{ReadError, ReadErrorKind, ReferenceProblem, ReferenceSite, SourceSpec, open};
use proptest::prelude::*;

/// The sheet's name, with an `&` so that the error's sheet name is seen unescaped.
const SHEET: &str = "台账&1";

/// One `<c>` element: its `r` attribute (none: the position follows the cell before) and text.
#[derive(Debug, Clone)]
struct CellXml {
    reference: Option<String>,
    text: String,
}

/// A worksheet as `<row r="n">` elements holding cells.
#[derive(Debug, Clone)]
struct SheetXml {
    rows: Vec<(u64, Vec<CellXml>)>,
}

/// A change to the reference of the cell at a position in document order (the header row's
/// cells come first and are not changed, so the header is always found).
#[derive(Debug, Clone)]
enum Change {
    /// `c4` for `C4`: calamine reads it as `C4`.
    LowerCase,
    /// Column letters beyond XFD (4 to 12 letters, `AATYHWUT` among them), same row.
    OverlongColumn(String),
    /// A row number beyond 1,048,576.
    OverlongRow(u64),
    /// The reference of another cell, in its place (out of order).
    SwapWith(usize),
    /// A copy of another cell's reference (duplicated).
    CopyOf(usize),
    /// No reference at all.
    Drop,
    /// Another position inside the header's columns, rows 1 to 12.
    MoveTo { row: u64, col: u64 },
    /// Not A1 style.
    Garbage(String),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::LowerCase),
        prop_oneof![Just("AATYHWUT".to_owned()), "[A-Z]{4,12}"].prop_map(Change::OverlongColumn),
        (1_048_577u64..50_000_000_000).prop_map(Change::OverlongRow),
        any::<prop::sample::Index>().prop_map(|i| Change::SwapWith(i.index(1 << 16))),
        any::<prop::sample::Index>().prop_map(|i| Change::CopyOf(i.index(1 << 16))),
        Just(Change::Drop),
        (1u64..=12, 0u64..6).prop_map(|(row, col)| Change::MoveTo { row, col }),
        prop_oneof![
            Just("".to_owned()),
            Just("4".to_owned()),
            Just("C".to_owned()),
            Just("C0".to_owned()),
            Just("$C$4".to_owned()),
            Just("R4C3".to_owned()),
            "[A-Z]{1,3}[0-9]{1,3}[ :A-Z]",
        ]
        .prop_map(Change::Garbage),
    ]
}

/// `col` (0-based) as column letters.
fn letters(col: u64) -> String {
    let mut out = Vec::new();
    let mut n = col + 1;
    while n > 0 {
        out.push(char::from(b'A' + ((n - 1) % 26) as u8));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

fn a1(row: u64, col: u64) -> String {
    format!("{}{}", letters(col), row + 1)
}

/// A valid sheet: header row 1 with `width` columns, then `rows` data rows, every cell set.
fn valid_sheet(width: u64, rows: u64) -> SheetXml {
    let header =
        (0..width).map(|c| CellXml { reference: Some(a1(0, c)), text: format!("h{c}") }).collect();
    let mut sheet = SheetXml { rows: vec![(1, header)] };
    for r in 1..=rows {
        let cells = (0..width)
            .map(|c| CellXml { reference: Some(a1(r, c)), text: format!("v{r}_{c}") })
            .collect();
        sheet.rows.push((r + 1, cells));
    }
    sheet
}

/// Applies `changes` to the data cells (indexes wrap around the number of data cells).
fn apply(sheet: &mut SheetXml, width: usize, changes: &[(usize, Change)]) {
    let data: Vec<(usize, usize)> = sheet
        .rows
        .iter()
        .enumerate()
        .skip(1)
        .flat_map(|(r, (_, cells))| (0..cells.len()).map(move |c| (r, c)))
        .collect();
    if data.is_empty() {
        return;
    }
    let reference = |sheet: &SheetXml, (r, c): (usize, usize)| {
        sheet.rows.get(r).and_then(|(_, cells)| cells.get(c)).and_then(|c| c.reference.clone())
    };
    for (at, change) in changes {
        let Some(&target) = data.get(at % data.len()) else { continue };
        let (r, c) = target;
        let row_number = sheet.rows.get(r).map_or(1, |(n, _)| *n);
        let current = reference(sheet, target);
        let new = match change {
            Change::LowerCase => current.map(|s| s.to_ascii_lowercase()),
            Change::OverlongColumn(col) => Some(format!("{col}{row_number}")),
            Change::OverlongRow(row) => Some(format!("{}{row}", letters(c as u64))),
            Change::SwapWith(other) => {
                let Some(&other) = data.get(other % data.len()) else { continue };
                let theirs = reference(sheet, other);
                if let Some(cell) =
                    sheet.rows.get_mut(other.0).and_then(|(_, v)| v.get_mut(other.1))
                {
                    cell.reference = current;
                }
                theirs
            }
            Change::CopyOf(other) => {
                let Some(&other) = data.get(other % data.len()) else { continue };
                reference(sheet, other)
            }
            Change::Drop => None,
            Change::MoveTo { row, col } => Some(a1(row - 1, col % width as u64)),
            Change::Garbage(text) => Some(text.clone()),
        };
        if let Some(cell) = sheet.rows.get_mut(r).and_then(|(_, v)| v.get_mut(c)) {
            cell.reference = new;
        }
    }
}

/// What reading the sheet must give.
#[derive(Debug, PartialEq)]
enum Expected {
    /// Every value at the (0-based row, column) its reference names.
    Values(BTreeMap<(u64, u64), String>),
    /// A fatal `BadReference` for this cell reference, in this 1-based `<row>`.
    Refused { reference: String, problem: ReferenceProblem, row: u64 },
    /// References all fine, but a value lands right of the header's last column in this
    /// 1-based row: a row-level `WrongFieldCount` there, the value never dropped or moved.
    TooWide { row: u64 },
}

/// The model: A1 references within the grid, in strictly increasing order.
fn model_position(reference: &str) -> Result<(u64, u64), ReferenceProblem> {
    let split = reference.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(reference.len());
    let (col, row) = reference.split_at(split);
    if col.is_empty() || row.is_empty() || !row.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ReferenceProblem::Malformed);
    }
    let row: u128 = row.parse().unwrap_or(u128::MAX);
    if row == 0 {
        return Err(ReferenceProblem::Malformed);
    }
    let col = col
        .bytes()
        .try_fold(0u128, |acc, b| {
            acc.checked_mul(26)?.checked_add(u128::from(b.to_ascii_uppercase() - b'A') + 1)
        })
        .unwrap_or(u128::MAX);
    if col > 16_384 {
        return Err(ReferenceProblem::BeyondLastColumn);
    }
    if row > 1_048_576 {
        return Err(ReferenceProblem::BeyondLastRow);
    }
    Ok((row as u64 - 1, col as u64 - 1))
}

fn expected(sheet: &SheetXml) -> Expected {
    let mut values = BTreeMap::new();
    let mut previous: Option<(u64, u64)> = None;
    for (row_number, cells) in &sheet.rows {
        let mut next_col = 0;
        for cell in cells {
            let refused = |reference: String, problem| Expected::Refused {
                reference,
                problem,
                row: *row_number,
            };
            let pos = match &cell.reference {
                Some(r) => match model_position(r) {
                    Ok(pos) => pos,
                    Err(problem) => return refused(r.clone(), problem),
                },
                None => (row_number - 1, next_col),
            };
            if let Some(prev) = previous.filter(|&prev| pos <= prev) {
                let shown = cell.reference.clone().unwrap_or_else(|| a1(pos.0, pos.1));
                let previous = a1(prev.0, prev.1);
                return refused(shown, ReferenceProblem::OutOfOrder { previous });
            }
            previous = Some(pos);
            next_col = pos.1 + 1;
            values.insert(pos, cell.text.clone());
        }
    }
    let width = sheet.rows.first().map_or(0, |(_, header)| header.len() as u64);
    if let Some(&(row, _)) = values.keys().find(|&&(row, col)| row > 0 && col >= width) {
        return Expected::TooWide { row: row + 1 };
    }
    Expected::Values(values)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;")
}

fn sheet_xml(sheet: &SheetXml) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (row, cells) in &sheet.rows {
        xml.push_str(&format!(r#"<row r="{row}">"#));
        for cell in cells {
            match &cell.reference {
                Some(r) => xml.push_str(&format!(r#"<c r="{}" t="inlineStr">"#, xml_escape(r))),
                None => xml.push_str(r#"<c t="inlineStr">"#),
            }
            xml.push_str(&format!("<is><t>{}</t></is></c>", xml_escape(&cell.text)));
        }
        xml.push_str("</row>");
    }
    xml.push_str("</sheetData></worksheet>");
    xml
}

/// Writes a one-sheet xlsx whose worksheet XML is `sheet`.
fn write_xlsx(path: &Path, sheet: &SheetXml) -> zip::result::ZipResult<()> {
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned(),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="{}" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
                xml_escape(SHEET)
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#.to_owned(),
        ),
        ("xl/worksheets/sheet1.xml", sheet_xml(sheet)),
    ];
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    for (name, text) in parts {
        zip.start_file(name, zip::write::SimpleFileOptions::default())?;
        zip.write_all(text.as_bytes())?;
    }
    zip.finish()?;
    Ok(())
}

/// Reads the workbook: the values by (0-based row, column), or the first error.
fn read(path: &Path) -> Result<BTreeMap<(u64, u64), String>, ReadError> {
    let spec = SourceSpec { header_row: Some(1), ..SourceSpec::default() };
    let source = open(path, &spec)?;
    let mut values = BTreeMap::new();
    for (col, header) in source.headers().iter().enumerate() {
        values.insert((0, col as u64), header.clone());
    }
    for record in source {
        let record = record?;
        for (col, cell) in record.cells.iter().enumerate() {
            if !cell.is_blank() {
                values.insert((record.pos.row - 1, col as u64), cell.display());
            }
        }
    }
    Ok(values)
}

fn check(width: u64, rows: u64, changes: &[(usize, Change)]) -> Result<(), TestCaseError> {
    let mut sheet = valid_sheet(width, rows);
    apply(&mut sheet, width as usize, changes);
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let path = dir.path().join("book.xlsx");
    write_xlsx(&path, &sheet).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let got = read(&path);
    match (expected(&sheet), got) {
        (Expected::Values(want), Ok(got)) => prop_assert_eq!(got, want, "{}", sheet_xml(&sheet)),
        (Expected::Refused { reference, problem, row }, Err(err)) => {
            prop_assert!(err.is_fatal(), "{}", err);
            prop_assert_eq!(err.sheet.as_deref(), Some(SHEET), "{}", err);
            prop_assert_eq!(err.row, Some(row), "{}", err);
            prop_assert!(err.to_string().contains("book.xlsx"), "{}", err);
            match err.kind {
                ReadErrorKind::BadReference {
                    site: ReferenceSite::Cell,
                    reference: r,
                    problem: p,
                } => {
                    prop_assert_eq!(r, reference);
                    prop_assert_eq!(p, problem);
                }
                other => prop_assert!(false, "expected BadReference, got {:?}", other),
            }
        }
        (Expected::TooWide { row }, Err(err)) => {
            prop_assert!(!err.is_fatal(), "{}", err);
            prop_assert_eq!(err.row, Some(row), "{}", err);
            prop_assert!(
                matches!(err.kind, ReadErrorKind::WrongFieldCount { .. }),
                "expected WrongFieldCount, got {:?}",
                err.kind
            );
        }
        (want, got) => {
            prop_assert!(false, "expected {:?}, got {:?}\n{}", want, got, sheet_xml(&sheet))
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_value_changes_column_silently(
        width in 1u64..6,
        rows in 1u64..6,
        changes in prop::collection::vec((any::<usize>(), change()), 0..4),
    ) {
        check(width, rows, &changes)?;
    }
}

#[test]
fn untouched_and_lower_case_references_read_the_same() {
    let plain = check(3, 3, &[]);
    assert!(plain.is_ok(), "{plain:?}");
    let lower: Vec<(usize, Change)> = (0..9).map(|i| (i, Change::LowerCase)).collect();
    let lower = check(3, 3, &lower);
    assert!(lower.is_ok(), "{lower:?}");
}

#[test]
fn the_fuzzing_find_is_refused() {
    // Data cell 1 is B2 in a 3-wide sheet: `AATYHWUT2` wraps to column B in calamine.
    let mut sheet = valid_sheet(3, 2);
    apply(&mut sheet, 3, &[(1, Change::OverlongColumn("AATYHWUT".into()))]);
    assert_eq!(
        expected(&sheet),
        Expected::Refused {
            reference: "AATYHWUT2".into(),
            problem: ReferenceProblem::BeyondLastColumn,
            row: 2
        }
    );
    let result = check(3, 2, &[(1, Change::OverlongColumn("AATYHWUT".into()))]);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_duplicated_reference_is_refused_at_the_second_cell() {
    // Data cell 2 (C2) copies cell 0's reference A2: it comes after B2, so it is out of order.
    let result = check(3, 2, &[(2, Change::CopyOf(0))]);
    assert!(result.is_ok(), "{result:?}");
    let mut sheet = valid_sheet(3, 2);
    apply(&mut sheet, 3, &[(2, Change::CopyOf(0))]);
    assert_eq!(
        expected(&sheet),
        Expected::Refused {
            reference: "A2".into(),
            problem: ReferenceProblem::OutOfOrder { previous: "B2".into() },
            row: 2
        }
    );
}

#[test]
fn a_value_pushed_right_of_the_header_is_a_row_error_not_a_move() {
    // Found by this property test (2026-12-05): after a swap, a cell without a reference
    // follows B3 into column C of a 2-wide sheet. The reader reports `WrongFieldCount` for that
    // row; the model expected it to read the value at C3 as if the header were wider.
    let changes = [
        (7_994_863_354_529_136_782, Change::SwapWith(13_677)),
        (1_155_483_769_302_141_375, Change::Drop),
    ];
    let mut sheet = valid_sheet(2, 3);
    apply(&mut sheet, 2, &changes);
    assert!(matches!(expected(&sheet), Expected::TooWide { .. }), "{:?}", expected(&sheet));
    let result = check(2, 3, &changes);
    assert!(result.is_ok(), "{result:?}");
}
