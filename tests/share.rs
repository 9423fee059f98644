//! Sharing within rights (issue 6), through the real binary on a real SQLite registry loaded from
//! the food-business-permit fixture: departments and credentials, rights per sharing mode,
//! masking, query by every key, copies for use, check requests, stats, and every refusal checked
//! in the audit trail (which must still verify).
//!
//! Only the food, business-licence and special-operations pipelines have fixtures. To exercise
//! conditional and not-shared types, a test copies `pipelines/` (and the seal its layouts name)
//! into its scratch folder, rewrites the `[sharing]` table of the food type there, loads the
//! fixture through that copy and points `--catalog` at the copied catalog.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use util::{copy_dir, elicence, root, run_expect};

/// 长春市医疗保障局: in the drug type's scope (and the conditional food scope below).
const MED: &str = "11220100MB18300819";
/// 长春市卫生健康委员会: also in scope.
const HEALTH: &str = "11220100MB15012279";
/// 长春市市场监督管理局: outside every conditional scope used here.
const MARKET: &str = "11220100MB1560013P";
/// 长春市朝阳区市场监督管理局: issuer of the food fixture's licences.
const ISSUER: &str = "11220104MB1875524M";

/// First licence of the food fixture: version 2 is current (a 变更 row).
const HOLDER: &str = "91220104MA00001708";
const NUMBER: &str = "JY12201040000016";
const CURRENT: &str =
    "1.2.156.3005.2.11100000MB0143028R901.11220104MB1875524M.JY12201040000016.002.8";
/// Its legal representative's citizen ID and name, as in the export.
const LEGAL_REP_ID: &str = "220104198005120318";
const LEGAL_REP: &str = "张伟";

struct Fixture {
    dir: tempfile::TempDir,
    catalog: PathBuf,
}

impl Fixture {
    /// Loads the food fixture; `sharing` (TOML lines) replaces the food type's `[sharing]`.
    fn new(sharing: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipeline = match sharing {
            None => root().join("pipelines/food-business-permit.toml"),
            Some(lines) => {
                let copy = dir.path().join("pipelines");
                copy_dir(&root().join("pipelines"), &copy);
                let seals = dir.path().join("fixtures/seals");
                std::fs::create_dir_all(&seals).expect("seals dir");
                std::fs::copy(root().join("fixtures/seals/seal.png"), seals.join("seal.png"))
                    .expect("seal");
                let path = copy.join("catalog/food-business-permit.toml");
                let text = std::fs::read_to_string(&path).expect("food catalog");
                let replaced = text.replace("[sharing]\nmode = \"unconditional\"", lines);
                assert_ne!(replaced, text, "food catalog has the expected [sharing] table");
                std::fs::write(&path, replaced).expect("write catalog");
                copy.join("food-business-permit.toml")
            }
        };
        let catalog = pipeline.parent().expect("pipelines dir").join("catalog");
        let f = Fixture { dir, catalog };
        run_expect(
            f.cmd()
                .arg("run")
                .arg(&pipeline)
                .args(["--input", "fixtures/food-business-permit/export-utf8.csv"])
                .args(["--keys", "fixtures/keys"]),
            0,
        );
        f
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// elicence with this fixture's registry and catalog.
    fn cmd(&self) -> Command {
        let mut c = elicence();
        c.env("ELICENCE_DATA", self.data());
        c.env("ELICENCE_CATALOG", &self.catalog);
        c.env_remove("ELICENCE_CREDENTIAL");
        c
    }

    /// Adds a department and returns the file holding its printed credential.
    fn add_dept(&self, code: &str, name: &str) -> PathBuf {
        let out = run_expect(
            self.cmd()
                .args(["dept", "add", code, "--name", name, "--level", "prefectural"])
                .args(["--region", "220100"]),
            0,
        );
        let credential = String::from_utf8(out.stdout).expect("utf-8");
        assert_eq!(credential.trim().len(), 64, "one credential line: {credential:?}");
        let file = self.dir.path().join(format!("{code}.cred"));
        std::fs::write(&file, credential).expect("write credential");
        file
    }

    /// `elicence <args> --as code --credential-file cred`.
    fn as_dept(&self, code: &str, cred: &Path, args: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(args).args(["--as", code]).arg("--credential-file").arg(cred);
        c
    }

    fn query(&self, code: &str, cred: &Path, by: &[&str], expect: i32) -> (Value, String) {
        let mut c = self.as_dept(code, cred, &["query", "--reason", "医保定点资格审核", "--json"]);
        let out = run_expect(c.args(by), expect);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (json, stdout + &String::from_utf8_lossy(&out.stderr))
    }

    /// Every audit entry as (action, operator, subject, reason, details).
    fn audit(&self) -> Vec<(String, String, String, Option<String>, Value)> {
        let conn = rusqlite::Connection::open(self.data().join("registry.sqlite")).expect("db");
        let mut stmt = conn
            .prepare(
                "SELECT action, operator, subject, reason, details FROM audit_log ORDER BY seq",
            )
            .expect("prepare");
        stmt.query_map([], |r| {
            let details: String = r.get(4)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                serde_json::from_str(&details).unwrap_or(Value::Null),
            ))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// The refusals recorded, as (department, refusal) in order.
    fn denials(&self) -> Vec<(String, String)> {
        self.audit()
            .into_iter()
            .filter(|e| e.0 == "share_denied")
            .map(|e| {
                (
                    e.4["department"].as_str().unwrap_or_default().to_string(),
                    e.4["refusal"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// `elicence audit verify` passes, and no audit entry holds protected field data.
    fn audit_intact(&self) {
        run_expect(self.cmd().args(["audit", "verify"]), 0);
        let conn = rusqlite::Connection::open(self.data().join("registry.sqlite")).expect("db");
        let leaked: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE (details LIKE ?1 OR details LIKE ?2
                    OR IFNULL(reason, '') LIKE ?1) AND action NOT IN ('issued', 'changed', 'revoked')",
                [format!("%{LEGAL_REP_ID}%"), format!("%{LEGAL_REP}%")],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(leaked, 0, "audit entries of sharing hold no field data");
    }
}

fn field<'a>(licence: &'a Value, key: &str) -> &'a Value {
    licence["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["key"] == key))
        .unwrap_or(&Value::Null)
}

#[test]
fn departments_store_only_a_salted_hash_and_list_no_credentials() {
    let f = Fixture::new(None);
    let cred = f.add_dept(MED, "长春市医疗保障局");
    let credential = std::fs::read_to_string(&cred).expect("cred");
    let db = std::fs::read(f.data().join("registry.sqlite")).expect("db");
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains(credential.trim()), "the credential itself is not stored");
    let conn = rusqlite::Connection::open(f.data().join("registry.sqlite")).expect("db");
    let hash: String = conn
        .query_row("SELECT credential_hash FROM departments WHERE code = ?1", [MED], |r| r.get(0))
        .expect("row");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // Twice: refused. A bad code, a control character in the name: clear errors.
    let again = run_expect(
        f.cmd()
            .args(["dept", "add", MED, "--name", "x", "--level", "county", "--region", "220100"]),
        1,
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("registered already"));
    let bad = run_expect(
        f.cmd().args([
            "dept",
            "add",
            "' OR 1=1 --",
            "--name",
            "x",
            "--level",
            "county",
            "--region",
            "220100",
        ]),
        1,
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unified social credit code"));
    let ctl = run_expect(
        f.cmd().args([
            "dept",
            "add",
            HEALTH,
            "--name",
            "卫健委\u{1b}[2J",
            "--level",
            "county",
            "--region",
            "220100",
        ]),
        1,
    );
    assert!(String::from_utf8_lossy(&ctl.stderr).contains("control character"));

    // A credential of the administrator's choosing, from a file.
    let chosen = f.dir.path().join("chosen.cred");
    std::fs::write(&chosen, "a-long-enough-secret-value\n").expect("write");
    let out = run_expect(
        f.cmd()
            .args([
                "dept",
                "add",
                HEALTH,
                "--name",
                "长春市卫生健康委员会",
                "--level",
                "prefectural",
            ])
            .args(["--region", "220100", "--credential-file"])
            .arg(&chosen),
        0,
    );
    assert!(out.stdout.is_empty(), "a chosen credential is not printed");
    f.query(HEALTH, &chosen, &["--id", CURRENT], 0);

    let list = run_expect(f.cmd().args(["dept", "list", "--json"]), 0);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(MED) && text.contains(HEALTH));
    assert!(!text.contains("argon2") && !text.contains(credential.trim()));
    f.audit_intact();
}

#[test]
fn unconditional_query_by_every_key_masks_personal_data_until_granted() {
    let f = Fixture::new(None);
    let cred = f.add_dept(MARKET, "长春市市场监督管理局");
    let digest = util::face_digest(&f.data().join("store"), CURRENT).to_ascii_uppercase();
    let qr = format!("ELIC1:{CURRENT}:{digest}");
    for by in [
        vec!["--id", CURRENT],
        vec!["--holder", HOLDER],
        vec!["--number", NUMBER],
        vec!["--qr", qr.as_str()],
    ] {
        let (answer, raw) = f.query(MARKET, &cred, &by, 0);
        assert!(!raw.contains(LEGAL_REP_ID) && !raw.contains(LEGAL_REP), "{by:?}: {raw}");
        let licences = answer["licences"].as_array().expect("licences");
        let current = licences.iter().find(|l| l["identifier"] == CURRENT).expect("current");
        // Valid to 2022-04-23, asked on 2026-11-27: the current version, expired.
        assert_eq!(
            current["registry_status"],
            serde_json::json!({"status": "expired", "on": "2022-04-23"})
        );
        assert_eq!(current["access"], "unconditional");
        assert_eq!(field(current, "legal_rep_id")["value"], "2201**********0318");
        assert_eq!(field(current, "legal_rep_id")["masked"], true);
        assert_eq!(field(current, "legal_rep")["value"], "张**");
        assert_eq!(field(current, "holder_code")["value"], HOLDER);
    }
    // A QR code whose digest is not the version's (an altered or invented face) answers
    // nothing, in either form; a lower-case digest and the address form are read alike.
    for bad in [
        format!("ELIC1:{CURRENT}:0000000000000000"),
        format!("https://zz.example.gov.cn/v/{CURRENT}?d=0000000000000000"),
    ] {
        let (answer, raw) = f.query(MARKET, &cred, &["--qr", &bad], 2);
        assert!(answer.is_null() && raw.contains("is not that of"), "{raw}");
    }
    let digest = util::face_digest(&f.data().join("store"), CURRENT);
    let address = format!("https://zz.example.gov.cn/v/{CURRENT}?d={digest}");
    f.query(MARKET, &cred, &["--qr", &address], 0);
    // The superseded version answers with its status.
    let (answer, _) = f.query(MARKET, &cred, &["--holder", HOLDER], 0);
    assert!(answer["licences"].as_array().expect("licences").iter().any(|l| {
        l["registry_status"]["status"] == "superseded" && l["registry_status"]["by"] == CURRENT
    }));
    // Text output masks too.
    let text = run_expect(
        &mut f.as_dept(MARKET, &cred, &["query", "--reason", "执法检查", "--id", CURRENT]),
        0,
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("2201**********0318") && !text.contains(LEGAL_REP_ID), "{text}");

    // A grant without unmasking changes nothing; with unmasking, the values are in clear.
    run_expect(f.cmd().args(["dept", "grant", MARKET, "--type", "food-business-permit"]), 0);
    let (answer, _) = f.query(MARKET, &cred, &["--id", CURRENT], 0);
    assert_eq!(field(&answer["licences"][0], "legal_rep_id")["masked"], true);
    run_expect(
        f.cmd().args(["dept", "grant", MARKET, "--type", "11100000MB0143028R901", "--unmask"]),
        0,
    );
    let (answer, _) = f.query(MARKET, &cred, &["--id", CURRENT], 0);
    assert_eq!(field(&answer["licences"][0], "legal_rep_id")["value"], LEGAL_REP_ID);
    assert_eq!(answer["licences"][0]["unmasked"], true);

    // Every query is audited with department, reason and identifiers only.
    let queries: Vec<_> = f.audit().into_iter().filter(|e| e.0 == "share_query").collect();
    // One more for the QR address form (the refused digests are not answers).
    assert_eq!(queries.len(), 9);
    for q in &queries {
        assert_eq!(q.1, MARKET);
        assert!(q.3.is_some(), "reason recorded");
        assert!(q.4["returned"].as_array().is_some_and(|r| !r.is_empty()));
    }
    // No match: exit 1, audited as a query that returned nothing.
    f.query(MARKET, &cred, &["--number", "JY19999999999999"], 1);
    f.audit_intact();
}

#[test]
fn conditional_type_scope_and_issuer_only_others_not_permitted_and_audited() {
    let f = Fixture::new(Some(&format!(
        "[sharing]\nmode = \"conditional\"\nscope = [\"{MED}\", \"{HEALTH}\"]"
    )));
    let med = f.add_dept(MED, "长春市医疗保障局");
    let market = f.add_dept(MARKET, "长春市市场监督管理局");
    let issuer = f.add_dept(ISSUER, "长春市朝阳区市场监督管理局");

    let (answer, _) = f.query(MED, &med, &["--id", CURRENT], 0);
    assert_eq!(answer["licences"][0]["access"], "in_scope");
    let (answer, _) = f.query(ISSUER, &issuer, &["--id", CURRENT], 0);
    assert_eq!(answer["licences"][0]["access"], "issuer");
    // The issuer too sees protected fields masked without an unmasking grant.
    assert_eq!(field(&answer["licences"][0], "legal_rep_id")["masked"], true);

    for by in [vec!["--id", CURRENT], vec!["--holder", HOLDER], vec!["--number", NUMBER]] {
        let (answer, raw) = f.query(MARKET, &market, &by, 6);
        assert_eq!(answer, Value::Null, "no data for {by:?}");
        assert!(raw.contains("not permitted"), "{raw}");
        assert!(!raw.contains(LEGAL_REP) && !raw.contains("禾丰"), "{raw}");
    }
    let denials = f.denials();
    assert_eq!(denials.len(), 3);
    assert!(denials.iter().all(|(d, r)| d == MARKET && r == "not_in_scope"), "{denials:?}");
    // Copies and check requests follow the same rights.
    let out = f.dir.path().join("copy.pdf");
    let mut c = f.as_dept(MARKET, &market, &["copy", CURRENT, "--reason", "执法"]);
    run_expect(
        c.arg("--out").arg(&out).args(["--expires", "2026-12-31", "--keys", "fixtures/keys"]),
        6,
    );
    assert!(!out.exists());
    run_expect(&mut f.as_dept(MARKET, &market, &["check-request", CURRENT, "--reason", "核对"]), 6);
    assert_eq!(f.denials().len(), 5);
    f.audit_intact();
}

#[test]
fn not_shared_type_issuer_only() {
    let f = Fixture::new(Some("[sharing]\nmode = \"not_shared\""));
    let med = f.add_dept(MED, "长春市医疗保障局");
    let issuer = f.add_dept(ISSUER, "长春市朝阳区市场监督管理局");
    let (_, raw) = f.query(MED, &med, &["--id", CURRENT], 6);
    assert!(raw.contains("not permitted"));
    let (answer, _) = f.query(ISSUER, &issuer, &["--holder", HOLDER], 0);
    assert!(answer["licences"].as_array().is_some_and(|l| l.len() == 2));
    assert_eq!(f.denials(), vec![(MED.to_string(), "not_shared".to_string())]);
    f.audit_intact();
}

#[test]
fn disabled_unknown_wrong_credential_missing_credential_or_reason_refused_and_audited() {
    let f = Fixture::new(None);
    let med = f.add_dept(MED, "长春市医疗保障局");
    let health = f.add_dept(HEALTH, "长春市卫生健康委员会");
    run_expect(f.cmd().args(["dept", "disable", HEALTH]), 0);

    // Disabled.
    let (_, raw) = f.query(HEALTH, &health, &["--id", CURRENT], 6);
    assert!(raw.contains("disabled"), "{raw}");
    // Wrong credential (another department's), and unknown department: one message for both.
    let (_, raw) = f.query(MED, &health, &["--id", CURRENT], 6);
    assert!(raw.contains("could not be authenticated"), "{raw}");
    let (_, raw) = f.query(MARKET, &med, &["--id", CURRENT], 6);
    assert!(raw.contains("could not be authenticated"), "{raw}");
    // No credential at all.
    let out =
        run_expect(f.cmd().args(["query", "--as", MED, "--reason", "审核", "--id", CURRENT]), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no credential"));
    // Credential from the environment works.
    let credential = std::fs::read_to_string(&med).expect("cred");
    run_expect(
        f.cmd()
            .env("ELICENCE_CREDENTIAL", credential.trim())
            .args(["query", "--as", MED, "--reason", "审核", "--id", CURRENT]),
        0,
    );
    // Missing or blank reason.
    let out = run_expect(&mut f.as_dept(MED, &med, &["query", "--id", CURRENT]), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason is required"));
    run_expect(&mut f.as_dept(MED, &med, &["query", "--reason", "  ", "--id", CURRENT]), 2);

    let refusals: Vec<String> = f.denials().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        refusals,
        [
            "disabled",
            "wrong_credential",
            "unknown_department",
            "no_credential",
            "bad_input",
            "bad_input"
        ]
    );
    f.audit_intact();
}

#[test]
fn oversized_and_injection_shaped_input_gets_a_clear_error_and_is_audited() {
    let f = Fixture::new(None);
    let med = f.add_dept(MED, "长春市医疗保障局");
    let huge = "事".repeat(10 * 1024);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--as", "' OR 1=1 --", "--reason", "审核", "--id", CURRENT],
            "unified social credit code",
        ),
        (vec!["--as", MED, "--reason", &huge, "--id", CURRENT], "at most 200"),
        (vec!["--as", MED, "--reason", "审核\u{7}\u{1b}[2J", "--id", CURRENT], "control character"),
        (
            vec!["--as", MED, "--reason", "审核", "--id", "' OR 1=1 --"],
            "not a GB/T 36904 identifier",
        ),
        (vec!["--as", MED, "--reason", "审核", "--holder", "' OR 1=1 --"], "not allowed"),
        (
            vec!["--as", MED, "--reason", "审核", "--number", "x'; DROP TABLE versions; --"],
            "not allowed",
        ),
        (vec!["--as", MED, "--reason", "审核", "--qr", "ELIC1:' OR 1=1 --:0"], "--qr"),
    ];
    for (args, message) in &cases {
        let out = run_expect(f.cmd().arg("query").args(args).arg("--credential-file").arg(&med), 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let denials = f.denials();
    assert_eq!(denials.len(), cases.len());
    assert!(denials.iter().all(|(_, r)| r == "bad_input"), "{denials:?}");
    assert_eq!(denials[0].0, "' OR 1=1 --", "the named department is recorded as typed");
    // The oversized reason is not copied whole into the trail.
    let longest =
        f.audit().iter().map(|e| e.4.to_string().len() + e.3.as_ref().map_or(0, String::len)).max();
    assert!(longest.is_some_and(|n| n < 2048), "{longest:?}");
    // The registry is intact.
    run_expect(&mut f.as_dept(MED, &med, &["query", "--reason", "审核", "--id", CURRENT]), 0);
    f.audit_intact();
}

#[test]
fn copy_for_use_is_watermarked_signed_recorded_and_expires() {
    let f = Fixture::new(None);
    let med = f.add_dept(MED, "长春市医疗保障局");
    let out = f.dir.path().join("copy.pdf");
    let copy = |c: &mut Command| {
        c.arg("--out").arg(&out).args(["--expires", "2026-12-31", "--keys", "fixtures/keys"]);
    };
    // Food licences carry personal fields and the face shows them: a copy needs unmasking.
    let mut c = f.as_dept(MED, &med, &["copy", CURRENT, "--reason", "医保定点审核"]);
    copy(&mut c);
    let refused = run_expect(&mut c, 6);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("NeedsUnmask"));
    assert!(!out.exists());
    run_expect(
        f.cmd().args(["dept", "grant", MED, "--type", "food-business-permit", "--unmask"]),
        0,
    );
    // An expiry in the past is bad input.
    let mut c = f.as_dept(MED, &med, &["copy", CURRENT, "--reason", "医保定点审核"]);
    run_expect(
        c.arg("--out").arg(&out).args(["--expires", "2020-01-01", "--keys", "fixtures/keys"]),
        2,
    );
    let mut c = f.as_dept(MED, &med, &["copy", CURRENT, "--reason", "医保定点审核"]);
    copy(&mut c);
    run_expect(&mut c, 0);

    let bytes = std::fs::read(&out).expect("copy written");
    let conn = rusqlite::Connection::open(f.data().join("registry.sqlite")).expect("db");
    let (sha, dept, expires): (String, String, String) = conn
        .query_row("SELECT sha256, department, expires FROM copies", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("copy recorded");
    assert_eq!((dept.as_str(), expires.as_str()), (MED, "2026-12-31"));
    assert_eq!(sha, elicence::registry::sha256_hex(&bytes));
    let original: i64 = conn
        .query_row("SELECT COUNT(*) FROM files WHERE sha256 = ?1", [&sha], |r| r.get(0))
        .expect("count");
    assert_eq!(original, 0, "the copy is not the stored original");

    // The watermark is on the page, in text that extracts.
    if let Ok(o) = Command::new("pdftotext").arg(&out).arg("-").output() {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("仅供医保定点审核使用 · 长春市医疗保障局 · 有效期至 2026-12-31"),
            "{text}"
        );
    }
    // verify: authentic, a copy for use; expired after its date. The licence it copies is
    // expired (valid to 2022-04-23), which `licence` says and makes the exit code 1.
    let v =
        run_expect(f.cmd().arg("verify").arg(&out).args(["--keys", "fixtures/keys", "--json"]), 1);
    let report: Value = serde_json::from_slice(&v.stdout).expect("json");
    assert_eq!(report["status"], "authentic");
    assert_eq!(report["registry_status"]["status"], "copy");
    assert_eq!(report["registry_status"]["licence"]["status"], "expired");
    assert_eq!(report["registry_status"]["for"], MED);
    assert_eq!(report["registry_status"]["expires"], "2026-12-31");
    assert_eq!(report["identifier"], CURRENT);
    let v = run_expect(
        f.cmd().env("ELICENCE_NOW", "2027-01-01T08:00:00Z").arg("verify").arg(&out).args([
            "--keys",
            "fixtures/keys",
            "--json",
        ]),
        1,
    );
    let report: Value = serde_json::from_slice(&v.stdout).expect("json");
    assert_eq!(report["registry_status"]["status"], "expired");
    // Tampering with the copy breaks its signature.
    let mut tampered = bytes.clone();
    if let Some(i) = tampered.windows(4).position(|w| w == b"/GSW") {
        tampered[i + 3] = b'X';
    }
    let t = f.dir.path().join("tampered.pdf");
    std::fs::write(&t, tampered).expect("write");
    run_expect(f.cmd().arg("verify").arg(&t).args(["--keys", "fixtures/keys"]), 1);

    let copies: Vec<_> = f.audit().into_iter().filter(|e| e.0 == "share_copy").collect();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].2, CURRENT);
    f.audit_intact();
}

#[test]
fn check_requests_go_to_the_issuer_who_alone_answers_and_stats_count_them() {
    let f = Fixture::new(None);
    let med = f.add_dept(MED, "长春市医疗保障局");
    let issuer = f.add_dept(ISSUER, "长春市朝阳区市场监督管理局");
    let out = run_expect(
        &mut f.as_dept(MED, &med, &["check-request", CURRENT, "--reason", "经营场所与现场不符"]),
        0,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("#1 sent to {ISSUER}")));
    // Missing reason: refused and audited.
    run_expect(&mut f.as_dept(MED, &med, &["check-request", CURRENT]), 2);

    let list =
        run_expect(&mut f.as_dept(ISSUER, &issuer, &["check-request", "--list", "--json"]), 0);
    let open: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(open.as_array().map(Vec::len), Some(1));
    assert_eq!(open[0]["requester"], MED);

    // Only the issuer answers.
    let answer = ["check-answer", "1", "--result", "consistent", "--note", "与登记档案一致"];
    run_expect(&mut f.as_dept(MED, &med, &answer), 6);
    run_expect(f.as_dept(ISSUER, &issuer, &answer).env("ELICENCE_NOW", "2026-11-27T12:00:00Z"), 0);
    run_expect(&mut f.as_dept(ISSUER, &issuer, &answer), 1);
    let list = run_expect(&mut f.as_dept(MED, &med, &["check-request", "--list", "--json"]), 0);
    assert_eq!(serde_json::from_slice::<Value>(&list.stdout).expect("json"), Value::Array(vec![]));

    let stats = run_expect(f.cmd().args(["stats", "--json"]), 0);
    let stats: Value = serde_json::from_slice(&stats.stdout).expect("json");
    let checks = &stats["check_requests"];
    assert_eq!((checks["open"].as_u64(), checks["answered"].as_u64()), (Some(0), Some(1)));
    assert_eq!(checks["mean_seconds_to_answer"].as_f64(), Some(7200.0));
    assert_eq!(stats["consumers"][MED]["denials"].as_u64(), Some(2));
    let issuers = stats["issuers"].as_array().expect("issuer figures");
    let total = |k: &str| issuers.iter().filter_map(|i| i[k].as_u64()).sum::<u64>();
    // The fixture's run: 7 issued, 1 changed, 1 revoked.
    assert_eq!((total("issued"), total("changed"), total("revoked")), (7, 1, 1));
    assert!(issuers.iter().any(|i| i["issuer_code"] == ISSUER));
    assert!(stats["rejects"].as_array().is_some_and(|r| !r.is_empty()));
    // --since after everything: nothing counted.
    let later = run_expect(f.cmd().args(["stats", "--json", "--since", "2030-01-01"]), 0);
    let later: Value = serde_json::from_slice(&later.stdout).expect("json");
    assert_eq!(later["check_requests"]["answered"].as_u64(), Some(0));
    assert_eq!(later["consumers"], serde_json::json!({}));

    let actions: Vec<String> = f.audit().into_iter().map(|e| e.0).collect();
    assert!(actions.contains(&"check_request".to_string()));
    assert!(actions.contains(&"check_answer".to_string()));
    f.audit_intact();
}

#[test]
fn rights_come_from_the_published_catalog_not_from_the_callers_catalog() {
    let scope = format!("[sharing]\nmode = \"conditional\"\nscope = [\"{MED}\"]");
    let f = Fixture::new(Some(&scope));
    let market = f.add_dept(MARKET, "长春市市场监督管理局");
    let conn = rusqlite::Connection::open(f.data().join("registry.sqlite")).expect("db");
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("count") };
    // The registry had no catalog: its first run published the pipeline's (as migration 9
    // leaves every existing registry to its first command that reads rights).
    let published: Vec<_> = f.audit().into_iter().filter(|e| e.0 == "catalog_published").collect();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(
        (published[0].1.as_str(), published[0].4["version"].clone()),
        ("migration", json!(1))
    );

    // The issue's bypass: a department outside the scope points --catalog at a catalog that
    // shares the type unconditionally. Still refused, and audited.
    let shipped = root().join("pipelines/catalog");
    let mut c = f.as_dept(MARKET, &market, &["query", "--reason", "执法检查", "--id", CURRENT]);
    run_expect(c.env("ELICENCE_CATALOG", &shipped), 6);
    let mut c = f.as_dept(MARKET, &market, &["query", "--reason", "执法检查", "--id", CURRENT]);
    run_expect(c.arg("--catalog").arg(&shipped), 6);

    // A run whose pipeline's catalog is not the published one stops before anything is
    // written (exit 3) and says how to go on.
    let runs = count("SELECT COUNT(*) FROM runs");
    let run = |pipeline: &Path, extra: &[&str], expect: i32| {
        let mut c = f.cmd();
        c.arg("run").arg(pipeline);
        c.args(["--input", "fixtures/food-business-permit/export-utf8.csv"]);
        c.args(["--keys", "fixtures/keys"]).args(extra);
        c.arg("--out").arg(f.dir.path().join("out"));
        String::from_utf8_lossy(&run_expect(&mut c, expect).stderr).into_owned()
    };
    let err = run(&root().join("pipelines/food-business-permit.toml"), &[], 3);
    assert!(err.contains("is not the one the registry published") && err.contains("--publish"));
    assert_eq!(count("SELECT COUNT(*) FROM runs"), runs, "nothing written");

    // An operator publishes the other catalog: rights follow it, whatever --catalog says.
    let publish = |dir: &Path| -> Value {
        let out = run_expect(
            f.cmd()
                .args(["catalog", "publish", "--operator", "王芳", "--json", "--catalog"])
                .arg(dir),
            0,
        );
        serde_json::from_slice(&out.stdout).expect("json")
    };
    let v = publish(&shipped);
    assert_eq!(
        (&v["version"], &v["published"], &v["operator"]),
        (&json!(2), &json!(true), &json!("王芳"))
    );
    assert_eq!(publish(&shipped)["published"], false, "the same catalog again changes nothing");
    let mut c = f.as_dept(MARKET, &market, &["query", "--reason", "执法检查", "--id", CURRENT]);
    run_expect(&mut c, 0);
    // A broken catalog is not published (exit 3, every problem named).
    let broken = f.dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("x.toml"), "code = ").expect("write");
    let mut c = f.cmd();
    run_expect(c.args(["catalog", "publish", "--catalog"]).arg(&broken), 3);
    // Grants name types of the published catalog too: `--catalog` is not read once one is
    // published (a folder that does not even load changes nothing), and a type it lacks is
    // refused.
    let grant = |licence_type: &str, expect: i32| {
        let mut c = f.cmd();
        c.args(["dept", "grant", MARKET, "--type", licence_type, "--catalog"]).arg(&broken);
        String::from_utf8_lossy(&run_expect(&mut c, expect).stderr).into_owned()
    };
    grant("food-business-permit", 0);
    let err = grant("no-such-type", 1);
    assert!(err.contains("published catalog (version 2)"), "{err}");

    // Now the shipped pipeline runs (its catalog is the published one); the fixture's stops,
    // until --publish publishes it with the run's operator.
    run(&root().join("pipelines/food-business-permit.toml"), &[], 0);
    let fixture_pipeline = f.dir.path().join("pipelines/food-business-permit.toml");
    run(&fixture_pipeline, &[], 3);
    // Its dry run says the same; with --publish it previews and publishes nothing.
    let err = run(&fixture_pipeline, &["--dry-run"], 3);
    assert!(err.contains("is not the one the registry published"), "{err}");
    run(&fixture_pipeline, &["--dry-run", "--publish"], 0);
    assert_eq!(count("SELECT COUNT(*) FROM catalog_versions"), 2, "a dry run publishes nothing");
    run(&fixture_pipeline, &["--publish", "--operator", "李明"], 0);
    assert_eq!(count("SELECT COUNT(*) FROM catalog_versions"), 3);
    let mut c = f.as_dept(MARKET, &market, &["query", "--reason", "执法检查", "--id", CURRENT]);
    run_expect(c.env("ELICENCE_CATALOG", &shipped), 6);
    let operators: Vec<String> =
        f.audit().into_iter().filter(|e| e.0 == "catalog_published").map(|e| e.1).collect();
    assert_eq!(operators, ["migration", "王芳", "李明"]);
    // Published versions are never changed or removed.
    assert!(conn.execute("DELETE FROM catalog_versions", []).is_err());
    assert!(conn.execute("UPDATE catalog_versions SET operator = 'x'", []).is_err());
    f.audit_intact();
}
