//! Golden outputs: with the fixture keys and a pinned clock, every signed artefact elicence writes
//! is byte-for-byte what it was when this list was made. The store is content-addressed, so the
//! stored file names *are* the SHA-256 of the signed PDFs and XMLs; a watermarked copy for use
//! (`copy`) and a `render` preview folder are pinned too.
//!
//! This guards refactors that must not change behaviour (moving the PDF writer, the signer seam,
//! the engine). When an output is meant to change, regenerate the list with
//! `ELICENCE_GOLDEN_WRITE=1 cargo nextest run --test golden` and say why in the commit.
mod util;

use std::collections::BTreeSet;
use std::path::Path;

use util::{elicence, root, run_expect};

const GOLDEN: &str = "fixtures/golden/artefacts.sha256";

const EXPORTS: [(&str, &str); 3] = [
    ("pipelines/food-business-permit.toml", "fixtures/food-business-permit/export-gbk.csv"),
    ("pipelines/business-licence.toml", "fixtures/business-licence/export.xlsx"),
    (
        "pipelines/special-operations-certificate.toml",
        "fixtures/special-operations-certificate/export-utf8.csv",
    ),
];

/// 长春市医疗保障局, a department asking for a copy.
const MED: &str = "11220100MB18300819";
/// The first food licence, version 2 (current).
const CURRENT: &str =
    "1.2.156.3005.2.11100000MB0143028R901.11220104MB1875524M.JY12201040000016.002.8";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Every file under `dir` as "label name sha256", recursively.
fn hashes(label: &str, dir: &Path, into: &mut BTreeSet<String>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
                let bytes = std::fs::read(&path).expect("read artefact");
                into.insert(format!("{label} {name} {}", sha256_hex(&bytes)));
            }
        }
    }
}

#[test]
fn signed_outputs_are_byte_identical_to_the_golden_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut got = BTreeSet::new();
    for (pipeline, input) in EXPORTS {
        run_expect(
            elicence()
                .env("ELICENCE_DATA", &data)
                .args(["run", pipeline, "--input", input, "--keys", "fixtures/keys"])
                .args(["--operator", "tester", "--progress", "never"]),
            0,
        );
    }
    hashes("store", &data.join("store"), &mut got);

    let preview = dir.path().join("preview");
    let (pipeline, input) = EXPORTS[0];
    run_expect(
        elicence()
            .args(["render", pipeline, "--input", input, "--keys", "fixtures/keys", "--out"])
            .arg(&preview),
        0,
    );
    hashes("render", &preview, &mut got);

    let added = run_expect(
        elicence()
            .env("ELICENCE_DATA", &data)
            .args(["dept", "add", MED, "--name", "长春市医疗保障局", "--level", "prefectural"])
            .args(["--region", "220100"]),
        0,
    );
    run_expect(
        elicence().env("ELICENCE_DATA", &data).args([
            "dept",
            "grant",
            MED,
            "--type",
            "food-business-permit",
            "--unmask",
        ]),
        0,
    );
    let credential = dir.path().join("med.cred");
    std::fs::write(&credential, &added.stdout).expect("credential");
    let copy = dir.path().join("copy.pdf");
    run_expect(
        elicence()
            .env("ELICENCE_DATA", &data)
            .args(["copy", CURRENT, "--reason", "医保定点审核", "--as", MED, "--credential-file"])
            .arg(&credential)
            .args(["--expires", "2026-12-31", "--keys", "fixtures/keys", "--out"])
            .arg(&copy),
        0,
    );
    let bytes = std::fs::read(&copy).expect("copy written");
    got.insert(format!("copy copy.pdf {}", sha256_hex(&bytes)));

    let golden = root().join(GOLDEN);
    let listed: String = got.iter().map(|l| format!("{l}\n")).collect();
    if std::env::var("ELICENCE_GOLDEN_WRITE").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().expect("parent")).expect("mkdir");
        std::fs::write(&golden, &listed).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&golden).expect("golden list exists (see module doc)");
    let want: BTreeSet<&str> = want.lines().collect();
    let got: BTreeSet<&str> = listed.lines().collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "outputs differ from {GOLDEN}\nexpected but not written: {missing:#?}\nwritten but not expected: {extra:#?}"
    );
    assert!(want.len() > 40, "the golden list covers the fixtures ({} entries)", want.len());
}
