//! Certificate path attacks on `verify` (issue 14, item 2), each with a PKI made by the
//! `openssl` command line, a PDF signed by our signer with the attacking key, and the class
//! our verifier must give. The path is validated by OpenSSL's `X509_verify_cert` at the
//! verifier's clock, never at the `/M` the signer wrote.

mod util;

use std::path::Path;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use elicence::sign::{PdfSignOptions, RsaSigner, sign_pdf};
use elicence::verify::{SignatureStatus, TrustAnchors, verify_pdf_at};
use util::openssl;

/// Extension sections for every certificate the tests make.
const EXTENSIONS: &str = "\
[root]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyCertSign, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[signer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[no_key_usage]
basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[encipher_only]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A test PKI in a scratch folder: `root.pem` (pathlen 0) and its key.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ext.cnf"), EXTENSIONS).unwrap();
        openssl(dir.path(), &["genpkey", "-algorithm", "RSA", "-out", "root.key"]);
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "root.key",
                "-out",
                "root.pem",
                "-subj",
                "/CN=Attack Test Root",
                "-days",
                "3650",
                "-config",
                "ext.cnf",
                "-extensions",
                "root",
            ],
        );
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Issues `name.pem` (key `name.key`) for section `ext`, signed by `issuer`, valid `days`.
    fn issue(&self, name: &str, issuer: &str, ext: &str, days: &str) {
        let d = self.dir.path();
        openssl(d, &["genpkey", "-algorithm", "RSA", "-out", &format!("{name}.key")]);
        let csr = format!("{name}.csr");
        let subject = format!("/CN=Attack {name}");
        openssl(
            d,
            &["req", "-new", "-key", &format!("{name}.key"), "-subj", &subject, "-out", &csr],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{issuer}.pem"),
                "-CAkey",
                &format!("{issuer}.key"),
                "-CAcreateserial",
                "-days",
                days,
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }

    /// A key folder as `RsaSigner::load` reads it: `signer.key` and the chain `signer.pem`.
    fn key_dir(&self, signer: &str, intermediates: &[&str]) -> tempfile::TempDir {
        let keys = tempfile::tempdir().unwrap();
        std::fs::copy(self.path(&format!("{signer}.key")), keys.path().join("signer.key")).unwrap();
        let mut chain = std::fs::read(self.path(&format!("{signer}.pem"))).unwrap();
        for name in intermediates {
            chain.extend(std::fs::read(self.path(&format!("{name}.pem"))).unwrap());
        }
        std::fs::write(keys.path().join("signer.pem"), chain).unwrap();
        keys
    }

    fn trust(&self) -> TrustAnchors {
        TrustAnchors::from_pem_files(&[self.dir.path().join("root.pem")]).unwrap()
    }
}

/// A small PDF signed at `at` (its `/M`) with the key in `keys`.
fn signed_pdf(keys: &Path, at: DateTime<Utc>) -> Vec<u8> {
    use lopdf::{Object, dictionary};
    let mut doc = lopdf::Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut pdf = Vec::new();
    doc.save_to(&mut pdf).unwrap();
    let signer = RsaSigner::load(keys, None, at).unwrap_or_else(|e| panic!("{e}"));
    let opts = PdfSignOptions {
        reason: "attack".into(),
        location: "test".into(),
        name: "attack".into(),
        tsa: None,
    };
    sign_pdf(&pdf, &signer, at, &opts).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Signs with `keys` now and verifies at `verify_at`; returns the status and the detail.
fn verdict(pki: &Pki, keys: &Path, verify_at: DateTime<Utc>) -> (SignatureStatus, String) {
    let v = verify_pdf_at(&signed_pdf(keys, now()), &pki.trust(), verify_at);
    (v.status, v.detail.unwrap_or_default())
}

fn assert_untrusted(pki: &Pki, keys: &Path, at: DateTime<Utc>, because: &str) {
    let (status, detail) = verdict(pki, keys, at);
    assert!(matches!(status, SignatureStatus::Untrusted { .. }), "{status:?} {detail}");
    assert!(detail.contains(because), "detail {detail:?} should say {because:?}");
}

#[test]
fn a_proper_signer_is_authentic() {
    let pki = Pki::new();
    pki.issue("good", "root", "signer", "30");
    let keys = pki.key_dir("good", &[]);
    let (status, detail) = verdict(&pki, keys.path(), now());
    assert_eq!(status, SignatureStatus::Authentic, "{detail}");
}

#[test]
fn expired_signer_with_back_dated_signing_time_is_untrusted() {
    // Valid for one day from now; the PDF's /M is now (inside the validity), but the verifier
    // looks two days later without a trusted timestamp: the certificate has expired.
    let pki = Pki::new();
    pki.issue("short", "root", "signer", "1");
    let keys = pki.key_dir("short", &[]);
    assert_untrusted(&pki, keys.path(), now() + Duration::days(2), "certificate has expired");
}

#[test]
fn signer_without_key_usage_is_untrusted() {
    let pki = Pki::new();
    pki.issue("nokeyusage", "root", "no_key_usage", "30");
    let keys = pki.key_dir("nokeyusage", &[]);
    assert_untrusted(&pki, keys.path(), now(), "no digitalSignature or nonRepudiation");
}

#[test]
fn signer_with_only_key_encipherment_is_untrusted() {
    let pki = Pki::new();
    pki.issue("encipher", "root", "encipher_only", "30");
    let keys = pki.key_dir("encipher", &[]);
    assert_untrusted(&pki, keys.path(), now(), "no digitalSignature or nonRepudiation");
}

#[test]
fn the_ca_key_as_signer_is_untrusted() {
    let pki = Pki::new();
    let keys = pki.key_dir("root", &[]);
    assert_untrusted(&pki, keys.path(), now(), "is a CA certificate");
}

#[test]
fn intermediate_beyond_the_roots_pathlen_is_untrusted() {
    let pki = Pki::new();
    pki.issue("intermediate", "root", "ca", "30");
    pki.issue("deep", "intermediate", "signer", "30");
    let keys = pki.key_dir("deep", &["intermediate"]);
    assert_untrusted(&pki, keys.path(), now(), "path length constraint exceeded");
}

#[test]
fn non_ca_intermediate_is_untrusted() {
    let pki = Pki::new();
    pki.issue("notca", "root", "not_ca", "30");
    pki.issue("under", "notca", "signer", "30");
    let keys = pki.key_dir("under", &["notca"]);
    assert_untrusted(&pki, keys.path(), now(), "invalid CA certificate");
}
