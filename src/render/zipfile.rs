//! A small deterministic zip writer for OFD packages (GB/T 33190-2016 §7.2: an OFD is a zip,
//! PKWARE APPNOTE 6.3): local headers, data, central directory, end record; no zip64, no extra
//! fields, no data descriptors. Every entry carries one DOS date and the same attributes, so the
//! same entries give the same bytes.
//!
//! Why not the `zip` crate's writer (still used to read): it sets up a fresh compressor for
//! every deflated entry (hundreds of kilobytes of window and hash tables, allocated and zeroed
//! per OFD), where [`crate::pdf::compress::deflate`] keeps one per thread; and the package's
//! files are whole in memory, so nothing here needs streaming.

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

use crate::pdf::compress::deflate;

/// How an entry is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Stored,
    /// Raw deflate (method 8) at this level.
    Deflated(u32),
}

/// Why a zip could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ZipWriteError {
    #[error("zip entry {path}: {reason}")]
    Entry { path: String, reason: String },
    #[error(
        "a zip of {entries} entries and {bytes} bytes needs zip64, which OFD writers do not use"
    )]
    TooLarge { entries: usize, bytes: usize },
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// "Made by" Unix (3), spec 2.0: the external attributes below are Unix mode bits.
const MADE_BY: u16 = (3 << 8) | 20;
/// A regular file, rw-r--r--, in the high half of the external attributes.
const EXTERNAL_ATTRIBUTES: u32 = 0o100_644 << 16;

/// One written entry, for the central directory.
struct Written<'a> {
    path: &'a str,
    method: Method,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
}

/// The zip of `entries` (path inside the zip, bytes, how to write it) in order, every entry
/// dated `modified` (DOS time, UTC, the year clamped to 1980–2107). Paths are ASCII (the UTF-8
/// flag is not set). Fails when deflating fails or the zip would need zip64.
pub(crate) fn write_zip<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a [u8], Method)>,
    modified: DateTime<Utc>,
    capacity: usize,
) -> Result<Vec<u8>, ZipWriteError> {
    let (time, date) = dos_time(modified);
    let mut out = Vec::with_capacity(capacity);
    let mut written = Vec::new();
    let too_large = |entries: usize, bytes: usize| ZipWriteError::TooLarge { entries, bytes };
    for (path, bytes, method) in entries {
        let deflated;
        let (data, method) = match method {
            Method::Stored => (bytes, Method::Stored),
            Method::Deflated(level) => {
                deflated = deflate(bytes, level, false).map_err(|e| ZipWriteError::Entry {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
                (deflated.as_slice(), Method::Deflated(level))
            }
        };
        let u32_of = |n: usize| u32::try_from(n).map_err(|_| too_large(written.len() + 1, n));
        let entry = Written {
            path,
            method,
            crc: crc32fast::hash(bytes),
            compressed: u32_of(data.len())?,
            size: u32_of(bytes.len())?,
            offset: u32_of(out.len())?,
        };
        let name_len =
            u16::try_from(path.len()).map_err(|_| too_large(written.len() + 1, path.len()))?;
        put32(&mut out, LOCAL_HEADER);
        put16(&mut out, version_needed(method));
        put16(&mut out, 0); // flags
        put16(&mut out, method_code(method));
        put16(&mut out, time);
        put16(&mut out, date);
        put32(&mut out, entry.crc);
        put32(&mut out, entry.compressed);
        put32(&mut out, entry.size);
        put16(&mut out, name_len);
        put16(&mut out, 0); // extra field length
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(data);
        written.push(entry);
    }
    let count = u16::try_from(written.len()).map_err(|_| too_large(written.len(), out.len()))?;
    let directory_offset =
        u32::try_from(out.len()).map_err(|_| too_large(written.len(), out.len()))?;
    for w in &written {
        put32(&mut out, CENTRAL_HEADER);
        put16(&mut out, MADE_BY);
        put16(&mut out, version_needed(w.method));
        put16(&mut out, 0); // flags
        put16(&mut out, method_code(w.method));
        put16(&mut out, time);
        put16(&mut out, date);
        put32(&mut out, w.crc);
        put32(&mut out, w.compressed);
        put32(&mut out, w.size);
        // The length fitted a u16 when the local header was written.
        put16(&mut out, u16::try_from(w.path.len()).unwrap_or(u16::MAX));
        put16(&mut out, 0); // extra field length
        put16(&mut out, 0); // comment length
        put16(&mut out, 0); // disk number start
        put16(&mut out, 0); // internal attributes
        put32(&mut out, EXTERNAL_ATTRIBUTES);
        put32(&mut out, w.offset);
        out.extend_from_slice(w.path.as_bytes());
    }
    let directory_len = u32::try_from(out.len())
        .map_err(|_| too_large(written.len(), out.len()))?
        - directory_offset;
    put32(&mut out, END_OF_CENTRAL_DIRECTORY);
    put16(&mut out, 0); // this disk
    put16(&mut out, 0); // the directory's disk
    put16(&mut out, count);
    put16(&mut out, count);
    put32(&mut out, directory_len);
    put32(&mut out, directory_offset);
    put16(&mut out, 0); // comment length
    Ok(out)
}

fn version_needed(method: Method) -> u16 {
    match method {
        Method::Stored => 10,
        Method::Deflated(_) => 20,
    }
}

fn method_code(method: Method) -> u16 {
    match method {
        Method::Stored => 0,
        Method::Deflated(_) => 8,
    }
}

/// MS-DOS time and date (2-second resolution), the year clamped to what they can hold.
fn dos_time(t: DateTime<Utc>) -> (u16, u16) {
    let year = t.year().clamp(1980, 2107) - 1980;
    // Each part fits its bits by construction (chrono's ranges, the clamp above).
    let part = |v: u32| u16::try_from(v).unwrap_or(0);
    let time = (part(t.hour()) << 11) | (part(t.minute()) << 5) | (part(t.second()) / 2);
    let date = (u16::try_from(year).unwrap_or(0) << 9) | (part(t.month()) << 5) | part(t.day());
    (time, date)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use chrono::TimeZone as _;

    use super::*;

    #[test]
    fn the_zip_crate_reads_back_every_entry_with_its_method_and_date() {
        let page = "<ofd:Page>".repeat(400);
        let entries: Vec<(&str, &[u8], Method)> = vec![
            ("OFD.xml", b"<ofd:OFD/>", Method::Stored),
            ("Doc_0/Pages/Page_0/Content.xml", page.as_bytes(), Method::Deflated(1)),
            ("Doc_0/Res/empty.bin", b"", Method::Stored),
        ];
        let at = Utc.with_ymd_and_hms(2026, 12, 6, 13, 45, 31).unwrap();
        let bytes = write_zip(entries.clone(), at, 0).unwrap();
        assert_eq!(bytes, write_zip(entries.clone(), at, 0).unwrap(), "deterministic");
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), entries.len());
        for (i, (path, content, method)) in entries.iter().enumerate() {
            let mut file = zip.by_index(i).unwrap();
            assert_eq!(file.name().unwrap(), *path);
            let expected = match method {
                Method::Stored => zip::CompressionMethod::Stored,
                Method::Deflated(_) => zip::CompressionMethod::Deflated,
            };
            assert_eq!(file.compression(), expected);
            assert_eq!(file.unix_mode(), Some(0o100_644));
            let modified = file.last_modified().unwrap();
            assert_eq!(
                (
                    modified.year(),
                    modified.month(),
                    modified.day(),
                    modified.hour(),
                    modified.minute()
                ),
                (2026, 12, 6, 13, 45)
            );
            assert_eq!(modified.second(), 30, "DOS time has 2-second steps");
            let mut read = Vec::new();
            file.read_to_end(&mut read).unwrap();
            assert_eq!(read, *content);
        }
        let page_entry = zip.by_index(1).unwrap();
        assert!(page_entry.compressed_size() < page_entry.size() / 10);
    }

    #[test]
    fn dates_outside_what_dos_holds_are_clamped_to_its_years() {
        let early = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(dos_time(early).1 >> 9, 0);
        let late = Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(dos_time(late).1 >> 9, 127);
    }
}
