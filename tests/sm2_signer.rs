//! The SM2 signer (`sign::Sm2Signer`) checked by software we did not write: keys and
//! certificates made by OpenSSL load (and a key of another certificate is refused), our
//! signatures verify with `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt
//! distid:1234567812345678`, and OpenSSL's signatures verify with ours.
//!
//! Nothing is skipped: OpenSSL 3 with SM2 is required.

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use elicence::sign::sm2::verify_sm2;
use elicence::sign::{KeyError, SM2_DEFAULT_DIST_ID, SignatureAlgorithm, Signer, Sm2Signer};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn openssl(dir: &Path, args: &[&str]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let out = Command::new("openssl").current_dir(dir).args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "openssl {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out.stdout)
}

/// An SM2 CA and a signer it certifies, made by OpenSSL: `ca.key`, `ca.pem`, `signer.key`,
/// `chain.pem` (signer then CA).
fn openssl_pki(dir: &Path) -> TestResult {
    let distid = format!("distid:{SM2_DEFAULT_DIST_ID}");
    for key in ["ca.key", "signer.key"] {
        openssl(dir, &["genpkey", "-algorithm", "SM2", "-out", key])?;
    }
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "ca.key",
            "-sm3",
            "-sigopt",
            &distid,
            "-days",
            "30",
            "-subj",
            "/CN=test SM2 CA",
            "-out",
            "ca.pem",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "signer.key",
            "-sm3",
            "-sigopt",
            &distid,
            "-subj",
            "/CN=test SM2 signer",
            "-out",
            "signer.csr",
        ],
    )?;
    openssl(
        dir,
        &[
            // No `-sigopt distid:…` here: OpenSSL 3.0 `x509 -req` then signs a certificate
            // its own `verify` rejects; without it, it applies the default ID itself.
            "x509",
            "-req",
            "-in",
            "signer.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-sm3",
            "-vfyopt",
            &distid,
            "-days",
            "30",
            "-set_serial",
            "2",
            "-out",
            "signer.pem",
        ],
    )?;
    openssl(dir, &["verify", "-CAfile", "ca.pem", "signer.pem"])?;
    let chain = [std::fs::read(dir.join("signer.pem"))?, std::fs::read(dir.join("ca.pem"))?];
    std::fs::write(dir.join("chain.pem"), chain.concat())?;
    Ok(())
}

#[test]
fn openssl_verifies_our_sm2_signatures_and_we_verify_its() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    openssl_pki(dir)?;
    let signer =
        Sm2Signer::load_files(&dir.join("signer.key"), &dir.join("chain.pem"), None, Utc::now())?;
    assert_eq!(signer.algorithm(), SignatureAlgorithm::Sm2Sm3);
    assert_eq!(signer.subject_cn(), "test SM2 signer");
    assert_eq!(signer.chain_der().len(), 2);
    openssl(dir, &["x509", "-in", "signer.pem", "-pubkey", "-noout", "-out", "signer.pub"])?;
    let distid = format!("distid:{SM2_DEFAULT_DIST_ID}");
    for (i, msg) in
        [&b""[..], b"abc", "统一社会信用代码".as_bytes(), &[0x5a; 40_000]].into_iter().enumerate()
    {
        let signature = signer.sign(msg)?;
        // Deterministic nonces (RFC 6979): same message, same signature; OFDs stay reproducible.
        assert_eq!(signature, signer.sign(msg)?);
        assert!(verify_sm2(signer.certificate_der(), msg, &signature));
        let (msg_file, sig_file) = (format!("m{i}"), format!("s{i}"));
        std::fs::write(dir.join(&msg_file), msg)?;
        std::fs::write(dir.join(&sig_file), &signature)?;
        let out = openssl(
            dir,
            &[
                "pkeyutl",
                "-verify",
                "-rawin",
                "-digest",
                "sm3",
                "-pkeyopt",
                &distid,
                "-pubin",
                "-inkey",
                "signer.pub",
                "-in",
                &msg_file,
                "-sigfile",
                &sig_file,
            ],
        )?;
        assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
        // The other direction: OpenSSL signs, we verify; a changed message fails.
        let theirs = openssl(
            dir,
            &[
                "pkeyutl",
                "-sign",
                "-rawin",
                "-digest",
                "sm3",
                "-pkeyopt",
                &distid,
                "-inkey",
                "signer.key",
                "-in",
                &msg_file,
            ],
        )?;
        assert!(verify_sm2(signer.certificate_der(), msg, &theirs));
        assert!(!verify_sm2(signer.certificate_der(), b"another message", &theirs));
    }
    // Without the ID OpenSSL hashes another Z_A: the ID really is part of what is signed.
    std::fs::write(dir.join("m"), b"abc")?;
    std::fs::write(dir.join("s"), signer.sign(b"abc")?)?;
    let without_id = openssl(
        dir,
        &[
            "pkeyutl",
            "-verify",
            "-rawin",
            "-digest",
            "sm3",
            "-pubin",
            "-inkey",
            "signer.pub",
            "-in",
            "m",
            "-sigfile",
            "s",
        ],
    );
    assert!(without_id.is_err(), "verified without the distinguishing ID");
    Ok(())
}

#[test]
fn refuses_a_key_of_another_certificate_and_non_sm2_keys() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    openssl_pki(dir)?;
    let mismatch =
        Sm2Signer::load_files(&dir.join("ca.key"), &dir.join("chain.pem"), None, Utc::now());
    assert!(matches!(mismatch, Err(KeyError::KeyCertMismatch { .. })), "{mismatch:?}");
    // The RSA development signer: a good key and chain, but not SM2.
    let rsa = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
    let not_sm2 =
        Sm2Signer::load_files(&rsa.join("signer.key"), &rsa.join("signer.pem"), None, Utc::now());
    assert!(matches!(not_sm2, Err(KeyError::UnsupportedKey { .. })), "{not_sm2:?}");
    // An SM2 key with an RSA certificate: refused on the certificate, naming it.
    let rsa_cert =
        Sm2Signer::load_files(&dir.join("signer.key"), &rsa.join("signer.pem"), None, Utc::now());
    match rsa_cert {
        Err(KeyError::UnsupportedKey { path, .. }) => assert!(path.ends_with("signer.pem")),
        other => panic!("expected UnsupportedKey on the certificate, got {other:?}"),
    }
    let expired = Sm2Signer::load_files(
        &dir.join("signer.key"),
        &dir.join("chain.pem"),
        None,
        Utc::now() + chrono::Duration::days(365),
    );
    assert!(matches!(expired, Err(KeyError::CertNotValidAt { .. })), "{expired:?}");
    std::fs::write(dir.join("garbage.key"), "not a key")?;
    let garbage =
        Sm2Signer::load_files(&dir.join("garbage.key"), &dir.join("chain.pem"), None, Utc::now());
    assert!(matches!(garbage, Err(KeyError::BadPrivateKey { .. })), "{garbage:?}");
    Ok(())
}

#[test]
fn keys_init_writes_an_sm2_pki_that_openssl_accepts() -> TestResult {
    use elicence::sign::keys::{DevKeyOptions, init_dev_keys};
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let paths = init_dev_keys(dir, Utc::now(), &DevKeyOptions::default())?;
    let distid = format!("distid:{SM2_DEFAULT_DIST_ID}");
    // Today's RSA layout is untouched.
    for file in ["ca.pem", "ca.key", "signer.pem", "signer.key"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    for (chain, cn) in [
        (&paths.sm2.seal_maker_chain, "elicence development seal maker"),
        (&paths.sm2.signer_chain, "elicence development SM2 signer"),
    ] {
        // The first certificate of the chain file, checked against the SM2 root alone.
        let text = openssl(dir, &["x509", "-in", &chain.display().to_string(), "-text"])?;
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains("SM2-with-SM3"), "{text}");
        assert!(text.contains(cn), "{text}");
        // The certificate signature uses the default SM2 ID (GB/T 35276-2017 §10, as gmssl and
        // BouncyCastle/ofdrw do). OpenSSL 3.0's `verify` uses an empty ID unless told: with
        // `-vfyopt distid:…` it accepts, without it it reports a signature failure.
        let chain = chain.display().to_string();
        let out = openssl(dir, &["verify", "-vfyopt", &distid, "-CAfile", "sm2-ca.pem", &chain])?;
        assert!(String::from_utf8_lossy(&out).contains("OK"));
        assert!(openssl(dir, &["verify", "-CAfile", "sm2-ca.pem", &chain]).is_err());
    }
    // The RSA root does not vouch for the SM2 signer.
    let signer_chain = paths.sm2.signer_chain.display().to_string();
    let wrong_root =
        openssl(dir, &["verify", "-vfyopt", &distid, "-CAfile", "ca.pem", &signer_chain]);
    assert!(wrong_root.is_err());
    let signer = Sm2Signer::load(dir, None, Utc::now())?;
    assert_eq!(signer.subject_cn(), "elicence development SM2 signer");
    let signature = signer.sign(b"abc")?;
    assert!(verify_sm2(signer.certificate_der(), b"abc", &signature));
    // A second init without --force refuses, naming a file.
    let again = init_dev_keys(dir, Utc::now(), &DevKeyOptions::default());
    assert!(matches!(again, Err(KeyError::AlreadyExists { .. })), "{again:?}");
    Ok(())
}
