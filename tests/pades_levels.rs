//! PAdES B-LT and B-LTA (issue 14): `render --pades-level b-lt|b-lta` with a real TSA on
//! loopback (`tests/tsa/start.sh`) and a CRL served on loopback from the key set's
//! distribution point, judged by software we did not write: pyHanko (`sign validate`,
//! `sign adesverify`), OpenSSL (`openssl ts -verify` on every token) and poppler's `pdfsig`;
//! then `timestamp extend` (archive renewal), an update after the signature that changes a
//! page as well as adding a DSS (tampered), and the configuration errors (exit 3).

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use sha2::{Digest, Sha256};
use util::{elicence, run_expect};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PIPELINE: &str = "pipelines/food-business-permit.toml";
const INPUT: &str = "fixtures/food-business-permit/export-utf8.csv";

/// A test TSA on a free loopback port, stopped when dropped.
struct TestTsa {
    dir: tempfile::TempDir,
    pid: String,
    url: String,
}

impl TestTsa {
    fn start() -> TestTsa {
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("bash")
            .arg(util::root().join("tests/tsa/start.sh"))
            .arg(dir.path())
            .arg(port.to_string())
            .output()
            .expect("bash tests/tsa/start.sh (needs openssl and python3)");
        assert!(out.status.success(), "test TSA: {}", String::from_utf8_lossy(&out.stderr));
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        TestTsa { dir, pid, url: format!("http://127.0.0.1:{port}/") }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

/// A static HTTP server on loopback for a folder (the key set's CRL at its distribution
/// point), stopped when dropped.
struct CrlServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl CrlServer {
    fn start() -> CrlServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        CrlServer { child, dir, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ca.crl", self.port)
    }

    fn crl_path(&self) -> PathBuf {
        self.dir.path().join("ca.crl")
    }
}

impl Drop for CrlServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The binary on the real clock: the TSA and pyHanko use the real time, so keys and CRLs must
/// be made at it (not at the suite's pinned `ELICENCE_NOW`).
fn live() -> Command {
    let mut c = elicence();
    c.env_remove("ELICENCE_NOW");
    c
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A key set with its own issuers whose signer certificates name `crl_url`, and its CA's CRL
/// written where the server serves it.
fn keys_with_crl(dir: &Path, crl_url: Option<&str>, crl_out: Option<&Path>) {
    let mut init = live();
    init.args(["keys", "init"]).arg(dir).args(["--pipeline", PIPELINE]);
    if let Some(url) = crl_url {
        init.args(["--crl-url", url]);
    }
    run_expect(&mut init, 0);
    if let Some(out) = crl_out {
        run_expect(live().args(["keys", "crl"]).arg(dir).arg("--out").arg(out), 0);
    }
}

fn render(keys: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = live();
    c.args(["render", PIPELINE, "--input", INPUT, "--keys"])
        .arg(keys)
        .arg("--out")
        .arg(out)
        .args(["--limit", "2", "--formats", "pdf"])
        .args(extra);
    c
}

fn pdfs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "pdf"));
    files.sort();
    files
}

/// `elicence verify --json` of one file, parsed.
fn verify_json(file: &Path, keys: &Path, tsa: &TestTsa) -> serde_json::Value {
    let out = live()
        .args(["verify", "--json", "--keys"])
        .arg(keys)
        .arg("--tsa-trust")
        .arg(tsa.ca())
        .arg(file)
        .output()
        .expect("verify runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn pyhanko(args: &[&str], file: &Path, keys: &Path, tsa: &TestTsa) -> String {
    let out = Command::new("pyhanko")
        .args(["sign"])
        .args(args)
        .arg("--trust")
        .arg(keys.join("ca.pem"))
        .arg("--trust")
        .arg(tsa.ca())
        .arg("--trust-replace")
        .arg(file)
        .output()
        .expect("pyhanko runs");
    let report = text(&out);
    eprintln!("pyhanko {args:?}:\n{report}");
    report
}

/// Every `/ByteRange` of the file with the bytes of its `/Contents` (DER, padding cut).
fn signatures(pdf: &[u8]) -> Vec<([usize; 4], Vec<u8>)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&pdf[from..], b"/ByteRange[").map(|i| from + i + 11) {
        let end = find(&pdf[at..], b"]").expect("]") + at;
        let n: Vec<usize> = std::str::from_utf8(&pdf[at..end])
            .expect("ascii")
            .split_whitespace()
            .map(|v| v.parse().expect("number"))
            .collect();
        let raw = hex::decode(&pdf[n[1] + 1..n[2] - 1]).expect("hex");
        let len = 4 + ((raw[2] as usize) << 8 | raw[3] as usize);
        found.push(([n[0], n[1], n[2], n[3]], raw[..len].to_vec()));
        from = end;
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `openssl ts -verify` of a token over the SHA-256 `digest`, against the TSA's root.
fn openssl_ts_verify(token: &[u8], digest: &[u8], tsa: &TestTsa) -> String {
    let work = tempfile::tempdir().expect("temp dir");
    let file = work.path().join("token.der");
    std::fs::write(&file, token).expect("write token");
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&file)
        .args(["-digest", &hex::encode(digest), "-CAfile"])
        .arg(tsa.ca())
        .output()
        .expect("openssl runs");
    text(&out)
}

/// The signature timestamp token inside a CMS and the signature value it is over.
fn signature_token(cms: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use der::{Decode, Encode};
    let ci = cms::content_info::ContentInfo::from_der(cms).expect("ContentInfo");
    let sd: cms::signed_data::SignedData = ci.content.decode_as().expect("SignedData");
    let si = &sd.signer_infos.0.as_slice()[0];
    let attr = si
        .unsigned_attrs
        .as_ref()
        .and_then(|a| {
            a.iter().find(|a| a.oid == elicence::timestamp::asn1::OID_SIGNATURE_TIME_STAMP_TOKEN)
        })
        .expect("signature timestamp attribute");
    (attr.values.get(0).expect("value").to_der().expect("der"), si.signature.as_bytes().to_vec())
}

struct Setup {
    tsa: TestTsa,
    _crl: CrlServer,
    _tmp: tempfile::TempDir,
    keys: PathBuf,
    out: PathBuf,
}

/// Keys with a CRL distribution point on loopback, the CRL served there, and two licences
/// rendered at `level`.
fn rendered(level: &str) -> Setup {
    let tsa = TestTsa::start();
    let crl = CrlServer::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let keys = tmp.path().join("keys");
    keys_with_crl(&keys, Some(&crl.url()), Some(&crl.crl_path()));
    let out = tmp.path().join("out");
    run_expect(&mut render(&keys, &out, &["--tsa", &tsa.url, "--pades-level", level]), 0);
    Setup { tsa, _crl: crl, _tmp: tmp, keys, out }
}

#[test]
fn b_lta_is_judged_valid_by_pyhanko_openssl_pdfsig_and_us() -> TestResult {
    let s = rendered("b-lta");
    let files = pdfs(&s.out);
    assert_eq!(files.len(), 2, "{files:?}");
    let file = &files[0];
    let pdf = std::fs::read(file)?;

    // Ours: the signature covers revision 2 of 4; a DSS and a document timestamp follow.
    let v = verify_json(file, &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["pades_level"], "b-lta", "{v}");
    assert_eq!(v["signed_revision"], 2, "{v}");
    assert_eq!(v["revisions"], 4, "{v}");
    assert_eq!(v["document_timestamps"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["document_timestamps"][0]["trusted"], true, "{v}");
    assert_eq!(v["document_timestamps"][0]["revision"], 4, "{v}");

    // OpenSSL accepts both tokens against the TSA's root: the signature timestamp over the
    // signature value, the document timestamp over its byte range.
    let sigs = signatures(&pdf);
    assert_eq!(sigs.len(), 2);
    let (token, signature) = signature_token(&sigs[0].1);
    let report = openssl_ts_verify(&token, &Sha256::digest(&signature), &s.tsa);
    assert!(report.contains("Verification: OK"), "signature timestamp: {report}");
    let ([_, b, c, d], doc_token) = &sigs[1];
    let mut h = Sha256::new();
    h.update(&pdf[..*b]);
    h.update(&pdf[*c..c + d]);
    assert_eq!(c + d, pdf.len(), "the document timestamp covers the whole file");
    let report = openssl_ts_verify(doc_token, &h.finalize(), &s.tsa);
    assert!(report.contains("Verification: OK"), "document timestamp: {report}");

    // pyHanko: the signature is valid, its timestamp from a trusted TSA; the ETSI process
    // (with the CRLs the certificates point at, on loopback) judges the file valid.
    let report = pyhanko(&["validate", "--pretty-print"], file, &s.keys, &s.tsa);
    assert!(report.contains("The signature is judged VALID"), "{report}");
    assert!(report.contains("The TSA certificate is trusted."), "{report}");
    let report = pyhanko(&["adesverify", "--pretty-print"], file, &s.keys, &s.tsa);
    assert!(report.contains("judged VALID"), "adesverify: {report}");
    assert!(!report.contains("INVALID"), "adesverify: {report}");

    // poppler still validates signature #1 (it does not implement document timestamps).
    let out = Command::new("pdfsig").arg(file).output()?;
    let report = text(&out);
    let first = report.split("Signature #2").next().unwrap_or_default();
    assert!(first.contains("Signature Validation: Signature is Valid."), "pdfsig: {report}");

    // The DSS alone suffices: with the CRL server and the TSA (which serves its own CRL)
    // gone, the ETSI process still finds every CRL it needs in the file.
    let Setup { tsa, _crl, keys, .. } = s;
    drop(_crl);
    let _ = Command::new("kill").arg(&tsa.pid).status();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let report = pyhanko(&["adesverify", "--pretty-print"], file, &keys, &tsa);
    assert!(report.contains("judged VALID"), "adesverify offline: {report}");
    assert!(!report.contains("INVALID"), "adesverify offline: {report}");
    Ok(())
}

#[test]
fn b_lt_has_a_dss_pyhanko_reads_and_no_document_timestamp() -> TestResult {
    let s = rendered("b-lt");
    let file = &pdfs(&s.out)[0];
    let pdf = std::fs::read(file)?;
    assert!(find(&pdf, b"/Type/DSS").is_some());
    assert!(find(&pdf, b"/DocTimeStamp").is_none());
    let v = verify_json(file, &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["pades_level"], "b-lt", "{v}");
    assert_eq!(v["signed_revision"], 2, "{v}");
    assert_eq!(v["revisions"], 3, "{v}");
    let report = pyhanko(&["validate", "--pretty-print"], file, &s.keys, &s.tsa);
    assert!(report.contains("The signature is judged VALID"), "{report}");
    assert!(report.contains("The TSA certificate is trusted."), "{report}");
    let out = Command::new("pdfsig").arg(file).output()?;
    assert!(text(&out).contains("Signature is Valid"), "pdfsig: {}", text(&out));
    Ok(())
}

#[test]
fn timestamp_extend_adds_a_second_document_timestamp() -> TestResult {
    let s = rendered("b-lta");
    let files = pdfs(&s.out);
    let extend = |files: &[PathBuf], json: bool| {
        let mut c = live();
        c.args(["timestamp", "extend"])
            .args(files)
            .args(["--tsa", &s.tsa.url, "--keys"])
            .arg(&s.keys)
            .arg("--tsa-trust")
            .arg(s.tsa.ca());
        if json {
            c.arg("--json");
        }
        c
    };
    let before = std::fs::read(&files[0])?;
    let out = run_expect(&mut extend(&files[..1], true), 0);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(line["outcome"], "extended", "{line}");
    assert_eq!(line["document_timestamps"], 2, "{line}");
    let after = std::fs::read(&files[0])?;
    assert!(after.starts_with(&before), "renewal only appends");

    let v = verify_json(&files[0], &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["pades_level"], "b-lta", "{v}");
    assert_eq!(v["document_timestamps"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["signed_revision"], 2, "{v}");
    assert_eq!(v["revisions"], 6, "{v}");
    let report = pyhanko(&["validate", "--pretty-print"], &files[0], &s.keys, &s.tsa);
    assert!(report.contains("The signature is judged VALID"), "{report}");
    let report = pyhanko(&["adesverify", "--pretty-print"], &files[0], &s.keys, &s.tsa);
    assert!(report.contains("judged VALID") && !report.contains("INVALID"), "{report}");
    // Every token still passes OpenSSL.
    for ([_, b, c, d], token) in signatures(&after).into_iter().skip(1) {
        let mut h = Sha256::new();
        h.update(&after[..b]);
        h.update(&after[c..c + d]);
        let report = openssl_ts_verify(&token, &h.finalize(), &s.tsa);
        assert!(report.contains("Verification: OK"), "{report}");
    }

    // A B-T file and a tampered one are refused by name, and left as they were.
    let bt_dir = s._tmp.path().join("bt");
    run_expect(&mut render(&s.keys, &bt_dir, &["--tsa", &s.tsa.url]), 0);
    let bt = pdfs(&bt_dir)[0].clone();
    let tampered = s._tmp.path().join("tampered.pdf");
    let mut bytes = std::fs::read(&files[1])?;
    let at = find(&bytes, b"/MediaBox").ok_or("no MediaBox")?;
    bytes[at + 1] = b'm';
    std::fs::write(&tampered, &bytes)?;
    let bt_bytes = std::fs::read(&bt)?;
    let out = run_expect(&mut extend(&[bt.clone(), tampered.clone()], false), 4);
    let report = text(&out);
    assert!(
        report.contains(&format!("{}: refused: is PAdES b-t, not B-LTA", bt.display())),
        "{report}"
    );
    assert!(
        report.contains(&format!("{}: refused: does not verify", tampered.display())),
        "{report}"
    );
    assert_eq!(std::fs::read(&bt)?, bt_bytes);
    Ok(())
}

/// An update after the signature that adds a DSS is fine; one that also gives the page other
/// content is not, whoever wrote it (here lopdf).
#[test]
fn an_update_adding_a_dss_and_changing_a_page_is_tampered() -> TestResult {
    use lopdf::{Dictionary, IncrementalDocument, Object, Stream};
    let s = rendered("b-t");
    let file = &pdfs(&s.out)[0];
    let signed = std::fs::read(file)?;

    let update = |change_page: bool| -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let doc = lopdf::Document::load_mem(&signed)?;
        let root = doc.trailer.get(b"Root")?.as_reference()?;
        let page = *doc.get_pages().get(&1).ok_or("page")?;
        let mut inc = IncrementalDocument::create_from(signed.clone(), doc);
        let cert = inc.new_document.add_object(Stream::new(Dictionary::new(), b"0".to_vec()));
        let mut dss = Dictionary::new();
        dss.set("Type", Object::Name(b"DSS".to_vec()));
        dss.set("Certs", Object::Array(vec![Object::Reference(cert)]));
        let dss = inc.new_document.add_object(dss);
        inc.opt_clone_object_to_new_document(root)?;
        inc.new_document.get_object_mut(root)?.as_dict_mut()?.set("DSS", dss);
        if change_page {
            let content = inc.new_document.add_object(Stream::new(
                Dictionary::new(),
                b"BT /F1 48 Tf 72 400 Td (VOID) Tj ET".to_vec(),
            ));
            inc.opt_clone_object_to_new_document(page)?;
            inc.new_document.get_object_mut(page)?.as_dict_mut()?.set("Contents", content);
        }
        let mut out = Vec::new();
        inc.save_to(&mut out)?;
        Ok(out)
    };
    let dir = s._tmp.path();
    let only_dss = dir.join("dss-only.pdf");
    std::fs::write(&only_dss, update(false)?)?;
    let v = verify_json(&only_dss, &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["pades_level"], "b-lt", "{v}");

    let changed = dir.join("dss-and-page.pdf");
    std::fs::write(&changed, update(true)?)?;
    let v = verify_json(&changed, &s.keys, &s.tsa);
    assert_eq!(v["status"], "tampered", "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("document changed after signing"), "{reason}");
    assert!(reason.contains("/Contents changed"), "{reason}");
    let out = live().args(["verify", "--keys"]).arg(&s.keys).arg(&changed).output()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    Ok(())
}

#[test]
fn levels_above_b_b_without_a_tsa_or_a_crl_are_configuration_errors() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    keys_with_crl(&keys, None, None);
    let out = tmp.path().join("out");
    for level in ["b-lt", "b-lta", "b-t"] {
        let output = run_expect(&mut render(&keys, &out, &["--pades-level", level]), 3);
        let message = text(&output);
        assert!(
            message.contains(&format!("PAdES level {level} needs a time-stamping authority")),
            "{message}"
        );
    }
    assert!(pdfs(&out).is_empty(), "nothing is written");
    let output = run_expect(&mut render(&keys, &out, &["--pades-level", "b-x"]), 2);
    assert!(text(&output).contains("unknown PAdES level"), "{}", text(&output));

    // A pipeline asking for b-lta without a TSA: exit 3 as well; a bad level names the field.
    let pipelines = tmp.path().join("pipelines");
    util::copy_dir(&util::root().join("pipelines"), &pipelines);
    let pipeline = pipelines.join("food-business-permit.toml");
    let original = std::fs::read_to_string(&pipeline)?;
    for (level, field) in
        [("b-lta", "needs a time-stamping authority"), ("b-q", "output.pades_level")]
    {
        let edited = if original.contains("[output]") {
            original.replacen("[output]", &format!("[output]\npades_level = \"{level}\""), 1)
        } else {
            format!("{original}\n[output]\npades_level = \"{level}\"\n")
        };
        std::fs::write(&pipeline, edited)?;
        let mut c = live();
        c.arg("render")
            .arg(&pipeline)
            .args(["--input", INPUT, "--keys"])
            .arg(&keys)
            .arg("--out")
            .arg(&out);
        let output = run_expect(&mut c, 3);
        assert!(text(&output).contains(field), "{}", text(&output));
    }

    // b-lt with a TSA, but the signer certificate has no CRL distribution point and the key
    // set holds no CRL: named, exit 3, nothing written.
    let tsa = TestTsa::start();
    let output =
        run_expect(&mut render(&keys, &out, &["--tsa", &tsa.url, "--pades-level", "b-lt"]), 3);
    assert!(text(&output).contains("no CRL can be obtained"), "{}", text(&output));
    assert!(pdfs(&out).is_empty(), "nothing is written");

    // With the CA's CRL in the key set (`keys crl KEYS --out KEYS/ca.crl`) it works.
    run_expect(live().args(["keys", "crl"]).arg(&keys).arg("--out").arg(keys.join("ca.crl")), 0);
    run_expect(&mut render(&keys, &out, &["--tsa", &tsa.url, "--pades-level", "b-lt"]), 0);
    let file = &pdfs(&out)[0];
    let v = verify_json(file, &keys, &tsa);
    assert_eq!(v["pades_level"], "b-lt", "{v}");
    assert_eq!(v["status"], "authentic", "{v}");
    Ok(())
}

/// `run --pades-level b-lta` stores B-LTA PDFs in the registry (two issuers, each with its own
/// DSS); `run` asking for b-lt without a TSA creates nothing.
#[test]
fn run_stores_b_lta_pdfs_and_refuses_b_lt_without_a_tsa() -> TestResult {
    let tsa = TestTsa::start();
    let crl = CrlServer::start();
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    keys_with_crl(&keys, Some(&crl.url()), Some(&crl.crl_path()));
    let data = tmp.path().join("data");
    let run = |extra: &[&str]| {
        let mut c = live();
        c.args(["run", PIPELINE, "--input", INPUT, "--quiet", "--keys"])
            .arg(&keys)
            .arg("--data")
            .arg(&data)
            .args(extra);
        c
    };
    let out = run_expect(&mut run(&["--pades-level", "b-lt"]), 3);
    assert!(
        text(&out).contains("PAdES level b-lt needs a time-stamping authority"),
        "{}",
        text(&out)
    );
    assert!(!data.exists(), "nothing created");

    run_expect(&mut run(&["--tsa", &tsa.url, "--pades-level", "b-lta"]), 0);
    let mut stored = Vec::new();
    let mut stack = vec![data.join("store")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pdf") {
                stored.push(path);
            }
        }
    }
    assert!(stored.len() >= 5, "{stored:?}");
    let mut signers = std::collections::BTreeSet::new();
    for file in &stored {
        let v = verify_json(file, &keys, &tsa);
        assert_eq!(v["status"], "authentic", "{v}");
        assert_eq!(v["pades_level"], "b-lta", "{v}");
        signers.insert(v["signer"].to_string());
    }
    assert!(signers.len() >= 2, "each issuer's own DSS: {signers:?}");
    let report = pyhanko(&["adesverify", "--pretty-print"], &stored[0], &keys, &tsa);
    assert!(report.contains("judged VALID") && !report.contains("INVALID"), "{report}");
    Ok(())
}

/// The document timestamp covers the DSS: a changed certificate in the DSS, or a changed
/// token, is tampered; a TSA that is not trusted is reported as such (and `timestamp extend`
/// refuses the file).
#[test]
fn a_changed_dss_or_document_timestamp_is_tampered() -> TestResult {
    let s = rendered("b-lta");
    let file = &pdfs(&s.out)[0];
    let pdf = std::fs::read(file)?;
    let dir = s._tmp.path();

    // A byte of the first DSS stream (a certificate's DER).
    let mut dss_changed = pdf.clone();
    let dss = find(&pdf, b"/Type/DSS").ok_or("no DSS")?;
    let update_start = pdf[..dss].windows(5).rposition(|w| w == b"%%EOF").ok_or("no EOF")?;
    let stream = update_start + find(&pdf[update_start..], b"stream\n").ok_or("no stream")? + 7;
    dss_changed[stream + 40] ^= 0x01;
    // A hex digit of the document timestamp's token.
    let mut token_changed = pdf.clone();
    let stamp = signatures(&pdf)[1].0;
    let digit = stamp[1] + 200;
    token_changed[digit] = if token_changed[digit] == b'0' { b'1' } else { b'0' };
    for (name, bytes) in [("dss.pdf", dss_changed), ("token.pdf", token_changed)] {
        let path = dir.join(name);
        std::fs::write(&path, bytes)?;
        let v = verify_json(&path, &s.keys, &s.tsa);
        assert_eq!(v["status"], "tampered", "{name}: {v}");
        assert!(v["reason"].as_str().unwrap_or_default().contains("document timestamp"), "{v}");
    }

    // Without the TSA's root the file is authentic, its document timestamp untrusted.
    let out = live().args(["verify", "--json", "--keys"]).arg(&s.keys).arg(file).output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["document_timestamps"][0]["trusted"], false, "{v}");
    let out = run_expect(
        live().args(["timestamp", "extend", "--tsa", &s.tsa.url, "--keys"]).arg(&s.keys).arg(file),
        4,
    );
    assert!(text(&out).contains("untrusted TSA"), "{}", text(&out));
    Ok(())
}

// ---- Revocation from the /DSS (issue 14): `verify` reads the CRLs a B-LT file carries. ----

/// `pdf` with one more B-LT update adding the CRLs `crls` (DER) to its DSS, written by the
/// same code as `render --pades-level b-lt` (`sign::ltv::append_dss`). The pipeline cannot
/// write a DSS revoking its own signer: it refuses to sign when the CRL it gathers lists it.
fn with_dss_crls(pdf: &[u8], crls: Vec<Vec<u8>>) -> Vec<u8> {
    use elicence::sign::ltv::{PdfTail, append_dss};
    use elicence::sign::validation_data::ValidationData;
    let (mut tail, _) = PdfTail::read(pdf).expect("a PDF of ours");
    let mut out = pdf.to_vec();
    append_dss(&mut out, &mut tail, &ValidationData { certs: Vec::new(), crls });
    out
}

/// Every signer certificate of a key set made with `keys init --pipeline`.
fn signer_certificates(keys: &Path) -> Vec<PathBuf> {
    let mut found = vec![keys.join("signer.pem")];
    for entry in std::fs::read_dir(keys.join("issuers")).expect("issuers").flatten() {
        found.push(entry.path().join("signer.pem"));
    }
    found
}

/// `keys crl KEYS --out OUT` on the clock `now` (RFC 3339; `None`: the real clock), revoking
/// `revoke` at that time.
fn keys_crl(keys: &Path, out: &Path, revoke: &[PathBuf], now: Option<&str>) {
    let mut c = live();
    if let Some(now) = now {
        c.env("ELICENCE_NOW", now);
    }
    c.args(["keys", "crl"]).arg(keys).arg("--out").arg(out);
    for cert in revoke {
        c.arg("--revoke").arg(cert);
    }
    run_expect(&mut c, 0);
}

/// Sets every revocation date in the key set's `revoked.txt` to `at` (RFC 3339): what
/// `keys crl` lists next.
fn backdate_revocations(keys: &Path, at: &str) {
    let path = keys.join("revoked.txt");
    let text = std::fs::read_to_string(&path).expect("revoked.txt");
    let lines: String = text
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(serial, _)| format!("{serial} {at}\n")))
        .collect();
    std::fs::write(&path, lines).expect("revoked.txt");
}

/// `elicence verify --json` of one file on the clock `now`, with no TSA trusted (so `now` is the
/// validation time).
fn verify_at_clock(file: &Path, keys: &Path, now: &str) -> serde_json::Value {
    let out = live()
        .env("ELICENCE_NOW", now)
        .args(["verify", "--json", "--keys"])
        .arg(keys)
        .arg(file)
        .output()
        .expect("verify runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[test]
fn b_lt_revocation_comes_from_the_dss() -> TestResult {
    let s = rendered("b-lt");
    let file = &pdfs(&s.out)[0];
    let v = verify_json(file, &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["revocation"], "dss", "{v}");
    assert!(v.get("revocation_detail").is_none(), "{v}");
    let out = live()
        .args(["verify", "--keys"])
        .arg(&s.keys)
        .arg("--tsa-trust")
        .arg(s.tsa.ca())
        .arg(file)
        .output()?;
    assert!(
        text(&out).contains("revocation checked against the CRL in its /DSS"),
        "{}",
        text(&out)
    );

    // A B-T file has no DSS: nothing is checked, as before.
    let bt = s._tmp.path().join("bt");
    run_expect(&mut render(&s.keys, &bt, &["--tsa", &s.tsa.url]), 0);
    let v = verify_json(&pdfs(&bt)[0], &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["pades_level"], "b-t", "{v}");
    assert_eq!(v["revocation"], "none", "{v}");
    Ok(())
}

/// The signer revoked before it signed, by a CRL of its CA in the DSS: untrusted without any
/// `--crl`. Revoked after its trusted signing time: still authentic at that time.
#[test]
fn a_dss_crl_revoking_the_signer_makes_it_untrusted() -> TestResult {
    let tsa = TestTsa::start();
    let crl = CrlServer::start();
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    keys_with_crl(&keys, Some(&crl.url()), Some(&crl.crl_path()));
    // Revoked now, before signing; the distribution point still serves the CRL without it, so
    // the run signs (it refuses a signer its CRL lists).
    let revoked_before = tmp.path().join("revoked-before.crl");
    keys_crl(&keys, &revoked_before, &signer_certificates(&keys), None);
    let out = tmp.path().join("out");
    run_expect(&mut render(&keys, &out, &["--tsa", &tsa.url, "--pades-level", "b-lt"]), 0);
    let file = pdfs(&out)[0].clone();
    let signed = std::fs::read(&file)?;
    let v = verify_json(&file, &keys, &tsa);
    assert_eq!(v["status"], "authentic", "{v}");

    let revoked = tmp.path().join("revoked.pdf");
    std::fs::write(&revoked, with_dss_crls(&signed, vec![std::fs::read(&revoked_before)?]))?;
    let v = verify_json(&revoked, &keys, &tsa);
    assert_eq!(v["status"], "untrusted", "{v}");
    assert_eq!(v["revocation"], "dss", "{v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("certificate revoked") && detail.contains("/DSS"), "{v}");
    // With `--crl` (the distribution point's CRL, which does not list it) the strict profile
    // applies as before and the DSS still counts on top.
    let out = live()
        .args(["verify", "--json", "--keys"])
        .arg(&keys)
        .arg("--tsa-trust")
        .arg(tsa.ca())
        .arg("--crl")
        .arg(crl.crl_path())
        .arg("--crl")
        .arg(tsa.dir.path().join("ca.crl"))
        .arg(&revoked)
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["status"], "untrusted", "{v}");
    assert_eq!(v["revocation"], "given", "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("/DSS"), "{v}");
    let out = run_expect(
        live().args(["verify", "--keys"]).arg(&keys).arg("--tsa-trust").arg(tsa.ca()).arg(&revoked),
        1,
    );
    assert!(text(&out).contains("untrusted") && text(&out).contains("certificate revoked"));

    // pyHanko's ETSI EN 319 102-1 process reads the same DSS CRL and agrees. (Its `validate`
    // fetches revocation data online instead, from the distribution point, which still serves
    // the CRL without the revocation: it says VALID there, as we would with that CRL.)
    let report = pyhanko(&["adesverify", "--pretty-print"], &revoked, &keys, &tsa);
    assert!(report.contains("The signer's certificate is revoked."), "{report}");
    assert!(report.contains("The signature is judged INVALID."), "{report}");

    // Eight days on with no TSA trusted, the validation time is that clock and every CRL of the
    // DSS has expired (`keys crl` gives a week): an expired CRL proves nothing about it, but a
    // revocation it lists is final.
    let in_eight_days = rfc3339(chrono::Utc::now() + chrono::Duration::days(8));
    let v = verify_at_clock(&revoked, &keys, &in_eight_days);
    assert_eq!(v["status"], "untrusted", "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("certificate revoked"), "{v}");
    let v = verify_at_clock(&file, &keys, &in_eight_days);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["revocation"], "none", "{v}");
    assert!(v["revocation_detail"].as_str().unwrap_or_default().contains("expired"), "{v}");

    // Revoked an hour after signing, by a CRL issued then: at the trusted signing time the
    // signer was not revoked (the DSS's first CRL, current then, says so).
    let later = tmp.path().join("revoked-later.crl");
    let in_an_hour = rfc3339(chrono::Utc::now() + chrono::Duration::hours(1));
    backdate_revocations(&keys, &in_an_hour);
    keys_crl(&keys, &later, &[], Some(&in_an_hour));
    let revoked_later = tmp.path().join("revoked-later.pdf");
    std::fs::write(&revoked_later, with_dss_crls(&signed, vec![std::fs::read(&later)?]))?;
    let v = verify_json(&revoked_later, &keys, &tsa);
    // pyHanko's ETSI process agrees: revoked after the timestamp's proof of existence.
    let report = pyhanko(&["adesverify", "--pretty-print"], &revoked_later, &keys, &tsa);
    assert!(report.contains("The signature is judged VALID."), "{report}");
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["revocation"], "dss", "{v}");
    let note = v["revocation_detail"].as_str().unwrap_or_default();
    assert!(note.contains("after the validation time"), "{v}");
    // Validated at a clock two hours on (no TSA trusted), that CRL is current and says revoked.
    let in_two_hours = rfc3339(chrono::Utc::now() + chrono::Duration::hours(2));
    let v = verify_at_clock(&revoked_later, &keys, &in_two_hours);
    assert_eq!(v["status"], "untrusted", "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("certificate revoked"), "{v}");

    // A CRL issued after the signing time that dates the revocation before it: untrusted
    // (pyHanko reads it so too).
    let retro = tmp.path().join("revoked-retro.crl");
    backdate_revocations(&keys, &rfc3339(chrono::Utc::now() - chrono::Duration::hours(1)));
    keys_crl(&keys, &retro, &[], Some(&in_an_hour));
    let retro_pdf = tmp.path().join("revoked-retro.pdf");
    std::fs::write(&retro_pdf, with_dss_crls(&signed, vec![std::fs::read(&retro)?]))?;
    let v = verify_json(&retro_pdf, &keys, &tsa);
    let report = pyhanko(&["adesverify", "--pretty-print"], &retro_pdf, &keys, &tsa);
    assert!(report.contains("The signer's certificate is revoked."), "{report}");
    assert!(report.contains("The signature is judged INVALID."), "{report}");
    assert_eq!(v["status"], "untrusted", "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("certificate revoked"), "{v}");
    drop(crl);
    Ok(())
}

/// A CRL in the DSS naming the signer's CA but signed by another key is not the CA's: it
/// neither revokes the signer nor counts as a check. Stored FlateDecode'd, as other tools do.
#[test]
fn a_dss_crl_signed_by_a_foreign_ca_is_ignored() -> TestResult {
    let s = rendered("b-lt");
    let file = &pdfs(&s.out)[0];
    let foreign = s._tmp.path().join("foreign.crl");
    let script = r#"
import sys, datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
ca = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
now = datetime.datetime.now(datetime.timezone.utc)
hour = datetime.timedelta(hours=1)
b = x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
b = b.last_update(now - hour).next_update(now + 24 * hour)
for path in sys.argv[3:]:
    cert = x509.load_pem_x509_certificate(open(path, 'rb').read())
    r = x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
    b = b.add_revoked_certificate(r.revocation_date(now - hour).build())
crl = b.sign(key, hashes.SHA256())
open(sys.argv[2], 'wb').write(crl.public_bytes(serialization.Encoding.DER))
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(s.keys.join("ca.pem"))
        .arg(&foreign)
        .args(signer_certificates(&s.keys))
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &std::fs::read(&foreign)?)?;
    let updated = s._tmp.path().join("foreign.pdf");
    std::fs::write(
        &updated,
        util::with_new_dss_stream(&std::fs::read(file)?, z.finish()?, Some("FlateDecode")),
    )?;
    let v = verify_json(&updated, &s.keys, &s.tsa);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["pades_level"], "b-lt", "{v}");
    assert_eq!(v["revocation"], "none", "{v}");
    let note = v["revocation_detail"].as_str().unwrap_or_default();
    assert!(note.contains("not signed by its key: ignored"), "{v}");
    Ok(())
}

/// A CRL in the DSS that has expired at the validation time proves nothing about it, but a
/// final revocation it lists still counts; a certificate hold does not (it may be lifted).
/// CRLs made by `openssl ca` with the key set's CA.
#[test]
fn an_expired_dss_crl_counts_for_a_revocation_but_not_for_a_hold() -> TestResult {
    let s = rendered("b-lt");
    let file = &pdfs(&s.out)[0];
    let signed = std::fs::read(file)?;
    let crl_with = |name: &str, reason: &[&str]| -> Vec<u8> {
        let dir = s._tmp.path().join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let config = "[ca]\ndefault_ca = d\n[d]\ndatabase = ./index.txt\ncrlnumber = ./crlnumber\ndefault_md = sha256\n";
        std::fs::write(dir.join("ca.cnf"), config).expect("config");
        std::fs::write(dir.join("index.txt"), "").expect("index");
        std::fs::write(dir.join("crlnumber"), "01\n").expect("crlnumber");
        let key = s.keys.join("ca.key");
        let ca = s.keys.join("ca.pem");
        let (key, ca) = (key.to_str().expect("utf-8"), ca.to_str().expect("utf-8"));
        // Every signer of the key set (the file's is one of them).
        for signer in signer_certificates(&s.keys) {
            let signer = signer.to_str().expect("utf-8").to_owned();
            let mut args = vec!["ca", "-config", "ca.cnf", "-keyfile", key, "-cert", ca];
            args.extend_from_slice(&["-revoke", &signer]);
            args.extend_from_slice(reason);
            util::openssl(&dir, &args);
        }
        let gencrl = ["ca", "-config", "ca.cnf", "-keyfile", key, "-cert", ca, "-gencrl"];
        let mut args: Vec<&str> = gencrl.to_vec();
        args.extend_from_slice(&["-crlhours", "1", "-out", "crl.pem"]);
        util::openssl(&dir, &args);
        util::openssl(&dir, &["crl", "-in", "crl.pem", "-outform", "DER", "-out", "crl.der"]);
        std::fs::read(dir.join("crl.der")).expect("crl")
    };
    let in_two_hours = rfc3339(chrono::Utc::now() + chrono::Duration::hours(2));
    let hold = s._tmp.path().join("hold.pdf");
    let crl = crl_with("hold", &["-crl_hold", "holdInstructionReject"]);
    std::fs::write(&hold, with_dss_crls(&signed, vec![crl]))?;
    // Two hours on, with no TSA trusted, the CRL listing the hold has expired and the first CRL
    // of the DSS (a week long) is current: authentic. (At the timestamp's time the CRLs made
    // here may fall in the same second as the token: not asked.)
    let v = verify_at_clock(&hold, &s.keys, &in_two_hours);
    assert_eq!(v["status"], "authentic", "{v}");
    assert_eq!(v["revocation"], "dss", "{v}");
    assert!(v["revocation_detail"].as_str().unwrap_or_default().contains("expired"), "{v}");

    let compromised = s._tmp.path().join("key-compromise.pdf");
    let crl = crl_with("compromise", &["-crl_reason", "keyCompromise"]);
    std::fs::write(&compromised, with_dss_crls(&signed, vec![crl]))?;
    let v = verify_at_clock(&compromised, &s.keys, &in_two_hours);
    assert_eq!(v["status"], "untrusted", "{v}");
    assert!(v["detail"].as_str().unwrap_or_default().contains("certificate revoked"), "{v}");
    Ok(())
}
