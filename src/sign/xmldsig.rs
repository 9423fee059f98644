//! Enveloped XML-DSig signatures (W3C XML Signature 1.1) without an XML library.
//!
//! The render stage writes the licence XML directly in exclusive-canonical form
//! (W3C Exclusive XML Canonicalization 1.0, applying Canonical XML 1.0 §1.1 and §2):
//! no XML declaration, no comments, LF line ends, empty elements as start and end tag,
//! attributes in canonical order, canonical escaping (use [`canonical_text_escape`] and
//! [`canonical_attr_escape`]). Because those bytes are their own canonical form, the
//! enveloped-signature + exc-c14n transforms of the signed document give back exactly the
//! input, so its digest is the reference digest. [`sign_xml`] then signs the canonical
//! `SignedInfo` and inserts `<Signature>` right before the root's end tag. The digest and
//! signature methods are the signer's [`SignatureAlgorithm`].
//!
//! [`check_canonical`] catches the mistakes that broke verification in practice
//! (`/work/shared/crates.md`): self-closing tags, `&quot;` in text, CR, an XML declaration,
//! attribute order, whitespace inside tags.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::SignError;
use super::signer::{SignatureAlgorithm, Signer};
use crate::timestamp::{PendingToken, Tsa};

/// XML-DSig namespace (XML Signature §4).
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Exclusive XML Canonicalization 1.0, without comments.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Enveloped signature transform (XML Signature §6.6.4).
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// The start tag `sign_xml` writes; the verifier looks for exactly this.
pub const SIGNATURE_START: &str = "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\">";
/// The start tag of a timestamped signature: XAdES `QualifyingProperties` point at it by Id.
pub const SIGNATURE_START_WITH_ID: &str =
    "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"elicence-signature\">";

/// The end tag of the signature element.
pub const SIGNATURE_END: &str = "</Signature>";

/// The canonical `SignedInfo` for a reference digest (base64) made with `algorithm`'s digest,
/// exactly as exc-c14n renders it when it is the apex of the canonicalised node set: the
/// default namespace declared on `Signature` is visibly utilised, so it is rendered on
/// `SignedInfo` (Exc-C14N §3).
pub fn canonical_signed_info(algorithm: SignatureAlgorithm, digest_b64: &str) -> String {
    let mut out = String::with_capacity(720);
    out.push_str("<SignedInfo xmlns=\"");
    out.push_str(DSIG_NS);
    out.push_str("\">");
    push_signed_info_children(&mut out, algorithm, digest_b64);
    out.push_str("</SignedInfo>");
    out
}

fn push_signed_info_children(out: &mut String, algorithm: SignatureAlgorithm, digest_b64: &str) {
    // XML Signature §4.4: SignedInfo → CanonicalizationMethod, SignatureMethod, Reference.
    for part in [
        "<CanonicalizationMethod Algorithm=\"",
        EXC_C14N,
        "\"></CanonicalizationMethod><SignatureMethod Algorithm=\"",
        algorithm.xml_uri(),
        // §4.4.3: URI="" is the whole document without comments.
        "\"></SignatureMethod><Reference URI=\"\"><Transforms><Transform Algorithm=\"",
        ENVELOPED,
        "\"></Transform><Transform Algorithm=\"",
        EXC_C14N,
        "\"></Transform></Transforms><DigestMethod Algorithm=\"",
        algorithm.digest().xml_uri(),
        "\"></DigestMethod><DigestValue>",
        digest_b64,
        "</DigestValue></Reference>",
    ] {
        out.push_str(part);
    }
}

/// Signs `doc`, a complete document already in exclusive-canonical form with one root
/// element, and returns it with an enveloped `<Signature>` inserted right before the root's
/// end tag (no whitespace added). Trailing whitespace after the root element is not part of
/// the canonical form; it is kept after the signed document but not digested.
///
/// Fails with [`SignError::NotCanonical`] when [`check_canonical`] rejects `doc`, and with the
/// signer's error (e.g. [`SignError::Rsa`]) if the key cannot sign.
pub fn sign_xml(doc: &str, signer: &dyn Signer) -> Result<String, SignError> {
    sign_xml_with(doc, signer, None)
}

/// As [`sign_xml`]; with a `tsa`, the signature is XAdES B-T: an unsigned
/// `SignatureTimeStamp` (ETSI EN 319 132-1 §5.3) whose token is over the exclusive-canonical
/// `SignatureValue` element ([`canonical_signature_value`]), in `Object/QualifyingProperties`.
/// Nothing under `SignedInfo` changes, so XML-DSig verifiers see the same signature.
pub fn sign_xml_with(
    doc: &str,
    signer: &dyn Signer,
    tsa: Option<&dyn Tsa>,
) -> Result<String, SignError> {
    start_xml(doc, signer, tsa)?.finish()
}

/// The first half of [`sign_xml_with`]: the document signed, and the signature timestamp
/// asked for ([`Tsa::request`]) but not awaited; [`StartedXml::finish`] puts it in.
pub fn start_xml(
    doc: &str,
    signer: &dyn Signer,
    tsa: Option<&dyn Tsa>,
) -> Result<StartedXml, SignError> {
    let body = doc.trim_end_matches(['\n', ' ', '\t']);
    let trailer = &doc[body.len()..];
    check_canonical(body)?;
    let root_end = body.rfind("</").ok_or(SignError::NotCanonical {
        offset: body.len(),
        problem: CanonicalProblem::NoRootElement,
    })?;

    // XML Signature §6.6.4 + Exc-C14N: the enveloped, canonicalised document is `body`.
    let algorithm = signer.algorithm();
    let digest = algorithm.digest().digest(body.as_bytes());
    let digest_b64 = BASE64.encode(digest);
    let signed_info = canonical_signed_info(algorithm, &digest_b64);
    let signature = signer.sign(signed_info.as_bytes())?;

    let certificate_b64 = BASE64.encode(signer.certificate_der());
    let mut head = String::with_capacity(doc.len() + 2200 + certificate_b64.len());
    head.push_str(&body[..root_end]);
    head.push_str(if tsa.is_some() { SIGNATURE_START_WITH_ID } else { SIGNATURE_START });
    // Inside <Signature> the namespace is inherited, so SignedInfo carries no xmlns here.
    head.push_str("<SignedInfo>");
    push_signed_info_children(&mut head, algorithm, &digest_b64);
    head.push_str("</SignedInfo><SignatureValue>");
    let value_start = head.len();
    BASE64.encode_string(&signature, &mut head);
    let token =
        tsa.map(|tsa| tsa.request(canonical_signature_value(&head[value_start..]).as_bytes()));
    // XML Signature §4.5.4: the signer certificate.
    head.push_str("</SignatureValue><KeyInfo><X509Data><X509Certificate>");
    head.push_str(&certificate_b64);
    head.push_str("</X509Certificate></X509Data></KeyInfo>");
    let mut rest = String::with_capacity(SIGNATURE_END.len() + doc.len() - root_end);
    rest.push_str(SIGNATURE_END);
    rest.push_str(&body[root_end..]);
    rest.push_str(trailer);
    Ok(StartedXml { head, token, rest })
}

/// A document signed by [`start_xml`], its signature timestamp on the way.
#[derive(Debug)]
pub struct StartedXml {
    /// Up to the end of `KeyInfo`.
    head: String,
    token: Option<PendingToken>,
    /// From the end of `Signature` on.
    rest: String,
}

impl StartedXml {
    /// Waits for the token and returns the signed document.
    pub fn finish(self) -> Result<String, SignError> {
        let StartedXml { mut head, token, rest } = self;
        if let Some(token) = token {
            let token = token.wait()?;
            head.reserve(SIGNATURE_TIMESTAMP_START.len() + 4 * token.der.len() / 3 + 200);
            head.push_str(SIGNATURE_TIMESTAMP_START);
            BASE64.encode_string(&token.der, &mut head);
            head.push_str(SIGNATURE_TIMESTAMP_END);
        }
        head.push_str(&rest);
        Ok(head)
    }
}

/// The document an elicence signature was made over: `signed` without its `<Signature>`
/// element and without trailing whitespace, the inverse of [`sign_xml_with`] (its SHA-256 is
/// the content digest a face's QR code carries). `None` when `signed` has no such element. Says
/// nothing about the signature's validity: that is `verify`'s job.
pub fn unsigned_document(signed: &str) -> Option<String> {
    let start = [SIGNATURE_START, SIGNATURE_START_WITH_ID].iter().find_map(|t| signed.find(t))?;
    let end = start + signed[start..].find(SIGNATURE_END)? + SIGNATURE_END.len();
    let mut doc = String::with_capacity(signed.len() - (end - start));
    doc.push_str(&signed[..start]);
    doc.push_str(&signed[end..]);
    doc.truncate(doc.trim_end_matches(['\n', ' ', '\t']).len());
    Some(doc)
}

/// The `SignatureValue` element as exclusive canonicalisation renders it on its own (the
/// input of a XAdES signature timestamp): the default namespace is declared on it.
pub fn canonical_signature_value(value_b64: &str) -> String {
    format!("<SignatureValue xmlns=\"{DSIG_NS}\">{value_b64}</SignatureValue>")
}

/// The start of the XAdES `Object` [`sign_xml_with`] writes, up to the token's base64.
pub const SIGNATURE_TIMESTAMP_START: &str = "<Object><QualifyingProperties \
    xmlns=\"http://uri.etsi.org/01903/v1.3.2#\" Target=\"#elicence-signature\">\
    <UnsignedProperties><UnsignedSignatureProperties><SignatureTimeStamp>\
    <CanonicalizationMethod xmlns=\"http://www.w3.org/2000/09/xmldsig#\" \
    Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></CanonicalizationMethod>\
    <EncapsulatedTimeStamp>";
/// The end of that `Object`, after the token's base64.
pub const SIGNATURE_TIMESTAMP_END: &str = "</EncapsulatedTimeStamp></SignatureTimeStamp>\
    </UnsignedSignatureProperties></UnsignedProperties></QualifyingProperties></Object>";

/// Escapes character data for canonical XML (Canonical XML 1.0 §2.3, text nodes):
/// `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, CR → `&#xD;`. Quotes stay as they are.
pub fn canonical_text_escape(text: &str) -> Cow<'_, str> {
    escape(text, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\r' => Some("&#xD;"),
        _ => None,
    })
}

/// Escapes an attribute value for canonical XML (Canonical XML 1.0 §2.3, attribute nodes):
/// `&` → `&amp;`, `<` → `&lt;`, `"` → `&quot;`, TAB → `&#x9;`, LF → `&#xA;`, CR → `&#xD;`.
/// `>` stays as it is.
pub fn canonical_attr_escape(value: &str) -> Cow<'_, str> {
    escape(value, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '"' => Some("&quot;"),
        '\t' => Some("&#x9;"),
        '\n' => Some("&#xA;"),
        '\r' => Some("&#xD;"),
        _ => None,
    })
}

fn escape(text: &str, replace: impl Fn(char) -> Option<&'static str>) -> Cow<'_, str> {
    let Some(first) = text.char_indices().find(|&(_, c)| replace(c).is_some()) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first.0]);
    for c in text[first.0..].chars() {
        match replace(c) {
            Some(escaped) => out.push_str(escaped),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A way in which a document is not in exclusive-canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CanonicalProblem {
    /// `<?xml …?>` is not part of the canonical form.
    XmlDeclaration,
    /// `<!DOCTYPE` is not part of the canonical form.
    Doctype,
    /// Comments are removed by exc-c14n without comments.
    Comment,
    /// CDATA sections are replaced by escaped text in canonical form.
    Cdata,
    /// A raw carriage return (canonical form has LF line ends; CR is `&#xD;`).
    CarriageReturn,
    /// `<a/>`: canonical form writes `<a></a>`.
    SelfClosingTag,
    /// An entity or character reference canonical form does not use here, e.g. `&quot;`
    /// in text or `&gt;` in an attribute.
    NonCanonicalReference { reference: String },
    /// A raw `>` in text (canonical form writes `&gt;`).
    UnescapedGreaterThan,
    /// A raw TAB or LF in an attribute value (canonical form writes `&#x9;` / `&#xA;`).
    RawWhitespaceInAttribute,
    /// Attribute values are delimited by `"` in canonical form.
    SingleQuotedAttribute,
    /// Anything but one space between attributes and none before `>`.
    WhitespaceInTag,
    /// Attributes not in canonical order (namespace declarations first, then by name).
    AttributeOrder { attribute: String },
    /// The same attribute twice.
    DuplicateAttribute { attribute: String },
    /// A namespace declaration exclusive canonicalisation would drop (not visibly
    /// utilised here, or already in scope with the same value).
    SuperfluousNamespace { prefix: String },
    /// A prefix used without a declaration on this element or a rendering ancestor.
    UndeclaredPrefix { prefix: String },
    /// An end tag that does not close the open element.
    MismatchedEndTag { expected: String, found: String },
    /// Text or markup outside the root element.
    ContentOutsideRoot,
    /// No root element.
    NoRootElement,
    /// Not well-formed at this point.
    Malformed { what: &'static str },
}

impl fmt::Display for CanonicalProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanonicalProblem::XmlDeclaration => f.write_str("XML declaration"),
            CanonicalProblem::Doctype => f.write_str("DOCTYPE"),
            CanonicalProblem::Comment => f.write_str("comment"),
            CanonicalProblem::Cdata => f.write_str("CDATA section"),
            CanonicalProblem::CarriageReturn => f.write_str("raw carriage return"),
            CanonicalProblem::SelfClosingTag => f.write_str("self-closing tag"),
            CanonicalProblem::NonCanonicalReference { reference } => {
                write!(f, "non-canonical reference {reference}")
            }
            CanonicalProblem::UnescapedGreaterThan => f.write_str("unescaped '>' in text"),
            CanonicalProblem::RawWhitespaceInAttribute => {
                f.write_str("raw TAB or LF in attribute value")
            }
            CanonicalProblem::SingleQuotedAttribute => f.write_str("single-quoted attribute"),
            CanonicalProblem::WhitespaceInTag => f.write_str("non-canonical whitespace in tag"),
            CanonicalProblem::AttributeOrder { attribute } => {
                write!(f, "attribute {attribute} out of canonical order")
            }
            CanonicalProblem::DuplicateAttribute { attribute } => {
                write!(f, "duplicate attribute {attribute}")
            }
            CanonicalProblem::SuperfluousNamespace { prefix } => {
                write!(f, "superfluous namespace declaration for prefix {prefix:?}")
            }
            CanonicalProblem::UndeclaredPrefix { prefix } => {
                write!(f, "prefix {prefix:?} not declared on a rendering ancestor")
            }
            CanonicalProblem::MismatchedEndTag { expected, found } => {
                write!(f, "end tag </{found}> where </{expected}> was expected")
            }
            CanonicalProblem::ContentOutsideRoot => f.write_str("content outside the root"),
            CanonicalProblem::NoRootElement => f.write_str("no root element"),
            CanonicalProblem::Malformed { what } => write!(f, "malformed {what}"),
        }
    }
}

/// Checks that `doc` is a single-rooted document in exclusive-canonical form, as far as a
/// single linear pass can tell. Returns the first problem with its byte offset.
///
/// Not checked: the relative order of prefixed attributes (it depends on namespace URIs)
/// and characters that XML forbids.
pub fn check_canonical(doc: &str) -> Result<(), SignError> {
    CanonicalChecker::new(doc)
        .run()
        .map_err(|(offset, problem)| SignError::NotCanonical { offset, problem })
}

struct CanonicalChecker<'a> {
    doc: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Open elements: name and the namespace declarations they render.
    open: Vec<(&'a str, Vec<(&'a str, &'a str)>)>,
    seen_root: bool,
}

type Problem = (usize, CanonicalProblem);

impl<'a> CanonicalChecker<'a> {
    fn new(doc: &'a str) -> Self {
        CanonicalChecker { doc, bytes: doc.as_bytes(), pos: 0, open: Vec::new(), seen_root: false }
    }

    fn fail<T>(&self, problem: CanonicalProblem) -> Result<T, Problem> {
        Err((self.pos, problem))
    }

    fn rest(&self) -> &'a str {
        self.doc.get(self.pos..).unwrap_or("")
    }

    fn run(mut self) -> Result<(), Problem> {
        if self.doc.starts_with("<?xml") {
            return self.fail(CanonicalProblem::XmlDeclaration);
        }
        while self.pos < self.bytes.len() {
            let rest = self.rest();
            if rest.starts_with("<!--") {
                return self.fail(CanonicalProblem::Comment);
            } else if rest.starts_with("<![CDATA[") {
                return self.fail(CanonicalProblem::Cdata);
            } else if rest.starts_with("<!") {
                return self.fail(CanonicalProblem::Doctype);
            } else if rest.starts_with("<?") {
                // Processing instruction: kept by canonical form.
                let end = rest.find("?>").ok_or((
                    self.pos,
                    CanonicalProblem::Malformed { what: "processing instruction" },
                ))?;
                if self.open.is_empty() && self.seen_root {
                    return self.fail(CanonicalProblem::ContentOutsideRoot);
                }
                self.pos += end + 2;
            } else if rest.starts_with("</") {
                self.end_tag()?;
            } else if rest.starts_with('<') {
                self.start_tag()?;
            } else {
                self.text()?;
            }
        }
        if !self.seen_root {
            return self.fail(CanonicalProblem::NoRootElement);
        }
        if let Some((name, _)) = self.open.last() {
            return self.fail(CanonicalProblem::MismatchedEndTag {
                expected: (*name).to_owned(),
                found: String::new(),
            });
        }
        Ok(())
    }

    fn text(&mut self) -> Result<(), Problem> {
        if self.open.is_empty() {
            return self.fail(CanonicalProblem::ContentOutsideRoot);
        }
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'<' => return Ok(()),
                b'>' => return self.fail(CanonicalProblem::UnescapedGreaterThan),
                b'\r' => return self.fail(CanonicalProblem::CarriageReturn),
                b'&' => self.reference(&["&amp;", "&lt;", "&gt;", "&#xD;"])?,
                _ => self.pos += 1,
            }
        }
        Ok(())
    }

    /// Checks an `&…;` reference against the ones canonical form writes in this context.
    fn reference(&mut self, allowed: &[&str]) -> Result<(), Problem> {
        let rest = self.rest();
        let end = rest
            .find(';')
            .filter(|&e| e <= 12)
            .ok_or((self.pos, CanonicalProblem::Malformed { what: "reference" }))?;
        let reference = &rest[..=end];
        if !allowed.contains(&reference) {
            return self
                .fail(CanonicalProblem::NonCanonicalReference { reference: reference.to_owned() });
        }
        self.pos += end + 1;
        Ok(())
    }

    fn name(&mut self) -> Result<&'a str, Problem> {
        let start = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            if b.is_ascii_whitespace() || matches!(b, b'>' | b'/' | b'=' | b'<' | b'"' | b'\'') {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return self.fail(CanonicalProblem::Malformed { what: "name" });
        }
        Ok(&self.doc[start..self.pos])
    }

    fn end_tag(&mut self) -> Result<(), Problem> {
        self.pos += 2;
        let name = self.name()?;
        if self.bytes.get(self.pos) != Some(&b'>') {
            return self.fail(CanonicalProblem::WhitespaceInTag);
        }
        self.pos += 1;
        match self.open.pop() {
            Some((open, _)) if open == name => Ok(()),
            Some((open, _)) => self.fail(CanonicalProblem::MismatchedEndTag {
                expected: open.to_owned(),
                found: name.to_owned(),
            }),
            None => self.fail(CanonicalProblem::ContentOutsideRoot),
        }
    }

    fn start_tag(&mut self) -> Result<(), Problem> {
        if self.open.is_empty() && self.seen_root {
            return self.fail(CanonicalProblem::ContentOutsideRoot);
        }
        self.pos += 1;
        let name = self.name()?;
        let mut declarations: Vec<(&'a str, &'a str)> = Vec::new();
        let mut plain: Vec<&'a str> = Vec::new();
        let mut prefixed: Vec<&'a str> = Vec::new();
        loop {
            match self.bytes.get(self.pos) {
                Some(b'>') => {
                    self.pos += 1;
                    break;
                }
                Some(b'/') => return self.fail(CanonicalProblem::SelfClosingTag),
                Some(b' ') => {
                    self.pos += 1;
                    if matches!(self.bytes.get(self.pos), Some(b' ' | b'>' | b'/')) {
                        return self.fail(CanonicalProblem::WhitespaceInTag);
                    }
                    let attr_start = self.pos;
                    let attr = self.name()?;
                    if self.bytes.get(self.pos) != Some(&b'=') {
                        return self.fail(CanonicalProblem::WhitespaceInTag);
                    }
                    self.pos += 1;
                    match self.bytes.get(self.pos) {
                        Some(b'"') => self.pos += 1,
                        Some(b'\'') => return self.fail(CanonicalProblem::SingleQuotedAttribute),
                        _ => return self.fail(CanonicalProblem::WhitespaceInTag),
                    }
                    let value = self.attribute_value()?;
                    let order_error = |attribute: &str| {
                        Err((
                            attr_start,
                            CanonicalProblem::AttributeOrder { attribute: attribute.to_owned() },
                        ))
                    };
                    if attr == "xmlns" || attr.starts_with("xmlns:") {
                        // Canonical XML §2.2: namespace nodes first, sorted by local name
                        // (the default namespace has none, so it comes first).
                        let prefix = attr.strip_prefix("xmlns:").unwrap_or("");
                        if !plain.is_empty() || !prefixed.is_empty() {
                            return order_error(attr);
                        }
                        if declarations.last().is_some_and(|&(last, _)| last >= prefix) {
                            return order_error(attr);
                        }
                        declarations.push((prefix, value));
                    } else if let Some((prefix, _)) = attr.split_once(':') {
                        if prefix != "xml" && !self.prefix_in_scope(prefix, &declarations) {
                            return Err((
                                attr_start,
                                CanonicalProblem::UndeclaredPrefix { prefix: prefix.to_owned() },
                            ));
                        }
                        if prefixed.contains(&attr) {
                            return Err((
                                attr_start,
                                CanonicalProblem::DuplicateAttribute { attribute: attr.to_owned() },
                            ));
                        }
                        prefixed.push(attr);
                    } else {
                        // Attributes without a namespace sort first, by local name.
                        if !prefixed.is_empty() {
                            return order_error(attr);
                        }
                        match plain.last() {
                            Some(&last) if last == attr => {
                                return Err((
                                    attr_start,
                                    CanonicalProblem::DuplicateAttribute {
                                        attribute: attr.to_owned(),
                                    },
                                ));
                            }
                            Some(&last) if last > attr => return order_error(attr),
                            _ => {}
                        }
                        plain.push(attr);
                    }
                }
                Some(b'\t' | b'\n' | b'\r') => return self.fail(CanonicalProblem::WhitespaceInTag),
                _ => return self.fail(CanonicalProblem::Malformed { what: "start tag" }),
            }
        }
        self.check_namespaces(name, &declarations, &prefixed)?;
        self.open.push((name, declarations));
        self.seen_root = true;
        Ok(())
    }

    /// Exc-C14N §3: a declaration is rendered only where visibly utilised and not already
    /// rendered with the same value by an output ancestor.
    fn check_namespaces(
        &self,
        name: &str,
        declarations: &[(&'a str, &'a str)],
        prefixed: &[&str],
    ) -> Result<(), Problem> {
        let element_prefix = name.split_once(':').map(|(p, _)| p).unwrap_or("");
        for &(prefix, value) in declarations {
            let used = prefix == element_prefix
                || prefixed.iter().any(|a| a.split_once(':').map(|(p, _)| p) == Some(prefix));
            let inherited = self.inherited(prefix);
            let redundant = match inherited {
                Some(v) => v == value,
                // xmlns="" with no default in scope renders nothing.
                None => prefix.is_empty() && value.is_empty(),
            };
            if !used || redundant {
                return self
                    .fail(CanonicalProblem::SuperfluousNamespace { prefix: prefix.to_owned() });
            }
        }
        if !element_prefix.is_empty()
            && element_prefix != "xml"
            && !self.prefix_in_scope(element_prefix, declarations)
        {
            return self
                .fail(CanonicalProblem::UndeclaredPrefix { prefix: element_prefix.to_owned() });
        }
        Ok(())
    }

    fn inherited(&self, prefix: &str) -> Option<&'a str> {
        self.open
            .iter()
            .rev()
            .find_map(|(_, decls)| decls.iter().find(|(p, _)| *p == prefix).map(|(_, v)| *v))
    }

    fn prefix_in_scope(&self, prefix: &str, own: &[(&'a str, &'a str)]) -> bool {
        own.iter().any(|(p, _)| *p == prefix) || self.inherited(prefix).is_some()
    }

    /// Reads an attribute value after its opening quote, through the closing quote.
    fn attribute_value(&mut self) -> Result<&'a str, Problem> {
        let start = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b'"' => {
                    let value = &self.doc[start..self.pos];
                    self.pos += 1;
                    return Ok(value);
                }
                b'<' => return self.fail(CanonicalProblem::Malformed { what: "attribute" }),
                b'\t' | b'\n' => return self.fail(CanonicalProblem::RawWhitespaceInAttribute),
                b'\r' => return self.fail(CanonicalProblem::CarriageReturn),
                b'&' => self.reference(&["&amp;", "&lt;", "&quot;", "&#x9;", "&#xA;", "&#xD;"])?,
                _ => self.pos += 1,
            }
        }
        self.fail(CanonicalProblem::Malformed { what: "attribute" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(doc: &str) -> Option<CanonicalProblem> {
        match check_canonical(doc) {
            Ok(()) => None,
            Err(SignError::NotCanonical { problem, .. }) => Some(problem),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unsigned_document_undoes_signing() {
        let doc = "<a xmlns=\"urn:x\"><b>1</b></a>\n";
        let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
        let key = crate::sign::rsa::RsaSigner::load(&keys, None, chrono::Utc::now()).unwrap();
        let signed = sign_xml(doc, &key).unwrap();
        assert_eq!(unsigned_document(&signed).as_deref(), Some(doc.trim_end()));
        assert_eq!(unsigned_document(doc), None);
    }

    #[test]
    fn escapes_match_canonical_xml() {
        assert_eq!(canonical_text_escape("a\"b'c"), "a\"b'c");
        assert!(matches!(canonical_text_escape("plain 中文"), Cow::Borrowed(_)));
        assert_eq!(canonical_text_escape("<&>\r\n\t"), "&lt;&amp;&gt;&#xD;\n\t");
        assert_eq!(canonical_attr_escape("<&>\"\t\n\r'"), "&lt;&amp;>&quot;&#x9;&#xA;&#xD;'");
    }

    #[test]
    fn accepts_canonical_documents() {
        let ok = [
            "<a></a>",
            "<a x=\"1\" y=\"&quot;&#xA;>\">t&amp;&lt;&gt;\"'\n中文<b></b></a>",
            "<p:a xmlns:p=\"urn:p\"><b xmlns=\"urn:d\" p:x=\"1\"></b></p:a>",
            "<a xmlns=\"urn:d\"><b xmlns=\"urn:e\"></b></a>",
        ];
        for doc in ok {
            assert_eq!(problem(doc), None, "{doc}");
        }
    }

    #[test]
    fn rejects_the_pitfalls_from_crates_md() {
        use CanonicalProblem as P;
        type Case = (&'static str, fn(&P) -> bool);
        let cases: &[Case] = &[
            ("<?xml version=\"1.0\"?><a></a>", |p| *p == P::XmlDeclaration),
            ("<a><!-- c --></a>", |p| *p == P::Comment),
            ("<a><b/></a>", |p| *p == P::SelfClosingTag),
            ("<a>&quot;</a>", |p| matches!(p, P::NonCanonicalReference { .. })),
            ("<a x=\"&gt;\"></a>", |p| matches!(p, P::NonCanonicalReference { .. })),
            ("<a>\r\n</a>", |p| *p == P::CarriageReturn),
            ("<a>></a>", |p| *p == P::UnescapedGreaterThan),
            ("<a y=\"1\" x=\"2\"></a>", |p| matches!(p, P::AttributeOrder { .. })),
            ("<a x=\"1\" xmlns=\"urn:d\"></a>", |p| matches!(p, P::AttributeOrder { .. })),
            ("<a x='1'></a>", |p| *p == P::SingleQuotedAttribute),
            ("<a  x=\"1\"></a>", |p| *p == P::WhitespaceInTag),
            ("<a x=\"1\" ></a>", |p| *p == P::WhitespaceInTag),
            ("<a x=\"\t\"></a>", |p| *p == P::RawWhitespaceInAttribute),
            ("<a></a><b></b>", |p| *p == P::ContentOutsideRoot),
            ("<a></b>", |p| matches!(p, P::MismatchedEndTag { .. })),
            ("<a>", |p| matches!(p, P::MismatchedEndTag { .. })),
            ("", |p| *p == P::NoRootElement),
            ("<a xmlns:p=\"urn:p\"></a>", |p| matches!(p, P::SuperfluousNamespace { .. })),
            ("<a xmlns=\"urn:d\"><b xmlns=\"urn:d\"></b></a>", |p| {
                matches!(p, P::SuperfluousNamespace { .. })
            }),
            ("<p:a></p:a>", |p| matches!(p, P::UndeclaredPrefix { .. })),
            ("<a><![CDATA[x]]></a>", |p| *p == P::Cdata),
        ];
        for (doc, expected) in cases {
            let got = problem(doc);
            assert!(got.as_ref().is_some_and(expected), "{doc:?} gave {got:?}");
        }
    }
}
