//! Structure and check characters of the national codes that name holders, issuers and
//! jurisdictions: the unified social credit code (统一社会信用代码, GB 32100-2015), the citizen
//! identity number (公民身份号码, GB 11643-1999), the organisation code (组织机构代码, GB 11714),
//! the old 15-digit business registration number (工商注册号, GS15-2006) and the administrative
//! region code (行政区划代码, GB/T 2260, structure only).
//!
//! Every function takes an already normalised code (the `normalise` stage does that): half-width,
//! trimmed, upper-case. Nothing here trims, folds case or touches I/O. Character positions in
//! errors are 0-based character indices.

use chrono::NaiveDate;
use thiserror::Error;

/// Why a code was rejected. Tests match on the variant; the message is for the rejects file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    #[error("length is {found}, expected {expected}")]
    Length { expected: usize, found: usize },
    #[error("character {found:?} at index {index} is not allowed")]
    BadChar { index: usize, found: char },
    #[error("check character is {found}, expected {expected}")]
    BadCheckChar { expected: char, found: char },
    /// The eight birth-date digits of a citizen ID are not a calendar date.
    #[error("birth date {digits} is not a calendar date")]
    BadBirthDate { digits: String },
    /// The birth date of a citizen ID is before 1800-01-01.
    #[error("birth date {date} is before 1800-01-01")]
    BirthDateTooEarly { date: NaiveDate },
    /// Six digits that do not have the GB/T 2260 province/prefecture/county structure.
    #[error("region code {code} is not a GB/T 2260 code")]
    BadRegion { code: String },
}

/// What a valid citizen ID number states about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitizenIdFacts {
    pub birth_date: NaiveDate,
    /// The 6-digit region code of the place of first registration.
    pub region: String,
    /// The 3-digit sequence code (顺序码).
    pub sequence: u16,
    /// GB 11643-1999: an odd sequence code is given to men, an even one to women.
    pub male: bool,
}

// GB 32100-2015: code characters, no I O Z S V.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
// GB 32100-2015: weighting factors of positions 1–17.
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
// GB 11643-1999: weighting factors of positions 1–17 (2^(18−i) mod 11).
const CITIZEN_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
// GB 11643-1999: check character indexed by the weighted sum mod 11.
const CITIZEN_CHECK: &[u8; 11] = b"10X98765432";
// GB 11714: weighting factors of the 8 body characters.
const ORG_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

/// Fails with [`CodeError::Length`] unless `s` has exactly `expected` characters.
fn expect_len(s: &str, expected: usize) -> Result<(), CodeError> {
    let found = s.chars().count();
    if found == expected { Ok(()) } else { Err(CodeError::Length { expected, found }) }
}

fn uscc_value(c: char) -> Option<u32> {
    USCC_ALPHABET.iter().position(|&a| char::from(a) == c).and_then(|v| u32::try_from(v).ok())
}

/// The USCC check character of the first 17 characters yielded by `body`.
fn uscc_check_of(body: impl Iterator<Item = char>) -> Result<char, CodeError> {
    let mut sum = 0;
    for ((index, c), weight) in body.enumerate().zip(USCC_WEIGHTS) {
        let value = uscc_value(c).ok_or(CodeError::BadChar { index, found: c })?;
        sum += value * weight;
    }
    // GB 32100-2015: check character C18 = 31 − (Σ Ci·Wi mod 31); 31 maps to 0.
    let index = (31 - sum % 31) % 31;
    Ok(char::from(USCC_ALPHABET[index as usize]))
}

/// The GB 32100-2015 check character for the first 17 characters of a USCC, for generators.
///
/// Fails with [`CodeError::Length`] unless `first17` has 17 characters and with
/// [`CodeError::BadChar`] on a character outside the USCC alphabet.
pub fn uscc_check_char(first17: &str) -> Result<char, CodeError> {
    expect_len(first17, 17)?;
    uscc_check_of(first17.chars())
}

/// Checks a unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters of the
/// alphabet `0123456789ABCDEFGHJKLMNPQRTUWXY` and a matching check character.
///
/// The organisation-code part (positions 9–17) is deliberately not checked on its own: real
/// codes exist whose embedded organisation code does not validate.
/// Fails with [`CodeError::Length`], [`CodeError::BadChar`] or [`CodeError::BadCheckChar`].
pub fn check_uscc(s: &str) -> Result<(), CodeError> {
    expect_len(s, 18)?;
    let mut chars = s.chars();
    let expected = uscc_check_of(chars.by_ref().take(17))?;
    let found = chars.next().ok_or(CodeError::Length { expected: 18, found: 17 })?;
    if uscc_value(found).is_none() {
        return Err(CodeError::BadChar { index: 17, found });
    }
    if found != expected {
        return Err(CodeError::BadCheckChar { expected, found });
    }
    Ok(())
}

/// Reads 17 ASCII digits from `body`; fails with [`CodeError::BadChar`] on anything else.
fn citizen_body(body: impl Iterator<Item = char>) -> Result<[u8; 17], CodeError> {
    let mut digits = [0u8; 17];
    for ((index, c), slot) in body.enumerate().zip(digits.iter_mut()) {
        *slot = c
            .to_digit(10)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(CodeError::BadChar { index, found: c })?;
    }
    Ok(digits)
}

/// GB 11643-1999: check character = `10X98765432`[Σ Ai·Wi mod 11].
fn citizen_check_of(digits: &[u8; 17]) -> char {
    let sum: u32 = digits.iter().zip(CITIZEN_WEIGHTS).map(|(&d, w)| u32::from(d) * w).sum();
    char::from(CITIZEN_CHECK[(sum % 11) as usize])
}

fn decimal(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |acc, &d| acc * 10 + u32::from(d))
}

/// The GB 11643-1999 check character (`0`–`9` or `X`) for the first 17 digits of a citizen ID.
///
/// Fails with [`CodeError::Length`] unless `first17` has 17 characters and with
/// [`CodeError::BadChar`] on a non-digit.
pub fn citizen_id_check_char(first17: &str) -> Result<char, CodeError> {
    expect_len(first17, 17)?;
    Ok(citizen_check_of(&citizen_body(first17.chars())?))
}

/// Checks an 18-character citizen identity number (公民身份号码, GB 11643-1999) and returns
/// what it states: birth date, region, sequence code and sex.
///
/// Only an upper-case `X` is accepted as check character (folding `x` is the normaliser's job).
/// Fails with [`CodeError::Length`], [`CodeError::BadChar`], [`CodeError::BadCheckChar`],
/// [`CodeError::BadRegion`] (see [`check_region_code`]), [`CodeError::BadBirthDate`] for an
/// impossible date such as `19490231`, or [`CodeError::BirthDateTooEarly`] before 1800-01-01.
pub fn check_citizen_id(s: &str) -> Result<CitizenIdFacts, CodeError> {
    expect_len(s, 18)?;
    let mut chars = s.chars();
    let digits = citizen_body(chars.by_ref().take(17))?;
    let found = chars.next().ok_or(CodeError::Length { expected: 18, found: 17 })?;
    if !(found.is_ascii_digit() || found == 'X') {
        return Err(CodeError::BadChar { index: 17, found });
    }
    let expected = citizen_check_of(&digits);
    if found != expected {
        return Err(CodeError::BadCheckChar { expected, found });
    }

    // GB 11643-1999: address code (6), birth date code (8), sequence code (3), check (1).
    let region: String = digits[..6].iter().map(|&d| char::from(b'0' + d)).collect();
    check_region_code(&region)?;
    let birth = &digits[6..14];
    let year = i32::try_from(decimal(&birth[..4])).unwrap_or(0);
    let birth_date = NaiveDate::from_ymd_opt(year, decimal(&birth[4..6]), decimal(&birth[6..]))
        .ok_or_else(|| CodeError::BadBirthDate {
            digits: birth.iter().map(|&d| char::from(b'0' + d)).collect(),
        })?;
    if birth_date < NaiveDate::from_ymd_opt(1800, 1, 1).unwrap_or(NaiveDate::MIN) {
        return Err(CodeError::BirthDateTooEarly { date: birth_date });
    }
    let sequence = u16::try_from(decimal(&digits[14..])).unwrap_or(0);
    Ok(CitizenIdFacts { birth_date, region, sequence, male: sequence % 2 == 1 })
}

/// Checks an organisation code (组织机构代码, GB 11714): 8 characters `[0-9A-Z]` and a check
/// character `[0-9X]`, written either with a hyphen (`00001333-8`) or without (`000013338`).
///
/// Fails with [`CodeError::Length`] (expected 9), [`CodeError::BadChar`] (including a
/// non-hyphen at index 8 of a 10-character code) or [`CodeError::BadCheckChar`].
pub fn check_org_code(s: &str) -> Result<(), CodeError> {
    let len = s.chars().count();
    let hyphenated = match len {
        9 => false,
        10 => true,
        found => return Err(CodeError::Length { expected: 9, found }),
    };
    let mut chars = s.chars().enumerate();
    let mut sum = 0;
    for ((index, c), weight) in chars.by_ref().take(8).zip(ORG_WEIGHTS) {
        // GB 11714: 0–9 keep their value, A–Z count 10–35.
        let value = match c {
            '0'..='9' | 'A'..='Z' => c.to_digit(36).unwrap_or(0),
            _ => return Err(CodeError::BadChar { index, found: c }),
        };
        sum += value * weight;
    }
    if hyphenated {
        match chars.next() {
            Some((_, '-')) => {}
            Some((index, found)) => return Err(CodeError::BadChar { index, found }),
            None => return Err(CodeError::Length { expected: 9, found: len }),
        }
    }
    let (index, found) = chars.next().ok_or(CodeError::Length { expected: 9, found: len })?;
    if !(found.is_ascii_digit() || found == 'X') {
        return Err(CodeError::BadChar { index, found });
    }
    // GB 11714: C9 = 11 − (Σ Ci·Wi mod 11); 10 is written X, 11 is written 0.
    let expected = match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        v => char::from_digit(v, 10).unwrap_or('0'),
    };
    if found != expected {
        return Err(CodeError::BadCheckChar { expected, found });
    }
    Ok(())
}

/// Checks the *structure* of a 6-digit administrative region code (GB/T 2260): a real
/// province-level prefix (11–15, 21–23, 31–37, 41–46, 50–54, 61–65, 71, 81, 82), and a county
/// part of `00` whenever the prefecture part is `00`. It does not look the code up in a table.
///
/// Fails with [`CodeError::Length`] or [`CodeError::BadChar`] unless `s` is 6 ASCII digits,
/// and with [`CodeError::BadRegion`] when the structure is wrong (including `000000`).
pub fn check_region_code(s: &str) -> Result<(), CodeError> {
    expect_len(s, 6)?;
    let mut digits = [0u32; 6];
    for ((index, c), slot) in s.chars().enumerate().zip(digits.iter_mut()) {
        *slot = c
            .to_digit(10)
            .filter(|_| c.is_ascii())
            .ok_or(CodeError::BadChar { index, found: c })?;
    }
    let [p1, p2, m1, m2, c1, c2] = digits;
    let province = p1 * 10 + p2;
    // GB/T 2260: province-level codes.
    let known_province = matches!(
        province,
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82
    );
    // GB/T 2260: a province-level entry (prefecture 00) has county 00.
    let county_without_prefecture = m1 == 0 && m2 == 0 && (c1 != 0 || c2 != 0);
    if !known_province || county_without_prefecture {
        return Err(CodeError::BadRegion { code: s.to_owned() });
    }
    Ok(())
}

/// Checks an old 15-digit business registration number (工商注册号, GS15-2006): 15 ASCII
/// digits whose last digit is the ISO/IEC 7064 MOD 11,10 check digit of the first 14.
///
/// Fails with [`CodeError::Length`], [`CodeError::BadChar`] or [`CodeError::BadCheckChar`].
pub fn check_gs15(s: &str) -> Result<(), CodeError> {
    expect_len(s, 15)?;
    let mut p = 10;
    let mut chars = s.chars().enumerate();
    for (index, c) in chars.by_ref().take(14) {
        let digit = c
            .to_digit(10)
            .filter(|_| c.is_ascii())
            .ok_or(CodeError::BadChar { index, found: c })?;
        // ISO/IEC 7064 MOD 11,10: s = (p + a) mod 10, 0 → 10; p = 2s mod 11.
        let s = match (p + digit) % 10 {
            0 => 10,
            s => s,
        };
        p = (2 * s) % 11;
    }
    let (index, found) = chars.next().ok_or(CodeError::Length { expected: 15, found: 14 })?;
    if !found.is_ascii_digit() {
        return Err(CodeError::BadChar { index, found });
    }
    // ISO/IEC 7064 MOD 11,10: the check digit makes (p + c) mod 10 = 1.
    let expected = char::from_digit((11 - p) % 10, 10).unwrap_or('0');
    if found != expected {
        return Err(CodeError::BadCheckChar { expected, found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uscc_vectors_from_domain() {
        assert_eq!(check_uscc("11100000000013338W"), Ok(()));
        assert_eq!(check_uscc("113700000045030270"), Ok(()));
        assert_eq!(uscc_check_char("11100000000013338"), Ok('W'));
        assert_eq!(uscc_check_char("11370000004503027"), Ok('0'));
        // Issuers and defining authorities of the GB/T 36904 vectors.
        for code in ["11430000006122244L", "11220000013544541J", "11100000MB03271699"] {
            assert_eq!(check_uscc(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn uscc_rejections() {
        assert_eq!(
            check_uscc("111000000000133383"),
            Err(CodeError::BadCheckChar { expected: 'W', found: '3' })
        );
        assert_eq!(
            check_uscc("11100000000013338"),
            Err(CodeError::Length { expected: 18, found: 17 })
        );
        assert_eq!(
            check_uscc("1110000000001333WW8"),
            Err(CodeError::Length { expected: 18, found: 19 })
        );
        // I, O, Z, S, V are not in the alphabet, nor lower case, nor full-width digits.
        assert_eq!(
            check_uscc("1I100000000013338W"),
            Err(CodeError::BadChar { index: 1, found: 'I' })
        );
        assert_eq!(
            check_uscc("O1100000000013338W"),
            Err(CodeError::BadChar { index: 0, found: 'O' })
        );
        assert_eq!(
            check_uscc("11100000000013338w"),
            Err(CodeError::BadChar { index: 17, found: 'w' })
        );
        assert_eq!(
            check_uscc("１1100000000013338W"),
            Err(CodeError::BadChar { index: 0, found: '１' })
        );
        assert_eq!(
            check_uscc("11100000000013338S"),
            Err(CodeError::BadChar { index: 17, found: 'S' })
        );
        assert_eq!(check_uscc(""), Err(CodeError::Length { expected: 18, found: 0 }));
        assert_eq!(
            uscc_check_char("1110000000001333"),
            Err(CodeError::Length { expected: 17, found: 16 })
        );
        assert_eq!(
            uscc_check_char("1110000000001333Z"),
            Err(CodeError::BadChar { index: 16, found: 'Z' })
        );
    }

    #[test]
    fn citizen_id_vectors_from_domain() {
        let facts = check_citizen_id("11010519491231002X").unwrap();
        assert_eq!(facts.birth_date, NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(facts.region, "110105");
        assert_eq!(facts.sequence, 2);
        assert!(!facts.male);
        let facts = check_citizen_id("440524188001010014").unwrap();
        assert_eq!(facts.birth_date, NaiveDate::from_ymd_opt(1880, 1, 1).unwrap());
        assert_eq!(facts.region, "440524");
        assert_eq!(facts.sequence, 1);
        assert!(facts.male);
        assert_eq!(citizen_id_check_char("11010519491231002"), Ok('X'));
        assert_eq!(citizen_id_check_char("44052418800101001"), Ok('4'));
    }

    #[test]
    fn citizen_id_rejections() {
        assert_eq!(
            check_citizen_id("110105194912310021"),
            Err(CodeError::BadCheckChar { expected: 'X', found: '1' })
        );
        assert_eq!(
            check_citizen_id("11010519491231002x"),
            Err(CodeError::BadChar { index: 17, found: 'x' })
        );
        assert_eq!(
            check_citizen_id("1101051949123100X2"),
            Err(CodeError::BadChar { index: 16, found: 'X' })
        );
        assert_eq!(
            check_citizen_id("110105491231002"),
            Err(CodeError::Length { expected: 18, found: 15 })
        );
        // Valid check characters on impossible contents (check computed, not hard-coded).
        let with_check = |body: &str| format!("{body}{}", citizen_id_check_char(body).unwrap());
        assert_eq!(
            check_citizen_id(&with_check("11010519490231002")),
            Err(CodeError::BadBirthDate { digits: "19490231".into() })
        );
        assert_eq!(
            check_citizen_id(&with_check("11010519491301002")),
            Err(CodeError::BadBirthDate { digits: "19491301".into() })
        );
        assert_eq!(
            check_citizen_id(&with_check("11010517991231002")),
            Err(CodeError::BirthDateTooEarly {
                date: NaiveDate::from_ymd_opt(1799, 12, 31).unwrap()
            })
        );
        assert_eq!(
            check_citizen_id(&with_check("99010519491231002")),
            Err(CodeError::BadRegion { code: "990105".into() })
        );
        assert_eq!(
            check_citizen_id(&with_check("11000519491231002")),
            Err(CodeError::BadRegion { code: "110005".into() })
        );
        assert_eq!(
            citizen_id_check_char("1101051949123100A"),
            Err(CodeError::BadChar { index: 16, found: 'A' })
        );
    }

    #[test]
    fn org_code_vectors() {
        assert_eq!(check_org_code("00001333-8"), Ok(()));
        assert_eq!(check_org_code("000013338"), Ok(()));
        // Embedded organisation code of the USCC vector 113700000045030270.
        assert_eq!(check_org_code("00450302-7"), Ok(()));
        assert_eq!(
            check_org_code("00001333-9"),
            Err(CodeError::BadCheckChar { expected: '8', found: '9' })
        );
        assert_eq!(check_org_code("00001333_8"), Err(CodeError::BadChar { index: 8, found: '_' }));
        assert_eq!(check_org_code("0000133a-8"), Err(CodeError::BadChar { index: 7, found: 'a' }));
        assert_eq!(check_org_code("00001333-"), Err(CodeError::BadChar { index: 8, found: '-' }));
        assert_eq!(check_org_code("0000133-8"), Err(CodeError::BadChar { index: 7, found: '-' }));
        assert_eq!(check_org_code("00001333"), Err(CodeError::Length { expected: 9, found: 8 }));
        assert_eq!(
            check_org_code("00001333--8"),
            Err(CodeError::Length { expected: 9, found: 11 })
        );
    }

    #[test]
    fn org_code_check_x_and_zero() {
        // 11 − (Σ mod 11) = 10 is written X; 11 is written 0.
        assert_eq!(check_org_code("00000006-X"), Ok(()));
        assert_eq!(check_org_code("00000000-0"), Ok(()));
        assert_eq!(check_org_code("0000000A-2"), Ok(()));
        assert_eq!(
            check_org_code("00000006-0"),
            Err(CodeError::BadCheckChar { expected: 'X', found: '0' })
        );
        assert_eq!(check_org_code("00000006-x"), Err(CodeError::BadChar { index: 9, found: 'x' }));
    }

    #[test]
    fn region_codes() {
        for code in ["220100", "220000", "220113", "220181", "110105", "440524", "710000", "820000"]
        {
            assert_eq!(check_region_code(code), Ok(()), "{code}");
        }
        for code in ["000000", "990000", "160000", "220001", "100000", "720000"] {
            assert_eq!(
                check_region_code(code),
                Err(CodeError::BadRegion { code: code.into() }),
                "{code}"
            );
        }
        assert_eq!(check_region_code("22010"), Err(CodeError::Length { expected: 6, found: 5 }));
        assert_eq!(check_region_code("2201O0"), Err(CodeError::BadChar { index: 4, found: 'O' }));
        assert_eq!(check_region_code("２20100"), Err(CodeError::BadChar { index: 0, found: '２' }));
    }

    #[test]
    fn gs15_vectors() {
        assert_eq!(check_gs15("310230001716146"), Ok(()));
        assert_eq!(check_gs15("110108000000016"), Ok(()));
        assert_eq!(
            check_gs15("310230001716145"),
            Err(CodeError::BadCheckChar { expected: '6', found: '5' })
        );
        // Adjacent transposition 46 → 64 is caught.
        assert_eq!(
            check_gs15("310230001716416"),
            Err(CodeError::BadCheckChar { expected: '9', found: '6' })
        );
        assert_eq!(
            check_gs15("31023000171614"),
            Err(CodeError::Length { expected: 15, found: 14 })
        );
        assert_eq!(
            check_gs15("3102300017161X6"),
            Err(CodeError::BadChar { index: 13, found: 'X' })
        );
        assert_eq!(
            check_gs15("31023000171614X"),
            Err(CodeError::BadChar { index: 14, found: 'X' })
        );
    }

    #[test]
    fn messages_state_the_facts() {
        let e = CodeError::BadCheckChar { expected: 'W', found: '3' };
        assert_eq!(e.to_string(), "check character is 3, expected W");
    }

    fn uscc_body() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(USCC_ALPHABET.to_vec()), 17)
            .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = check_uscc(&s);
            let _ = uscc_check_char(&s);
            let _ = check_citizen_id(&s);
            let _ = citizen_id_check_char(&s);
            let _ = check_org_code(&s);
            let _ = check_region_code(&s);
            let _ = check_gs15(&s);
        }

        #[test]
        fn uscc_computed_check_validates_and_others_fail(body in uscc_body()) {
            let check = uscc_check_char(&body).unwrap();
            prop_assert_eq!(check_uscc(&format!("{body}{check}")), Ok(()));
            for other in USCC_ALPHABET.iter().map(|&b| char::from(b)).filter(|&c| c != check) {
                prop_assert_eq!(
                    check_uscc(&format!("{body}{other}")),
                    Err(CodeError::BadCheckChar { expected: check, found: other })
                );
            }
        }

        #[test]
        fn uscc_single_substitution_detected(body in uscc_body(), pos in 0usize..17, sub in 0usize..31) {
            let check = uscc_check_char(&body).unwrap();
            let mut chars: Vec<char> = body.chars().collect();
            let replacement = char::from(USCC_ALPHABET[sub]);
            prop_assume!(chars[pos] != replacement);
            chars[pos] = replacement;
            let altered: String = chars.into_iter().collect();
            let result = check_uscc(&format!("{altered}{check}"));
            prop_assert!(result.is_err());
        }

        #[test]
        fn citizen_id_computed_check_validates_and_others_fail(
            region in proptest::sample::select(vec!["110105", "220113", "440524", "650102"]),
            days in 0i64..80_000,
            sequence in 0u16..1000,
        ) {
            let birth = NaiveDate::from_ymd_opt(1800, 1, 1).unwrap() + chrono::Days::new(days as u64);
            let body = format!("{region}{}{sequence:03}", birth.format("%Y%m%d"));
            let check = citizen_id_check_char(&body).unwrap();
            let facts = check_citizen_id(&format!("{body}{check}")).unwrap();
            prop_assert_eq!(facts.birth_date, birth);
            prop_assert_eq!(facts.sequence, sequence);
            for other in "0123456789X".chars().filter(|&c| c != check) {
                prop_assert_eq!(
                    check_citizen_id(&format!("{body}{other}")),
                    Err(CodeError::BadCheckChar { expected: check, found: other })
                );
            }
        }
    }
}
