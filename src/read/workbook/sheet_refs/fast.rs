//! The reference scan without quick-xml's event reader, for the worksheets real exports hold.
//!
//! quick-xml copies every event into a buffer and checks it as UTF-8, one event at a time; on
//! a worksheet that is most of the scan's time, and the scan runs alone before any row is read
//! (it decides whether the workbook is refused). This scanner finds the same start and end tags
//! in the bytes themselves (`memchr` over text, tags read in place) and feeds them to the same
//! [`ScanState`] at the same byte offsets, so the rules are applied once, in one place.
//!
//! It only accepts what it can read exactly as quick-xml 0.42 (configured by
//! [`super::xml_reader`]) reads it, and gives up — [`scan`] returns `None`, the caller then
//! runs the event scan — at anything else: a byte-order mark or a first byte other than `<`,
//! an XML declaration whose encoding is not UTF-8, any other `<?` or `<!` (processing
//! instructions, comments, CDATA, DOCTYPE), bytes that are not UTF-8, a `&` not closed by `;`
//! before the next `&` or `<`, a tag with an empty name or a `>` inside quotes, an end tag
//! with white space in it or with no start tag open, and an entry that ends inside markup.
//! The differential tests below hold the two scans equal wherever this one answers.

use std::io::Read;

use memchr::{memchr, memchr2, memchr3};
use quick_xml::events::{BytesEnd, BytesStart};

use super::{Finding, ScanState, SheetIndex, Step};

/// Bytes read from the entry at a time.
const READ_BYTES: usize = 256 * 1024;

/// The scan of [`super::scan`] over `input`, or `None` where this scanner does not read the
/// entry as quick-xml would (see the module's documentation).
pub(crate) fn scan<R: Read>(input: R, block_bytes: u64) -> Option<Result<SheetIndex, Finding>> {
    scan_with(input, block_bytes, READ_BYTES)
}

/// [`scan`] reading `read_bytes` at a time (small sizes in the tests, to cut tags and
/// characters across reads).
fn scan_with<R: Read>(
    input: R,
    block_bytes: u64,
    read_bytes: usize,
) -> Option<Result<SheetIndex, Finding>> {
    let mut bytes = Bytes::new(input, read_bytes);
    let mut state = ScanState::new(block_bytes);
    // Elements open in the whole entry (quick-xml fails on an end tag with none open).
    let mut depth: u64 = 0;
    bytes.declaration()?;
    loop {
        // Text up to the next markup; `None` at the end of the entry, outside markup.
        let Some(open) = bytes.text_end()? else { return Some(Ok(state.index)) };
        bytes.pos = open;
        let step = match bytes.byte(open + 1)? {
            b'/' => {
                // quick-xml reads an end tag as a start tag, quotes and all.
                let close = bytes.tag_end(open)?;
                let name = bytes.str(open + 2, close)?;
                if name.is_empty() || name.bytes().any(is_xml_whitespace) || depth == 0 {
                    return None;
                }
                depth -= 1;
                let local = BytesEnd::new(name);
                let step = state.end(name, local.local_name().as_ref(), open, close + 1, true);
                bytes.pos = close + 1;
                step
            }
            b'!' | b'?' => return None,
            _ => {
                let close = bytes.tag_end(open)?;
                let content = bytes.str(open + 1, close)?;
                let (content, empty) = match content.strip_suffix('/') {
                    Some(content) => (content, true),
                    None => (content, false),
                };
                let name_len = content.bytes().position(is_xml_whitespace).unwrap_or(content.len());
                if name_len == 0 {
                    return None;
                }
                let after = close + 1;
                let e = BytesStart::from_content(content, name_len);
                let step = match state.start(&e, after) {
                    Ok(step) => step,
                    Err(finding) => return Some(Err(finding)),
                };
                let step = if empty {
                    // quick-xml (`expand_empty_elements`) gives a start and an end, both
                    // ending after the `/>`.
                    state.end(e.name().as_ref(), e.local_name().as_ref(), after, after, true)
                } else {
                    depth += 1;
                    step
                };
                bytes.pos = after;
                step
            }
        };
        if step == Step::Done {
            return Some(Ok(state.index));
        }
    }
}

/// XML white space as quick-xml counts it.
fn is_xml_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\r' | b'\n' | b'\t')
}

/// The entry's bytes, read `read_bytes` at a time into a buffer that drops what the scan has
/// passed. Positions are offsets from the entry's start.
struct Bytes<R> {
    input: R,
    read_bytes: usize,
    buf: Vec<u8>,
    /// Offset of `buf[0]`.
    base: u64,
    /// Where the scan is: nothing before it is looked at again.
    pos: u64,
    /// Bytes before this offset are known to be UTF-8.
    checked: u64,
    eof: bool,
}

impl<R: Read> Bytes<R> {
    fn new(input: R, read_bytes: usize) -> Bytes<R> {
        Bytes {
            input,
            read_bytes: read_bytes.max(1),
            buf: Vec::new(),
            base: 0,
            pos: 0,
            checked: 0,
            eof: false,
        }
    }

    fn index(&self, at: u64) -> Option<usize> {
        usize::try_from(at.checked_sub(self.base)?).ok()
    }

    /// Reads more of the entry, dropping the bytes before [`Bytes::pos`]. `Some(false)` at the
    /// end; `None` on a read error or bytes that are not UTF-8.
    fn more(&mut self) -> Option<bool> {
        if self.eof {
            return Some(false);
        }
        let drop = self.index(self.pos)?;
        if drop > 0 {
            self.buf.drain(..drop);
            self.base = self.pos;
        }
        let old = self.buf.len();
        self.buf.resize(old + self.read_bytes, 0);
        let n = loop {
            match self.input.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        };
        self.buf.truncate(old + n);
        self.eof = n == 0;
        // UTF-8 up to the last ASCII byte (no character runs across it); at the end, all.
        let from = self.index(self.checked)?;
        let upto = if self.eof {
            self.buf.len()
        } else {
            self.buf[from..].iter().rposition(u8::is_ascii).map_or(from, |i| from + i + 1)
        };
        simdutf8::basic::from_utf8(&self.buf[from..upto]).ok()?;
        self.checked = self.base + upto as u64;
        Some(!self.eof)
    }

    /// The offset of the first match of `search` in the bytes from `from` on, reading more as
    /// needed: `Some(None)` when the entry ends first, `None` on a read or UTF-8 failure.
    fn find_from(
        &mut self,
        from: u64,
        search: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<Option<u64>> {
        let mut from = from;
        loop {
            let (start, end) = (self.index(from)?, self.index(self.checked)?);
            if start < end
                && let Some(i) = search(&self.buf[start..end])
            {
                return Some(Some(from + i as u64));
            }
            from = from.max(self.checked);
            if !self.more()? {
                return Some(None);
            }
        }
    }

    /// Where the text from [`Bytes::pos`] ends at a `<`, checking its references: `Some(None)`
    /// at the end of the entry, `None` where quick-xml would fail. Text is passed as it is
    /// searched, so a long text is not held in the buffer.
    fn text_end(&mut self) -> Option<Option<u64>> {
        loop {
            let (start, end) = (self.index(self.pos)?, self.index(self.checked)?);
            let Some(i) = memchr2(b'<', b'&', self.buf.get(start..end)?) else {
                self.pos = self.checked;
                if !self.more()? {
                    return Some(None);
                }
                continue;
            };
            let at = self.pos + i as u64;
            if self.buf.get(start + i) == Some(&b'<') {
                return Some(Some(at));
            }
            // A reference: quick-xml fails on one that meets `&` or `<` before its `;`.
            self.pos = at;
            let end = self.find_from(at + 1, |b| memchr3(b';', b'&', b'<', b))??;
            if self.byte(end)? != b';' {
                return None;
            }
            self.pos = end + 1;
        }
    }

    /// The byte at `at`, reading more if needed; `None` past the end.
    fn byte(&mut self, at: u64) -> Option<u8> {
        while at >= self.checked {
            if !self.more()? {
                return None;
            }
        }
        self.buf.get(self.index(at)?).copied()
    }

    /// The checked bytes from `from` to `to` as text.
    fn str(&self, from: u64, to: u64) -> Option<&str> {
        let bytes = self.buf.get(self.index(from)?..self.index(to)?)?;
        std::str::from_utf8(bytes).ok()
    }

    /// The `>` that closes the start tag at `open`; `None` when a `>` stands inside quotes
    /// (where quick-xml's reading of the tag and this one could part) or the entry ends.
    fn tag_end(&mut self, open: u64) -> Option<u64> {
        let close = self.find_from(open + 1, |b| memchr(b'>', b))??;
        let inside = self.buf.get(self.index(open + 1)?..self.index(close)?)?;
        // Each quote must be closed before the `>`.
        let mut at = 0;
        while let Some(i) = memchr2(b'"', b'\'', &inside[at..]) {
            let quote = inside[at + i];
            at += i + 1;
            at += memchr(quote, &inside[at..])? + 1;
        }
        Some(close)
    }

    /// Passes an XML declaration at the start of the entry, if there is one; `None` when the
    /// scan must give up (a first byte other than `<`, a declaration of another encoding).
    fn declaration(&mut self) -> Option<()> {
        if self.byte(0)? != b'<' {
            return None;
        }
        if self.byte(1)? != b'?' {
            return Some(());
        }
        // The first `?>` after the `<?` (found a byte at a time: a two-byte pattern could
        // straddle two reads).
        let mut from = 2;
        let close = loop {
            let end = self.find_from(from, |b| memchr(b'>', b))??;
            if end == 2 {
                return None; // `<?>`, which quick-xml refuses
            }
            if self.byte(end - 1)? == b'?' {
                break end - 1;
            }
            from = end + 1;
        };
        let rest = self.str(2, close)?.strip_prefix("xml")?;
        if !rest.bytes().next().is_some_and(is_xml_whitespace) {
            return None;
        }
        if declared_encoding(rest).is_some_and(|e| !e.eq_ignore_ascii_case("utf-8")) {
            return None;
        }
        self.pos = close + 2;
        Some(())
    }
}

/// The value of `encoding="…"` in an XML declaration's attributes, if it has one.
fn declared_encoding(attributes: &str) -> Option<&str> {
    let at = attributes.find("encoding")?;
    let rest =
        attributes[at + "encoding".len()..].trim_start_matches(|c: char| c.is_ascii_whitespace());
    let rest = rest.strip_prefix('=')?.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    rest[1..].split(quote).next()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::scan_with;

    const NS: &str = r#"xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main""#;

    /// Holds the byte scanner equal to the event scan on `doc` wherever it answers, at read
    /// sizes that cut every tag and character; returns whether it answered at every read size
    /// (`Some(true)`), at none (`Some(false)`) or at some (`None`: bytes it gives up on lie
    /// after where the scan ends, and a small read stops before reading them).
    fn agrees(doc: &[u8]) -> Option<bool> {
        let mut answers = Vec::new();
        for block_bytes in [0, 1, 40, 1 << 20] {
            let events = super::super::scan(doc, block_bytes);
            for read_bytes in [1, 2, 3, 5, 64, super::READ_BYTES] {
                let fast = scan_with(doc, block_bytes, read_bytes);
                if let Some(fast) = &fast {
                    assert_eq!(
                        fast,
                        &events,
                        "block {block_bytes}, read {read_bytes}: {}",
                        String::from_utf8_lossy(doc)
                    );
                }
                answers.push(fast.is_some());
            }
        }
        if answers.iter().all(|a| *a) {
            Some(true)
        } else if answers.iter().all(|a| !*a) {
            Some(false)
        } else {
            None
        }
    }

    fn sheet(data: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet {NS}><dimension ref="A1:C3"/><sheetData>{data}</sheetData><mergeCells count="0"/></worksheet>"#
        )
    }

    #[test]
    fn real_shapes_are_read_and_agree() {
        let rows = (1..=50)
            .map(|r| {
                format!(
                    r#"<row r="{r}" spans="1:3"><c r="A{r}" t="s"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>名称 &amp; 地址 {r}</t></is></c><c r="C{r}"/></row>"#
                )
            })
            .collect::<String>();
        let answered = [
            sheet(&rows),
            sheet(""),
            sheet(r#"<row><c><v>1</v></c><c><v>2</v></c></row><row><c t="str"><v>x</v></c></row>"#),
            sheet(r#"<x:row r="2"><x:c r="B2"><x:v>1</x:v></x:c></x:row>"#),
            sheet(r#"<row r = '3' ><c r='c3' t = "n" ><v>1</v></c></row>"#),
            format!(r#"<worksheet {NS}><sheetData/></worksheet>"#),
            format!(r#"<worksheet {NS}><sheetData><row r="1"><c r="A1"/></row></sheetData>"#),
            r#"<?xml version="1.0"?><sst><si><t>a &lt; b &#x4E2D;</t></si></sst>"#.to_owned(),
            "<a></a>".to_owned(),
        ];
        for doc in &answered {
            assert_eq!(agrees(doc.as_bytes()), Some(true), "gave up on {doc}");
        }
    }

    #[test]
    fn findings_agree() {
        let bad = [
            sheet(r#"<row r="1"><c r="AATYHWUT4"><v>1</v></c></row>"#),
            sheet(r#"<row r="1048577"><c><v>1</v></c></row>"#),
            sheet(r#"<row r="x"><c><v>1</v></c></row>"#),
            sheet(r#"<row r="2"><c r="B2"/><c r="A2"/></row>"#),
            sheet(r#"<row r="2"><c r="B2" r="C2"/></row>"#),
            sheet(r#"<row r="1"><c r="XFE1"/></row>"#),
            sheet(r#"<row r="1"><c r="A0"/></row>"#),
            format!(
                r#"<worksheet {NS}><dimension ref="B2:A1"/><sheetData></sheetData></worksheet>"#
            ),
            format!(
                r#"<worksheet {NS}><dimension ref="A1:ZZZZZZZZZ1"/><sheetData></sheetData></worksheet>"#
            ),
        ];
        for doc in &bad {
            assert_eq!(agrees(doc.as_bytes()), Some(true), "gave up on {doc}");
            assert!(super::super::scan(doc.as_bytes(), 0).is_err(), "{doc}");
        }
    }

    #[test]
    fn what_it_does_not_read_is_left_to_the_event_scan() {
        let given_up = [
            sheet(r#"<!-- a comment --><row r="1"/>"#),
            sheet(r#"<row r="1"><c r="A1"><is><t><![CDATA[x]]></t></is></c></row>"#),
            sheet(r#"<?pi x?><row r="1"/>"#),
            sheet(r#"<row r="1"><c r="A1"><v>a & b</v></c></row>"#),
            sheet(r#"<row r="1" x="a>b"><c r="A1"/></row>"#),
            sheet(r#"<row r="1"></row ></sheetData>"#),
            format!("\u{feff}{}", sheet("")),
            r#"<?xml version="1.0" encoding="GBK"?><worksheet><sheetData/></worksheet>"#.to_owned(),
            "<a></a></b>".to_owned(),
            "<a><".to_owned(),
            "PNG\u{1}".to_owned(),
            r#"<Relationships><Relationship Id="rId1" Target="a>b"/></Relationships>"#.to_owned(),
        ];
        for doc in &given_up {
            assert_eq!(agrees(doc.as_bytes()), Some(false), "read {doc}");
        }
        let mut not_utf8 = sheet(r#"<row r="1"><c r="A1"><v>x</v></c></row>"#).into_bytes();
        let at = not_utf8.iter().position(|b| *b == b'x').unwrap_or(0);
        not_utf8[at] = 0xff;
        assert_eq!(agrees(&not_utf8), Some(false));
    }

    #[test]
    fn a_long_text_is_not_held() {
        let text = "文字 x".repeat(200_000);
        let doc = format!("<a>{text}</a>");
        let mut bytes = super::Bytes::new(doc.as_bytes(), 64);
        assert_eq!(bytes.byte(2), Some(b'>'));
        bytes.pos = 3;
        let end = bytes.text_end();
        assert_eq!(end, Some(Some(3 + text.len() as u64)));
        assert!(bytes.buf.len() < 256, "{} bytes held", bytes.buf.len());
    }

    /// The pieces the byte scanner reads (no markup it gives up on, no lone `&` or `<`).
    const CLEAN: &[&str] = &[
        "<sheetData>",
        "</sheetData>",
        "<sheetData/>",
        "<row>",
        "<row r=\"1\">",
        "<row r=\"3\">",
        "<row r='2'>",
        "</row>",
        "<row/>",
        "<c>",
        "<c r=\"A1\">",
        "<c r=\"B1\">",
        "<c r=\"b3\">",
        "<c r=\"C2\" t=\"s\">",
        "<c r=\"A1\"/>",
        "</c>",
        "<v>1</v>",
        "<is><t>文字</t></is>",
        "&amp;",
        ">",
        "\"",
        " ",
        "<x:row r=\"4\">",
        "</x:row>",
        "<dimension ref=\"A1:B2\"/>",
    ];

    /// Pieces of hostile worksheets, mixed with [`CLEAN`] ones by the property test.
    const HOSTILE: &[&str] = &[
        "<row r=\"0\">",
        "<c r=\"Z9\" r=\"A1\">",
        "&",
        ";",
        "<dimension ref=\"B2:A1\"/>",
        "<!--c-->",
        "<?p?>",
        "\n",
        "'",
        "<",
        "</",
        "/>",
        "é",
        "<worksheet>",
        "</worksheet>",
        "<f>1</f>",
        "</row >",
        "<row r=\"4\" x=\"a>b\">",
        "<c r=\"AATYHWUT4\">",
    ];

    /// Documents of clean pieces inside a `<worksheet>` (so that end tags have a start open
    /// most of the time): the scanner must answer for most of them, and agree.
    #[test]
    fn clean_documents_are_read_and_agree() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        let mut read = 0;
        for _ in 0..1000 {
            let mut doc = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet>");
            for _ in 0..next(30) {
                doc.push_str(CLEAN[next(CLEAN.len())]);
            }
            if agrees(doc.as_bytes()) == Some(true) {
                read += 1;
            }
        }
        assert!(read > 500, "read {read} of 1000");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn random_pieces_agree(
            picks in prop::collection::vec(0..CLEAN.len() + HOSTILE.len(), 0..40),
            decl in any::<bool>(),
        ) {
            let mut doc = String::new();
            if decl {
                doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            }
            for i in picks {
                doc.push_str(CLEAN.get(i).unwrap_or_else(|| &HOSTILE[i - CLEAN.len()]));
            }
            agrees(doc.as_bytes());
        }
    }
}
