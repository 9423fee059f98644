//! Hostile inputs for `elicence verify` (issue 14, item 3): a PDF whose object stream is a
//! flate bomb (12 MB on disk, about 12 GB inflated) must come back `not-signed` or `tampered`
//! with a reason, without inflating it. The peak resident memory of the verifier is measured
//! with GNU time (`/usr/bin/time`) and must stay under the 200 MB (the verifier
//! before this bound used about 600 MB on this file, more with more threads).

mod util;

use std::io::Write;
use std::path::Path;

use flate2::{Compress, Compression, FlushCompress};
use util::{elicence, root};

/// Peak resident memory allowed for verifying the bomb, in KiB (issue 14: under 200 MB).
const MAX_RSS_KIB: u64 = 200_000;

/// A zlib stream of about `size` bytes that inflates to about 1000 × `size` zeros: one
/// full-flushed deflate segment of 1 MiB of zeros (it refers to nothing before it, so it can
/// be repeated), repeated, then a final empty block. The checksum is wrong on purpose: an
/// inflater that gets that far has already lost.
fn flate_bomb(size: usize) -> Vec<u8> {
    let mut deflate = Compress::new(Compression::best(), false);
    let mut segment = Vec::with_capacity(4096);
    deflate.compress_vec(&vec![0u8; 1 << 20], &mut segment, FlushCompress::Full).expect("deflate");
    let mut out = vec![0x78, 0xDA];
    while out.len() < size {
        out.extend_from_slice(&segment);
    }
    out.extend_from_slice(&[0x03, 0x00, 0, 0, 0, 0]);
    out
}

/// A PDF 1.7 file whose object 1 is an object stream holding `bomb`; with `signed`, also a
/// signature dictionary whose `/ByteRange` covers the whole file (its `/Contents` is no CMS).
fn bomb_pdf(bomb: &[u8], signed: bool) -> Vec<u8> {
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    offsets.push(pdf.len());
    write!(
        pdf,
        "1 0 obj\n<< /Type /ObjStm /N 1 /First 8 /Filter /FlateDecode /Length {} >>\nstream\n",
        bomb.len()
    )
    .unwrap();
    pdf.extend_from_slice(bomb);
    pdf.extend_from_slice(b"\nendstream\nendobj\n");
    offsets.push(pdf.len());
    pdf.extend_from_slice(b"2 0 obj\n<< /Type /Catalog /Pages 3 0 R >>\nendobj\n");
    offsets.push(pdf.len());
    pdf.extend_from_slice(b"3 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n");
    let mut placeholder = None;
    if signed {
        offsets.push(pdf.len());
        pdf.extend_from_slice(b"4 0 obj\n<< /Type /Sig /Filter /Adobe.PPKLite ");
        pdf.extend_from_slice(b"/SubFilter /ETSI.CAdES.detached /M (D:20261127100000Z) ");
        pdf.extend_from_slice(b"/ByteRange ");
        let at = pdf.len();
        pdf.extend_from_slice(&[b' '; 60]);
        pdf.extend_from_slice(b" /Contents ");
        let gap_start = pdf.len();
        pdf.extend_from_slice(format!("<{}>", "00".repeat(4096)).as_bytes());
        let gap_end = pdf.len();
        pdf.extend_from_slice(b" >>\nendobj\n");
        placeholder = Some((at, gap_start, gap_end));
    }
    let xref = pdf.len();
    write!(pdf, "xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).unwrap();
    for offset in &offsets {
        writeln!(pdf, "{offset:010} 00000 n ").unwrap();
    }
    write!(
        pdf,
        "trailer\n<< /Size {} /Root 2 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    )
    .unwrap();
    if let Some((at, gap_start, gap_end)) = placeholder {
        let range = format!("[0 {gap_start} {gap_end} {}]", pdf.len() - gap_end);
        pdf[at..at + range.len()].copy_from_slice(range.as_bytes());
    }
    pdf
}

/// Runs `elicence verify FILE --json` under GNU time; returns the JSON line after checking
/// the exit code and the peak resident memory.
fn verify_limited(file: &Path, code: i32) -> serde_json::Value {
    let rss_file = file.with_extension("rss");
    let verify = elicence();
    let out = std::process::Command::new("/usr/bin/time")
        .current_dir(root())
        .envs(verify.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(verify.get_program())
        .args(["verify"])
        .arg(file)
        .args(["--keys", "fixtures/keys", "--json"])
        .output()
        .unwrap_or_else(|e| panic!("GNU time is not installed ({e}); run .ci/setup"));
    assert_eq!(
        out.status.code(),
        Some(code),
        "verify exits {code}; stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rss: u64 = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .expect("GNU time wrote the peak RSS");
    assert!(rss < MAX_RSS_KIB, "verify used {rss} KiB on a flate bomb");
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn unsigned_flate_bomb_is_not_signed_without_inflating() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bomb.pdf");
    let bomb = flate_bomb(12 << 20);
    assert!(bomb.len() >= 12 << 20);
    std::fs::write(&file, bomb_pdf(&bomb, false)).unwrap();
    let report = verify_limited(&file, 1);
    assert_eq!(report["status"], "not-signed", "{report}");
}

#[test]
fn signed_flate_bomb_is_tampered_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signed-bomb.pdf");
    std::fs::write(&file, bomb_pdf(&flate_bomb(12 << 20), true)).unwrap();
    let report = verify_limited(&file, 1);
    assert_eq!(report["status"], "tampered", "{report}");
    let reason = report["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("CMS"), "{report}");
}

#[test]
fn the_bomb_really_inflates_past_the_limit() {
    // Guards the fixture: if the generator stopped producing a bomb, the tests above would
    // pass for the wrong reason. Inflate only the first 64 MiB and check the ratio.
    let bomb = flate_bomb(1 << 20);
    let mut inflate = flate2::Decompress::new(true);
    let mut sink = vec![0u8; 64 << 20];
    inflate.decompress(&bomb, &mut sink, flate2::FlushDecompress::None).expect("valid deflate");
    assert_eq!(inflate.total_out(), 64 << 20, "output buffer filled");
    assert!(inflate.total_in() < (128 << 10), "ratio above 500:1: {} in", inflate.total_in());
}

/// A licence PDF rendered and signed (B-B) with the fixture key set, with one more update
/// adding a `/DSS` whose only CRL stream is `bomb`, `/FlateDecode`d: validation data is
/// allowed after a signature, and the verifier inflates the DSS's streams, so it must stop at
/// its cap.
fn signed_pdf_with_dss_bomb(dir: &Path, bomb: Vec<u8>) -> Vec<u8> {
    let out = dir.join("out");
    util::run_expect(
        elicence()
            .args(["render", "pipelines/food-business-permit.toml", "--input"])
            .arg("fixtures/food-business-permit/export-utf8.csv")
            .args(["--keys", "fixtures/keys", "--limit", "1", "--formats", "pdf", "--out"])
            .arg(&out),
        0,
    );
    let signed = std::fs::read(&util::files_with_ext(&out, "pdf")[0]).unwrap();
    util::with_new_dss_stream(&signed, bomb, Some("FlateDecode"))
}

#[test]
fn a_flate_bomb_in_the_dss_is_a_reason_not_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dss-bomb.pdf");
    std::fs::write(&file, signed_pdf_with_dss_bomb(dir.path(), flate_bomb(12 << 20))).unwrap();
    // The signature is intact and the update only adds validation data: authentic, judged
    // as without a DSS, and the report says why its CRLs were not used.
    let report = verify_limited(&file, 0);
    assert_eq!(report["status"], "authentic", "{report}");
    assert_eq!(report["pades_level"], "b-b", "{report}");
    assert_eq!(report["revocation"], "none", "{report}");
    let note = report["revocation_detail"].as_str().unwrap_or_default();
    assert!(note.contains("/DSS cannot be read") && note.contains("inflates beyond"), "{report}");
}
