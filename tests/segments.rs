//! The segment store (`run --segments`), with the real binary: a run packs each chunk's files
//! into one object and records where each file is; the same export run without it gives the
//! same registry and byte-identical files; every reader (the library's `read_file`, `copy`,
//! `verify` of what was read back), `store check --full`, `backup`/`restore` and
//! `migrate --store-to` handle segments; a damaged segment is named; a run killed (SIGKILL) at
//! random points and run again ends like an uninterrupted run; two shard processes with
//! segments on one PostgreSQL registry store what one process stores.

mod util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use elicence::registry::{FileKind, Registry};
use serde_json::Value;
use util::{PgDatabase, big_export, elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const FIXTURE: &str = "fixtures/food-business-permit/export-utf8.csv";

/// `elicence run` of the food pipeline with the test keys and the OFD, `--segments` when asked.
fn run_cmd(data: &Path, input: &str, segments: bool) -> std::process::Command {
    let mut cmd = elicence();
    cmd.args(["run", FOOD, "--input", input, "--json", "--operator", "tester"])
        .args(["--progress", "never", "--formats", "pdf,xml,ofd"])
        .arg("--data")
        .arg(data)
        .arg("--keys")
        .arg(root().join("fixtures/keys"));
    if segments {
        cmd.arg("--segments");
    }
    cmd
}

fn run(data: &Path, input: &str, segments: bool) -> Value {
    let out = run_expect(&mut run_cmd(data, input, segments), 0);
    serde_json::from_slice(&out.stdout).expect("run --json prints the report")
}

/// Every version's files: identifier → [(kind, sha256, size)], from the database.
fn version_files(data: &Path) -> BTreeMap<String, Vec<(String, String, u64)>> {
    let conn = rusqlite::Connection::open(data.join("registry.sqlite")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT v.identifier, vf.kind, vf.sha256, f.size FROM version_files vf
             JOIN versions v ON v.id = vf.version_id
             JOIN files f ON f.sha256 = vf.sha256 AND f.kind = vf.kind
             ORDER BY v.identifier, vf.kind",
        )
        .unwrap();
    let mut out: BTreeMap<String, Vec<(String, String, u64)>> = BTreeMap::new();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?)))
        .unwrap()
    {
        let (id, kind, sha, size) = row.unwrap();
        out.entry(id).or_default().push((kind, sha, size as u64));
    }
    out
}

/// Every file under a folder, relative paths.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn kind_of(role: &str) -> FileKind {
    FileKind::from_role(role).unwrap()
}

#[test]
fn a_run_with_segments_stores_the_same_files_packed_and_every_reader_finds_them() {
    let scratch = tempfile::tempdir().unwrap();
    let loose = scratch.path().join("loose");
    let packed = scratch.path().join("packed");
    let a = run(&loose, FIXTURE, false);
    let b = run(&packed, FIXTURE, true);
    assert_eq!(a["counts"], b["counts"]);
    assert_eq!(b["reconciled"], true);
    let files = version_files(&packed);
    assert!(!files.is_empty());
    assert_eq!(files, version_files(&loose), "same versions, same file hashes");

    // The packed store holds segments only: one per committed chunk, not one per file.
    let objects = files_under(&packed.join("store"));
    assert!(objects.iter().all(|p| p.extension().is_some_and(|e| e == "seg")), "{objects:?}");
    let file_count: usize = files.values().map(Vec::len).sum();
    assert!(objects.len() < file_count / 3, "{} objects for {file_count} files", objects.len());
    run_expect(elicence().args(["store", "check", "--full"]).arg("--data").arg(&packed), 0);

    // Every file reads back from its segment, byte for byte the loose store's file.
    let registry = Registry::open(&packed).unwrap();
    let first = files.keys().next().unwrap().clone();
    let mut pdf = PathBuf::new();
    let mut ofd = PathBuf::new();
    for (identifier, list) in &files {
        for (kind, sha256, _) in list {
            let kind = kind_of(kind);
            let bytes = registry.read_stored(sha256, kind).unwrap();
            let rel = elicence::registry::Store::relative_path(sha256, kind).unwrap();
            assert_eq!(bytes, std::fs::read(loose.join("store").join(rel)).unwrap());
            if *identifier == first {
                let path = scratch.path().join(format!("first.{}", kind.ext()));
                std::fs::write(&path, &bytes).unwrap();
                match kind {
                    FileKind::Pdf => pdf = path,
                    FileKind::Ofd => ofd = path,
                    _ => {}
                }
            }
        }
    }
    drop(registry);
    // What was read back verifies as authentic, and the registry knows it (the fixture's
    // licences have expired by the pinned clock, so the exit code says that, not this).
    for file in [&pdf, &ofd] {
        let out = elicence()
            .args(["verify", "--json", "--keys"])
            .arg(root().join("fixtures/keys"))
            .arg("--data")
            .arg(&packed)
            .arg(file)
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["status"], "authentic", "{report}");
        assert_eq!(report["identifier"].as_str(), Some(first.as_str()), "{report}");
    }
}

#[test]
fn a_damaged_segment_is_named_by_the_full_check_and_refused_on_read() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, FIXTURE, true);
    let segment = data.join("store").join(files_under(&data.join("store")).remove(0));
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&segment, bytes).unwrap();

    let out = run_expect(
        elicence().args(["store", "check", "--full", "--json"]).arg("--data").arg(&data),
        1,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(stdout.contains(name), "{stdout}");

    // A reader of any file in it gets an error naming the segment, never the wrong bytes:
    // one of its files is damaged, the others still read (each checked by its own hash).
    let registry = Registry::open(&data).unwrap();
    let mut refused = 0;
    for list in version_files(&data).values() {
        for (kind, sha256, _) in list {
            match registry.read_stored(sha256, kind_of(kind)) {
                Ok(bytes) => assert_eq!(elicence::registry::sha256_hex(&bytes), *sha256),
                Err(e) => {
                    assert!(e.to_string().contains(name), "{e}");
                    refused += 1;
                }
            }
        }
    }
    assert_eq!(refused, 1, "exactly the file whose byte changed");
}

#[test]
fn backup_restore_and_migrate_carry_segments() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    run(&data, FIXTURE, true);
    let files = version_files(&data);

    let backup = scratch.path().join("backup");
    run_expect(
        elicence().arg("backup").arg(&backup).arg("--include-secrets").arg("--data").arg(&data),
        0,
    );
    let restored = scratch.path().join("restored");
    run_expect(elicence().arg("restore").arg(&backup).arg("--data").arg(&restored), 0);
    run_expect(elicence().args(["store", "check", "--full"]).arg("--data").arg(&restored), 0);
    assert_eq!(version_files(&restored), files);
    let registry = Registry::open(&restored).unwrap();
    for list in files.values() {
        for (kind, sha256, _) in list {
            registry.read_stored(sha256, kind_of(kind)).unwrap();
        }
    }
    drop(registry);

    // migrate --store-to copies the segments as the objects they are.
    let moved = scratch.path().join("moved");
    let store = format!("file:{}", moved.display());
    run_expect(elicence().args(["migrate", "--store-to", &store]).arg("--data").arg(&data), 0);
    assert_eq!(files_under(&moved), files_under(&data.join("store")));
    run_expect(
        elicence().args(["store", "check", "--full", "--store", &store]).arg("--data").arg(&data),
        0,
    );
}

#[test]
fn a_run_with_segments_killed_at_random_points_and_rerun_ends_like_an_uninterrupted_run() {
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 400);
    let input = input.to_str().unwrap();
    let reference = scratch.path().join("reference");
    run(&reference, input, true);
    let want = version_files(&reference);
    assert_eq!(want.len(), 400);

    let data = scratch.path().join("killed");
    // The first run is killed as soon as its first segment is in the store (written, maybe
    // committed, more chunks to go); then a few runs at pseudo-random points.
    let mut child = run_cmd(&data, input, true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while files_under(&data.join("store")).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "no segment written");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.try_wait().unwrap().is_none(), "400 rows take more than one chunk");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..3 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = run_cmd(&data, input, true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100 + seed % 800));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
        }
        child.wait().unwrap();
    }
    let last = run(&data, input, true);
    assert_eq!(last["reconciled"], true);
    assert_eq!(version_files(&data), want, "none lost, none twice, same bytes");
    // Orphan segments of killed runs are notes, not errors.
    run_expect(elicence().args(["store", "check", "--full"]).arg("--data").arg(&data), 0);
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(&data), 0);
    run_expect(elicence().args(["log", "verify"]).arg("--data").arg(&data), 0);
    let registry = Registry::open(&data).unwrap();
    for list in want.values() {
        for (kind, sha256, _) in list {
            registry.read_stored(sha256, kind_of(kind)).unwrap();
        }
    }
}

/// [`version_files`] of a PostgreSQL registry.
fn pg_version_files(url: &str) -> BTreeMap<String, Vec<(String, String, u64)>> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut out: BTreeMap<String, Vec<(String, String, u64)>> = BTreeMap::new();
    for row in client
        .query(
            "SELECT v.identifier, vf.kind, vf.sha256, f.size FROM version_files vf
             JOIN versions v ON v.id = vf.version_id
             JOIN files f ON f.sha256 = vf.sha256 AND f.kind = vf.kind
             ORDER BY v.identifier, vf.kind",
            &[],
        )
        .unwrap()
    {
        let size: i64 = row.get(3);
        out.entry(row.get(0)).or_default().push((row.get(1), row.get(2), size as u64));
    }
    out
}

#[test]
fn two_shards_with_segments_on_postgres_store_what_one_process_stores() {
    let Some(pg) =
        PgDatabase::create("two_shards_with_segments_on_postgres_store_what_one_process_stores")
    else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let input = big_export(scratch.path(), 600);
    let input = input.to_str().unwrap();
    let reference = scratch.path().join("reference");
    run(&reference, input, true);
    let want = version_files(&reference);

    let data = scratch.path().join("shared");
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|shard| {
            run_cmd(&data, input, true)
                .args(["--registry", &pg.url, "--shard", shard])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(pg_version_files(&pg.url), want, "same versions, same bytes");
    let check = ["store", "check", "--full", "--json", "--registry", &pg.url];
    run_expect(elicence().args(check).arg("--data").arg(&data), 0);
    let objects = files_under(&data.join("store"));
    assert!(objects.iter().all(|p| p.extension().is_some_and(|e| e == "seg")), "{objects:?}");
    let registry = Registry::open_with(&data, Some(&pg.url), None).unwrap();
    for list in want.values() {
        for (kind, sha256, _) in list {
            let bytes = registry.read_stored(sha256, kind_of(kind)).unwrap();
            assert_eq!(elicence::registry::sha256_hex(&bytes), *sha256);
        }
    }
}
