//! The file writer: a numbered set of objects → a PDF 1.7 file with a classic cross-reference
//! table (ISO 32000-1 §7.5), plus the map of where the parts an incremental update (§7.5.6)
//! rewrites or repeats are ([`RenderedPdf`]), so that a signer can append to the file without
//! parsing it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::Range;

use lopdf::Object;
use sha2::{Digest, Sha256};

use super::PdfError;
use super::objects::write_indirect_object;

/// A written one-page file and what an incremental update (ISO 32000-1 §7.5.6) needs to know
/// about it. Only [`write_file`] makes one, so the layout always describes these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPdf {
    bytes: Vec<u8>,
    layout: PdfLayout,
}

/// Where the parts of a written file that an incremental update rewrites or repeats are.
/// Offsets are byte offsets into [`RenderedPdf::bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfLayout {
    /// The catalog, as written (for a face: no `/AcroForm` yet).
    pub catalog: ObjectSpan,
    /// The first page, as written (for a face: no `/Annots` yet).
    pub page: ObjectSpan,
    /// The trailer entries to repeat in the update, `/Size` excepted
    /// (`/Root 1 0 R/Info 10 0 R/ID[<…><…>]`).
    pub trailer_entries: Range<usize>,
    /// Trailer `/Size`: the first free object number.
    pub size: u32,
    /// Offset of the `xref` keyword (the file's `startxref`).
    pub xref_offset: usize,
}

/// An indirect object (generation 0) whose value is a dictionary: its number and where the
/// dictionary, `<<` to `>>`, is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSpan {
    pub number: u32,
    pub dict: Range<usize>,
}

impl RenderedPdf {
    /// The PDF file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The PDF file, without the layout.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Where the catalog, page, trailer and xref table are.
    pub fn layout(&self) -> &PdfLayout {
        &self.layout
    }

    /// The file and its layout, for appending an update without copying the bytes.
    pub fn into_parts(self) -> (Vec<u8>, PdfLayout) {
        (self.bytes, self.layout)
    }
}

/// The object numbers the trailer and [`PdfLayout`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentRoots {
    /// `/Root`: the catalog.
    pub catalog: u32,
    /// The page an incremental update annotates (the signature widget's page).
    pub page: u32,
    /// `/Info`: the document information dictionary.
    pub info: u32,
}

/// Placeholder of the trailer `/ID` strings, replaced by a content hash after writing.
const ID_PLACEHOLDER_HEX: &[u8; 32] = b"00000000000000000000000000000000";

/// Serialises `objects` (numbered 1, 2, … without gaps) as a PDF 1.7 file: the bytes lopdf's
/// `Document::save` writes for them (object bodies by lopdf's own writer, the framing, the
/// classic xref table and the trailer here), so that the offsets an incremental update needs
/// are known without parsing the result. The trailer `/ID` (both strings) is the first 16 bytes
/// of the SHA-256 of the file with the `/ID` digits still zero.
///
/// Fails with [`PdfError::Write`] when the numbers have gaps, when the catalog or page of
/// `roots` is not among `objects`, or when lopdf cannot serialise an object.
pub fn write_file(
    objects: &BTreeMap<u32, Object>,
    roots: DocumentRoots,
) -> Result<RenderedPdf, PdfError> {
    let write_err = |reason: String| PdfError::Write { reason };
    let mut out: Vec<u8> = Vec::with_capacity(48 * 1024);
    out.extend_from_slice(b"%PDF-1.7\n%\xBB\xAD\xC0\xDE\n");
    let mut offsets = Vec::with_capacity(objects.len());
    let mut catalog = None;
    let mut page = None;
    for (&number, object) in objects {
        offsets.push((number, out.len()));
        let body = write_indirect_object(&mut out, number, object)
            .map_err(|e| write_err(e.to_string()))?;
        if number == roots.catalog {
            catalog = Some(ObjectSpan { number, dict: body });
        } else if number == roots.page {
            page = Some(ObjectSpan { number, dict: body });
        }
    }
    let (Some(catalog), Some(page)) = (catalog, page) else {
        return Err(write_err("catalog or page object missing".into()));
    };
    let size = offsets.last().map_or(1, |(n, _)| n + 1);
    if offsets.iter().zip(1..).any(|((n, _), expected)| *n != expected) {
        return Err(write_err("object numbers are not 1, 2, 3, …".into()));
    }
    let xref_offset = out.len();
    write_xref_table(&mut out, &offsets);
    out.extend_from_slice(b"trailer\n<<");
    let entries_start = out.len();
    let _ = write!(out, "/Root {} 0 R/Info {} 0 R/ID[<", roots.catalog, roots.info);
    let first_id = out.len();
    out.extend_from_slice(ID_PLACEHOLDER_HEX);
    out.extend_from_slice(b"><");
    let second_id = out.len();
    out.extend_from_slice(ID_PLACEHOLDER_HEX);
    out.extend_from_slice(b">]");
    let trailer_entries = entries_start..out.len();
    let _ = write!(out, "/Size {size}>>\nstartxref\n{xref_offset}\n%%EOF");

    // The document /ID (ISO 32000-1 §14.4): a hash of the content, so that the same objects
    // give the same file.
    let digest = Sha256::digest(&out);
    let mut hex_id = [0u8; 32];
    hex::encode_to_slice(digest.get(..16).unwrap_or_default(), &mut hex_id)
        .map_err(|e| write_err(e.to_string()))?;
    hex_id.make_ascii_uppercase();
    for at in [first_id, second_id] {
        if let Some(dst) = out.get_mut(at..at + hex_id.len()) {
            dst.copy_from_slice(&hex_id);
        }
    }
    Ok(RenderedPdf {
        bytes: out,
        layout: PdfLayout { catalog, page, trailer_entries, size, xref_offset },
    })
}

/// A classic cross-reference table (ISO 32000-1 §7.5.4) for objects at `offsets` (number,
/// byte offset; ascending numbers, generation 0), laid out as lopdf writes it: one subsection
/// per run of consecutive numbers, the free head of the free list (object 0) joining the first
/// subsection when that starts at object 1.
pub fn write_xref_table(out: &mut Vec<u8>, offsets: &[(u32, usize)]) {
    out.extend_from_slice(b"xref\n");
    let mut rest = offsets;
    let mut first = true;
    while let Some(&(start, _)) = rest.first() {
        let run = rest.iter().zip(start..).take_while(|((n, _), expected)| n == expected).count();
        let (section, tail) = rest.split_at(run);
        if first && start == 1 {
            let _ = write!(out, "0 {}\n0000000000 65535 f \n", run + 1);
        } else {
            if first {
                out.extend_from_slice(b"0 1\n0000000000 65535 f \n");
            }
            let _ = writeln!(out, "{start} {run}");
        }
        for (_, offset) in section {
            let _ = writeln!(out, "{offset:010} 00000 n ");
        }
        first = false;
        rest = tail;
    }
    if first {
        out.extend_from_slice(b"0 1\n0000000000 65535 f \n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xref_table_has_one_subsection_per_run() {
        let mut out = Vec::new();
        write_xref_table(&mut out, &[(1, 15), (3, 120), (13, 9000), (14, 12000)]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "xref\n0 2\n0000000000 65535 f \n0000000015 00000 n \n\
             3 1\n0000000120 00000 n \n\
             13 2\n0000009000 00000 n \n0000012000 00000 n \n"
        );
        let mut out = Vec::new();
        write_xref_table(&mut out, &[(4, 7)]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "xref\n0 1\n0000000000 65535 f \n4 1\n0000000007 00000 n \n"
        );
    }

    #[test]
    fn gaps_and_missing_roots_are_errors() {
        let dict = || Object::Dictionary(lopdf::Dictionary::new());
        let roots = DocumentRoots { catalog: 1, page: 2, info: 3 };
        let gap: BTreeMap<u32, Object> = [(1, dict()), (2, dict()), (4, dict())].into();
        assert!(matches!(write_file(&gap, roots), Err(PdfError::Write { .. })));
        let no_page: BTreeMap<u32, Object> = [(1, dict())].into();
        assert!(matches!(write_file(&no_page, roots), Err(PdfError::Write { .. })));
        let ok: BTreeMap<u32, Object> = [(1, dict()), (2, dict()), (3, dict())].into();
        let file = write_file(&ok, roots).unwrap();
        assert_eq!(file.layout().size, 4);
        assert!(file.bytes().ends_with(b"%%EOF"));
    }
}
