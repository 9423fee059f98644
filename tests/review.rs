//! Review before issue (issue 16, 采集 → 审核 → 签发) with the real binary: a review run signs
//! nothing and stages every row it would issue, change or revoke (counts reconcile with
//! `pending`); a second operator approves and the registry ends exactly as a direct run leaves
//! it; the operator who staged cannot approve (four eyes); an item whose licence changed in
//! between is refused as stale; a rejection issues nothing; an approval killed with SIGKILL and
//! run again signs and commits every version exactly once. On SQLite and PostgreSQL.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{PgDatabase, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const INPUT: &str = "fixtures/food-business-permit/export-utf8.csv";

/// A registry (SQLite in `data`, or PostgreSQL) with an admin, a collector, a reviewer, an
/// issuer and 双岗 (collector and reviewer at once), each with a credential file.
struct Desk {
    dir: tempfile::TempDir,
    registry: Option<String>,
}

impl Desk {
    fn new(registry: Option<String>) -> Desk {
        let desk = Desk { dir: tempfile::tempdir().unwrap(), registry };
        let o = run_expect(desk.plain().args(["operator", "add", "admin", "--role", "admin"]), 0);
        std::fs::write(desk.cred("admin"), &o.stdout).unwrap();
        for (name, roles) in [
            ("collector", "collector"),
            ("reviewer", "reviewer"),
            ("issuer", "issuer"),
            ("双岗", "collector,reviewer"),
        ] {
            let o =
                run_expect(&mut desk.op("admin", &["operator", "add", name, "--role", roles]), 0);
            std::fs::write(desk.cred(name), &o.stdout).unwrap();
        }
        desk
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cred(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.cred"))
    }

    /// The binary on this registry, with no operator.
    fn plain(&self) -> Command {
        let mut c = elicence();
        c.env("ELICENCE_DATA", self.data());
        match &self.registry {
            Some(url) => c.env("ELICENCE_REGISTRY", url),
            None => c.env_remove("ELICENCE_REGISTRY"),
        };
        c
    }

    /// `words` run as operator `name` with its credential file.
    fn op(&self, name: &str, words: &[&str]) -> Command {
        let mut c = self.plain();
        c.args(words).args(["--operator", name, "--operator-credential-file"]).arg(self.cred(name));
        c
    }

    fn run(&self, name: &str, input: &str, review: bool) -> Value {
        let keys = root().join("fixtures/keys");
        let mut words =
            vec!["run", FOOD, "--input", input, "--json", "--keys", keys.to_str().unwrap()];
        if review {
            words.push("--review");
        }
        let o = run_expect(&mut self.op(name, &words), 0);
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn approve(&self, name: &str, selection: &[&str], code: i32) -> Value {
        let keys = root().join("fixtures/keys");
        let mut words = vec!["review", "approve", "--json", "--keys", keys.to_str().unwrap()];
        words.extend_from_slice(selection);
        let o = run_expect(&mut self.op(name, &words), code);
        serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
    }

    fn items(&self, state: &str) -> Vec<Value> {
        let o = run_expect(
            &mut self.op("reviewer", &["review", "list", "--json", "--state", state]),
            0,
        );
        serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap()
    }

    /// One number from the registry database.
    fn count(&self, sql: &str) -> i64 {
        match &self.registry {
            None => rusqlite::Connection::open(self.data().join("registry.sqlite"))
                .unwrap()
                .query_row(sql, [], |r| r.get(0))
                .unwrap(),
            Some(url) => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                c.query_one(sql, &[]).unwrap().get(0)
            }
        }
    }

    /// (identifier, current?, revoked?) of every version.
    fn state(&self) -> BTreeSet<(String, bool, bool)> {
        let sql = "SELECT identifier, superseded_by IS NULL, revoked_at IS NOT NULL FROM versions";
        match &self.registry {
            None => {
                let conn = rusqlite::Connection::open(self.data().join("registry.sqlite")).unwrap();
                let mut stmt = conn.prepare(sql).unwrap();
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Some(url) => {
                let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
                c.query(sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
            }
        }
    }
}

fn counts(report: &Value) -> [u64; 8] {
    let c = &report["counts"];
    ["read", "issued", "changed", "revoked", "pending", "unchanged", "duplicates", "rejected"]
        .map(|k| c[k].as_u64().unwrap_or(0))
}

/// The fixture with one licence's 经营场所 (business premises) changed to `premises`: only that
/// row, under the fixture's header.
fn changed_export(dir: &Path, name: &str, premises: &str) -> String {
    let text = std::fs::read_to_string(root().join(INPUT)).unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let header = &rows[0];
    let column = header.iter().position(|h| h == "经营场所").unwrap();
    let row = rows.iter().find(|r| &r[0] == "JY12201040000074").unwrap();
    let mut changed: Vec<String> = row.iter().map(str::to_owned).collect();
    changed[column] = premises.to_owned();
    let path = dir.join(name);
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(header).unwrap();
    w.write_record(&changed).unwrap();
    w.flush().unwrap();
    path.to_str().unwrap().to_owned()
}

/// Stage, list, approve by a second operator: same registry as a direct run.
fn stage_then_approve_ends_like_a_direct_run(registry: Option<String>, direct: Option<String>) {
    let reference = Desk::new(direct);
    let issued = reference.run("issuer", INPUT, false);
    let desk = Desk::new(registry);
    let staged = desk.run("collector", INPUT, true);
    let (i, s) = (counts(&issued), counts(&staged));
    assert_eq!(staged["reconciled"], true);
    assert_eq!(staged["review"], true);
    assert_eq!(s[4], i[1] + i[2] + i[3], "pending in place of issued + changed + revoked");
    assert_eq!([s[1], s[2], s[3]], [0, 0, 0], "nothing issued");
    assert_eq!(
        [s[0], s[5], s[6], s[7]],
        [i[0], i[5], i[6], i[7]],
        "read, unchanged, dups, rejects"
    );
    assert_eq!(desk.count("SELECT count(*) FROM versions"), 0, "nothing signed, nothing current");
    let pending = desk.items("pending");
    assert_eq!(pending.len() as u64, s[4]);

    // A preview is a face without a signature: verify says so.
    if desk.registry.is_none() {
        let id =
            pending.iter().find(|p| p["preview_sha256"].is_string()).unwrap()["id"].to_string();
        let o = run_expect(&mut desk.op("reviewer", &["review", "show", &id, "--json"]), 0);
        let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
        let preview = shown["preview"].as_str().unwrap();
        let bytes = std::fs::read(preview).unwrap();
        assert!(bytes.starts_with(b"%PDF") && !bytes.windows(10).any(|w| w == b"/ByteRange"));
        let o = run_expect(
            elicence()
                .args(["verify", preview, "--json", "--keys"])
                .arg(root().join("fixtures/keys")),
            1,
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("not-signed"));
    }

    // Staging the same input again stages nothing new.
    let again = desk.run("collector", INPUT, true);
    assert_eq!(counts(&again), counts(&staged));
    assert_eq!(desk.items("pending").len(), pending.len());

    let report = desk.approve("reviewer", &["--run", "1"], 0);
    assert_eq!(report["approved"].as_u64(), Some(s[4]));
    assert_eq!(
        [report["issued"].as_u64(), report["changed"].as_u64(), report["revoked"].as_u64()],
        [Some(i[1]), Some(i[2]), Some(i[3])]
    );
    assert_eq!(desk.state(), reference.state(), "same versions, statuses and identifiers");
    assert!(desk.items("pending").is_empty());
    assert_eq!(
        desk.count("SELECT count(*) FROM audit_log WHERE action = 'review_approved' AND operator = 'reviewer'"),
        s[4] as i64
    );
    run_expect(desk.plain().args(["audit", "verify"]), 0);
    run_expect(desk.plain().args(["store", "check"]), 0);
    // The approved e-licences verify.
    if desk.registry.is_none() {
        let sha: String = rusqlite::Connection::open(desk.data().join("registry.sqlite"))
            .unwrap()
            .query_row(
                "SELECT vf.sha256 FROM version_files vf JOIN versions v ON v.id = vf.version_id
                 WHERE vf.kind = 'pdf' AND v.superseded_by IS NULL AND v.revoked_at IS NULL LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let path = desk.data().join(format!("store/{}/{}/{sha}.pdf", &sha[0..2], &sha[2..4]));
        // Signed, and the registry knows it (the fixture's licences ran out in 2022, so the
        // registry answers expired, and verify exits 1 for anything but current).
        let o = run_expect(
            desk.plain().arg("verify").arg(&path).arg("--keys").arg(root().join("fixtures/keys")),
            1,
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(": authentic (signer") && out.contains("registry: EXPIRED"), "{out}");
    }
}

#[test]
fn a_review_run_stages_previews_and_an_approval_by_another_operator_issues_them_sqlite() {
    stage_then_approve_ends_like_a_direct_run(None, None);
}

#[test]
fn a_review_run_stages_previews_and_an_approval_by_another_operator_issues_them_postgres() {
    let Some(a) = PgDatabase::create("review_postgres_stage") else { return };
    let Some(b) = PgDatabase::create("review_postgres_direct") else { return };
    stage_then_approve_ends_like_a_direct_run(Some(a.url.clone()), Some(b.url.clone()));
}

#[test]
fn the_operator_who_staged_cannot_approve_four_eyes_and_it_is_audited() {
    let desk = Desk::new(None);
    let staged = desk.run("双岗", INPUT, true);
    assert!(counts(&staged)[4] > 0);
    desk.approve("双岗", &["--run", "1"], 6);
    assert_eq!(desk.count("SELECT count(*) FROM versions"), 0, "nothing signed");
    let details: String = rusqlite::Connection::open(desk.data().join("registry.sqlite"))
        .unwrap()
        .query_row(
            "SELECT details FROM audit_log WHERE action = 'operator_denied' AND operator = '双岗'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(details.contains("four_eyes"), "{details}");
    // A collector (no reviewer role) may not approve either; the reviewer may.
    desk.approve("collector", &["--run", "1"], 6);
    desk.approve("reviewer", &["--run", "1"], 0);
    assert!(desk.items("pending").is_empty());
}

#[test]
fn approval_of_a_version_whose_licence_changed_in_between_is_refused_as_stale() {
    let desk = Desk::new(None);
    desk.run("issuer", INPUT, false);
    let before = desk.state();
    let a = changed_export(desk.dir.path(), "a.csv", "吉林省长春市朝阳区湖西路1号");
    let b = changed_export(desk.dir.path(), "b.csv", "吉林省长春市朝阳区湖西路2号");
    let staged = desk.run("collector", &a, true);
    assert_eq!(counts(&staged)[4], 1, "one change staged");
    let item = desk.items("pending")[0]["id"].to_string();
    // Meanwhile the licence is changed directly.
    let direct = desk.run("issuer", &b, false);
    assert_eq!(counts(&direct)[2], 1);
    let after_b = desk.state();
    let report = desk.approve("reviewer", &[item.as_str()], 1);
    assert_eq!(report["approved"], 0);
    assert_eq!(report["stale"][0]["review_item"].to_string(), item);
    assert_eq!(desk.state(), after_b, "nothing committed");
    assert_ne!(after_b, before);
    assert_eq!(desk.items("pending").len(), 1, "left pending");
    assert_eq!(desk.count("SELECT count(*) FROM audit_log WHERE action = 'review_stale'"), 1);
    // It can still be rejected, with its reason.
    run_expect(
        &mut desk.op("reviewer", &["review", "reject", &item, "--reason", "已有新的变更"]),
        0,
    );
    let rejected = desk.items("rejected");
    assert_eq!(rejected[0]["decision_note"], "已有新的变更");
    assert_eq!(rejected[0]["decided_by"], "reviewer");
    // Decided once: a second rejection changes nothing.
    run_expect(&mut desk.op("reviewer", &["review", "reject", &item, "--reason", "x"]), 1);
    assert_eq!(desk.state(), after_b);
}

#[test]
fn approve_all_from_a_csv_of_item_numbers() {
    let desk = Desk::new(None);
    let staged = desk.run("collector", INPUT, true);
    let ids: Vec<String> = desk.items("pending").iter().map(|i| i["id"].to_string()).collect();
    assert_eq!(ids.len() as u64, counts(&staged)[4]);
    let file = desk.dir.path().join("approved.csv");
    let half = &ids[..ids.len() / 2];
    std::fs::write(&file, format!("\u{feff}id,note\n{}\n", half.join(",ok\n") + ",ok")).unwrap();
    let report = desk.approve("reviewer", &["--all-from", file.to_str().unwrap()], 0);
    assert_eq!(report["approved"].as_u64(), Some(half.len() as u64));
    assert_eq!(desk.items("pending").len(), ids.len() - half.len());
}

/// Stages 2,000 versions, starts approving them and stops the approval with `signal` once the
/// first chunks are committed; returns the desk, the exit code and how many were approved then.
fn approval_stopped_midway(signal: &str) -> (Desk, Option<i32>, i64) {
    let desk = Desk::new(None);
    let input = util::big_export(desk.dir.path(), 2000).to_str().unwrap().to_owned();
    let staged = desk.run("collector", &input, true);
    assert_eq!(counts(&staged)[4], 2000);
    let keys = root().join("fixtures/keys");
    let mut child = desk
        .op("reviewer", &["review", "approve", "--run", "1", "--keys", keys.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Stop it once the first chunks are committed, well before the last.
    let deadline = Instant::now() + Duration::from_secs(600);
    while approved(&desk) == 0 && Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
    let code = child.wait().unwrap().code();
    let at_stop = approved(&desk);
    assert!(at_stop > 0 && at_stop < 2000, "stopped mid-way ({at_stop} approved)");
    assert_eq!(desk.count("SELECT count(*) FROM versions"), at_stop, "approved = committed");
    (desk, code, at_stop)
}

fn approved(desk: &Desk) -> i64 {
    desk.count("SELECT count(*) FROM review_items WHERE state = 'approved'")
}

/// Approves what is left after a stop and checks that every version is signed exactly once.
fn approve_the_rest_once(desk: &Desk, at_stop: i64) {
    let report = desk.approve("reviewer", &["--run", "1"], 0);
    assert_eq!(report["approved"].as_i64(), Some(2000 - at_stop));
    assert_eq!(approved(desk), 2000);
    assert_eq!(desk.count("SELECT count(*) FROM versions"), 2000);
    assert_eq!(desk.count("SELECT count(DISTINCT licence_id) FROM versions"), 2000);
    assert_eq!(desk.count("SELECT count(*) FROM audit_log WHERE action = 'issued'"), 2000);
    assert_eq!(desk.count("SELECT count(*) FROM audit_log WHERE action = 'review_approved'"), 2000);
    assert_eq!(
        desk.count("SELECT count(*) FROM version_files WHERE kind = 'pdf'"),
        2000,
        "one signed PDF per version"
    );
    run_expect(desk.plain().args(["audit", "verify"]), 0);
    run_expect(desk.plain().args(["store", "check"]), 0);
}

#[test]
fn an_approval_of_2000_versions_killed_with_sigkill_and_run_again_signs_each_version_once() {
    let (desk, _, at_kill) = approval_stopped_midway("-KILL");
    approve_the_rest_once(&desk, at_kill);
}

#[test]
fn an_approval_stopped_with_ctrl_c_stops_at_a_chunk_boundary_and_run_again_signs_each_once() {
    let (desk, code, at_stop) = approval_stopped_midway("-INT");
    // SIGINT is polled between chunks: exit 130, the approval run recorded as interrupted,
    // its counts what it reached, and every approved item's version committed.
    assert_eq!(code, Some(130), "exit code of an approval stopped by SIGINT");
    let outcome = desk.count(
        "SELECT count(*) FROM runs WHERE pipeline = 'review approve' AND outcome = 'interrupted'",
    );
    assert_eq!(outcome, 1);
    let issued = desk.count(
        "SELECT count_issued FROM runs WHERE pipeline = 'review approve' AND outcome = 'interrupted'",
    );
    assert_eq!(issued, at_stop, "the interrupted run counts what it committed");
    approve_the_rest_once(&desk, at_stop);
}

/// Regression: a licence and its change staged in different chunks of one review run (and run
/// again) are version 1 and version 2, and approving the run commits both, nothing stale.
#[test]
fn a_licence_and_its_change_in_different_chunks_are_staged_as_versions_1_and_2() {
    let desk = Desk::new(None);
    let big = util::big_export(desk.dir.path(), 300).to_str().unwrap().to_owned();
    let text = std::fs::read_to_string(&big).unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = rows[0].iter().position(|h| h == "经营场所").unwrap();
    let mut changed: Vec<String> = rows[1].iter().map(str::to_owned).collect();
    changed[column] = "吉林省长春市朝阳区湖西路3号".to_owned();
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(&changed).unwrap();
    let input = desk.dir.path().join("with-change.csv");
    std::fs::write(&input, text + &String::from_utf8(w.into_inner().unwrap()).unwrap()).unwrap();
    let input = input.to_str().unwrap();

    let staged = desk.run("collector", input, true);
    assert_eq!(counts(&staged)[4], 301);
    let pending = desk.items("pending");
    let last = pending.last().unwrap();
    assert_eq!(last["action"], "change", "{last}");
    assert!(last["identifier"].as_str().unwrap().contains(".002."));
    // Again: everything is staged already (the change included), nothing new.
    let again = desk.run("collector", input, true);
    assert_eq!(counts(&again)[4], 301);
    assert_eq!(desk.items("pending").len(), 301);

    let report = desk.approve("reviewer", &["--run", "1"], 0);
    assert_eq!(report["approved"], 301);
    assert_eq!(report["changed"], 1);
    assert_eq!(report["stale"], Value::Array(vec![]));
    assert_eq!(desk.count("SELECT count(*) FROM versions"), 301);
    assert_eq!(desk.count("SELECT count(*) FROM licences"), 300);
}
