//! Flate compression of PDF streams (ISO 32000-1 §7.4.4, RFC 1950 zlib) and of OFD zip
//! entries (RFC 1951), with libdeflate: one reusable compressor per thread and level, and the
//! levels chosen for each kind of stream.
//!
//! libdeflate rather than zlib (zlib-rs through flate2, before): it compresses a whole buffer at
//! once, which is all we ever do, and on a licence's streams it is 2–4 times faster for output
//! as small or smaller (the font program: 57 µs for 15,941 B at level 1, where zlib-rs took
//! 235 µs for 15,977 B at level 2; BENCHMARKS.md, session 16). Its level 1 still builds
//! dynamic Huffman codes, unlike zlib-rs' fixed-code "quick" level 1.
//!
//! Deterministic: libdeflate's output depends only on the input, the level and the library's
//! version (pinned by Cargo.lock; the golden artefact list changes with it).

use lopdf::{Dictionary, Stream};

use super::PdfError;
use super::objects::name;

/// Level of content and ToUnicode streams: text operators and hex codes compress well (content
/// stream of the food permit: 7,277 B → 1,698 B at 6, 1,945 B at 1).
pub const TEXT_LEVEL: u32 = 6;
/// Level of font programs: flattened charstrings are nearly incompressible, so the fastest
/// level is enough (17,811 B → 15,941 B at 1, 15,880 B at 2 in twice the time).
pub const FONT_PROGRAM_LEVEL: u32 = 1;
/// Level of images compressed once per process (seals).
pub const IMAGE_LEVEL: u32 = 12;

/// Why a stream could not be compressed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateError {
    /// Not one of libdeflate's levels (0–12).
    #[error("compression level {0} is not one of 0–12")]
    Level(u32),
    /// The output did not fit the bound libdeflate gave for it (a libdeflate bug).
    #[error("compressed data larger than libdeflate's bound")]
    Bound,
}

/// zlib-compresses `data` at `level` (RFC 1950), reusing one compressor per thread (see
/// [`deflate`]).
pub fn zlib(data: &[u8], level: u32) -> Result<Vec<u8>, DeflateError> {
    deflate(data, level, true)
}

/// Deflates `data` at `level`, in a zlib wrapper (RFC 1950) when `zlib_header`, else raw
/// (RFC 1951, as zip entries hold it), reusing one compressor per thread and level: a fresh
/// one allocates and clears its tables, which costs more than compressing a small stream.
pub fn deflate(data: &[u8], level: u32, zlib_header: bool) -> Result<Vec<u8>, DeflateError> {
    use libdeflater::{CompressionLvl, Compressor};
    thread_local! {
        static COMPRESSORS: std::cell::RefCell<Vec<(u32, Compressor)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let lvl = i32::try_from(level)
        .ok()
        .and_then(|l| CompressionLvl::new(l).ok())
        .ok_or(DeflateError::Level(level))?;
    let run = |c: &mut Compressor| {
        let bound = if zlib_header {
            c.zlib_compress_bound(data.len())
        } else {
            c.deflate_compress_bound(data.len())
        };
        let mut out = vec![0u8; bound];
        let written = if zlib_header {
            c.zlib_compress(data, &mut out)
        } else {
            c.deflate_compress(data, &mut out)
        }
        .map_err(|_| DeflateError::Bound)?;
        out.truncate(written);
        Ok(out)
    };
    COMPRESSORS.with_borrow_mut(|pool| {
        if !pool.iter().any(|(l, _)| *l == level) {
            pool.push((level, Compressor::new(lvl)));
        }
        match pool.iter_mut().find(|(l, _)| *l == level) {
            Some((_, c)) => run(c),
            None => run(&mut Compressor::new(lvl)),
        }
    })
}

/// A stream of `content` compressed at `level`, with `/Filter /FlateDecode` added to `dict`
/// (lopdf adds `/Length` when writing). Fails only if compression fails.
pub fn compressed(mut dict: Dictionary, content: &[u8], level: u32) -> Result<Stream, PdfError> {
    let deflated = zlib(content, level).map_err(|e| PdfError::Write { reason: e.to_string() })?;
    dict.set("Filter", name("FlateDecode"));
    Ok(Stream::new(dict, deflated).with_compression(false))
}
