//! Revocation (issue 14): `verify --crl` with CRLs made by `openssl ca`, a CA database the
//! `openssl` command line keeps. Revoked signer → untrusted; a path with an issuer whose CRL
//! is missing or expired → untrusted (strict profile); no CRL given → revocation unchecked.

mod util;

use std::path::PathBuf;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use elicence::sign::{PdfSignOptions, RsaSigner, sign_pdf};
use elicence::verify::{SignatureStatus, TrustAnchors, TrustError, verify_pdf_at};
use util::openssl;

const CONFIG: &str = "\
[ca]
default_ca = ca_default
[ca_default]
database = ./index.txt
crlnumber = ./crlnumber
default_md = sha256
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[signer]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A root CA with a database, and one signer it issued (`signer.pem`, `signer.key`).
struct Ca {
    dir: tempfile::TempDir,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("ca.cnf"), CONFIG).expect("config");
        std::fs::write(d.join("index.txt"), "").expect("index");
        std::fs::write(d.join("crlnumber"), "01\n").expect("crlnumber");
        openssl(d, &["genpkey", "-algorithm", "RSA", "-out", "root.key"]);
        let subject = format!("/CN={name} Root");
        openssl(
            d,
            &["req", "-x509", "-new", "-key", "root.key", "-out", "root.pem", "-subj", &subject]
                .into_iter()
                .chain(["-days", "3650", "-config", "ca.cnf", "-extensions", "root"])
                .collect::<Vec<_>>(),
        );
        openssl(d, &["genpkey", "-algorithm", "RSA", "-out", "signer.key"]);
        let subject = format!("/CN={name} Signer");
        openssl(d, &["req", "-new", "-key", "signer.key", "-subj", &subject, "-out", "s.csr"]);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "s.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "365",
                "-extfile",
                "ca.cnf",
                "-extensions",
                "signer",
                "-out",
                "signer.pem",
            ],
        );
        Ca { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` (PEM, or DER when it ends in `.crl`), valid for `hours`.
    fn crl(&self, name: &str, hours: u32) -> PathBuf {
        let pem = format!("{name}.pem");
        openssl(
            self.dir.path(),
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-gencrl",
                "-keyfile",
                "root.key",
                "-cert",
                "root.pem",
                "-crlhours",
                &hours.to_string(),
                "-out",
                &pem,
            ],
        );
        if name.ends_with(".crl") {
            openssl(self.dir.path(), &["crl", "-in", &pem, "-outform", "DER", "-out", name]);
            self.path(name)
        } else {
            self.path(&pem)
        }
    }

    fn revoke_signer(&self) {
        openssl(
            self.dir.path(),
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-revoke",
                "signer.pem",
                "-keyfile",
                "root.key",
                "-cert",
                "root.pem",
            ],
        );
    }

    fn signed_pdf(&self) -> Vec<u8> {
        let keys = tempfile::tempdir().expect("temp dir");
        std::fs::copy(self.path("signer.key"), keys.path().join("signer.key")).expect("key");
        let mut chain = std::fs::read(self.path("signer.pem")).expect("signer.pem");
        chain.extend(std::fs::read(self.path("root.pem")).expect("root.pem"));
        std::fs::write(keys.path().join("signer.pem"), chain).expect("chain");
        let signer = RsaSigner::load(keys.path(), None, now()).expect("signer");
        let opts = PdfSignOptions::default();
        sign_pdf(&util::sample_pdf(), &signer, now(), &opts).expect("sign")
    }

    fn trust(&self, crls: &[PathBuf]) -> TrustAnchors {
        TrustAnchors::from_pem_files(&[self.path("root.pem")])
            .expect("root")
            .with_crls(crls)
            .expect("crls")
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

fn untrusted_because(status: &SignatureStatus, detail: Option<&str>, why: &str) {
    assert!(matches!(status, SignatureStatus::Untrusted { .. }), "{status:?}");
    assert!(detail.unwrap_or_default().contains(why), "{detail:?} should say {why:?}");
}

#[test]
fn a_revoked_signer_is_untrusted_and_a_current_crl_without_it_is_authentic() {
    let ca = Ca::new("CRL Test");
    let pdf = ca.signed_pdf();
    let before = ca.crl("before.crl", 24);
    let v = verify_pdf_at(&pdf, &ca.trust(std::slice::from_ref(&before)), now());
    assert_eq!(v.status, SignatureStatus::Authentic, "{v:?}");

    ca.revoke_signer();
    let after = ca.crl("after", 24);
    let v = verify_pdf_at(&pdf, &ca.trust(&[after]), now());
    untrusted_because(&v.status, v.detail.as_deref(), "certificate revoked");

    // Without any CRL, revocation is not checked (and the report says nothing of it).
    let v = verify_pdf_at(&pdf, &ca.trust(&[]), now());
    assert_eq!(v.status, SignatureStatus::Authentic, "{v:?}");
}

#[test]
fn an_issuer_without_a_current_crl_makes_the_path_untrusted() {
    let ca = Ca::new("CRL Strict");
    let other = Ca::new("Other");
    let pdf = ca.signed_pdf();
    // Only another CA's CRL: no CRL for this path's issuer.
    let v = verify_pdf_at(&pdf, &ca.trust(&[other.crl("other", 24)]), now());
    untrusted_because(&v.status, v.detail.as_deref(), "unable to get certificate CRL");
    // This CA's CRL, one hour old and valid one hour, checked two hours later: expired.
    let short = ca.crl("short", 1);
    let v = verify_pdf_at(&pdf, &ca.trust(&[short]), now() + Duration::hours(2));
    untrusted_because(&v.status, v.detail.as_deref(), "CRL has expired");
}

#[test]
fn a_file_that_is_not_a_crl_is_refused_when_loaded() {
    let ca = Ca::new("CRL Load");
    let result = TrustAnchors::default().with_crls(&[ca.path("root.pem")]);
    assert!(matches!(result, Err(TrustError::BadCrl { .. })), "{result:?}");
}

#[test]
fn verify_command_takes_crls_and_says_revoked() {
    let ca = Ca::new("CRL Cli");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("signed.pdf");
    std::fs::write(&file, ca.signed_pdf()).expect("write");
    ca.revoke_signer();
    let crl = ca.crl("cli.crl", 24);
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["verify", "--trust"])
            .arg(ca.path("root.pem"))
            .arg("--crl")
            .arg(&crl)
            .arg(&file),
        1,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("untrusted") && text.contains("certificate revoked"), "{text}");
    let out = util::run_expect(
        util::elicence()
            .args(["verify", "--trust"])
            .arg(ca.path("root.pem"))
            .arg("--crl")
            .arg(ca.path("root.pem"))
            .arg(&file),
        1,
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("not a certificate revocation list"), "{text}");
}

/// `openssl` with arguments, from `dir`; its stdout (panics with stderr on failure).
fn openssl_out(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn keys_crl_writes_crls_that_openssl_accepts_and_verify_honours() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    let url = "http://127.0.0.1:1/ca.crl";
    util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["keys", "init", "--crl-url", url])
            .arg(&keys),
        0,
    );
    // The signer certificate names the distribution point; the CA certificate does not.
    let text = openssl_out(&keys, &["x509", "-in", "signer.pem", "-noout", "-text"]);
    assert!(text.contains("CRL Distribution Points") && text.contains(url), "{text}");
    let text = openssl_out(&keys, &["x509", "-in", "ca.pem", "-noout", "-text"]);
    assert!(!text.contains("CRL Distribution Points"), "{text}");

    let crl = |name: &str, revoke: bool| {
        let out = dir.path().join(name);
        let mut cmd = util::elicence();
        cmd.env_remove("ELICENCE_NOW").args(["keys", "crl"]).arg(&keys).arg("--out").arg(&out);
        if revoke {
            cmd.arg("--revoke").arg(keys.join("signer.pem"));
        }
        util::run_expect(&mut cmd, 0);
        out
    };
    let empty = crl("empty.crl", false);
    // OpenSSL checks the CRL's signature against the CA and reads its number.
    let ca = keys.join("ca.pem");
    let text = openssl_out(
        dir.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "empty.crl",
            "-CAfile",
            ca.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    assert!(text.contains("verify OK"), "{text}");
    assert!(
        text.contains("X509v3 CRL Number") && text.contains("No Revoked Certificates"),
        "{text}"
    );

    let signer = RsaSigner::load(&keys, None, now()).expect("signer");
    let pdf =
        sign_pdf(&util::sample_pdf(), &signer, now(), &PdfSignOptions::default()).expect("sign");
    let trust = |crl: &PathBuf| {
        TrustAnchors::from_pem_files(std::slice::from_ref(&ca))
            .expect("ca")
            .with_crls(std::slice::from_ref(crl))
            .expect("crl")
    };
    let v = verify_pdf_at(&pdf, &trust(&empty), now());
    assert_eq!(v.status, SignatureStatus::Authentic, "{v:?}");

    let revoked = crl("revoked.crl", true);
    let text = openssl_out(
        dir.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "revoked.crl",
            "-CAfile",
            ca.to_str().unwrap(),
            "-noout",
            "-text",
        ],
    );
    assert!(text.contains("verify OK") && text.contains("Revoked Certificates:"), "{text}");
    let serial = openssl_out(&keys, &["x509", "-in", "signer.pem", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_ascii_uppercase();
    assert!(text.to_ascii_uppercase().contains(&serial), "{serial} in {text}");
    let v = verify_pdf_at(&pdf, &trust(&revoked), now());
    untrusted_because(&v.status, v.detail.as_deref(), "certificate revoked");

    // The next CRL keeps the revocation and counts on.
    crl("later.crl", false);
    let text =
        openssl_out(dir.path(), &["crl", "-inform", "DER", "-in", "later.crl", "-noout", "-text"]);
    assert!(text.to_ascii_uppercase().contains(&serial), "{text}");
    let number = text.split("X509v3 CRL Number:").nth(1).and_then(|t| t.split_whitespace().next());
    assert_eq!(number, Some("3"), "{text}");

    // A certificate of another CA is refused.
    let other = tempfile::tempdir().expect("temp dir");
    util::run_expect(
        util::elicence().env_remove("ELICENCE_NOW").args(["keys", "init"]).arg(other.path()),
        0,
    );
    let out = util::run_expect(
        util::elicence()
            .env_remove("ELICENCE_NOW")
            .args(["keys", "crl"])
            .arg(&keys)
            .arg("--revoke")
            .arg(other.path().join("signer.pem"))
            .arg("--out")
            .arg(dir.path().join("x.crl")),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not issued by the CA"));
}
