//! Production registries (issue 18): `elicence init --production` marks a registry (SQLite or
//! PostgreSQL) as production, with an audit entry; from then on `run`, `render`, `copy` and
//! `serve` refuse development keys (made by `keys init`, which marks its certificates with a
//! development certificate policy that OpenSSL reads) with exit 3, and `run` needs `--keys` or
//! `ELICENCE_KEYS`. A key set made elsewhere (here: by the `openssl` command line) is accepted.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use util::{PgDatabase, elicence, openssl, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const EXPORT: &str = "fixtures/food-business-permit/export-utf8.csv";
const POLICY: &str = "1.3.6.1.4.1.32473.18.1";

/// The binary with the real clock: the OpenSSL-made key below is valid from today.
fn elicence_now() -> Command {
    let mut c = elicence();
    c.env_remove("ELICENCE_NOW");
    c
}

/// A development key set made by `elicence keys init`, with an identity for every issuer of
/// the food pipeline (so that what refuses it is the production mark, not a missing identity).
fn development_keys(dir: &Path) -> PathBuf {
    let keys = dir.join("dev");
    run_expect(elicence_now().args(["keys", "init"]).arg(&keys).args(["--pipeline", FOOD]), 0);
    keys
}

/// An authority's key set made without elicence: an RSA CA and the signers it certifies (the key
/// set's own and one per issuer of the food pipeline; `signer.key` PKCS#8, `signer.pem` =
/// signer + CA), by the `openssl` command line. RSA only: runs with it write PDF and XML.
fn authority_keys(dir: &Path) -> PathBuf {
    let keys = dir.join("authority");
    std::fs::create_dir_all(&keys).unwrap();
    let run = |args: &[&str]| openssl(&keys, args);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=Test Authority CA",
    ]);
    std::fs::write(
        keys.join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n",
    )
    .unwrap();
    // The key set's own signer (the registry's), and each food issuer's own (issuers/<USCC>/).
    let signers = [
        ("", "/CN=Test Authority Signer"),
        ("issuers/11220104MB1875524M/", "/CN=Chaoyang Market Regulation/OU=11220104MB1875524M"),
        ("issuers/11220102MB1953012R/", "/CN=Nanguan Market Regulation/OU=11220102MB1953012R"),
    ];
    for (serial, (dir, subject)) in (2..).zip(signers) {
        std::fs::create_dir_all(keys.join(dir)).unwrap();
        let (key, csr, crt) =
            (format!("{dir}signer.key"), format!("{dir}signer.csr"), format!("{dir}signer.crt"));
        run(&[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject,
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial.to_string(),
            "-days",
            "365",
            "-extfile",
            "ext.cnf",
            "-out",
            &crt,
        ]);
        let chain = std::fs::read_to_string(keys.join(&crt)).unwrap()
            + &std::fs::read_to_string(keys.join("ca.pem")).unwrap();
        std::fs::write(keys.join(format!("{dir}signer.pem")), chain).unwrap();
    }
    keys
}

fn run_food(data: &Path, registry: Option<&str>) -> Command {
    let mut cmd = elicence_now();
    cmd.args(["run", FOOD, "--input", EXPORT, "--operator", "tester", "--progress", "never"])
        .args(["--formats", "pdf,xml"])
        .arg("--data")
        .arg(data);
    if let Some(r) = registry {
        cmd.args(["--registry", r]);
    }
    cmd
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn keys_init_certificates_carry_the_development_policy_as_openssl_reads_it() {
    let scratch = tempfile::tempdir().unwrap();
    let keys = development_keys(scratch.path());
    for cert in ["signer.pem", "ca.pem", "sm2-signer.pem"] {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-ext", "certificatePolicies", "-in"])
            .arg(keys.join(cert))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("Policy: {POLICY}")), "{cert}: {text}");
    }
}

/// Everything a production registry must refuse, and what it accepts (SQLite).
#[test]
fn a_production_registry_refuses_development_keys_sqlite() {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let dev = development_keys(scratch.path());
    let authority = authority_keys(scratch.path());

    let init = run_expect(
        elicence_now()
            .args(["init", "--production", "--operator", "ops", "--json", "--data"])
            .arg(&data),
        0,
    );
    let init: Value = serde_json::from_slice(&init.stdout).unwrap();
    assert_eq!(init["marked_now"], true);
    assert_eq!(init["production"]["operator"], "ops");
    let marks = || -> i64 {
        rusqlite::Connection::open(data.join("registry.sqlite"))
            .unwrap()
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'marked_production' \
                 AND operator = 'ops'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(marks(), 1, "the mark is in the audit trail");
    // Again: nothing new.
    let again = run_expect(elicence_now().args(["init", "--production", "--data"]).arg(&data), 0);
    assert!(String::from_utf8_lossy(&again.stdout).contains("production since"));
    assert_eq!(marks(), 1);

    // run without --keys: no development key is made, exit 3.
    let out = run_expect(&mut run_food(&data, None), 3);
    assert!(stderr(&out).contains("marked production"), "{}", stderr(&out));
    assert!(!data.join("dev-keys").exists(), "no development key created");
    // run with a development key: exit 3, naming it.
    let out = run_expect(run_food(&data, None).arg("--keys").arg(&dev), 3);
    assert!(stderr(&out).contains("a development key"), "{}", stderr(&out));
    // render with a development key: exit 3.
    let preview = scratch.path().join("preview");
    let out = run_expect(
        elicence_now()
            .args(["render", FOOD, "--input", EXPORT, "--out"])
            .arg(&preview)
            .arg("--keys")
            .arg(&dev)
            .arg("--data")
            .arg(&data),
        3,
    );
    assert!(stderr(&out).contains("a development key"), "{}", stderr(&out));
    // copy without --keys: exit 3 before anything is asked.
    let out = run_expect(
        elicence_now()
            .args(["copy", "1.2.156.3005.2.x", "--as", "11220100MB18300819", "--reason", "r"])
            .args(["--expires", "2099-12-31", "--out"])
            .arg(scratch.path().join("copy.pdf"))
            .arg("--data")
            .arg(&data),
        3,
    );
    assert!(stderr(&out).contains("marked production"), "{}", stderr(&out));
    // serve with the development CA as a trust anchor: exit 3 before listening.
    let out = run_expect(
        elicence_now()
            .args(["serve", "--listen", "127.0.0.1:0", "--trust"])
            .arg(dev.join("ca.pem"))
            .arg("--data")
            .arg(&data),
        3,
    );
    assert!(stderr(&out).contains("development certificate"), "{}", stderr(&out));

    // The authority's key, from ELICENCE_KEYS, signs.
    let out = run_expect(run_food(&data, None).env("ELICENCE_KEYS", &authority).arg("--json"), 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["counts"]["issued"], 7);
    assert_eq!(report["development_key"], false);
    run_expect(
        elicence_now()
            .args(["render", FOOD, "--input", EXPORT, "--formats", "pdf,xml", "--out"])
            .arg(&preview)
            .arg("--keys")
            .arg(&authority)
            .arg("--data")
            .arg(&data),
        0,
    );

    // Without init, development keys work as before.
    let plain = scratch.path().join("plain");
    run_expect(run_food(&plain, None).arg("--keys").arg(&dev), 0);
}

#[test]
fn a_production_registry_refuses_development_keys_postgres() {
    let Some(db) = PgDatabase::create("production_postgres") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let dev = development_keys(scratch.path());
    let authority = authority_keys(scratch.path());
    run_expect(
        elicence_now().args(["init", "--production", "--registry", &db.url, "--data"]).arg(&data),
        0,
    );
    let out = run_expect(run_food(&data, Some(&db.url)).arg("--keys").arg(&dev), 3);
    assert!(stderr(&out).contains("a development key"), "{}", stderr(&out));
    run_expect(run_food(&data, Some(&db.url)).arg("--keys").arg(&authority), 0);
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let marks: i64 = client
        .query_one("SELECT count(*) FROM audit_log WHERE action = 'marked_production'", &[])
        .unwrap()
        .get(0);
    assert_eq!(marks, 1);
}
