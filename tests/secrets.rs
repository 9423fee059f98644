//! Personal data encrypted at rest (issue 18, item 2), through the real binary: after runs over
//! the fixtures, the SQLite file (every table and column, and its raw bytes) and the PostgreSQL
//! tables hold no citizen ID of the fixtures; a department querying within its rights reads
//! them in clear; a re-run is unchanged; `secrets rotate` re-encrypts and retires the old key;
//! `backup` leaves the key out unless `--include-secrets`, and `restore` then needs it;
//! `migrate` carries the sealed registry to PostgreSQL; an altered ciphertext is a clear error.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use util::{PgDatabase, elicence, root, run_expect};

const RUNS: [(&str, &str); 2] = [
    ("pipelines/food-business-permit.toml", "fixtures/food-business-permit/export-utf8.csv"),
    (
        "pipelines/special-operations-certificate.toml",
        "fixtures/special-operations-certificate/export-utf8.csv",
    ),
];

/// 长春市市场监督管理局: a consuming department, granted unmasking below.
const MARKET: &str = "11220100MB1560013P";
/// The special-operations certificate holder 王建军 and his citizen ID (the holder code).
const WORKER_ID: &str = "220183198304050351";
const WORKER: &str = "王建军";
/// A food licence's legal representative's citizen ID (a personal field, not the holder).
const LEGAL_REP_ID: &str = "220104198005120318";

/// Every citizen ID in the fixture exports the runs read, as the registry would hold it:
/// 18-character IDs (full-width digits made half-width), and for each 15-digit ID the first
/// 17 characters of its 18-digit form (the upgrade inserts the century 19).
fn fixture_citizen_ids() -> Vec<String> {
    let id18 =
        regex::Regex::new(r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dX]").unwrap();
    let id15 =
        regex::Regex::new(r"(?:^|[^\d])([1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3})(?:[^\d]|$)")
            .unwrap();
    let mut ids = std::collections::BTreeSet::new();
    for (_, input) in RUNS {
        let text = std::fs::read_to_string(root().join(input)).unwrap();
        let text: String = text
            .chars()
            .map(|c| match c {
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap(),
                c => c,
            })
            .collect();
        for m in id18.find_iter(&text) {
            ids.insert(m.as_str().to_owned());
        }
        for line in text.lines() {
            for cell in line.split(',') {
                if let Some(c) = id15.captures(cell) {
                    let id = &c[1];
                    ids.insert(id.to_owned());
                    ids.insert(format!("{}19{}", &id[..6], &id[6..]));
                }
            }
        }
    }
    assert!(ids.contains(WORKER_ID) && ids.contains(LEGAL_REP_ID), "{ids:?}");
    assert!(ids.len() >= 8, "the fixtures have citizen IDs: {ids:?}");
    ids.into_iter().collect()
}

/// Every (table, column, value) of a SQLite registry holding one of `needles`.
fn sqlite_hits(db: &Path, needles: &[String]) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut hits = Vec::new();
    for table in &tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for column in &columns {
            for needle in needles {
                let n: i64 = conn
                    .query_row(
                        &format!(
                            "SELECT COUNT(*) FROM \"{table}\" WHERE CAST(\"{column}\" AS TEXT) LIKE ?1"
                        ),
                        [format!("%{needle}%")],
                        |r| r.get(0),
                    )
                    .unwrap();
                if n > 0 {
                    hits.push(format!("{table}.{column}: {needle} ({n} rows)"));
                }
            }
        }
    }
    hits
}

/// Needles found anywhere in the raw bytes of the SQLite file and its write-ahead log.
fn raw_hits(db: &Path, needles: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for suffix in ["", "-wal"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        let Ok(bytes) = std::fs::read(&path) else { continue };
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    hits
}

/// Every (table, column) of a PostgreSQL registry holding one of `needles`.
fn pg_hits(url: &str, needles: &[String]) -> Vec<String> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(columns.iter().any(|(t, _)| t == "versions"), "a registry: {columns:?}");
    let mut hits = Vec::new();
    for (table, column) in &columns {
        for needle in needles {
            let n: i64 = client
                .query_one(
                    &format!("SELECT COUNT(*) FROM \"{table}\" WHERE \"{column}\"::text LIKE $1"),
                    &[&format!("%{needle}%")],
                )
                .unwrap()
                .get(0);
            if n > 0 {
                hits.push(format!("{table}.{column}: {needle} ({n} rows)"));
            }
        }
    }
    hits
}

struct Registry {
    dir: tempfile::TempDir,
    pg: Option<String>,
}

impl Registry {
    fn sqlite() -> Registry {
        Registry { dir: tempfile::tempdir().unwrap(), pg: None }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn db(&self) -> PathBuf {
        self.data().join("registry.sqlite")
    }

    fn key_file(&self) -> PathBuf {
        self.data().join("secrets/field-key")
    }

    fn cmd(&self) -> Command {
        let mut c = elicence();
        c.env("ELICENCE_DATA", self.data());
        c.env_remove("ELICENCE_FIELD_KEY_FILE");
        c.env_remove("ELICENCE_CREDENTIAL");
        match &self.pg {
            Some(url) => c.env("ELICENCE_REGISTRY", url),
            None => c.env_remove("ELICENCE_REGISTRY"),
        };
        c
    }

    /// Runs every fixture; returns the reports.
    fn run_all(&self) -> Vec<Value> {
        RUNS.iter()
            .map(|(pipeline, input)| {
                let out = run_expect(
                    self.cmd()
                        .args(["run", pipeline, "--input", input, "--keys", "fixtures/keys"])
                        .args(["--json", "--operator", "tester", "--progress", "never"]),
                    0,
                );
                serde_json::from_slice(&out.stdout).expect("run --json prints the report")
            })
            .collect()
    }

    /// Adds MARKET with an unmasking grant on both types; returns its credential file.
    fn market(&self) -> PathBuf {
        let out = run_expect(
            self.cmd().args(["dept", "add", MARKET, "--name", "长春市市场监督管理局"]).args([
                "--level",
                "prefectural",
                "--region",
                "220100",
            ]),
            0,
        );
        let cred = self.dir.path().join("market.cred");
        std::fs::write(&cred, &out.stdout).unwrap();
        for t in ["food-business-permit", "special-operations-certificate"] {
            run_expect(self.cmd().args(["dept", "grant", MARKET, "--type", t, "--unmask"]), 0);
        }
        cred
    }

    /// `query --holder WORKER_ID` as MARKET (with `extra` environment): the exit code, the
    /// answer and stderr.
    fn query_worker(&self, cred: &Path, env: &[(&str, &Path)]) -> (i32, Value, String) {
        let mut c = self.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .args([
                "query",
                "--reason",
                "执法检查",
                "--json",
                "--as",
                MARKET,
                "--holder",
                WORKER_ID,
            ])
            .arg("--credential-file")
            .arg(cred)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn field<'a>(licence: &'a Value, key: &str) -> &'a str {
    licence["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|x| x["key"] == key))
        .and_then(|f| f["value"].as_str())
        .unwrap_or_else(|| panic!("field {key} in {licence}"))
}

fn unchanged_rerun(reg: &Registry, first: &[Value]) {
    for (report, first) in reg.run_all().iter().zip(first) {
        let c = &report["counts"];
        let issued = first["counts"]["issued"].as_u64().unwrap()
            + first["counts"]["changed"].as_u64().unwrap();
        assert!(issued > 0, "the first run issued: {first}");
        assert_eq!(c["issued"], 0, "{report}");
        assert_eq!(c["changed"], 0, "{report}");
        assert!(c["unchanged"].as_u64().unwrap() >= issued, "{report}");
    }
}

fn assert_worker_in_clear(answer: &Value) {
    let licence = &answer["licences"][0];
    assert_eq!(licence["holder_code"], WORKER_ID, "{answer}");
    assert_eq!(licence["holder_name"], WORKER, "{answer}");
    assert_eq!(field(licence, "holder_code"), WORKER_ID);
}

#[test]
fn sqlite_registry_holds_no_citizen_id_and_queries_within_rights_decrypt() {
    let ids = fixture_citizen_ids();
    let reg = Registry::sqlite();
    let first = reg.run_all();

    // The key: 0600, in <data>/secrets.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(reg.key_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "field key mode");
    }
    let cred = reg.market();
    let hits = sqlite_hits(&reg.db(), &ids);
    assert!(hits.is_empty(), "citizen IDs in the registry: {hits:#?}");
    let hits = raw_hits(&reg.db(), &ids);
    assert!(hits.is_empty(), "citizen IDs in the SQLite file: {hits:#?}");
    // Not the name of a person holder either, and reject messages (which quote cells) are
    // sealed.
    assert!(sqlite_hits(&reg.db(), &[WORKER.to_owned()]).is_empty());
    let conn = rusqlite::Connection::open(reg.db()).unwrap();
    let (rejects, sealed): (i64, i64) = conn
        .query_row("SELECT COUNT(*), SUM(message LIKE 'sealed:v1:%') FROM rejects", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(rejects > 0 && sealed == rejects, "{sealed} of {rejects} reject messages sealed");
    drop(conn);

    let (code, answer, stderr) = reg.query_worker(&cred, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_worker_in_clear(&answer);
    unchanged_rerun(&reg, &first);
    run_expect(reg.cmd().args(["audit", "verify"]), 0);
}

#[test]
fn rotation_re_encrypts_and_the_old_key_no_longer_opens_anything() {
    let reg = Registry::sqlite();
    let first = reg.run_all();
    let cred = reg.market();
    let old_key = reg.dir.path().join("old-field-key");
    std::fs::copy(reg.key_file(), &old_key).unwrap();
    let fields_before: Vec<String> = {
        let conn = rusqlite::Connection::open(reg.db()).unwrap();
        let mut stmt = conn.prepare("SELECT fields_json FROM versions ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };

    let out = run_expect(reg.cmd().args(["secrets", "rotate", "--json"]), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["versions"].as_u64(), Some(fields_before.len() as u64), "{report}");
    assert_eq!(report["resumed"], false);
    let retired = report["retired"][0].as_str().unwrap().to_owned();
    let key_text = std::fs::read_to_string(reg.key_file()).unwrap();
    assert!(!key_text.contains(&retired), "the old data key left the key file");
    let conn = rusqlite::Connection::open(reg.db()).unwrap();
    let fields_after: Vec<String> = {
        let mut stmt = conn.prepare("SELECT fields_json FROM versions ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    for (before, after) in fields_before.iter().zip(&fields_after) {
        assert_ne!(before, after);
        assert!(after.starts_with(&format!("sealed:v1:{}:", report["current"].as_str().unwrap())));
    }
    let rotated: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_log WHERE action = 'field_key_rotated'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rotated, 1);
    drop(conn);

    let (code, answer, stderr) = reg.query_worker(&cred, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_worker_in_clear(&answer);
    unchanged_rerun(&reg, &first);
    run_expect(reg.cmd().args(["audit", "verify"]), 0);

    // The old key file opens nothing any more: a configuration error naming the key.
    let (code, answer, stderr) = reg.query_worker(&cred, &[("ELICENCE_FIELD_KEY_FILE", &old_key)]);
    assert_eq!(code, 3, "{answer} {stderr}");
    assert!(stderr.contains("field key") && stderr.contains("current data key"), "{stderr}");
}

#[test]
fn backup_leaves_the_key_out_unless_asked_and_restore_then_needs_it() {
    let reg = Registry::sqlite();
    reg.run_all();
    let cred = reg.market();

    let plain = reg.dir.path().join("backup");
    run_expect(reg.cmd().arg("backup").arg(&plain), 0);
    assert!(!plain.join("field-key").exists());
    let manifest = std::fs::read_to_string(plain.join("manifest.json")).unwrap();
    assert!(!manifest.contains("field-key"), "{manifest}");

    // Restoring it without the key: refused, nothing made live.
    let restored = reg.dir.path().join("restored");
    let out = run_expect(
        elicence()
            .env_remove("ELICENCE_FIELD_KEY_FILE")
            .arg("restore")
            .arg(&plain)
            .arg("--data")
            .arg(&restored),
        3,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ELICENCE_FIELD_KEY_FILE"), "{stderr}");
    assert!(!restored.exists() || std::fs::read_dir(&restored).unwrap().next().is_none());
    // With the key supplied it restores, and queries read the holders with that key.
    run_expect(
        elicence()
            .env("ELICENCE_FIELD_KEY_FILE", reg.key_file())
            .arg("restore")
            .arg(&plain)
            .arg("--data")
            .arg(&restored),
        0,
    );
    let restored_reg = Registry { dir: tempfile::tempdir().unwrap(), pg: None };
    let mut c = restored_reg.cmd();
    c.env("ELICENCE_DATA", &restored).env("ELICENCE_FIELD_KEY_FILE", reg.key_file());
    let out = run_expect(
        c.args(["query", "--reason", "执法检查", "--json", "--as", MARKET, "--holder", WORKER_ID])
            .arg("--credential-file")
            .arg(&cred),
        0,
    );
    assert_worker_in_clear(&serde_json::from_slice(&out.stdout).unwrap());

    // --include-secrets: the key is in the backup (0600) and restores with it.
    let full = reg.dir.path().join("backup-full");
    run_expect(reg.cmd().arg("backup").arg(&full).arg("--include-secrets"), 0);
    // Named by its hash (a later backup never overwrites a file an earlier manifest names).
    let key = std::fs::read(reg.key_file()).unwrap();
    let key_file = full.join(format!("field-key-{}", elicence::registry::sha256_hex(&key)));
    assert_eq!(std::fs::read(&key_file).unwrap(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = reg.dir.path().join("restored-full");
    run_expect(
        elicence()
            .env_remove("ELICENCE_FIELD_KEY_FILE")
            .arg("restore")
            .arg(&full)
            .arg("--data")
            .arg(&again),
        0,
    );
    assert!(again.join("secrets/field-key").exists());
    let mut c = restored_reg.cmd();
    c.env("ELICENCE_DATA", &again);
    let out = run_expect(
        c.args(["query", "--reason", "执法检查", "--json", "--as", MARKET, "--holder", WORKER_ID])
            .arg("--credential-file")
            .arg(&cred),
        0,
    );
    assert_worker_in_clear(&serde_json::from_slice(&out.stdout).unwrap());
}

#[test]
fn an_altered_ciphertext_is_a_clear_error_not_a_panic() {
    let reg = Registry::sqlite();
    reg.run_all();
    let cred = reg.market();
    let conn = rusqlite::Connection::open(reg.db()).unwrap();
    // Another row's ciphertext moved onto the worker's version: it still looks sealed, but it
    // is bound to the other row.
    let n = conn
        .execute(
            "UPDATE versions SET fields_json = (SELECT fields_json FROM versions v2
                 WHERE v2.id <> versions.id ORDER BY v2.id LIMIT 1)
             WHERE holder_code = (SELECT holder_code FROM versions ORDER BY id DESC LIMIT 1)",
            [],
        )
        .unwrap();
    assert!(n >= 1);
    drop(conn);
    // A query of every special-operations holder (the last one altered) fails with the row named.
    let ids: Vec<String> = {
        let conn = rusqlite::Connection::open(reg.db()).unwrap();
        let mut stmt =
            conn.prepare("SELECT identifier FROM versions ORDER BY id DESC LIMIT 1").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let out = reg
        .cmd()
        .args(["query", "--reason", "执法检查", "--json", "--as", MARKET, "--id", &ids[0]])
        .arg("--credential-file")
        .arg(&cred)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not open") && stderr.contains(&ids[0]), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn postgres_registry_by_migrate_and_by_run_holds_no_citizen_id() {
    let Some(pg) = PgDatabase::create("secrets_pg") else { return };
    let ids = fixture_citizen_ids();
    // A SQLite registry migrated to PostgreSQL: the sealed rows and the key record move, the
    // key file stays in the same data folder.
    let reg = Registry::sqlite();
    let first = reg.run_all();
    let cred = reg.market();
    run_expect(reg.cmd().args(["migrate", "--to", &pg.url]), 0);
    let pg_reg = Registry { dir: reg.dir, pg: Some(pg.url.clone()) };
    let hits = pg_hits(&pg.url, &ids);
    assert!(hits.is_empty(), "citizen IDs in PostgreSQL: {hits:#?}");
    let (code, answer, stderr) = pg_reg.query_worker(&cred, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_worker_in_clear(&answer);
    unchanged_rerun(&pg_reg, &first);

    // A fresh PostgreSQL registry loaded by runs; its key is in --data's secrets/.
    let Some(fresh) = PgDatabase::create("secrets_pg_fresh") else { return };
    let reg = Registry { dir: tempfile::tempdir().unwrap(), pg: Some(fresh.url.clone()) };
    let first = reg.run_all();
    assert!(reg.key_file().exists());
    let cred = reg.market();
    let hits = pg_hits(&fresh.url, &ids);
    assert!(hits.is_empty(), "citizen IDs in PostgreSQL: {hits:#?}");
    let (code, answer, stderr) = reg.query_worker(&cred, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_worker_in_clear(&answer);
    unchanged_rerun(&reg, &first);
    // Another machine without the key file: a clear refusal, not plaintext and not a new key.
    let other = Registry { dir: tempfile::tempdir().unwrap(), pg: Some(fresh.url.clone()) };
    let (code, _, stderr) = other.query_worker(&cred, &[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("ELICENCE_FIELD_KEY_FILE"), "{stderr}");
    assert!(!other.key_file().exists());
}

/// A rotation killed after it wrote the new key first into the key file (the old one after it)
/// and before anything was re-encrypted: running it again finishes it.
#[test]
fn an_interrupted_rotation_is_finished_by_running_it_again() {
    let reg = Registry::sqlite();
    let first = reg.run_all();
    let cred = reg.market();
    let text = std::fs::read_to_string(reg.key_file()).unwrap();
    let old_id = text
        .lines()
        .find_map(|l| l.strip_prefix("key ").and_then(|r| r.split_whitespace().next()))
        .unwrap()
        .to_owned();
    let new_line = format!("key deadbeef {}\n", "ab".repeat(32));
    let at = text.find("\nkey ").unwrap() + 1;
    std::fs::write(reg.key_file(), format!("{}{new_line}{}", &text[..at], &text[at..])).unwrap();
    // Meanwhile the registry still reads (both keys are in the file).
    let (code, answer, stderr) = reg.query_worker(&cred, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_worker_in_clear(&answer);

    let out = run_expect(reg.cmd().args(["secrets", "rotate", "--json"]), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(report["current"], "deadbeef");
    assert_eq!(report["retired"], serde_json::json!([old_id]));
    let text = std::fs::read_to_string(reg.key_file()).unwrap();
    assert!(text.contains("key deadbeef") && !text.contains(&old_id), "{text}");
    let (code, answer, stderr) = reg.query_worker(&cred, &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_worker_in_clear(&answer);
    unchanged_rerun(&reg, &first);
}
