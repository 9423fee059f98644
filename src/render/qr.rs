//! The verification QR code (核验码) printed on the face.
//!
//! Payload format, version 1:
//!
//! ```text
//! ELIC1:<identifier>:<DIGEST16>
//! ```
//!
//! `<identifier>` is the GB/T 36904 证照标识 (`[0-9A-Z.]+`); `<DIGEST16>` is the first 16 hex
//! digits, upper case, of the SHA-256 of the unsigned canonical XML e-licence. A verifier that
//! scans a printed face looks the identifier up, fetches the signed XML, strips the signature,
//! hashes it and compares: that ties a picture of a licence to its signed record (the picture
//! itself proves nothing). Every character of the payload is in the QR alphanumeric set, so the
//! code stays small (version 5 for a typical identifier). Error correction level M.
//!
//! When the registry has a public verification page (`--public-url`), the payload is instead
//! an address any phone camera opens:
//!
//! ```text
//! <public URL>/v/<identifier>?d=<digest16, lower case>
//! ```
//!
//! The same identifier and digest, in byte mode (a larger symbol, version 7–9). Without a public
//! URL nothing changes, so faces made before stay byte-identical. [`parse_qr_payload`] reads
//! both forms.
//!
//! Mask choice: all eight masks are evaluated with the penalty rules of ISO/IEC 18004 §7.8.3,
//! as the `qrcode` crate does; the scores are computed here on a plain module grid with the
//! crate's exact formulas (same result, tested against the crate), because the crate's own
//! scoring allocates per module and was a tenth of the time of a whole page.

use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel, QrCode, Version};

use crate::render::RenderError;

/// Payload prefix and format version.
pub const QR_PREFIX: &str = "ELIC1";
/// Hex digits of the content digest carried in the payload.
pub const QR_DIGEST_LEN: usize = 16;

/// The QR payload `ELIC1:<identifier>:<first 16 hex of content_digest_hex, upper case>`.
/// `content_digest_hex` is the hex SHA-256 of the unsigned canonical XML (64 digits); a shorter
/// string is used whole.
pub fn qr_payload(identifier: &str, content_digest_hex: &str) -> String {
    let digest =
        content_digest_hex.get(..QR_DIGEST_LEN).unwrap_or(content_digest_hex).to_ascii_uppercase();
    format!("{QR_PREFIX}:{identifier}:{digest}")
}

/// Longest public URL accepted: the payload must stay a QR code a phone reads from a printed
/// face (with a 70-character identifier the symbol stays at version 10 or below).
pub const MAX_PUBLIC_URL: usize = 120;

/// The QR payload that opens the public verification page of version `identifier`:
/// `<public_url>/v/<identifier>?d=<first 16 hex of content_digest_hex, lower case>`.
/// `public_url` is one [`check_public_url`] accepted.
pub fn qr_url_payload(public_url: &str, identifier: &str, content_digest_hex: &str) -> String {
    let digest =
        content_digest_hex.get(..QR_DIGEST_LEN).unwrap_or(content_digest_hex).to_ascii_lowercase();
    format!("{public_url}/v/{identifier}?d={digest}")
}

/// The payload for a face: the address form when the registry has a public URL, else `ELIC1:`.
pub fn face_qr_payload(
    public_url: Option<&str>,
    identifier: &str,
    content_digest_hex: &str,
) -> String {
    match public_url {
        Some(url) => qr_url_payload(url, identifier, content_digest_hex),
        None => qr_payload(identifier, content_digest_hex),
    }
}

/// Checks a public base URL for QR payloads and links and returns it without a trailing `/`:
/// `http://` or `https://`, a host, printable ASCII without spaces, no query or fragment, at most
/// [`MAX_PUBLIC_URL`] characters. The reason is for a message naming the option.
pub fn check_public_url(url: &str) -> Result<String, &'static str> {
    let trimmed = url.trim_end_matches('/');
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or("not an http:// or https:// URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("has spaces or characters outside printable ASCII");
    }
    if trimmed.contains(['?', '#']) {
        return Err("has a query or fragment (the page adds its own)");
    }
    if trimmed.len() > MAX_PUBLIC_URL {
        return Err("is longer than 120 characters (the QR code would not scan from paper)");
    }
    Ok(trimmed.to_owned())
}

/// Split a scanned payload, either form, into (identifier, 16-hex digest in upper case). Fails
/// when the prefix (or the `/v/` path and `d=` parameter), the identifier alphabet or the digest
/// length/alphabet is wrong. Does not check the identifier's check character (that is the
/// identifier module's job), nor the address's host (any mirror of the page may be scanned).
pub fn parse_qr_payload(payload: &str) -> Result<(String, String), RenderError> {
    let bad = |reason| RenderError::QrPayload { reason };
    let lower = payload.get(..8).unwrap_or(payload).to_ascii_lowercase();
    let (identifier, digest) = if lower.starts_with("https://") || lower.starts_with("http://") {
        let (_, page) = payload.rsplit_once("/v/").ok_or(bad("address has no /v/<identifier>"))?;
        let (identifier, query) = page.split_once('?').ok_or(bad("address has no ?d= digest"))?;
        let digest = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("d="))
            .ok_or(bad("address has no ?d= digest"))?;
        (identifier, digest)
    } else {
        let rest = payload
            .strip_prefix(QR_PREFIX)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or(bad("missing ELIC1: prefix"))?;
        rest.rsplit_once(':').ok_or(bad("missing digest"))?
    };
    if identifier.is_empty()
        || !identifier.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'.')
    {
        return Err(bad("identifier is not [0-9A-Z.]+"));
    }
    if digest.len() != QR_DIGEST_LEN || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("digest is not 16 hex digits"));
    }
    Ok((identifier.to_string(), digest.to_ascii_uppercase()))
}

/// The module matrix of a QR code: `width × width` modules, row-major, `true` = dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

/// A horizontal run of dark modules: row, first column, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrRun {
    pub row: usize,
    pub col: usize,
    pub len: usize,
}

impl QrMatrix {
    /// Encode `payload` at error-correction level M.
    pub fn encode(payload: &str) -> Result<Self, RenderError> {
        let err = |_| RenderError::QrEncode { len: payload.len() };
        let bits = qrcode::bits::encode_auto(payload.as_bytes(), EcLevel::M).map_err(err)?;
        let version = bits.version();
        if !matches!(version, Version::Normal(_)) {
            return Self::encode_with_crate(payload);
        }
        let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M)
            .map_err(err)?;
        let width = usize::try_from(version.width()).unwrap_or_default();
        let mut canvas = Canvas::new(version, EcLevel::M);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&data, &ec);
        // The first mask with the lowest penalty wins, in the crate's order.
        let mut best: Option<(u16, Vec<bool>)> = None;
        for pattern in ALL_MASKS {
            let mut masked = canvas.clone();
            masked.apply_mask(pattern);
            let dark: Vec<bool> =
                masked.into_colors().into_iter().map(|c| c == Color::Dark).collect();
            let score = penalty_packed(&dark, width).unwrap_or_else(|| penalty(&dark, width));
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, dark));
            }
        }
        match best {
            Some((_, dark)) if dark.len() == width * width => Ok(QrMatrix { width, dark }),
            _ => Self::encode_with_crate(payload),
        }
    }

    /// Encode with the `qrcode` crate's own mask choice (reference for the fast path).
    fn encode_with_crate(payload: &str) -> Result<Self, RenderError> {
        let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
            .map_err(|_| RenderError::QrEncode { len: payload.len() })?;
        let dark = code.to_colors().into_iter().map(|c| c == Color::Dark).collect();
        Ok(QrMatrix { width: code.width(), dark })
    }

    /// Modules per side (without quiet zone).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at (`row`, `col`) is dark; false outside the matrix.
    pub fn is_dark(&self, row: usize, col: usize) -> bool {
        row < self.width && col < self.width && self.dark.get(row * self.width + col) == Some(&true)
    }

    /// Dark modules merged into horizontal runs, row by row: one rectangle per run keeps the PDF
    /// content stream small.
    pub fn runs(&self) -> Vec<QrRun> {
        let mut runs = Vec::new();
        for (row, line) in self.dark.chunks(self.width.max(1)).enumerate() {
            let mut col = 0;
            while col < line.len() {
                if line.get(col) == Some(&true) {
                    let start = col;
                    while line.get(col) == Some(&true) {
                        col += 1;
                    }
                    runs.push(QrRun { row, col: start, len: col - start });
                } else {
                    col += 1;
                }
            }
        }
        runs
    }
}

/// The masks in the order the `qrcode` crate tries them (ties go to the earlier one).
const ALL_MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// [`penalty`] on rows and columns packed into bits (bit `k` of a line is module `k`), for
/// symbols up to 64 modules wide (versions 1–11); `None` for wider ones. Same score: the sums
/// are the same counts, taken with word operations instead of one module at a time.
fn penalty_packed(dark: &[bool], width: usize) -> Option<u16> {
    if width == 0 || width > 64 || dark.len() != width * width {
        return None;
    }
    let mut rows = [0u64; 64];
    let mut cols = [0u64; 64];
    for (i, line) in dark.chunks(width).enumerate() {
        for (k, &d) in line.iter().enumerate() {
            if d {
                rows[i] |= 1 << k;
                cols[k] |= 1 << i;
            }
        }
    }
    let (rows, cols) = (&rows[..width], &cols[..width]);
    let low = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut score = 0u16;
    // N1: a run of L ≥ 5 equal modules scores L − 2 = (L − 4) + 2, i.e. one per window of five
    // equal modules inside it, plus two per run (its first window).
    for lines in [rows, cols] {
        for &line in lines {
            let same_next = !(line ^ (line >> 1));
            let windows = same_next
                & (same_next >> 1)
                & (same_next >> 2)
                & (same_next >> 3)
                & low(width.saturating_sub(4));
            let first_windows = windows & !(windows << 1);
            let points = windows.count_ones() + 2 * first_windows.count_ones();
            score = score.wrapping_add(points as u16);
        }
    }
    // N2: a 2×2 block of one colour at (r, c) when row r equals itself shifted by one, so does
    // row r + 1, and the two rows agree at c.
    let inner = low(width - 1);
    for pair in rows.windows(2) {
        if let [a, b] = *pair {
            let same = !(a ^ (a >> 1)) & !(b ^ (b >> 1)) & !(a ^ b) & inner;
            score = score.wrapping_add(3 * same.count_ones() as u16);
        }
    }
    // N3: 1:1:3:1:1 (bits 1011101 from module j) without four light modules on one side.
    const FINDER_BITS: u64 = 0b101_1101;
    for lines in [rows, cols] {
        let mut finder = 0u16;
        for &line in lines {
            // Bit j of `starts`: the seven modules from j read 1011101.
            let mut starts = low(width.saturating_sub(6));
            for k in 0..7 {
                let shifted = line >> k;
                starts &= if (FINDER_BITS >> k) & 1 == 1 { shifted } else { !shifted };
            }
            while starts != 0 {
                let j = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                let before = j.saturating_sub(4);
                let dark_before = (line >> before) & low(j - before) != 0;
                let after = (j + 11).min(width).saturating_sub(j + 7);
                let dark_after = after > 0 && (line >> (j + 7)) & low(after) != 0;
                if !dark_before || !dark_after {
                    finder = finder.wrapping_add(40);
                }
            }
        }
        score = score.wrapping_add(finder.wrapping_sub(360));
    }
    // N4: balance.
    let dark_count: usize = rows.iter().map(|r| r.count_ones() as usize).sum();
    let ratio = dark_count * 200 / dark.len();
    Some(score.wrapping_add(ratio.abs_diff(100) as u16))
}

/// Total mask penalty of a masked symbol (`dark`: row-major, `width × width`), ISO/IEC 18004
/// §7.8.3 N1–N4 as the `qrcode` crate 0.14 computes them (u16 arithmetic included): runs of 5+N
/// equal modules score 3+N; each 2×2 block of one colour 3; each 1:1:3:1:1 finder-like pattern
/// not bordered by 4 light modules on both sides 40 (minus the 360 of the three real finder
/// patterns); |dark share − 50 %| in 0.5 % steps.
fn penalty(dark: &[bool], width: usize) -> u16 {
    let at = |row: usize, col: usize| dark.get(row * width + col).copied().unwrap_or(false);
    let mut score = 0u16;
    for horizontal in [true, false] {
        let line = |i: usize, k: usize| if horizontal { at(i, k) } else { at(k, i) };
        for i in 0..width {
            // N1: runs of five or more.
            let mut run = 1u16;
            for k in 1..=width {
                if k < width && line(i, k) == line(i, k - 1) {
                    run += 1;
                } else {
                    if run >= 5 {
                        score = score.wrapping_add(run - 2);
                    }
                    run = 1;
                }
            }
        }
    }
    // N2: 2×2 blocks.
    for r in 0..width.saturating_sub(1) {
        for c in 0..width.saturating_sub(1) {
            let v = at(r, c);
            if at(r, c + 1) == v && at(r + 1, c) == v && at(r + 1, c + 1) == v {
                score = score.wrapping_add(3);
            }
        }
    }
    // N3: dark-light-dark×3-light-dark with too little light space on a side.
    const FINDER: [bool; 7] = [true, false, true, true, true, false, true];
    for horizontal in [true, false] {
        let line = |i: usize, k: usize| if horizontal { at(i, k) } else { at(k, i) };
        let mut finder = 0u16;
        for i in 0..width {
            for j in 0..width.saturating_sub(6) {
                if !FINDER.iter().enumerate().all(|(k, d)| line(i, j + k) == *d) {
                    continue;
                }
                let dark_before = (j.saturating_sub(4)..j).any(|k| line(i, k));
                let dark_after = (j + 7..(j + 11).min(width)).any(|k| line(i, k));
                if !dark_before || !dark_after {
                    finder = finder.wrapping_add(40);
                }
            }
        }
        score = score.wrapping_add(finder.wrapping_sub(360));
    }
    // N4: balance.
    let dark_count = dark.iter().filter(|d| **d).count();
    let ratio = dark_count * 200 / dark.len().max(1);
    score.wrapping_add(ratio.abs_diff(100) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    const ID: &str = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F";
    const DIGEST: &str = "3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b";

    #[test]
    fn payload_round_trips() {
        let p = qr_payload(ID, DIGEST);
        assert_eq!(p, format!("ELIC1:{ID}:3A7BD3E2360A3D29"));
        let (id, d) = parse_qr_payload(&p).unwrap();
        assert_eq!(id, ID);
        assert_eq!(d, "3A7BD3E2360A3D29");
        // Lower-case digests from other producers are accepted.
        let (_, d) = parse_qr_payload(&format!("ELIC1:{ID}:3a7bd3e2360a3d29")).unwrap();
        assert_eq!(d, "3A7BD3E2360A3D29");
    }

    #[test]
    fn address_payload_round_trips() {
        let url = check_public_url("https://zz.example.gov.cn/verify/").unwrap();
        assert_eq!(url, "https://zz.example.gov.cn/verify");
        let p = face_qr_payload(Some(&url), ID, DIGEST);
        assert_eq!(p, format!("https://zz.example.gov.cn/verify/v/{ID}?d=3a7bd3e2360a3d29"));
        assert_eq!(parse_qr_payload(&p).unwrap(), (ID.to_owned(), "3A7BD3E2360A3D29".to_owned()));
        // Another parameter a scanner app may add is ignored.
        let tracked = format!("HTTPS://x.cn/v/{ID}?utm=1&d=3A7BD3E2360A3D29");
        assert_eq!(parse_qr_payload(&tracked).unwrap().1, "3A7BD3E2360A3D29");
        assert_eq!(face_qr_payload(None, ID, DIGEST), qr_payload(ID, DIGEST));
        // A phone must read it from paper: version 10 (57 modules) at most.
        let long = format!("https://{}.cn", "a".repeat(MAX_PUBLIC_URL - 11));
        let m = QrMatrix::encode(&qr_url_payload(&check_public_url(&long).unwrap(), ID, DIGEST));
        assert!(m.unwrap().width() <= 57);
    }

    #[test]
    fn bad_public_urls_are_refused() {
        for u in [
            "zz.example.gov.cn",
            "ftp://x.cn",
            "https://",
            "https:///v",
            "https://x.cn/a b",
            "https://x.cn/?a=1",
            "https://x.cn/#top",
            "https://例子.cn",
        ] {
            assert!(check_public_url(u).is_err(), "{u}");
        }
        assert!(check_public_url(&format!("https://{}.cn", "a".repeat(120))).is_err());
    }

    #[test]
    fn bad_address_payloads_are_rejected() {
        for p in [
            "https://x.cn/v/1.2.156",
            "https://x.cn/licence/1.2.156?d=0123456789abcdef",
            "https://x.cn/v/1.2.156?d=0123",
            "https://x.cn/v/1.2.x?d=0123456789abcdef",
            "https://x.cn/v/?d=0123456789abcdef",
        ] {
            assert!(matches!(parse_qr_payload(p), Err(RenderError::QrPayload { .. })), "{p}");
        }
    }

    #[test]
    fn bad_payloads_are_rejected() {
        for p in [
            "",
            "ELIC2:1.2:0123456789ABCDEF",
            "ELIC1:1.2.x:0123456789ABCDEF",
            "ELIC1::0123456789ABCDEF",
            "ELIC1:1.2.156:0123",
            "ELIC1:1.2.156:0123456789ABCDEG",
            "ELIC1:1.2.156",
        ] {
            assert!(matches!(parse_qr_payload(p), Err(RenderError::QrPayload { .. })), "{p}");
        }
    }

    #[test]
    fn payload_is_alphanumeric_and_small() {
        let m = QrMatrix::encode(&qr_payload(ID, DIGEST)).unwrap();
        // 92 alphanumeric characters at level M fit version 5 (37 modules).
        assert!(m.width() <= 37, "{}", m.width());
    }

    #[test]
    fn mask_choice_matches_the_qrcode_crate() {
        // Identifiers of several lengths (several versions) and many digests: different masks win
        // for different payloads, and the symbol must equal the crate's own, module for module.
        let mut versions = std::collections::BTreeSet::new();
        for i in 0..300u32 {
            let serial = "JY1220104000".repeat(1 + (i % 6) as usize);
            let id = format!(
                "1.2.156.3005.2.11100000MB0327169X001.11220104MB1234567X.{serial}.{:03}.Q",
                i % 7
            );
            let digest = hex::encode(sha2::Sha256::digest(i.to_be_bytes()));
            let payload = qr_payload(&id, &digest);
            let fast = QrMatrix::encode(&payload).unwrap();
            let reference = QrMatrix::encode_with_crate(&payload).unwrap();
            versions.insert(fast.width());
            assert_eq!(fast, reference, "{payload}");
        }
        assert!(versions.len() >= 3, "{versions:?}");
    }

    #[test]
    fn packed_penalty_equals_the_module_by_module_one() {
        // Every mask of several payloads, plus pseudo-random grids of every width up to 64
        // (runs at the edges, finder-like patterns at both ends of a line).
        let mut checked = 0;
        for payload in ["ELIC1:TEST:0123456789ABCDEF", &qr_payload(ID, DIGEST), &"9".repeat(300)] {
            let bits = qrcode::bits::encode_auto(payload.as_bytes(), EcLevel::M).unwrap();
            let version = bits.version();
            let (data, ec) =
                qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
            let width = usize::try_from(version.width()).unwrap();
            let mut canvas = Canvas::new(version, EcLevel::M);
            canvas.draw_all_functional_patterns();
            canvas.draw_data(&data, &ec);
            for pattern in ALL_MASKS {
                let mut masked = canvas.clone();
                masked.apply_mask(pattern);
                let dark: Vec<bool> =
                    masked.into_colors().into_iter().map(|c| c == Color::Dark).collect();
                assert_eq!(penalty_packed(&dark, width), Some(penalty(&dark, width)));
                checked += 1;
            }
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for width in 1..=64usize {
            for density in [2u64, 4, 8] {
                let dark: Vec<bool> = (0..width * width)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        !state.is_multiple_of(density)
                    })
                    .collect();
                assert_eq!(penalty_packed(&dark, width), Some(penalty(&dark, width)), "{width}");
                checked += 1;
            }
        }
        assert!(checked > 200);
        assert_eq!(penalty_packed(&vec![false; 65 * 65], 65), None);
    }

    #[test]
    fn runs_cover_exactly_the_dark_modules() {
        let m = QrMatrix::encode("ELIC1:TEST:0123456789ABCDEF").unwrap();
        let mut covered = vec![false; m.width() * m.width()];
        for r in m.runs() {
            assert!(r.len > 0);
            for c in r.col..r.col + r.len {
                covered[r.row * m.width() + c] = true;
            }
        }
        for row in 0..m.width() {
            for col in 0..m.width() {
                assert_eq!(covered[row * m.width() + col], m.is_dark(row, col));
            }
        }
        // Finder pattern: top-left 7 modules of row 0 are dark.
        assert!((0..7).all(|c| m.is_dark(0, c)));
    }
}
