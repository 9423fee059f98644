//! The store on S3-compatible object storage, with the real binary against a real S3 server on
//! loopback (s3s-fs inside this test process; see `util/s3_server.rs`): a run's files land in
//! the bucket under today's content addresses and read back (`store check`, `--full` naming a
//! corrupted object, `verify --data`, `copy`, `serve`'s file downloads), a run killed (SIGKILL) between its PUTs and its commit
//! and run again ends with the same registry and objects, a bucket that refuses writes stops
//! the run with the object named and nothing committed, two `--shard` processes share one
//! bucket, `migrate --store-to` copies a store and resumes after an interruption, and an
//! off-site backup into a bucket is incremental and refused when one of its objects is damaged,
//! a large snapshot goes up in parts, a backup interrupted before its manifest leaves the
//! earlier one restorable and is completed by the next backup, restore and `store check
//! --full` fetch several objects at once, and by default a run into a bucket packs each chunk
//! into one segment object that every reader finds.

#[path = "util/s3_server.rs"]
mod s3_server;
mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use s3_server::S3Server;
use serde_json::Value;
use util::{PgDatabase, big_export, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const FIXTURE: &str = "fixtures/food-business-permit/export-utf8.csv";

/// `elicence` with the server's `AWS_*` environment.
fn with_s3(server: &S3Server) -> Command {
    let mut cmd = elicence();
    server.env(&mut cmd);
    cmd
}

/// `elicence run` of the food pipeline with the test keys (and `--store` when given).
fn run_cmd(server: &S3Server, data: &Path, input: &str, store: Option<&str>) -> Command {
    let mut cmd = with_s3(server);
    // A file per object: these tests look at each artefact's object (segments, the default
    // in a bucket, have their own test below).
    cmd.args(["run", FOOD, "--input", input, "--json", "--operator", "tester"])
        .args(["--progress", "never", "--no-segments"])
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(root().join("fixtures/keys"));
    if let Some(store) = store {
        cmd.args(["--store", store]);
    }
    cmd
}

/// A server with the bucket `bucket`, and the food fixture run into `scratch/data` with its
/// store at `store` (a URL in that bucket) or in the data folder.
fn fixture_run(bucket: &str, store: Option<&str>) -> (S3Server, tempfile::TempDir, PathBuf) {
    let server = S3Server::start();
    server.bucket(bucket);
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run_expect(&mut run_cmd(&server, &data, FIXTURE, store), 0);
    (server, scratch, data)
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("run --json prints the report")
}

/// `(identifier, kind, sha256)` of every file the SQLite registry in `data` references, and
/// `(identifier, current?, revoked?)` of every version.
type State = (BTreeSet<(String, String, String)>, BTreeSet<(String, bool, bool)>);

fn registry_state(data: &Path) -> State {
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    let mut files = conn
        .prepare(
            "SELECT v.identifier, vf.kind, vf.sha256 FROM version_files vf
             JOIN versions v ON v.id = vf.version_id",
        )
        .unwrap();
    let files = files
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut versions = conn
        .prepare("SELECT identifier, superseded_by IS NULL, revoked_at IS NOT NULL FROM versions")
        .unwrap();
    let versions = versions
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (files, versions)
}

/// The content address of a file: `ab/cd/<sha256>.<ext>`.
fn key(kind: &str, sha256: &str) -> String {
    let ext = match kind {
        "archive" => "png",
        other => other,
    };
    format!("{}/{}/{sha256}.{ext}", &sha256[..2], &sha256[2..4])
}

/// Every key a registry's files have.
fn referenced_keys(state: &State) -> BTreeSet<String> {
    state.0.iter().map(|(_, kind, sha)| key(kind, sha)).collect()
}

/// Every object key of the store `s3://bucket/store`, without the prefix.
fn store_keys(server: &S3Server, bucket: &str) -> BTreeSet<String> {
    let keys = server.keys(bucket, "store");
    keys.iter().map(|k| k.trim_start_matches("store/").to_owned()).collect()
}

/// Every file of a folder store, as keys.
fn folder_keys(store: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![store.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(store).unwrap();
                let parts: Vec<String> =
                    rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
                out.insert(parts.join("/"));
            }
        }
    }
    out
}

/// `SELECT count(*) FROM table` in the SQLite registry of `data`; 0 before it exists.
fn committed(data: &Path, table: &str) -> usize {
    let sql = format!("SELECT count(*) FROM {table}");
    rusqlite::Connection::open(data.join("registry.sqlite"))
        .and_then(|c| c.query_row(&sql, [], |r| r.get::<_, i64>(0)))
        .map_or(0, |n| n as usize)
}

/// The department of the sharing tests (长春市医疗保障局).
const DEPT: &str = "11220100MB18300819";
/// A current licence of the food fixture.
const CURRENT: &str =
    "1.2.156.3005.2.11100000MB0143028R901.11220104MB1875524M.JY12201040000016.002.8";

/// `elicence ARGS` on the registry in `data` with its store at `store`.
fn shared_cmd(server: &S3Server, store: &str, data: &Path, args: &[&str]) -> Command {
    let mut cmd = with_s3(server);
    cmd.args(args).env("ELICENCE_STORE", store).env("ELICENCE_DATA", data);
    cmd
}

/// Adds [`DEPT`] to the registry in `data` with an unmask grant on food permits; returns the
/// file (in `dir`) that holds its credential.
fn granted_department(server: &S3Server, store: &str, data: &Path, dir: &Path) -> PathBuf {
    let add = ["dept", "add", DEPT, "--name", "长春市医疗保障局", "--level", "prefectural"];
    let add = run_expect(shared_cmd(server, store, data, &add).args(["--region", "220100"]), 0);
    let credential = dir.join("dept.cred");
    std::fs::write(&credential, add.stdout).unwrap();
    let grant = ["dept", "grant", DEPT, "--type", "food-business-permit", "--unmask"];
    run_expect(&mut shared_cmd(server, store, data, &grant), 0);
    credential
}

/// `serve` of the registry in `data` (store at `store`) started for [`DEPT`], granted as
/// [`granted_department`] does: the server and the department's bearer token.
fn serve_to_department(
    server: &S3Server,
    store: &str,
    data: &Path,
    dir: &Path,
) -> (ServeChild, String) {
    let credential = granted_department(server, store, data, dir);
    let served = ServeChild::start(&mut shared_cmd(
        server,
        store,
        data,
        &["serve", "--listen", "127.0.0.1:0"],
    ));
    let token = served.token(DEPT, std::fs::read_to_string(&credential).unwrap().trim());
    (served, token)
}

/// `elicence serve` started on a free loopback port, stopped when dropped.
struct ServeChild {
    child: std::process::Child,
    url: String,
}

impl ServeChild {
    fn start(cmd: &mut Command) -> ServeChild {
        use std::io::BufRead as _;
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "listening"
                {
                    let _ = tx.send(v["url"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("serve listens");
        ServeChild { child, url }
    }

    fn token(&self, department: &str, credential: &str) -> String {
        let body = serde_json::json!({"department": department, "credential": credential});
        let mut r = util::http_agent()
            .post(format!("{}/api/v1/token", self.url))
            .content_type("application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        format!("Bearer {}", v["access_token"].as_str().unwrap())
    }

    /// GET `path` as the department of `token`, with a reason: the status and the body.
    fn get(&self, token: &str, path: &str) -> (u16, Vec<u8>) {
        let mut r = util::http_agent()
            .get(format!("{}{path}", self.url))
            .header("authorization", token)
            .header("x-reason", "%E5%8C%BB%E4%BF%9D%E5%AE%9A%E7%82%B9%E5%AE%A1%E6%A0%B8")
            .call()
            .unwrap();
        let bytes = r.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
        (r.status().as_u16(), bytes)
    }

    fn download(&self, token: &str, path: &str) -> Vec<u8> {
        let (status, bytes) = self.get(token, path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&bytes));
        bytes
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_run_into_a_bucket_stores_content_addresses_and_reads_them_back() {
    let server = S3Server::start();
    let store = format!("{}/store", server.bucket("licences"));
    let scratch = tempfile::tempdir().unwrap();

    // The same run into a local folder is the reference.
    let local = scratch.path().join("local");
    let want = report(&run_expect(&mut run_cmd(&server, &local, FIXTURE, None), 0));
    let data = scratch.path().join("data");
    let got = report(&run_expect(&mut run_cmd(&server, &data, FIXTURE, Some(&store)), 0));
    assert_eq!(got["counts"], want["counts"]);
    let state = registry_state(&data);
    assert_eq!(state, registry_state(&local), "same licences and the same file hashes");
    assert!(!data.join("store").exists(), "nothing written to the local folder");
    // Keys are today's content addresses, and exactly the referenced ones.
    let keys = store_keys(&server, "licences");
    assert_eq!(keys, referenced_keys(&state));
    assert_eq!(keys, folder_keys(&local.join("store")));

    // ELICENCE_STORE is the same as --store; a re-run changes nothing.
    let again = run_expect(run_cmd(&server, &data, FIXTURE, None).env("ELICENCE_STORE", &store), 0);
    assert_eq!(report(&again)["counts"]["unchanged"], 9);

    let check = |full: bool, code: i32| {
        let mut cmd = with_s3(&server);
        cmd.args(["store", "check", "--json", "--store", &store]).arg("--data").arg(&data);
        if full {
            cmd.arg("--full");
        }
        let out = run_expect(&mut cmd, code);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(check(false, 0)["ok"], true);
    assert_eq!(check(true, 0)["ok"], true);

    // verify --data reads the registry through the same flags.
    let pdf = local.join("store").join(keys.iter().find(|k| k.ends_with(".pdf")).unwrap());
    let o = with_s3(&server)
        .arg("verify")
        .arg(&pdf)
        .arg("--keys")
        .arg(root().join("fixtures/keys"))
        .args(["--json", "--store", &store])
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let verdict: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(verdict["status"], "authentic", "{verdict}");
    assert!(verdict["registry_status"]["status"].is_string(), "{verdict}");

    // copy reads the licence's PDF from the bucket (a department with an unmask grant).
    let shared = |args: &[&str]| shared_cmd(&server, &store, &data, args);
    let dept = DEPT;
    let credential = granted_department(&server, &store, &data, scratch.path());
    let copy = scratch.path().join("copy.pdf");
    let current = CURRENT;
    run_expect(
        shared(&["copy", current, "--reason", "医保定点审核", "--as", dept])
            .arg("--credential-file")
            .arg(&credential)
            .arg("--out")
            .arg(&copy)
            .args(["--expires", "2026-12-31", "--keys", "fixtures/keys"]),
        0,
    );
    assert!(std::fs::read(&copy).unwrap().starts_with(b"%PDF"));

    // serve hands out the signed files from the bucket, byte for byte.
    let mut server_cmd = shared(&["serve", "--listen", "127.0.0.1:0"]);
    let served = ServeChild::start(&mut server_cmd);
    let token = served.token(dept, std::fs::read_to_string(&credential).unwrap().trim());
    for kind in ["pdf", "xml", "ofd"] {
        let bytes = served.download(&token, &format!("/api/v1/licences/{current}/files/{kind}"));
        let sha = elicence::registry::sha256_hex(&bytes);
        assert!(keys.contains(&key(kind, &sha)), "the {kind} served is an object of the bucket");
        let local_copy = std::fs::read(local.join("store").join(key(kind, &sha))).unwrap();
        assert_eq!(bytes, local_copy, "the {kind} as the folder run stored it");
    }
    drop(served);

    // One byte of one object changed on the server's disk, size kept: the listing still
    // matches, the full check names the object.
    let victim = keys.iter().find(|k| k.ends_with(".xml")).unwrap();
    let file = server.object_file("licences", &format!("store/{victim}"));
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(check(false, 0)["ok"], true, "names and sizes are intact");
    let full = check(true, 1);
    assert_eq!(full["problems"][0]["kind"], "altered", "{full}");
    let named = full["problems"][0]["path"].as_str().unwrap();
    assert_eq!(named, format!("{store}/{victim}"));

    // A truncated object is found by the listing alone.
    let pdf = keys.iter().find(|k| k.ends_with(".pdf")).unwrap();
    let file = server.object_file("licences", &format!("store/{pdf}"));
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let listed = check(false, 1);
    assert_eq!(listed["problems"][0]["kind"], "wrong_size", "{listed}");
    assert_eq!(listed["problems"][0]["path"], format!("{store}/{pdf}"));
}

#[test]
fn a_bucket_that_refuses_writes_stops_the_run_with_nothing_committed() {
    let server = S3Server::start();
    let store = format!("{}/store", server.bucket("frozen"));
    server.refuse_writes_to("frozen");
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let out = run_cmd(&server, &data, FIXTURE, Some(&store)).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("s3://frozen/store/"), "the refused object is named:\n{stderr}");
    assert!(stderr.contains("PUT"), "{stderr}");
    assert_eq!(committed(&data, "versions"), 0, "nothing committed");
    assert!(server.keys("frozen", "").is_empty());
}

#[test]
fn a_run_killed_between_its_puts_and_its_commit_reruns_to_the_same_registry_and_objects() {
    let server = S3Server::start();
    let store = format!("{}/store", server.bucket("licences"));
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 600);
    let input = input.to_str().unwrap();
    let local = scratch.path().join("local");
    run_expect(&mut run_cmd(&server, &local, input, None), 0);
    let want = registry_state(&local);

    let data = scratch.path().join("data");
    let mut kills = 0;
    // Twice: killed once objects of a chunk not yet committed are in the bucket.
    for _ in 0..2 {
        let mut child =
            run_cmd(&server, &data, input, Some(&store)).stdout(Stdio::null()).spawn().unwrap();
        let started = Instant::now();
        loop {
            let objects = server.keys("licences", "store").len();
            if objects > committed(&data, "files") || child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "the run stores something");
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills > 0, "a run was killed with uncommitted objects in the bucket");
    let last = report(&run_expect(&mut run_cmd(&server, &data, input, Some(&store)), 0));
    assert_eq!(last["reconciled"], true);
    let state = registry_state(&data);
    assert_eq!(state, want, "same licences, versions and file hashes as one local run");
    let keys = store_keys(&server, "licences");
    assert_eq!(keys, referenced_keys(&state), "the same objects, none lost, none extra");
    run_expect(
        with_s3(&server)
            .args(["store", "check", "--full", "--store", &store])
            .arg("--data")
            .arg(&data),
        0,
    );
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(&data), 0);
}

#[test]
fn two_shards_load_one_bucket_like_one_process() {
    let Some(pg) = PgDatabase::create("two_shards_load_one_bucket_like_one_process") else {
        return;
    };
    let server = S3Server::start();
    let store = format!("{}/store", server.bucket("shared"));
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 400);
    let input = input.to_str().unwrap();
    let local = scratch.path().join("local");
    run_expect(&mut run_cmd(&server, &local, input, None), 0);
    let want = referenced_keys(&registry_state(&local));

    // Two machines: each its own data folder, one registry, one bucket, one field key (here
    // the local run's, as a mounted secret).
    let field_key = local.join("secrets/field-key");
    let shards: Vec<_> = (0..2)
        .map(|k| {
            run_cmd(&server, &scratch.path().join(format!("machine-{k}")), input, Some(&store))
                .args(["--registry", &pg.url, "--shard", &format!("{k}/2")])
                .env("ELICENCE_FIELD_KEY_FILE", &field_key)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let issued: u64 = shards
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
            report(&out)["counts"]["issued"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(issued, 400);
    let keys = store_keys(&server, "shared");
    assert_eq!(keys, want, "the objects one local run stores");
    run_expect(
        with_s3(&server)
            .args(["store", "check", "--full", "--store", &store, "--registry", &pg.url])
            .env("ELICENCE_FIELD_KEY_FILE", &field_key)
            .arg("--data")
            .arg(scratch.path().join("machine-0")),
        0,
    );
}

#[test]
fn migrate_copies_a_store_to_a_bucket_and_back_and_resumes_after_an_interruption() {
    let (server, scratch, data) = fixture_run("licences", None);
    let bucket = "s3://licences/migrated".to_owned();
    let files = referenced_keys(&registry_state(&data)).len() as u64;
    assert!(files > 10);

    let migrate = |to: &str, from_store: Option<&str>| {
        let mut cmd = with_s3(&server);
        cmd.args(["migrate", "--json", "--store-to", to]).arg("--data").arg(&data);
        if let Some(s) = from_store {
            cmd.args(["--store", s]);
        }
        cmd.output().unwrap()
    };
    // The bucket stops accepting writes after 5 objects: the copy fails, naming one. (PUTs
    // in flight when the refusal comes are abandoned: at most 5 objects are complete, and
    // none when the refusal overtakes the five accepted ones, seen once in a full run.)
    server.write_budget(Some(5));
    let out = migrate(&bucket, None);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://licences/migrated/"));
    let written = server.keys("licences", "migrated").len() as u64;
    assert!(written <= 5, "{written} objects written before the refusal");
    // Run again: only what is missing is copied, then every object is re-hashed.
    server.write_budget(None);
    let out = migrate(&bucket, None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["files"], files);
    // A PUT the server accepted before the refusal can still land after the failed migrate
    // has exited (seen once: 2 objects counted, 3 present when the rerun looked), so the
    // rerun finds at least what was counted, never more than the budget, and copies exactly
    // the rest.
    let present = done["present"].as_u64().unwrap_or(u64::MAX);
    assert!((written..=5).contains(&present), "{written} counted, {done}");
    assert_eq!(done["copied"], files - present, "{done}");
    run_expect(
        with_s3(&server)
            .args(["store", "check", "--full", "--store", &bucket])
            .arg("--data")
            .arg(&data),
        0,
    );

    // And back, from the bucket into a new folder.
    let back = scratch.path().join("back");
    let out = migrate(&format!("file:{}", back.display()), Some(&bucket));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(folder_keys(&back), folder_keys(&data.join("store")));
}

#[test]
fn an_off_site_backup_is_incremental_and_a_damaged_one_is_refused() {
    let (server, scratch, data) = fixture_run("offsite", None);
    let target = "s3://offsite/elicence".to_owned();
    let backup = |code: i32| {
        let out = run_expect(
            with_s3(&server).args(["backup", &target, "--json"]).arg("--data").arg(&data),
            code,
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = backup(0);
    let files = first["manifest"]["files"].as_array().unwrap().len() as u64;
    assert_eq!(first["copied"], files - 1, "every store file (the database is not one)");

    // The second backup PUTs only its in-progress marker, the snapshot and the manifest: three
    // new objects allowed, no more.
    server.write_budget(Some(3));
    let second = backup(0);
    server.write_budget(None);
    assert_eq!(second["copied"], 0);
    assert_eq!(second["already_there"], files - 1);

    // Restore from the bucket: every hash checked, then live.
    // The backup has no field key (no --include-secrets): the live one is supplied.
    let key = data.join("secrets/field-key");
    let restored = scratch.path().join("restored");
    run_expect(
        with_s3(&server)
            .env("ELICENCE_FIELD_KEY_FILE", &key)
            .args(["restore", &target])
            .arg("--data")
            .arg(&restored),
        0,
    );
    run_expect(
        elicence()
            .env("ELICENCE_FIELD_KEY_FILE", &key)
            .args(["store", "check"])
            .arg("--data")
            .arg(&restored),
        0,
    );
    assert_eq!(registry_state(&restored).0, registry_state(&data).0);

    // A damaged object in the backup: the restore refuses, nothing is live.
    let pdf = second["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["path"].as_str())
        .find(|p| p.ends_with(".pdf"))
        .unwrap()
        .to_owned();
    let file = server.object_file("offsite", &format!("elicence/{pdf}"));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let refused = scratch.path().join("refused");
    let out =
        with_s3(&server).args(["restore", &target]).arg("--data").arg(&refused).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&pdf), "names the damaged object");
    assert!(!refused.exists(), "nothing made live");
}

#[test]
fn a_store_that_is_neither_a_folder_nor_a_bucket_is_a_configuration_error() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let out = run_expect(
        elicence()
            .args(["store", "check", "--store", "ftp://licences/store"])
            .arg("--data")
            .arg(&data),
        3,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ftp://licences/store"));
}

/// `elicence backup TARGET --json` against the server, of the registry in `data` (its store
/// at `store` or in `data`); the output whatever the exit code.
fn backup_cmd(server: &S3Server, data: &Path, store: Option<&str>, target: &str) -> Output {
    let mut cmd = with_s3(server);
    if let Some(store) = store {
        cmd.env("ELICENCE_STORE", store);
    }
    cmd.args(["backup", target, "--json"]).arg("--data").arg(data).output().unwrap()
}

/// `elicence restore SOURCE --data RESTORED` with the live field key supplied.
fn restore_cmd(server: &S3Server, data: &Path, source: &str, restored: &Path) -> Output {
    with_s3(server)
        .env("ELICENCE_FIELD_KEY_FILE", data.join("secrets/field-key"))
        .args(["restore", source])
        .arg("--data")
        .arg(restored)
        .output()
        .unwrap()
}

#[test]
fn a_snapshot_larger_than_a_part_goes_to_the_bucket_in_parts_and_restores() {
    let (server, scratch, data) = fixture_run("offsite", None);
    let target = "s3://offsite/elicence".to_owned();
    // A registry grown past two 8 MiB parts: 20 MiB written and dropped leaves free pages,
    // which the online backup copies like any other.
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE padding (b BLOB); INSERT INTO padding VALUES (zeroblob(20971520));
         DROP TABLE padding;",
    )
    .unwrap();
    drop(conn);

    let out = backup_cmd(&server, &data, None, &target);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    let snapshot = &done["manifest"]["files"][0];
    let snapshot_name = format!("registry-{}.sqlite", snapshot["sha256"].as_str().unwrap());
    assert_eq!(snapshot["path"], snapshot_name.as_str(), "named by its hash");
    let size = snapshot["size"].as_u64().unwrap();
    assert!(size > 16 << 20, "the snapshot spans three 8 MiB parts: {size} bytes");

    let ops = |key: &str| -> Vec<String> {
        let requests = server.requests("offsite");
        requests.into_iter().filter(|(_, k)| k == key).map(|(op, _)| op).collect()
    };
    let snapshot_key = format!("elicence/{snapshot_name}");
    let snapshot_ops = ops(&snapshot_key);
    let count = |op: &str| snapshot_ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("CreateMultipartUpload"), 1, "{snapshot_ops:?}");
    assert_eq!(count("UploadPart") as u64, size.div_ceil(8 << 20), "{snapshot_ops:?}");
    assert_eq!(count("CompleteMultipartUpload"), 1, "{snapshot_ops:?}");
    assert_eq!(count("PutObject"), 0, "never one PUT of the whole file: {snapshot_ops:?}");
    let object = std::fs::read(server.object_file("offsite", &snapshot_key)).unwrap();
    assert_eq!(object.len() as u64, size);
    assert_eq!(
        elicence::registry::sha256_hex(&object),
        snapshot["sha256"].as_str().unwrap(),
        "the parts make up the snapshot the manifest names"
    );
    // The manifest: looked for (an earlier backup's?), then written in one PUT.
    assert_eq!(ops("elicence/manifest.json"), ["GetObject", "PutObject"]);

    // Restore streams it back to disk, hash checked.
    let restored = scratch.path().join("restored");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(restored.join("registry.sqlite")).unwrap().len(), size);
    assert_eq!(registry_state(&restored), registry_state(&data));
}

#[test]
fn an_interrupted_backup_leaves_the_earlier_one_restorable_and_the_next_completes_it() {
    let (server, scratch, data) = fixture_run("offsite", None);
    let target = "s3://offsite/elicence".to_owned();
    let marker = "elicence/backup-in-progress.json";
    let snapshots = || -> Vec<String> {
        let keys = server.keys("offsite", "elicence");
        keys.into_iter().filter(|k| k.starts_with("elicence/registry-")).collect()
    };

    // The first backup stops at its manifest: the store files and the snapshot are there.
    server.refuse_writes_of("offsite", "elicence/manifest.json");
    let out = backup_cmd(&server, &data, None, &target);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("s3://offsite/elicence/manifest.json: PUT object"), "{stderr}");
    let keys = server.keys("offsite", "elicence");
    assert_eq!(snapshots().len(), 1, "{keys:?}");
    assert!(keys.contains(&marker.to_owned()), "{keys:?}");
    assert!(!keys.contains(&"elicence/manifest.json".to_owned()), "{keys:?}");
    // No complete backup before it: refused, nothing made live.
    let restored = scratch.path().join("refused");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("s3://offsite/{marker}")), "{stderr}");
    assert!(stderr.contains("interrupted before it finished"), "{stderr}");
    assert!(!restored.exists(), "nothing made live");

    // Run again: the target is taken as the unfinished backup it is, and completed.
    server.allow_writes_of("offsite", "elicence/manifest.json");
    let out = backup_cmd(&server, &data, None, &target);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = done["manifest"]["files"].as_array().unwrap().len() as u64;
    assert_eq!(done["copied"], 0, "the store files were all there: {done}");
    assert_eq!(done["already_there"], files - 1);
    assert!(!server.keys("offsite", "elicence").contains(&marker.to_owned()));
    let first_snapshot =
        format!("elicence/{}", done["manifest"]["files"][0]["path"].as_str().unwrap());
    assert_eq!(
        snapshots(),
        std::slice::from_ref(&first_snapshot),
        "the interrupted one's leftovers went"
    );
    let before = registry_state(&data);
    let restored = scratch.path().join("restored-1");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(registry_state(&restored), before);

    // The registry changes (a licence revoked), and the next backup is interrupted at its
    // manifest: the earlier backup is still whole (its snapshot was not overwritten), so a
    // restore brings back the earlier state and says that a later backup did not finish.
    let live: String = rusqlite::Connection::open(data.join("registry.sqlite"))
        .unwrap()
        .query_row("SELECT identifier FROM versions WHERE superseded_by IS NULL LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    run_expect(
        elicence().args(["revoke", &live, "--reason", "吊销：测试"]).arg("--data").arg(&data),
        0,
    );
    let after = registry_state(&data);
    assert_ne!(after, before);
    server.refuse_writes_of("offsite", "elicence/manifest.json");
    let out = backup_cmd(&server, &data, None, &target);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(snapshots().len(), 2, "the new snapshot beside the earlier one");
    let restored = scratch.path().join("restored-earlier");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a later backup into this target did not finish"), "{stderr}");
    assert_eq!(registry_state(&restored), before, "the earlier complete backup");

    // The next backup completes it: the new state, and only its snapshot is left.
    server.allow_writes_of("offsite", "elicence/manifest.json");
    let out = backup_cmd(&server, &data, None, &target);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    let last_snapshot =
        format!("elicence/{}", done["manifest"]["files"][0]["path"].as_str().unwrap());
    assert_ne!(last_snapshot, first_snapshot);
    assert_eq!(snapshots(), [last_snapshot]);
    assert!(!server.keys("offsite", "elicence").contains(&marker.to_owned()));
    let restored = scratch.path().join("restored-2");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(registry_state(&restored), after);
}

#[test]
fn restore_and_the_full_check_fetch_several_objects_at_once() {
    let store = "s3://licences/store".to_owned();
    let target = "s3://licences/backup".to_owned();
    let (server, scratch, data) = fixture_run("licences", Some(&store));
    let objects = store_keys(&server, "licences").len();
    assert!(objects > 20, "{objects} objects");
    let full_check = || {
        run_expect(
            with_s3(&server)
                .args(["store", "check", "--full", "--json", "--store", &store])
                .arg("--data")
                .arg(&data),
            0,
        )
    };

    // One request after another would reuse one keep-alive connection (two at most); the
    // objects are fetched several at a time, each on a connection of its own.
    let before = server.connections();
    let checked: Value = serde_json::from_slice(&full_check().stdout).unwrap();
    assert_eq!(checked["ok"], true, "{checked}");
    let used = server.connections() - before;
    assert!(used >= 4, "store check --full used {used} connection(s) for {objects} objects");
    let gets = server
        .requests("licences")
        .into_iter()
        .filter(|(op, key)| op == "GetObject" && key.starts_with("store/"))
        .count();
    assert_eq!(gets, objects, "every object read back once");

    let out = backup_cmd(&server, &data, Some(&store), &target);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let before = server.connections();
    let restored = scratch.path().join("restored");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let used = server.connections() - before;
    assert!(used >= 4, "restore used {used} connection(s) for {objects} objects");
    assert_eq!(registry_state(&restored), registry_state(&data));

    // Still every hash checked: one damaged object among many is named by both.
    let victim = store_keys(&server, "licences").into_iter().find(|k| k.ends_with(".ofd")).unwrap();
    for file in [format!("store/{victim}"), format!("backup/store/{victim}")] {
        let file = server.object_file("licences", &file);
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&file, bytes).unwrap();
    }
    let out = run_expect(
        with_s3(&server)
            .args(["store", "check", "--full", "--json", "--store", &store])
            .arg("--data")
            .arg(&data),
        1,
    );
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["fatal"], 1, "{checked}");
    assert_eq!(checked["problems"][0]["path"], format!("{store}/{victim}"));
    let refused = scratch.path().join("refused");
    let out = restore_cmd(&server, &data, &target, &refused);
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&victim), "names the damaged object");
    assert!(!refused.exists(), "nothing made live");
}

#[test]
fn serve_hands_out_a_licence_file_from_a_bucket_and_never_an_altered_one() {
    let store = "s3://licences/store".to_owned();
    let (server, scratch, data) = fixture_run("licences", Some(&store));
    let (served, token) = serve_to_department(&server, &store, &data, scratch.path());
    let path = format!("/api/v1/licences/{CURRENT}/files/pdf");

    // Over real sockets, the object's bytes, byte for byte.
    let pdf = served.download(&token, &path);
    let object = format!("store/{}", key("pdf", &elicence::registry::sha256_hex(&pdf)));
    let file = server.object_file("licences", &object);
    assert_eq!(pdf, std::fs::read(&file).unwrap(), "the bucket's object {object}");
    let gets = |server: &S3Server| {
        let requests = server.requests("licences");
        requests.into_iter().filter(|(op, k)| op == "GetObject" && *k == object).count()
    };
    assert_eq!(gets(&server), 1, "fetched from the bucket");

    // The object damaged on the server's disk: the download fails rather than hand it out.
    let mut bytes = pdf.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (status, body) = served.get(&token, &path);
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    assert!(!body.starts_with(b"%PDF"), "no PDF handed out");
    assert_eq!(gets(&server), 2, "fetched again, and refused by its hash");
}

#[test]
fn in_a_bucket_a_run_packs_each_chunk_into_one_object_by_default_and_every_reader_finds_it() {
    let store = "s3://licences/store".to_owned();
    let server = S3Server::start();
    server.bucket("licences");
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    // No --no-segments: the default for a bucket.
    let mut run = with_s3(&server);
    run.args(["run", FOOD, "--input", FIXTURE, "--json", "--operator", "tester"])
        .args(["--progress", "never", "--formats", "pdf,xml,ofd", "--store", &store])
        .arg("--data")
        .arg(&data)
        .arg("--keys")
        .arg(root().join("fixtures/keys"));
    run_expect(&mut run, 0);
    let keys = store_keys(&server, "licences");
    assert!(!keys.is_empty() && keys.iter().all(|k| k.ends_with(".seg")), "{keys:?}");
    let puts = server.requests("licences").into_iter().filter(|(op, _)| op == "PutObject").count();
    assert_eq!(puts, keys.len(), "one PUT per segment, none per file");
    let full = ["store", "check", "--full", "--json"];
    run_expect(&mut shared_cmd(&server, &store, &data, &full), 0);

    // serve hands out a file of a segment (a ranged GET), byte for byte what was signed.
    let (served, token) = serve_to_department(&server, &store, &data, scratch.path());
    let signed: String = rusqlite::Connection::open(data.join("registry.sqlite"))
        .unwrap()
        .query_row(
            "SELECT vf.sha256 FROM version_files vf JOIN versions v ON v.id = vf.version_id
             WHERE v.identifier = ?1 AND vf.kind = 'ofd'",
            [CURRENT],
            |r| r.get(0),
        )
        .unwrap();
    let ofd = served.download(&token, &format!("/api/v1/licences/{CURRENT}/files/ofd"));
    assert_eq!(elicence::registry::sha256_hex(&ofd), signed);
    drop(served);

    // An off-site backup of it restores, segments and all, and verifies.
    let target = "s3://licences/backup".to_owned();
    let out = backup_cmd(&server, &data, Some(&store), &target);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = scratch.path().join("restored");
    let out = restore_cmd(&server, &data, &target, &restored);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(registry_state(&restored), registry_state(&data));
    run_expect(
        elicence()
            .env("ELICENCE_FIELD_KEY_FILE", data.join("secrets/field-key"))
            .args(["store", "check", "--full"])
            .arg("--data")
            .arg(&restored),
        0,
    );
}
