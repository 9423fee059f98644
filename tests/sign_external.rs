//! Signatures checked by software we did not write: poppler `pdfsig` (with an NSS database
//! trusting the development CA), pyHanko, `openssl cms` and `xmlsec1`; and our own
//! verifier checked against the same cases, including tampering.
//!
//! Nothing is skipped: a missing tool fails the test with the install command.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, SubsecRound, Utc};
use elicence::sign::keys::{DevKeyOptions, init_dev_keys};
use elicence::sign::{
    KeyError, PdfSignOptions, RsaSigner, canonical_attr_escape, canonical_text_escape,
    check_canonical, sign_pdf, sign_xml,
};
use elicence::verify::{SignatureStatus, TrustAnchors, verify_pdf, verify_xml};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const INSTALL_HINT: &str = "run .ci/run's installs: apt-get install -y poppler-utils xmlsec1 \
                            libnss3-tools openssl && pip install pyhanko pyhanko-cli";

fn fixture_keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys")
}

fn ca_pem() -> PathBuf {
    fixture_keys().join("ca.pem")
}

fn trust() -> TrustAnchors {
    match TrustAnchors::from_pem_files(&[ca_pem()]) {
        Ok(t) => t,
        Err(e) => panic!("fixtures/keys/ca.pem: {e}"),
    }
}

fn signing_time() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn fixture_signer() -> RsaSigner {
    match RsaSigner::load(&fixture_keys(), None, Utc::now()) {
        Ok(s) => s,
        Err(e) => panic!("fixtures/keys: {e}"),
    }
}

/// Runs an external tool; a missing tool fails the test with the install command.
fn run(program: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {program} ({e}): {INSTALL_HINT}"),
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// A canonical licence XML with Chinese text, attributes, an empty element, `"` and `&`.
fn sample_xml(holder: &str) -> String {
    format!(
        "<Licence xmlns=\"urn:elicence:licence:1\" id=\"{id}\" note=\"{note}\">\n\
         <Holder kind=\"企业\">{holder}</Holder>\n\
         <Scope>{scope}</Scope>\n\
         <Remark></Remark>\n\
         <Issued on=\"2026-11-27\"></Issued>\n\
         </Licence>",
        id = canonical_attr_escape("91110000MA01ABCD2X"),
        note = canonical_attr_escape("say \"hi\" & <bye>"),
        holder = canonical_text_escape(holder),
        scope = canonical_text_escape("技术开发、\"技术咨询\" & 服务 <含> 'x'"),
    )
}

/// An NSS database in `dir` trusting the development CA (for pdfsig).
fn nss_db(dir: &Path) -> String {
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!("{}: {e}", dir.display());
    }
    let db = format!("sql:{}", dir.display());
    let created = run("certutil", &["-N", "--empty-password", "-d", &db]);
    assert!(created.status.success(), "certutil -N: {}", text(&created));
    let added =
        run("certutil", &["-A", "-d", &db, "-n", "ca", "-t", "CT,C,C", "-i", path_str(&ca_pem())]);
    assert!(added.status.success(), "certutil -A: {}", text(&added));
    db
}

fn pdfsig(db: &str, file: &Path) -> String {
    let report = text(&run("pdfsig", &["-nssdir", db, path_str(file)]));
    eprintln!("pdfsig {}:\n{report}", file.display());
    report
}

fn pyhanko(file: &Path) -> (bool, String) {
    let out = run(
        "pyhanko",
        &[
            "sign",
            "validate",
            "--pretty-print",
            "--trust",
            path_str(&ca_pem()),
            "--trust-replace",
            path_str(file),
        ],
    );
    eprintln!("pyhanko {} (exit {:?}):\n{}", file.display(), out.status.code(), text(&out));
    (out.status.success(), text(&out))
}

fn xmlsec1(file: &Path) -> (bool, String) {
    let out = run("xmlsec1", &["--verify", "--trusted-pem", path_str(&ca_pem()), path_str(file)]);
    eprintln!("xmlsec1 {} (exit {:?}):\n{}", file.display(), out.status.code(), text(&out));
    (out.status.success(), text(&out))
}

/// The signed byte ranges and the DER CMS of the (only) signature.
fn split_signature(signed: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Box<dyn std::error::Error>> {
    let s = String::from_utf8_lossy(signed);
    let at = s.find("/ByteRange[").ok_or("no /ByteRange")? + "/ByteRange[".len();
    let end = s[at..].find(']').ok_or("no ]")? + at;
    let n: Vec<usize> = s[at..end].split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    let mut content = signed[n[0]..n[0] + n[1]].to_vec();
    content.extend_from_slice(&signed[n[2]..n[2] + n[3]]);
    let cms = hex::decode(&signed[n[1] + 1..n[2] - 1])?;
    // DER SEQUENCE with a two-byte length: 30 82 hi lo.
    let len = 4 + ((cms[2] as usize) << 8 | cms[3] as usize);
    Ok((content, cms[..len].to_vec()))
}

#[test]
fn signed_pdf_is_valid_for_pdfsig_pyhanko_openssl_and_us() -> TestResult {
    let dir = tempfile::tempdir()?;
    let at = signing_time();
    let opts = PdfSignOptions {
        reason: "电子证照签发".into(),
        location: "Beijing".into(),
        name: "elicence development signer".into(),
        tsa: None,
    };
    let signed = sign_pdf(&util::sample_pdf(), &fixture_signer(), at, &opts)?;
    let file = dir.path().join("signed.pdf");
    std::fs::write(&file, &signed)?;

    let db = nss_db(&dir.path().join("nss"));
    let report = pdfsig(&db, &file);
    assert!(report.contains("Signature is Valid"), "pdfsig: {report}");
    assert!(report.contains("Total document signed"), "pdfsig: {report}");
    assert!(report.contains("Certificate is Trusted"), "pdfsig: {report}");

    let (ok, report) = pyhanko(&file);
    assert!(ok, "pyhanko: {report}");
    assert!(report.contains("The signature is judged VALID"), "pyhanko: {report}");
    assert!(report.contains("The signer's certificate is trusted"), "pyhanko: {report}");
    assert!(report.contains("The signature covers the entire file"), "pyhanko: {report}");

    let (content, cms) = split_signature(&signed)?;
    let (content_file, cms_file) = (dir.path().join("content.bin"), dir.path().join("sig.der"));
    std::fs::write(&content_file, content)?;
    std::fs::write(&cms_file, cms)?;
    let out = run(
        "openssl",
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            path_str(&cms_file),
            "-content",
            path_str(&content_file),
            "-CAfile",
            path_str(&ca_pem()),
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
    );
    assert!(out.status.success(), "openssl cms -verify: {}", text(&out));
    assert!(text(&out).contains("Verification successful"), "openssl: {}", text(&out));

    let ours = verify_pdf(&signed, &trust());
    assert_eq!(ours.status, SignatureStatus::Authentic, "{ours:?}");
    assert_eq!(ours.signer.as_deref(), Some("elicence development signer"));
    assert_eq!(ours.signing_time, Some(at));
    Ok(())
}

#[test]
fn pdf_byte_changed_inside_signed_range_is_caught() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut signed =
        sign_pdf(&util::sample_pdf(), &fixture_signer(), signing_time(), &Default::default())?;
    let at = signed.windows(8).position(|w| w == b"MA01ABCD").ok_or("text not found")?;
    signed[at] = b'X';
    let file = dir.path().join("tampered.pdf");
    std::fs::write(&file, &signed)?;

    let report = pdfsig(&nss_db(&dir.path().join("nss")), &file);
    assert!(!report.contains("Signature is Valid"), "pdfsig: {report}");
    let (ok, report) = pyhanko(&file);
    assert!(!ok && !report.contains("judged VALID"), "pyhanko: {report}");
    let ours = verify_pdf(&signed, &trust());
    assert!(matches!(ours.status, SignatureStatus::Tampered { .. }), "{ours:?}");
    Ok(())
}

#[test]
fn pdf_incremental_update_after_signing_is_caught() -> TestResult {
    let dir = tempfile::tempdir()?;
    let signed =
        sign_pdf(&util::sample_pdf(), &fixture_signer(), signing_time(), &Default::default())?;
    // Change the page's text in an appended revision.
    let mut update: lopdf::IncrementalDocument = signed.as_slice().try_into()?;
    let page_id = *update.get_prev_documents().get_pages().get(&1).ok_or("no page")?;
    let content_id =
        update.get_prev_documents().get_dictionary(page_id)?.get(b"Contents")?.as_reference()?;
    update.opt_clone_object_to_new_document(content_id)?;
    let stream = update.new_document.get_object_mut(content_id)?.as_stream_mut()?;
    stream.set_plain_content(b"BT /F1 18 Tf 72 760 Td (Business licence FORGED) Tj ET".to_vec());
    let mut changed = Vec::new();
    update.save_to(&mut changed)?;
    assert!(changed.starts_with(&signed));
    let file = dir.path().join("updated.pdf");
    std::fs::write(&file, &changed)?;

    let report = pdfsig(&nss_db(&dir.path().join("nss")), &file);
    assert!(!report.contains("Total document signed"), "pdfsig: {report}");
    let (ok, report) = pyhanko(&file);
    assert!(!report.contains("covers the entire file"), "pyhanko: {report}");
    assert!(!ok || !report.contains("judged VALID"), "pyhanko: {report}");
    let ours = verify_pdf(&changed, &trust());
    match &ours.status {
        SignatureStatus::Tampered { reason } => {
            assert!(reason.contains("document changed after signing"), "{reason}")
        }
        other => panic!("expected tampered, got {other:?}"),
    }
    Ok(())
}

#[test]
fn every_signature_is_checked_and_a_second_one_does_not_cover_up_a_changed_first_revision()
-> TestResult {
    let dir = tempfile::tempdir()?;
    let signer = fixture_signer();
    let first = sign_pdf(&util::sample_pdf(), &signer, signing_time(), &Default::default())?;
    // Signed twice by trusted keys, nothing changed: authentic, both signatures reported.
    let twice = sign_pdf(&first, &signer, signing_time(), &Default::default())?;
    let ours = verify_pdf(&twice, &trust());
    assert_eq!(ours.status, SignatureStatus::Authentic, "{ours:?}");
    assert_eq!((ours.revision, ours.revisions), (Some(3), Some(3)));
    assert_eq!(ours.earlier_signatures.len(), 1);
    assert_eq!(ours.earlier_signatures[0].revision, Some(2));
    assert!(ours.earlier_signatures[0].status.is_authentic());

    // The first revision's text changed in place, then signed again: the last signature
    // verifies, the first does not.
    let at = first.windows(8).position(|w| w == b"Business").ok_or("text")?;
    let mut forged = first.clone();
    forged[at] = b'X';
    let resigned = sign_pdf(&forged, &signer, signing_time(), &Default::default())?;
    let file = dir.path().join("resigned.pdf");
    std::fs::write(&file, &resigned)?;
    let ours = verify_pdf(&resigned, &trust());
    match &ours.status {
        SignatureStatus::Tampered { reason } => {
            assert!(reason.contains("digest does not match"), "{reason}")
        }
        other => panic!("expected tampered, got {other:?}"),
    }
    let detail = ours.detail.as_deref().unwrap_or_default();
    assert!(detail.starts_with("earlier signature over revision 2: tampered"), "{detail}");
    // poppler agrees: the first signature's digest no longer matches.
    let report = pdfsig(&nss_db(&dir.path().join("nss")), &file);
    assert!(report.contains("Digest Mismatch"), "pdfsig: {report}");
    Ok(())
}

#[test]
fn signed_xml_is_valid_for_xmlsec1_and_us() -> TestResult {
    let dir = tempfile::tempdir()?;
    let doc = sample_xml("北京某某科技有限公司 & \"合伙人\"");
    check_canonical(&doc)?;
    let signer = fixture_signer();
    let signed = sign_xml(&doc, &signer)?;
    assert_eq!(signed, sign_xml(&doc, &signer)?, "XML signing must be deterministic");
    let file = dir.path().join("signed.xml");
    std::fs::write(&file, &signed)?;

    let (ok, report) = xmlsec1(&file);
    assert!(ok && report.contains("OK"), "xmlsec1: {report}");
    let ours = verify_xml(&signed, &trust());
    assert_eq!(ours.status, SignatureStatus::Authentic, "{ours:?}");
    assert_eq!(ours.signer.as_deref(), Some("elicence development signer"));
    let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(doc.as_bytes()));
    assert_eq!(ours.signed_digest.as_deref(), Some(expected.as_str()));
    Ok(())
}

#[test]
fn xml_field_edit_is_caught() -> TestResult {
    let dir = tempfile::tempdir()?;
    let signed = sign_xml(&sample_xml("北京某某科技有限公司"), &fixture_signer())?;
    let edited = signed.replace("北京某某科技有限公司", "上海某某科技有限公司");
    assert_ne!(edited, signed);
    let file = dir.path().join("edited.xml");
    std::fs::write(&file, &edited)?;
    let (ok, report) = xmlsec1(&file);
    assert!(!ok, "xmlsec1 accepted an edited document: {report}");
    let ours = verify_xml(&edited, &trust());
    assert!(matches!(ours.status, SignatureStatus::Tampered { .. }), "{ours:?}");
    Ok(())
}

#[test]
fn xml_signature_moved_to_another_document_is_caught() -> TestResult {
    let dir = tempfile::tempdir()?;
    let signer = fixture_signer();
    let first = sign_xml(&sample_xml("甲公司"), &signer)?;
    let second_doc = sample_xml("乙公司");
    let start = first.find("<Signature ").ok_or("no signature")?;
    let end = first.find("</Signature>").ok_or("no end")? + "</Signature>".len();
    let root_end = second_doc.rfind("</Licence>").ok_or("no root end")?;
    let moved =
        format!("{}{}{}", &second_doc[..root_end], &first[start..end], &second_doc[root_end..]);
    let file = dir.path().join("moved.xml");
    std::fs::write(&file, &moved)?;
    let (ok, report) = xmlsec1(&file);
    assert!(!ok, "xmlsec1 accepted a moved signature: {report}");
    let ours = verify_xml(&moved, &trust());
    assert!(matches!(ours.status, SignatureStatus::Tampered { .. }), "{ours:?}");
    Ok(())
}

#[test]
fn another_key_set_is_untrusted_everywhere() -> TestResult {
    let dir = tempfile::tempdir()?;
    let other_keys = dir.path().join("other");
    let now = Utc::now();
    let paths = init_dev_keys(&other_keys, now, &DevKeyOptions::default())?;
    let again = init_dev_keys(&other_keys, now, &DevKeyOptions::default());
    assert!(matches!(again, Err(KeyError::AlreadyExists { .. })), "{again:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&paths.signer_key)?.permissions().mode() & 0o777, 0o600);
    }
    let other = RsaSigner::load(&other_keys, None, now)?;

    let pdf = sign_pdf(&util::sample_pdf(), &other, signing_time(), &Default::default())?;
    let pdf_file = dir.path().join("other.pdf");
    std::fs::write(&pdf_file, &pdf)?;
    let report = pdfsig(&nss_db(&dir.path().join("nss")), &pdf_file);
    assert!(report.contains("Signature is Valid"), "pdfsig: {report}");
    assert!(!report.contains("Certificate is Trusted"), "pdfsig: {report}");
    let (ok, report) = pyhanko(&pdf_file);
    assert!(!ok && !report.contains("judged VALID"), "pyhanko: {report}");
    let ours = verify_pdf(&pdf, &trust());
    assert!(matches!(ours.status, SignatureStatus::Untrusted { .. }), "{ours:?}");

    let xml = sign_xml(&sample_xml("甲公司"), &other)?;
    let xml_file = dir.path().join("other.xml");
    std::fs::write(&xml_file, &xml)?;
    let (ok, report) = xmlsec1(&xml_file);
    assert!(!ok, "xmlsec1 trusted another CA's signer: {report}");
    let ours = verify_xml(&xml, &trust());
    assert!(matches!(ours.status, SignatureStatus::Untrusted { .. }), "{ours:?}");
    // With the other CA as anchor the same files are authentic.
    let other_trust = TrustAnchors::from_pem_files(std::slice::from_ref(&paths.ca_cert))?;
    assert_eq!(verify_pdf(&pdf, &other_trust).status, SignatureStatus::Authentic);
    assert_eq!(verify_xml(&xml, &other_trust).status, SignatureStatus::Authentic);
    Ok(())
}
