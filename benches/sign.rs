//! Criterion benches for the sign stage: PAdES signing of a ~20 KB one-page PDF, XML-DSig
//! signing of a ~3 KB document, and the raw RSA-2048 signature with every backend compiled
//! in (ring, the pure-Rust `rsa` crate, OpenSSL). Keys come from `fixtures/keys`; setup is outside the timing.

use std::hint::black_box;
use std::path::PathBuf;

use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use elicence::sign::{
    PdfSignOptions, RsaBackend, RsaSigner, Signer, canonical_text_escape, sign_pdf, sign_xml,
};

fn signer(backend: RsaBackend) -> RsaSigner {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
    match RsaSigner::load_with_backend(&dir, None, Utc::now(), backend) {
        Ok(s) => s,
        Err(e) => panic!("fixtures/keys: {e}"),
    }
}

/// A one-page PDF of about 20 KB (text plus an incompressible filler stream, standing in
/// for the embedded font subset of a rendered licence).
fn pdf_20k() -> Vec<u8> {
    use lopdf::{Object, Stream, dictionary};
    let mut doc = lopdf::Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let mut content = Vec::new();
    for line in 0..40 {
        content.extend_from_slice(
            format!(
                "BT /F1 10 Tf 50 {} Td (Field {line}: 91110000MA01ABCD2X) Tj ET\n",
                800 - 18 * line
            )
            .as_bytes(),
        );
    }
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let filler: Vec<u8> =
        (0..18_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let filler_id = doc.add_object(Stream::new(dictionary! {}, filler));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "PieceInfo" => filler_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    if let Err(e) = doc.save_to(&mut out) {
        panic!("bench PDF: {e}");
    }
    out
}

/// A canonical licence XML of about 3 KB.
fn xml_3k() -> String {
    let mut doc =
        String::from("<Licence xmlns=\"urn:elicence:licence:1\" id=\"91110000MA01ABCD2X\">");
    for i in 0..40 {
        doc.push_str(&format!(
            "\n<Field name=\"f{i:02}\">{}</Field>",
            canonical_text_escape("北京某某科技有限公司 & \"合伙人\"")
        ));
    }
    doc.push_str("\n</Licence>");
    doc
}

fn bench_sign(c: &mut Criterion) {
    let ring = signer(RsaBackend::Ring);
    let pdf = pdf_20k();
    let xml = xml_3k();
    let now = Utc::now();
    let opts = PdfSignOptions { reason: "电子证照签发".into(), ..Default::default() };
    eprintln!("bench inputs: PDF {} bytes, XML {} bytes", pdf.len(), xml.len());

    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pdf_pades_ring", |b| {
        b.iter(|| sign_pdf(black_box(&pdf), &ring, now, &opts).map(|v| v.len()))
    });
    group.bench_function("xml_dsig_ring", |b| {
        b.iter(|| sign_xml(black_box(&xml), &ring).map(|v| v.len()))
    });
    for &backend in RsaBackend::available() {
        let key = signer(backend);
        group.bench_function(format!("rsa2048_raw_{backend:?}"), |b| {
            b.iter(|| key.sign(black_box(b"signed attributes")).map(|v| v.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sign);
criterion_main!(benches);
