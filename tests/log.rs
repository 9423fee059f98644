//! The transparency log (issue 14): a leaf per issued, changed and revoked version; signed
//! checkpoints that `openssl cms -verify` accepts; inclusion proofs checked by an independent
//! Python implementation of RFC 9162 §2.1.3.2; consistency with published checkpoints; every
//! kind of tampering named by leaf index; SQLite and PostgreSQL.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use util::{PgDatabase, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const EXPORT: &str = "fixtures/food-business-permit/export-utf8.csv";

fn run(data: &Path, input: &str, registry: Option<&str>) -> Value {
    let mut cmd = elicence();
    cmd.args(["run", FOOD, "--input", input, "--json", "--operator", "tester"])
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(root().join("fixtures/keys"));
    if let Some(url) = registry {
        cmd.args(["--registry", url]);
    }
    serde_json::from_slice(&run_expect(&mut cmd, 0).stdout).expect("run --json")
}

fn log(data: &Path, registry: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = elicence();
    cmd.arg("log").arg(args[0]).arg("--data").arg(data);
    if let Some(url) = registry {
        cmd.args(["--registry", url]);
    }
    cmd.args(&args[1..]);
    cmd
}

fn sqlite(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("registry.sqlite")).expect("open registry")
}

fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// RFC 9162 §2.1.3.2, written from the RFC in Python: each proof's leaf hash, folded up its
/// audit path, must give the checkpoint's root, which its signed body must name.
const CHECK_PROOFS: &str = r#"
import hashlib, json, sys
H = lambda b: hashlib.sha256(b).digest()
answer = json.load(sys.stdin)
assert answer["proofs"], "no proofs"
for proof in answer["proofs"]:
    r = H(b"\x00" + proof["leaf"]["leaf"].encode())
    assert r.hex() == proof["leaf"]["leaf_hash"]
    fn, sn = proof["leaf"]["index"], proof["tree_size"] - 1
    for p in proof["audit_path"]:
        p = bytes.fromhex(p)
        assert sn != 0, "path too long"
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            while not (fn & 1 or fn == 0):
                fn >>= 1; sn >>= 1
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1; sn >>= 1
    assert sn == 0, "path too short"
    cp = proof["checkpoint"]
    assert r.hex() == cp["root_hash"], "root"
    assert "\nroot_hash %s\n" % r.hex() in cp["body"] and "\ntree_size %d\n" % proof["tree_size"] in cp["body"]
print(len(answer["proofs"]))
"#;

fn python_checks_proofs(proof_json: &[u8]) -> usize {
    let mut child = Command::new("python3")
        .args(["-c", CHECK_PROOFS])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), proof_json).expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("count")
}

/// `openssl cms -verify` of an exported checkpoint's body and detached signature.
fn openssl_verifies(dir: &Path, size: u64) -> bool {
    let stem = dir.join("checkpoints").join(size.to_string());
    let out = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .arg("-in")
        .arg(stem.with_extension("p7s"))
        .arg("-content")
        .arg(stem.with_extension("body"))
        .arg("-CAfile")
        .arg(root().join("fixtures/keys/ca.pem"))
        .output()
        .expect("openssl runs");
    out.status.success()
}

fn identifiers(conn: &rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn.prepare("SELECT identifier FROM versions ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn stored_pdf(data: &Path, conn: &rusqlite::Connection, identifier: &str) -> PathBuf {
    let sha: String = conn
        .query_row(
            "SELECT vf.sha256 FROM version_files vf JOIN versions v ON v.id = vf.version_id
             WHERE v.identifier = ?1 AND vf.kind = 'pdf'",
            [identifier],
            |r| r.get(0),
        )
        .unwrap();
    let mut stack = vec![data.join("store")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&sha)) {
                return p;
            }
        }
    }
    panic!("no stored pdf {sha}");
}

#[test]
fn every_version_gets_one_leaf_and_each_run_a_checkpoint_that_openssl_verifies() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, EXPORT, None);
    let conn = sqlite(&data);
    let versions = count(&conn, "SELECT count(*) FROM versions");
    let revoked = count(&conn, "SELECT count(*) FROM versions WHERE revoked_at IS NOT NULL");
    let leaves = count(&conn, "SELECT count(*) FROM log_leaves");
    assert_eq!(leaves, versions + revoked, "one leaf per issue/change, one per revocation");
    assert_eq!(count(&conn, "SELECT count(*) FROM log_checkpoints"), 1);
    assert_eq!(count(&conn, "SELECT max(tree_size) FROM log_checkpoints"), leaves);

    // A rerun changes nothing: no leaf, no checkpoint.
    run(&data, EXPORT, None);
    assert_eq!(count(&conn, "SELECT count(*) FROM log_leaves"), leaves);
    assert_eq!(count(&conn, "SELECT count(*) FROM log_checkpoints"), 1);

    // Exported checkpoints verify with OpenSSL alone; export is idempotent.
    let public = scratch.path().join("public");
    run_expect(log(&data, None, &["export"]).arg(&public), 0);
    run_expect(log(&data, None, &["export"]).arg(&public), 0);
    assert!(openssl_verifies(&public, leaves as u64), "openssl cms -verify accepts the checkpoint");
    let mut body =
        std::fs::read_to_string(public.join("checkpoints").join(format!("{leaves}.body"))).unwrap();
    assert!(body.starts_with("elicence transparency log checkpoint v1\n"), "{body}");
    // A checkpoint whose body was edited does not verify.
    body = body.replace("tree_size", "tree_size 1\nx");
    let forged = scratch.path().join("forged");
    std::fs::create_dir_all(forged.join("checkpoints")).unwrap();
    std::fs::write(forged.join("checkpoints").join(format!("{leaves}.body")), body).unwrap();
    std::fs::copy(
        public.join("checkpoints").join(format!("{leaves}.p7s")),
        forged.join("checkpoints").join(format!("{leaves}.p7s")),
    )
    .unwrap();
    assert!(!openssl_verifies(&forged, leaves as u64), "an edited body fails");

    // Every version's proof checks out in an independent implementation.
    for id in identifiers(&conn) {
        let o = run_expect(&mut log(&data, None, &["proof", &id, "--json"]), 0);
        let n = python_checks_proofs(&o.stdout);
        // Kept trees of blocks of one and two leaves read leaves back for every proof: the
        // proofs are the same.
        for block in ["1", "2"] {
            let mut proof = log(&data, None, &["proof", &id, "--json"]);
            let other = run_expect(proof.env("ELICENCE_LOG_BLOCK", block), 0);
            assert_eq!(o.stdout, other.stdout, "{id}: blocks of {block}");
        }
        let is_revoked: bool = conn
            .query_row(
                "SELECT revoked_at IS NOT NULL FROM versions WHERE identifier = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1 + usize::from(is_revoked), "{id}");
    }
    let o = run_expect(&mut log(&data, None, &["proof", "no-such-identifier"]), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no leaf"));

    // `log verify` with the exported checkpoints and the key set's CA: clean.
    let o = run_expect(
        log(&data, None, &["verify", "--json"])
            .arg("--checkpoint")
            .arg(&public)
            .arg("--keys")
            .arg(root().join("fixtures/keys")),
        0,
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["tree_size"], leaves);
    let paged = run_expect(
        log(&data, None, &["verify", "--json"])
            .arg("--checkpoint")
            .arg(&public)
            .arg("--keys")
            .arg(root().join("fixtures/keys"))
            .env("ELICENCE_LOG_VERIFY_PAGE", "3"),
        0,
    );
    assert_eq!(o.stdout, paged.stdout, "pages of three leaves report otherwise");
    assert_eq!(report["signatures_checked"], serde_json::json!([leaves]));
}

#[test]
fn verify_data_includes_the_checked_inclusion_proof_of_the_presented_file() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, EXPORT, None);
    let conn = sqlite(&data);
    let id = identifiers(&conn).into_iter().next().unwrap();
    let pdf = stored_pdf(&data, &conn, &id);
    for block in ["256", "2"] {
        let o = elicence()
            .arg("verify")
            .arg(&pdf)
            .arg("--json")
            .arg("--keys")
            .arg(root().join("fixtures/keys"))
            .arg("--data")
            .arg(&data)
            .env("ELICENCE_LOG_BLOCK", block)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["identifier"], id.as_str());
        let log = &report["log"];
        assert_eq!(log["proof_verified"], true, "blocks of {block}: {report}");
        assert_eq!(log["checkpoint_signature"], "authentic", "{report}");
        assert_eq!(log["event"], "issued");
    }
    let o = elicence()
        .arg("verify")
        .arg(&pdf)
        .arg("--keys")
        .arg(root().join("fixtures/keys"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(line.contains("log: leaf 0 of checkpoint"), "{line}");
    assert!(line.contains("proof verified, checkpoint signature authentic"), "{line}");
}

#[test]
fn revocation_appends_a_leaf_and_a_later_log_stays_consistent_with_the_published_checkpoint() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, EXPORT, None);
    let published = scratch.path().join("published");
    run_expect(log(&data, None, &["export"]).arg(&published), 0);
    let conn = sqlite(&data);
    let before = count(&conn, "SELECT count(*) FROM log_leaves");
    let live: String = conn
        .query_row(
            "SELECT identifier FROM versions WHERE superseded_by IS NULL AND revoked_at IS NULL
             ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    run_expect(
        elicence()
            .args(["revoke", &live, "--reason", "吊销：测试", "--operator", "inspector"])
            .arg("--data")
            .arg(&data),
        0,
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM log_leaves"), before + 1, "revocation leaf");
    let event: String = conn
        .query_row("SELECT event FROM log_leaves ORDER BY idx DESC LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(event, "revoked");
    // Not in a checkpoint until one is written.
    run_expect(&mut log(&data, None, &["proof", &live]), 1);
    let keys = root().join("fixtures/keys");
    let o = run_expect(log(&data, None, &["checkpoint", "--keys"]).arg(&keys), 0);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("new checkpoint"));
    let o = run_expect(log(&data, None, &["checkpoint", "--keys"]).arg(&keys), 0);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("log unchanged"));
    let o = run_expect(&mut log(&data, None, &["proof", &live, "--json"]), 0);
    assert_eq!(python_checks_proofs(&o.stdout), 2);

    // The grown log is consistent with the checkpoint published before.
    let o = run_expect(
        log(&data, None, &["verify", "--json", "--checkpoint"])
            .arg(&published)
            .arg("--keys")
            .arg(&keys),
        0,
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let checked: Vec<u64> =
        report["checked"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(checked.contains(&(before as u64)) && checked.contains(&(before as u64 + 1)));
}

/// A copy of a run's data folder with its published checkpoints, to break.
fn published_registry() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, EXPORT, None);
    let published = scratch.path().join("published");
    run_expect(log(&data, None, &["export"]).arg(&published), 0);
    (scratch, data, published)
}

/// `log verify`'s text output after `sql` broke a fresh published registry (exit 1).
fn broken_by(sql: &str) -> String {
    let (_scratch, data, published) = published_registry();
    tamper(&data, sql);
    broken(&data, &published)
}

/// Runs `log verify` against the published checkpoints: exit 1 and the text output. It reads
/// the log a page at a time: the same report must come out of pages of two leaves.
fn broken(data: &Path, published: &Path) -> String {
    let o = run_expect(log(data, None, &["verify", "--checkpoint"]).arg(published), 1);
    let paged = run_expect(
        log(data, None, &["verify", "--checkpoint"])
            .arg(published)
            .env("ELICENCE_LOG_VERIFY_PAGE", "2"),
        1,
    );
    assert_eq!(o.stdout, paged.stdout, "pages of two leaves report otherwise");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Someone with the database file: drop the append-only triggers, then `sql`.
fn tamper(data: &Path, sql: &str) {
    let conn = sqlite(data);
    conn.execute_batch("DROP TRIGGER log_leaves_no_update; DROP TRIGGER log_leaves_no_delete;")
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn an_edited_leaf_is_named_by_index_even_with_its_hash_recomputed() {
    let (_scratch, data, published) = published_registry();
    let conn = sqlite(&data);
    let leaf: String =
        conn.query_row("SELECT leaf FROM log_leaves WHERE idx = 3", [], |r| r.get(0)).unwrap();
    let (sha_start, _) = leaf.match_indices("\"pdf\":\"").next().unwrap();
    let mut edited = leaf.clone();
    let at = sha_start + 7;
    edited.replace_range(at..at + 4, "0000");
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(edited.as_bytes());
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    tamper(
        &data,
        &format!("UPDATE log_leaves SET leaf = '{edited}', leaf_hash = '{hash}' WHERE idx = 3"),
    );
    let out = broken(&data, &published);
    assert!(out.contains("leaf 3 ("), "{out}");
    assert!(out.contains("not consistent with the log"), "{out}");
}

#[test]
fn a_leaf_whose_hash_no_longer_matches_is_named() {
    let out = broken_by(
        "UPDATE log_leaves SET leaf = replace(leaf, '\"issued\"', '\"changed\"') WHERE idx = 2",
    );
    assert!(out.contains("leaf 2: stored hash is not the hash of its bytes"), "{out}");
}

#[test]
fn a_deleted_leaf_is_named() {
    let out = broken_by("DELETE FROM log_leaves WHERE idx = 4");
    assert!(out.contains("leaf 4: missing"), "{out}");
}

#[test]
fn swapped_leaves_are_named() {
    let out = broken_by(
        "UPDATE log_leaves SET idx = 1000000 WHERE idx = 1;
         UPDATE log_leaves SET idx = 1 WHERE idx = 5;
         UPDATE log_leaves SET idx = 5 WHERE idx = 1000000;",
    );
    assert!(out.contains("leaf 1: names audit entry"), "{out}");
    assert!(out.contains("leaf 5: names audit entry"), "{out}");
}

#[test]
fn leaves_removed_from_the_end_are_caught_by_the_published_checkpoint() {
    let (_scratch, data, published) = published_registry();
    let conn = sqlite(&data);
    let n = count(&conn, "SELECT count(*) FROM log_leaves");
    tamper(&data, &format!("DELETE FROM log_leaves WHERE idx = {}", n - 1));
    let out = broken(&data, &published);
    assert!(out.contains(&format!("the log has only {} leaves", n - 1)), "{out}");
}

#[test]
fn the_log_works_the_same_on_postgresql_and_survives_migrate() {
    let Some(db) = PgDatabase::create("log_on_postgresql") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, EXPORT, Some(&db.url));
    run(&data, EXPORT, Some(&db.url));
    let keys = root().join("fixtures/keys");
    let o = run_expect(log(&data, Some(&db.url), &["verify", "--json", "--keys"]).arg(&keys), 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let size = report["tree_size"].as_u64().unwrap();
    assert!(size >= 8, "{report}");
    assert_eq!(
        report["signatures_checked"],
        serde_json::json!([size]),
        "one checkpoint: rerun added none"
    );

    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let ids: Vec<String> = client
        .query("SELECT identifier FROM versions ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let o = run_expect(&mut log(&data, Some(&db.url), &["proof", &ids[0], "--json"]), 0);
    assert_eq!(python_checks_proofs(&o.stdout), 1);

    // PostgreSQL → SQLite keeps the log's id, leaves and checkpoints.
    let target = scratch.path().join("copy.sqlite");
    run_expect(
        elicence()
            .args(["migrate", "--from", &db.url, "--to"])
            .arg(format!("sqlite:{}", target.display()))
            .arg("--data")
            .arg(&data),
        0,
    );
    let o = run_expect(
        log(&data, Some(&format!("sqlite:{}", target.display())), &["verify", "--json", "--keys"])
            .arg(&keys),
        0,
    );
    let copy: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(copy["log_id"], report["log_id"]);
    assert_eq!(copy["root_hash"], report["root_hash"]);
}
