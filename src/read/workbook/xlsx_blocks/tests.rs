//! Differential tests: the block reader against calamine's cell reader (the reference), on
//! every bundled xlsx fixture, generated exports of every pipeline, and workbooks built here
//! for what those lack. Same rows, row numbers, blank-row gaps, cells and errors, read in line
//! and as units, at block sizes from one row a block up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::comparable;
use crate::read::workbook::{Kind, WorkbookRows, XlsxReader};
use crate::read::{RowSource, SourceSpec, Unit};

/// What a reader gave: the open error, or every row and the final error, and whether the
/// block reader was used.
#[derive(Debug, PartialEq)]
struct Read {
    rows: Result<super::Comparable, String>,
    blocks: bool,
}

fn read(path: &Path, reader: XlsxReader, block_bytes: u64, units: bool) -> Read {
    let file: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let spec = SourceSpec::default();
    let opened = WorkbookRows::open_with(path, file, Kind::Xlsx, &spec, reader, block_bytes);
    let mut rows = match opened {
        Ok((rows, _)) => rows,
        Err(e) => return Read { rows: Err(e.to_string()), blocks: false },
    };
    let mut items = Vec::new();
    if units {
        while let Some(unit) = rows.next_unit() {
            match unit {
                Ok(Unit::Rows(raw)) => items.extend(raw),
                Ok(Unit::Xlsx(block)) => {
                    let (raw, fatal) = block.parse();
                    items.extend(raw.into_iter().map(Ok));
                    items.extend(fatal.map(Err));
                }
                Ok(Unit::Csv(_)) => panic!("a CSV unit from a workbook"),
                Err(fatal) => items.push(Err(fatal)),
            }
        }
        // After a fatal error the consumer stops: what follows is not compared.
        if let Some(at) = items.iter().position(Result::is_err) {
            items.truncate(at + 1);
        }
    } else {
        while let Some(item) = rows.next_row() {
            items.push(item);
        }
    }
    Read { rows: Ok(comparable(items)), blocks: rows.blocks.is_some() }
}

/// Compares the block reader with calamine on `path`; returns whether blocks were used.
fn assert_same(path: &Path) -> bool {
    let reference = read(path, XlsxReader::Calamine, super::BLOCK_BYTES, false);
    assert!(!reference.blocks);
    let mut used = false;
    for block_bytes in [1, 200, 4096, super::BLOCK_BYTES] {
        for units in [false, true] {
            let ours = read(path, XlsxReader::Blocks, block_bytes, units);
            if let (Ok(a), Ok(b)) = (&ours.rows, &reference.rows)
                && let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))
            {
                panic!(
                    "{}: block reader ({block_bytes} bytes, units {units}) differs at item {i}:\n ours {:?}\n calamine {:?}",
                    path.display(),
                    a.get(i),
                    b.get(i)
                );
            }
            assert_eq!(
                ours.rows,
                reference.rows,
                "{}: block reader ({block_bytes} bytes, units {units}) differs",
                path.display()
            );
            used |= ours.blocks;
        }
    }
    used
}

fn xlsx_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            xlsx_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "xlsx") {
            found.push(path);
        }
    }
}

#[test]
fn every_xlsx_fixture_reads_as_calamine_reads_it() {
    let mut files = Vec::new();
    xlsx_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"), &mut files);
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let mut blocked = Vec::new();
    for path in &files {
        if assert_same(path) {
            blocked.push(path.file_name());
        }
    }
    // The readable fixtures go through blocks (the hostile ones are refused before either).
    assert!(blocked.len() >= 2, "{blocked:?}");
}

#[test]
fn generated_exports_of_every_pipeline_read_as_calamine_reads_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut pipelines: Vec<PathBuf> = std::fs::read_dir(root.join("pipelines"))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    pipelines.sort();
    assert!(!pipelines.is_empty());
    for (i, pipeline) in pipelines.iter().enumerate() {
        let plan = crate::pipeline::load(pipeline).unwrap_or_else(|e| panic!("{e}"));
        for (rows, seed) in [(7, 1), (300, 2), (1500, 3)] {
            let out = dir.path().join(format!("gen-{i}-{rows}.xlsx"));
            let opts = crate::r#gen::GenOptions {
                rows,
                format: crate::r#gen::OutputFormat::Xlsx,
                defect_rate: 0.2,
                seed,
            };
            crate::r#gen::generate(&plan, &opts, &out).unwrap_or_else(|e| panic!("{e}"));
            assert!(assert_same(&out), "{}: blocks not used", out.display());
        }
    }
}

/// A one-sheet workbook: `sheet_data` is the inside of `<sheetData>`; `shared` the `<si>`
/// elements; `styles` the inside of `<styleSheet>`.
fn workbook(
    dir: &Path,
    name: &str,
    date1904: bool,
    styles: &str,
    shared: &str,
    sheet_data: &str,
) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let ns = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships""#;
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned(),
        ),
        (
            "xl/workbook.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><workbook {ns}><workbookPr date1904="{}"/><sheets><sheet name="表1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
                u8::from(date1904)
            ),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/><Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#.to_owned(),
        ),
        ("xl/styles.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><styleSheet {ns}>{styles}</styleSheet>"#)),
        ("xl/sharedStrings.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><sst {ns}>{shared}</sst>"#)),
        (
            "xl/worksheets/sheet1.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet {ns}><dimension ref="A1:Z40"/><sheetData>{sheet_data}</sheetData></worksheet>"#
            ),
        ),
    ];
    for (name, body) in parts {
        zip.start_file(name, options).unwrap_or_else(|e| panic!("{e}"));
        zip.write_all(body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    zip.finish().unwrap_or_else(|e| panic!("{e}"));
    path
}

/// Styles: 0 General, 1 built-in date (14), 2 custom date, 3 custom duration `[h]:mm:ss`,
/// 4 custom number with a quoted `d`, 5 built-in East Asian date (31), 6 custom id 14 that is
/// not a date, 7 an xf without `numFmtId`.
const STYLES: &str = r#"<numFmts count="4"><numFmt numFmtId="164" formatCode="yyyy&quot;年&quot;m&quot;月&quot;d&quot;日&quot;"/><numFmt numFmtId="165" formatCode="[h]:mm:ss"/><numFmt numFmtId="166" formatCode="0.00&quot; d&quot;"/><numFmt numFmtId="14" formatCode="0.000"/></numFmts><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellXfs count="8"><xf numFmtId="0" fontId="0"/><xf numFmtId="14" fontId="0" applyNumberFormat="1"/><xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/><xf numFmtId="31"/><xf numFmtId="14"><alignment horizontal="left"/></xf><xf fontId="0"/></cellXfs>"#;

const SHARED: &str = r#"<si><t>纯文本</t></si><si><r><rPr><b/></rPr><t>富</t></r><r><t xml:space="preserve"> 文本 </t></r><rPh sb="0" eb="1"><t>フ</t></rPh></si><si><t>  trimmed&amp;escaped_x000D_ </t></si><si/><si><t xml:space="preserve">  kept  </t></si>"#;

/// Rows 1–12 with every kind of cell, gaps and sparse columns, then rows 20–39 alike.
fn varied_rows() -> String {
    let mut xml = String::new();
    for base in [0u32, 19] {
        let r = |n: u32| base + n;
        xml += &format!(
            r#"<row r="{a}"><c r="A{a}" t="s"><v>0</v></c><c r="B{a}" t="s"><v>1</v></c><c r="C{a}" t="s"><v>2</v></c><c r="D{a}" t="s"><v>3</v></c><c r="E{a}" t="s"><v>4</v></c></row>"#,
            a = r(1)
        );
        xml += &format!(
            r#"<row r="{a}"><c r="A{a}" s="1"><v>42849</v></c><c r="B{a}" s="2"><v>42849.5</v></c><c r="C{a}" s="3"><v>1.25</v></c><c r="D{a}" s="4"><v>3</v></c><c r="E{a}" s="5"><v>40000</v></c><c r="F{a}" s="6"><v>40000</v></c><c r="G{a}" s="7"><v>7</v></c><c r="H{a}" s="99"><v>8</v></c><c r="I{a}" s="x"><v>9</v></c></row>"#,
            a = r(2)
        );
        xml += &format!(
            r#"<row r="{a}"><c r="A{a}" t="b"><v>1</v></c><c r="B{a}" t="b"><v>0</v></c><c r="C{a}" t="b"><v> TRUE </v></c><c r="D{a}" t="e"><v>#N/A</v></c><c r="E{a}" t="e"><v>#DIV/0!</v></c><c r="F{a}" t="d"><v>2017-04-24T00:00:00</v></c></row>"#,
            a = r(3)
        );
        // Row 4 is missing; row 5 is sparse, with empty and style-only cells.
        xml += &format!(
            r#"<row r="{a}"><c r="B{a}" s="1"/><c r="D{a}" t="inlineStr"><is><t>内联</t></is></c><c r="Z{a}" t="inlineStr"><is><r><t>a</t></r><r><t xml:space="preserve"> b </t></r></is></c></row>"#,
            a = r(5)
        );
        xml += &format!(
            r#"<row r="{a}"><c r="A{a}" t="str"><f>A1&amp;B1</f><v>x &lt; y_x000D__xD83D__xDCF7_</v></c><c r="B{a}" t="str"><v></v></c><c r="C{a}"><v>not a number</v></c><c r="D{a}"><v>-1.5E3</v></c><c r="E{a}" t="n"><v></v></c><c r="F{a}" t="inlineStr"><v>ignored</v><is><t><![CDATA[<cdata>]]></t></is></c></row>"#,
            a = r(6)
        );
        // A row of empty cells only (blank), a row element without cells, cells without `r`.
        xml += &format!(r#"<row r="{a}"><c r="A{a}"/><c r="C{a}" s="2"/></row>"#, a = r(7));
        xml += &format!(r#"<row r="{a}"/>"#, a = r(8));
        xml += &format!(
            r#"<row r="{a}"><c><v>1</v></c><c t="s"><v>0</v></c><!-- a comment </row> --><c r="E{a}"><v>5</v></c><c><v>6</v></c></row>"#,
            a = r(9)
        );
        xml += &format!(
            r#"<row r="{a}" spans="1:3"><c r="A{a}" t="s"><v>4</v></c><c r="C{a}"><v>3.0000000000000004</v></c></row>"#,
            a = r(12)
        );
    }
    xml
}

#[test]
fn built_workbooks_read_as_calamine_reads_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let rows = varied_rows();
    for (name, date1904) in [("varied.xlsx", false), ("varied-1904.xlsx", true)] {
        let path = workbook(d, name, date1904, STYLES, SHARED, &rows);
        assert!(assert_same(&path), "{name}: blocks not used");
    }
    // Values calamine refuses: the error and the rows before it are the same, wherever the
    // block boundaries fall (the row before a failing cell is never emitted).
    let bad_cells = [
        r#"<c r="B30" t="b"><v>maybe</v></c>"#,
        r#"<c r="A30" t="e"><v>#WHAT?</v></c>"#,
        r#"<c r="A30" t="s"><v>99</v></c>"#,
        r#"<c r="A30" t="n"><v>1,5</v></c>"#,
        r#"<c r="A30" t="zz"><v>1</v></c>"#,
        r#"<c r="A30"><x/></c>"#,
        r#"<c r="A30" t="str"><v>&bogus;</v></c>"#,
        r#"<c r="A30" s="1" t="s" bad><v>0</v></c>"#,
    ];
    for (i, bad) in bad_cells.iter().enumerate() {
        let data =
            format!("{rows}<row r=\"30\">{bad}</row><row r=\"31\"><c r=\"A31\"><v>1</v></c></row>");
        let path = workbook(d, &format!("bad-{i}.xlsx"), false, STYLES, SHARED, &data);
        assert_same(&path);
    }
    // A row attribute calamine cannot read, between two good rows.
    let data = format!("{rows}<row x r=\"30\"><c r=\"A30\"><v>1</v></c></row>");
    assert_same(&workbook(d, "bad-row-attribute.xlsx", false, STYLES, SHARED, &data));
    // Markup the block reader does not cut (tags that do not nest, a processing instruction):
    // calamine reads it, with the same result.
    for (i, odd) in [
        r#"<row r="30"><c r="A30"><v>1</c></v></row>"#,
        r#"<row r="30"><?pi x?><c r="A30"><v>1</v></c></row>"#,
        r#"<row r="30"><c r="A30"><is><row r="31"/></is></c></row>"#,
    ]
    .iter()
    .enumerate()
    {
        let data = format!("{rows}{odd}<row r=\"32\"><c r=\"A32\"><v>2</v></c></row>");
        let path = workbook(d, &format!("odd-{i}.xlsx"), false, STYLES, SHARED, &data);
        assert!(!assert_same(&path), "odd-{i}: cut although it must not be");
    }
    // Cells after `</row>` outside any row, in the row before (they continue it).
    let data = r#"<row r="1"><c r="A1"><v>1</v></c></row><c r="B1"><v>2</v></c><row r="2"><c r="A2"><v>3</v></c></row><c><v>4</v></c><row r="3"><c r="A3"><v>5</v></c></row>"#;
    assert_same(&workbook(d, "outside-rows.xlsx", false, STYLES, SHARED, data));
    // No styles part, no shared strings entries.
    let data = r#"<row r="2"><c r="A2" s="3"><v>1</v></c></row>"#;
    assert_same(&workbook(d, "no-styles.xlsx", false, "", "", data));
}
