//! `elicence run` end to end with the real binary and a real SQLite registry: counts reconcile,
//! a re-run changes nothing, versions and revocations follow the export, `verify` reports the
//! registry status, the audit trail and store are checked, backup/restore round-trips, and a run
//! killed (SIGKILL) at random points and started again ends with the same registry as an
//! uninterrupted run.

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use util::{big_export, copy_dir, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";

fn run_food(data: &Path, input: &str, out: Option<&Path>) -> Value {
    let mut cmd = elicence();
    cmd.args(["run", FOOD, "--input", input, "--json", "--operator", "tester"])
        .arg("--data")
        .arg(data);
    cmd.arg("--keys").arg(root().join("fixtures/keys"));
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    let o = run_expect(&mut cmd, 0);
    serde_json::from_slice(&o.stdout).expect("run --json prints the report")
}

fn counts(report: &Value) -> [u64; 7] {
    let c = &report["counts"];
    ["read", "issued", "changed", "revoked", "unchanged", "duplicates", "rejected"]
        .map(|k| c[k].as_u64().unwrap_or_else(|| panic!("count {k}")))
}

/// Every stored PDF of a data folder.
fn stored_pdfs(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![data.join("store")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "pdf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// (identifier, current?, revoked?) of every version: the registry's content.
fn registry_state(data: &Path) -> BTreeSet<(String, bool, bool)> {
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    let mut stmt = conn
        .prepare("SELECT identifier, superseded_by IS NULL, revoked_at IS NOT NULL FROM versions")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn run_reconciles_and_a_rerun_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let first =
        run_food(data.path(), "fixtures/food-business-permit/export-utf8.csv", Some(out.path()));
    // 26 rows: 7 new licences, 1 change (变更), 1 revocation (注销), 2 duplicates, 15 rejects.
    assert_eq!(counts(&first), [26, 7, 1, 1, 0, 2, 15]);
    assert_eq!(first["reconciled"], true);
    for f in ["rejects.csv", "duplicates.csv", "report.json"] {
        assert!(out.path().join(f).exists(), "{f}");
    }
    let state = registry_state(data.path());
    assert_eq!(state.len(), 8, "7 licences, one with 2 versions");

    let again = run_food(data.path(), "fixtures/food-business-permit/export-utf8.csv", None);
    assert_eq!(counts(&again), [26, 0, 0, 0, 9, 2, 15], "a re-run changes nothing");
    assert_eq!(registry_state(data.path()), state);
    // The same licences from the workbook export are the same licences.
    let xlsx = run_food(data.path(), "fixtures/food-business-permit/export.xlsx", None);
    assert_eq!(counts(&xlsx)[4], 9);
    assert_eq!(registry_state(data.path()), state);
}

#[test]
fn verify_reports_current_superseded_and_revoked_and_revoke_command_works() {
    let data = tempfile::tempdir().unwrap();
    run_food(data.path(), "fixtures/food-business-permit/export-utf8.csv", None);
    let pdfs = stored_pdfs(data.path());
    assert_eq!(pdfs.len(), 8);
    let keys = root().join("fixtures/keys");
    let o = elicence()
        .arg("verify")
        .args(&pdfs)
        .arg("--keys")
        .arg(&keys)
        .arg("--data")
        .arg(data.path())
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "superseded, revoked and expired files are not current");
    let reports: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status = |s: &str| reports.iter().filter(|r| r["registry_status"]["status"] == s).count();
    // Every licence of the fixture is valid to 2021–2023: expired on the tests' date (2026).
    let counts = (status("current"), status("expired"), status("superseded"), status("revoked"));
    assert_eq!(counts, (0, 6, 1, 1));
    assert!(reports.iter().all(|r| r["status"] == "authentic"));
    let superseded =
        reports.iter().find(|r| r["registry_status"]["status"] == "superseded").unwrap();
    assert!(superseded["identifier"].as_str().unwrap().contains(".001."));
    assert!(superseded["registry_status"]["by"].as_str().unwrap().contains(".002."));

    // Revoke a live (if expired) licence explicitly.
    let current = reports.iter().find(|r| r["registry_status"]["status"] == "expired").unwrap();
    let id = current["identifier"].as_str().unwrap().to_string();
    let file = current["file"].as_str().unwrap().to_string();
    run_expect(
        elicence()
            .args(["revoke", &id, "--reason", "吊销：测试", "--operator", "inspector"])
            .arg("--data")
            .arg(data.path()),
        0,
    );
    let o = run_expect(
        elicence()
            .args(["verify", &file, "--json"])
            .arg("--keys")
            .arg(&keys)
            .arg("--data")
            .arg(data.path()),
        1,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["registry_status"]["status"], "revoked");
    assert_eq!(v["registry_status"]["reason"], "吊销：测试");
    assert_eq!(v["registry_status"]["by_operator"], "inspector");
    // Revoking twice is refused; the audit trail holds it all.
    let o = elicence()
        .args(["revoke", &id, "--reason", "again"])
        .arg("--data")
        .arg(data.path())
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(data.path()), 0);

    // A re-rendered copy (another signing time) is not a file the registry issued.
    let preview = tempfile::tempdir().unwrap();
    run_expect(
        elicence()
            .env("ELICENCE_NOW", "2026-11-28T09:00:00Z")
            .args([
                "render",
                FOOD,
                "--input",
                "fixtures/food-business-permit/export-utf8.csv",
                "--limit",
                "1",
            ])
            .arg("--keys")
            .arg(&keys)
            .arg("--out")
            .arg(preview.path()),
        0,
    );
    let copy = std::fs::read_dir(preview.path()).unwrap().next().unwrap().unwrap().path();
    let o = run_expect(
        elicence()
            .arg("verify")
            .arg(&copy)
            .arg("--json")
            .arg("--keys")
            .arg(&keys)
            .arg("--data")
            .arg(data.path()),
        1,
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["registry_status"]["status"], "unknown");
}

#[test]
fn store_check_audit_verify_and_backup_restore_round_trip() {
    let data = tempfile::tempdir().unwrap();
    run_food(data.path(), "fixtures/food-business-permit/export-utf8.csv", None);
    run_expect(elicence().args(["store", "check"]).arg("--data").arg(data.path()), 0);
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(data.path()), 0);
    let state = registry_state(data.path());

    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b1");
    // With the field key: the live data folder, key included, is lost below.
    run_expect(
        elicence()
            .args(["backup", "--include-secrets"])
            .arg(&backup)
            .arg("--data")
            .arg(data.path()),
        0,
    );
    assert!(backup.join("manifest.json").exists());

    // Destroy the live registry, restore into a new folder.
    std::fs::remove_dir_all(data.path().join("store")).unwrap();
    std::fs::remove_file(data.path().join("registry.sqlite")).unwrap();
    let restored = backups.path().join("restored");
    run_expect(elicence().arg("restore").arg(&backup).arg("--data").arg(&restored), 0);
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(&restored), 0);
    run_expect(elicence().args(["store", "check"]).arg("--data").arg(&restored), 0);
    assert_eq!(registry_state(&restored), state);
    let pdfs = stored_pdfs(&restored);
    let o = elicence()
        .arg("verify")
        .args(&pdfs)
        .arg("--keys")
        .arg(root().join("fixtures/keys"))
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "every restored licence verifies");

    // An altered file in a backup: restore refuses and makes nothing live.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let victim = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(".pdf"))
        .unwrap();
    let path = backup.join(victim["path"].as_str().unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let refused = backups.path().join("refused");
    let o = elicence().arg("restore").arg(&backup).arg("--data").arg(&refused).output().unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(!refused.join("registry.sqlite").exists());

    // A deleted store file is found by store check.
    let pdf = stored_pdfs(&restored).remove(0);
    std::fs::remove_file(&pdf).unwrap();
    run_expect(elicence().args(["store", "check"]).arg("--data").arg(&restored), 1);
}

#[test]
fn audit_verify_names_an_edited_entry() {
    let data = tempfile::tempdir().unwrap();
    run_food(data.path(), "fixtures/food-business-permit/export-utf8.csv", None);
    let conn = rusqlite::Connection::open(data.path().join("registry.sqlite")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET operator = 'mallory' WHERE seq = 3;",
    )
    .unwrap();
    drop(conn);
    let o = run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(data.path()), 1);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("entry 3"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn a_run_killed_at_random_points_and_rerun_ends_like_an_uninterrupted_run() {
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 500);
    let input = input.to_str().unwrap();
    let reference = scratch.path().join("reference");
    let full = run_food(&reference, input, None);
    assert_eq!(counts(&full)[1], 500);
    let want = registry_state(&reference);

    let data = scratch.path().join("killed");
    // Pseudo-random kill points, deterministic for the test.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut kills = 0;
    for _ in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(150 + seed % 900);
        let mut child = elicence()
            .args(["run", FOOD, "--input", input, "--operator", "tester"])
            .arg("--data")
            .arg(&data)
            .arg("--keys")
            .arg(root().join("fixtures/keys"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills > 0, "at least one run was killed mid-way");
    let last = run_food(&data, input, None);
    assert_eq!(last["reconciled"], true);
    assert_eq!(
        registry_state(&data),
        want,
        "same licences, versions and statuses as an uninterrupted run"
    );
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(&data), 0);
    let o = run_expect(elicence().args(["store", "check"]).arg("--data").arg(&data), 0);
    let _ = o; // orphans of killed runs are notes, not errors
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    let licences: i64 = conn.query_row("SELECT count(*) FROM licences", [], |r| r.get(0)).unwrap();
    assert_eq!(licences, 500, "none lost, none duplicated");
    // The transparency log: one leaf per version, none twice, and it verifies.
    let leaves: i64 = conn.query_row("SELECT count(*) FROM log_leaves", [], |r| r.get(0)).unwrap();
    assert_eq!(leaves, 500, "one leaf per issued version, none lost, none twice");
    run_expect(elicence().args(["log", "verify"]).arg("--data").arg(&data), 0);
}

#[test]
fn ctrl_c_stops_at_a_chunk_boundary_and_the_rerun_resumes() {
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 1500);
    let input = input.to_str().unwrap();
    let data = scratch.path().join("data");
    let child = elicence()
        .args(["run", FOOD, "--input", input, "--operator", "tester", "--progress", "never"])
        .arg("--data")
        .arg(&data)
        .arg("--keys")
        .arg(root().join("fixtures/keys"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first chunk is committed, then interrupt.
    let db = data.join("registry.sqlite");
    let started = std::time::Instant::now();
    loop {
        let committed = rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM versions", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0);
        if committed > 0 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(130) {
        assert!(err.contains("Run the same command again to resume"), "{err}");
        let conn = rusqlite::Connection::open(&db).unwrap();
        let outcome: String = conn
            .query_row("SELECT outcome FROM runs ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(outcome, "interrupted");
    } else {
        // The run finished before the signal arrived: nothing to resume, still a valid outcome.
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
    let last = run_food(&data, input, None);
    assert_eq!(last["reconciled"], true);
    let c = counts(&last);
    assert_eq!(c[1] + c[4], 1500, "issued now + unchanged (committed before) = every licence");
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(&data), 0);
}

#[test]
fn progress_goes_to_stderr_as_lines_with_an_eta_or_as_bars_when_asked() {
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 1500);
    let progress = |mode: &str, data: &str| {
        let mut cmd = elicence();
        cmd.args(["run", FOOD, "--input", input.to_str().unwrap(), "--operator", "tester"])
            .args(["--progress", mode, "--progress-interval", "0"])
            .arg("--data")
            .arg(scratch.path().join(data))
            .arg("--keys")
            .arg(root().join("fixtures/keys"));
        String::from_utf8(run_expect(&mut cmd, 0).stderr).unwrap()
    };
    // stderr is a pipe here: `never` (and `auto`) write plain lines, with the estimated total
    // once the reader reports how far into the file it is, and an ETA once rows are committed.
    let lines = progress("never", "lines");
    let line = lines.lines().rfind(|l| l.contains("progress: read"));
    let line = line.unwrap_or_else(|| panic!("no progress line in {lines}"));
    assert!(line.contains(" of ~1500 "), "{line}");
    assert!(line.contains("settled 1500"), "{line}");
    assert!(lines.contains(", ETA "), "{lines}");
    // `always` draws the bars even into a pipe.
    let bars = progress("always", "bars");
    for stage in ["read / validated", "rendered + signed", "settled"] {
        assert!(bars.contains(stage), "no {stage:?} bar in {bars}");
    }
    assert!(!bars.contains("progress: read"), "{bars}");
}

/// Copies `pipelines/` (and the seal image its layouts name) into `dir`, so a test can break a
/// copy of the configuration.
fn copy_pipelines(dir: &Path) -> PathBuf {
    copy_dir(&root().join("pipelines"), &dir.join("pipelines"));
    let seals = dir.join("fixtures/seals");
    std::fs::create_dir_all(&seals).expect("seals dir");
    std::fs::copy(root().join("fixtures/seals/seal.png"), seals.join("seal.png")).expect("seal");
    dir.join("pipelines/food-business-permit.toml")
}

/// Everything a run needs is checked before any effect: a broken layout, a seal image that is
/// missing, or a key folder that cannot be loaded stop the run before the registry is opened,
/// a development key is written or the output folder is made.
#[test]
fn broken_configuration_stops_the_run_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = copy_pipelines(dir.path());
    let layout = dir.path().join("pipelines/layouts/food-business-permit.toml");
    let good_layout = std::fs::read_to_string(&layout).expect("layout");
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    let run = |keys: Option<&str>, code: i32| {
        let mut cmd = elicence();
        cmd.arg("run")
            .arg(&pipeline)
            .args(["--input", "fixtures/food-business-permit/export-gbk.csv"]);
        cmd.arg("--data").arg(&data).arg("--out").arg(&out);
        if let Some(k) = keys {
            cmd.args(["--keys", k]);
        }
        let output = run_expect(&mut cmd, code);
        assert!(!data.exists(), "nothing created in the data folder");
        assert!(!out.exists(), "no output folder");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    std::fs::write(&layout, good_layout.replace("[seal]", "[seal]\nnot_a_key = 1")).expect("w");
    let err = run(None, 3);
    assert!(err.contains("food-business-permit.toml"), "names the layout file: {err}");

    std::fs::write(&layout, good_layout.replace("seal.png", "missing-seal.png")).expect("w");
    let err = run(None, 3);
    assert!(err.contains("missing-seal.png"), "names the seal image: {err}");

    std::fs::write(&layout, &good_layout).expect("w");
    let err = run(Some("fixtures/no-such-keys"), 1);
    assert!(err.contains("no-such-keys"), "names the key folder: {err}");

    // The same configuration, repaired, runs.
    run_expect(
        elicence()
            .arg("run")
            .arg(&pipeline)
            .args(["--input", "fixtures/food-business-permit/export-gbk.csv", "--keys"])
            .arg(root().join("fixtures/keys"))
            .arg("--data")
            .arg(&data),
        0,
    );
}
