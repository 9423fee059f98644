//! `elicence render` on every bundled pipeline's fixture: every accepted row yields a PDF and an
//! XML e-licence that software we did not write accepts (poppler's pdfsig with the development
//! CA trusted, pyHanko, xmlsec1) and that `elicence verify` calls authentic; tampering with a
//! rendered licence is caught by `elicence verify` and by the external verifier; same input,
//! key and clock give byte-identical files.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::{elicence, root, run_expect};

const PIPELINES: [&str; 3] =
    ["food-business-permit", "business-licence", "special-operations-certificate"];

fn keys() -> PathBuf {
    root().join("fixtures/keys")
}

fn tool(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("{program} is not installed ({e}); run .ci/setup to install the external verifiers")
    })
}

fn render(pipeline: &str, out: &Path) {
    run_expect(
        elicence()
            .args(["render", &format!("pipelines/{pipeline}.toml"), "--input"])
            .arg(format!("fixtures/{pipeline}/export-utf8.csv"))
            .arg("--keys")
            .arg(keys())
            .arg("--out")
            .arg(out),
        0,
    );
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn nss_db(dir: &Path) -> String {
    let db = format!("sql:{}", dir.display());
    assert!(tool("certutil", &["-N", "--empty-password", "-d", &db]).status.success());
    let ca = keys().join("ca.pem");
    let out = tool(
        "certutil",
        &["-A", "-d", &db, "-n", "elicence-dev-ca", "-t", "CT,C,C", "-i", ca.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    db
}

#[test]
fn every_rendered_licence_verifies_in_pdfsig_pyhanko_xmlsec1_and_elicence() {
    let nss = tempfile::tempdir().unwrap();
    let db = nss_db(nss.path());
    let ca = keys().join("ca.pem");
    for pipeline in PIPELINES {
        let out = tempfile::tempdir().unwrap();
        render(pipeline, out.path());
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("fixtures/{pipeline}/expected.json")))
                .unwrap(),
        )
        .unwrap();
        let valid = expected["export-utf8.csv"]["valid"].as_array().unwrap().len();
        let catalog = elicence::catalog::load_dir(&root().join("pipelines/catalog")).unwrap();
        let type_name = catalog.get(pipeline).unwrap().name.clone();
        let pdfs = files(out.path(), "pdf");
        let xmls = files(out.path(), "xml");
        assert_eq!(pdfs.len(), valid, "{pipeline}: one PDF per accepted row");
        assert_eq!(xmls.len(), valid, "{pipeline}: one XML per accepted row");
        for pdf in &pdfs {
            let size = std::fs::metadata(pdf).unwrap().len();
            assert!(size <= 60 * 1024, "{}: {size} bytes, target ≤ 60 KB", pdf.display());
            let o = tool("pdfsig", &["-nssdir", &db, pdf.to_str().unwrap()]);
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("Signature is Valid"), "pdfsig {}:\n{text}", pdf.display());
            assert!(text.contains("Total document signed"), "pdfsig {}:\n{text}", pdf.display());
            assert!(text.contains("Certificate is Trusted"), "pdfsig {}:\n{text}", pdf.display());
            let t = tool("pdftotext", &[pdf.to_str().unwrap(), "-"]);
            let face: String = String::from_utf8_lossy(&t.stdout).split_whitespace().collect();
            assert!(face.contains(&type_name), "pdftotext gives the Chinese text back:\n{face}");
        }
        // pyHanko: one licence per pipeline (each call starts a Python interpreter).
        let o = tool(
            "pyhanko",
            &[
                "sign",
                "validate",
                "--pretty-print",
                "--trust",
                ca.to_str().unwrap(),
                "--trust-replace",
                pdfs[0].to_str().unwrap(),
            ],
        );
        let text = String::from_utf8_lossy(&o.stdout).to_lowercase();
        assert!(
            o.status.success(),
            "pyhanko {}:\n{text}\n{}",
            pdfs[0].display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            text.contains("judged valid") && text.contains("certificate is trusted"),
            "pyhanko:\n{text}"
        );
        for xml in &xmls {
            let o = tool(
                "xmlsec1",
                &["--verify", "--trusted-pem", ca.to_str().unwrap(), xml.to_str().unwrap()],
            );
            assert!(
                o.status.success(),
                "xmlsec1 {}: {}",
                xml.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let o = run_expect(
            elicence()
                .arg("verify")
                .args(&pdfs)
                .args(&xmls)
                .arg("--keys")
                .arg(keys())
                .arg("--json"),
            0,
        );
        let lines = String::from_utf8_lossy(&o.stdout);
        assert_eq!(lines.lines().count(), 2 * valid);
        for line in lines.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], "authentic", "{line}");
        }
    }
}

#[test]
fn same_input_key_and_clock_give_identical_bytes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    render("food-business-permit", a.path());
    render("food-business-permit", b.path());
    for f in files(a.path(), "pdf").into_iter().chain(files(a.path(), "xml")) {
        let other = b.path().join(f.file_name().unwrap());
        assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(&other).unwrap(), "{}", f.display());
    }
}

#[test]
fn a_tampered_rendered_licence_is_caught_by_elicence_and_by_pdfsig_and_xmlsec1() {
    let out = tempfile::tempdir().unwrap();
    render("food-business-permit", out.path());
    let pdf = files(out.path(), "pdf").remove(0);
    let xml = files(out.path(), "xml").remove(0);

    // A PDF byte changed inside the signed range: the holder name's text stream is compressed,
    // so change a byte of the first object instead (still inside ByteRange[0]).
    let mut bytes = std::fs::read(&pdf).unwrap();
    let at = bytes.windows(6).position(|w| w == b"/Title").expect("info dictionary") + 8;
    bytes[at] ^= 0x01;
    let bad_pdf = out.path().join("tampered.pdf");
    std::fs::write(&bad_pdf, &bytes).unwrap();
    let o = run_expect(
        elicence().arg("verify").arg(&bad_pdf).arg("--keys").arg(keys()).arg("--json"),
        1,
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"tampered\""));
    let o = tool("pdfsig", &[bad_pdf.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("Signature is Valid"));

    // An XML field edited after signing.
    let text = std::fs::read_to_string(&xml).unwrap();
    let edited = text.replacen("长春市", "吉林市", 1);
    assert_ne!(edited, text);
    let bad_xml = out.path().join("tampered.xml");
    std::fs::write(&bad_xml, edited).unwrap();
    let o = run_expect(
        elicence().arg("verify").arg(&bad_xml).arg("--keys").arg(keys()).arg("--json"),
        1,
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"tampered\""));
    let ca = keys().join("ca.pem");
    let o = tool(
        "xmlsec1",
        &["--verify", "--trusted-pem", ca.to_str().unwrap(), bad_xml.to_str().unwrap()],
    );
    assert!(!o.status.success(), "xmlsec1 must refuse an edited e-licence");

    // Trusting another CA, the signer is unknown: untrusted, not authentic.
    let other = out.path().join("other-keys");
    run_expect(elicence().args(["keys", "init"]).arg(&other), 0);
    let o = run_expect(
        elicence().arg("verify").arg(&pdf).arg(&xml).arg("--keys").arg(&other).arg("--json"),
        1,
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("\"untrusted\"").count(), 2, "{text}");
}

/// A missing face font is a configuration error (exit 3), found before anything is rendered.
#[test]
fn a_missing_font_is_a_clear_error_at_start() {
    let out = tempfile::tempdir().unwrap();
    let o = run_expect(
        elicence()
            .env("ELICENCE_FONT", "/nonexistent/font.ttc")
            .args([
                "render",
                "pipelines/food-business-permit.toml",
                "--input",
                "fixtures/food-business-permit/export-utf8.csv",
            ])
            .arg("--keys")
            .arg(keys())
            .arg("--out")
            .arg(out.path()),
        3,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("font"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "nothing rendered");
}
