//! PDF object values and indirect objects (ISO 32000-1 §7.3), written the way lopdf writes
//! them, so that hand-assembled files and updates are byte-identical to lopdf's serialisation.

use std::io::Write as _;
use std::ops::Range;

use chrono::{DateTime, Utc};
use lopdf::{Object, StringFormat, Writer};

/// A name object (`/Name`, §7.3.5).
pub fn name(s: &str) -> Object {
    Object::Name(s.as_bytes().to_vec())
}

/// A date (§7.9.4) in UTC: `(D:YYYYMMDDHHmmSSZ)`.
pub fn date(t: DateTime<Utc>) -> Object {
    Object::String(t.format("D:%Y%m%d%H%M%SZ").to_string().into_bytes(), StringFormat::Literal)
}

/// A text string (§7.9.2.2) always as UTF-16BE with a byte order mark, hex-encoded.
pub fn utf16_text_string(s: &str) -> Object {
    let mut bytes = vec![0xFE, 0xFF];
    for unit in s.encode_utf16() {
        bytes.extend_from_slice(&unit.to_be_bytes());
    }
    Object::String(bytes, StringFormat::Hexadecimal)
}

/// A text string (§7.9.2.2): ASCII as a literal string, anything else as
/// [`utf16_text_string`].
pub fn text_string(text: &str) -> Object {
    if text.is_ascii() { Object::string_literal(text) } else { utf16_text_string(text) }
}

/// Writes the direct object `object` the way lopdf does.
pub fn write_object(out: &mut Vec<u8>, object: &Object) -> std::io::Result<()> {
    Writer::write_object(out, object)
}

/// Writes `number 0 obj` … `endobj` with lopdf's framing; returns where the body is.
pub fn write_indirect_object(
    out: &mut Vec<u8>,
    number: u32,
    object: &Object,
) -> std::io::Result<Range<usize>> {
    let _ = writeln!(out, "{number} 0 obj");
    if Writer::need_separator(object) {
        out.push(b' ');
    }
    let start = out.len();
    Writer::write_object(out, object)?;
    let end = out.len();
    if Writer::need_end_separator(object) {
        out.push(b' ');
    }
    out.extend_from_slice(b"\nendobj\n");
    Ok(start..end)
}
