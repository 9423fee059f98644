//! Render-stage benchmarks: one food business permit (the heaviest face: a 200-character
//! 经营项目, seal, QR) rendered to PDF and to canonical XML, and the whole produce step
//! (identify + XML + PDF + both signatures, `render_and_sign`) with the committed test keys in
//! `fixtures/keys`. Font parsing, layout loading, key loading and seal decoding happen once,
//! outside the timing, as in the pipeline. Single-threaded. `sign_face` signs the rendered face
//! alone, by the direct path `produce` uses and by the general lopdf path (same bytes), and the
//! bare RSA-2048 signature of the default backend.
//!
//! Times are CPU time of the benchmarking thread (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so
//! that another job on the machine does not inflate them as much (it still shares caches and
//! the memory bus); where that clock fails they fall back to wall time. 64-bit Linux only.
//!
//! `cargo bench --bench render -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use elicence::font::FaceFont;
use elicence::identify::LicenceId;
use elicence::keyset::{IssuerRequest, load_identities};
use elicence::licence::{FaceField, Licence, LicenceStatus};
use elicence::produce::{Identities, Producer};
use elicence::record::SourcePos;
use elicence::render::ofd::render_ofd_face;
use elicence::render::{Layout, PdfRenderer, SealMeta, qr_payload, render_xml};
use elicence::seal::ofd::seal_ofd;
use elicence::sign::{PdfSignOptions, RsaSigner, Signer, sign_pdf, sign_rendered_pdf};

#[path = "common/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::ThreadCpuTime;

const ID: &str = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";

fn licence() -> Licence {
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    let f = |key: &'static str, label: &'static str, value: &str| FaceField {
        key,
        label,
        value: value.into(),
    };
    Licence {
        type_name: "食品经营许可证".into(),
        type_code: "11100000MB0327169X001".into(),
        printed_no: "JY12201040001234".into(),
        issuer_name: "长春市朝阳区市场监督管理局".into(),
        issuer_code: "11220104MB1234567X".into(),
        holder_name: "长春市王䶮餐饮管理有限公司".into(),
        holder_code: "91220104MA0Y4K2B3C".into(),
        holder_code_type: "001".into(),
        issue_date: d(2017, 4, 24),
        valid_from: d(2017, 4, 24),
        valid_to: Some(d(2022, 4, 23)),
        region_code: "220104".into(),
        status: LicenceStatus::Valid,
        fields: vec![
            f("licence_no", "许可证编号", "JY12201040001234"),
            f("holder_name", "经营者名称", "长春市王䶮餐饮管理有限公司"),
            f("holder_code", "统一社会信用代码", "91220104MA0Y4K2B3C"),
            f("legal_rep", "法定代表人", "王䶮"),
            f("legal_rep_id", "法定代表人身份证号", "11010519491231002X"),
            f("domicile", "住所", "吉林省长春市朝阳区人民大街8888号长春国际大厦A座1201室"),
            f("premises", "经营场所", "吉林省长春市朝阳区西安大路1234号一层至二层"),
            f("business_type", "主体业态", "餐饮服务经营者（中型餐馆）"),
            f(
                "business_scope",
                "经营项目",
                "预包装食品销售（含冷藏冷冻食品），散装食品销售（含冷藏冷冻食品），特殊食品销售（保健食品、特殊医学用途配方食品、婴幼儿配方乳粉、其他婴幼儿配方食品），热食类食品制售，冷食类食品制售，生食类食品制售，糕点类食品制售（含裱花蛋糕），自制饮品制售（不含自酿酒），单位食堂（含学校食堂、托幼机构食堂、养老机构食堂、建筑工地食堂），网络经营，中央厨房，集体用餐配送单位，其他类食品制售。",
            ),
            f("issuer_name", "发证机关", "长春市朝阳区市场监督管理局"),
            f("signer", "签发人", "李明"),
            f("issue_date", "发证日期", "2017-04-24"),
            f("valid_to", "有效期至", "2022-04-23"),
            f("supervisor", "日常监督管理机构", "长春市朝阳区市场监督管理局红旗街市场监督管理所"),
        ],
        pos: SourcePos { file: "bench.csv".into(), sheet: None, row: 2 },
    }
}

fn bench_render(c: &mut Criterion<ThreadCpuTime>) {
    let font = match FaceFont::load_default() {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("render bench skipped: {e}");
            return;
        }
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/layouts");
    let layouts = match Layout::load_dir(&dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("render bench skipped: {e:?}");
            return;
        }
    };
    let renderer = match PdfRenderer::new(font, layouts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("render bench skipped: {e}");
            return;
        }
    };
    let licence = licence();
    let created = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).single().unwrap_or_default();
    let seal = SealMeta {
        signer_name: "李明".into(),
        sign_time: created,
        seal_name: "长春市朝阳区市场监督管理局电子印章".into(),
    };
    let payload =
        qr_payload(ID, "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b");

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pdf_food_permit", |b| {
        b.iter(|| renderer.render(black_box(&licence), ID, &payload, created))
    });
    group.bench_function("xml_food_permit", |b| {
        b.iter(|| render_xml(black_box(&licence), ID, &seal))
    });
    group.finish();
}

/// Identify + render XML + render PDF + sign both, as `elicence render` does per licence.
fn bench_render_and_sign(c: &mut Criterion<ThreadCpuTime>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Inside the validity of the committed test certificate (2026-11-26 … 2036-11-23).
    let at = Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).single().unwrap_or_default();
    let signer = match RsaSigner::load(&root.join("fixtures/keys"), None, at) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("render_and_sign bench skipped: {e}");
            return;
        }
    };
    let layout = root.join("pipelines/layouts/food-business-permit.toml");
    let producer = match Producer::new(&[layout.as_path()], Identities::single(signer.clone()), at)
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("render_and_sign bench skipped: {e}");
            return;
        }
    };
    let licence = licence();
    let id = LicenceId::for_printed_number(
        &licence.type_code,
        &licence.issuer_code,
        &licence.printed_no,
        1,
    )
    .expect("the bench licence has a valid identifier");
    let mut group = c.benchmark_group("produce");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_and_sign", |b| {
        b.iter(|| producer.produce(black_box(&licence), &id).map(|a| a.pdf.len() + a.xml.len()))
    });
    group.finish();

    // PAdES signing of the rendered face alone: the direct path `produce` uses, and the general
    // lopdf path (parse + incremental update) that gives the same bytes.
    let payload =
        qr_payload(ID, "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b");
    let Ok(rendered) = producer.renderer().render_signable(&licence, ID, &payload, at) else {
        eprintln!("sign_rendered bench skipped: render failed");
        return;
    };
    let opts = PdfSignOptions {
        reason: "食品经营许可证 电子证照签发".into(),
        location: "220104".into(),
        name: "长春市朝阳区市场监督管理局".into(),
        tsa: None,
    };
    let mut group = c.benchmark_group("sign_face");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rendered_direct", |b| {
        b.iter_batched(
            || rendered.clone(),
            |r| sign_rendered_pdf(r, signer.as_ref(), at, &opts).map(|v| v.len()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("lopdf_reparse", |b| {
        b.iter(|| {
            sign_pdf(black_box(rendered.bytes()), signer.as_ref(), at, &opts).map(|v| v.len())
        })
    });
    // The RSA-2048 operation alone, in thread CPU time (compare `openssl speed rsa2048`, which
    // also reports CPU time).
    group.bench_function("rsa2048_only", |b| {
        b.iter(|| signer.sign(black_box(b"signed attributes")).map(|v| v.len()))
    });
    group.finish();
}

/// The OFD's share of `produce` (issue 13 allows 0.5 ms per licence): the licence of an issuer
/// with its own SM2 signer and seal in `fixtures/keys`, produced with and without the OFD, and
/// the OFD's two steps alone (the page package from a laid-out face; the seal and the zip).
fn bench_ofd(c: &mut Criterion<ThreadCpuTime>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let at = Utc.with_ymd_and_hms(2027, 1, 2, 3, 4, 5).single().unwrap_or_default();
    let mut licence = licence();
    licence.issuer_code = "11220104MB1875524M".into();
    let request = IssuerRequest {
        code: licence.issuer_code.clone(),
        name: licence.issuer_name.clone(),
        allow_default: false,
    };
    let keys = root.join("fixtures/keys");
    let load = |ofd: bool| load_identities(&keys, None, at, std::slice::from_ref(&request), ofd);
    let (Ok(with_ofd), Ok(without)) = (load(true), load(false)) else {
        eprintln!("ofd bench skipped: the fixture key set did not load");
        return;
    };
    let layout = root.join("pipelines/layouts/food-business-permit.toml");
    let producer = |ids| Producer::new(&[layout.as_path()], ids, at);
    let (Ok(with_ofd), Ok(without)) = (producer(with_ofd), producer(without)) else {
        eprintln!("ofd bench skipped: no face font");
        return;
    };
    let Ok(id) = LicenceId::for_printed_number(
        &licence.type_code,
        &licence.issuer_code,
        &licence.printed_no,
        1,
    ) else {
        eprintln!("ofd bench skipped: identifier");
        return;
    };
    let mut group = c.benchmark_group("ofd");
    group.throughput(Throughput::Elements(1));
    group.bench_function("produce_pdf_xml", |b| {
        b.iter(|| without.produce(black_box(&licence), &id).map(|a| a.pdf.len()))
    });
    group.bench_function("produce_pdf_xml_ofd", |b| {
        b.iter(|| with_ofd.produce(black_box(&licence), &id).map(|a| a.ofd.map(|o| o.len())))
    });
    let identifier = id.to_string();
    let payload =
        qr_payload(&identifier, "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b");
    let renderer = with_ofd.renderer();
    let (Ok(face), Some(identity)) = (
        renderer.lay_out(&licence, &identifier, &payload),
        with_ofd.identities().for_issuer(&licence.issuer_code),
    ) else {
        eprintln!("ofd bench skipped: face");
        return;
    };
    let Some(sealing) = identity.ofd.as_ref() else {
        eprintln!("ofd bench skipped: no seal");
        return;
    };
    group.bench_function("package", |b| {
        b.iter(|| render_ofd_face(renderer, black_box(&face), &licence, &identifier, at))
    });
    let Ok(package) = render_ofd_face(renderer, &face, &licence, &identifier, at) else {
        eprintln!("ofd bench skipped: package");
        return;
    };
    group.bench_function("seal_and_zip", |b| {
        b.iter(|| sealing.seal_package(black_box(&package), at, None))
    });
    // The general path (the whole `TBS_Sign` encoded and hashed per document), same bytes.
    group.bench_function("seal_and_zip_general", |b| {
        b.iter(|| seal_ofd(black_box(&package), sealing.signer().as_ref(), sealing.seal(), at))
    });
    group.bench_function("zip_only", |b| b.iter(|| black_box(&package).to_zip()));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = bench_render, bench_render_and_sign, bench_ofd
}
criterion_main!(benches);
