//! PAdES B-LT and B-LTA (ETSI EN 319 142-1 §5.4, §5.5): after a B-T signature, an incremental
//! update (ISO 32000-1 §7.5.6) adding a document security store (`/DSS`, ISO 32000-2
//! §12.8.4.3: `/Certs` and `/CRLs`, each an uncompressed stream of DER) to the catalog; for
//! B-LTA, another update with a document timestamp (ISO 32000-2 §12.8.5: a signature
//! dictionary `/Type /DocTimeStamp /SubFilter /ETSI.RFC3161` whose `/Contents` is an RFC 3161
//! token over the `/ByteRange` bytes) in an invisible signature field.
//!
//! The updates are written directly from a [`PdfTail`]: what the last revision's catalog,
//! first page, signature fields, trailer and xref are. [`super::pades::sign_rendered_pdf_tail`]
//! hands it over after signing (the per-licence path: no parse); [`PdfTail::read`] reads it from
//! an existing file of ours with lopdf (`elicence timestamp extend`). Nothing before the
//! update is rewritten, so every earlier signature stays intact; the objects a verifier must
//! accept after a signature are only the catalog (`/DSS`, `/AcroForm`), the page (`/Annots`),
//! the DSS and its streams, and the timestamp's field and dictionary.

use std::io::Write as _;

use lopdf::{Dictionary, Object};

use super::SignError;
use super::validation_data::ValidationData;
use crate::pdf::objects::write_object;
use crate::pdf::write_xref_table;
use crate::timestamp::Tsa;

/// Bytes reserved for the timestamp token in a document timestamp's `/Contents`.
pub const DOC_TIMESTAMP_PLACEHOLDER_BYTES: usize = 8192;

/// Largest certificate or CRL read back from an existing `/DSS` stream.
const MAX_DSS_STREAM_BYTES: usize = 16 << 20;

/// What an incremental update after the last revision needs to know and repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfTail {
    /// The catalog's object number and its dictionary from `<<` up to (not including) the
    /// closing `>>`, without `/AcroForm` and `/DSS` (written anew by every update).
    pub catalog: u32,
    pub catalog_open: Vec<u8>,
    /// The widgets' page (page 1): number and dictionary without `/Annots` or its `>>`.
    pub page: u32,
    pub page_open: Vec<u8>,
    /// `/AcroForm /Fields` and the page's `/Annots` (object numbers).
    pub fields: Vec<u32>,
    pub annots: Vec<u32>,
    /// The `/DSS` dictionary and its entries so far (object numbers of the streams).
    pub dss: Option<u32>,
    pub dss_certs: Vec<u32>,
    pub dss_crls: Vec<u32>,
    /// Trailer entries repeated by every update (`/Root`, `/Info`, `/ID`).
    pub trailer_entries: Vec<u8>,
    /// `startxref` of the last revision, and the trailer `/Size`.
    pub prev_xref: usize,
    pub size: u32,
}

impl PdfTail {
    /// Reads the tail of an existing signed file of ours (`/AcroForm` a direct dictionary,
    /// `/Annots` and `/Fields` direct arrays), with the certificates and CRLs its DSS already
    /// holds. Fails with a named structure otherwise.
    pub fn read(pdf: &[u8]) -> Result<(PdfTail, ValidationData), SignError> {
        let doc = lopdf::Document::load_mem(pdf)
            .map_err(|e| SignError::PdfParse { detail: e.to_string() })?;
        let structure = |what: &'static str| SignError::PdfStructure { what };
        let catalog_id = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| structure("/Root"))?;
        let mut catalog = doc
            .get_object(catalog_id)
            .and_then(Object::as_dict)
            .map_err(|_| structure("catalog dictionary"))?
            .clone();
        let refs = |object: Option<&Object>, what: &'static str| -> Result<Vec<u32>, SignError> {
            match object {
                None => Ok(Vec::new()),
                Some(Object::Array(items)) => items
                    .iter()
                    .map(|i| i.as_reference().map(|(n, _)| n).map_err(|_| structure(what)))
                    .collect(),
                Some(_) => Err(structure(what)),
            }
        };
        let fields = match catalog.remove(b"AcroForm") {
            Some(Object::Dictionary(form)) => refs(form.get(b"Fields").ok(), "/Fields array")?,
            None => Vec::new(),
            Some(_) => return Err(structure("direct /AcroForm dictionary")),
        };
        let mut known = ValidationData::default();
        let (dss, dss_certs, dss_crls) = match catalog.remove(b"DSS") {
            Some(Object::Reference(id)) => {
                let dss = doc
                    .get_object(id)
                    .and_then(Object::as_dict)
                    .map_err(|_| structure("/DSS dictionary"))?;
                let certs = refs(dss.get(b"Certs").ok(), "/DSS /Certs array")?;
                let crls = refs(dss.get(b"CRLs").ok(), "/DSS /CRLs array")?;
                for (numbers, into) in [(&certs, &mut known.certs), (&crls, &mut known.crls)] {
                    for n in numbers {
                        let stream = doc
                            .get_object((*n, 0))
                            .and_then(Object::as_stream)
                            .map_err(|_| structure("/DSS stream"))?;
                        let content = match stream.filters() {
                            Ok(filters) if !filters.is_empty() => stream
                                .decompressed_content_with_limit(MAX_DSS_STREAM_BYTES)
                                .map_err(|_| structure("readable /DSS stream"))?,
                            _ => stream.content.clone(),
                        };
                        into.push(content);
                    }
                }
                (Some(id.0), certs, crls)
            }
            None => (None, Vec::new(), Vec::new()),
            Some(_) => return Err(structure("indirect /DSS dictionary")),
        };
        let page_id = *doc.get_pages().get(&1).ok_or(structure("page"))?;
        let mut page = doc
            .get_object(page_id)
            .and_then(Object::as_dict)
            .map_err(|_| structure("page dictionary"))?
            .clone();
        let annots = refs(page.remove(b"Annots").as_ref(), "direct /Annots array")?;
        let mut trailer = Dictionary::new();
        for key in [&b"Root"[..], b"Info", b"ID"] {
            if let Ok(value) = doc.trailer.get(key) {
                trailer.set(key, value.clone());
            }
        }
        let size = doc
            .trailer
            .get(b"Size")
            .and_then(Object::as_i64)
            .ok()
            .and_then(|s| u32::try_from(s).ok())
            .ok_or(structure("trailer /Size"))?;
        let tail = PdfTail {
            catalog: catalog_id.0,
            catalog_open: open_dict(&Object::Dictionary(catalog))?,
            page: page_id.0,
            page_open: open_dict(&Object::Dictionary(page))?,
            fields,
            annots,
            dss,
            dss_certs,
            dss_crls,
            trailer_entries: open_dict(&Object::Dictionary(trailer))?
                .get(2..)
                .unwrap_or_default()
                .to_vec(),
            prev_xref: last_startxref(pdf).ok_or(structure("startxref"))?,
            size,
        };
        Ok((tail, known))
    }

    fn write_catalog(&self, out: &mut Vec<u8>) {
        let _ = writeln!(out, "{} 0 obj", self.catalog);
        out.extend_from_slice(&self.catalog_open);
        out.extend_from_slice(b"/AcroForm<</Fields");
        write_refs(out, &self.fields);
        // ISO 32000-1 §12.7.2 Table 219: SigFlags 3 = SignaturesExist | AppendOnly.
        out.extend_from_slice(b"/SigFlags 3>>");
        if let Some(dss) = self.dss {
            let _ = write!(out, "/DSS {dss} 0 R");
        }
        out.extend_from_slice(b">>\nendobj\n");
    }

    fn write_page(&self, out: &mut Vec<u8>) {
        let _ = writeln!(out, "{} 0 obj", self.page);
        out.extend_from_slice(&self.page_open);
        out.extend_from_slice(b"/Annots");
        write_refs(out, &self.annots);
        out.extend_from_slice(b">>\nendobj\n");
    }

    /// Ends an update: its xref section and a trailer pointing at the previous one.
    fn finish_update(&mut self, out: &mut Vec<u8>, mut offsets: Vec<(u32, usize)>, size: u32) {
        offsets.sort_by_key(|(n, _)| *n);
        let xref_start = out.len();
        write_xref_table(out, &offsets);
        out.extend_from_slice(b"trailer\n<<");
        out.extend_from_slice(&self.trailer_entries);
        let _ =
            write!(out, "/Size {size}/Prev {}>>\nstartxref\n{xref_start}\n%%EOF", self.prev_xref);
        self.prev_xref = xref_start;
        self.size = size;
    }
}

fn write_refs(out: &mut Vec<u8>, numbers: &[u32]) {
    out.push(b'[');
    for (i, n) in numbers.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let _ = write!(out, "{n} 0 R");
    }
    out.push(b']');
}

/// A dictionary serialised as lopdf writes it, without its closing `>>`.
fn open_dict(object: &Object) -> Result<Vec<u8>, SignError> {
    let mut bytes = Vec::new();
    write_object(&mut bytes, object).map_err(|e| SignError::PdfWrite { detail: e.to_string() })?;
    match bytes.strip_suffix(b">>") {
        Some(open) => Ok(open.to_vec()),
        None => Err(SignError::PdfWrite { detail: "dictionary does not end with >>".into() }),
    }
}

/// The number after the last `startxref` keyword of `pdf`.
fn last_startxref(pdf: &[u8]) -> Option<usize> {
    let at = pdf.windows(9).rposition(|w| w == b"startxref")? + 9;
    let rest = pdf.get(at..)?;
    let digits: String = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    digits.parse().ok()
}

/// Appends the B-LT update: one stream per certificate and CRL of `data`, a `/DSS` dictionary
/// listing them after those already in the file's DSS, and the catalog pointing at it.
pub fn append_dss(out: &mut Vec<u8>, tail: &mut PdfTail, data: &ValidationData) {
    out.reserve(data.certs.iter().chain(&data.crls).map(|d| d.len() + 64).sum::<usize>() + 1024);
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    let mut offsets = Vec::with_capacity(data.certs.len() + data.crls.len() + 2);
    let mut next = tail.size;
    let mut new_certs = Vec::with_capacity(data.certs.len());
    let mut new_crls = Vec::with_capacity(data.crls.len());
    for (der, is_cert) in
        data.certs.iter().map(|d| (d, true)).chain(data.crls.iter().map(|d| (d, false)))
    {
        offsets.push((next, out.len()));
        let _ = write!(out, "{next} 0 obj\n<</Length {}>>stream\n", der.len());
        out.extend_from_slice(der);
        out.extend_from_slice(b"\nendstream\nendobj\n");
        if is_cert {
            new_certs.push(next)
        } else {
            new_crls.push(next)
        }
        next += 1;
    }
    tail.dss_certs.extend(new_certs);
    tail.dss_crls.extend(new_crls);
    // The DSS, ISO 32000-2 Table 261.
    let dss = next;
    offsets.push((dss, out.len()));
    let _ = write!(out, "{dss} 0 obj\n<</Type/DSS/Certs");
    write_refs(out, &tail.dss_certs);
    out.extend_from_slice(b"/CRLs");
    write_refs(out, &tail.dss_crls);
    out.extend_from_slice(b">>\nendobj\n");
    tail.dss = Some(dss);
    offsets.push((tail.catalog, out.len()));
    tail.write_catalog(out);
    tail.finish_update(out, offsets, dss + 1);
}

/// Appends the B-LTA update: an invisible signature field on the page whose value is a
/// document timestamp (ISO 32000-2 §12.8.5), then asks `tsa` for a token over the SHA-256 of
/// the `/ByteRange` bytes and writes it into `/Contents`.
///
/// Fails when the TSA gives no token or the token exceeds
/// [`DOC_TIMESTAMP_PLACEHOLDER_BYTES`].
pub fn append_doc_timestamp(
    out: &mut Vec<u8>,
    tail: &mut PdfTail,
    tsa: &dyn Tsa,
) -> Result<(), SignError> {
    out.reserve(2 * DOC_TIMESTAMP_PLACEHOLDER_BYTES + 2048);
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    let sig = tail.size;
    let widget = sig + 1;
    let name = format!("DocTimeStamp{}", tail.fields.len());
    tail.fields.push(widget);
    tail.annots.push(widget);
    let mut offsets = Vec::with_capacity(4);
    offsets.push((tail.catalog, out.len()));
    tail.write_catalog(out);
    offsets.push((tail.page, out.len()));
    tail.write_page(out);

    // ISO 32000-2 Table 255 and §12.8.5: the document timestamp dictionary.
    offsets.push((sig, out.len()));
    let _ = write!(
        out,
        "{sig} 0 obj\n<</Type/DocTimeStamp/Filter/Adobe.PPKLite/SubFilter/ETSI.RFC3161/ByteRange"
    );
    let byte_range_start = out.len();
    let placeholder = super::pades::BYTE_RANGE_PLACEHOLDER;
    let _ = write!(out, "[0 {placeholder} {placeholder} {placeholder}]");
    let byte_range_len = out.len() - byte_range_start;
    out.extend_from_slice(b"/Contents");
    let contents_start = out.len();
    out.push(b'<');
    out.resize(out.len() + 2 * DOC_TIMESTAMP_PLACEHOLDER_BYTES, b'0');
    out.push(b'>');
    let contents_end = out.len();
    out.extend_from_slice(b">>\nendobj\n");

    // The field merged with its widget, as for the signature (ISO 32000-1 §12.7.4.5).
    offsets.push((widget, out.len()));
    let _ = write!(
        out,
        "{widget} 0 obj\n<</Type/Annot/Subtype/Widget/FT/Sig/T({name})/V {sig} 0 R\
         /P {page} 0 R/Rect[0 0 0 0]/F 132>>\nendobj\n",
        page = tail.page
    );
    tail.finish_update(out, offsets, widget + 1);

    let byte_range = [0, contents_start, contents_end, out.len() - contents_end];
    super::pades::patch_byte_range(out, byte_range_start, byte_range_len, byte_range)?;
    let mut covered = Vec::with_capacity(out.len() - (contents_end - contents_start));
    covered.extend_from_slice(&out[..contents_start]);
    covered.extend_from_slice(&out[contents_end..]);
    let token = tsa.stamp(&covered)?;
    if token.der.len() > DOC_TIMESTAMP_PLACEHOLDER_BYTES {
        return Err(SignError::PlaceholderTooSmall {
            needed: token.der.len(),
            available: DOC_TIMESTAMP_PLACEHOLDER_BYTES,
        });
    }
    let hex_start = contents_start + 1;
    hex::encode_to_slice(&token.der, &mut out[hex_start..hex_start + 2 * token.der.len()])
        .map_err(|e| SignError::Cms { detail: e.to_string() })
}
