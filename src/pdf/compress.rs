//! Flate compression of PDF streams (ISO 32000-1 §7.4.4, RFC 1950 zlib): one reusable
//! compressor per thread and level, and the levels chosen for each kind of stream.
//!
//! Deterministic: the compressor is reset before each stream, so the same bytes and level give
//! the same output on every thread.

use lopdf::{Dictionary, Stream};

use super::PdfError;
use super::objects::name;

/// zlib level of content and ToUnicode streams: text operators and hex codes compress well,
/// and level 6 gets within 0.5 % of level 9 (content stream of the food permit: 8.4 KB → 2.15 KB
/// at 6 and 9, 2.56 KB at 1) for a fraction of its time.
pub const TEXT_LEVEL: u32 = 6;
/// zlib level of font programs: flattened charstrings are nearly incompressible, so the
/// fastest level with dynamic Huffman codes (2) is enough: the food permit grows by 10 bytes
/// against level 6 (37,059 vs 37,049). Level 1 (zlib-rs' fixed-code "quick" mode) adds 3.8 KB.
pub const FONT_PROGRAM_LEVEL: u32 = 2;
/// zlib level of images compressed once per process (seals).
pub const IMAGE_LEVEL: u32 = 9;

/// zlib-compresses `data` at `level` (RFC 1950), reusing one compressor per thread (see
/// [`deflate`]). Fails only if flate2 reports an error.
pub fn zlib(data: &[u8], level: u32) -> Result<Vec<u8>, flate2::CompressError> {
    deflate(data, level, true)
}

/// Deflates `data` at `level`, in a zlib wrapper (RFC 1950) when `zlib_header`, else raw
/// (RFC 1951, as zip entries hold it), reusing one compressor per thread, level and wrapper:
/// its window and hash tables are large to set up, and a fresh one per stream cost more than
/// compressing a page. Fails only if flate2 reports an error.
pub fn deflate(
    data: &[u8],
    level: u32,
    zlib_header: bool,
) -> Result<Vec<u8>, flate2::CompressError> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static COMPRESSORS: std::cell::RefCell<Vec<((u32, bool), Compress)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    fn run(c: &mut Compress, data: &[u8]) -> Result<Vec<u8>, flate2::CompressError> {
        c.reset();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(c.total_in()).unwrap_or(data.len());
            let rest = data.get(consumed..).unwrap_or_default();
            if c.compress_vec(rest, &mut out, FlushCompress::Finish)? == Status::StreamEnd {
                return Ok(out);
            }
            out.reserve(out.capacity().max(4096));
        }
    }
    let key = (level, zlib_header);
    let fresh = || Compress::new(Compression::new(level), zlib_header);
    COMPRESSORS.with_borrow_mut(|pool| {
        if !pool.iter().any(|(k, _)| *k == key) {
            pool.push((key, fresh()));
        }
        match pool.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => run(c, data),
            None => run(&mut fresh(), data),
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
