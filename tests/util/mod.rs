//! Shared helpers for the integration tests: run the real binary in a scratch folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An HTTP client for a server under test: answers of every status are returned, not errors.
pub fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command for the `elicence` binary, run from the repository root with a pinned clock.
/// `ELICENCE_TEST_BIN` names another build of it: cargo's `target/debug/elicence` is the last
/// one linked there, which is another worktree's when two share a target dir.
pub fn elicence() -> Command {
    let bin = std::env::var_os("ELICENCE_TEST_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_elicence")), PathBuf::from);
    let mut c = Command::new(bin);
    c.current_dir(root());
    c.env("ELICENCE_NOW", "2026-11-27T10:00:00Z");
    c
}

/// Runs and returns the output, printing stderr when the exit code is not the expected one.
pub fn run_expect(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("the elicence binary runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Copies the folder `from` into `to`, recursively (a test's own copy of `pipelines/` to break).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A realistic export of `n` distinct food permits in `dir/big.csv`: the food fixture's header
/// and one of its rows as a template, with `n` printed numbers.
pub fn big_export(dir: &Path, n: usize) -> PathBuf {
    let fixture =
        std::fs::read_to_string(root().join("fixtures/food-business-permit/export-utf8.csv"))
            .expect("the food fixture");
    let mut lines = fixture.split("\r\n");
    let header = lines.next().expect("a header");
    let template = lines.find(|l| l.starts_with("JY12201040000074")).expect("the template row");
    let mut text = format!("{header}\r\n");
    for i in 0..n {
        text.push_str(&format!("JY1220104{:07}{}\r\n", 100_000 + i, &template[16..]));
    }
    let path = dir.join("big.csv");
    std::fs::write(&path, text).expect("write big.csv");
    path
}

/// Reads a CSV written by elicence (UTF-8 with BOM) into rows of strings, header included.
pub fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let bytes = std::fs::read(path).expect("csv exists");
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "{} starts with a UTF-8 BOM", path.display());
    let mut r =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&bytes[3..]);
    r.records().map(|rec| rec.expect("csv row").iter().map(str::to_string).collect()).collect()
}

// ---- PostgreSQL ----

/// How the PostgreSQL tests find a server: `ELICENCE_TEST_PG` (an admin URL whose user may
/// create databases), else `postgres://$USER@127.0.0.1:5432/test`.
pub fn pg_admin_url() -> String {
    match std::env::var("ELICENCE_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => {
            let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
            format!("postgres://{}@127.0.0.1:5432/test", user.as_deref().unwrap_or("postgres"))
        }
    }
}

/// A fresh PostgreSQL database for one test, dropped when this goes out of scope, so tests
/// run in parallel without seeing each other.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// The URL of the fresh database.
    pub url: String,
}

impl PgDatabase {
    /// A fresh database, or `None` (with a message saying how to enable the test) when no
    /// server is reachable. With `ELICENCE_REQUIRE_PG=1` (CI) an unreachable server panics.
    pub fn create(test: &str) -> Option<PgDatabase> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = pg_admin_url();
        let mut admin = match postgres::Client::connect(&admin_url, postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                let required = std::env::var("ELICENCE_REQUIRE_PG").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "ELICENCE_REQUIRE_PG=1 but PostgreSQL at {admin_url} is unreachable: {e}"
                );
                eprintln!(
                    "SKIPPED {test}: no PostgreSQL at {admin_url} ({e}). Set ELICENCE_TEST_PG=postgres://USER@HOST:PORT/DB \
                     (a user that may CREATE DATABASE) to run it; ELICENCE_REQUIRE_PG=1 makes this a failure."
                );
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "elicence_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
        let url = with_database(&admin_url, &name);
        Some(PgDatabase { admin_url, name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ =
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A one-page PDF with a text object, written with lopdf.
pub fn sample_pdf() -> Vec<u8> {
    use lopdf::{Object, Stream, dictionary};
    let mut doc = lopdf::Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let content = b"BT /F1 18 Tf 72 760 Td (Business licence 91110000MA01ABCD2X) Tj ET".to_vec();
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    if let Err(e) = doc.save_to(&mut out) {
        panic!("sample PDF: {e}");
    }
    out
}

/// Runs `openssl` in `dir`; a failure shows its stderr.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl is not installed ({e})"));
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every file under `dir` (recursively) whose extension is `ext`.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The stored signed XML e-licence of version `identifier` in the store folder `store`.
pub fn stored_xml(store: &Path, identifier: &str) -> String {
    let tag = format!(">{identifier}<");
    files_with_ext(store, "xml")
        .into_iter()
        .map(|p| std::fs::read_to_string(p).expect("xml"))
        .find(|x| x.contains(&tag))
        .unwrap_or_else(|| panic!("no stored XML of {identifier}"))
}

/// The first 16 hex digits (lower case) of the content digest a face of version `identifier`
/// carries in its QR code: the SHA-256 of its unsigned XML, from the stored signed XML.
pub fn face_digest(store: &Path, identifier: &str) -> String {
    use sha2::Digest as _;
    let signed = stored_xml(store, identifier);
    let unsigned = elicence::sign::xmldsig::unsigned_document(&signed).expect("a signed XML");
    hex::encode(sha2::Sha256::digest(unsigned.as_bytes()))[..16].to_owned()
}

/// Every QR code on the first page of each of `pdfs`, as zbarimg (ZBar) reads it from the page
/// rendered at 150 dpi by pdftoppm (poppler): what a phone camera sees.
pub fn scanned_qr_codes(pdfs: &[PathBuf]) -> Vec<String> {
    let pages = tempfile::tempdir().expect("tempdir");
    let mut images = Vec::new();
    for (i, pdf) in pdfs.iter().enumerate() {
        let prefix = pages.path().join(format!("p{i}"));
        let ok = Command::new("pdftoppm")
            .args(["-r", "150", "-gray", "-png", "-singlefile", "-f", "1", "-l", "1"])
            .arg(pdf)
            .arg(&prefix)
            .status()
            .expect("pdftoppm runs (poppler-utils, .ci/setup)");
        assert!(ok.success());
        images.push(prefix.with_extension("png"));
    }
    let out = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .args(&images)
        .output()
        .expect("zbarimg runs (zbar-tools, .ci/setup)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect()
}

/// `pdf` with one more update whose new DSS holds only the CRL stream `data`, under `filter`
/// (written by lopdf, as another tool would).
pub fn with_new_dss_stream(pdf: &[u8], data: Vec<u8>, filter: Option<&str>) -> Vec<u8> {
    use lopdf::{Dictionary, IncrementalDocument, Object, Stream};
    let doc = lopdf::Document::load_mem(pdf).expect("lopdf reads it");
    let root = doc.trailer.get(b"Root").and_then(Object::as_reference).expect("root");
    let mut inc = IncrementalDocument::create_from(pdf.to_vec(), doc);
    let mut dict = Dictionary::new();
    if let Some(filter) = filter {
        dict.set("Filter", Object::Name(filter.as_bytes().to_vec()));
    }
    let mut stream = Stream::new(dict, data);
    stream.allows_compression = false;
    let crl = inc.new_document.add_object(stream);
    let mut dss = Dictionary::new();
    dss.set("Type", Object::Name(b"DSS".to_vec()));
    dss.set("CRLs", Object::Array(vec![Object::Reference(crl)]));
    let dss = inc.new_document.add_object(dss);
    inc.opt_clone_object_to_new_document(root).expect("catalog");
    inc.new_document
        .get_object_mut(root)
        .and_then(Object::as_dict_mut)
        .expect("dict")
        .set("DSS", dss);
    let mut out = Vec::new();
    inc.save_to(&mut out).expect("lopdf writes it");
    out
}
