//! Text encodings of CSV exports: sniffing UTF-8 / UTF-8 with BOM / GB18030 from the first bytes,
//! and decoding one field without replacement characters.
//!
//! Chinese systems write GBK (often labelled GB2312); GBK is decoded as GB18030, its superset,
//! which also covers rare name characters such as 䶮 (WHATWG Encoding: the gbk decoder *is* the
//! gb18030 decoder). Undecodable bytes are reported, never turned into U+FFFD.

use encoding_rs::{DecoderResult, GB18030};

use super::Encoding;

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 64 * 1024;

pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The decoder chosen for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Gb18030,
    /// Auto-detected, but the sniffed window held only ASCII (a long export whose first 64 KiB
    /// are codes and dates): decided at the first non-ASCII field, by [`settle`].
    Undecided,
}

impl TextEncoding {
    /// Name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "UTF-8",
            TextEncoding::Gb18030 => "GB18030",
            TextEncoding::Undecided => "UTF-8 or GB18030",
        }
    }
}

/// The outcome of looking at the start of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub encoding: TextEncoding,
    /// Bytes to skip at the start (a UTF-8 BOM).
    pub bom_len: usize,
    /// What [`RecordSource::encoding_used`](super::RecordSource::encoding_used) reports.
    pub label: &'static str,
}

/// Chooses the encoding from the declared one and the first bytes of the file (`head`, at most
/// [`SNIFF_BYTES`]; `complete` is true when `head` is the whole file).
///
/// Auto: a UTF-8 BOM → UTF-8; valid UTF-8 (a multibyte character cut by the end of the window
/// is allowed) → UTF-8; anything else → GB18030. A declared UTF-8 file with a BOM has it
/// stripped; a declared GBK/GB18030 file is taken as it is.
pub fn sniff(declared: &Encoding, head: &[u8], complete: bool) -> Sniffed {
    let has_bom = head.starts_with(UTF8_BOM);
    let utf8 = |bom: bool| Sniffed {
        encoding: TextEncoding::Utf8,
        bom_len: if bom { UTF8_BOM.len() } else { 0 },
        label: if bom { "UTF-8 (BOM)" } else { "UTF-8" },
    };
    let gb = Sniffed { encoding: TextEncoding::Gb18030, bom_len: 0, label: "GB18030" };
    match declared {
        Encoding::Utf8 => utf8(has_bom),
        Encoding::Gbk | Encoding::Gb18030 => gb,
        Encoding::Auto if has_bom => utf8(true),
        Encoding::Auto if head.is_ascii() && !complete => Sniffed {
            encoding: TextEncoding::Undecided,
            bom_len: 0,
            label: "ASCII so far (UTF-8 or GB18030 decided at the first non-ASCII field)",
        },
        Encoding::Auto => match std::str::from_utf8(head) {
            Ok(_) => utf8(false),
            // `error_len() == None`: the input ended inside a character, which is only
            // acceptable when the window cut the file, not at the real end of the file.
            Err(e) if e.error_len().is_none() && !complete => utf8(false),
            Err(_) => gb,
        },
    }
}

/// The encoding of an [`TextEncoding::Undecided`] file, decided by its first non-ASCII field:
/// UTF-8 when that field is valid UTF-8, else GB18030 (real GBK text is almost never valid
/// UTF-8). Other encodings stay as they are; `None` while the field is ASCII.
pub fn settle(encoding: TextEncoding, field: &[u8]) -> Option<TextEncoding> {
    match encoding {
        TextEncoding::Undecided if field.is_ascii() => None,
        TextEncoding::Undecided if simdutf8::basic::from_utf8(field).is_ok() => {
            Some(TextEncoding::Utf8)
        }
        TextEncoding::Undecided => Some(TextEncoding::Gb18030),
        settled => Some(settled),
    }
}

/// Decodes one field. On failure returns the offending bytes (at most 4).
pub fn decode_field(encoding: TextEncoding, bytes: &[u8]) -> Result<String, Vec<u8>> {
    match encoding {
        // Only ASCII has been seen, and ASCII is the same in both.
        TextEncoding::Undecided => match settle(encoding, bytes) {
            None => Ok(String::from_utf8_lossy(bytes).into_owned()),
            Some(settled) => decode_field(settled, bytes),
        },
        // simdutf8 checks valid text several times faster than std (Chinese text is never on
        // std's ASCII fast path); std then finds the offending bytes of an invalid field.
        TextEncoding::Utf8 => {
            match simdutf8::basic::from_utf8(bytes).or_else(|_| std::str::from_utf8(bytes)) {
                Ok(s) => Ok(s.to_owned()),
                Err(e) => {
                    let start = e.valid_up_to();
                    let len = e.error_len().unwrap_or(bytes.len().saturating_sub(start)).min(4);
                    Err(bytes.get(start..start + len).unwrap_or_default().to_vec())
                }
            }
        }
        TextEncoding::Gb18030 => {
            // ASCII is identical in GB18030 and needs no table lookups.
            if bytes.is_ascii() {
                return std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| Vec::new());
            }
            match GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
                Some(text) => Ok(text.into_owned()),
                None => Err(malformed_gb18030(bytes)),
            }
        }
    }
}

/// Finds the first malformed sequence in `bytes` (known to be invalid GB18030).
fn malformed_gb18030(bytes: &[u8]) -> Vec<u8> {
    let mut decoder = GB18030.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3 + 16);
    let (result, read) = decoder.decode_to_string_without_replacement(bytes, &mut out, true);
    match result {
        DecoderResult::Malformed(bad, after) => {
            let end = read.saturating_sub(usize::from(after));
            let start = end.saturating_sub(usize::from(bad));
            let shown = bytes.get(start..end).unwrap_or_default();
            shown.get(..4).unwrap_or(shown).to_vec()
        }
        DecoderResult::InputEmpty | DecoderResult::OutputFull => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_bom_utf8_and_gb18030() {
        let s = sniff(&Encoding::Auto, "\u{feff}名称,地址".as_bytes(), true);
        assert_eq!((s.encoding, s.bom_len, s.label), (TextEncoding::Utf8, 3, "UTF-8 (BOM)"));
        let s = sniff(&Encoding::Auto, "名称,地址".as_bytes(), true);
        assert_eq!((s.encoding, s.bom_len, s.label), (TextEncoding::Utf8, 0, "UTF-8"));
        let (gbk, _, _) = GB18030.encode("名称,地址");
        let s = sniff(&Encoding::Auto, &gbk, true);
        assert_eq!((s.encoding, s.label), (TextEncoding::Gb18030, "GB18030"));
        let s = sniff(&Encoding::Gbk, "abc".as_bytes(), true);
        assert_eq!(s.label, "GB18030");
    }

    #[test]
    fn sniff_allows_a_character_cut_by_the_window_only() {
        let text = "名称".as_bytes();
        let cut = text.get(..4).unwrap_or_default();
        assert_eq!(sniff(&Encoding::Auto, cut, false).encoding, TextEncoding::Utf8);
        assert_eq!(sniff(&Encoding::Auto, cut, true).encoding, TextEncoding::Gb18030);
    }

    #[test]
    fn decode_gb18030_only_character() {
        let (bytes, _, unmappable) = GB18030.encode("李䶮");
        assert!(!unmappable);
        assert_eq!(decode_field(TextEncoding::Gb18030, &bytes).as_deref(), Ok("李䶮"));
    }

    #[test]
    fn decode_reports_bad_bytes() {
        assert_eq!(decode_field(TextEncoding::Gb18030, b"ab\xFF\xFEcd"), Err(vec![0xFF]));
        assert_eq!(decode_field(TextEncoding::Utf8, b"ab\xFF\xFEcd"), Err(vec![0xFF]));
        assert_eq!(decode_field(TextEncoding::Utf8, b"ab\xE5\x90"), Err(vec![0xE5, 0x90]));
    }
}
