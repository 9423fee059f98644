//! What the render stage produces, checked with tools we did not write: `pdftotext` reads the
//! Chinese text back out of the PDF, lopdf loads it, python's XML parser (or `xmllint`) reads the
//! XML. Also: size budget, byte-determinism, every shipped layout renders.
//!
//! Needs a CJK font (`apt-get install fonts-noto-cjk`) and poppler-utils (`pdftotext`).
//! Helpers that regenerate committed artefacts are `#[ignore]`d:
//! `cargo test --test render_output -- --ignored generate_seal_png write_docs_sample`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use elicence::font::FaceFont;
use elicence::licence::{FaceField, Licence, LicenceStatus, intern};
use elicence::record::SourcePos;
use elicence::render::{Layout, PdfRenderer, RenderError, SealMeta, qr_payload, render_xml};
use sha2::{Digest, Sha256};

const ID: &str = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";
const PDF_BUDGET: usize = 40 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn font() -> Arc<FaceFont> {
    static FONT: OnceLock<Arc<FaceFont>> = OnceLock::new();
    FONT.get_or_init(|| {
        Arc::new(
            FaceFont::load_default().unwrap_or_else(|e| panic!("render tests need a font: {e}")),
        )
    })
    .clone()
}

fn layouts() -> Vec<Layout> {
    Layout::load_dir(&root().join("pipelines/layouts")).unwrap_or_else(|e| panic!("{e:?}"))
}

fn renderer() -> &'static PdfRenderer {
    static R: OnceLock<PdfRenderer> = OnceLock::new();
    R.get_or_init(|| PdfRenderer::new(font(), layouts()).unwrap_or_else(|e| panic!("{e}")))
}

fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap()
}

fn field(key: &str, label: &str, value: &str) -> FaceField {
    FaceField { key: intern(key), label: intern(label), value: value.into() }
}

/// 200 characters of 经营项目, as long as the paper permit allows.
const SCOPE_200: &str = "预包装食品销售（含冷藏冷冻食品），散装食品销售（含冷藏冷冻食品），特殊食品销售（保健食品、特殊医学用途配方食品、婴幼儿配方乳粉、其他婴幼儿配方食品），热食类食品制售，冷食类食品制售，生食类食品制售，糕点类食品制售（含裱花蛋糕），自制饮品制售（不含自酿酒），单位食堂（含学校食堂、托幼机构食堂、养老机构食堂、建筑工地食堂），网络经营，中央厨房，集体用餐配送单位，其他类食品制售。";

fn food_licence() -> Licence {
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
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
            field("licence_no", "许可证编号", "JY12201040001234"),
            field("holder_name", "经营者名称", "长春市王䶮餐饮管理有限公司"),
            field("holder_code", "统一社会信用代码", "91220104MA0Y4K2B3C"),
            field("legal_rep", "法定代表人", "王䶮"),
            field("legal_rep_id", "法定代表人身份证号", "11010519491231002X"),
            field("domicile", "住所", "吉林省长春市朝阳区人民大街8888号长春国际大厦A座1201室"),
            field("premises", "经营场所", "吉林省长春市朝阳区西安大路1234号一层至二层"),
            field("business_type", "主体业态", "餐饮服务经营者（中型餐馆）"),
            field("business_scope", "经营项目", SCOPE_200),
            field("issuer_name", "发证机关", "长春市朝阳区市场监督管理局"),
            field("signer", "签发人", "李明"),
            field("issue_date", "发证日期", "2017-04-24"),
            field("valid_to", "有效期至", "2022-04-23"),
            field(
                "supervisor",
                "日常监督管理机构",
                "长春市朝阳区市场监督管理局红旗街市场监督管理所",
            ),
        ],
        pos: SourcePos { file: "fixtures/food.csv".into(), sheet: None, row: 2 },
    }
}

fn seal_meta() -> SealMeta {
    SealMeta {
        signer_name: "李明".into(),
        sign_time: created(),
        seal_name: "长春市朝阳区市场监督管理局电子印章".into(),
    }
}

fn payload_for(licence: &Licence) -> String {
    let xml = render_xml(licence, ID, &seal_meta());
    qr_payload(ID, &hex::encode(Sha256::digest(xml.as_bytes())))
}

fn render(licence: &Licence) -> Vec<u8> {
    renderer()
        .render(licence, ID, &payload_for(licence), created())
        .unwrap_or_else(|e| panic!("{}: {e}", licence.type_name))
}

fn pdftotext(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("face.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is needed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// pdftotext keeps each line but may insert spaces or breaks; compare without whitespace.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn food_permit_text_comes_back_out_of_the_pdf() {
    let licence = food_licence();
    let pdf = render(&licence);
    let text = squash(&pdftotext(&pdf));
    for expected in [
        "食品经营许可证",
        "许可证编号",
        "JY12201040001234",
        "经营者名称",
        "长春市王䶮餐饮管理有限公司",
        "社会信用代码",
        "91220104MA0Y4K2B3C",
        "法定代表人（负责人）",
        "经营项目",
        "日常监督管理机构",
        "签发人",
        "有效期至",
        "2022年4月23日",
        "长春市朝阳区市场监督管理局",
        "2017年4月24日",
        "证照标识",
        ID,
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    // The 200-character 经营项目 is all there (wrapped, possibly at a smaller size).
    assert!(text.contains(&squash(SCOPE_200)), "{text}");
    // Personal data stays off the face.
    assert!(!text.contains("11010519491231002X"));
}

#[test]
fn food_permit_is_small_single_page_and_plain() {
    let pdf = render(&food_licence());
    assert!(pdf.len() <= PDF_BUDGET, "{} bytes", pdf.len());
    assert!(pdf.starts_with(b"%PDF-1.7"));
    let doc = lopdf::Document::load_mem(&pdf).unwrap();
    assert_eq!(doc.get_pages().len(), 1);
    // Catalog and page are plain objects (no object streams) for the signer's incremental update.
    assert!(!pdf.windows(7).any(|w| w == b"/ObjStm"));
    assert!(!pdf.windows(5).any(|w| w == b"/XRef"));
    let info = doc
        .trailer
        .get(b"Info")
        .and_then(|o| o.as_reference())
        .and_then(|r| doc.get_dictionary(r))
        .unwrap();
    assert_eq!(info.get(b"Producer").unwrap().as_str().unwrap(), b"elicence");
    assert_eq!(info.get(b"CreationDate").unwrap().as_str().unwrap(), b"D:20240506070809Z");
    let title = info.get(b"Title").unwrap().as_str().unwrap();
    let utf16: Vec<u16> =
        title.get(2..).unwrap().chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    assert_eq!(String::from_utf16(&utf16).unwrap(), "食品经营许可证 JY12201040001234");
}

#[test]
fn same_input_gives_the_same_bytes() {
    let licence = food_licence();
    let a = render(&licence);
    let b = render(&licence);
    assert!(a == b, "two renders differ");
    // A different creation time changes the file (and its /ID).
    let c = renderer()
        .render(&licence, ID, &payload_for(&licence), created() + chrono::Duration::seconds(1))
        .unwrap();
    assert_ne!(a, c);
    // A fresh renderer (new font parse, new layout load) gives the same bytes too.
    let other = PdfRenderer::new(font(), layouts()).unwrap();
    let d = other.render(&licence, ID, &payload_for(&licence), created()).unwrap();
    assert!(a == d, "renderers differ");
}

#[test]
fn open_ended_validity_prints_long_term() {
    let mut licence = food_licence();
    licence.valid_to = None;
    let text = squash(&pdftotext(&render(&licence)));
    assert!(text.contains("有效期至长期"), "{text}");
}

#[test]
fn value_too_long_for_its_box_is_an_overflow_error() {
    let mut licence = food_licence();
    for f in &mut licence.fields {
        if f.key == "business_scope" {
            f.value = SCOPE_200.repeat(3);
        }
    }
    let err = renderer().render(&licence, ID, &payload_for(&licence), created()).unwrap_err();
    assert!(
        matches!(&err, RenderError::Overflow { field } if field == "business_scope"),
        "{err:?}"
    );
}

#[test]
fn type_without_layout_uses_the_default_layout() {
    let mut licence = food_licence();
    licence.type_name = "某某登记证".into();
    let text = squash(&pdftotext(&render(&licence)));
    assert!(text.contains("某某登记证"));
    assert!(text.contains("长春市王䶮餐饮管理有限公司"));
    assert!(!text.contains("11010519491231002X"));
}

/// Catalog fields per type, as proposed to the catalog (keys the layouts use).
fn dummy_fields(type_name: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    let common_org = vec![
        ("licence_no", "许可证编号", "ZZ2201040001234"),
        ("holder_name", "名称", "吉林省长白山建设工程集团有限公司"),
        ("holder_code", "统一社会信用代码", "91220101MA0Y4K2B3C"),
        ("issuer_name", "发证机关", "吉林省住房和城乡建设厅"),
        ("issue_date", "发证日期", "2020-01-02"),
        ("valid_from", "有效期自", "2020-01-02"),
        ("valid_to", "有效期至", "2023-01-01"),
    ];
    let person = vec![
        ("licence_no", "证书编号", "吉A042020000123"),
        ("holder_name", "姓名", "王䶮"),
        ("holder_code", "身份证号", "11010519491231002X"),
        ("gender", "性别", "男"),
        ("birth_date", "出生日期", "1949-12-31"),
        ("issuer_name", "发证机关", "吉林省住房和城乡建设厅"),
        ("issue_date", "发证日期", "2020-01-02"),
        ("valid_from", "有效期自", "2020-01-02"),
        ("valid_to", "有效期至", "2026-01-01"),
    ];
    let mut f = match type_name {
        "建筑施工特种作业人员操作资格证书" | "医师执业证书" => person,
        _ => common_org,
    };
    let extra: Vec<(&str, &str, &str)> = match type_name {
        "营业执照" => vec![
            ("entity_type", "类型", "有限责任公司（自然人投资或控股）"),
            ("legal_rep", "法定代表人", "王䶮"),
            ("registered_capital", "注册资本", "伍佰万元整"),
            ("established", "成立日期", "2010-01-05"),
            ("domicile", "住所", "吉林省长春市南关区人民大街1号"),
            (
                "business_scope",
                "经营范围",
                "建筑工程施工；市政公用工程施工；机电工程施工；建筑装饰装修工程施工；钢结构工程施工；园林绿化工程施工；建筑材料销售（依法须经批准的项目，经相关部门批准后方可开展经营活动）。",
            ),
        ],
        "药品经营许可证" => vec![
            ("legal_rep", "法定代表人", "王䶮"),
            ("principal", "企业负责人", "李四"),
            ("quality_manager", "质量负责人", "赵五"),
            ("domicile", "注册地址", "吉林省长春市南关区人民大街1号"),
            ("warehouse_address", "仓库地址", "吉林省长春市绿园区青年路99号3号库"),
            ("business_mode", "经营方式", "批发"),
            (
                "business_scope",
                "经营范围",
                "中药饮片、中成药、化学药制剂、抗生素制剂、生化药品、生物制品（除疫苗）",
            ),
            ("supervisor", "日常监督管理机构", "吉林省药品监督管理局"),
        ],
        "建筑施工企业安全生产许可证" => vec![
            ("principal", "主要负责人", "王䶮"),
            ("domicile", "单位地址", "吉林省长春市南关区人民大街1号"),
            ("economic_type", "经济类型", "有限责任公司"),
            ("permit_scope", "许可范围", "建筑施工"),
        ],
        "建筑施工特种作业人员操作资格证书" => vec![
            ("operation_category", "操作类别", "建筑起重机械司机（塔式起重机）"),
            ("initial_issue_date", "初次领证日期", "2014-03-01"),
        ],
        "医师执业证书" => vec![
            ("physician_level", "医师级别", "执业医师"),
            ("practice_category", "执业类别", "临床"),
            ("practice_scope", "执业范围", "内科专业；急救医学专业"),
            ("practice_place", "执业地点", "吉林省"),
            ("practice_institution", "主要执业机构", "吉林大学第一医院"),
        ],
        "公共场所卫生许可证" => vec![
            ("legal_rep", "法定代表人", "王䶮"),
            ("premises", "地址", "吉林省长春市朝阳区西安大路1234号"),
            ("licensed_items", "许可项目", "住宿场所（宾馆）、沐浴场所、美容美发场所"),
        ],
        "道路运输经营许可证" => vec![
            ("legal_rep", "负责人", "王䶮"),
            ("domicile", "地址", "吉林省长春市朝阳区西安大路1234号"),
            ("economic_type", "经济类型", "有限责任公司"),
            (
                "business_scope",
                "经营范围",
                "道路普通货物运输；货物专用运输（集装箱）；大型物件运输",
            ),
        ],
        _ => vec![],
    };
    f.extend(extra);
    f
}

fn dummy_licence(layout: &Layout) -> Licence {
    if layout.type_name == "食品经营许可证" {
        return food_licence();
    }
    // Every field of the shipped catalog type, with the sample value of `dummy_fields` where it
    // has one and a value of the right kind otherwise: the layout must fit the real catalog.
    let catalog = elicence::catalog::load_dir(&root().join("pipelines/catalog")).expect("catalog");
    let ty = catalog.get(&layout.type_name).expect("a catalog type per layout");
    let samples = dummy_fields(&layout.type_name);
    let fields: Vec<FaceField> = ty
        .fields
        .iter()
        .map(|f| {
            let value = match samples.iter().find(|(k, _, _)| *k == f.key) {
                Some((_, _, v)) => v.to_string(),
                None => match &f.kind {
                    elicence::catalog::FieldKind::Date => "2020-01-02".to_string(),
                    elicence::catalog::FieldKind::Enum(values) => values[0].clone(),
                    _ => format!("{}样例", f.label),
                },
            };
            field(&f.key, &f.label, &value)
        })
        .collect();
    let mut l = food_licence();
    l.type_name = layout.type_name.clone();
    l.printed_no = fields.iter().find(|f| f.key == "licence_no").map(|f| f.value.clone()).unwrap();
    l.holder_name = fields[1].value.clone();
    l.issuer_name = "吉林省住房和城乡建设厅".into();
    l.fields = fields;
    l
}

#[test]
fn every_shipped_layout_renders_with_its_fields() {
    let layouts = layouts();
    assert_eq!(layouts.len(), 8);
    for layout in &layouts {
        let licence = dummy_licence(layout);
        let keys: Vec<&str> = licence.fields.iter().map(|f| f.key).collect();
        layout.check(&keys).unwrap_or_else(|e| panic!("{}: {e:?}", layout.source.display()));
        let pdf = render(&licence);
        assert!(pdf.len() <= PDF_BUDGET, "{}: {} bytes", layout.type_name, pdf.len());
        let text = squash(&pdftotext(&pdf));
        assert!(text.contains(&squash(&layout.type_name)), "{text}");
        assert!(text.contains(&licence.printed_no), "{}: {text}", layout.type_name);
        assert!(text.contains(&licence.holder_name), "{text}");
        assert!(text.contains(ID), "{text}");
        for b in &layout.boxes {
            let value = licence.field(&b.field).unwrap();
            if !value.is_empty() && !value.contains('-') {
                assert!(text.contains(&squash(value)), "{}: {value} missing", layout.type_name);
            }
        }
    }
}

#[test]
fn layout_check_reports_keys_the_catalog_lacks() {
    let layout = Layout::load(&root().join("pipelines/layouts/food-business-permit.toml")).unwrap();
    let errs = layout.check(&["licence_no", "holder_name"]).unwrap_err();
    assert!(errs.iter().any(|e| matches!(
        e,
        RenderError::LayoutUnknownField { field, .. } if field == "business_scope"
    )));
}

fn xml_is_well_formed(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.xml");
    std::fs::write(&path, xml).unwrap();
    let xsd = root().join("docs/elicence.xsd");
    if let Ok(out) =
        Command::new("xmllint").args(["--noout", "--schema"]).arg(&xsd).arg(&path).output()
    {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); \
             r = d.documentElement; assert r.tagName == 'ELicence', r.tagName; \
             assert r.namespaceURI == 'urn:elicence:gbt36903:1'",
        ])
        .arg(&path)
        .output()
        .expect("xmllint or python3 is needed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn xml_e_licence_is_well_formed_and_valid() {
    let mut licence = food_licence();
    licence.fields.push(field("note", "备注\"引号\"\t", "A & B <c> \"d\"\r\n"));
    xml_is_well_formed(&render_xml(&licence, ID, &seal_meta()));
    licence.valid_to = None;
    xml_is_well_formed(&render_xml(&licence, ID, &seal_meta()));
}

/// Regenerates `fixtures/seals/seal.png` (160 px, about 100 dpi at 40 mm): a red ring with a five-pointed star, no text,
/// semi-transparent ink, anti-aliased by 4×4 supersampling.
#[test]
#[ignore]
fn generate_seal_png() {
    const N: u32 = 160;
    const SS: u32 = 4;
    let c = N as f32 / 2.0;
    let k_scale = N as f32 / 240.0;
    #[allow(non_snake_case)]
    let K = k_scale;
    let star: Vec<(f32, f32)> = (0..10)
        .map(|i| {
            let r = if i % 2 == 0 { 50.0 } else { 20.0 } * K;
            let a = std::f32::consts::PI * (i as f32) / 5.0 - std::f32::consts::FRAC_PI_2;
            (c + r * a.cos(), c + r * a.sin())
        })
        .collect();
    let inside_star = |x: f32, y: f32| {
        let mut inside = false;
        let mut j = star.len() - 1;
        for i in 0..star.len() {
            let (xi, yi) = star[i];
            let (xj, yj) = star[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    };
    let img = image::RgbaImage::from_fn(N, N, |px, py| {
        let mut hits = 0;
        for sy in 0..SS {
            for sx in 0..SS {
                let x = px as f32 + (sx as f32 + 0.5) / SS as f32;
                let y = py as f32 + (sy as f32 + 0.5) / SS as f32;
                let r = ((x - c).powi(2) + (y - c).powi(2)).sqrt();
                let ring = (104.0 * K..=116.0 * K).contains(&r);
                let inner_ring = (92.0 * K..=94.5 * K).contains(&r);
                if ring || inner_ring || inside_star(x, y) {
                    hits += 1;
                }
            }
        }
        let alpha = (hits as f32 / (SS * SS) as f32 * 200.0).round() as u8;
        image::Rgba([206, 22, 32, alpha])
    });
    let path = root().join("fixtures/seals/seal.png");
    img.save_with_format(&path, image::ImageFormat::Png).unwrap();
}

/// Regenerates `docs/licence-food-business-permit.png` (80 dpi) from a rendered sample.
#[test]
#[ignore]
fn write_docs_sample() {
    let pdf = render(&food_licence());
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = dir.path().join("sample.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let out_base = root().join("docs/licence-food-business-permit");
    let status = Command::new("pdftoppm")
        .args(["-png", "-r", "80", "-singlefile"])
        .arg(&pdf_path)
        .arg(&out_base)
        .status()
        .expect("pdftoppm (poppler-utils) is needed");
    assert!(status.success());
    if let Ok(dir) = std::env::var("ELICENCE_SAMPLE_DIR") {
        for layout in layouts() {
            let pdf = render(&dummy_licence(&layout));
            let name = layout.source.file_stem().and_then(|s| s.to_str()).unwrap().to_string();
            std::fs::write(Path::new(&dir).join(format!("{name}.pdf")), pdf).unwrap();
        }
    }
}

#[test]
#[ignore]
fn dump_sample_pdf() {
    std::fs::write("/tmp/render-sample.pdf", render(&food_licence())).unwrap();
}
