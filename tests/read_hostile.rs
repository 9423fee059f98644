//! Hostile inputs for the read stage (fixtures/hostile/, see its README): each must end in the
//! named error, never a panic, and a row-level error must not stop the rows after it.

mod util;

use std::io::Write;
use std::path::PathBuf;

use elicence::read::{ArchiveLimit, Limits, ReadError, ReadErrorKind, SourceSpec, open};
use elicence::read::{ReferenceProblem, ReferenceSite};
use elicence::record::Record;
use util::{elicence, run_expect};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/hostile").join(name)
}

/// Opens a fixture that must fail at `open`, returning the error.
fn open_err(name: &str, spec: &SourceSpec) -> ReadError {
    match open(&fixture(name), spec) {
        Ok(_) => panic!("{name}: opened, expected an error"),
        Err(e) => {
            assert!(e.is_fatal(), "{name}: {e}");
            assert!(e.to_string().contains(name), "{name}: message names the file: {e}");
            e
        }
    }
}

/// Opens a fixture and reads it to the end: rows as (row, ok/err kind).
fn read_all(path: &std::path::Path, spec: &SourceSpec) -> Vec<Result<Record, ReadError>> {
    let source = open(path, spec);
    let Ok(source) = source else { panic!("{}: {:?}", path.display(), source.err()) };
    source.collect()
}

#[test]
fn text_named_xlsx_is_not_a_workbook() {
    let err = open_err("not-a-workbook.xlsx", &SourceSpec::default());
    assert!(matches!(err.kind, ReadErrorKind::NotAWorkbook { format: "xlsx", .. }), "{err}");
}

#[test]
fn truncated_xlsx_is_not_a_workbook() {
    let err = open_err("truncated.xlsx", &SourceSpec::default());
    assert!(matches!(err.kind, ReadErrorKind::NotAWorkbook { format: "xlsx", .. }), "{err}");
}

#[test]
fn zip_bomb_is_refused_by_ratio() {
    let err = open_err("zip-bomb.xlsx", &SourceSpec::default());
    match err.kind {
        ReadErrorKind::SuspiciousArchive {
            entry,
            limit: ArchiveLimit::Ratio { uncompressed, compressed, limit: 200 },
        } => {
            assert_eq!(entry.as_deref(), Some("xl/worksheets/sheet1.xml"));
            assert!(uncompressed > 200 * compressed);
        }
        other => panic!("expected SuspiciousArchive/Ratio, got {other:?}"),
    }
}

#[test]
fn zip_bomb_is_a_real_workbook_under_relaxed_limits() {
    // Proves the refusal above comes from the limit, not from a broken file.
    let spec = SourceSpec {
        limits: Limits { max_compression_ratio: 10_000, ..Limits::default() },
        ..SourceSpec::default()
    };
    let source = open(&fixture("zip-bomb.xlsx"), &spec);
    assert!(matches!(source.err().map(|e| e.kind), Some(ReadErrorKind::HeaderNotFound { .. })));
}

#[test]
fn declared_two_gigabytes_is_refused_before_inflating() {
    let err = open_err("zip-bomb-declared.xlsx", &SourceSpec::default());
    assert!(
        matches!(
            err.kind,
            ReadErrorKind::SuspiciousArchive { limit: ArchiveLimit::TotalSize { .. }, .. }
        ),
        "{err}"
    );
}

#[test]
fn entry_inflating_beyond_its_declared_size_ends_in_a_workbook_error() {
    // The zip crate stops reading an entry at its declared size, so the lie surfaces as a
    // fatal error from calamine and nothing beyond the declared size is inflated.
    let source = open(&fixture("lying-size.xlsx"), &SourceSpec::default());
    let err = match source {
        Err(e) => e,
        Ok(source) => {
            let rows: Vec<_> = source.collect();
            assert_eq!(rows.len(), 1, "{rows:?}");
            match rows.into_iter().next() {
                Some(Err(e)) => e,
                other => panic!("expected an error, got {other:?}"),
            }
        }
    };
    assert!(err.is_fatal());
    assert!(
        matches!(err.kind, ReadErrorKind::Workbook(_) | ReadErrorKind::NotAWorkbook { .. }),
        "{err}"
    );
}

#[test]
fn nul_byte_is_a_row_error() {
    let rows = read_all(&fixture("nul-bytes.csv"), &SourceSpec::default());
    assert_eq!(rows.len(), 2);
    let first = rows.first().and_then(|r| r.as_ref().err());
    assert!(matches!(
        first.map(|e| (&e.kind, e.row)),
        Some((ReadErrorKind::NulByte { field: 2 }, Some(2)))
    ));
    assert!(first.is_some_and(|e| !e.is_fatal()));
    assert_eq!(rows.get(1).and_then(|r| r.as_ref().ok()).map(|r| r.pos.row), Some(3));
}

#[test]
fn bad_gbk_bytes_are_a_row_error_naming_the_line() {
    let source = open(&fixture("bad-gbk.csv"), &SourceSpec::default());
    let Ok(source) = source else { panic!("{:?}", source.err()) };
    assert_eq!(source.encoding_used(), "GB18030");
    assert_eq!(source.headers(), ["名称", "地址", "许可证编号"]);
    let rows: Vec<_> = source.collect();
    assert_eq!(rows.len(), 3);
    let bad = rows.get(1).and_then(|r| r.as_ref().err());
    match bad.map(|e| (&e.kind, e.row)) {
        Some((ReadErrorKind::Undecodable { field: 2, encoding: "GB18030", bytes }, Some(3))) => {
            assert_eq!(bytes.first(), Some(&0xFF));
        }
        other => panic!("expected Undecodable at line 3, got {other:?}"),
    }
    let bad = bad.map(ToString::to_string).unwrap_or_default();
    assert!(bad.ends_with("bad-gbk.csv:3: field 2 is not valid GB18030 (bytes 0xFF)"), "{bad}");
    let good: Vec<u64> = rows.iter().filter_map(|r| r.as_ref().ok()).map(|r| r.pos.row).collect();
    assert_eq!(good, vec![2, 4]);
}

#[test]
fn ragged_rows_are_reported_not_dropped() {
    let rows = read_all(&fixture("ragged.csv"), &SourceSpec::default());
    let kinds: Vec<_> = rows
        .iter()
        .map(|r| match r {
            Ok(rec) => (rec.pos.row, None),
            Err(e) => (e.row.unwrap_or(0), Some(&e.kind)),
        })
        .collect();
    assert_eq!(kinds.len(), 4);
    assert!(matches!(kinds.first(), Some((2, None))));
    assert!(matches!(
        kinds.get(1),
        Some((3, Some(ReadErrorKind::WrongFieldCount { expected: 3, found: 2 })))
    ));
    assert!(matches!(
        kinds.get(2),
        Some((4, Some(ReadErrorKind::WrongFieldCount { expected: 3, found: 4 })))
    ));
    assert!(matches!(kinds.get(3), Some((5, None))));
}

#[test]
fn huge_field_is_a_row_error_and_reading_goes_on() {
    let dir = tempfile::tempdir().map_err(|e| e.to_string());
    let Ok(dir) = dir else { panic!("{dir:?}") };
    let path = dir.path().join("huge-field.csv");
    let written = (|| -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        f.write_all("名称,备注\n甲店,短\n乙店,\"".as_bytes())?;
        let line = [b'x'; 1023];
        for _ in 0..10 * 1024 {
            f.write_all(&line)?;
            f.write_all(b"\n")?;
        }
        f.write_all("\"\n丙店,短\n".as_bytes())?;
        f.flush()
    })();
    assert!(written.is_ok(), "{written:?}");
    let rows = read_all(&path, &SourceSpec::default());
    assert_eq!(rows.len(), 3);
    let err = rows.get(1).and_then(|r| r.as_ref().err());
    assert!(matches!(
        err.map(|e| (&e.kind, e.row)),
        Some((ReadErrorKind::RecordTooLong { limit: 1_048_576 }, Some(3)))
    ));
    // Line 3 holds the field's first line; its 10,240 newlines put 丙店 on line 10,244.
    let last = rows.get(2).and_then(|r| r.as_ref().ok());
    assert_eq!(last.map(|r| r.pos.row), Some(3 + 10 * 1024 + 1));

    // Below the record limit but above the field limit: FieldTooLong.
    let spec = SourceSpec {
        limits: Limits { max_record_bytes: 64 << 20, ..Limits::default() },
        ..SourceSpec::default()
    };
    let rows = read_all(&path, &spec);
    assert!(matches!(
        rows.get(1).map(|r| r.as_ref().err().map(|e| &e.kind)),
        Some(Some(ReadErrorKind::FieldTooLong { field: 2, limit: 65_536, .. }))
    ));
}

#[test]
fn hostile_files_under_every_format_never_panic() {
    use elicence::read::Format;
    let names = [
        "not-a-workbook.xlsx",
        "truncated.xlsx",
        "zip-bomb.xlsx",
        "zip-bomb-declared.xlsx",
        "lying-size.xlsx",
        "nul-bytes.csv",
        "bad-gbk.csv",
        "ragged.csv",
        "cfb-loop.xls",
        "fuzz-oom-cfb.xls",
        "fuzz-panic-cfb.xls",
        "xls-partial-last-sector.xls",
        "xlsx-column-reference-wraps.xlsx",
        "xls-dimensions-huge-reserve.xls",
        "xls-cells-far-apart.xls",
        "xls-boundsheet-cut-short.xls",
        "xls-merge-cells-cut-short.xls",
        "xls-globals-record-cut-short.xls",
        "xls-formula-tokens-cut-short.xls",
        "xls-empty-stream-past-the-mini-stream.xls",
    ];
    for name in names {
        for format in [Format::Csv, Format::Xlsx, Format::Xls, Format::Ods] {
            let spec = SourceSpec { format, ..SourceSpec::default() };
            if let Ok(source) = open(&fixture(name), &spec) {
                for row in source {
                    drop(row);
                }
            }
        }
    }
}

#[test]
fn xls_with_looping_sector_chain_is_refused() {
    // Regression: fuzz_workbook found that calamine follows a looping FAT chain until memory
    // runs out (fuzz-oom-cfb.xls); cfb-loop.xls is the same defect made by hand.
    for name in ["cfb-loop.xls", "fuzz-oom-cfb.xls"] {
        let err = open_err(name, &SourceSpec::default());
        assert!(
            matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason.contains("loops")),
            "{err}"
        );
    }
}

#[test]
fn xls_that_makes_calamine_panic_is_a_fatal_error() {
    // Regression: fuzz_workbook found a sector id past the end of the file that makes calamine
    // panic while slicing (cfb.rs). The compound-file check refuses it; were it to slip through,
    // the panic stays on the reader thread and surfaces as `ReaderStopped`.
    let err = open_err("fuzz-panic-cfb.xls", &SourceSpec::default());
    assert!(
        matches!(
            err.kind,
            ReadErrorKind::NotAWorkbook { format: "xls", .. } | ReadErrorKind::ReaderStopped
        ),
        "{err}"
    );
}

#[test]
fn xls_with_a_table_sector_cut_short_is_refused() {
    // Regression (issue 19): fuzz_workbook found a compound file whose last sector, its DIFAT
    // sector, is 3 bytes long; calamine panicked on it (utils.rs `to_u32` assertion) and the
    // compound-file check let it through. It is refused before calamine opens it.
    let err = open_err("xls-partial-last-sector.xls", &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason == "DIFAT sector cut short by the end of the file"),
        "{err}"
    );
}

#[test]
fn xls_with_a_bound_sheet_record_cut_short_is_refused() {
    // Regression (issue 19, session 9): fuzz_workbook found a workbook whose BoundSheet8 record
    // is shorter than its six fixed bytes; calamine indexed past its end (`read_u32`,
    // xls.rs `parse_sheet_metadata`) and panicked. It is refused before calamine opens it.
    let err = open_err("xls-boundsheet-cut-short.xls", &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason == "BoundSheet8 record shorter than 6 bytes"),
        "{err}"
    );
}

#[test]
fn xls_with_a_merge_cells_record_cut_short_is_refused() {
    // Regression (issue 19, session 9): fuzz_workbook found a sheet whose MergeCells record holds
    // fewer ranges than its count; calamine read past its end (`parse_merge_cells`) and
    // panicked. It is refused before calamine opens it.
    let err = open_err("xls-merge-cells-cut-short.xls", &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason.starts_with("MergeCells record shorter")),
        "{err}"
    );
}

#[test]
fn xls_with_a_globals_record_cut_short_is_refused() {
    // Regression (issue 19, session 9): fuzz_workbook found a workbook whose globals hold a
    // fixed-size record (CodePage, DateMode and the like) shorter than its two bytes; calamine
    // read it unchecked (`read_u16` in `parse_workbook`) and panicked. Refused before calamine.
    let err = open_err("xls-globals-record-cut-short.xls", &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason == "workbook globals record shorter than 2 bytes"),
        "{err}"
    );
}

#[test]
fn xls_whose_empty_stream_lies_past_the_mini_stream_is_refused() {
    // Regression (issue 19, session 10): fuzz_workbook found a compound file without a mini
    // stream whose Workbook entry has length 0 and starts at mini sector 36: calamine reads a
    // stream's first sector even when the stream is empty, and sliced `data[2304..0]`.
    let name = "xls-empty-stream-past-the-mini-stream.xls";
    assert!(calamine_panics_on(name), "the fixture no longer shows calamine's defect");
    let err = open_err(name, &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason == "mini sector past the end of the mini stream"),
        "{err}"
    );
}

/// Whether calamine itself panics opening `name` (the defect a hostile fixture must show).
fn calamine_panics_on(name: &str) -> bool {
    use calamine::{Reader, Xls, open_workbook};
    let path = fixture(name);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| {
        if let Ok(mut book) = open_workbook::<Xls<_>, _>(&path) {
            let names = book.sheet_names();
            for name in names {
                let _ = book.worksheet_range(&name);
            }
        }
    });
    std::panic::set_hook(hook);
    outcome.is_err()
}

#[test]
fn xls_whose_formula_tokens_are_cut_short_reads_every_value_without_a_panic() {
    // calamine 0.38 turns every formula's tokens into text when it opens an xls, slicing them
    // unchecked: a token cut short by the end of the formula panics. Only cached values are
    // read here, so the formula's token length is cleared in the bytes calamine reads: the
    // cached values (42, 43, 44 in this fixture) and every other cell come through.
    let name = "xls-formula-tokens-cut-short.xls";
    assert!(calamine_panics_on(name), "the fixture no longer shows calamine's defect");
    let rows = read_all(&fixture(name), &SourceSpec::default());
    let cells: Vec<Vec<elicence::record::Cell>> =
        rows.into_iter().map(|r| r.expect("every row reads").cells).collect();
    use elicence::record::Cell::{Number, Text};
    // The header row (名称, 数量, 合计) is the source's header; three data rows follow.
    assert_eq!(cells.len(), 3);
    for (i, row) in cells.iter().enumerate() {
        let n = i as f64 + 1.0;
        assert_eq!(row, &vec![Text(format!("店{}", i + 1)), Number(n), Number(41.0 + n)]);
    }
}

#[test]
fn xlsx_cell_reference_beyond_xfd_is_refused_naming_sheet_row_and_reference() {
    // Regression (issue 19): calamine computes the column of `AATYHWUT4` with unchecked
    // arithmetic; it wrapped to column B in a release build (row 4's 统一社会信用代码 overwrote
    // its 经营者名称) and panicked in a debug build. The reference is refused before calamine
    // reads it.
    let err = open_err("xlsx-column-reference-wraps.xlsx", &SourceSpec::default());
    match &err.kind {
        ReadErrorKind::BadReference {
            site: ReferenceSite::Cell,
            reference,
            problem: ReferenceProblem::BeyondLastColumn,
        } => assert_eq!(reference, "AATYHWUT4"),
        other => panic!("expected BadReference, got {other:?}"),
    }
    assert_eq!(err.sheet.as_deref(), Some("台账"));
    assert_eq!(err.row, Some(4));
    assert!(
        err.to_string().ends_with(
            "xlsx-column-reference-wraps.xlsx:台账:4: cell reference \"AATYHWUT4\" is beyond the last column XFD"
        ),
        "{err}"
    );
}

/// `elicence validate` of a hostile fixture with the food-business-permit pipeline: exit code
/// and stderr.
fn validate_hostile(name: &str, code: i32) -> (String, tempfile::TempDir) {
    let out = tempfile::tempdir().map_err(|e| e.to_string());
    let Ok(out) = out else { panic!("{out:?}") };
    let output = run_expect(
        elicence()
            .args(["validate", "pipelines/food-business-permit.toml", "--input"])
            .arg(fixture(name))
            .arg("--out")
            .arg(out.path()),
        code,
    );
    (String::from_utf8_lossy(&output.stderr).into_owned(), out)
}

#[test]
fn validate_refuses_the_wrapping_reference_and_moves_no_value() {
    // Before the fix this run exited 0 with 9 valid, 17 rejected, 1 duplicate: row 4's USCC
    // sat in the 经营者名称 column. Now the workbook is refused as unreadable input (exit 4),
    // the message names file, sheet, row and reference, and no row is written.
    let (stderr, out) = validate_hostile("xlsx-column-reference-wraps.xlsx", 4);
    assert!(
        stderr.contains(
            "xlsx-column-reference-wraps.xlsx:台账:4: cell reference \"AATYHWUT4\" is beyond the last column XFD"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // valid.csv is opened before reading starts: it holds its header line and nothing else.
    let valid = std::fs::read_to_string(out.path().join("valid.csv")).unwrap_or_default();
    assert!(valid.lines().count() <= 1, "{valid}");
}

#[test]
fn validate_refuses_the_cut_short_compound_file_without_a_panic() {
    let (stderr, _out) = validate_hostile("xls-partial-last-sector.xls", 4);
    assert!(
        stderr.contains(
            "xls-partial-last-sector.xls: is not a readable xls workbook: DIFAT sector cut short by the end of the file"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("stopped unexpectedly"), "{stderr}");
}

#[test]
fn xls_declaring_billions_of_rows_is_refused_before_calamine_allocates() {
    // Regression: fuzz_workbook (this branch's run) found a sheet whose Dimensions record
    // declares about 4 billion rows; calamine reserved room for every cell at once, the 2 PB
    // allocation failed and the whole process aborted (exit 134: not a panic the reader thread
    // could contain). The compound-file check now reads the sheets' Dimensions records first.
    let err = open_err("xls-dimensions-huge-reserve.xls", &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason == "sheet dimensions beyond 65536 rows by 256 columns"),
        "{err}"
    );
    let (stderr, _out) = validate_hostile("xls-dimensions-huge-reserve.xls", 4);
    assert!(stderr.contains("xls-dimensions-huge-reserve.xls: is not a readable xls workbook"));
}

#[test]
fn xls_whose_cells_lie_far_apart_is_refused_before_calamine_builds_its_grid() {
    // Regression (issue 19): fuzz_workbook found a sheet with two cells far apart; calamine
    // builds a dense grid spanning every cell position when it opens an xls, here 123 GB, and
    // the allocation failure aborts the process. The compound-file check now walks the cell
    // records first.
    let err = open_err("xls-cells-far-apart.xls", &SourceSpec::default());
    assert!(
        matches!(&err.kind, ReadErrorKind::NotAWorkbook { format: "xls", reason } if reason == "cell beyond column IV, the last of a BIFF8 sheet"),
        "{err}"
    );
    let (stderr, _out) = validate_hostile("xls-cells-far-apart.xls", 4);
    assert!(stderr.contains("xls-cells-far-apart.xls: is not a readable xls workbook"), "{stderr}");
}
