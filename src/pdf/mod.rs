//! The PDF writer shared by the renderer, the signer and the watermark of copies: object
//! values and indirect objects written as lopdf writes them ([`objects`]), whole files with a
//! classic xref table and the map an incremental update needs ([`writer`]), the face font
//! embedded as a Type0/Identity-H font with a `/ToUnicode` CMap ([`embed`]), and Flate
//! compression ([`compress`]).
//!
//! It knows PDF (ISO 32000-1) and the face font ([`crate::font`]), nothing about licences,
//! layouts or signatures: what goes on a page is the renderer's business, the signature
//! dictionary the signer's. It sits below both and imports neither.

pub mod compress;
pub mod embed;
pub mod objects;
pub mod writer;

pub use embed::{EmbeddedFont, FontProgram, SubsetPath};
pub use writer::{DocumentRoots, ObjectSpan, PdfLayout, RenderedPdf, write_file, write_xref_table};

/// Why a PDF could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The face font could not be subset (printpdf/allsorts).
    #[error("font subsetting failed: {reason}")]
    Subset { reason: String },

    /// Serialising or compressing the file failed.
    #[error("writing the PDF failed: {reason}")]
    Write { reason: String },
}
