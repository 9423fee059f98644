//! `elicence validate` on every bundled fixture gives exactly the expected valid rows, rejects
//! (with rule and field) and duplicates recorded in `fixtures/<pipeline>/expected.json`.

mod util;

use std::collections::BTreeMap;

use serde_json::Value;
use util::{elicence, read_csv, root, run_expect};

const PIPELINES: [&str; 3] =
    ["food-business-permit", "business-licence", "special-operations-certificate"];

fn check_fixture(pipeline: &str, file: &str, expected: &Value) {
    let out = tempfile::tempdir().unwrap();
    run_expect(
        elicence()
            .args([
                "validate",
                &format!("pipelines/{pipeline}.toml"),
                "--input",
                &format!("fixtures/{pipeline}/{file}"),
                "--out",
            ])
            .arg(out.path()),
        0,
    );
    let valid: Vec<u64> = read_csv(&out.path().join("valid.csv"))[1..]
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    let want_valid: Vec<u64> =
        expected["valid"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(valid, want_valid, "{pipeline}/{file}: valid lines");

    let rejects = read_csv(&out.path().join("rejects.csv"));
    assert_eq!(&rejects[0][..4], ["line", "field", "rule", "message"]);
    let got: BTreeMap<String, (String, String)> =
        rejects[1..].iter().map(|r| (r[0].clone(), (r[2].clone(), r[1].clone()))).collect();
    let want_rejects: BTreeMap<String, (String, String)> = expected["rejects"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (k.clone(), (v["rule"].as_str().unwrap().into(), v["field"].as_str().unwrap().into()))
        })
        .collect();
    assert_eq!(got, want_rejects, "{pipeline}/{file}: rejects (line → rule, field)");

    let dups = read_csv(&out.path().join("duplicates.csv"));
    assert_eq!(&dups[0][..2], ["line", "duplicate_of_line"]);
    let got: BTreeMap<String, u64> =
        dups[1..].iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect();
    let want: BTreeMap<String, u64> = expected["duplicates"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, want, "{pipeline}/{file}: duplicates");

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let c = &report["counts"];
    assert_eq!(c["valid"].as_u64().unwrap() as usize, want_valid.len());
    assert_eq!(c["rejected"].as_u64().unwrap() as usize, want_rejects.len());
    assert_eq!(
        c["read"].as_u64().unwrap(),
        c["valid"].as_u64().unwrap()
            + c["rejected"].as_u64().unwrap()
            + c["duplicates"].as_u64().unwrap()
    );
    assert_eq!(report["reconciled"], Value::Bool(true));
    assert_eq!(report["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn every_fixture_gives_the_expected_outcome() {
    for pipeline in PIPELINES {
        let text =
            std::fs::read_to_string(root().join(format!("fixtures/{pipeline}/expected.json")))
                .unwrap();
        let expected: Value = serde_json::from_str(&text).unwrap();
        for (file, exp) in expected.as_object().unwrap() {
            check_fixture(pipeline, file, exp);
        }
    }
}

#[test]
fn normalised_values_in_valid_csv() {
    let out = tempfile::tempdir().unwrap();
    run_expect(
        elicence()
            .args([
                "validate",
                "pipelines/food-business-permit.toml",
                "--input",
                "fixtures/food-business-permit/export-gbk.csv",
                "--out",
            ])
            .arg(out.path()),
        0,
    );
    let rows = read_csv(&out.path().join("valid.csv"));
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // Row 2 had full-width codes and a 年月日 date; row 3 a 〇-style Chinese date.
    let r2 = &rows[2];
    assert!(r2[col("许可证编号")].starts_with("JY2"));
    assert_eq!(r2[col("发证日期")], "2017-04-24");
    assert_eq!(
        r2[col("经营者名称")],
        "长春市朝阳区老张家（红旗街）饺子馆",
        "names are never NFKC-folded"
    );
    assert_eq!(rows[3][col("有效期至")], "2022-04-23");
    // Row 5: a 15-digit ID upgraded, the original kept in notes.
    let r5 = &rows[5];
    assert_eq!(r5[col("法定代表人身份证号")].len(), 18);
    assert!(r5[col("notes")].contains("220102490708271"));
    // Row 6: a GB18030-only character survives, NBSP/U+3000 trimmed, lowercase x upper-cased.
    let r6 = &rows[6];
    assert_eq!(r6[col("经营者名称")], "长春市朝阳区䶮记烧烤店");
    assert!(r6[col("法定代表人身份证号")].ends_with('X'));
    assert_eq!(
        r6[col("issuer_code")],
        "11220104MB1875524M",
        "an old issuer name maps to its successor's code"
    );
}

#[test]
fn max_reject_rate_fails_the_run() {
    run_expect(
        elicence().args([
            "validate",
            "pipelines/food-business-permit.toml",
            "--input",
            "fixtures/food-business-permit/export-utf8.csv",
            "--max-reject-rate",
            "0.1",
        ]),
        5,
    );
}

#[test]
fn broken_pipeline_reports_every_problem_and_reads_nothing() {
    let out = run_expect(
        elicence().args([
            "validate",
            "fixtures/broken-pipeline.toml",
            "--input",
            "does-not-exist.csv",
        ]),
        3,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["column[1].field", "source.encoding", "status", "issuer.known[0].code"] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
    assert!(err.contains("broken-pipeline.toml:"), "{err}");
}

#[test]
fn unreadable_input_exits_4() {
    let out = run_expect(
        elicence().args([
            "validate",
            "pipelines/food-business-permit.toml",
            "--input",
            "fixtures/hostile/not-a-workbook.xlsx",
        ]),
        4,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-workbook.xlsx"));
}

#[test]
fn catalog_check_passes_on_the_shipped_catalog() {
    let out = run_expect(elicence().args(["catalog", "check"]), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 licence types"));
}

#[test]
fn catalog_check_lists_every_error_of_a_broken_catalog() {
    let out = run_expect(
        elicence().args(["catalog", "check", "--dir", "fixtures/broken-catalog/catalog"]),
        3,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // Problems from both files, each with file:line: key.
    for needle in [
        "bad-codes.toml:2: code",
        "bad-codes.toml:9: definer.uscc",
        "bad-fields.toml:",
        "field[1].kind",
        "field[2].values",
        "missing required field \"issue_date\"",
        "syntax.toml:2:",
    ] {
        assert!(text.contains(needle), "{needle} missing in:\n{text}");
    }
}

/// Without `--out` the engine checks rows without building their licences: the counts and the
/// rejects by rule must be exactly those of a run that writes every file, on a generated export
/// with every kind of defect and with duplicates.
#[test]
fn validate_without_files_counts_exactly_as_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.csv");
    run_expect(
        elicence()
            .args(["gen", "pipelines/food-business-permit.toml", "--rows", "3000"])
            .args(["--format", "csv", "--defects", "0.3", "--seed", "11", "--out"])
            .arg(&input),
        0,
    );
    let report = |out: Option<&std::path::Path>| -> Value {
        let mut cmd = elicence();
        cmd.args(["validate", "pipelines/food-business-permit.toml", "--json", "--input"])
            .arg(&input);
        if let Some(out) = out {
            cmd.arg("--out").arg(out);
        }
        serde_json::from_slice(&run_expect(&mut cmd, 0).stdout).unwrap()
    };
    let with_files = report(Some(&dir.path().join("out")));
    let without = report(None);
    assert_eq!(with_files["counts"], without["counts"]);
    assert_eq!(with_files["rejects_by_rule"], without["rejects_by_rule"]);
    let c = &without["counts"];
    assert!(c["duplicates"].as_u64().unwrap() > 0, "{c}");
    assert!(c["rejected"].as_u64().unwrap() > 300, "{c}");
    assert_eq!(
        read_csv(&dir.path().join("out/valid.csv")).len() as u64 - 1,
        c["valid"].as_u64().unwrap()
    );
}
