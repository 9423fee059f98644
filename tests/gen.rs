//! `elicence gen` writes exports whose expected outcomes (`<FILE>.expected.csv`) agree exactly
//! with what `elicence validate` makes of them, for every shipped pipeline and every format;
//! the same seed gives the same bytes, another seed other bytes.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{elicence, read_csv, run_expect};

const PIPELINES: [&str; 3] =
    ["food-business-permit", "business-licence", "special-operations-certificate"];
const FORMATS: [(&str, &str); 3] = [("csv", "csv"), ("csv-gbk", "csv"), ("xlsx", "xlsx")];

/// Runs `elicence gen` and returns the export's path.
fn generate(
    dir: &Path,
    pipeline: &str,
    format: &str,
    rows: u32,
    defects: &str,
    seed: u32,
) -> PathBuf {
    let ext = if format == "xlsx" { "xlsx" } else { "csv" };
    let out = dir.join(format!("{pipeline}-{format}-{seed}.{ext}"));
    run_expect(
        elicence()
            .args(["gen", &format!("pipelines/{pipeline}.toml"), "--rows", &rows.to_string()])
            .args(["--format", format, "--defects", defects, "--seed", &seed.to_string(), "--out"])
            .arg(&out),
        0,
    );
    out
}

fn expected_of(export: &Path) -> Vec<(u64, String, String)> {
    let mut path = export.as_os_str().to_owned();
    path.push(".expected.csv");
    let text = std::fs::read_to_string(PathBuf::from(path)).expect("expected file exists");
    let mut r = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(r.headers().unwrap(), vec!["line", "outcome", "rule"]);
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (rec[0].parse().unwrap(), rec[1].to_string(), rec[2].to_string())
        })
        .collect()
}

/// Validates `export` and checks valid.csv, rejects.csv and duplicates.csv against the
/// expected file, line by line. Returns the expected rows.
fn check_against_validate(pipeline: &str, export: &Path) -> Vec<(u64, String, String)> {
    let expected = expected_of(export);
    let out = tempfile::tempdir().unwrap();
    run_expect(
        elicence()
            .args(["validate", &format!("pipelines/{pipeline}.toml"), "--input"])
            .arg(export)
            .arg("--out")
            .arg(out.path()),
        0,
    );
    let name = export.display();
    let want = |outcome: &str| -> BTreeSet<u64> {
        expected.iter().filter(|(_, o, _)| o == outcome).map(|(l, _, _)| *l).collect()
    };

    let valid: BTreeSet<u64> = read_csv(&out.path().join("valid.csv"))[1..]
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    assert_eq!(valid, want("valid"), "{name}: valid lines");

    let rejects: BTreeMap<u64, String> = read_csv(&out.path().join("rejects.csv"))[1..]
        .iter()
        .map(|r| (r[0].parse().unwrap(), r[2].clone()))
        .collect();
    let want_rejects: BTreeMap<u64, String> = expected
        .iter()
        .filter(|(_, o, _)| o == "rejected")
        .map(|(l, _, rule)| (*l, rule.clone()))
        .collect();
    assert_eq!(rejects, want_rejects, "{name}: rejects (line → rule)");

    let dups = read_csv(&out.path().join("duplicates.csv"));
    let got_dups: BTreeSet<u64> = dups[1..].iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(got_dups, want("duplicate"), "{name}: duplicate lines");
    for d in &dups[1..] {
        let first: u64 = d[1].parse().unwrap();
        assert!(
            valid.contains(&first),
            "{name}: line {} duplicates a valid line, not {first}",
            d[0]
        );
    }

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["counts"]["read"].as_u64().unwrap() as usize, expected.len());
    assert_eq!(report["reconciled"], Value::Bool(true));
    expected
}

#[test]
fn generated_exports_validate_exactly_as_expected() {
    let dir = tempfile::tempdir().unwrap();
    for pipeline in PIPELINES {
        for (format, _) in FORMATS {
            let export = generate(dir.path(), pipeline, format, 300, "0.2", 7);
            let expected = check_against_validate(pipeline, &export);
            assert_eq!(expected.len(), 300);
            let count = |o: &str| expected.iter().filter(|(_, x, _)| x == o).count();
            assert!(count("valid") > 150, "{pipeline} {format}: mostly valid rows");
            assert!(count("rejected") > 20, "{pipeline} {format}: some rejects");
        }
    }
}

/// Every defect of the read/validate issue that a pipeline can carry shows up at a high rate,
/// and `validate` still agrees row by row.
#[test]
fn every_defect_kind_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let common = [
        "check_digit",
        "enum",
        "required",
        "date",
        "pattern",
        "status",
        "max_length",
        "future_date",
        "validity_order",
    ];
    let cases: [(&str, &str, &[&str]); 4] = [
        ("food-business-permit", "csv", &["birth_date", "issuer", "open_ended", "validity_range"]),
        ("business-licence", "csv", &["issuer"]),
        (
            "special-operations-certificate",
            "xlsx",
            &["birth_date", "open_ended", "validity_range", "lossy_number"],
        ),
        ("food-business-permit", "xlsx", &["lossy_number", "issuer"]),
    ];
    for (pipeline, format, extra) in cases {
        let export = generate(dir.path(), pipeline, format, 1500, "0.6", 11);
        let expected = check_against_validate(pipeline, &export);
        let rules: BTreeSet<&str> = expected
            .iter()
            .filter(|(_, o, _)| o == "rejected")
            .map(|(_, _, r)| r.as_str())
            .collect();
        for rule in common.iter().chain(extra.iter()) {
            assert!(
                rules.contains(rule),
                "{pipeline} {format}: no row rejected by {rule}: {rules:?}"
            );
        }
        assert!(expected.iter().any(|(_, o, _)| o == "duplicate"), "{pipeline}: duplicates");
    }
}

/// Valid variants the normaliser must accept (full-width codes, 15-digit IDs) and lifecycle
/// rows (changes, revocations) are in the export and valid.
#[test]
fn variants_and_lifecycle_rows_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let export = generate(dir.path(), "food-business-permit", "csv", 1500, "0.6", 5);
    let out = tempfile::tempdir().unwrap();
    run_expect(
        elicence()
            .args(["validate", "pipelines/food-business-permit.toml", "--input"])
            .arg(&export)
            .arg("--out")
            .arg(out.path()),
        0,
    );
    let valid = read_csv(&out.path().join("valid.csv"));
    let header = &valid[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (notes, status) = (col("notes"), col("status"));
    assert!(valid[1..].iter().any(|r| r[notes].contains("upgraded from 15 digits")));
    assert!(valid[1..].iter().any(|r| r[status] == "changed"));
    assert!(valid[1..].iter().any(|r| r[status] == "revoked"));
    let raw = std::fs::read_to_string(&export).unwrap();
    assert!(raw.contains('Ｊ') || raw.contains('９'), "full-width codes in the export");
    assert!(raw.contains("食品药品监督管理局"), "old issuer names before the 2018 reform");
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for (format, _) in FORMATS {
        let x = generate(a.path(), "business-licence", format, 200, "0.2", 7);
        let y = generate(b.path(), "business-licence", format, 200, "0.2", 7);
        let z = generate(b.path(), "business-licence", format, 200, "0.2", 8);
        let bytes = |p: &Path| std::fs::read(p).unwrap();
        assert_eq!(bytes(&x), bytes(&y), "{format}: same seed, same export");
        assert_eq!(expected_of(&x), expected_of(&y), "{format}: same seed, same outcomes");
        assert_ne!(bytes(&x), bytes(&z), "{format}: another seed, another export");
    }
}

#[test]
fn gbk_export_is_gb18030_and_xlsx_opens_with_calamine() {
    let dir = tempfile::tempdir().unwrap();
    let gbk = generate(dir.path(), "food-business-permit", "csv-gbk", 50, "0", 3);
    let bytes = std::fs::read(&gbk).unwrap();
    assert!(std::str::from_utf8(&bytes).is_err(), "GB18030 text is not UTF-8");
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(&bytes);
    assert!(!had_errors);
    assert!(text.starts_with("许可证编号,"));

    let xlsx = generate(dir.path(), "special-operations-certificate", "xlsx", 50, "0", 3);
    let spec = elicence::read::SourceSpec {
        expected_headers: vec!["证书编号".into(), "姓名".into(), "身份证号".into()],
        ..elicence::read::SourceSpec::default()
    };
    let mut source = elicence::read::open(&xlsx, &spec).unwrap();
    assert_eq!(source.header_row(), 2, "a title row above the headers");
    assert_eq!(source.headers().first().map(String::as_str), Some("证书编号"));
    // The sheet declares its used range (as Excel does), so the reader can tell how far it is:
    // 25 of 52 sheet rows after the title, the header and 23 data rows.
    let first: Vec<_> = source.by_ref().take(23).collect::<Result<Vec<_>, _>>().unwrap();
    let fraction = source.fraction_read().unwrap();
    assert!((fraction - 25.0 / 52.0).abs() < 1e-9, "{fraction}");
    let rest: Vec<_> = source.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
    assert_eq!(first.len() + rest.len(), 50);
    assert_eq!(first[0].pos.row, 3);
    assert_eq!(source.fraction_read(), Some(1.0));
}

#[test]
fn bad_requests_fail_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.xlsx");
    let o = run_expect(
        elicence()
            .args(["gen", "food-business-permit", "--rows", "1048575", "--format", "xlsx", "--out"])
            .arg(&out),
        1,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("xlsx"));
    assert!(!out.exists());

    let out = dir.path().join("rate.csv");
    run_expect(
        elicence()
            .args(["gen", "food-business-permit", "--rows", "10", "--defects", "1.5", "--out"])
            .arg(&out),
        1,
    );
    assert!(!out.exists());

    // A pipeline of a type gen cannot draft.
    let catalog = util::root().join("pipelines/catalog");
    let pipeline = dir.path().join("road.toml");
    std::fs::write(
        &pipeline,
        format!(
            "type = \"road-transport-permit\"\ncatalog = {catalog:?}\n\
             [[column]]\nheader = \"许可证号\"\nfield = \"licence_no\"\n\
             [[column]]\nheader = \"业户名称\"\nfield = \"holder_name\"\n\
             [[column]]\nheader = \"统一社会信用代码\"\nfield = \"holder_code\"\n\
             [[column]]\nheader = \"法定代表人\"\nfield = \"legal_rep\"\n\
             [[column]]\nheader = \"地址\"\nfield = \"domicile\"\n\
             [[column]]\nheader = \"经营范围\"\nfield = \"business_scope\"\n\
             [[column]]\nheader = \"发证日期\"\nfield = \"issue_date\"\n\
             [[column]]\nheader = \"有效期至\"\nfield = \"valid_to\"\n\
             [status]\nvalid = [\"有效\"]\n\
             [issuer]\nname = \"长春市交通运输局\"\ncode = \"11220100MB1560013P\"\nregion = \"220100\"\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("road.csv");
    let o = run_expect(
        elicence().arg("gen").arg(&pipeline).args(["--rows", "5", "--out"]).arg(&out),
        1,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("road-transport-permit") && err.contains("food-business-permit"), "{err}");
    assert!(!out.exists());
}

#[test]
fn help_shows_examples() {
    let o = run_expect(elicence().args(["gen", "--help"]), 0);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("Examples:") && help.contains("--defects"));
}
