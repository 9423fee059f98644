//! What incremental updates (ISO 32000-1 §7.5.6) after the last signature of a PDF may do: only
//! add long-term validation material (PAdES B-LT, B-LTA; ETSI EN 319 142-1 §5.4–5.5), that is a
//! document security store (`/DSS`, its `/VRI` and the streams they list) and document
//! timestamps (`/Type /DocTimeStamp` in an invisible signature field). Anything else — a page's
//! content, a font, a new object that is neither, an object freed — leaves the document changed
//! after signing.
//!
//! Each update's objects are read through its classic cross-reference table and compared with
//! their previous version, found through the earlier tables. The scan is bounded like the rest
//! of `verify`: nothing is inflated (a stream is skipped by its direct `/Length`), objects are
//! parsed with a depth and a size cap, and a file that would need more — a cross-reference
//! stream, an object in an object stream, an indirect `/Length` — is refused with the reason,
//! never parsed further.

use std::collections::HashMap;
use std::ops::Range;

/// Deepest nesting of arrays and dictionaries read.
const MAX_DEPTH: usize = 32;
/// Most values (of any kind) read in one object.
const MAX_VALUES: usize = 100_000;
/// Most cross-reference sections followed.
const MAX_SECTIONS: usize = 256;
/// Most objects in the updates after the last signature.
const MAX_UPDATE_OBJECTS: usize = 10_000;

/// A PDF value (ISO 32000-1 §7.3), strings and names decoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// The number as written (compared as written: `0` and `0.0` differ).
    Number(Vec<u8>),
    Name(Vec<u8>),
    Str(Vec<u8>),
    Array(Vec<Value>),
    Dict(Vec<(Vec<u8>, Value)>),
    Ref(u32, u16),
}

impl Value {
    pub(crate) fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn is_name(&self, key: &[u8], name: &[u8]) -> bool {
        matches!(self.get(key), Some(Value::Name(n)) if n == name)
    }

    fn keys(&self) -> Vec<&[u8]> {
        match self {
            Value::Dict(entries) => entries.iter().map(|(k, _)| k.as_slice()).collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => std::str::from_utf8(n).ok()?.parse().ok(),
            _ => None,
        }
    }
}

/// An indirect object: its value and, for a stream, where the raw data is.
#[derive(Debug, Clone)]
pub(crate) struct IndirectObject {
    pub value: Value,
    pub stream: Option<Range<usize>>,
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
    values: usize,
}

fn is_white(b: u8) -> bool {
    matches!(b, 0 | b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

fn is_delimiter(b: u8) -> bool {
    matches!(b, b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%')
}

impl<'a> Lexer<'a> {
    fn new(bytes: &'a [u8], pos: usize) -> Lexer<'a> {
        Lexer { bytes, pos, values: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_white(&mut self) {
        while let Some(b) = self.peek() {
            if is_white(b) {
                self.pos += 1;
            } else if b == b'%' {
                while let Some(c) = self.peek() {
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn starts_with(&self, token: &[u8]) -> bool {
        self.bytes.get(self.pos..).is_some_and(|rest| rest.starts_with(token))
    }

    /// A regular token (keyword or number).
    fn word(&mut self) -> &'a [u8] {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_white(b) || is_delimiter(b) {
                break;
            }
            self.pos += 1;
        }
        self.bytes.get(start..self.pos).unwrap_or_default()
    }

    fn expect_word(&mut self, word: &[u8]) -> Result<(), String> {
        self.skip_white();
        let found = self.word();
        if found == word {
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", String::from_utf8_lossy(word), self.pos))
        }
    }

    fn unsigned(&mut self) -> Option<u64> {
        self.skip_white();
        let w = self.word();
        if w.is_empty() || w.len() > 19 || !w.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(w).ok()?.parse().ok()
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        self.values += 1;
        if depth > MAX_DEPTH || self.values > MAX_VALUES {
            return Err("object nested or sized beyond what is read".into());
        }
        self.skip_white();
        let at = self.pos;
        let b = self.peek().ok_or("object cut short")?;
        match b {
            b'<' if self.starts_with(b"<<") => {
                self.pos += 2;
                let mut entries = Vec::new();
                loop {
                    self.skip_white();
                    if self.starts_with(b">>") {
                        self.pos += 2;
                        return Ok(Value::Dict(entries));
                    }
                    let Value::Name(key) = self.value(depth + 1)? else {
                        return Err(format!("dictionary key is not a name at byte {}", self.pos));
                    };
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
            }
            b'<' => {
                self.pos += 1;
                let mut digits = Vec::new();
                loop {
                    let c = self.peek().ok_or("hex string cut short")?;
                    self.pos += 1;
                    match c {
                        b'>' => break,
                        c if c.is_ascii_hexdigit() => digits.push(c),
                        c if is_white(c) => {}
                        _ => return Err(format!("bad hex string at byte {at}")),
                    }
                }
                if digits.len() % 2 == 1 {
                    digits.push(b'0');
                }
                Ok(Value::Str(hex::decode(&digits).map_err(|e| e.to_string())?))
            }
            b'(' => self.literal_string(),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_white();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            b'/' => {
                self.pos += 1;
                let raw = self.word();
                let mut name = Vec::with_capacity(raw.len());
                let mut i = 0;
                while let Some(&c) = raw.get(i) {
                    if c == b'#'
                        && let Some(v) = raw
                            .get(i + 1..i + 3)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        name.push(v);
                        i += 3;
                    } else {
                        name.push(c);
                        i += 1;
                    }
                }
                Ok(Value::Name(name))
            }
            _ => {
                let w = self.word();
                match w {
                    b"true" => Ok(Value::Bool(true)),
                    b"false" => Ok(Value::Bool(false)),
                    b"null" => Ok(Value::Null),
                    w if !w.is_empty()
                        && w.iter().all(|c| c.is_ascii_digit() || b"+-.".contains(c)) =>
                    {
                        // `n g R`: look ahead without consuming anything else.
                        if w.iter().all(u8::is_ascii_digit) {
                            let save = self.pos;
                            if let Some(g) = self.unsigned() {
                                self.skip_white();
                                if self.peek() == Some(b'R')
                                    && self
                                        .bytes
                                        .get(self.pos + 1)
                                        .is_none_or(|&c| is_white(c) || is_delimiter(c))
                                {
                                    self.pos += 1;
                                    let n = std::str::from_utf8(w)
                                        .ok()
                                        .and_then(|s| s.parse().ok())
                                        .ok_or("object number out of range")?;
                                    let g = u16::try_from(g).map_err(|_| "bad generation")?;
                                    return Ok(Value::Ref(n, g));
                                }
                            }
                            self.pos = save;
                        }
                        Ok(Value::Number(w.to_vec()))
                    }
                    _ => Err(format!("unexpected token at byte {at}")),
                }
            }
        }
    }

    /// ISO 32000-1 §7.3.4.2, escapes decoded.
    fn literal_string(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut out = Vec::new();
        let mut nesting = 0usize;
        loop {
            let c = self.peek().ok_or("string cut short")?;
            self.pos += 1;
            match c {
                b'(' => {
                    nesting += 1;
                    out.push(c);
                }
                b')' if nesting == 0 => return Ok(Value::Str(out)),
                b')' => {
                    nesting -= 1;
                    out.push(c);
                }
                b'\\' => {
                    let e = self.peek().ok_or("string cut short")?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'\r' => {
                            if self.peek() == Some(b'\n') {
                                self.pos += 1;
                            }
                        }
                        b'\n' => {}
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push((v & 0xFF) as u8);
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

/// Reads the indirect object `number` at `offset` (`number 0 obj … endobj`), a stream's data
/// skipped by its direct `/Length`.
pub(crate) fn read_object(
    bytes: &[u8],
    offset: usize,
    number: u32,
) -> Result<IndirectObject, String> {
    let mut lx = Lexer::new(bytes, offset);
    let n = lx.unsigned().ok_or_else(|| format!("no object at byte {offset}"))?;
    let _generation = lx.unsigned().ok_or_else(|| format!("no object at byte {offset}"))?;
    if n != u64::from(number) {
        return Err(format!("object {number} is not at byte {offset}"));
    }
    lx.expect_word(b"obj")?;
    let value = lx.value(0)?;
    lx.skip_white();
    let mut stream = None;
    if lx.starts_with(b"stream") {
        lx.pos += b"stream".len();
        if lx.starts_with(b"\r\n") {
            lx.pos += 2;
        } else if lx.peek() == Some(b'\n') || lx.peek() == Some(b'\r') {
            lx.pos += 1;
        }
        let length = match value.get(b"Length") {
            Some(v @ Value::Number(_)) => v.number().filter(|l| *l >= 0.0).map(|l| l as usize),
            Some(Value::Ref(..)) => {
                return Err(format!("object {number}: indirect stream /Length is not read"));
            }
            _ => None,
        }
        .ok_or_else(|| format!("object {number}: stream without a /Length"))?;
        let end = lx.pos.checked_add(length).filter(|e| *e <= bytes.len());
        let end = end.ok_or_else(|| format!("object {number}: stream runs past the file"))?;
        stream = Some(lx.pos..end);
        lx.pos = end;
        lx.expect_word(b"endstream")?;
    }
    lx.expect_word(b"endobj")?;
    Ok(IndirectObject { value, stream })
}

/// One classic cross-reference section (ISO 32000-1 §7.5.4) and its trailer.
struct XrefSection {
    /// In-use entries: number → offset; freed numbers.
    used: Vec<(u32, usize)>,
    freed: Vec<u32>,
    trailer: Value,
}

fn read_xref_section(bytes: &[u8], offset: usize) -> Result<XrefSection, String> {
    let mut lx = Lexer::new(bytes, offset);
    lx.skip_white();
    if !lx.starts_with(b"xref") {
        return Err(format!(
            "the cross-reference section at byte {offset} is not a classic table (a \
             cross-reference stream is not read without inflating it)"
        ));
    }
    lx.pos += 4;
    let mut used = Vec::new();
    let mut freed = Vec::new();
    loop {
        lx.skip_white();
        if lx.starts_with(b"trailer") {
            lx.pos += b"trailer".len();
            break;
        }
        let start = lx.unsigned().ok_or("bad cross-reference subsection")?;
        let count = lx.unsigned().ok_or("bad cross-reference subsection")?;
        if count > MAX_UPDATE_OBJECTS as u64 * 100 {
            return Err("cross-reference subsection too large".into());
        }
        for i in 0..count {
            let at = lx.unsigned().ok_or("bad cross-reference entry")?;
            let _generation = lx.unsigned().ok_or("bad cross-reference entry")?;
            lx.skip_white();
            let kind = lx.word();
            let number = u32::try_from(start + i).map_err(|_| "object number out of range")?;
            match kind {
                b"n" => used.push((number, usize::try_from(at).map_err(|_| "bad offset")?)),
                b"f" if number != 0 => freed.push(number),
                b"f" => {}
                _ => return Err("bad cross-reference entry type".into()),
            }
        }
    }
    let trailer = lx.value(0)?;
    if !matches!(trailer, Value::Dict(_)) {
        return Err("trailer is not a dictionary".into());
    }
    if trailer.get(b"XRefStm").is_some() {
        return Err("a hybrid file's cross-reference stream is not read".into());
    }
    Ok(XrefSection { used, freed, trailer })
}

/// The number after the last `startxref` before `end`.
fn startxref_before(bytes: &[u8], end: usize) -> Option<usize> {
    let head = bytes.get(..end)?;
    let at = head.windows(9).rposition(|w| w == b"startxref")? + 9;
    let mut lx = Lexer::new(bytes, at);
    lx.unsigned().and_then(|v| usize::try_from(v).ok())
}

/// The last revision of a file: where each object it can reach is (number → offset, the
/// newest cross-reference section first, then through `/Prev`) and its trailer.
pub(crate) struct LastRevision {
    pub objects: HashMap<u32, usize>,
    pub trailer: Value,
}

/// Reads the cross-reference chain of the whole file, from its last `startxref`, with the same
/// bounds as the updates after a signature: classic tables only, at most [`MAX_SECTIONS`].
pub(crate) fn last_revision(bytes: &[u8]) -> Result<LastRevision, String> {
    let mut objects: HashMap<u32, usize> = HashMap::new();
    let mut next = startxref_before(bytes, bytes.len());
    let mut trailer = None;
    let mut sections = 0;
    while let Some(offset) = next {
        sections += 1;
        if sections > MAX_SECTIONS || offset >= bytes.len() {
            return Err("the cross-reference chain is broken".into());
        }
        let section = read_xref_section(bytes, offset)?;
        for (number, at) in &section.used {
            objects.entry(*number).or_insert(*at);
        }
        next = match section.trailer.get(b"Prev") {
            // A /Prev that does not go back would loop; MAX_SECTIONS stops it anyway.
            Some(v) => Some(v.number().map(|p| p as usize).ok_or("bad /Prev")?),
            None => None,
        };
        trailer.get_or_insert(section.trailer);
    }
    let trailer = trailer.ok_or("no cross-reference section")?;
    Ok(LastRevision { objects, trailer })
}

/// What the updates after the last signature hold, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppendedUpdates {
    /// For each update: (where it ends, whether it adds or replaces the `/DSS`, whether it
    /// adds a document timestamp).
    pub updates: Vec<(usize, bool, bool)>,
}

/// Checks that the updates in `bytes[signed_end..]` (the signed revision ends at
/// `signed_end`) only add validation data and document timestamps. `Err` says what else
/// one does, or why it cannot be checked.
pub(crate) fn check_appended_updates(
    bytes: &[u8],
    signed_end: usize,
) -> Result<AppendedUpdates, String> {
    // The state of the signed revision: every object's latest offset, through /Prev.
    let mut current: HashMap<u32, usize> = HashMap::new();
    let mut next = startxref_before(bytes, signed_end);
    let mut signed_trailer = None;
    let mut sections = 0;
    while let Some(offset) = next {
        sections += 1;
        if sections > MAX_SECTIONS || offset >= signed_end {
            return Err("the signed revision's cross-reference chain is broken".into());
        }
        let section = read_xref_section(bytes, offset)?;
        for (number, at) in &section.used {
            current.entry(*number).or_insert(*at);
        }
        next = match section.trailer.get(b"Prev") {
            Some(v) => Some(v.number().map(|p| p as usize).ok_or("bad /Prev")?),
            None => None,
        };
        signed_trailer.get_or_insert(section.trailer);
    }
    let signed_trailer = signed_trailer.ok_or("the signed revision has no cross-reference")?;
    let root = match signed_trailer.get(b"Root") {
        Some(Value::Ref(n, _)) => *n,
        _ => return Err("the signed revision's trailer has no /Root".into()),
    };

    let mut found = AppendedUpdates::default();
    let mut from = signed_end;
    let mut objects_seen = 0;
    while let Some(eof) = bytes.get(from..).and_then(|t| find(t, b"%%EOF")) {
        let end = from + eof + 5;
        let offset = startxref_before(bytes, end)
            .filter(|o| *o >= from && *o < end)
            .ok_or("an update after the last signature has no cross-reference of its own")?;
        let section = read_xref_section(bytes, offset)?;
        if let Some(n) = section.freed.first() {
            return Err(format!("an update after the last signature deletes object {n}"));
        }
        for key in [&b"Root"[..], b"Info", b"Encrypt"] {
            if section.trailer.get(key) != signed_trailer.get(key) {
                return Err(format!(
                    "an update after the last signature changes the trailer's /{}",
                    String::from_utf8_lossy(key)
                ));
            }
        }
        objects_seen += section.used.len();
        if objects_seen > MAX_UPDATE_OBJECTS {
            return Err("too many objects after the last signature".into());
        }
        let mut added: HashMap<u32, IndirectObject> = HashMap::new();
        for (number, at) in &section.used {
            if *at < from || *at >= end {
                return Err(format!("object {number} of an update is outside it"));
            }
            let object = read_object(bytes, *at, *number)?;
            if added.insert(*number, object).is_some() {
                return Err(format!("an update lists object {number} twice"));
            }
        }
        // An object written in the update but left out of its table would be found by a reader
        // that rebuilds a damaged table: every `N G obj` outside the streams must be listed.
        let streams: Vec<Range<usize>> = added.values().filter_map(|o| o.stream.clone()).collect();
        let written = object_headers(bytes, from..end, &streams);
        if written != section.used.len() {
            return Err(format!(
                "an update writes {written} objects but its cross-reference lists {}",
                section.used.len()
            ));
        }
        let mut dss = false;
        let mut doc_timestamp = false;
        let mut numbers: Vec<&u32> = added.keys().collect();
        numbers.sort();
        for number in numbers {
            let new = &added[number];
            let old = match current.get(number) {
                Some(at) => Some(read_object(bytes, *at, *number)?),
                None => None,
            };
            let what = judge(*number, new, old.as_ref(), root, &added)
                .map_err(|why| format!("object {number}: {why}"))?;
            dss |= what == Added::Dss;
            doc_timestamp |= what == Added::DocTimeStamp;
        }
        for (number, at) in section.used {
            current.insert(number, at);
        }
        found.updates.push((end, dss, doc_timestamp));
        from = end;
    }
    if bytes.get(from..).is_some_and(|rest| rest.iter().any(|b| !is_white(*b))) {
        return Err("bytes after the last %%EOF".into());
    }
    Ok(found)
}

/// How many `N G obj` headers `range` of `bytes` holds outside the `streams`' data.
fn object_headers(bytes: &[u8], range: Range<usize>, streams: &[Range<usize>]) -> usize {
    let Some(segment) = bytes.get(range.clone()) else { return 0 };
    let mut count = 0;
    let mut from = 0;
    while let Some(i) = segment.get(from..).and_then(|t| find(t, b"obj")).map(|i| from + i) {
        from = i + 3;
        let at = range.start + i;
        if streams.iter().any(|s| s.contains(&at)) {
            continue;
        }
        if segment.get(from).is_some_and(|&c| !(is_white(c) || is_delimiter(c))) {
            continue; // `objects`, not the keyword
        }
        // Back over white space, digits (generation), white space, digits (number).
        let mut j = i;
        let mut groups = 0;
        while groups < 2 {
            let white = segment[..j].iter().rev().take_while(|c| is_white(**c)).count();
            let digits =
                segment[..j - white].iter().rev().take_while(|c| c.is_ascii_digit()).count();
            if white == 0 || digits == 0 {
                break;
            }
            j -= white + digits;
            groups += 1;
        }
        if groups == 2 {
            count += 1;
        }
    }
    count
}

#[derive(Debug, PartialEq, Eq)]
enum Added {
    Dss,
    DocTimeStamp,
    Other,
}

const DSS_KEYS: &[&[u8]] = &[b"Type", b"Certs", b"CRLs", b"OCSPs", b"VRI"];
const VRI_KEYS: &[&[u8]] = &[b"Type", b"Cert", b"CRL", b"OCSP", b"TU", b"TS"];
const STREAM_KEYS: &[&[u8]] = &[b"Length", b"Filter", b"DecodeParms"];
const DOC_TIMESTAMP_KEYS: &[&[u8]] = &[
    b"Type",
    b"Filter",
    b"SubFilter",
    b"ByteRange",
    b"Contents",
    b"M",
    b"Name",
    b"Reason",
    b"Location",
    b"ContactInfo",
    b"Prop_Build",
];
const WIDGET_KEYS: &[&[u8]] = &[b"Type", b"Subtype", b"FT", b"T", b"V", b"P", b"Rect", b"F"];

fn only_keys(value: &Value, allowed: &[&[u8]]) -> bool {
    value.keys().iter().all(|k| allowed.contains(k))
}

fn is_dss(value: &Value) -> bool {
    matches!(value, Value::Dict(_))
        && only_keys(value, DSS_KEYS)
        && (value.get(b"Type").is_none() || value.is_name(b"Type", b"DSS"))
}

fn is_doc_timestamp(value: &Value) -> bool {
    value.is_name(b"Type", b"DocTimeStamp")
        && value.is_name(b"SubFilter", b"ETSI.RFC3161")
        && only_keys(value, DOC_TIMESTAMP_KEYS)
}

/// An invisible signature field whose value is a document timestamp of the same update.
fn is_doc_timestamp_widget(value: &Value, added: &HashMap<u32, IndirectObject>) -> bool {
    let zero_area = match value.get(b"Rect") {
        Some(Value::Array(r)) if r.len() == 4 => {
            let n: Vec<f64> = r.iter().filter_map(Value::number).collect();
            n.len() == 4 && (n[0] == n[2] || n[1] == n[3])
        }
        _ => false,
    };
    let stamp = match value.get(b"V") {
        Some(Value::Ref(n, _)) => added.get(n).is_some_and(|o| is_doc_timestamp(&o.value)),
        _ => false,
    };
    only_keys(value, WIDGET_KEYS) && value.is_name(b"FT", b"Sig") && zero_area && stamp
}

/// Entries of a direct array of references `key` of `new` that `old` (absent = empty) does not
/// have: `old`'s must be a prefix. Each added one must be a document timestamp field of the
/// update.
fn only_timestamp_fields_added(
    key: &[u8],
    new: Option<&Value>,
    old: Option<&Value>,
    added: &HashMap<u32, IndirectObject>,
) -> Result<(), String> {
    let name = String::from_utf8_lossy(key);
    let empty = Vec::new();
    let old_items = match old {
        None => &empty,
        Some(Value::Array(items)) => items,
        Some(_) => return Err(format!("/{name} was not a direct array")),
    };
    let new_items = match new {
        None if old_items.is_empty() => &empty,
        Some(Value::Array(items)) => items,
        _ => return Err(format!("/{name} changed")),
    };
    if !new_items.starts_with(old_items) {
        return Err(format!("/{name} changed"));
    }
    for item in &new_items[old_items.len()..] {
        let field = match item {
            Value::Ref(n, _) => added.get(n),
            _ => None,
        };
        if !field.is_some_and(|f| is_doc_timestamp_widget(&f.value, added)) {
            return Err(format!("/{name} gains an entry that is not a document timestamp field"));
        }
    }
    Ok(())
}

/// Every entry but `except` is the same in `new` and `old`.
fn same_except(new: &Value, old: &Value, except: &[&[u8]]) -> Result<(), String> {
    let mut keys = new.keys();
    keys.extend(old.keys());
    for key in keys {
        if !except.contains(&key) && new.get(key) != old.get(key) {
            return Err(format!("/{} changed", String::from_utf8_lossy(key)));
        }
    }
    Ok(())
}

/// What object `number` of an update does, or why it is not allowed after the last signature.
fn judge(
    number: u32,
    new: &IndirectObject,
    old: Option<&IndirectObject>,
    root: u32,
    added: &HashMap<u32, IndirectObject>,
) -> Result<Added, String> {
    let value = &new.value;
    match old {
        Some(old) if number == root => {
            let old = &old.value;
            same_except(value, old, &[b"DSS", b"AcroForm"])?;
            let old_form = match old.get(b"AcroForm") {
                None => Value::Dict(Vec::new()),
                Some(form @ Value::Dict(_)) => form.clone(),
                Some(_) => return Err("the catalog's /AcroForm is not direct".into()),
            };
            let new_form = match value.get(b"AcroForm") {
                None => Value::Dict(Vec::new()),
                Some(form @ Value::Dict(_)) => form.clone(),
                Some(_) => return Err("/AcroForm is not direct".into()),
            };
            same_except(&new_form, &old_form, &[b"Fields", b"SigFlags"])?;
            only_timestamp_fields_added(
                b"Fields",
                new_form.get(b"Fields"),
                old_form.get(b"Fields"),
                added,
            )?;
            let new_dss = value.get(b"DSS");
            if new_dss != old.get(b"DSS") {
                let dss = match new_dss {
                    Some(Value::Ref(n, _)) => added.get(n),
                    _ => None,
                };
                if !dss.is_some_and(|d| is_dss(&d.value)) {
                    return Err("/DSS is not a document security store of the update".into());
                }
                return Ok(Added::Dss);
            }
            Ok(Added::Other)
        }
        Some(old) if old.value.is_name(b"Type", b"Page") && new.stream.is_none() => {
            same_except(value, &old.value, &[b"Annots"])?;
            only_timestamp_fields_added(
                b"Annots",
                value.get(b"Annots"),
                old.value.get(b"Annots"),
                added,
            )?;
            Ok(Added::Other)
        }
        Some(old) if is_dss(&old.value) && is_dss(value) => Ok(Added::Dss),
        Some(_) => Err("changed after the last signature (only the catalog's /DSS and \
                        /AcroForm and a page's /Annots may change)"
            .into()),
        None => {
            let allowed = match (value, &new.stream) {
                (_, Some(_)) => only_keys(value, STREAM_KEYS),
                (Value::Dict(_), None) => {
                    is_dss(value)
                        || is_doc_timestamp(value)
                        || is_doc_timestamp_widget(value, added)
                        || is_vri(value)
                }
                (Value::Array(items), None) => items.iter().all(|i| matches!(i, Value::Ref(..))),
                _ => false,
            };
            if !allowed {
                return Err("added after the last signature and neither validation data nor a \
                            document timestamp"
                    .into());
            }
            Ok(if is_doc_timestamp(value) { Added::DocTimeStamp } else { Added::Other })
        }
    }
}

/// A `/VRI` dictionary (keys: hex SHA-1 of signatures) or one of its entries.
fn is_vri(value: &Value) -> bool {
    let entry = only_keys(value, VRI_KEYS)
        && (value.get(b"Type").is_none() || value.is_name(b"Type", b"VRI"));
    let container =
        value.keys().iter().all(|k| k.len() == 40 && k.iter().all(u8::is_ascii_hexdigit));
    entry || container
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_and_references() {
        let text = b"7 0 obj\n<</A[1 0 R 2 (a\\)b) <4142>]/B /N#41me/C 3.5/D<<>>>>\nendobj\n";
        let o = read_object(text, 0, 7).map_err(|e| e.to_string());
        let Ok(o) = o else { panic!("{o:?}") };
        assert_eq!(
            o.value.get(b"A"),
            Some(&Value::Array(vec![
                Value::Ref(1, 0),
                Value::Number(b"2".to_vec()),
                Value::Str(b"a)b".to_vec()),
                Value::Str(b"AB".to_vec())
            ]))
        );
        assert_eq!(o.value.get(b"B"), Some(&Value::Name(b"NAme".to_vec())));
        assert!(read_object(text, 0, 8).is_err());
        let deep = format!("1 0 obj {} endobj", "[".repeat(100));
        assert!(read_object(deep.as_bytes(), 0, 1).is_err());
    }

    #[test]
    fn object_headers_are_counted_outside_streams() {
        let text =
            b"1 0 obj <<>> endobj\n2 0 obj <</Length 9>>stream\n3 0 obj x\nendstream endobj\n";
        assert_eq!(object_headers(text, 0..text.len(), &[]), 3);
        let data = 48..57;
        assert_eq!(&text[data.clone()], b"3 0 obj x");
        assert_eq!(object_headers(text, 0..text.len(), &[data]), 2);
    }

    #[test]
    fn garbage_after_a_signature_is_an_error_not_a_panic() {
        let signed = b"%PDF-1.7\n1 0 obj <</Type/Catalog>> endobj\nxref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer <</Root 1 0 R/Size 2>>\nstartxref\n42\n%%EOF\n";
        let end = signed.len();
        for tail in [
            &b""[..],
            b"junk",
            b"2 0 obj <</Type/XRef>> endobj startxref 0 %%EOF",
            b"xref\n0 1\n0000000000 65535 f \n1 1\n0000000000 00000 f \ntrailer<</Root 1 0 R>>\nstartxref\n126\n%%EOF",
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ %%EOF",
        ] {
            let mut file = signed.to_vec();
            file.extend_from_slice(tail);
            let result = check_appended_updates(&file, end);
            assert_eq!(result.is_ok(), tail.is_empty(), "{:?}: {result:?}", String::from_utf8_lossy(tail));
        }
    }

    #[test]
    fn a_stream_is_skipped_by_its_length() {
        let text = b"3 0 obj <</Length 5>>stream\nab)cd\nendstream endobj";
        let o = read_object(text, 0, 3).map_err(|e| e.to_string());
        assert_eq!(o.ok().and_then(|o| o.stream), Some(28..33));
        let indirect = b"3 0 obj <</Length 4 0 R>>stream\nab\nendstream endobj";
        assert!(read_object(indirect, 0, 3).is_err());
    }
}
