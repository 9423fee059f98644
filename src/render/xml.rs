//! The XML e-licence (电子证照数据文件): GB/T 36903 metadata plus every face field, written
//! directly in exclusive canonical form (W3C Exclusive XML Canonicalization 1.0) so that the
//! signer can digest the bytes as they are and insert an enveloped `<Signature>` right before the
//! root's closing tag.
//!
//! Canonical-form rules kept here (see `docs/elicence.xsd` for the schema):
//! no XML declaration; LF only; no whitespace between elements; empty elements as `<X></X>`;
//! attributes after the namespace declaration in lexicographic order; text escapes only
//! `&` `<` `>` CR (a `"` stays raw); attribute values escape `&` `<` `"` TAB LF CR.

use chrono::{DateTime, NaiveDate, Utc};

use crate::licence::Licence;

/// Namespace of the e-licence document.
pub const ELICENCE_NS: &str = "urn:elicence:gbt36903:1";

/// The seal metadata of GB/T 36903 (签章人, 签章时间, 签章名称).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealMeta {
    pub signer_name: String,
    pub sign_time: DateTime<Utc>,
    pub seal_name: String,
}

/// The unsigned e-licence XML in exclusive canonical form. Same input ⇒ same bytes.
pub fn render_xml(licence: &Licence, identifier: &str, seal: &SealMeta) -> String {
    let mut w = XmlWriter::with_capacity(2048 + licence.fields.len() * 128);
    w.out.push_str("<ELicence xmlns=\"");
    w.out.push_str(ELICENCE_NS);
    w.out.push_str("\" version=\"1\">");

    w.out.push_str("<Metadata>");
    w.element("Name", &licence.type_name);
    w.element("TypeCode", &licence.type_code);
    w.element("Number", &licence.printed_no);
    w.element("Identifier", identifier);
    w.element("Issuer", &licence.issuer_name);
    w.element("IssuerCode", &licence.issuer_code);
    w.element("IssueDate", &xml_date(licence.issue_date));
    w.out.push_str("<Holders><Holder>");
    w.element("Name", &licence.holder_name);
    w.element("Code", &licence.holder_code);
    w.element("CodeType", &licence.holder_code_type);
    w.out.push_str("</Holder></Holders>");
    w.element("ValidFrom", &xml_date(licence.valid_from));
    match licence.valid_to {
        Some(d) => w.element("ValidTo", &xml_date(d)),
        None => w.out.push_str("<ValidTo openEnded=\"true\"></ValidTo>"),
    }
    w.out.push_str("<Seal>");
    w.element("Signer", &seal.signer_name);
    w.element("Time", &xml_time(seal.sign_time));
    w.element("Name", &seal.seal_name);
    w.out.push_str("</Seal>");
    w.element("RegionCode", &licence.region_code);
    w.element("Status", licence.status.as_str());
    w.out.push_str("</Metadata>");

    w.out.push_str("<Fields>");
    for f in &licence.fields {
        // Canonical attribute order: key < label.
        w.out.push_str("<Field key=\"");
        escape_attr(f.key, &mut w.out);
        w.out.push_str("\" label=\"");
        escape_attr(f.label, &mut w.out);
        w.out.push_str("\">");
        escape_text(&f.value, &mut w.out);
        w.out.push_str("</Field>");
    }
    w.out.push_str("</Fields>");
    w.out.push_str("</ELicence>");
    w.out
}

/// `xs:date` form: `2017-04-24`.
fn xml_date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `xs:dateTime` in UTC, whole seconds: `2024-05-06T07:08:09Z`.
fn xml_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

struct XmlWriter {
    out: String,
}

impl XmlWriter {
    fn with_capacity(n: usize) -> Self {
        XmlWriter { out: String::with_capacity(n) }
    }

    /// `<name>text</name>`; an empty text gives `<name></name>` (canonical form of an empty
    /// element).
    fn element(&mut self, name: &str, text: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_text(text, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
}

/// Canonical text escaping: `&` `<` `>` and CR only.
pub fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => {} // not representable in XML 1.0: dropped
        }
    }
}

/// Canonical attribute escaping: `&` `<` `"` TAB LF CR.
pub fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => {}
        }
    }
}

/// XML 1.0 `Char` production: control characters other than TAB LF CR are not allowed at all.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    use crate::render::test_support::licence;

    fn seal() -> SealMeta {
        SealMeta {
            signer_name: "张三".into(),
            sign_time: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
            seal_name: "长春市朝阳区市场监督管理局电子印章".into(),
        }
    }

    const ID: &str = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";

    #[test]
    fn text_escapes_only_amp_lt_gt_cr() {
        let mut s = String::new();
        escape_text("a&b<c>d\"e'f\rg\nh\ti", &mut s);
        assert_eq!(s, "a&amp;b&lt;c&gt;d\"e'f&#xD;g\nh\ti");
    }

    #[test]
    fn attributes_escape_quote_and_whitespace() {
        let mut s = String::new();
        escape_attr("a&b<c>d\"e\tf\ng\rh", &mut s);
        assert_eq!(s, "a&amp;b&lt;c>d&quot;e&#x9;f&#xA;g&#xD;h");
    }

    #[test]
    fn document_is_canonical() {
        let x = render_xml(&licence(), ID, &seal());
        assert!(x.starts_with(
            "<ELicence xmlns=\"urn:elicence:gbt36903:1\" version=\"1\"><Metadata><Name>食品经营许可证</Name>"
        ));
        assert!(x.ends_with("</Fields></ELicence>"));
        assert!(!x.contains("<?xml"));
        assert!(!x.contains("/>"), "no self-closing tags");
        assert!(!x.contains("\r"), "CR only escaped");
        assert!(!x.contains(">\n<") && !x.contains("> <"), "no indentation");
        assert!(x.contains(&format!("<Identifier>{ID}</Identifier>")));
        assert!(x.contains("<Holders><Holder><Name>长春市王䶮餐饮有限公司</Name><Code>91220104MA0Y123456</Code><CodeType>001</CodeType></Holder></Holders>"));
        assert!(x.contains("<IssueDate>2017-04-24</IssueDate>"));
        assert!(x.contains("<ValidTo>2022-04-23</ValidTo>"));
        assert!(x.contains("<Time>2024-05-06T07:08:09Z</Time>"));
        assert!(x.contains(
            "<Field key=\"business_scope\" label=\"经营项目\">A &amp; B &lt;c&gt; \"d\" 'e'&#xD;\nf</Field>"
        ));
        assert!(x.contains("<Field key=\"note\" label=\"a&quot;b&#x9;c\"></Field>"));
        assert!(x.contains("<Status>valid</Status>"));
    }

    #[test]
    fn open_ended_validity_is_an_empty_flagged_element() {
        let mut l = licence();
        l.valid_to = None;
        let x = render_xml(&l, ID, &seal());
        assert!(x.contains("<ValidTo openEnded=\"true\"></ValidTo>"));
    }

    #[test]
    fn same_input_same_bytes() {
        assert_eq!(render_xml(&licence(), ID, &seal()), render_xml(&licence(), ID, &seal()));
    }

    #[test]
    fn control_characters_are_dropped() {
        let mut s = String::new();
        escape_text("a\u{1}b\u{FFFF}c", &mut s);
        assert_eq!(s, "abc");
    }
}
