//! Revocation in step with the paper (issue 16, Art. 10): a pipeline maps the paper licence's
//! 注销日期 and 注销原因; the registry keeps that date as the revocation's effective date (the
//! processing time stays in the audit trail), `verify --data` and `query` report it, and a
//! revocation dated after the run's day is rejected (`future_date`). From a GBK CSV and from an
//! xlsx workbook (written by openpyxl, as the city's systems export them).

mod util;

use std::path::{Path, PathBuf};

use serde_json::Value;
use util::{copy_dir, elicence, root, run_expect};

/// A copy of `pipelines/` whose food pipeline maps 注销日期 and 注销原因.
fn pipelines_with_revocation_dates(dir: &Path) -> PathBuf {
    let pipelines = dir.join("pipelines");
    copy_dir(&root().join("pipelines"), &pipelines);
    // The layouts name the seal image relative to themselves.
    let seals = dir.join("fixtures/seals");
    std::fs::create_dir_all(&seals).unwrap();
    std::fs::copy(root().join("fixtures/seals/seal.png"), seals.join("seal.png")).unwrap();
    let path = pipelines.join("food-business-permit.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "revoked = [\"注销\", \"吊销\", \"撤销\"]",
        "revoked = [\"注销\", \"吊销\", \"撤销\"]\nrevoked_on = \"注销日期\"\nrevoked_reason = \"注销原因\"",
    );
    assert!(text.contains("revoked_on"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Rows of the export (header first): three licences of the fixture, then a revocation of the
/// first dated 2025-06-30 with a reason (written as a Chinese date), and a revocation of the
/// second dated after the run's day (2026-11-27).
fn rows() -> Vec<Vec<String>> {
    let text =
        std::fs::read_to_string(root().join("fixtures/food-business-permit/export-utf8.csv"))
            .unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let all: Vec<Vec<String>> =
        reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    let mut header = all[0].clone();
    header.extend(["注销日期".to_owned(), "注销原因".to_owned()]);
    let status = header.iter().position(|h| h == "状态").unwrap();
    let pick = |no: &str| {
        let mut r = all.iter().find(|r| r[0] == no).unwrap().clone();
        r.extend([String::new(), String::new()]);
        r
    };
    let (a, b) = (pick("JY12201040000074"), pick("JY12201040000016"));
    let mut revoke_a = a.clone();
    revoke_a[status] = "注销".to_owned();
    let n = revoke_a.len();
    revoke_a[n - 2] = "2025年6月30日".to_owned();
    revoke_a[n - 1] = "申请人主动歇业".to_owned();
    let mut revoke_b = b.clone();
    revoke_b[status] = "注销".to_owned();
    revoke_b[n - 2] = "2027-01-15".to_owned();
    vec![header, a, b, revoke_a, revoke_b]
}

fn run(pipeline: &Path, input: &Path, data: &Path) -> Value {
    let o = run_expect(
        elicence()
            .arg("run")
            .arg(pipeline)
            .arg("--input")
            .arg(input)
            .args(["--json", "--keys"])
            .arg(root().join("fixtures/keys"))
            .arg("--data")
            .arg(data),
        0,
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn check(pipeline: &Path, input: &Path, data: &Path) {
    let report = run(pipeline, input, data);
    assert_eq!(report["counts"]["revoked"], 1, "{report}");
    assert_eq!(report["rejects_by_rule"]["future_date"], 1, "{report}");
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    let (identifier, on, at, reason): (String, String, String, String) = conn
        .query_row(
            "SELECT identifier, revoked_on, revoked_at, revoked_reason FROM versions
             WHERE revoked_at IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert!(identifier.contains("JY12201040000074"));
    assert_eq!(on, "2025-06-30", "the paper's date is the effective date");
    assert!(at.starts_with("2026-11-27"), "the processing time is kept as well: {at}");
    assert!(reason.starts_with("申请人主动歇业"), "{reason}");
    let details: String = conn
        .query_row("SELECT details FROM audit_log WHERE action = 'revoked'", [], |r| r.get(0))
        .unwrap();
    assert!(details.contains("2025-06-30"), "{details}");

    // verify --data reports the effective date of the stored e-licence.
    let sha: String = conn
        .query_row(
            "SELECT vf.sha256 FROM version_files vf JOIN versions v ON v.id = vf.version_id
             WHERE v.identifier = ?1 AND vf.kind = 'pdf'",
            [&identifier],
            |r| r.get(0),
        )
        .unwrap();
    let pdf = data.join(format!("store/{}/{}/{sha}.pdf", &sha[0..2], &sha[2..4]));
    let o = run_expect(
        elicence()
            .arg("verify")
            .arg(&pdf)
            .args(["--json", "--keys"])
            .arg(root().join("fixtures/keys"))
            .arg("--data")
            .arg(data),
        1,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    assert_eq!(v["registry_status"]["status"], "revoked", "{v}");
    assert_eq!(v["registry_status"]["effective"], "2025-06-30", "{v}");
}

#[test]
fn revocation_dates_from_a_gbk_export_are_the_effective_dates() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipelines_with_revocation_dates(dir.path());
    let mut text = String::new();
    for row in rows() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&row).unwrap();
        text.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
    }
    let (gbk, _, lossy) = encoding_rs::GBK.encode(&text);
    assert!(!lossy);
    let input = dir.path().join("export-gbk.csv");
    std::fs::write(&input, &gbk).unwrap();
    check(&pipeline, &input, &dir.path().join("data"));
}

#[test]
fn revocation_dates_from_an_xlsx_export_are_the_effective_dates() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = pipelines_with_revocation_dates(dir.path());
    let input = dir.path().join("export.xlsx");
    let json = serde_json::to_string(&rows()).unwrap();
    // A title row above the headers, as the exports have; the 2025-06-30 revocation as a real
    // date cell.
    let script = r#"
import json, sys, datetime, openpyxl
rows = json.loads(sys.argv[2])
wb = openpyxl.Workbook()
ws = wb.active
ws.append(["食品经营许可证注销台账"])
for r in rows:
    ws.append(r)
ws.cell(row=5, column=len(rows[0]) - 1).value = datetime.datetime(2025, 6, 30)
ws.cell(row=5, column=len(rows[0]) - 1).number_format = "yyyy-mm-dd"
wb.save(sys.argv[1])
"#;
    let o = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&input)
        .arg(json)
        .output()
        .expect("python3 with openpyxl (.ci/setup)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check(&pipeline, &input, &dir.path().join("data"));
}
