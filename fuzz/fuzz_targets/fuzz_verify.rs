//! Fuzzes `verify`'s per-file path: [`elicence::cmd::verify::verify_file`] reads one file and
//! classifies its bytes (`PK\x03\x04` → sealed OFD check: zip, references, SES structures;
//! `%PDF` → PAdES check through lopdf and CMS; otherwise UTF-8 → enveloped XML-DSig check;
//! otherwise "neither"). Any panic is a bug: a verifier is pointed at files
//! from outside, and every failure must come back as a [`SignatureStatus`] with a detail.
//!
//! The development CA (`fixtures/keys/ca.pem`) is the trust anchor, so a mutated file that
//! still carries a well-formed signature reaches certificate path building too.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use elicence::cmd::verify::verify_file;
use elicence::verify::{SignatureStatus, TrustAnchors};
use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process, rewritten for every input (a new temporary file per
/// input would cost more than the verification of a small one).
struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
    trust: TrustAnchors,
}

fn scratch() -> Option<&'static Scratch> {
    static SCRATCH: OnceLock<Option<Scratch>> = OnceLock::new();
    SCRATCH
        .get_or_init(|| {
            let dir = tempfile::tempdir().ok()?;
            let path = dir.path().join("licence");
            let ca = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/keys/ca.pem");
            let trust = TrustAnchors::from_pem_files(&[ca]).unwrap_or_default();
            Some(Scratch { _dir: dir, path, trust })
        })
        .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let Some(scratch) = scratch() else { return };
    if std::fs::write(&scratch.path, data).is_err() {
        return;
    }
    // The verifier's clock (certificate validity is checked at it): pinned by ELICENCE_NOW
    // like every other run, else the current time.
    let Ok(now) = elicence::clock::now() else { return };
    let report = verify_file(&scratch.path, &scratch.trust, now);
    // Touch everything a user would see, so a lazy panic (Display, serialisation) shows too.
    let _ = (report.kind, report.status.label(), report.detail.as_deref().map(str::len));
    if let SignatureStatus::Tampered { reason } = &report.status {
        let _ = reason.len();
    }
    let _ = serde_json::to_string(&report);
});
