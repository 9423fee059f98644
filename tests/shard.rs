//! Sharded runs into one PostgreSQL registry, with the real binary and a real server: four
//! concurrent `elicence run --shard K/4` processes load exactly what one unsharded run loads
//! (same licences, versions, statuses, file hashes and rejects; one valid audit chain), and a
//! shard killed mid-run (SIGKILL) and run again completes the job. Skipped with a message when
//! no PostgreSQL is reachable (see `util::PgDatabase::create`); `.ci/run` requires it.
//!
//! Also `elicence migrate` from the SQLite registry into PostgreSQL, verified.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{PgDatabase, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";

/// A generated export with defects (rejects, duplicates) of `rows` rows.
fn generated(dir: &Path, rows: u32, seed: u32) -> PathBuf {
    let out = dir.join("export.csv");
    run_expect(
        elicence()
            .args(["gen", FOOD, "--format", "csv", "--defects", "0.05"])
            .args(["--rows", &rows.to_string(), "--seed", &seed.to_string()])
            .arg("--out")
            .arg(&out),
        0,
    );
    out
}

/// `elicence run` of `input` into `data` (and `registry` when given), optionally one shard.
fn run_cmd(
    data: &Path,
    registry: Option<&str>,
    input: &Path,
    shard: Option<&str>,
) -> std::process::Command {
    let mut cmd = elicence();
    cmd.args(["run", FOOD, "--json", "--operator", "tester", "--progress", "never", "--jobs", "1"])
        .arg("--input")
        .arg(input)
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(root().join("fixtures/keys"));
    if let Some(r) = registry {
        cmd.arg("--registry").arg(r);
    }
    if let Some(s) = shard {
        cmd.args(["--shard", s]);
    }
    cmd
}

fn spawn_shard(data: &Path, url: &str, input: &Path, shard: &str) -> Child {
    run_cmd(data, Some(url), input, Some(shard))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("elicence runs")
}

/// Waits for a shard and returns its JSON report (exit 0 required).
fn report_of(child: Child) -> Value {
    let out = child.wait_with_output().expect("shard finishes");
    assert_eq!(
        out.status.code(),
        Some(0),
        "shard failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("run --json prints the report")
}

fn count(report: &Value, key: &str) -> u64 {
    report["counts"][key].as_u64().unwrap_or(0)
}

/// What must be equal between registries: versions (identifier, content hash, row status,
/// superseded by, revoked?), their files (kind, SHA-256), and rejects (file, line, field, rule;
/// the message is sealed with a random nonce), each as sorted text rows. Run numbers and times
/// are left out.
const CONTENT: &[(&str, &str)] = &[
    (
        "versions",
        "SELECT v.identifier, v.content_hash, v.row_status, COALESCE(v.superseded_by, '-'),
                CASE WHEN v.revoked_at IS NULL THEN 'live' ELSE 'revoked' END
         FROM versions v",
    ),
    (
        "files",
        "SELECT v.identifier, vf.kind, vf.sha256
         FROM version_files vf JOIN versions v ON v.id = vf.version_id",
    ),
    ("rejects", "SELECT file, CAST(line AS TEXT), field, rule FROM rejects"),
];

type Content = BTreeMap<&'static str, Vec<Vec<String>>>;

fn sqlite_content(data: &Path) -> Content {
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).expect("sqlite opens");
    CONTENT
        .iter()
        .map(|(name, sql)| {
            let mut stmt = conn.prepare(sql).expect("query");
            let width = stmt.column_count();
            let mut rows: Vec<Vec<String>> = stmt
                .query_map([], |r| (0..width).map(|i| r.get::<_, String>(i)).collect())
                .expect("rows")
                .map(Result::unwrap)
                .collect();
            rows.sort();
            (*name, rows)
        })
        .collect()
}

fn pg_content(url: &str) -> Content {
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("postgres connects");
    CONTENT
        .iter()
        .map(|(name, sql)| {
            let mut rows: Vec<Vec<String>> = client
                .query(*sql, &[])
                .expect("query")
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
                .collect();
            rows.sort();
            (*name, rows)
        })
        .collect()
}

fn assert_same_content(got: &Content, want: &Content) {
    for (name, rows) in want {
        let found = &got[name];
        assert_eq!(found.len(), rows.len(), "{name}: row count");
        assert_eq!(found, rows, "{name}: content");
    }
}

/// The unsharded reference: one process into a SQLite registry.
/// The shards' data folder (`scratch/shared`) gets the reference's field key, so that the
/// keyed content hashes of both registries compare (every machine of a registry has one key).
fn reference(scratch: &Path, input: &Path) -> (Value, Content) {
    let data = scratch.join("reference");
    let out = run_expect(&mut run_cmd(&data, None, input, None), 0);
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let shared_key = scratch.join("shared/secrets");
    std::fs::create_dir_all(&shared_key).expect("secrets folder");
    std::fs::copy(data.join("secrets/field-key"), shared_key.join("field-key")).expect("key");
    (report, sqlite_content(&data))
}

fn check_audit_and_store(data: &Path, url: &str) {
    run_expect(elicence().args(["audit", "verify", "--registry", url]).arg("--data").arg(data), 0);
    run_expect(elicence().args(["store", "check", "--registry", url]).arg("--data").arg(data), 0);
}

#[test]
fn four_concurrent_shards_load_exactly_what_one_process_loads() {
    let Some(pg) = PgDatabase::create("four_concurrent_shards_load_exactly_what_one_process_loads")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let input = generated(scratch.path(), 600, 11);
    let (one, want) = reference(scratch.path(), &input);
    assert!(count(&one, "issued") > 400 && count(&one, "rejected") > 0, "{one}");

    let data = scratch.path().join("shared");
    let children: Vec<Child> =
        (0..4).map(|k| spawn_shard(&data, &pg.url, &input, &format!("{k}/4"))).collect();
    let reports: Vec<Value> = children.into_iter().map(report_of).collect();
    for r in &reports {
        assert_eq!(r["reconciled"], true, "{r}");
        assert_eq!(count(r, "read"), count(&one, "read"), "every shard reads the whole input");
    }
    for key in ["issued", "changed", "revoked", "unchanged", "duplicates", "rejected"] {
        let sum: u64 = reports.iter().map(|r| count(r, key)).sum();
        assert_eq!(sum, count(&one, key), "{key}: shards together = one process");
    }
    let other: u64 = reports.iter().map(|r| count(r, "other_shard")).sum();
    assert_eq!(other, 3 * count(&one, "read"), "each row is owned by exactly one shard");

    assert_same_content(&pg_content(&pg.url), &want);
    check_audit_and_store(&data, &pg.url);

    // A re-run of any shard changes nothing.
    let again = report_of(spawn_shard(&data, &pg.url, &input, "1/4"));
    assert_eq!(count(&again, "issued") + count(&again, "changed") + count(&again, "revoked"), 0);
    assert_same_content(&pg_content(&pg.url), &want);
}

#[test]
fn a_shard_killed_mid_run_and_run_again_completes_the_job() {
    let Some(pg) = PgDatabase::create("a_shard_killed_mid_run_and_run_again_completes_the_job")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let input = generated(scratch.path(), 1200, 12);
    let (_, want) = reference(scratch.path(), &input);

    let data = scratch.path().join("shared");
    let mut children: Vec<Option<Child>> =
        (0..4).map(|k| Some(spawn_shard(&data, &pg.url, &input, &format!("{k}/4")))).collect();
    // Kill shard 2 once the shards are committing (the schema exists, chunks are landing),
    // before it finishes.
    let mut victim = children[2].take().expect("shard 2");
    let started = Instant::now();
    let mut client = postgres::Client::connect(&pg.url, postgres::NoTls).expect("connects");
    let mut killed = false;
    while started.elapsed() < Duration::from_secs(300) {
        if victim.try_wait().expect("wait").is_some() {
            break;
        }
        let committed: i64 =
            client.query_one("SELECT COUNT(*) FROM versions", &[]).map(|r| r.get(0)).unwrap_or(0);
        if committed > 0 {
            victim.kill().expect("SIGKILL");
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = victim.wait();
    for child in children.into_iter().flatten() {
        report_of(child);
    }
    assert!(killed, "shard 2 was killed mid-run");
    let partial = pg_content(&pg.url);
    assert!(partial["versions"].len() < want["versions"].len(), "shard 2's part is missing");

    let rerun = report_of(spawn_shard(&data, &pg.url, &input, "2/4"));
    assert_eq!(rerun["reconciled"], true);
    assert_same_content(&pg_content(&pg.url), &want);
    check_audit_and_store(&data, &pg.url);
    // The killed run stays unfinished in the registry (outcome NULL); nothing else is left.
    let unfinished: i64 = client
        .query_one("SELECT COUNT(*) FROM runs WHERE outcome IS NULL", &[])
        .map(|r| r.get(0))
        .expect("count runs");
    assert_eq!(unfinished, 1);
}

#[test]
fn migrate_copies_a_sqlite_registry_into_postgres_and_verifies_it() {
    let Some(pg) =
        PgDatabase::create("migrate_copies_a_sqlite_registry_into_postgres_and_verifies_it")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let input = generated(scratch.path(), 150, 13);
    let (_, want) = reference(scratch.path(), &input);
    let data = scratch.path().join("reference");
    let out = run_expect(
        elicence().args(["migrate", "--json", "--to", &pg.url]).arg("--data").arg(&data),
        0,
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("migrate --json");
    assert!(report["audit"]["entries"].as_u64().unwrap_or(0) > 100, "{report}");
    assert_same_content(&pg_content(&pg.url), &want);
    check_audit_and_store(&data, &pg.url);
    // Loading continues in PostgreSQL where SQLite stopped: a re-run is all unchanged.
    let o = run_expect(&mut run_cmd(&data, Some(&pg.url), &input, None), 0);
    let again: Value = serde_json::from_slice(&o.stdout).expect("report");
    assert_eq!(count(&again, "issued") + count(&again, "changed"), 0, "{again}");
    // A second migration into the now non-empty target is refused, naming the table.
    let refused =
        run_expect(elicence().args(["migrate", "--to", &pg.url]).arg("--data").arg(&data), 1);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("not empty") && err.contains("runs"), "{err}");
    assert!(!err.contains("password"), "{err}");
}

#[test]
fn three_processes_loading_the_same_input_at_once_load_it_once() {
    let Some(pg) =
        PgDatabase::create("three_processes_loading_the_same_input_at_once_load_it_once")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let input = generated(scratch.path(), 300, 14);
    let (one, want) = reference(scratch.path(), &input);
    let data = scratch.path().join("shared");
    // Overlapping inputs, no sharding: every process decides every row; the registry's write
    // lock and the re-decision at commit make each licence and version land once.
    let children: Vec<Child> = (0..3)
        .map(|_| {
            run_cmd(&data, Some(&pg.url), &input, None)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("elicence runs")
        })
        .collect();
    let reports: Vec<Value> = children.into_iter().map(report_of).collect();
    let created: u64 = reports
        .iter()
        .map(|r| count(r, "issued") + count(r, "changed") + count(r, "revoked"))
        .sum();
    assert_eq!(
        created,
        count(&one, "issued") + count(&one, "changed") + count(&one, "revoked"),
        "each licence, version and revocation written by exactly one process"
    );
    let got = pg_content(&pg.url);
    assert_same_content(
        &BTreeMap::from([("versions", got["versions"].clone()), ("files", got["files"].clone())]),
        &BTreeMap::from([("versions", want["versions"].clone()), ("files", want["files"].clone())]),
    );
    check_audit_and_store(&data, &pg.url);
}
