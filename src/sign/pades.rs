//! PAdES baseline B-B signatures (ETSI EN 319 142-1 §5.1, §6.3) on rendered PDFs.
//!
//! The signature is added as an incremental update (ISO 32000-1 §7.5.6): the rendered bytes
//! stay untouched, and a signature dictionary, an invisible signature widget on page 1 and
//! an updated catalog (`/AcroForm /SigFlags 3`) are appended. `/Contents` is reserved as a
//! fixed-size hex placeholder and `/ByteRange` is patched in place to the same width, so the
//! file is serialised once and never re-serialised after patching.
//!
//! Two entry points write the same bytes: [`sign_pdf`] takes any PDF with classic xref
//! tables, parses it with lopdf and lets lopdf write the update; [`sign_rendered_pdf`] takes
//! a [`RenderedPdf`] from our PDF writer, which says where its catalog, page and xref table
//! are, and writes the update directly (the per-licence path: no parse, no re-serialisation).
//!
//! The CMS `SignedData` ([`super::signed_data`], RFC 5652 §5) is detached (no encapsulated
//! content) and carries the signed attributes contentType, messageDigest and
//! signing-certificate-v2 (RFC 5035), and no signingTime: the time goes in `/M` (ETSI EN
//! 319 142-1 §5.2.1). Digest and signature algorithm are the [`Signer`]'s.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lopdf::{Dictionary, IncrementalDocument, Object, ObjectId, StringFormat};

use super::SignError;
use super::ltv::PdfTail;
use super::signed_data::{SignedCms, detached_cms_len, sign_detached_cms};
use super::signer::Signer;
use crate::pdf::objects::{date, text_string, write_object};
use crate::pdf::{RenderedPdf, write_xref_table};
use crate::timestamp::{PendingToken, Tsa};

/// Bytes reserved in `/Contents` for the timestamp token of a PAdES B-T signature, on top of
/// the CMS without it ([`contents_reserve`]), from a TSA that has not answered yet: the test
/// TSA's tokens with their chain take about 3,500.
pub const TIMESTAMP_TOKEN_RESERVE: usize = 6144;

/// Bytes reserved beyond the largest token a TSA has returned: the unsigned attribute around
/// the token (≈ 25 bytes) and what differs from token to token (serial number, fraction of
/// `genTime`, the length of an ECDSA signature).
pub const TIMESTAMP_TOKEN_SLACK: usize = 256;

/// How often a PDF is signed when a token outgrows its reserve (the second time with room for
/// the token seen, the third for one longer still).
const MAX_SIGNING_ATTEMPTS: u32 = 3;

/// Bytes reserved for the DER CMS in `/Contents` (written as twice as many hex digits):
/// without a TSA, exactly the CMS's length ([`detached_cms_len`]: RSA-2048 with two
/// certificates ≈ 2,700 bytes), so a signed face carries no padding; with one, that plus the
/// largest token the TSA has returned so far and [`TIMESTAMP_TOKEN_SLACK`] (before its first
/// token, [`TIMESTAMP_TOKEN_RESERVE`]): a token's length is only known once the TSA answers,
/// and a longer one makes the signer sign again with room for it.
pub fn contents_reserve(signer: &dyn Signer, tsa: Option<&dyn Tsa>) -> Result<usize, SignError> {
    let cms = detached_cms_len(signer)?;
    Ok(match tsa.map(|tsa| tsa.largest_token_len()) {
        None => cms,
        Some(0) => cms + TIMESTAMP_TOKEN_RESERVE,
        Some(largest) => cms + largest + TIMESTAMP_TOKEN_SLACK,
    })
}

/// Placeholder `/ByteRange`: every number is as wide as any real offset we can write, so
/// the patched array fits in the same bytes.
pub(super) const BYTE_RANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// Descriptive entries of the signature dictionary (ISO 32000-1 Table 252). Empty strings
/// are left out.
#[derive(Debug, Clone, Default)]
pub struct PdfSignOptions {
    /// `/Reason`, e.g. "电子证照签发".
    pub reason: String,
    /// `/Location`, e.g. the issuing authority's city.
    pub location: String,
    /// `/Name` of the signer as shown by viewers.
    pub name: String,
    /// A time-stamping authority: with one, the signature is PAdES B-T (a timestamp token over
    /// the signature value in the CMS); without, B-B.
    pub tsa: Option<Arc<dyn Tsa>>,
}

/// Signs `pdf` as PAdES B-B with `signer` and returns the signed file: `pdf` followed by
/// one incremental update. `signing_time` becomes `/M`. Same input, key and time give the
/// same bytes.
///
/// Fails when the PDF cannot be parsed or has no catalog or page, when lopdf cannot write
/// the update, or when the CMS exceeds [`contents_reserve`].
pub fn sign_pdf(
    pdf: &[u8],
    signer: &dyn Signer,
    signing_time: DateTime<Utc>,
    opts: &PdfSignOptions,
) -> Result<Vec<u8>, SignError> {
    let mut reserve = contents_reserve(signer, opts.tsa.as_deref())?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match sign_pdf_reserving(pdf, signer, signing_time, opts, reserve) {
            // A token longer than this TSA's earlier ones: again, with room for it.
            Err(SignError::PlaceholderTooSmall { needed, .. })
                if opts.tsa.is_some() && attempts < MAX_SIGNING_ATTEMPTS =>
            {
                reserve = needed + TIMESTAMP_TOKEN_SLACK;
            }
            signed => return signed,
        }
    }
}

/// [`sign_pdf`] with `reserve` bytes for the CMS.
fn sign_pdf_reserving(
    pdf: &[u8],
    signer: &dyn Signer,
    signing_time: DateTime<Utc>,
    opts: &PdfSignOptions,
    reserve: usize,
) -> Result<Vec<u8>, SignError> {
    let parsed = lopdf::Document::load_mem(pdf)
        .map_err(|e| SignError::PdfParse { detail: e.to_string() })?;
    let catalog_id = parsed
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| SignError::PdfStructure { what: "catalog (/Root)" })?;
    let page_id = *parsed.get_pages().get(&1).ok_or(SignError::PdfStructure { what: "page" })?;

    let mut update = IncrementalDocument::create_from(pdf.to_vec(), parsed);
    add_signature_objects(&mut update, catalog_id, page_id, signing_time, opts, reserve)?;

    let mut out = Vec::with_capacity(pdf.len() + 2 * reserve + 2048);
    update.save_to(&mut out).map_err(|e| SignError::PdfWrite { detail: e.to_string() })?;
    drop(update);

    let placeholder = locate_placeholders(&out, pdf.len(), reserve)?;
    fill_signature(&mut out, &placeholder, signer, opts.tsa.as_deref())?;
    Ok(out)
}

/// Signs a file written by [`crate::pdf::write_file`] (a rendered licence face) as PAdES B-B:
/// the same bytes [`sign_pdf`] makes of `rendered.bytes()`, written without parsing them, since
/// the writer says where its catalog, page, trailer and xref table are. The update holds the
/// updated catalog and page, the signature dictionary and the widget, as lopdf's incremental
/// writer lays them out.
///
/// Fails when the CMS exceeds [`contents_reserve`].
pub fn sign_rendered_pdf(
    rendered: RenderedPdf,
    signer: &dyn Signer,
    signing_time: DateTime<Utc>,
    opts: &PdfSignOptions,
) -> Result<Vec<u8>, SignError> {
    sign_rendered_pdf_tail(rendered, signer, signing_time, opts).map(|(signed, _)| signed)
}

/// As [`sign_rendered_pdf`], also returning what a further incremental update (PAdES B-LT,
/// B-LTA: [`super::ltv`]) needs to know about the signed file.
pub fn sign_rendered_pdf_tail(
    rendered: RenderedPdf,
    signer: &dyn Signer,
    signing_time: DateTime<Utc>,
    opts: &PdfSignOptions,
) -> Result<(Vec<u8>, PdfTail), SignError> {
    start_rendered_pdf(rendered, signer, signing_time, opts)?.finish()
}

/// The first half of [`sign_rendered_pdf_tail`]: the update written and signed, and its
/// timestamp token asked for ([`Tsa::request`]) but not awaited; [`StartedPdf::finish`]
/// puts the token in and gives the signed file. Between the two, a pipelining TSA works
/// while the caller renders other licences.
pub fn start_rendered_pdf<'s>(
    rendered: RenderedPdf,
    signer: &'s dyn Signer,
    signing_time: DateTime<Utc>,
    opts: &PdfSignOptions,
) -> Result<StartedPdf<'s>, SignError> {
    let (mut out, layout) = rendered.into_parts();
    let catalog_dict = dict_without_close(&out, &layout.catalog.dict, "catalog dictionary")?;
    let page_dict = dict_without_close(&out, &layout.page.dict, "page dictionary")?;
    let trailer_entries = out
        .get(layout.trailer_entries.clone())
        .ok_or(SignError::PdfStructure { what: "trailer" })?
        .to_vec();
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    // Objects in ascending numbers, as lopdf writes an update.
    let mut changed = [(layout.catalog.number, catalog_dict), (layout.page.number, page_dict)];
    changed.sort_by_key(|(number, _)| *number);
    let update = SignatureUpdate {
        catalog: layout.catalog.number,
        page: layout.page.number,
        changed,
        trailer_entries,
        sig_id: layout.size,
        widget_id: layout.size + 1,
        prev_xref: layout.xref_offset,
        rendered_len: out.len(),
        signing_time,
        opts: opts.clone(),
    };
    let reserve = contents_reserve(signer, opts.tsa.as_deref())?;
    let (placeholder, xref_start) = update.write(&mut out, reserve)?;
    let signed = sign_placeholder(&mut out, &placeholder, signer)?;
    let token = opts.tsa.as_ref().map(|tsa| tsa.request(signed.signature()));
    Ok(StartedPdf { out, update, placeholder, xref_start, signed, token, signer })
}

/// A rendered face signed by [`start_rendered_pdf`], its timestamp token on the way.
#[derive(Debug)]
pub struct StartedPdf<'s> {
    out: Vec<u8>,
    update: SignatureUpdate,
    placeholder: Placeholders,
    xref_start: usize,
    signed: SignedCms,
    token: Option<PendingToken>,
    signer: &'s dyn Signer,
}

impl StartedPdf<'_> {
    /// Waits for the token, writes the CMS into `/Contents` and returns the signed file and its
    /// tail. A token longer than the reserve: the update is written and signed again with room
    /// for it (asking the TSA again, and waiting).
    pub fn finish(self) -> Result<(Vec<u8>, PdfTail), SignError> {
        let StartedPdf { mut out, update, placeholder, xref_start, signed, token, signer } = self;
        let token = token.map(PendingToken::wait).transpose()?;
        let cms = signed.finish(signer, token.as_ref())?;
        let xref_start = match write_cms(&mut out, &placeholder, &cms) {
            Ok(()) => xref_start,
            Err(SignError::PlaceholderTooSmall { needed, .. }) if token.is_some() => {
                update.sign_again(&mut out, signer, needed + TIMESTAMP_TOKEN_SLACK)?
            }
            Err(e) => return Err(e),
        };
        Ok((out, update.into_tail(xref_start)))
    }
}

/// What the signature update of a rendered face writes: the catalog and page again (their
/// dictionaries without the closing `>>`), the signature dictionary and the widget.
#[derive(Debug)]
struct SignatureUpdate {
    catalog: u32,
    page: u32,
    /// The catalog and the page, in ascending object numbers.
    changed: [(u32, Vec<u8>); 2],
    trailer_entries: Vec<u8>,
    sig_id: u32,
    widget_id: u32,
    /// `startxref` of the rendered file.
    prev_xref: usize,
    /// The rendered file's length, with the newline the update starts after.
    rendered_len: usize,
    signing_time: DateTime<Utc>,
    opts: PdfSignOptions,
}

impl SignatureUpdate {
    /// Appends the update to `out` (the rendered file) with `reserve` bytes for the CMS;
    /// returns where its placeholders are and its xref section's offset.
    fn write(&self, out: &mut Vec<u8>, reserve: usize) -> Result<(Placeholders, usize), SignError> {
        let (sig_id, widget_id) = (self.sig_id, self.widget_id);
        out.reserve(2 * reserve + 2048);
        let mut offsets = Vec::with_capacity(4);
        for (number, dict) in &self.changed {
            let number = *number;
            offsets.push((number, out.len()));
            let _ = writeln!(out, "{number} 0 obj");
            out.extend_from_slice(dict);
            if number == self.catalog {
                // ISO 32000-1 §12.7.2 Table 219: SigFlags 3 = SignaturesExist | AppendOnly.
                let _ = write!(out, "/AcroForm<</Fields[{widget_id} 0 R]/SigFlags 3>>");
            } else {
                let _ = write!(out, "/Annots[{widget_id} 0 R]");
            }
            out.extend_from_slice(b">>\nendobj\n");
        }

        // The signature dictionary, ISO 32000-1 §12.8.1 Table 252, entries in the order
        // `add_signature_objects` sets them.
        offsets.push((sig_id, out.len()));
        let _ = write!(
            out,
            "{sig_id} 0 obj\n<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached/ByteRange"
        );
        let byte_range_start = out.len();
        let _ = write!(
            out,
            "[0 {BYTE_RANGE_PLACEHOLDER} {BYTE_RANGE_PLACEHOLDER} {BYTE_RANGE_PLACEHOLDER}]/Contents"
        );
        let byte_range_len = out.len() - "/Contents".len() - byte_range_start;
        let contents_start = out.len();
        out.push(b'<');
        out.resize(out.len() + 2 * reserve, b'0');
        out.push(b'>');
        let contents_end = out.len();
        out.extend_from_slice(b"/M");
        write_pdf_object(out, &date(self.signing_time))?;
        let opts = &self.opts;
        for (key, value) in
            [("Name", &opts.name), ("Reason", &opts.reason), ("Location", &opts.location)]
        {
            if !value.is_empty() {
                let _ = write!(out, "/{key}");
                write_pdf_object(out, &text_string(value))?;
            }
        }
        out.extend_from_slice(b">>\nendobj\n");

        // The widget, as in `add_signature_objects`.
        offsets.push((widget_id, out.len()));
        let _ = write!(
            out,
            "{widget_id} 0 obj\n<</Type/Annot/Subtype/Widget/FT/Sig/T(Signature1)/V {sig_id} 0 R\
         /P {page} 0 R/Rect[0 0 0 0]/F 132>>\nendobj\n",
            page = self.page
        );

        // ISO 32000-1 §7.5.6: the update's xref section and a trailer pointing at the previous one.
        let xref_start = out.len();
        write_xref_table(out, &offsets);
        out.extend_from_slice(b"trailer\n<<");
        out.extend_from_slice(&self.trailer_entries);
        let _ = write!(
            out,
            "/Size {}/Prev {}>>\nstartxref\n{xref_start}\n%%EOF",
            widget_id + 1,
            self.prev_xref
        );
        let placeholder =
            Placeholders { byte_range_start, byte_range_len, contents_start, contents_end };
        Ok((placeholder, xref_start))
    }

    /// Writes the update again in place of the one `out` holds, with `reserve` bytes for the
    /// CMS, and signs it with a token awaited now (again with more room if the TSA's next token
    /// is longer still, at most [`MAX_SIGNING_ATTEMPTS`] in all).
    fn sign_again(
        &self,
        out: &mut Vec<u8>,
        signer: &dyn Signer,
        mut reserve: usize,
    ) -> Result<usize, SignError> {
        let tsa = self.opts.tsa.as_deref();
        let mut attempts = 1;
        loop {
            attempts += 1;
            out.truncate(self.rendered_len);
            let (placeholder, xref_start) = self.write(out, reserve)?;
            match fill_signature(out, &placeholder, signer, tsa) {
                Ok(()) => return Ok(xref_start),
                Err(SignError::PlaceholderTooSmall { needed, .. })
                    if tsa.is_some() && attempts < MAX_SIGNING_ATTEMPTS =>
                {
                    reserve = needed + TIMESTAMP_TOKEN_SLACK;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn into_tail(self, xref_start: usize) -> PdfTail {
        let [(first, first_dict), (_, second_dict)] = self.changed;
        let (catalog_open, page_open) = if first == self.catalog {
            (first_dict, second_dict)
        } else {
            (second_dict, first_dict)
        };
        PdfTail {
            catalog: self.catalog,
            catalog_open,
            page: self.page,
            page_open,
            fields: vec![self.widget_id],
            annots: vec![self.widget_id],
            dss: None,
            dss_certs: Vec::new(),
            dss_crls: Vec::new(),
            trailer_entries: self.trailer_entries,
            prev_xref: xref_start,
            size: self.widget_id + 1,
        }
    }
}

/// The dictionary at `range` of `pdf` without its closing `>>`, for appending entries.
fn dict_without_close(
    pdf: &[u8],
    range: &std::ops::Range<usize>,
    what: &'static str,
) -> Result<Vec<u8>, SignError> {
    match pdf.get(range.clone()) {
        Some(dict) if dict.starts_with(b"<<") && dict.ends_with(b">>") && dict.len() >= 4 => {
            Ok(dict[..dict.len() - 2].to_vec())
        }
        _ => Err(SignError::PdfStructure { what }),
    }
}

/// Serialises one direct object the way lopdf does.
fn write_pdf_object(out: &mut Vec<u8>, object: &Object) -> Result<(), SignError> {
    write_object(out, object).map_err(|e| SignError::PdfWrite { detail: e.to_string() })
}

/// Patches `/ByteRange` to the real offsets, hashes the covered bytes and writes the CMS
/// into the `/Contents` placeholder, in place.
fn fill_signature(
    out: &mut [u8],
    placeholder: &Placeholders,
    signer: &dyn Signer,
    tsa: Option<&dyn Tsa>,
) -> Result<(), SignError> {
    let signed = sign_placeholder(out, placeholder, signer)?;
    let token = tsa.map(|tsa| tsa.stamp(signed.signature())).transpose()?;
    let cms = signed.finish(signer, token.as_ref())?;
    write_cms(out, placeholder, &cms)
}

/// Patches `/ByteRange` to the real offsets and signs the bytes it covers.
fn sign_placeholder(
    out: &mut [u8],
    placeholder: &Placeholders,
    signer: &dyn Signer,
) -> Result<SignedCms, SignError> {
    // ISO 32000-1 §12.8.1: the byte range covers the whole file except the /Contents
    // value including its angle brackets.
    let byte_range = [
        0,
        placeholder.contents_start,
        placeholder.contents_end,
        out.len() - placeholder.contents_end,
    ];
    patch_byte_range(out, placeholder.byte_range_start, placeholder.byte_range_len, byte_range)?;

    let digest = signer
        .algorithm()
        .digest()
        .digest_parts(&[&out[..placeholder.contents_start], &out[placeholder.contents_end..]]);
    sign_detached_cms(signer, &digest)
}

/// Writes the DER `cms` as hex into the `/Contents` placeholder (the rest stays zeros).
fn write_cms(out: &mut [u8], placeholder: &Placeholders, cms: &[u8]) -> Result<(), SignError> {
    let available = (placeholder.contents_end - placeholder.contents_start - 2) / 2;
    if cms.len() > available {
        return Err(SignError::PlaceholderTooSmall { needed: cms.len(), available });
    }
    let hex_start = placeholder.contents_start + 1;
    hex::encode_to_slice(cms, &mut out[hex_start..hex_start + 2 * cms.len()])
        .map_err(|e| SignError::Cms { detail: e.to_string() })
}

/// Adds the signature dictionary, the widget and the updated page and catalog to `update`.
fn add_signature_objects(
    update: &mut IncrementalDocument,
    catalog_id: ObjectId,
    page_id: ObjectId,
    signing_time: DateTime<Utc>,
    opts: &PdfSignOptions,
    reserve: usize,
) -> Result<(), SignError> {
    let write_err = |e: lopdf::Error| SignError::PdfWrite { detail: e.to_string() };
    let doc = &mut update.new_document;

    // ISO 32000-1 §12.8.1 Table 252; ETSI EN 319 142-1 §5.3 (PAdES baseline).
    let mut sig = Dictionary::new();
    sig.set("Type", Object::Name(b"Sig".to_vec()));
    sig.set("Filter", Object::Name(b"Adobe.PPKLite".to_vec()));
    sig.set("SubFilter", Object::Name(b"ETSI.CAdES.detached".to_vec()));
    sig.set(
        "ByteRange",
        Object::Array(vec![
            Object::Integer(0),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
            Object::Integer(BYTE_RANGE_PLACEHOLDER),
        ]),
    );
    sig.set("Contents", Object::String(vec![0u8; reserve], StringFormat::Hexadecimal));
    sig.set("M", date(signing_time));
    for (key, value) in
        [("Name", &opts.name), ("Reason", &opts.reason), ("Location", &opts.location)]
    {
        if !value.is_empty() {
            sig.set(key, text_string(value));
        }
    }
    let sig_id = doc.try_add_object(Object::Dictionary(sig)).map_err(write_err)?;

    // ISO 32000-1 §12.7.4.5: an invisible signature field merged with its widget (§12.5.6.19).
    let mut widget = Dictionary::new();
    widget.set("Type", Object::Name(b"Annot".to_vec()));
    widget.set("Subtype", Object::Name(b"Widget".to_vec()));
    widget.set("FT", Object::Name(b"Sig".to_vec()));
    widget.set("T", Object::string_literal("Signature1"));
    widget.set("V", Object::Reference(sig_id));
    widget.set("P", Object::Reference(page_id));
    widget.set("Rect", Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]));
    // Print (4) + Locked (128), ISO 32000-1 §12.5.3.
    widget.set("F", Object::Integer(132));
    let widget_id = doc.try_add_object(Object::Dictionary(widget)).map_err(write_err)?;

    // Page: append the widget to /Annots (an inline array or a referenced one).
    update.opt_clone_object_to_new_document(page_id).map_err(write_err)?;
    let annots = update
        .new_document
        .get_object(page_id)
        .and_then(Object::as_dict)
        .ok()
        .and_then(|page| page.get(b"Annots").ok().cloned());
    match annots {
        Some(Object::Reference(array_id)) => {
            update.opt_clone_object_to_new_document(array_id).map_err(write_err)?;
            let array = update
                .new_document
                .get_object_mut(array_id)
                .and_then(Object::as_array_mut)
                .map_err(|_| SignError::PdfStructure { what: "/Annots array" })?;
            array.push(Object::Reference(widget_id));
        }
        other => {
            let mut array = match other {
                Some(Object::Array(items)) => items,
                _ => Vec::new(),
            };
            array.push(Object::Reference(widget_id));
            let page = update
                .new_document
                .get_object_mut(page_id)
                .and_then(Object::as_dict_mut)
                .map_err(|_| SignError::PdfStructure { what: "page dictionary" })?;
            page.set("Annots", Object::Array(array));
        }
    }

    // Catalog: /AcroForm with the field and /SigFlags 3 (SignaturesExist | AppendOnly,
    // ISO 32000-1 §12.7.2 Table 219).
    update.opt_clone_object_to_new_document(catalog_id).map_err(write_err)?;
    let acro_form = update
        .new_document
        .get_object(catalog_id)
        .and_then(Object::as_dict)
        .map_err(|_| SignError::PdfStructure { what: "catalog dictionary" })?
        .get(b"AcroForm")
        .ok()
        .cloned();
    let (form_id, mut form) = match acro_form {
        Some(Object::Reference(id)) => {
            let form = update
                .get_prev_documents()
                .get_object(id)
                .and_then(Object::as_dict)
                .map_err(|_| SignError::PdfStructure { what: "/AcroForm dictionary" })?
                .clone();
            (Some(id), form)
        }
        Some(Object::Dictionary(form)) => (None, form),
        _ => (None, Dictionary::new()),
    };
    let mut fields = match form.get(b"Fields") {
        Ok(Object::Array(items)) => items.clone(),
        Ok(Object::Reference(id)) => update
            .get_prev_documents()
            .get_object(*id)
            .and_then(Object::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    fields.push(Object::Reference(widget_id));
    form.set("Fields", Object::Array(fields));
    form.set("SigFlags", Object::Integer(3));
    match form_id {
        Some(id) => update.new_document.set_object(id, Object::Dictionary(form)),
        None => {
            let catalog = update
                .new_document
                .get_object_mut(catalog_id)
                .and_then(Object::as_dict_mut)
                .map_err(|_| SignError::PdfStructure { what: "catalog dictionary" })?;
            catalog.set("AcroForm", Object::Dictionary(form));
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Placeholders {
    byte_range_start: usize,
    byte_range_len: usize,
    contents_start: usize,
    contents_end: usize,
}

/// Finds the `/ByteRange` array and the `/Contents` hex string lopdf wrote in the update
/// (searched only after `prev_len`, the untouched original bytes).
fn locate_placeholders(
    out: &[u8],
    prev_len: usize,
    reserve: usize,
) -> Result<Placeholders, SignError> {
    let missing = || SignError::PdfWrite { detail: "signature placeholder not found".into() };
    let tail = out.get(prev_len..).ok_or_else(missing)?;
    let array =
        format!("[0 {BYTE_RANGE_PLACEHOLDER} {BYTE_RANGE_PLACEHOLDER} {BYTE_RANGE_PLACEHOLDER}]");
    let byte_range_start = prev_len + find(tail, array.as_bytes()).ok_or_else(missing)?;
    let contents_key = find(tail, b"/Contents<").or_else(|| find(tail, b"/Contents <"));
    let key_at = prev_len + contents_key.ok_or_else(missing)?;
    let contents_start =
        key_at + out.get(key_at..).and_then(|s| find(s, b"<")).ok_or_else(missing)?;
    let contents_end = contents_start + 2 * reserve + 2;
    if out.get(contents_end - 1) != Some(&b'>') {
        return Err(missing());
    }
    Ok(Placeholders { byte_range_start, byte_range_len: array.len(), contents_start, contents_end })
}

/// Overwrites the placeholder array with the real offsets, padded with spaces to the same
/// width.
pub(super) fn patch_byte_range(
    out: &mut [u8],
    start: usize,
    len: usize,
    range: [usize; 4],
) -> Result<(), SignError> {
    let mut text = format!("[{} {} {} {}", range[0], range[1], range[2], range[3]);
    if text.len() + 1 > len {
        return Err(SignError::PdfWrite { detail: "file too large for /ByteRange".into() });
    }
    while text.len() + 1 < len {
        text.push(' ');
    }
    text.push(']');
    out[start..start + len].copy_from_slice(text.as_bytes());
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::rsa::RsaSigner;
    use std::path::PathBuf;

    pub(crate) fn fixture_signer() -> Result<RsaSigner, crate::sign::KeyError> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/keys");
        RsaSigner::load(&dir, None, Utc::now())
    }

    /// A minimal one-page PDF written with lopdf.
    pub(crate) fn sample_pdf() -> Vec<u8> {
        use lopdf::{Stream, dictionary};
        let mut doc = lopdf::Document::with_version("1.7");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        });
        let content = b"BT /F1 24 Tf 72 720 Td (Licence 91110000MA01ABCD2X) Tj ET".to_vec();
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        let _ = doc.save_to(&mut out);
        out
    }

    #[test]
    fn signing_twice_gives_identical_bytes() -> Result<(), Box<dyn std::error::Error>> {
        let signer = fixture_signer()?;
        let pdf = sample_pdf();
        let at = Utc::now();
        let opts = PdfSignOptions { reason: "电子证照签发".into(), ..Default::default() };
        let a = sign_pdf(&pdf, &signer, at, &opts)?;
        let b = sign_pdf(&pdf, &signer, at, &opts)?;
        assert_eq!(a, b);
        assert!(a.starts_with(&pdf), "the original bytes must be kept (incremental update)");
        Ok(())
    }

    #[test]
    fn byte_range_excludes_exactly_the_contents() -> Result<(), Box<dyn std::error::Error>> {
        let signer = fixture_signer()?;
        let signed = sign_pdf(&sample_pdf(), &signer, Utc::now(), &PdfSignOptions::default())?;
        let text = String::from_utf8_lossy(&signed);
        let at = text.find("/ByteRange[").ok_or("no ByteRange")? + "/ByteRange[".len();
        let end = text[at..].find(']').ok_or("no ]")? + at;
        let nums: Vec<usize> =
            text[at..end].split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
        assert_eq!(nums.len(), 4);
        assert_eq!(nums[0], 0);
        assert_eq!(signed[nums[1]], b'<');
        assert_eq!(signed[nums[2] - 1], b'>');
        assert_eq!(nums[2] + nums[3], signed.len());
        Ok(())
    }

    /// The fast path writes exactly what the lopdf path writes, for every shipped layout and for
    /// descriptive strings that need escaping (ASCII with parentheses and backslashes) or
    /// UTF-16 (Chinese), and with entries left out.
    #[test]
    fn rendered_face_is_signed_as_sign_pdf_signs_it() -> Result<(), Box<dyn std::error::Error>> {
        let signer = fixture_signer()?;
        let samples = crate::render::test_support::rendered_samples();
        if samples.is_empty() {
            eprintln!("no face font; skipped");
            return Ok(());
        }
        let at = DateTime::from_timestamp(1_800_000_000, 0).ok_or("time")?;
        let options = [
            PdfSignOptions {
                reason: "食品经营许可证 电子证照签发".into(),
                location: "220104".into(),
                name: "长春市朝阳区市场监督管理局".into(),
                tsa: None,
            },
            PdfSignOptions {
                reason: "a (b) c) \\ d(".into(),
                location: String::new(),
                name: "x\ry".into(),
                tsa: None,
            },
            PdfSignOptions::default(),
        ];
        for (i, rendered) in samples.into_iter().enumerate() {
            let opts = &options[i % options.len()];
            let slow = sign_pdf(rendered.bytes(), &signer, at, opts)?;
            let fast = sign_rendered_pdf(rendered, &signer, at, opts)?;
            assert!(fast == slow, "sample {i}: the two signing paths differ");
        }
        Ok(())
    }

    /// Without a TSA the CMS fills `/Contents` exactly: a signed face carries no zero padding
    /// (it was 8,192 bytes reserved, 16 KB of hex, for a CMS of about 2,700 bytes).
    #[test]
    fn contents_hold_the_cms_without_padding() -> Result<(), Box<dyn std::error::Error>> {
        use der::Decode as _;
        let signer = fixture_signer()?;
        let signed = sign_pdf(&sample_pdf(), &signer, Utc::now(), &PdfSignOptions::default())?;
        let at = find(&signed, b"/Contents<").ok_or("no /Contents")? + "/Contents<".len();
        let len = find(&signed[at..], b">").ok_or("no >")?;
        let cms = hex::decode(&signed[at..at + len])?;
        let parsed = cms::content_info::ContentInfo::from_der(&cms)?;
        assert_eq!(parsed.content_type, crate::sign::signed_data::OID_SIGNED_DATA);
        assert_eq!(cms.len(), contents_reserve(&signer, None)?);
        Ok(())
    }

    /// A TSA that returns a token of `len` bytes while claiming its tokens take `claimed`.
    #[derive(Debug)]
    struct LongTokenTsa {
        len: usize,
        claimed: usize,
        stamps: std::sync::atomic::AtomicUsize,
    }

    impl Tsa for LongTokenTsa {
        fn stamp(
            &self,
            _message: &[u8],
        ) -> Result<crate::timestamp::Token, crate::timestamp::TsaError> {
            self.stamps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // An OCTET STRING of `len` bytes in all (4 bytes of header).
            let mut der = vec![0x04, 0x82];
            der.extend_from_slice(&u16::try_from(self.len - 4).unwrap_or(0).to_be_bytes());
            der.resize(self.len, 0xA5);
            let imprint = crate::timestamp::imprint_of(b"")?;
            Ok(crate::timestamp::Token {
                der,
                gen_time: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
                imprint,
                serial: "01".into(),
            })
        }
        fn url(&self) -> &str {
            "test"
        }
        fn largest_token_len(&self) -> usize {
            self.claimed
        }
    }

    /// `/Contents` is reserved for the tokens the TSA has returned so far; a longer token makes
    /// the signer sign again with room for it, by both paths, to the same bytes.
    #[test]
    fn a_token_longer_than_the_reserve_is_signed_again_with_room_for_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let signer = fixture_signer()?;
        let at = DateTime::from_timestamp(1_800_000_000, 0).ok_or("time")?;
        let tsa = Arc::new(LongTokenTsa { len: 2000, claimed: 1000, stamps: Default::default() });
        let opts = PdfSignOptions { tsa: Some(tsa.clone()), ..Default::default() };
        let expected_reserve = contents_reserve(&signer, Some(tsa.as_ref()))?;
        assert_eq!(expected_reserve, detached_cms_len(&signer)? + 1000 + TIMESTAMP_TOKEN_SLACK);

        let signed = sign_pdf(&sample_pdf(), &signer, at, &opts)?;
        assert_eq!(tsa.stamps.load(std::sync::atomic::Ordering::Relaxed), 2);
        let at_contents = find(&signed, b"/Contents<").ok_or("no /Contents")? + 10;
        let hex_len = find(&signed[at_contents..], b">").ok_or("no >")?;
        let cms = hex::decode(&signed[at_contents..at_contents + hex_len])?;
        let needed = cms.len() - cms.iter().rev().take_while(|&&b| b == 0).count();
        assert!(needed > expected_reserve, "the token did not fit the first reserve");
        assert_eq!(cms.len(), needed + TIMESTAMP_TOKEN_SLACK, "room for the token seen");
        let token = vec![0xA5; 1996];
        assert!(find(&cms, &token).is_some(), "the token is in the CMS");

        for rendered in crate::render::test_support::rendered_samples().into_iter().take(1) {
            let by_lopdf = sign_pdf(rendered.bytes(), &signer, at, &opts)?;
            let direct = sign_rendered_pdf(rendered, &signer, at, &opts)?;
            assert_eq!(direct, by_lopdf);
        }
        Ok(())
    }

    #[test]
    fn garbage_input_is_a_named_error() -> Result<(), Box<dyn std::error::Error>> {
        let signer = fixture_signer()?;
        let result = sign_pdf(b"not a pdf", &signer, Utc::now(), &PdfSignOptions::default());
        assert!(matches!(result, Err(SignError::PdfParse { .. })), "{result:?}");
        Ok(())
    }
}
