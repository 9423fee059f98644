//! RFC 3161 timestamps (issue 14, PAdES B-T) against a real TSA on loopback
//! (`tests/tsa/start.sh`: `openssl ts -reply` behind an HTTP server), checked by OpenSSL
//! (`openssl ts -verify`), pyHanko and our own verifier; tampered and untrusted tokens; a TSA
//! that cannot be reached. The bench TSA (`examples/bench_tsa.rs`, RSA and EC P-256 keys) is
//! held to the same checks.

mod util;

// The bench TSA runs in this process (as `tests/util/s3_server.rs` serves `s3_loopback`), so a
// test needs no second build; `main` and what only it uses are unused here.
#[allow(dead_code)]
#[path = "../examples/bench_tsa.rs"]
mod bench_tsa;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode};
use elicence::sign::keys::{DevKeyOptions, init_dev_keys};
use elicence::sign::{PdfSignOptions, RsaSigner, SignError, sign_pdf};
use elicence::timestamp::asn1::OID_SIGNATURE_TIME_STAMP_TOKEN;
use elicence::timestamp::{HttpTsa, Tsa, TsaError};
use elicence::verify::{SignatureStatus, TimeSource, TrustAnchors, verify_pdf_at};
use sha2::{Digest, Sha256};

type TestResult = Result<(), Box<dyn std::error::Error>>;

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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tsa/start.sh");
        let out = Command::new("bash")
            .arg(&script)
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

    fn client(&self) -> Arc<dyn Tsa> {
        Arc::new(HttpTsa::new(&self.url, Duration::from_secs(10)).expect("TSA url"))
    }
}

impl Drop for TestTsa {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// A development key set whose signer certificate is valid one day either side of now.
fn short_lived_keys() -> (tempfile::TempDir, RsaSigner) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = DevKeyOptions { validity_days: 2, ..DevKeyOptions::default() };
    init_dev_keys(dir.path(), now(), &opts).expect("keys init");
    let signer = RsaSigner::load(dir.path(), None, now()).expect("signer");
    (dir, signer)
}

fn sign_with(signer: &RsaSigner, tsa: Option<Arc<dyn Tsa>>) -> Result<Vec<u8>, SignError> {
    let opts =
        PdfSignOptions { reason: "电子证照签发".into(), tsa, ..PdfSignOptions::default() };
    sign_pdf(&util::sample_pdf(), signer, now(), &opts)
}

fn trust(keys: &Path, tsa: Option<&TestTsa>) -> TrustAnchors {
    let signers = TrustAnchors::from_pem_files(&[keys.join("ca.pem")]).expect("ca.pem");
    match tsa {
        Some(tsa) => signers.with_tsa(TrustAnchors::from_pem_files(&[tsa.ca()]).expect("tsa ca")),
        None => signers,
    }
}

/// The /Contents hex span of the only signature and the CMS in it.
fn contents(pdf: &[u8]) -> (std::ops::Range<usize>, Vec<u8>) {
    let text = String::from_utf8_lossy(pdf);
    let at = text.find("/ByteRange[").expect("/ByteRange") + "/ByteRange[".len();
    let end = text[at..].find(']').expect("]") + at;
    let n: Vec<usize> = text[at..end].split_whitespace().map(|v| v.parse().expect("n")).collect();
    let span = n[1] + 1..n[2] - 1;
    let raw = hex::decode(&pdf[span.clone()]).expect("hex");
    let len = 4 + ((raw[2] as usize) << 8 | raw[3] as usize);
    (span, raw[..len].to_vec())
}

fn signed_data(cms: &[u8]) -> SignedData {
    ContentInfo::from_der(cms).expect("ContentInfo").content.decode_as().expect("SignedData")
}

/// The DER timestamp token in the CMS and the signature value it is over.
fn token_of(cms: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let sd = signed_data(cms);
    let si = &sd.signer_infos.0.as_slice()[0];
    let attr = si
        .unsigned_attrs
        .as_ref()
        .and_then(|a| a.iter().find(|a| a.oid == OID_SIGNATURE_TIME_STAMP_TOKEN))
        .expect("signature timestamp attribute");
    (attr.values.get(0).expect("value").to_der().expect("der"), si.signature.as_bytes().to_vec())
}

#[test]
fn pdf_signed_with_a_tsa_is_b_t_for_openssl_pyhanko_and_us() -> TestResult {
    let tsa = TestTsa::start();
    let (keys, signer) = short_lived_keys();
    let before = now();
    let pdf = sign_with(&signer, Some(tsa.client()))?;
    let (_, cms) = contents(&pdf);
    let (token, signature) = token_of(&cms);

    // OpenSSL checks the token over the signature value, with the TSA's own root.
    assert_openssl_verifies_token(&token, &signature, &tsa.ca())?;

    // Ours: authentic, the path validated at the TSA's time.
    let v = verify_pdf_at(&pdf, &trust(keys.path(), Some(&tsa)), now());
    assert_eq!(v.status, SignatureStatus::Authentic, "{v:?}");
    assert_eq!(v.signing_time_source, Some(TimeSource::Timestamp));
    let stamp = v.timestamp.as_ref().ok_or("no timestamp reported")?;
    assert!(stamp.trusted, "{stamp:?}");
    assert_eq!(stamp.tsa.as_deref(), Some("Test TSA"));
    assert!(
        stamp.time >= before - chrono::Duration::seconds(2)
            && stamp.time <= now() + chrono::Duration::seconds(2)
    );

    // pyHanko sees the signature timestamp and trusts its TSA.
    let work = tempfile::tempdir()?;
    let file = work.path().join("b-t.pdf");
    std::fs::write(&file, &pdf)?;
    assert_pyhanko_trusts_the_timestamp(&file, &keys.path().join("ca.pem"), &tsa.ca());
    Ok(())
}

#[test]
fn a_trusted_timestamp_keeps_an_expired_signer_valid_and_only_a_trusted_one() -> TestResult {
    let tsa = TestTsa::start();
    let (keys, signer) = short_lived_keys();
    let stamped = sign_with(&signer, Some(tsa.client()))?;
    let plain = sign_with(&signer, None)?;
    // Three days on, the signer certificate has expired.
    let later = now() + chrono::Duration::days(3);

    let v = verify_pdf_at(&stamped, &trust(keys.path(), Some(&tsa)), later);
    assert_eq!(v.status, SignatureStatus::Authentic, "{v:?}");
    assert_eq!(v.signing_time_source, Some(TimeSource::Timestamp));

    // Without a timestamp the only trustworthy time is the verifier's: expired.
    let v = verify_pdf_at(&plain, &trust(keys.path(), Some(&tsa)), later);
    assert!(matches!(v.status, SignatureStatus::Untrusted { .. }), "{v:?}");
    assert!(v.detail.as_deref().unwrap_or_default().contains("expired"), "{v:?}");

    // A token from a TSA nobody trusts proves nothing: validated now, expired.
    let v = verify_pdf_at(&stamped, &trust(keys.path(), None), later);
    assert!(matches!(v.status, SignatureStatus::Untrusted { .. }), "{v:?}");
    let stamp = v.timestamp.as_ref().ok_or("no timestamp reported")?;
    assert!(!stamp.trusted);
    assert_eq!(stamp.detail.as_deref(), Some("no TSA trust anchors given"));
    assert_eq!(v.signing_time_source, Some(TimeSource::Claimed));

    // The signer's own CA does not vouch for a TSA.
    let signer_ca_as_tsa = TrustAnchors::from_pem_files(&[keys.path().join("ca.pem")])?;
    let v = verify_pdf_at(&stamped, &trust(keys.path(), None).with_tsa(signer_ca_as_tsa), later);
    assert!(matches!(v.status, SignatureStatus::Untrusted { .. }), "{v:?}");
    Ok(())
}

#[test]
fn a_token_moved_from_another_signature_or_altered_is_tampered() -> TestResult {
    let tsa = TestTsa::start();
    let (keys, signer) = short_lived_keys();
    let first = sign_with(&signer, Some(tsa.client()))?;
    // Another signing time, so another signature value.
    std::thread::sleep(Duration::from_millis(1100));
    let second = sign_with(&signer, Some(tsa.client()))?;
    let trust = trust(keys.path(), Some(&tsa));

    // The second file's CMS with the first file's token: the PDF bytes and the CMS signature
    // are intact, only the token is over another signature.
    let (span, cms) = contents(&second);
    let (_, first_cms) = contents(&first);
    let (first_token, _) = token_of(&first_cms);
    let mut content_info = ContentInfo::from_der(&cms)?;
    let mut sd = signed_data(&cms);
    let mut infos: Vec<_> = sd.signer_infos.0.into_vec();
    let attrs = infos[0].unsigned_attrs.as_mut().ok_or("attrs")?;
    let mut replaced = der::asn1::SetOfVec::new();
    for mut attr in attrs.clone().into_vec() {
        if attr.oid == OID_SIGNATURE_TIME_STAMP_TOKEN {
            let mut values = der::asn1::SetOfVec::new();
            values.insert(der::asn1::Any::from_der(&first_token)?)?;
            attr.values = values;
        }
        replaced.insert(attr)?;
    }
    *attrs = replaced;
    sd.signer_infos = cms::signed_data::SignerInfos(der::asn1::SetOfVec::try_from(infos)?);
    content_info.content = der::asn1::Any::encode_from(&sd)?;
    let forged_cms = content_info.to_der()?;
    let mut forged = second.clone();
    let hex_cms = hex::encode(&forged_cms);
    assert!(hex_cms.len() <= span.len());
    forged[span.start..span.start + hex_cms.len()].copy_from_slice(hex_cms.as_bytes());
    forged[span.start + hex_cms.len()..span.end].fill(b'0');
    let v = verify_pdf_at(&forged, &trust, now());
    match &v.status {
        SignatureStatus::Tampered { reason } => {
            assert!(reason.contains("the token is over another signature"), "{reason}")
        }
        other => panic!("{other:?}"),
    }

    // The token's genTime moved by a second: the TSTInfo still parses and still names this
    // signature, but the TSA's signature over it no longer verifies.
    let (token, _) = token_of(&cms);
    let read = elicence::timestamp::read_token(&token).map_err(|e| e.to_string())?;
    let gen_time = read.token.gen_time.format("%Y%m%d%H%M%SZ").to_string();
    let in_token = find(&token, gen_time.as_bytes()).ok_or("genTime in token")? + 13;
    let mut changed_token = token.clone();
    changed_token[in_token] =
        if changed_token[in_token] == b'9' { b'8' } else { changed_token[in_token] + 1 };
    let at = find(&second, hex::encode(&token).as_bytes()).ok_or("token in /Contents")?;
    let mut altered = second.clone();
    altered[at..at + 2 * token.len()].copy_from_slice(hex::encode(&changed_token).as_bytes());
    let v = verify_pdf_at(&altered, &trust, now());
    match &v.status {
        SignatureStatus::Tampered { reason } => {
            assert!(reason.starts_with("signature timestamp:"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn an_unreachable_tsa_is_a_named_error_after_retries_and_nothing_is_signed() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    let tsa: Arc<dyn Tsa> = Arc::new(HttpTsa::new(&url, Duration::from_secs(2)).expect("url"));
    let (_keys, signer) = short_lived_keys();
    match sign_with(&signer, Some(tsa)) {
        Err(SignError::Timestamp(TsaError::Unavailable { attempts: 4, url: u, .. })) => {
            assert_eq!(u, url)
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        HttpTsa::new("ftp://tsa.example/", Duration::from_secs(1)),
        Err(TsaError::BadUrl { .. })
    ));
}

#[test]
fn run_with_tsa_stores_b_t_files_that_verify_at_the_tsa_time_and_a_dead_tsa_creates_nothing() {
    let tsa = TestTsa::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let run = |url: &str, code: i32| {
        util::run_expect(
            util::elicence()
                .args(["run", "pipelines/food-business-permit.toml", "--input"])
                .arg("fixtures/food-business-permit/export-utf8.csv")
                .arg("--data")
                .arg(&data)
                .arg("--out")
                .arg(dir.path().join("out"))
                .args(["--tsa", url]),
            code,
        )
    };

    // A TSA that does not answer: the probe fails before the registry is created.
    let dead = format!("http://127.0.0.1:{}/", free_port());
    let out = run(&dead, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unavailable after 4 attempts"), "{stderr}");
    assert!(!data.exists(), "nothing created");

    run(&tsa.url, 0);
    let mut pdfs = Vec::new();
    let mut stack = vec![data.join("store")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("store").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pdf" || e == "xml") {
                pdfs.push(path);
            }
        }
    }
    assert!(pdfs.len() >= 10, "{} PDFs and XMLs", pdfs.len());
    // Verified at the real clock: the test TSA's certificate is younger than ELICENCE_NOW.
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["verify", "--json", "--keys"])
            .arg(data.join("dev-keys"))
            .arg("--tsa-trust")
            .arg(tsa.ca())
            .args(&pdfs),
        0,
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["status"], "authentic", "{line}");
        assert_eq!(v["signing_time_source"], "timestamp", "{line}");
        assert_eq!(v["timestamp"]["trusted"], true, "{line}");
        assert_eq!(v["timestamp"]["tsa"], "Test TSA", "{line}");
    }
    // Without the TSA's root the same files are authentic on the verifier's clock only.
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["verify", "--keys"])
            .arg(data.join("dev-keys"))
            .arg(pdfs.iter().find(|p| p.extension().is_some_and(|e| e == "pdf")).expect("a PDF")),
        0,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("authentic") && text.contains("claims to be signed"), "{text}");
}

#[test]
fn xml_signed_with_a_tsa_is_xades_b_t_for_xmlsec1_openssl_and_us() -> TestResult {
    use elicence::sign::xmldsig::{canonical_signature_value, sign_xml_with};
    use elicence::verify::verify_xml_at;
    let tsa = TestTsa::start();
    let (keys, signer) = short_lived_keys();
    let doc =
        "<licence xmlns=\"urn:example:licence\"><holder>某某食品有限公司</holder></licence>\n";
    let xml = sign_xml_with(doc, &signer, Some(tsa.client().as_ref()))?;
    let work = tempfile::tempdir()?;
    let file = work.path().join("b-t.xml");
    std::fs::write(&file, &xml)?;

    // xmlsec1 still verifies the XML-DSig signature (the timestamp is unsigned content).
    let out = Command::new("xmlsec1")
        .args(["--verify", "--trusted-pem"])
        .arg(keys.path().join("ca.pem"))
        .arg(&file)
        .output()?;
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.contains("OK"), "xmlsec1: {report}");

    // OpenSSL: the token is over the canonical SignatureValue element.
    let value = xml
        .split("<SignatureValue>")
        .nth(1)
        .and_then(|r| r.split("</SignatureValue>").next())
        .ok_or("SignatureValue")?;
    let token_b64 = xml
        .split("<EncapsulatedTimeStamp>")
        .nth(1)
        .and_then(|r| r.split("</EncapsulatedTimeStamp>").next())
        .ok_or("token")?;
    let data = work.path().join("signature-value.xml");
    std::fs::write(&data, canonical_signature_value(value))?;
    let token_file = work.path().join("token.der");
    std::fs::write(
        &token_file,
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token_b64)?,
    )?;
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&token_file)
        .arg("-data")
        .arg(&data)
        .arg("-CAfile")
        .arg(tsa.ca())
        .output()?;
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("Verification: OK"), "openssl ts -verify: {report}");

    // Ours, three days on (signer expired): authentic at the TSA's time.
    let later = now() + chrono::Duration::days(3);
    let v = verify_xml_at(&xml, &trust(keys.path(), Some(&tsa)), later);
    assert_eq!(v.status, SignatureStatus::Authentic, "{v:?}");
    assert_eq!(v.signing_time_source, Some(TimeSource::Timestamp));
    let v = verify_xml_at(&xml, &trust(keys.path(), None), later);
    assert!(matches!(v.status, SignatureStatus::Untrusted { .. }), "{v:?}");

    // A token from another signature: tampered.
    let other = sign_xml_with(&doc.replace("某某", "另一"), &signer, Some(tsa.client().as_ref()))?;
    let other_token = other
        .split("<EncapsulatedTimeStamp>")
        .nth(1)
        .and_then(|r| r.split("</EncapsulatedTimeStamp>").next())
        .ok_or("token")?;
    let moved = xml.replace(token_b64, other_token);
    match verify_xml_at(&moved, &trust(keys.path(), Some(&tsa)), now()).status {
        SignatureStatus::Tampered { reason } => {
            assert!(reason.contains("over another signature"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[test]
fn the_pipelines_output_tsa_timestamps_a_render_and_a_bad_one_is_a_configuration_error() {
    let tsa = TestTsa::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let pipelines = dir.path().join("pipelines");
    util::copy_dir(&util::root().join("pipelines"), &pipelines);
    // The layouts name the seal image relative to themselves.
    util::copy_dir(&util::root().join("fixtures/seals"), &dir.path().join("fixtures/seals"));
    let pipeline = pipelines.join("food-business-permit.toml");
    let original = std::fs::read_to_string(&pipeline).expect("pipeline");
    // The shipped [output] table (the file's last) is replaced below.
    let original = original.split("\n[output]").next().expect("text").to_string();
    let render = |code: i32| {
        util::run_expect(
            util::elicence()
                .arg("render")
                .arg(&pipeline)
                .args(["--input", "fixtures/food-business-permit/export-utf8.csv"])
                .args(["--keys", "fixtures/keys", "--limit", "2", "--out"])
                .arg(dir.path().join("out")),
            code,
        )
    };

    std::fs::write(&pipeline, format!("{original}\n[output]\ntsa = \"ftp://tsa.example/\"\n"))
        .expect("write");
    let out = render(3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("output.tsa") && stderr.contains("ftp://tsa.example/"), "{stderr}");

    std::fs::write(&pipeline, format!("{original}\n[output]\ntsa = \"{}\"\n", tsa.url))
        .expect("write");
    render(0);
    let pdfs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("out"))
        .expect("out")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .collect();
    assert_eq!(pdfs.len(), 2);
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["verify", "--json", "--keys", "fixtures/keys", "--tsa-trust"])
            .arg(tsa.ca())
            .args(&pdfs),
        0,
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["timestamp"]["trusted"], true, "{line}");
    }
}

#[test]
fn ofd_sealed_with_a_tsa_carries_the_token_in_ses_signature_for_openssl_ses_check_and_us()
-> TestResult {
    // The test TSA closes every connection (HTTP/1.0): one request at a time a connection.
    let tsa = TestTsa::start();
    run_all_formats_with_a_tsa(&tsa.url, &tsa.ca(), false)
}

#[test]
fn a_run_pipelines_its_requests_to_a_tsa_that_keeps_connections_and_every_file_verifies()
-> TestResult {
    // The bench TSA (hyper) keeps connections open: the run's requests are pipelined.
    let pki = TestTsa::start();
    let tsa = bench_tsa(&pki, bench_tsa::KeyFiles::Ec);
    run_all_formats_with_a_tsa(&tsa.url, &pki.ca(), true)
}

/// A run writing PDF, XML and OFD with the TSA at `url` (whose root is `ca`), said to
/// pipeline its requests or not (`pipelined`); each file's token checked by OpenSSL, the seal
/// by the independent checker, and every file by `verify` at the TSA's time.
fn run_all_formats_with_a_tsa(url: &str, ca: &Path, pipelined: bool) -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["run", "pipelines/food-business-permit.toml", "--input"])
            .arg("fixtures/food-business-permit/export-utf8.csv")
            .args(["--formats", "pdf,xml,ofd", "--tsa", url, "--data"])
            .arg(&data),
        0,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = if pipelined { "requests pipelined" } else { "one request at a time" };
    assert!(stderr.contains(said), "{stderr}");
    let mut ofds = Vec::new();
    let mut others = Vec::new();
    let mut stack = vec![data.join("store")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "ofd") {
                ofds.push(p);
            } else if p.extension().is_some_and(|x| x == "pdf" || x == "xml") {
                others.push(p);
            }
        }
    }
    assert!(!ofds.is_empty(), "the run stored OFDs");
    assert_eq!(others.len(), 2 * ofds.len(), "a PDF and an XML beside each OFD");
    let pdfs: Vec<PathBuf> =
        others.iter().filter(|p| p.extension().is_some_and(|x| x == "pdf")).cloned().collect();
    assert_openssl_verifies_pdf_tokens(&pdfs, ca)?;
    // The token in SES_Signature.timeStamp is over the signature value: OpenSSL says so.
    let bytes = std::fs::read(&ofds[0])?;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes))?;
    let mut signed_value = Vec::new();
    let name = elicence::seal::ofd::SIGNED_VALUE_PATH;
    std::io::Read::read_to_end(&mut zip.by_name(name)?, &mut signed_value)?;
    let ses = elicence::seal::asn1::SesSignature::from_der(&signed_value)?;
    let token = ses.time_stamp.as_ref().and_then(|t| t.as_bytes()).expect("timeStamp present");
    let signature = ses.signature.as_bytes().expect("signature");
    let token_file = dir.path().join("token.der");
    std::fs::write(&token_file, token)?;
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&token_file)
        .args(["-digest", &hex::encode(Sha256::digest(signature)), "-CAfile"])
        .arg(ca)
        .output()?;
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("Verification: OK"), "openssl ts -verify: {report}");

    // The independent seal checker still accepts the seal (references, dataHash, SM2).
    // Check 5 (`openssl verify` without the SM2 default ID) fails on standard certificates;
    // tests/ofd_seal.rs explains and checks the chain with the ID given.
    let script = util::root().join("../shared/tools/ofd/ses_check.py");
    let script =
        if script.exists() { script } else { PathBuf::from("/work/shared/tools/ofd/ses_check.py") };
    let out = Command::new("python3")
        .arg(&script)
        .arg("--trust")
        .arg(data.join("dev-keys/sm2-ca.pem"))
        .arg(&ofds[0])
        .output()?;
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for line in [
        "1 references (",
        "2 version 4, dataHash == SM3(Signature.xml): True",
        "3 SM2 signature over TBS_Sign: True",
        "4 seal file == TBS_Sign.eseal: True",
    ] {
        assert!(
            text.lines().any(|l| l.contains(line) && !l.contains("MISMATCH")),
            "ses_check.py fails {line:?}:\n{text}"
        );
    }

    // Ours: every file (the seal too) is checked at the TSA's time, the timestamp trusted
    // under its root.
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["verify", "--json", "--tsa-trust"])
            .arg(ca)
            .arg("--keys")
            .arg(data.join("dev-keys"))
            .args(&others)
            .args(&ofds),
        0,
    );
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)?.lines().collect();
    assert_eq!(lines.len(), others.len() + ofds.len());
    for (i, line) in lines.into_iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let kind = if i < others.len() { v["kind"] != "ofd" } else { v["kind"] == "ofd" };
        assert!(kind, "{line}");
        assert_eq!(v["status"], "authentic", "{line}");
        assert_eq!(v["timestamp"]["trusted"], true, "{line}");
        assert_eq!(v["signing_time_source"], "timestamp", "{line}");
    }
    Ok(())
}

/// The test TSA's PKI (served CRL included) with an EC P-256 certificate beside its RSA one
/// (`scripts/bench-tsa-keys.sh`), and a bench TSA for `files` on a free port.
fn bench_tsa(pki: &TestTsa, files: bench_tsa::KeyFiles) -> bench_tsa::RunningTsa {
    if files == bench_tsa::KeyFiles::Ec && !pki.dir.path().join("tsa-ec.pem").exists() {
        let out = Command::new("bash")
            .arg(util::root().join("scripts/bench-tsa-keys.sh"))
            .arg(pki.dir.path())
            .output()
            .expect("bash scripts/bench-tsa-keys.sh");
        assert!(
            out.status.success(),
            "bench-tsa-keys.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let authority = bench_tsa::Authority::load(pki.dir.path(), files).expect("bench TSA keys");
    bench_tsa::start(authority, "127.0.0.1:0".parse().expect("addr")).expect("bench TSA starts")
}

/// `elicence render --tsa URL --pades-level b-t` of two licences (PDF and XML) with the
/// fixture keys, on the real clock (the TSA's); returns the output folder's PDFs and XMLs.
fn render_b_t(url: &str, out: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["render", "pipelines/food-business-permit.toml"])
            .args(["--input", "fixtures/food-business-permit/export-utf8.csv"])
            .args(["--keys", "fixtures/keys", "--limit", "2", "--formats", "pdf,xml"])
            .args(["--tsa", url, "--pades-level", "b-t", "--out"])
            .arg(out),
        0,
    );
    let (pdfs, xmls) = (util::files_with_ext(out, "pdf"), util::files_with_ext(out, "xml"));
    assert_eq!((pdfs.len(), xmls.len()), (2, 2), "{pdfs:?} {xmls:?}");
    (pdfs, xmls)
}

/// `openssl ts -verify` of the signature timestamp of each PDF, against the TSA's root.
fn assert_openssl_verifies_pdf_tokens(pdfs: &[PathBuf], ca: &Path) -> TestResult {
    for pdf in pdfs {
        let (_, cms) = contents(&std::fs::read(pdf)?);
        let (token, signature) = token_of(&cms);
        assert_openssl_verifies_token(&token, &signature, ca)?;
    }
    Ok(())
}

/// `openssl ts -verify` of the DER `token` over `signature` (by its SHA-256) with the TSA's
/// root `ca`.
fn assert_openssl_verifies_token(token: &[u8], signature: &[u8], ca: &Path) -> TestResult {
    let work = tempfile::tempdir()?;
    let token_file = work.path().join("token.der");
    std::fs::write(&token_file, token)?;
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&token_file)
        .args(["-digest", &hex::encode(Sha256::digest(signature)), "-CAfile"])
        .arg(ca)
        .output()?;
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("Verification: OK"), "openssl ts -verify: {report}");
    Ok(())
}

/// `pyhanko sign validate` with the signer's root `signer_ca` and the TSA's `tsa_ca`: the
/// signature valid, its timestamp sound and its TSA trusted.
fn assert_pyhanko_trusts_the_timestamp(pdf: &Path, signer_ca: &Path, tsa_ca: &Path) {
    let out = Command::new("pyhanko")
        .args(["sign", "validate", "--pretty-print", "--trust"])
        .arg(signer_ca)
        .arg("--trust")
        .arg(tsa_ca)
        .arg("--trust-replace")
        .arg(pdf)
        .current_dir(util::root())
        .output()
        .expect("pyhanko runs");
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("pyhanko {pdf:?}:\n{report}");
    assert!(out.status.success(), "pyhanko: {report}");
    assert!(report.contains("The signature is judged VALID"), "pyhanko: {report}");
    assert!(report.contains("The timestamp token is cryptographically sound."), "{report}");
    assert!(report.contains("The TSA certificate is trusted."), "pyhanko: {report}");
}

/// `elicence verify --json` of `files` with the TSA's root, one value per file.
fn verify_with_tsa_trust(files: &[PathBuf], ca: &Path) -> Vec<serde_json::Value> {
    let out = util::elicence()
        .env_remove("ELICENCE_NOW")
        .args(["verify", "--json", "--keys", "fixtures/keys", "--tsa-trust"])
        .arg(ca)
        .args(files)
        .output()
        .expect("verify runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect()
}

#[test]
fn the_bench_tsa_with_an_rsa_key_stamps_renders_that_openssl_pyhanko_and_verify_accept()
-> TestResult {
    let pki = TestTsa::start();
    let tsa = bench_tsa(&pki, bench_tsa::KeyFiles::Default);
    let out = tempfile::tempdir()?;
    let (pdfs, xmls) = render_b_t(&tsa.url, out.path());
    assert_openssl_verifies_pdf_tokens(&pdfs, &pki.ca())?;
    assert_pyhanko_trusts_the_timestamp(
        &pdfs[0],
        &util::root().join("fixtures/keys/ca.pem"),
        &pki.ca(),
    );
    let files: Vec<PathBuf> = pdfs.iter().chain(&xmls).cloned().collect();
    let reports = verify_with_tsa_trust(&files, &pki.ca());
    assert_eq!(reports.len(), files.len());
    for v in reports {
        assert_eq!(v["status"], "authentic", "{v}");
        assert_eq!(v["signing_time_source"], "timestamp", "{v}");
        assert_eq!(v["timestamp"]["trusted"], true, "{v}");
        assert_eq!(v["timestamp"]["tsa"], "Test TSA", "{v}");
    }
    // Serial numbers differ from token to token (two PDFs, two XMLs, the probe).
    let serials: std::collections::BTreeSet<String> = pdfs
        .iter()
        .map(|p| {
            let (_, cms) = contents(&std::fs::read(p).expect("pdf"));
            let token = token_of(&cms).0;
            elicence::timestamp::read_token(&token).map(|r| r.token.serial).expect("token")
        })
        .collect();
    assert_eq!(serials.len(), pdfs.len());
    Ok(())
}

#[test]
fn the_bench_tsa_with_an_ec_p256_key_stamps_renders_that_openssl_and_pyhanko_accept() -> TestResult
{
    let pki = TestTsa::start();
    let tsa = bench_tsa(&pki, bench_tsa::KeyFiles::Ec);
    let out = tempfile::tempdir()?;
    let (pdfs, _xmls) = render_b_t(&tsa.url, out.path());
    let (_, cms) = contents(&std::fs::read(&pdfs[0])?);
    let token = token_of(&cms).0;
    let read = elicence::timestamp::read_token(&token)?;
    let [signer_info] = read.signed_data.signer_infos.0.as_slice() else {
        panic!("one SignerInfo")
    };
    assert_eq!(signer_info.signature_algorithm.oid.to_string(), "1.2.840.10045.4.3.2");
    assert_openssl_verifies_pdf_tokens(&pdfs, &pki.ca())?;
    assert_pyhanko_trusts_the_timestamp(
        &pdfs[0],
        &util::root().join("fixtures/keys/ca.pem"),
        &pki.ca(),
    );
    Ok(())
}

/// POSTs `body` to the TSA at `url`; the HTTP status and the body.
fn post_query(url: &str, body: &[u8], content_type: &str) -> (u16, Vec<u8>) {
    let mut response = util::http_agent()
        .post(url)
        .header("Content-Type", content_type)
        .send(body)
        .expect("the TSA answers");
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_vec().expect("body"))
}

/// The status and the first failInfo bit set of a TimeStampResp (no token with a rejection).
fn rejection_of(reply: &[u8]) -> (u8, Option<usize>) {
    use elicence::timestamp::asn1::TimeStampResp;
    let resp = TimeStampResp::from_der(reply).expect("a TimeStampResp");
    assert!(resp.time_stamp_token.is_none() || resp.status.status <= 1, "{resp:?}");
    (resp.status.status, resp.status.fail_info.and_then(|bits| bits.bits().position(|b| b)))
}

#[test]
fn the_bench_tsa_rejects_malformed_requests_with_a_fail_info_and_keeps_serving() -> TestResult {
    use elicence::timestamp::asn1::{MessageImprint, TimeStampReq};
    let pki = TestTsa::start();
    let tsa = bench_tsa(&pki, bench_tsa::KeyFiles::Default);
    const QUERY: &str = "application/timestamp-query";

    // Not DER at all: rejection (2), badDataFormat (5); OpenSSL reads it as such.
    let (status, reply) = post_query(&tsa.url, b"not a timestamp request", QUERY);
    assert_eq!(status, 200);
    assert_eq!(rejection_of(&reply), (2, Some(5)));
    let work = tempfile::tempdir()?;
    std::fs::write(work.path().join("reply.tsr"), &reply)?;
    let out = Command::new("openssl")
        .args(["ts", "-reply", "-text", "-in"])
        .arg(work.path().join("reply.tsr"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Status: Rejected."), "openssl ts -reply: {text}");
    assert!(text.contains("the data submitted has the wrong format"), "openssl: {text}");

    let request = |oid: &str, digest_len: usize, policy: Option<&str>| -> Vec<u8> {
        let req = TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: spki::AlgorithmIdentifierOwned {
                    oid: oid.parse().expect("oid"),
                    parameters: None,
                },
                hashed_message: der::asn1::OctetString::new(vec![7u8; digest_len]).expect("octets"),
            },
            req_policy: policy.map(|p| p.parse().expect("oid")),
            nonce: None,
            cert_req: None,
            extensions: None,
        };
        req.to_der().expect("der")
    };
    let sha256 = "2.16.840.1.101.3.4.2.1";
    // SHA-1 (1.3.14.3.2.26): badAlg (0).
    let (_, reply) = post_query(&tsa.url, &request("1.3.14.3.2.26", 20, None), QUERY);
    assert_eq!(rejection_of(&reply), (2, Some(0)));
    // A SHA-256 imprint of 20 bytes: badDataFormat (5).
    let (_, reply) = post_query(&tsa.url, &request(sha256, 20, None), QUERY);
    assert_eq!(rejection_of(&reply), (2, Some(5)));
    // Another policy: unacceptedPolicy (15).
    let (_, reply) = post_query(&tsa.url, &request(sha256, 32, Some("1.2.3.4")), QUERY);
    assert_eq!(rejection_of(&reply), (2, Some(15)));
    // Not a timestamp query at all: HTTP 415, no reply.
    let (status, _) = post_query(&tsa.url, b"{}", "application/json");
    assert_eq!(status, 415);

    // Still serving; a request without certReq gets a token without the certificate.
    let (_, reply) = post_query(&tsa.url, &request(sha256, 32, None), QUERY);
    assert_eq!(rejection_of(&reply), (0, None));
    let token = elicence::timestamp::asn1::TimeStampResp::from_der(&reply)?
        .time_stamp_token
        .ok_or("granted without a token")?
        .to_der()?;
    assert!(elicence::timestamp::token_certificates(&token).is_empty());
    HttpTsa::new(&tsa.url, Duration::from_secs(10))?.stamp(b"still serving")?;
    Ok(())
}

/// Found while building the bench TSA: `verify` checked a token's CMS signature with RSA only,
/// so an authentic token from an ECDSA TSA (common among public TSAs) made the file `tampered`
/// ("CMS signature: unsupported signature algorithm 1.2.840.10045.4.3.2"), although OpenSSL
/// and pyHanko accept it (the test above). `verify::verify_signature` now takes ECDSA P-256 and
/// P-384 too.
#[test]
fn verify_accepts_a_token_from_an_ecdsa_tsa() {
    let pki = TestTsa::start();
    let tsa = bench_tsa(&pki, bench_tsa::KeyFiles::Ec);
    let out = tempfile::tempdir().expect("temp dir");
    let (pdfs, xmls) = render_b_t(&tsa.url, out.path());
    let files: Vec<PathBuf> = pdfs.iter().chain(&xmls).cloned().collect();
    for v in verify_with_tsa_trust(&files, &pki.ca()) {
        assert_eq!(v["status"], "authentic", "{v}");
        assert_eq!(v["timestamp"]["trusted"], true, "{v}");
        assert_eq!(v["timestamp"]["tsa"], "Test TSA EC", "{v}");
    }
}
