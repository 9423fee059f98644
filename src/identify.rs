//! The e-licence identifier (证照标识, GB/T 36904):
//! `1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version>.<check>`.
//!
//! This module owns building an identifier from its parts, its ISO/IEC 7064 MOD 37,36 check
//! character, parsing (and checking) identifiers that come from partner systems, and the rule
//! that turns a printed licence number into a serial. Identifiers are never patched: a new
//! version is a new identifier with a recomputed check character.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::normalise::width::normalise_code;

/// GB/T 36904: the OID arc every e-licence identifier starts with.
const PREFIX: &str = "1.2.156.3005.2.";
/// Longest serial accepted.
const MAX_SERIAL_LEN: usize = 64;
/// Longest issuer code: an 18-character USCC.
const ISSUER_LEN: usize = 18;
/// GB/T 36902: the defining authority's 18-character USCC plus a 3-digit sequence.
const TYPE_CODE_LEN: usize = 21;

/// The part of an identifier an [`IdError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdField {
    TypeCode,
    IssuerCode,
    Serial,
    Version,
    Check,
}

impl fmt::Display for IdField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdField::TypeCode => "type code",
            IdField::IssuerCode => "issuer code",
            IdField::Serial => "serial",
            IdField::Version => "version",
            IdField::Check => "check character",
        })
    }
}

/// Why an identifier, or the parts for one, was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("identifier does not start with {PREFIX}")]
    BadPrefix,
    /// After the prefix there must be exactly five dot-separated parts.
    #[error("identifier has {found} parts after the prefix, expected 5")]
    PartCount { found: usize },
    #[error("{field} has {found} characters, expected {min}..={max}")]
    Length { field: IdField, min: usize, max: usize, found: usize },
    /// A character not allowed in `field`, at 0-based character index `index` of that field.
    #[error("{field} has character {found:?} at index {index}")]
    BadChar { field: IdField, index: usize, found: char },
    /// Versions run from 1 to 999.
    #[error("version {found} is outside 1..=999")]
    BadVersion { found: u16 },
    #[error("check character is {found}, expected {expected}")]
    BadCheckChar { expected: char, found: char },
}

/// A GB/T 36904 e-licence identifier. Its parts are valid by construction; the check character
/// is computed, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LicenceId {
    type_code: String,
    issuer_code: String,
    serial: String,
    version: u16,
}

/// How many issuer-code characters are accepted.
#[derive(Clone, Copy)]
enum IssuerRule {
    /// New identifiers: an 18-character USCC.
    Uscc,
    /// Identifiers that already exist: 1..=18 characters (one real identifier uses the
    /// region-style issuer `340100`).
    Existing,
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_uppercase()
}

/// Checks that `value` has `min..=max` characters, each accepted by `allowed(index, char)`.
fn check_part(
    field: IdField,
    value: &str,
    (min, max): (usize, usize),
    allowed: impl Fn(usize, char) -> bool,
) -> Result<(), IdError> {
    let found = value.chars().count();
    if !(min..=max).contains(&found) {
        return Err(IdError::Length { field, min, max, found });
    }
    match value.chars().enumerate().find(|&(index, c)| !allowed(index, c)) {
        Some((index, found)) => Err(IdError::BadChar { field, index, found }),
        None => Ok(()),
    }
}

fn check_version(version: u16) -> Result<(), IdError> {
    if (1..=999).contains(&version) { Ok(()) } else { Err(IdError::BadVersion { found: version }) }
}

/// ISO/IEC 7064 value of an identifier character: `0-9` → 0..9, `A-Z` → 10..35.
fn char_value(c: char) -> Option<u32> {
    c.to_digit(36).filter(|_| is_code_char(c))
}

/// The three digits of a version, as written in the identifier.
fn version_digits(version: u16) -> [char; 3] {
    let v = u32::from(version);
    [v / 100 % 10, v / 10 % 10, v % 10].map(|d| char::from_digit(d, 10).unwrap_or('0'))
}

impl LicenceId {
    /// Builds an identifier for a new licence. `type_code` is 21 characters (18 of `[0-9A-Z]`
    /// then 3 digits), `issuer_code` 18 characters of `[0-9A-Z]`, `serial` 1..=64 characters of
    /// `[0-9A-Z]` (see [`serial_from_printed`]), `version` 1..=999. The issuer's USCC check
    /// character is not verified here (that is the validator's job).
    ///
    /// Fails with [`IdError::Length`] or [`IdError::BadChar`] naming the part, or
    /// [`IdError::BadVersion`].
    pub fn new(
        type_code: &str,
        issuer_code: &str,
        serial: &str,
        version: u16,
    ) -> Result<LicenceId, IdError> {
        Self::build(type_code, issuer_code, serial, version, IssuerRule::Uscc)
    }

    /// The identifier of a licence known by its printed number (证照编号) at `version`: the
    /// one way every stage builds it (the registry when it decides a version, `render` for a
    /// preview). The serial is the printed number or a stable serial derived from it (see
    /// [`serial_from_printed`]). Fails as [`LicenceId::new`] does.
    pub fn for_printed_number(
        type_code: &str,
        issuer_code: &str,
        printed_no: &str,
        version: u16,
    ) -> Result<LicenceId, IdError> {
        LicenceId::new(type_code, issuer_code, &serial_from_printed(printed_no), version)
    }

    fn build(
        type_code: &str,
        issuer_code: &str,
        serial: &str,
        version: u16,
        issuer_rule: IssuerRule,
    ) -> Result<LicenceId, IdError> {
        check_part(IdField::TypeCode, type_code, (TYPE_CODE_LEN, TYPE_CODE_LEN), |i, c| {
            if i < 18 { is_code_char(c) } else { c.is_ascii_digit() }
        })?;
        let issuer_min = match issuer_rule {
            IssuerRule::Uscc => ISSUER_LEN,
            IssuerRule::Existing => 1,
        };
        check_part(IdField::IssuerCode, issuer_code, (issuer_min, ISSUER_LEN), |_, c| {
            is_code_char(c)
        })?;
        check_part(IdField::Serial, serial, (1, MAX_SERIAL_LEN), |_, c| is_code_char(c))?;
        check_version(version)?;
        Ok(LicenceId {
            type_code: type_code.to_owned(),
            issuer_code: issuer_code.to_owned(),
            serial: serial.to_owned(),
            version,
        })
    }

    /// Parses an identifier as written (no trimming or case folding) and checks its check
    /// character. Issuer codes of 1..=18 characters `[0-9A-Z]` are accepted here, unlike
    /// [`LicenceId::new`], because real identifiers exist with a 6-character region-style issuer
    /// (`1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9`). The version must be
    /// written with exactly three digits.
    ///
    /// Fails with [`IdError::BadPrefix`], [`IdError::PartCount`], [`IdError::Length`] or
    /// [`IdError::BadChar`] naming the part, [`IdError::BadVersion`] for `000`, and
    /// [`IdError::BadCheckChar`] when the check character is not the one computed (some partner
    /// systems compute it wrongly).
    pub fn parse(s: &str) -> Result<LicenceId, IdError> {
        let body = s.strip_prefix(PREFIX).ok_or(IdError::BadPrefix)?;
        let mut parts = body.split('.');
        let (Some(type_code), Some(issuer), Some(serial), Some(version), Some(check), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(IdError::PartCount { found: body.split('.').count() });
        };
        check_part(IdField::Version, version, (3, 3), |_, c| c.is_ascii_digit())?;
        let version = version.bytes().fold(0, |acc, b| acc * 10 + u16::from(b - b'0'));
        check_part(IdField::Check, check, (1, 1), |_, c| is_code_char(c))?;
        let id = Self::build(type_code, issuer, serial, version, IssuerRule::Existing)?;
        let expected = id.check_char();
        match check.chars().next() {
            Some(found) if found != expected => Err(IdError::BadCheckChar { expected, found }),
            _ => Ok(id),
        }
    }

    /// The same licence at another version; the check character is recomputed.
    ///
    /// Fails with [`IdError::BadVersion`] unless `version` is 1..=999.
    pub fn with_version(&self, version: u16) -> Result<LicenceId, IdError> {
        check_version(version)?;
        Ok(LicenceId { version, ..self.clone() })
    }

    /// The check character (`0-9A-Z`) over type code, issuer code, serial and 3-digit version,
    /// without the dots.
    pub fn check_char(&self) -> char {
        let chars = self
            .type_code
            .chars()
            .chain(self.issuer_code.chars())
            .chain(self.serial.chars())
            .chain(version_digits(self.version));
        // GB/T 36904: ISO/IEC 7064 MOD 37,36 (hybrid system).
        let mut p = 36;
        for value in chars.filter_map(char_value) {
            let s = match (p + value) % 36 {
                0 => 36,
                s => s,
            };
            p = (2 * s) % 37;
        }
        // p is in 1..=36, so 37 − p does not underflow.
        char::from_digit((37 - p) % 36, 36).map_or('0', |c| c.to_ascii_uppercase())
    }

    /// The 21-character licence type code (证照类型代码).
    pub fn type_code(&self) -> &str {
        &self.type_code
    }

    /// The issuer code (颁发机构代码): an 18-character USCC, or shorter for some parsed
    /// identifiers.
    pub fn issuer_code(&self) -> &str {
        &self.issuer_code
    }

    /// The serial (`[0-9A-Z]`, 1..=64 characters).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The version, 1..=999 (written with three digits).
    pub fn version(&self) -> u16 {
        self.version
    }
}

impl fmt::Display for LicenceId {
    /// The full dotted identifier, check character included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}{}.{}.{}.{:03}.{}",
            self.type_code,
            self.issuer_code,
            self.serial,
            self.version,
            self.check_char()
        )
    }
}

impl FromStr for LicenceId {
    type Err = IdError;

    /// Same as [`LicenceId::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LicenceId::parse(s)
    }
}

/// Prefix of a serial derived from a hash.
const DERIVED_SERIAL_PREFIX: char = 'H';
/// Characters of hash encoding in a derived serial.
const DERIVED_SERIAL_HASH_LEN: usize = 20;
/// Crockford base32 digits: `[0-9A-Z]` without I, L, O, U.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The identifier serial for a printed licence number (证照编号). Public contract, stable
/// across releases:
///
/// 1. Normalise the printed number: trim (including NBSP, U+3000, BOM, zero-width space), fold
///    full-width ASCII to half-width, upper-case ASCII (see [`normalise_code`]).
/// 2. If the result is 1..=64 characters of `[0-9A-Z]`, it is the serial
///    (`JY12201020000012` stays as it is).
/// 3. Otherwise the serial is `H` followed by the first 20 characters of the Crockford base32
///    encoding (alphabet `0123456789ABCDEFGHJKMNPQRSTVWXYZ`, most significant bit first) of the
///    SHA-256 of the normalised number's UTF-8 bytes — the first 100 bits of the hash.
///    `吉食药监械经营许20170001号` → `HERWE1WYFB1TSMS0Z7BS4`.
///
/// Hashing the normalised form means full-width and half-width spellings of one number give one
/// serial. A blank number yields the hash of the empty string: callers reject blank numbers
/// first. Never fails.
pub fn serial_from_printed(printed: &str) -> String {
    let normalised = normalise_code(printed);
    if (1..=MAX_SERIAL_LEN).contains(&normalised.len()) && normalised.chars().all(is_code_char) {
        return normalised.into_owned();
    }
    let digest = Sha256::digest(normalised.as_bytes());
    let mut serial = String::with_capacity(1 + DERIVED_SERIAL_HASH_LEN);
    serial.push(DERIVED_SERIAL_PREFIX);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in digest.iter() {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 && serial.len() <= DERIVED_SERIAL_HASH_LEN {
            bits -= 5;
            serial.push(char::from(CROCKFORD[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
        if serial.len() > DERIVED_SERIAL_HASH_LEN {
            break;
        }
    }
    serial
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: [&str; 4] = [
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
        "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
        "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F",
        "1.2.156.3005.2.11100000MB03271699022.340100.000000016.001.9",
    ];

    #[test]
    fn real_identifiers_parse_and_print_back() {
        for text in REAL {
            let id = LicenceId::parse(text).unwrap();
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<LicenceId>(), Ok(id));
        }
        let id = LicenceId::parse(REAL[2]).unwrap();
        assert_eq!(id.type_code(), "11100000000013338W032");
        assert_eq!(id.issuer_code(), "11220000013544541J");
        assert_eq!(id.serial(), "2430599");
        assert_eq!(id.version(), 1);
        assert_eq!(id.check_char(), 'F');
    }

    #[test]
    fn altering_any_character_of_a_real_identifier_fails() {
        for text in REAL {
            for (i, original) in text.char_indices().filter(|&(i, _)| i >= PREFIX.len()) {
                for replacement in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.".chars() {
                    if replacement == original {
                        continue;
                    }
                    let mut altered = text.to_owned();
                    altered.replace_range(i..=i, &replacement.to_string());
                    assert!(LicenceId::parse(&altered).is_err(), "{altered}");
                }
            }
        }
    }

    #[test]
    fn wrong_check_character_is_rejected_with_facts() {
        let wrong = REAL[0].replace(".001.U", ".001.V");
        assert_eq!(
            LicenceId::parse(&wrong),
            Err(IdError::BadCheckChar { expected: 'U', found: 'V' })
        );
    }

    #[test]
    fn with_version_recomputes() {
        let first = LicenceId::parse(REAL[0]).unwrap();
        let second = first.with_version(2).unwrap();
        assert_eq!(second.to_string(), REAL[1]);
        assert_eq!(first.with_version(0), Err(IdError::BadVersion { found: 0 }));
        assert_eq!(first.with_version(1000), Err(IdError::BadVersion { found: 1000 }));
        // A parsed short issuer survives a version change.
        let short = LicenceId::parse(REAL[3]).unwrap().with_version(999).unwrap();
        assert_eq!(LicenceId::parse(&short.to_string()), Ok(short));
    }

    #[test]
    fn new_round_trips_and_checks_parts() {
        let id =
            LicenceId::new("11100000000013338W032", "11220000013544541J", "2430599", 1).unwrap();
        assert_eq!(id.to_string(), REAL[2]);
        assert_eq!(LicenceId::parse(&id.to_string()), Ok(id));

        let err = |t: &str, i: &str, s: &str, v| LicenceId::new(t, i, s, v).unwrap_err();
        let (t, i) = ("11100000000013338W032", "11220000013544541J");
        // New identifiers need an 18-character issuer; parsing accepts the short one.
        assert_eq!(
            err(t, "340100", "1", 1),
            IdError::Length { field: IdField::IssuerCode, min: 18, max: 18, found: 6 }
        );
        assert_eq!(
            err("11100000000013338W03", i, "1", 1),
            IdError::Length { field: IdField::TypeCode, min: 21, max: 21, found: 20 }
        );
        assert_eq!(
            err("11100000000013338W03A", i, "1", 1),
            IdError::BadChar { field: IdField::TypeCode, index: 20, found: 'A' }
        );
        assert_eq!(
            err(t, i, "jy1", 1),
            IdError::BadChar { field: IdField::Serial, index: 0, found: 'j' }
        );
        assert_eq!(
            err(t, i, "", 1),
            IdError::Length { field: IdField::Serial, min: 1, max: 64, found: 0 }
        );
        assert_eq!(
            err(t, i, &"9".repeat(65), 1),
            IdError::Length { field: IdField::Serial, min: 1, max: 64, found: 65 }
        );
        assert!(LicenceId::new(t, i, &"9".repeat(64), 1).is_ok());
        assert_eq!(err(t, i, "1", 0), IdError::BadVersion { found: 0 });
    }

    #[test]
    fn parse_rejects_malformed_shapes() {
        assert_eq!(LicenceId::parse(""), Err(IdError::BadPrefix));
        assert_eq!(LicenceId::parse(&REAL[0].replace("3005", "3006")), Err(IdError::BadPrefix));
        assert_eq!(LicenceId::parse(&format!(" {}", REAL[0])), Err(IdError::BadPrefix));
        assert_eq!(
            LicenceId::parse(&format!("{}.", REAL[0])),
            Err(IdError::PartCount { found: 6 })
        );
        assert_eq!(
            LicenceId::parse("1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001"),
            Err(IdError::PartCount { found: 4 })
        );
        assert_eq!(
            LicenceId::parse(&REAL[2].replace(".001.F", ".1.F")),
            Err(IdError::Length { field: IdField::Version, min: 3, max: 3, found: 1 })
        );
        assert_eq!(
            LicenceId::parse(&REAL[2].replace(".001.F", ".000.F")),
            Err(IdError::BadVersion { found: 0 })
        );
        assert_eq!(
            LicenceId::parse(&REAL[2].replace(".001.F", ".001.f")),
            Err(IdError::BadChar { field: IdField::Check, index: 0, found: 'f' })
        );
        assert_eq!(
            LicenceId::parse(&REAL[2].replace(".001.F", ".001.")),
            Err(IdError::Length { field: IdField::Check, min: 1, max: 1, found: 0 })
        );
    }

    #[test]
    fn serial_from_printed_keeps_plain_numbers() {
        assert_eq!(serial_from_printed("JY12201020000012"), "JY12201020000012");
        assert_eq!(serial_from_printed(" ｊｙ12201020000012\u{3000}"), "JY12201020000012");
        assert_eq!(serial_from_printed("20230000403"), "20230000403");
    }

    #[test]
    fn serial_from_printed_derives_a_stable_hash_serial() {
        // Pinned: this value is a public contract (computed independently of this code).
        assert_eq!(serial_from_printed("吉食药监械经营许20170001号"), "HERWE1WYFB1TSMS0Z7BS4");
        assert_eq!(
            serial_from_printed("\u{feff}吉食药监械经营许２０１７０００１号 "),
            "HERWE1WYFB1TSMS0Z7BS4"
        );
        let long = "1".repeat(65);
        let derived = serial_from_printed(&long);
        assert_eq!(derived.len(), 21);
        assert!(derived.starts_with('H'));
        assert!(LicenceId::new("11100000000013338W032", "11220000013544541J", &derived, 1).is_ok());
        assert_ne!(serial_from_printed("00001333-8"), serial_from_printed("000013338"));
    }

    fn code_chars(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[0-9A-Z]{{{},{}}}", len.start(), len.end()))
            .unwrap()
    }

    fn licence_id() -> impl Strategy<Value = LicenceId> {
        (code_chars(18..=18), "[0-9]{3}", code_chars(18..=18), code_chars(1..=64), 1u16..=999)
            .prop_map(|(authority, seq, issuer, serial, version)| {
                LicenceId::new(&format!("{authority}{seq}"), &issuer, &serial, version).unwrap()
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(tail in "[0-9A-Z.\\PC]{0,80}") {
            let _ = LicenceId::parse(&format!("{PREFIX}{tail}"));
            let _ = serial_from_printed(&tail);
        }

        #[test]
        fn display_parse_round_trip(id in licence_id()) {
            prop_assert_eq!(LicenceId::parse(&id.to_string()), Ok(id));
        }

        #[test]
        fn single_substitution_in_the_body_is_detected(
            id in licence_id(),
            position in any::<proptest::sample::Index>(),
            replacement in proptest::sample::select(
                "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".chars().collect::<Vec<_>>()
            ),
        ) {
            let text = id.to_string();
            // Byte offsets of body characters: after the prefix, not dots, not the check char.
            let body: Vec<usize> = text
                .char_indices()
                .filter(|&(i, c)| i >= PREFIX.len() && i < text.len() - 1 && c != '.')
                .map(|(i, _)| i)
                .collect();
            let at = body[position.index(body.len())];
            prop_assume!(!text[at..].starts_with(replacement));
            let mut altered = text.clone();
            altered.replace_range(at..=at, &replacement.to_string());
            // Whatever else may be wrong, the check character must not still match.
            let still_matches = LicenceId::parse(&altered).is_ok();
            prop_assert!(!still_matches, "{} -> {}", text, altered);
            if let Ok(parts) = altered_parts(&altered) {
                prop_assert_ne!(parts.check_char(), id.check_char());
            }
        }
    }

    /// The altered identifier's parts, when they are still structurally valid.
    fn altered_parts(text: &str) -> Result<LicenceId, IdError> {
        let body = text.strip_prefix(PREFIX).ok_or(IdError::BadPrefix)?;
        let parts: Vec<&str> = body.split('.').collect();
        let version: u16 = parts[3].parse().map_err(|_| IdError::BadVersion { found: 0 })?;
        LicenceId::build(parts[0], parts[1], parts[2], version, IssuerRule::Existing)
    }
}
