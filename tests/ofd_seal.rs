//! OFD e-licences sealed with SM2 electronic seals (GB/T 38540 SES V4), checked by software we
//! did not write: `../shared/tools/ofd/ses_check.py` (gmssl) for every OFD made here, OpenSSL
//! for the seal files' DER, and ofdrw's sealed sample as an interoperability fixture.
//!
//! Nothing is skipped: python3 with gmssl and the shared checker are required.

mod util;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use der::Decode as _;
use elicence::font::FaceFont;
use elicence::licence::{FaceField, Licence, LicenceStatus, intern};
use elicence::record::SourcePos;
use elicence::render::Layout;
use elicence::render::ofd::{PAGE_CONTENT_PATH, render_ofd};
use elicence::render::pdf::PdfRenderer;
use elicence::seal::asn1::SesSignature;
use elicence::seal::ofd::{OfdSealError, OfdSealer, SEAL_PATH, SIGNED_VALUE_PATH, seal_ofd};
use elicence::seal::{CertList, Seal, SealError, SealSpec};
use elicence::sign::keys::{DevKeyOptions, init_dev_keys};
use elicence::sign::{Signer, Sm2Signer};
use std::collections::BTreeMap;

use util::{copy_dir, elicence, root, run_expect};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The checker shipped beside the repository, and ofdrw's sealed sample it is calibrated on.
fn shared_ofd_tools() -> PathBuf {
    util::root().join("../shared/tools/ofd")
}

fn ofdrw_sample() -> PathBuf {
    let beside = shared_ofd_tools().join("ofdrw-SESV4SignDoc.ofd");
    if beside.exists() {
        beside
    } else {
        PathBuf::from("/work/shared/tools/ofd/ofdrw-SESV4SignDoc.ofd")
    }
}

fn ses_check_script() -> PathBuf {
    let beside = shared_ofd_tools().join("ses_check.py");
    if beside.exists() { beside } else { PathBuf::from("/work/shared/tools/ofd/ses_check.py") }
}

/// Runs `ses_check.py [--trust CA] FILE`; returns (passed, output).
fn ses_check(file: &Path, trust: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new("python3");
    cmd.arg(ses_check_script());
    if let Some(ca) = trust {
        cmd.arg("--trust").arg(ca);
    }
    let out = cmd.arg(file).output().expect("python3 runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Whether `ses_check.py --trust CA FILE` passes checks 1–4 (references, dataHash, SM2
/// signature, seal file) and OpenSSL accepts the signer certificate the OFD carries under `CA`
/// with the default SM2 ID. The checker's own check 5 runs `openssl verify` without
/// `-vfyopt distid:1234567812345678`, and OpenSSL 3.0 then verifies certificate signatures
/// with an empty ID: it rejects certificates signed with the standard default ID (ours, and
/// gmssl's and BouncyCastle's), so the chain is checked here with the ID given.
fn independent_check(file: &Path, trust: &Path) -> Result<String, String> {
    let (_, text) = ses_check(file, Some(trust));
    for line in [
        "1 references (",
        "2 version 4, dataHash == SM3(Signature.xml): True",
        "3 SM2 signature over TBS_Sign: True",
        "4 seal file == TBS_Sign.eseal: True",
    ] {
        if !text.lines().any(|l| l.contains(line) && !l.contains("MISMATCH")) {
            return Err(format!("ses_check.py fails {line:?}:\n{text}"));
        }
    }
    let ofd = std::fs::read(file).map_err(|e| e.to_string())?;
    let ses =
        SesSignature::from_der(&zip_entry(&ofd, SIGNED_VALUE_PATH)).map_err(|e| e.to_string())?;
    let cert = x509_cert::Certificate::from_der(ses.cert.as_bytes()).map_err(|e| e.to_string())?;
    let pem = der::EncodePem::to_pem(&cert, der::pem::LineEnding::LF).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("signer.pem"), pem).map_err(|e| e.to_string())?;
    let out = Command::new("openssl")
        .args(["verify", "-vfyopt", "distid:1234567812345678", "-CAfile"])
        .arg(trust)
        .arg(dir.path().join("signer.pem"))
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "openssl verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(text)
}

fn zip_entry(ofd: &[u8], name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(ofd)).expect("a zip");
    let mut entry = zip.by_name(name).expect("entry present");
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).expect("entry reads");
    bytes
}

fn zip_names(ofd: &[u8]) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(ofd)).expect("a zip");
    (0..zip.len())
        .map(|i| zip.by_index(i).expect("entry").name().expect("name").to_string())
        .collect()
}

/// The same zip with entry `name` replaced by `change(old bytes)` (or added when absent).
fn rezip(ofd: &[u8], name: &str, change: impl Fn(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let mut names = zip_names(ofd);
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for n in names {
        let bytes = if zip_names(ofd).contains(&n) { zip_entry(ofd, &n) } else { Vec::new() };
        let bytes = if n == name { change(bytes) } else { bytes };
        out.start_file(n.as_str(), options).expect("start");
        out.write_all(&bytes).expect("write");
    }
    out.finish().expect("finish").into_inner()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).expect("RFC 3339").with_timezone(&Utc)
}

fn licence(issuer_code: &str, issuer_name: &str) -> Licence {
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
    let field = |k: &str, l: &str, v: &str| FaceField {
        key: intern(k),
        label: intern(l),
        value: v.to_string(),
    };
    Licence {
        type_name: "食品经营许可证".into(),
        type_code: "11100000MB0327169X001".into(),
        printed_no: "JY12201020000123".into(),
        issuer_name: issuer_name.into(),
        issuer_code: issuer_code.into(),
        holder_name: "长春市王䶮餐饮有限公司".into(),
        holder_code: "91220104MA0Y123456".into(),
        holder_code_type: "001".into(),
        issue_date: d(2017, 4, 24),
        valid_from: d(2017, 4, 24),
        valid_to: Some(d(2022, 4, 23)),
        region_code: "220104".into(),
        status: LicenceStatus::Valid,
        fields: vec![
            field("licence_no", "许可证编号", "JY12201020000123"),
            field("holder_name", "经营者名称", "长春市王䶮餐饮有限公司"),
            field("business_scope", "经营项目", "预包装食品销售 & <散装食品>"),
        ],
        pos: SourcePos { file: "t.csv".into(), sheet: None, row: 2 },
    }
}

fn renderer() -> PdfRenderer {
    let font = FaceFont::load_default().expect("a CJK face font (.ci/setup installs one)");
    let layouts = Layout::load_dir(&util::root().join("pipelines/layouts")).expect("layouts");
    PdfRenderer::new(Arc::new(font), layouts).expect("renderer")
}

/// A development key set with a seal for `issuer`, made by its seal maker and naming its SM2
/// signer, valid 2026-01-01 .. 2036-12-31.
struct Keys {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    signer: Sm2Signer,
    seal: Seal,
}

fn keys_with_seal(name: &str) -> Keys {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("keys");
    let now = at("2026-11-27T10:00:00Z");
    init_dev_keys(&dir, now, &DevKeyOptions::default()).expect("keys init");
    let signer = Sm2Signer::load(&dir, None, now).expect("SM2 signer");
    let maker =
        Sm2Signer::load_files(&dir.join("seal-maker.key"), &dir.join("seal-maker.pem"), None, now)
            .expect("seal maker");
    let spec = SealSpec {
        es_id: "11220104MB1875524M20261127100000".into(),
        name: name.into(),
        signer_certs: vec![signer.certificate_der().to_vec()],
        created: now,
        valid_from: at("2026-01-01T00:00:00Z"),
        valid_to: at("2036-12-31T23:59:59Z"),
        picture_png: std::fs::read(util::root().join("fixtures/seals/seal.png")).expect("png"),
        picture_mm: (40, 40),
    };
    let seal = Seal::make(&maker, &spec).expect("seal made");
    Keys { _tmp: tmp, dir, signer, seal }
}

fn sealed_ofd(keys: &Keys, r: &PdfRenderer, l: &Licence, when: DateTime<Utc>) -> Vec<u8> {
    let id =
        format!("1.2.156.3005.2.11100000MB0327169X001.{}.JY12201020000123.001.Q", l.issuer_code);
    let package = render_ofd(r, l, &id, "ELIC1:X:0123456789ABCDEF", when).expect("render");
    seal_ofd(&package, &keys.signer, &keys.seal, when).expect("sealed")
}

/// The sealer a run uses (the seal's part of `TBS_Sign` hashed once) writes the bytes of the
/// general path, which encodes and hashes the whole `TBS_Sign` per document; and it makes
/// the same checks.
#[test]
fn the_prepared_sealer_writes_the_bytes_of_the_general_path() -> TestResult {
    let keys = keys_with_seal("长春市朝阳区市场监督管理局电子印章");
    let r = renderer();
    let signer = Arc::new(Sm2Signer::load(&keys.dir, None, at("2026-11-27T10:00:00Z"))?);
    let sealer = OfdSealer::new(signer, keys.seal.clone())?;
    for (issuer, when) in [
        (("长春市朝阳区市场监督管理局", "11220104MB1875524M"), at("2027-03-04T05:06:07Z")),
        (("长春市南关区市场监督管理局", "11220102MB1953012R"), at("2036-12-31T23:59:59Z")),
    ] {
        let l = licence(issuer.1, issuer.0);
        let id =
            format!("1.2.156.3005.2.11100000MB0327169X001.{}.JY12201020000123.001.Q", issuer.1);
        let package = render_ofd(&r, &l, &id, "ELIC1:X:0123456789ABCDEF", when)?;
        let general = seal_ofd(&package, &keys.signer, &keys.seal, when)?;
        assert_eq!(sealer.seal_package(&package, when, None)?, general, "at {when}");
    }
    let l = licence("11220104MB1875524M", "长春市朝阳区市场监督管理局");
    let package = render_ofd(&r, &l, "x", "ELIC1:X:0123456789ABCDEF", at("2026-01-01T00:00:00Z"))?;
    let expired = sealer.seal_package(&package, at("2037-01-01T00:00:00Z"), None);
    assert!(matches!(expired, Err(OfdSealError::SealNotValidAt { .. })), "{expired:?}");
    Ok(())
}

#[test]
fn ofdrw_sample_seal_and_signature_parse_and_reencode() -> TestResult {
    let ofd = std::fs::read(ofdrw_sample())?;
    let seal_der = zip_entry(&ofd, SEAL_PATH);
    let seal = Seal::from_der(&seal_der)?;
    assert_eq!(seal.der(), &seal_der[..]);
    assert_eq!(seal.name(), "OFD R&W 测试用印章");
    assert_eq!(seal.es_id(), "51f044b76510434e9bc67a1185c2fba5");
    assert_eq!(seal.vendor(), "OFDR&WTest");
    assert_eq!(seal.valid_from(), at("2020-04-22T02:09:00Z"));
    assert_eq!(seal.valid_to(), at("2022-04-22T02:09:00Z"));
    let picture = seal.picture();
    assert_eq!((picture.format, picture.width_mm, picture.height_mm), ("PNG", 40, 40));
    assert!(picture.data.starts_with(b"\x89PNG"));
    assert!(matches!(seal.cert_list()?, CertList::Certificates(c) if c.len() == 1));
    assert!(seal.maker_signature_ok(), "ofdrw's maker signature verifies with our SM2 code");
    // The SES_Signature decodes, re-encodes to the same bytes, and embeds the same seal.
    let signed = zip_entry(&ofd, SIGNED_VALUE_PATH);
    let ses: SesSignature = der::Decode::from_der(&signed)?;
    assert_eq!(der::Encode::to_der(&ses)?, signed);
    assert_eq!(ses.to_sign.version, 4);
    assert_eq!(der::Encode::to_der(&ses.to_sign.eseal)?, seal_der);
    Ok(())
}

#[test]
fn hostile_seals_fail_with_named_errors() -> TestResult {
    let good = zip_entry(&std::fs::read(ofdrw_sample())?, SEAL_PATH);
    let truncated = &good[..good.len() / 2];
    assert!(matches!(Seal::from_der(truncated), Err(SealError::Der { .. })));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(Seal::from_der(&trailing), Err(SealError::Der { .. })));
    assert!(matches!(Seal::from_der(&[]), Err(SealError::Der { .. })));
    let huge = vec![0x30; elicence::seal::MAX_SEAL_BYTES + 1];
    assert!(matches!(Seal::from_der(&huge), Err(SealError::TooLarge { .. })));
    // Header version 4 → 3 (the INTEGER at offset 16 holds 04).
    let mut v3 = good.clone();
    assert_eq!(&v3[14..17], &[0x02, 0x01, 0x04]);
    v3[16] = 3;
    assert!(matches!(Seal::from_der(&v3), Err(SealError::UnsupportedHeader { version: 3, .. })));
    // One byte of the picture changed: still a seal, but the maker's signature fails.
    let mut picture = good.clone();
    picture[2000] ^= 0x01;
    assert!(!Seal::from_der(&picture)?.maker_signature_ok());
    Ok(())
}

#[test]
fn our_seal_reads_in_openssl_and_back() -> TestResult {
    let keys = keys_with_seal("长春市朝阳区市场监督管理局");
    let file = keys.dir.join("seals/11220104MB1875524M.esl");
    keys.seal.write(&file)?;
    let out =
        Command::new("openssl").args(["asn1parse", "-inform", "DER", "-in"]).arg(&file).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("IA5STRING         :ES"), "{text}");
    assert!(text.contains("SM2-with-SM3"), "{text}");
    let back = Seal::read(&file)?;
    assert_eq!(back, keys.seal);
    assert!(back.maker_signature_ok());
    assert!(back.names_signer(keys.signer.certificate_der()));
    assert_eq!(back.name(), "长春市朝阳区市场监督管理局");
    Ok(())
}

#[test]
fn every_sealed_ofd_passes_the_independent_checker_and_is_reproducible() -> TestResult {
    let keys = keys_with_seal("长春市朝阳区市场监督管理局");
    let r = renderer();
    let l = licence("11220104MB1875524M", "长春市朝阳区市场监督管理局");
    let when = at("2026-11-27T10:00:00Z");
    let ofd = sealed_ofd(&keys, &r, &l, when);
    assert_eq!(ofd, sealed_ofd(&keys, &r, &l, when), "same licence, keys, time ⇒ same bytes");
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("licence.ofd");
    std::fs::write(&file, &ofd)?;
    if let Err(e) = independent_check(&file, &keys.dir.join("sm2-ca.pem")) {
        panic!("{e}");
    }
    // The seal inside is the seal we made, and the package's files are all referenced.
    assert_eq!(zip_entry(&ofd, SEAL_PATH), keys.seal.der());
    let signature_xml = String::from_utf8(zip_entry(&ofd, "Doc_0/Signs/Sign_0/Signature.xml"))?;
    for name in zip_names(&ofd) {
        let covered = signature_xml.contains(&format!("FileRef=\"/{name}\""));
        let expected = !name.ends_with("Signatures.xml")
            && !name.ends_with("Signature.xml")
            && !name.ends_with("SignedValue.dat");
        assert_eq!(covered, expected, "{name}");
    }
    // Another CA's root does not vouch for the signer.
    assert!(independent_check(&file, &keys.dir.join("ca.pem")).is_err());
    Ok(())
}

#[test]
fn the_independent_checker_catches_tampering() -> TestResult {
    let keys = keys_with_seal("长春市朝阳区市场监督管理局");
    let r = renderer();
    let l = licence("11220104MB1875524M", "长春市朝阳区市场监督管理局");
    let ofd = sealed_ofd(&keys, &r, &l, at("2026-11-27T10:00:00Z"));
    let tmp = tempfile::tempdir()?;
    let trust = keys.dir.join("sm2-ca.pem");
    let flip_at = |i: usize| {
        move |mut b: Vec<u8>| {
            let i = i.min(b.len() - 1);
            b[i] ^= 0x01;
            b
        }
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("page content byte", rezip(&ofd, PAGE_CONTENT_PATH, flip_at(200))),
        (
            "CustomData field",
            rezip(&ofd, "OFD.xml", |b| {
                String::from_utf8(b)
                    .expect("utf-8")
                    .replace(">JY12201020000123<", ">JY12201020000124<")
                    .into_bytes()
            }),
        ),
        ("Signature.xml byte", rezip(&ofd, "Doc_0/Signs/Sign_0/Signature.xml", flip_at(300))),
        (
            "signature bit",
            rezip(&ofd, SIGNED_VALUE_PATH, |b| {
                let n = b.len();
                flip_at(n - 5)(b)
            }),
        ),
    ];
    for (what, bytes) in cases {
        assert_ne!(bytes, ofd, "{what}: changed");
        let file = tmp.path().join("t.ofd");
        std::fs::write(&file, &bytes)?;
        let (ok, text) = ses_check(&file, Some(&trust));
        assert!(!ok, "{what}: the checker must fail\n{text}");
        assert!(independent_check(&file, &trust).is_err(), "{what}");
    }
    Ok(())
}

#[test]
fn refuses_an_expired_seal_and_a_signer_the_seal_does_not_name() -> TestResult {
    let keys = keys_with_seal("长春市朝阳区市场监督管理局");
    let other = keys_with_seal("另一个发证机关");
    let r = renderer();
    let l = licence("11220104MB1875524M", "长春市朝阳区市场监督管理局");
    let id = "1.2.156.3005.2.11100000MB0327169X001.11220104MB1875524M.JY12201020000123.001.Q";
    let when = at("2037-01-02T00:00:00Z");
    let package = render_ofd(&r, &l, id, "ELIC1:X:0123456789ABCDEF", when)?;
    let expired = seal_ofd(&package, &keys.signer, &keys.seal, when);
    assert!(matches!(expired, Err(OfdSealError::SealNotValidAt { .. })), "{expired:?}");
    let before = seal_ofd(&package, &keys.signer, &keys.seal, at("2025-12-31T23:59:59Z"));
    assert!(matches!(before, Err(OfdSealError::SealNotValidAt { .. })), "{before:?}");
    let when = at("2026-11-27T10:00:00Z");
    let foreign = seal_ofd(&package, &other.signer, &keys.seal, when);
    assert!(matches!(foreign, Err(OfdSealError::SignerNotInCertList { .. })), "{foreign:?}");
    Ok(())
}

#[test]
fn seal_make_list_show_from_the_command_line() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    run_expect(elicence().args(["keys", "init"]).arg(&keys), 0);
    let make = |code: &str, name: &str| {
        let mut c = elicence();
        c.args(["seal", "make", "--keys"])
            .arg(&keys)
            .args(["--issuer", code, "--name", name, "--image", "fixtures/seals/seal.png"])
            .args(["--valid-to", "2036-12-31"]);
        c
    };
    run_expect(&mut make("11220104MB1875524M", "长春市朝阳区市场监督管理局"), 0);
    run_expect(&mut make("11220102MB1953012R", "长春市南关区市场监督管理局"), 0);
    // Not a USCC: a usage error, nothing written.
    run_expect(&mut make("1234", "x"), 2);
    // Again without --force: refused.
    run_expect(&mut make("11220104MB1875524M", "长春市朝阳区市场监督管理局"), 1);

    let out = run_expect(elicence().args(["seal", "list", "--json", "--keys"]).arg(&keys), 0);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let names: Vec<&str> =
        list.as_array().into_iter().flatten().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["长春市南关区市场监督管理局", "长春市朝阳区市场监督管理局"]);
    assert_eq!(list[0]["maker"], "elicence development seal maker");
    assert_eq!(list[0]["cert_list"][0], "elicence development SM2 signer");
    assert_eq!(list[0]["valid_to"], "2036-12-31T23:59:59+00:00");
    assert_eq!(list[0]["maker_signature_ok"], true);

    let file = keys.join("seals/11220104MB1875524M.esl");
    let out = run_expect(elicence().args(["seal", "show"]).arg(&file), 0);
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("esID:        11220104MB1875524M20261127100000"), "{text}");
    assert!(text.contains("picture:     PNG"), "{text}");
    assert!(text.contains("40×40 mm"), "{text}");
    assert!(text.contains("maker signature: correct"), "{text}");
    // ofdrw's seal shows too (its maker signature is correct; trust is verify's business).
    let sample = tmp.path().join("ofdrw.esl");
    std::fs::write(&sample, zip_entry(&std::fs::read(ofdrw_sample())?, SEAL_PATH))?;
    let out = run_expect(elicence().args(["seal", "show", "--json"]).arg(&sample), 0);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(shown["name"], "OFD R&W 测试用印章");
    // A file that is not a seal: exit 1 with the file named.
    let junk = tmp.path().join("junk.esl");
    std::fs::write(&junk, b"not a seal")?;
    let out = run_expect(elicence().args(["seal", "show"]).arg(&junk), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.esl"));
    Ok(())
}

const CHAOYANG: (&str, &str) = ("11220104MB1875524M", "长春市朝阳区市场监督管理局");
const NANGUAN: (&str, &str) = ("11220102MB1953012R", "长春市南关区市场监督管理局");

/// A development key set whose `issuers` each have their own identity and seal
/// (`keys init DIR --pipeline`).
fn cli_keys(dir: &Path, issuers: &[(&str, &str)]) {
    run_expect(elicence().args(["keys", "init"]).arg(dir).args(["--pipeline", FOOD_PIPELINE]), 0);
    for (code, _) in issuers {
        assert!(dir.join(format!("seals/{code}.esl")).exists());
    }
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == ext));
    files.sort();
    files
}

#[test]
fn render_writes_an_ofd_per_licence_sealed_with_its_issuers_seal() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    cli_keys(&keys, &[CHAOYANG, NANGUAN]);
    let out = tmp.path().join("out");
    let render = |out: &Path, formats: &str| {
        let mut c = elicence();
        c.args(["render", "pipelines/food-business-permit.toml", "--input"])
            .arg("fixtures/food-business-permit/export-utf8.csv")
            .arg("--keys")
            .arg(&keys)
            .arg("--out")
            .arg(out)
            .args(["--formats", formats]);
        c
    };
    run_expect(&mut render(&out, "pdf,xml,ofd"), 0);
    let ofds = files_with_ext(&out, "ofd");
    assert_eq!(ofds.len(), files_with_ext(&out, "pdf").len());
    assert!(ofds.len() >= 2, "{ofds:?}");
    let mut seal_names = std::collections::BTreeSet::new();
    for file in &ofds {
        if let Err(e) = independent_check(file, &keys.join("sm2-ca.pem")) {
            panic!("{}: {e}", file.display());
        }
        let ofd = std::fs::read(file)?;
        let seal = Seal::from_der(&zip_entry(&ofd, SEAL_PATH))?;
        // The identifier names the issuer; the seal inside is that issuer's.
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (code, issuer) = if name.contains(CHAOYANG.0) { CHAOYANG } else { NANGUAN };
        assert!(name.contains(code), "{name}");
        assert_eq!(seal.name(), issuer, "{name}");
        seal_names.insert(seal.name().to_string());
        let meta = String::from_utf8(zip_entry(&ofd, "OFD.xml"))?;
        assert!(meta.contains(&format!("<ofd:CustomData Name=\"IssuerCode\">{code}<")));
    }
    assert_eq!(seal_names.len(), 2, "both issuers' seals are used");
    // Only the formats asked for.
    let only = tmp.path().join("only-ofd");
    run_expect(&mut render(&only, "ofd"), 0);
    assert_eq!(files_with_ext(&only, "ofd").len(), ofds.len());
    assert!(files_with_ext(&only, "pdf").is_empty() && files_with_ext(&only, "xml").is_empty());
    run_expect(&mut render(&tmp.path().join("bad"), "pdf,docx"), 2);
    // An issuer without a seal: a configuration error before anything is written.
    std::fs::remove_file(keys.join(format!("seals/{}.esl", NANGUAN.0)))?;
    let missing = tmp.path().join("missing");
    let err = run_expect(&mut render(&missing, "pdf,xml,ofd"), 3);
    assert!(String::from_utf8_lossy(&err.stderr).contains(NANGUAN.0));
    assert!(!missing.exists(), "nothing written");
    Ok(())
}

#[test]
fn run_stores_ofds_that_survive_backup_and_restore() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let run = |formats: &str| {
        let mut c = elicence();
        c.args(["run", "pipelines/food-business-permit.toml", "--input"])
            .arg("fixtures/food-business-permit/export-utf8.csv")
            .arg("--data")
            .arg(&data)
            .args(["--quiet", "--formats", formats]);
        c
    };
    run_expect(&mut run("ofd"), 2);
    // No --keys: development keys and development seals for the pipeline's issuers.
    run_expect(&mut run("pdf,xml,ofd"), 0);
    let seals = data.join("dev-keys/seals");
    assert_eq!(files_with_ext(&seals, "esl").len(), 2);
    let mut stored = Vec::new();
    for entry in walk(&data.join("store")) {
        if entry.extension().is_some_and(|e| e == "ofd") {
            stored.push(entry);
        }
    }
    let pdfs = walk(&data.join("store"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .count();
    assert_eq!(stored.len(), pdfs);
    for file in &stored {
        if let Err(e) = independent_check(file, &data.join("dev-keys/sm2-ca.pem")) {
            panic!("{}: {e}", file.display());
        }
    }
    run_expect(elicence().args(["store", "check", "--data"]).arg(&data), 0);
    let backup = tmp.path().join("backup");
    run_expect(
        elicence().args(["backup", "--include-secrets", "--data"]).arg(&data).arg(&backup),
        0,
    );
    let restored = tmp.path().join("restored");
    run_expect(elicence().args(["restore", "--data"]).arg(&restored).arg(&backup), 0);
    let back: Vec<PathBuf> = walk(&restored.join("store"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "ofd"))
        .collect();
    assert_eq!(back.len(), stored.len());
    run_expect(elicence().args(["store", "check", "--data"]).arg(&restored), 0);
    // One byte of a stored OFD changed: store check finds it.
    let mut bytes = std::fs::read(&stored[0])?;
    let i = bytes.len() / 2;
    bytes[i] ^= 1;
    std::fs::write(&stored[0], bytes)?;
    run_expect(elicence().args(["store", "check", "--data"]).arg(&data), 1);
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `elicence verify --json` on one file: (status, the JSON line).
fn verify_json(file: &Path, trust: &[&str]) -> (String, serde_json::Value) {
    let out = elicence().args(["verify", "--json"]).args(trust).arg(file).output().expect("runs");
    let line: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (line["status"].as_str().unwrap_or_default().to_string(), line)
}

/// Renders the food-business-permit fixture with `keys` into `out` as OFD only.
fn render_ofds(keys: &Path, out: &Path) -> Vec<PathBuf> {
    run_expect(
        elicence()
            .args(["render", "pipelines/food-business-permit.toml", "--input"])
            .arg("fixtures/food-business-permit/export-utf8.csv")
            .arg("--keys")
            .arg(keys)
            .arg("--out")
            .arg(out)
            .args(["--formats", "ofd"]),
        0,
    );
    files_with_ext(out, "ofd")
}

#[test]
fn verify_reads_ofd_and_every_tamper_is_caught() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    cli_keys(&keys, &[CHAOYANG, NANGUAN]);
    let ofds = render_ofds(&keys, &tmp.path().join("out"));
    let keys_arg = format!("--keys={}", keys.display());
    let trust = keys.join("sm2-ca.pem");
    let a_file = ofds.iter().find(|p| p.to_string_lossy().contains(CHAOYANG.0)).expect("朝阳");
    let b_file = ofds.iter().find(|p| p.to_string_lossy().contains(NANGUAN.0)).expect("南关");
    let (status, line) = verify_json(a_file, &[&keys_arg]);
    assert_eq!(status, "authentic", "{line}");
    assert_eq!(line["kind"], "ofd");
    assert_eq!(line["seal_name"], CHAOYANG.1);
    assert_eq!(line["seal_id"], format!("{}20261127100000", CHAOYANG.0));
    assert_eq!(line["signer"], CHAOYANG.1, "sealed by 朝阳's own SM2 signer");
    let a = std::fs::read(a_file)?;
    let b = std::fs::read(b_file)?;
    let flip = |i: usize| {
        move |mut bytes: Vec<u8>| {
            let i = i.min(bytes.len() - 1);
            bytes[i] ^= 0x01;
            bytes
        }
    };
    let sign_dir = ["Doc_0/Signs/Sign_0/Signature.xml", SIGNED_VALUE_PATH, SEAL_PATH];
    let mut other_seal_dir = a.clone();
    for path in sign_dir {
        let from_b = zip_entry(&b, path);
        other_seal_dir = rezip(&other_seal_dir, path, |_| from_b.clone());
    }
    let page_added_listed = rezip(
        &rezip(&a, "Doc_0/Pages/Page_1/Content.xml", |_| zip_entry(&a, PAGE_CONTENT_PATH)),
        "Doc_0/Document.xml",
        |doc| {
            String::from_utf8(doc)
                .expect("utf-8")
                .replace(
                    "</ofd:Pages>",
                    "<ofd:Page ID=\"999\" BaseLoc=\"Pages/Page_1/Content.xml\"/></ofd:Pages>",
                )
                .into_bytes()
        },
    );
    // (what, bytes, whether ses_check.py can see it: it checks only the listed references).
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("page content byte", rezip(&a, PAGE_CONTENT_PATH, flip(300)), true),
        (
            "CustomData field",
            rezip(&a, "OFD.xml", |x| {
                String::from_utf8(x)
                    .expect("utf-8")
                    .replace("Name=\"Status\">valid<", "Name=\"Status\">revoked<")
                    .replace("Name=\"HolderCodeType\">", "Name=\"HolderCodeType\">9")
                    .into_bytes()
            }),
            true,
        ),
        ("Signature.xml byte", rezip(&a, "Doc_0/Signs/Sign_0/Signature.xml", flip(400)), true),
        (
            "signature bit",
            rezip(&a, SIGNED_VALUE_PATH, |x| {
                let n = x.len();
                flip(n - 3)(x)
            }),
            true,
        ),
        ("Seal.esl of another issuer", rezip(&a, SEAL_PATH, |_| zip_entry(&b, SEAL_PATH)), true),
        ("a page added and listed", page_added_listed, true),
        (
            "a file added outside the seal",
            rezip(&a, "Doc_0/Res/extra.png", |_| b"\x89PNG".to_vec()),
            false,
        ),
        ("the seal directory of another licence", other_seal_dir, true),
    ];
    for (what, bytes, checker_sees_it) in cases {
        assert_ne!(bytes, a, "{what}: changed");
        let file = tmp.path().join("tampered.ofd");
        std::fs::write(&file, &bytes)?;
        let (status, line) = verify_json(&file, &[&keys_arg]);
        assert_eq!(status, "tampered", "{what}: {line}");
        if checker_sees_it {
            assert!(independent_check(&file, &trust).is_err(), "{what}: ses_check.py passes");
        }
    }
    // A package without a signature list is not signed.
    let unsigned = rezip(&a, "OFD.xml", |x| {
        let text = String::from_utf8(x).expect("utf-8");
        let start = text.find("<ofd:Signatures>").expect("pointer");
        let end = text.find("</ofd:Signatures>").expect("pointer") + "</ofd:Signatures>".len();
        format!("{}{}", &text[..start], &text[end..]).into_bytes()
    });
    let file = tmp.path().join("unsigned.ofd");
    std::fs::write(&file, unsigned)?;
    assert_eq!(verify_json(&file, &[&keys_arg]).0, "not-signed");
    // Another key set's SM2 root does not vouch for the signer: untrusted, not tampered.
    let other = tmp.path().join("other");
    run_expect(elicence().args(["keys", "init"]).arg(&other), 0);
    let other_arg = format!("--trust={}", other.join("sm2-ca.pem").display());
    let (status, line) = verify_json(a_file, &[&other_arg]);
    assert_eq!(status, "untrusted", "{line}");
    Ok(())
}

#[test]
fn a_seal_made_by_an_untrusted_maker_is_untrusted() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    cli_keys(&keys, &[CHAOYANG, NANGUAN]);
    // A seal for 朝阳 made by another key set's seal maker, naming 朝阳's own SM2 signer.
    let rogue = tmp.path().join("rogue");
    run_expect(elicence().args(["keys", "init"]).arg(&rogue), 0);
    run_expect(
        elicence()
            .args(["seal", "make", "--keys"])
            .arg(&rogue)
            .args(["--issuer", CHAOYANG.0, "--name", CHAOYANG.1])
            .args(["--image", "fixtures/seals/seal.png", "--valid-to", "2036-12-31"])
            .arg("--signer-cert")
            .arg(keys.join("issuers").join(CHAOYANG.0).join("sm2-signer.pem")),
        0,
    );
    let seal = format!("seals/{}.esl", CHAOYANG.0);
    std::fs::copy(rogue.join(&seal), keys.join(&seal))?;
    let ofds = render_ofds(&keys, &tmp.path().join("out"));
    let file = ofds.iter().find(|p| p.to_string_lossy().contains(CHAOYANG.0)).expect("朝阳");
    let (status, line) = verify_json(file, &[&format!("--keys={}", keys.display())]);
    assert_eq!(status, "untrusted", "{line}");
    assert!(line["detail"].as_str().unwrap_or_default().contains("seal maker"), "{line}");
    Ok(())
}

#[test]
fn ofdrw_sample_is_untrusted_and_tampered_once_its_page_changes() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    run_expect(elicence().args(["keys", "init"]).arg(&keys), 0);
    let keys_arg = format!("--keys={}", keys.display());
    let (status, line) = verify_json(&ofdrw_sample(), &[&keys_arg]);
    assert_eq!(status, "untrusted", "{line}");
    assert_eq!(line["seal_name"], "OFD R&W 测试用印章");
    let sample = std::fs::read(ofdrw_sample())?;
    let changed = rezip(&sample, PAGE_CONTENT_PATH, |mut b| {
        b[100] ^= 0x01;
        b
    });
    let file = tmp.path().join("changed.ofd");
    std::fs::write(&file, changed)?;
    let (status, line) = verify_json(&file, &[&keys_arg]);
    assert_eq!(status, "tampered", "{line}");
    let (ok, _) = ses_check(&file, None);
    assert!(!ok, "ses_check.py sees it too");
    Ok(())
}

/// The shipped food-business-permit pipeline with `[output] formats = FORMATS`, written into
/// `dir` (catalog and layout still the repository's).
fn pipeline_with_formats(dir: &Path, formats: &str) -> PathBuf {
    let root = util::root().join("pipelines");
    let text = std::fs::read_to_string(root.join("food-business-permit.toml")).expect("pipeline");
    // The shipped pipeline's own [output] (its last table) gives way to this one.
    let text = text.split("\n[output]").next().expect("text");
    let (first, rest) = text.split_once('\n').expect("lines");
    let path = dir.join("food-business-permit.toml");
    std::fs::write(
        &path,
        format!(
            "{first}\ncatalog = {:?}\nlayout = {:?}\n{rest}\n[output]\nformats = {formats}\n",
            root.join("catalog").display().to_string(),
            root.join("layouts/food-business-permit.toml").display().to_string()
        ),
    )
    .expect("write pipeline");
    path
}

#[test]
fn the_pipelines_output_formats_are_the_default_and_are_checked() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    cli_keys(&keys, &[CHAOYANG, NANGUAN]);
    let render = |pipeline: &Path, out: &Path| {
        let mut c = elicence();
        c.arg("render")
            .arg(pipeline)
            .args(["--input", "fixtures/food-business-permit/export-utf8.csv", "--keys"])
            .arg(&keys)
            .arg("--out")
            .arg(out);
        c
    };
    let with_ofd = pipeline_with_formats(tmp.path(), r#"["pdf", "xml", "ofd"]"#);
    let out = tmp.path().join("out");
    run_expect(&mut render(&with_ofd, &out), 0);
    assert!(!files_with_ext(&out, "ofd").is_empty());
    assert_eq!(files_with_ext(&out, "ofd").len(), files_with_ext(&out, "pdf").len());
    // --formats overrides the pipeline.
    let pdf_only = tmp.path().join("pdf-only");
    run_expect(render(&with_ofd, &pdf_only).args(["--formats", "pdf"]), 0);
    assert!(files_with_ext(&pdf_only, "ofd").is_empty());
    // An unknown format is a configuration error naming the key.
    let bad = pipeline_with_formats(tmp.path(), r#"["pdf", "docx"]"#);
    let err = run_expect(&mut render(&bad, &tmp.path().join("bad")), 3);
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(stderr.contains("output.formats") && stderr.contains("docx"), "{stderr}");
    Ok(())
}

/// easyofd (PyPI, OFD → reportlab PDF → image) with the 宋体 it draws every text in
/// registered from Debian's `fonts-arphic-gbsn00lp`: writes `pdf_out`, prints
/// `min mean` of the page-1 pixels.
const EASYOFD: &str = r#"
import base64, sys
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
pdfmetrics.registerFont(TTFont("宋体", "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf"))
from easyofd.ofd import OFD
import numpy as np
ofd = OFD()
ofd.read(base64.b64encode(open(sys.argv[1], "rb").read()).decode(), save_xml=False)
open(sys.argv[2], "wb").write(ofd.to_pdf())
page = np.array(ofd.to_jpg()[0])
print("PIXELS", int(page.min()), float(page.mean()))
"#;

/// Words of page 1 with their boxes in points, by `pdftotext -bbox`, scaled to `width` points.
fn word_boxes(pdf: &Path, width: f64) -> Vec<(String, [f64; 4])> {
    let out = Command::new("pdftotext")
        .args(["-bbox", "-f", "1", "-l", "1"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let attr = |line: &str, name: &str| -> f64 {
        let key = format!("{name}=\"");
        line.split(&key)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let page_width =
        text.lines().find(|l| l.contains("<page ")).map_or(f64::NAN, |l| attr(l, "width"));
    let scale = width / page_width;
    text.lines()
        .filter(|l| l.contains("<word "))
        .map(|l| {
            let word =
                l.split('>').nth(1).and_then(|r| r.split('<').next()).unwrap_or("").to_string();
            let b = [attr(l, "xMin"), attr(l, "yMin"), attr(l, "xMax"), attr(l, "yMax")]
                .map(|v| v * scale);
            (word, b)
        })
        .collect()
}

#[test]
fn easyofd_draws_our_ofd_with_the_text_where_the_pdf_has_it() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    cli_keys(&keys, &[CHAOYANG, NANGUAN]);
    let out = tmp.path().join("out");
    run_expect(
        elicence()
            .args(["render", "pipelines/food-business-permit.toml", "--input"])
            .arg("fixtures/food-business-permit/export-utf8.csv")
            .arg("--keys")
            .arg(&keys)
            .arg("--out")
            .arg(&out)
            .args(["--formats", "pdf,ofd", "--limit", "2"]),
        0,
    );
    for ofd in files_with_ext(&out, "ofd") {
        let drawn = tmp.path().join("easyofd.pdf");
        let run = Command::new("python3").arg("-c").arg(EASYOFD).arg(&ofd).arg(&drawn).output()?;
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(run.status.success(), "easyofd: {stdout}{}", String::from_utf8_lossy(&run.stderr));
        let pixels = stdout.lines().find_map(|l| l.strip_prefix("PIXELS ")).expect("pixels");
        let (min, mean) = pixels.split_once(' ').expect("two numbers");
        let (min, mean): (u32, f64) = (min.parse()?, mean.parse()?);
        assert!(min < 64 && mean < 253.0, "a blank page: min {min}, mean {mean}");
        // The QR code easyofd draws from the OFD's path reads as the one on our PDF.
        let codes = util::scanned_qr_codes(&[ofd.with_extension("pdf"), drawn.clone()]);
        assert_eq!(codes.len(), 2, "a QR code on each page: {codes:?}");
        assert_eq!(codes[0], codes[1]);
        // The same words sit at the same place as in the PDF (A4 = 595.28 pt wide): left edges
        // within 0.5 pt, vertical centres within 3 pt (the two fonts' boxes differ a little).
        let ours = word_boxes(&ofd.with_extension("pdf"), 595.2756);
        let theirs = word_boxes(&drawn, 595.2756);
        let mut compared = 0;
        for label in ["许可证编号", "经营者名称", "经营项目", "日常监督管理机构", "签发人"]
        {
            let (Some((_, a)), Some((_, b))) =
                (ours.iter().find(|(w, _)| w == label), theirs.iter().find(|(w, _)| w == label))
            else {
                panic!("{label} missing: ours {ours:?}\ntheirs {theirs:?}");
            };
            assert!((a[0] - b[0]).abs() < 0.5, "{label}: x {} vs {}", a[0], b[0]);
            let (ca, cb) = ((a[1] + a[3]) / 2.0, (b[1] + b[3]) / 2.0);
            assert!((ca - cb).abs() < 3.0, "{label}: y centre {ca} vs {cb}");
            compared += 1;
        }
        assert_eq!(compared, 5);
    }
    Ok(())
}

// ---- Per-issuer identities: each bureau signs and seals with its own keys ----

const FOOD_PIPELINE: &str = "pipelines/food-business-permit.toml";
const FOOD_EXPORT: &str = "fixtures/food-business-permit/export-utf8.csv";

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The issuer USCC in an identifier-named file.
fn issuer_of(file: &Path) -> &'static str {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if name.contains(CHAOYANG.0) {
        CHAOYANG.0
    } else if name.contains(NANGUAN.0) {
        NANGUAN.0
    } else {
        panic!("{name}: neither issuer")
    }
}

/// The signer certificate of an XML e-licence (XML-DSig KeyInfo) as PEM.
fn xml_signer_pem(xml: &Path) -> String {
    let text = std::fs::read_to_string(xml).expect("xml");
    let start = text.find("<X509Certificate>").expect("KeyInfo certificate") + 17;
    let end = start + text[start..].find("</X509Certificate>").expect("end");
    let b64: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// `openssl x509 -subject` of a PEM certificate, in RFC 2253 form with UTF-8 kept.
fn openssl_subject(pem: &str, scratch: &Path) -> String {
    let file = scratch.join("cert.pem");
    std::fs::write(&file, pem).expect("write");
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253,-esc_msb", "-in"])
        .arg(&file)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `openssl verify` of a PEM certificate against the key set's CA.
fn openssl_verifies(pem: &str, ca: &Path, scratch: &Path) -> bool {
    let file = scratch.join("leaf.pem");
    std::fs::write(&file, pem).expect("write");
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .arg(&file)
        .output()
        .expect("openssl runs")
        .status
        .success()
}

fn verify_json_keys(file: &Path, keys: &Path) -> serde_json::Value {
    let out =
        elicence().args(["verify", "--json", "--keys"]).arg(keys).arg(file).output().expect("runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn render_all(keys: &Path, out: &Path, pipeline: &Path) -> Command {
    let mut c = elicence();
    c.arg("render")
        .arg(pipeline)
        .args(["--input", FOOD_EXPORT, "--formats", "pdf,xml,ofd", "--keys"])
        .arg(keys)
        .arg("--out")
        .arg(out);
    c
}

#[test]
fn an_export_from_two_bureaus_is_signed_and_sealed_by_each_bureaus_own_identity() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    let made = run_expect(
        elicence().args(["keys", "init"]).arg(&keys).args(["--pipeline", FOOD_PIPELINE]),
        0,
    );
    let stdout = String::from_utf8_lossy(&made.stdout);
    for (code, _) in [CHAOYANG, NANGUAN] {
        assert!(keys.join("issuers").join(code).join("signer.key").exists(), "{stdout}");
        assert!(keys.join("issuers").join(code).join("sm2-signer.pem").exists(), "{stdout}");
        assert!(keys.join("seals").join(format!("{code}.esl")).exists(), "{stdout}");
    }
    let out = tmp.path().join("out");
    run_expect(&mut render_all(&keys, &out, Path::new(FOOD_PIPELINE)), 0);

    // PDF and XML: signed by the issuer's own RSA certificate (its name and USCC), under the CA.
    let mut xml_certs: BTreeMap<&str, String> = BTreeMap::new();
    for xml in files_with_ext(&out, "xml") {
        let code = issuer_of(&xml);
        let pem = xml_signer_pem(&xml);
        let subject = openssl_subject(&pem, tmp.path());
        assert!(subject.contains(&format!("OU={code}")), "{}: {subject}", xml.display());
        assert!(openssl_verifies(&pem, &keys.join("ca.pem"), tmp.path()), "{subject}");
        if let Some(seen) = xml_certs.insert(code, pem.clone()) {
            assert_eq!(seen, pem, "one certificate per issuer");
        }
        assert_eq!(verify_json_keys(&xml, &keys)["status"], "authentic");
    }
    assert_eq!(xml_certs.len(), 2, "both issuers signed");
    assert_ne!(xml_certs[CHAOYANG.0], xml_certs[NANGUAN.0], "each issuer has its own certificate");
    let names: BTreeMap<&str, &str> = [CHAOYANG, NANGUAN].into_iter().collect();
    for pdf in files_with_ext(&out, "pdf") {
        let verdict = verify_json_keys(&pdf, &keys);
        assert_eq!(verdict["status"], "authentic", "{verdict}");
        assert_eq!(verdict["signer"], names[issuer_of(&pdf)], "{}", pdf.display());
    }

    // OFD: the issuer's seal and the issuer's own SM2 signer, accepted by the independent checker.
    let mut sm2_signers: BTreeMap<&str, String> = BTreeMap::new();
    for ofd in files_with_ext(&out, "ofd") {
        let code = issuer_of(&ofd);
        if let Err(e) = independent_check(&ofd, &keys.join("sm2-ca.pem")) {
            panic!("{}: {e}", ofd.display());
        }
        let verdict = verify_json_keys(&ofd, &keys);
        assert_eq!(verdict["status"], "authentic", "{verdict}");
        assert_eq!(verdict["seal_name"], names[code], "{verdict}");
        assert_eq!(verdict["signer"], names[code], "{verdict}");
        // The SM2 certificate inside the seal's signature is the issuer's own.
        let ses = SesSignature::from_der(&zip_entry(&std::fs::read(&ofd)?, SIGNED_VALUE_PATH))?;
        let own = std::fs::read(keys.join("issuers").join(code).join("sm2-signer.pem"))?;
        let own = x509_cert::Certificate::load_pem_chain(&own)?;
        assert_eq!(ses.cert.as_bytes(), der::Encode::to_der(&own[0])?.as_slice());
        if let Some(seen) = sm2_signers.insert(code, hex_of(ses.cert.as_bytes())) {
            assert_eq!(seen, hex_of(ses.cert.as_bytes()), "one SM2 signer per issuer");
        }
    }
    assert_eq!(sm2_signers.len(), 2);
    assert_ne!(sm2_signers[CHAOYANG.0], sm2_signers[NANGUAN.0]);

    // Running `keys init --pipeline` again adds nothing and keeps the identities.
    let before = std::fs::read(keys.join("issuers").join(CHAOYANG.0).join("signer.pem"))?;
    run_expect(elicence().args(["keys", "init"]).arg(&keys).args(["--pipeline", FOOD_PIPELINE]), 0);
    assert_eq!(before, std::fs::read(keys.join("issuers").join(CHAOYANG.0).join("signer.pem"))?);
    Ok(())
}

/// A copy of the shipped pipelines with `allow_default_signer = true` in the food pipeline.
fn pipeline_allowing_default(dir: &Path) -> PathBuf {
    copy_dir(&root().join("pipelines"), &dir.join("pipelines"));
    // The layout's seal image is `../../fixtures/seals/seal.png`.
    copy_dir(&root().join("fixtures/seals"), &dir.join("fixtures/seals"));
    let path = dir.join("pipelines/food-business-permit.toml");
    let text = std::fs::read_to_string(&path).expect("pipeline");
    let text = text.replacen("\n[source]", "\nallow_default_signer = true\n\n[source]", 1);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn an_issuer_without_its_own_identity_stops_the_run_unless_the_pipeline_allows_the_default()
-> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    // Only the default signer, and one issuer with an identity of its own.
    run_expect(elicence().args(["keys", "init"]).arg(&keys), 0);
    let data = tmp.path().join("data");
    let run = |pipeline: &Path, formats: &str| {
        let mut c = elicence();
        c.arg("run")
            .arg(pipeline)
            .args(["--input", FOOD_EXPORT, "--quiet", "--formats", formats, "--keys"])
            .arg(&keys)
            .arg("--data")
            .arg(&data);
        c
    };
    let refused = run_expect(&mut run(Path::new(FOOD_PIPELINE), "pdf,xml"), 3);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("has no signing identity of its own"), "{stderr}");
    assert!(stderr.contains("allow_default_signer"), "{stderr}");
    assert!(
        stderr.contains(&format!("issuers/{}/signer.key", CHAOYANG.0))
            || stderr.contains(NANGUAN.0),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing created before the key set was checked");

    // The pipeline allows the default signer: the run signs, and says for whom.
    let allowing = pipeline_allowing_default(tmp.path());
    let done = run_expect(&mut run(&allowing, "pdf,xml"), 0);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(stderr.contains("DEFAULT signer"), "{stderr}");

    // Writing OFD needs seals too: none for these issuers, so exit 3 and nothing more issued.
    let refused = run_expect(&mut run(&allowing, "pdf,xml,ofd"), 3);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("has no seal"));
    Ok(())
}

#[test]
fn a_seal_that_names_another_signer_is_refused_before_anything_is_written() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let keys = tmp.path().join("keys");
    run_expect(elicence().args(["keys", "init"]).arg(&keys).args(["--pipeline", FOOD_PIPELINE]), 0);
    // 南关's seal swapped for 朝阳's: it names 朝阳's SM2 signer, not 南关's.
    std::fs::copy(
        keys.join("seals").join(format!("{}.esl", CHAOYANG.0)),
        keys.join("seals").join(format!("{}.esl", NANGUAN.0)),
    )?;
    let out = tmp.path().join("out");
    let refused = run_expect(&mut render_all(&keys, &out, Path::new(FOOD_PIPELINE)), 3);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(NANGUAN.0), "{stderr}");
    assert!(!out.exists(), "nothing written");
    // `keys init --pipeline` mends it: a new seal naming 南关's own signer.
    run_expect(elicence().args(["keys", "init"]).arg(&keys).args(["--pipeline", FOOD_PIPELINE]), 0);
    run_expect(&mut render_all(&keys, &out, Path::new(FOOD_PIPELINE)), 0);
    Ok(())
}

// ---- The OFD's embedded font, read back by fontTools ----

/// fontTools (PyPI, installed with easyofd) reads the subset font and the original face, and
/// compares, for every character the page draws: the subset's cmap maps it, and its glyph has
/// the original's advance width and outline bounds. Prints `OK <characters checked>`.
const FONTTOOLS_CHECK: &str = r#"
import sys
from fontTools.ttLib import TTFont
from fontTools.pens.boundsPen import BoundsPen
sub = TTFont(sys.argv[1])
orig = TTFont(sys.argv[2], fontNumber=int(sys.argv[3]))
assert sub.sfntVersion == "OTTO", sub.sfntVersion
assert sub["maxp"].numGlyphs == len(sub.getGlyphOrder()), "maxp"
sub_cmap, orig_cmap = sub.getBestCmap(), orig.getBestCmap()
sub_glyphs, orig_glyphs = sub.getGlyphSet(), orig.getGlyphSet()
def bounds(glyphs, name):
    pen = BoundsPen(glyphs)
    glyphs[name].draw(pen)
    return pen.bounds
chars = sorted(set(open(sys.argv[4], encoding="utf-8").read()) - {" "})
for ch in chars:
    cp = ord(ch)
    assert cp in sub_cmap, f"U+{cp:04X} {ch} not in the subset's cmap"
    s, o = sub_cmap[cp], orig_cmap[cp]
    assert sub["hmtx"][s][0] == orig["hmtx"][o][0], f"{ch}: advance {sub['hmtx'][s]} vs {orig['hmtx'][o]}"
    assert bounds(sub_glyphs, s) == bounds(orig_glyphs, o), f"{ch}: bounds differ"
print("OK", len(chars))
"#;

#[test]
fn the_ofd_font_is_an_opentype_subset_that_draws_every_character_as_the_face_does() -> TestResult {
    let font = FaceFont::load_default()?;
    let (face_path, face_index) = font.source();
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("out");
    run_expect(
        elicence()
            .args(["render", FOOD_PIPELINE, "--input", FOOD_EXPORT, "--keys", "fixtures/keys"])
            .args(["--formats", "ofd", "--limit", "2", "--out"])
            .arg(&out),
        0,
    );
    let ofds = files_with_ext(&out, "ofd");
    assert_eq!(ofds.len(), 2);
    let mut labels_fonts = Vec::new();
    for file in ofds {
        let ofd = std::fs::read(&file)?;
        // Two fonts: the layout's labels (ID 2) and the licence's values (ID 4).
        let res = String::from_utf8(zip_entry(&ofd, "Doc_0/PublicRes.xml"))?;
        let page = String::from_utf8(zip_entry(&ofd, PAGE_CONTENT_PATH))?;
        for (id, name) in [("2", "font_2.otf"), ("4", "font_4.otf")] {
            assert!(
                res.contains(&format!("<ofd:Font ID=\"{id}\" FontName=\"黑体\"")),
                "font {id} in {res}"
            );
            assert!(res.contains(&format!("<ofd:FontFile>{name}</ofd:FontFile>")), "{res}");
            let font_file = zip_entry(&ofd, &format!("Doc_0/Res/{name}"));
            if id == "2" {
                labels_fonts.push(font_file.clone());
            }
            std::fs::write(tmp.path().join("sub.otf"), font_file)?;
            // Every character this font draws: the text of the TextCode elements of the text
            // objects that name it.
            let mut text = String::new();
            for object in page.split("<ofd:TextObject ").skip(1) {
                if !object.contains(&format!(" Font=\"{id}\" ")) {
                    continue;
                }
                let piece = object.split("<ofd:TextCode").nth(1).unwrap_or_default();
                let body = piece.split_once('>').map(|(_, b)| b).unwrap_or_default();
                let body = body.split("</ofd:TextCode>").next().unwrap_or_default();
                text.push_str(
                    &body.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"),
                );
            }
            assert!(text.chars().count() > 20, "font {id}: {text}");
            std::fs::write(tmp.path().join("text.txt"), &text)?;
            let check = Command::new("python3")
                .args(["-c", FONTTOOLS_CHECK])
                .arg(tmp.path().join("sub.otf"))
                .arg(face_path)
                .arg(face_index.to_string())
                .arg(tmp.path().join("text.txt"))
                .output()?;
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
            assert!(
                check.status.success() && said.starts_with("OK "),
                "{} font {id}: {said}",
                file.display()
            );
        }
    }
    // The labels' font is the same file in every OFD of the layout (made once, hashed once).
    assert_eq!(labels_fonts.len(), 2);
    assert_eq!(labels_fonts[0], labels_fonts[1]);
    Ok(())
}
