//! Operations (issue 18) with the real binary: SIGTERM stops a run at a chunk boundary with exit
//! 143; log lines as text or JSON carry the run id and obey ELICENCE_LOG; the nightly checks and
//! the registry commands print JSON with `--json`; `run --metrics-file` writes Prometheus text;
//! `run --dry-run` decides like a run and writes nothing (SQLite and PostgreSQL); pipeline
//! header aliases; an error's causes are printed once.

mod util;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use util::{PgDatabase, big_export, copy_dir, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const EXPORT: &str = "fixtures/food-business-permit/export-utf8.csv";
/// The tests' pinned clock (`ELICENCE_NOW`), as Unix time.
const NOW_UNIX: i64 = 1_795_773_600;

fn keys() -> PathBuf {
    root().join("fixtures/keys")
}

/// `elicence run` of the food pipeline with the test key; extra flags after.
fn run_cmd(data: &Path, input: &str) -> std::process::Command {
    let mut cmd = elicence();
    cmd.args(["run", FOOD, "--input", input, "--operator", "tester", "--progress", "never"])
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(keys());
    cmd
}

fn counts(report: &Value) -> [u64; 7] {
    let c = &report["counts"];
    ["read", "issued", "changed", "revoked", "unchanged", "duplicates", "rejected"]
        .map(|k| c[k].as_u64().unwrap_or_else(|| panic!("count {k} in {report}")))
}

fn json_stdout(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is one JSON value ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

fn sqlite_count(data: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

// ---- signals ----

/// Kubernetes, Slurm and systemd stop a job with SIGTERM and read 143 as "stopped as asked".
#[test]
fn sigterm_stops_at_a_chunk_boundary_with_exit_143_and_the_rerun_resumes() {
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 1500);
    let input = input.to_str().unwrap();
    let data = scratch.path().join("data");
    let child = run_cmd(&data, input).stderr(std::process::Stdio::piped()).spawn().unwrap();
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
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(143) {
        assert!(err.contains("interrupted (SIGTERM)"), "{err}");
        assert!(err.contains("Run the same command again to resume"), "{err}");
        let outcome: String = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT outcome FROM runs ORDER BY id DESC LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(outcome, "interrupted");
    } else {
        // The run finished before the signal arrived: still a valid outcome.
        assert_eq!(out.status.code(), Some(0), "{err}");
    }
    let last = run_expect(run_cmd(&data, input).arg("--json"), 0);
    let c = counts(&json_stdout(&last));
    assert_eq!(c[1] + c[4], 1500, "issued now + unchanged (committed before) = every licence");
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(&data), 0);
}

// ---- logs ----

#[test]
fn json_log_lines_carry_the_run_id_and_elicence_log_filters_them() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let out = run_expect(
        run_cmd(&data, EXPORT).args(["--json", "--log-format", "json", "--progress-interval", "0"]),
        0,
    );
    let report = json_stdout(&out);
    let run = report["run"].as_i64().expect("run id");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 3, "start, progress and summary lines: {stderr}");
    for line in &lines {
        assert_eq!(line["span"]["id"].as_i64(), Some(run), "run id in {line}");
        assert!(line["level"].is_string() && line["timestamp"].is_string(), "{line}");
    }
    let summary = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with("read 26 =")))
        .unwrap_or_else(|| panic!("summary line in {stderr}"));
    assert_eq!(summary["issued"], 7);
    assert!(lines.iter().any(|l| l["message"].as_str().is_some_and(|m| m.contains("progress:"))));

    // Text lines carry the run id too; ELICENCE_LOG=warn leaves only warnings and errors.
    let text = run_expect(&mut run_cmd(&data, EXPORT), 0);
    let text = String::from_utf8(text.stderr).unwrap();
    let next = format!("run{{id={}}}", run + 1);
    assert!(text.lines().all(|l| l.contains(&next)), "{next} on every line of {text}");
    let quiet = run_expect(run_cmd(&data, EXPORT).env("ELICENCE_LOG", "warn"), 0);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    let bad = run_expect(run_cmd(&data, EXPORT).env("ELICENCE_LOG", "info,elicence=loud"), 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ELICENCE_LOG"));
}

/// A fatal error in JSON log format is one JSON line with its exit code and causes.
#[test]
fn a_fatal_error_is_a_json_line_with_the_json_log_format() {
    let out = run_expect(
        elicence().args(["--log-format", "json", "validate", FOOD, "--input", "no/such.csv"]),
        4,
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line: Value =
        serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["exit_code"], 4);
    assert!(line["message"].as_str().is_some_and(|m| m.contains("no/such.csv")), "{line}");
}

// ---- errors ----

/// Regression: "cannot read X: No such file" was printed again as its own "caused by" line.
#[test]
fn an_unreadable_input_names_its_cause_once() {
    let out = run_expect(elicence().args(["validate", FOOD, "--input", "no/such.csv"]), 4);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

// ---- --json of the registry commands ----

#[test]
fn nightly_checks_and_registry_commands_print_json() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let report = json_stdout(&run_expect(run_cmd(&data, EXPORT).arg("--json"), 0));
    assert_eq!(counts(&report)[1], 7);
    let with_data = |args: &[&str]| {
        let mut cmd = elicence();
        cmd.args(args).arg("--data").arg(&data);
        cmd
    };

    let audit = json_stdout(&run_expect(&mut with_data(&["audit", "verify", "--json"]), 0));
    assert_eq!(audit["intact"], true);
    assert!(audit["entries"].as_u64().unwrap() > 9, "{audit}");
    let store = json_stdout(&run_expect(&mut with_data(&["store", "check", "--json"]), 0));
    assert_eq!(store["ok"], true);
    assert_eq!(store["fatal"], 0);
    assert_eq!(store["files"].as_u64(), Some(24), "8 versions × PDF + XML + OFD: {store}");

    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    let current: String = conn
        .query_row(
            "SELECT identifier FROM versions WHERE superseded_by IS NULL AND revoked_at IS NULL \
             ORDER BY identifier LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let revoked = json_stdout(&run_expect(
        &mut with_data(&[
            "revoke",
            &current,
            "--reason",
            "吊销：测试",
            "--operator",
            "ops",
            "--json",
        ]),
        0,
    ));
    assert_eq!(revoked["revoked"], current.as_str());
    assert_eq!(revoked["operator"], "ops");
    assert_eq!(revoked["at"], "2026-11-27T10:00:00+00:00");

    let backup_dir = scratch.path().join("backup");
    let backup = json_stdout(&run_expect(
        &mut with_data(&["backup", backup_dir.to_str().unwrap(), "--json"]),
        0,
    ));
    let files = backup["manifest"]["files"].as_array().expect("manifest files");
    assert_eq!(files.len(), 25, "registry.sqlite + 24 store files: {backup}");
    assert!(files.iter().all(|f| f["sha256"].as_str().is_some_and(|h| h.len() == 64)));
    let restored = scratch.path().join("restored");
    let restore = json_stdout(&run_expect(
        elicence()
            // The backup has no field key (no --include-secrets): it is supplied.
            .env("ELICENCE_FIELD_KEY_FILE", data.join("secrets/field-key"))
            .args(["restore", backup_dir.to_str().unwrap(), "--json", "--data"])
            .arg(&restored),
        0,
    ));
    assert_eq!(restore["counts"]["licences"], 7);
    assert_eq!(restore["hashes_checked"], true);

    // Broken: a missing store file and an edited audit entry.
    let pdf = files
        .iter()
        .filter_map(|f| f["path"].as_str())
        .find(|p| p.ends_with(".pdf"))
        .expect("a PDF in the backup");
    let stored = data.join(pdf);
    std::fs::remove_file(&stored).unwrap_or_else(|e| panic!("{}: {e}", stored.display()));
    let store = json_stdout(&run_expect(&mut with_data(&["store", "check", "--json"]), 1));
    assert_eq!(store["ok"], false);
    assert_eq!(store["problems"][0]["kind"], "missing", "{store}");
    conn.execute_batch("DROP TRIGGER audit_log_no_update").unwrap();
    conn.execute("UPDATE audit_log SET operator = 'mallory' WHERE seq = 2", []).unwrap();
    let audit = json_stdout(&run_expect(&mut with_data(&["audit", "verify", "--json"]), 1));
    assert_eq!(audit["intact"], false);
    assert_eq!(audit["broken_at"], 2);
    assert_eq!(audit["reason"]["kind"], "hash_mismatch", "{audit}");
}

// ---- metrics ----

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn metrics_file_is_prometheus_text_and_keeps_the_last_success_of_a_failed_run() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let metrics = scratch.path().join("elicence.prom");
    run_expect(run_cmd(&data, EXPORT).arg("--metrics-file").arg(&metrics), 0);
    let text = std::fs::read_to_string(&metrics).unwrap();
    let p = "{pipeline=\"food-business-permit\"";
    assert_eq!(metric(&text, &format!("elicence_run_rows{p}}}")), 26.0);
    assert_eq!(metric(&text, &format!("elicence_run_licences{p},outcome=\"issued\"}}")), 7.0);
    assert_eq!(metric(&text, &format!("elicence_run_licences{p},outcome=\"changed\"}}")), 1.0);
    assert_eq!(metric(&text, &format!("elicence_run_duplicates{p}}}")), 2.0);
    assert_eq!(metric(&text, &format!("elicence_run_rejected{p}}}")), 15.0);
    let by_rule: f64 = text
        .lines()
        .filter(|l| l.starts_with("elicence_run_rejects{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(by_rule, 15.0, "rejects by rule add up: {text}");
    assert_eq!(metric(&text, &format!("elicence_run_success{p}}}")), 1.0);
    let last = format!("elicence_run_last_success_timestamp_seconds{p}}}");
    assert_eq!(metric(&text, &last), NOW_UNIX as f64);
    assert!(metric(&text, &format!("elicence_run_duration_seconds{p}}}")) > 0.0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split('{').next().unwrap();
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{line}");
    }

    // A run that fails after it started (the second input lacks a column): success 0, the last
    // success time of the earlier run is kept, the licences of the first input are counted.
    let broken = scratch.path().join("broken.csv");
    std::fs::write(&broken, "经营者名称,发证日期\r\n甲,2020-01-01\r\n").unwrap();
    let later = scratch.path().join("later.csv");
    let fixture = std::fs::read_to_string(root().join(EXPORT)).unwrap();
    std::fs::write(&later, fixture).unwrap();
    let out = run_expect(
        elicence()
            .args(["run", FOOD, "--operator", "tester", "--progress", "never", "--input"])
            .arg(&later)
            .arg(&broken)
            .arg("--data")
            .arg(&data)
            .arg("--keys")
            .arg(keys())
            .arg("--metrics-file")
            .arg(&metrics)
            .env("ELICENCE_NOW", "2026-11-28T10:00:00Z"),
        4,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed"), "{stderr}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(metric(&text, &format!("elicence_run_success{p}}}")), 0.0);
    assert_eq!(metric(&text, &last), NOW_UNIX as f64, "the last success stays the earlier one");
    assert_eq!(
        metric(&text, &format!("elicence_run_last_finish_timestamp_seconds{p}}}")),
        (NOW_UNIX + 86_400) as f64
    );
    assert_eq!(metric(&text, &format!("elicence_run_licences{p},outcome=\"unchanged\"}}")), 9.0);
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- dry run ----

fn dry_run(data: &Path, registry: Option<&str>, out: Option<&Path>) -> Value {
    let mut cmd = run_cmd(data, EXPORT);
    cmd.args(["--dry-run", "--json"]);
    if let Some(r) = registry {
        cmd.args(["--registry", r]);
    }
    if let Some(o) = out {
        cmd.arg("--out").arg(o);
    }
    json_stdout(&run_expect(&mut cmd, 0))
}

#[test]
fn dry_run_decides_like_a_run_and_writes_nothing_sqlite() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let out = scratch.path().join("out");
    // Against no registry: everything is new, and nothing is created.
    let first = dry_run(&data, None, Some(&out));
    assert_eq!(first["dry_run"], true);
    assert_eq!(counts(&first), [26, 7, 1, 1, 0, 2, 15], "what the real first run does");
    assert!(!data.exists(), "a dry run creates no data folder, registry or key");
    let decisions = util::read_csv(&out.join("decisions.csv"));
    assert_eq!(decisions[0], ["source", "would", "identifier", "supersedes"]);
    let would = |w: &str| decisions.iter().filter(|r| r[1] == w).count();
    assert_eq!((would("issue"), would("change"), would("revoke")), (7, 1, 1));
    let change = decisions.iter().find(|r| r[1] == "change").unwrap();
    assert!(change[2].contains(".002.") && change[3].contains(".001."), "{change:?}");

    let real = json_stdout(&run_expect(run_cmd(&data, EXPORT).arg("--json"), 0));
    assert_eq!(counts(&real), counts(&first));
    let runs = sqlite_count(&data, "SELECT count(*) FROM runs");
    let audit = sqlite_count(&data, "SELECT count(*) FROM audit_log");
    let again = dry_run(&data, None, None);
    assert_eq!(counts(&again), [26, 0, 0, 0, 9, 2, 15]);
    assert_eq!(again["registry"], data.join("registry.sqlite").to_str().unwrap());
    assert_eq!(sqlite_count(&data, "SELECT count(*) FROM runs"), runs, "no run recorded");
    assert_eq!(sqlite_count(&data, "SELECT count(*) FROM audit_log"), audit, "no audit entry");
    assert!(!data.join("dev-keys").exists());
    // A dry run with --metrics-file is a usage error (it writes nothing).
    run_expect(run_cmd(&data, EXPORT).args(["--dry-run", "--metrics-file", "m.prom"]), 2);
}

#[test]
fn dry_run_decides_like_a_run_and_writes_nothing_postgres() {
    let Some(db) = PgDatabase::create("dry_run_postgres") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let first = dry_run(&data, Some(&db.url), None);
    assert_eq!(counts(&first), [26, 7, 1, 1, 0, 2, 15]);
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a dry run creates no schema");
    run_expect(run_cmd(&data, EXPORT).args(["--registry", &db.url]), 0);
    let audit: i64 = client.query_one("SELECT count(*) FROM audit_log", &[]).unwrap().get(0);
    let again = dry_run(&data, Some(&db.url), None);
    assert_eq!(counts(&again), [26, 0, 0, 0, 9, 2, 15]);
    let after: i64 = client.query_one("SELECT count(*) FROM audit_log", &[]).unwrap().get(0);
    assert_eq!(after, audit, "no audit entry");
}

// ---- pipelines: header aliases ----

/// A copy of `pipelines/` (and the seal image its layouts name) in `dir`, with `aliases` added
/// to the 许可证编号 column of the food pipeline.
fn pipeline_with_aliases(dir: &Path, aliases: &str) -> PathBuf {
    copy_dir(&root().join("pipelines"), &dir.join("pipelines"));
    let seals = dir.join("fixtures/seals");
    std::fs::create_dir_all(&seals).unwrap();
    std::fs::copy(root().join("fixtures/seals/seal.png"), seals.join("seal.png")).unwrap();
    let path = dir.join("pipelines/food-business-permit.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "header = \"许可证编号\"\n",
        &format!("header = \"许可证编号\"\naliases = {aliases}\n"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_column_is_found_under_its_alias_and_two_names_present_are_a_configuration_error() {
    let scratch = tempfile::tempdir().unwrap();
    let pipeline = pipeline_with_aliases(scratch.path(), "[\"许可证号\", \"证号\"]");
    let fixture = std::fs::read_to_string(root().join(EXPORT)).unwrap();
    let renamed = scratch.path().join("renamed.csv");
    std::fs::write(&renamed, fixture.replacen("许可证编号,", "许可证号,", 1)).unwrap();
    let validate = |input: &Path, code: i32| {
        let mut cmd = elicence();
        cmd.current_dir(scratch.path()).arg("validate").arg(&pipeline).arg("--input").arg(input);
        cmd.arg("--json");
        run_expect(&mut cmd, code)
    };
    let out = validate(&renamed, 0);
    let report = json_stdout(&out);
    assert_eq!(report["counts"]["read"], 26, "{report}");
    assert_eq!(report["counts"]["rejected"], 15, "the same rows as under 许可证编号: {report}");

    // Both names in one export: which holds the number is not for the tool to guess.
    let both = scratch.path().join("both.csv");
    let mut lines = fixture.split("\r\n");
    let header = lines.next().unwrap();
    let mut text = format!("{header},许可证号\r\n");
    for l in lines.filter(|l| !l.is_empty()) {
        text.push_str(&format!("{l},X\r\n"));
    }
    std::fs::write(&both, text).unwrap();
    let out = validate(&both, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("许可证编号 and 许可证号"), "{stderr}");

    // Missing under every name: the message names the aliases.
    let none = scratch.path().join("none.csv");
    std::fs::write(&none, fixture.replacen("许可证编号,", "编号,", 1)).unwrap();
    let out = validate(&none, 4);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("许可证编号 (or 许可证号, 证号)"), "{stderr}");

    // An alias that is another column's header is a pipeline error, found before reading.
    let dir = scratch.path().join("bad");
    let bad = pipeline_with_aliases(&dir, "[\"经营者名称\"]");
    let out =
        run_expect(elicence().arg("validate").arg(&bad).arg("--input").arg(root().join(EXPORT)), 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"经营者名称\" is mapped twice"), "{stderr}");
}

// ---- packaging ----

/// The man pages and completions the Debian package installs come from the command line.
#[test]
fn package_assets_writes_man_pages_and_completions() {
    let scratch = tempfile::tempdir().unwrap();
    let out = run_expect(elicence().arg("package-assets").arg("--out").arg(scratch.path()), 0);
    assert!(!out.stdout.is_empty());
    let read = |p: &str| {
        std::fs::read_to_string(scratch.path().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let run_page = read("man/elicence-run.1");
    assert!(run_page.starts_with(".ie") || run_page.contains(".TH"), "{run_page}");
    assert!(run_page.contains("metrics\\-file"), "the run page documents --metrics-file");
    assert!(read("man/elicence.1").contains("log\\-format"));
    assert!(read("man/elicence-audit-verify.1").contains("json"));
    assert!(!scratch.path().join("man/elicence-package-assets.1").exists(), "hidden");
    assert!(read("completions/elicence.bash").contains("--dry-run"));
    assert!(read("completions/_elicence").starts_with("#compdef elicence"));
    assert!(read("completions/elicence.fish").contains("complete -c elicence"));
}
