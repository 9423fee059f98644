//! Whitespace and character-width clean-up of raw cell text: trimming the invisible characters
//! that legacy exports carry (NBSP, ideographic space, BOM, zero-width space) and folding
//! full-width ASCII (全角, `２０１７`, `Ｘ`) to half-width.
//!
//! Deliberately not Unicode NFKC: NFKC would also rewrite the full-width parentheses （） in
//! company names. These functions build matching keys for codes, numbers and dates; the original
//! text is kept for display. They run on every code cell, so pure-ASCII input takes a fast path
//! and nothing allocates unless something changes.

use std::borrow::Cow;

/// Characters [`trim`] removes: Unicode `White_Space` (which includes U+00A0 NBSP and U+3000
/// ideographic space) plus U+FEFF (BOM / zero-width no-break space) and U+200B (zero-width
/// space), which are not `White_Space` but are just as invisible.
fn is_trimmable(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}')
}

/// `s` without leading and trailing whitespace, including NBSP (U+00A0), ideographic space
/// (U+3000), BOM (U+FEFF) and zero-width space (U+200B). Never fails; borrows from `s`.
pub fn trim(s: &str) -> &str {
    let bytes = s.as_bytes();
    // The last character's first byte: step back over UTF-8 continuation bytes (10xxxxxx).
    let last_lead = bytes.iter().rev().take(4).find(|&&b| b & 0xc0 != 0x80);
    if let (Some(&first), Some(&last)) = (bytes.first(), last_lead)
        && !may_start_trimmable(first)
        && !may_start_trimmable(last)
    {
        return s;
    }
    s.trim_matches(is_trimmable)
}

/// False when no trimmable character starts with this UTF-8 byte. Every trimmable character is
/// ASCII whitespace or starts with 0xC2 (U+0085, U+00A0), 0xE1 (U+1680), 0xE2 (U+2000–U+205F),
/// 0xE3 (U+3000) or 0xEF (U+FEFF); CJK ideographs start with 0xE4–0xE9 and take the fast path.
fn may_start_trimmable(lead: u8) -> bool {
    lead.is_ascii_whitespace()
        || lead == 0x0b
        || lead == 0x1c
        || lead == 0x1d
        || lead == 0x1e
        || lead == 0x1f
        || matches!(lead, 0xc2 | 0xe1 | 0xe2 | 0xe3 | 0xef)
}

/// The half-width counterpart of a full-width character, if it has one.
fn half_width_of(c: char) -> Option<char> {
    match c {
        // Unicode Halfwidth and Fullwidth Forms: U+FF01–U+FF5E map to U+0021–U+007E.
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0),
        '\u{3000}' => Some(' '),
        _ => None,
    }
}

/// `s` with full-width ASCII (U+FF01–U+FF5E) replaced by ASCII and the ideographic space
/// (U+3000) by a space; every other character is kept (`（）`, CJK text, 〇). Borrowed when
/// nothing changes. Never fails.
pub fn to_half_width(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    let Some(start) = s.char_indices().find(|&(_, c)| half_width_of(c).is_some()).map(|(i, _)| i)
    else {
        return Cow::Borrowed(s);
    };
    let Some((head, tail)) = s.split_at_checked(start) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(head);
    out.extend(tail.chars().map(|c| half_width_of(c).unwrap_or(c)));
    Cow::Owned(out)
}

/// The matching form of a code cell (USCC, organisation code, licence number): [`trim`], then
/// [`to_half_width`], then ASCII upper-case. Inner spaces and hyphens are kept (an organisation
/// code has a hyphen). Borrowed when nothing changes. Never fails.
pub fn normalise_code(s: &str) -> Cow<'_, str> {
    match to_half_width(trim(s)) {
        Cow::Borrowed(b) if b.bytes().any(|c| c.is_ascii_lowercase()) => {
            Cow::Owned(b.to_ascii_uppercase())
        }
        Cow::Borrowed(b) => Cow::Borrowed(b),
        Cow::Owned(mut o) => {
            o.make_ascii_uppercase();
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trim_removes_invisible_edges() {
        assert_eq!(trim("  abc\t"), "abc");
        assert_eq!(trim("\u{a0}abc\u{a0}"), "abc");
        assert_eq!(trim("\u{3000}吉林省\u{3000}"), "吉林省");
        assert_eq!(trim("\u{feff}11100000000013338W"), "11100000000013338W");
        assert_eq!(trim("\u{200b} x \u{200b}\r\n"), "x");
        assert_eq!(trim("a b"), "a b");
        assert_eq!(trim("a\u{3000}b"), "a\u{3000}b");
        assert_eq!(trim(""), "");
        assert_eq!(trim("\u{feff}\u{3000} \u{a0}"), "");
    }

    #[test]
    fn half_width_folds_full_width_ascii() {
        assert_eq!(to_half_width("２０１７"), "2017");
        assert_eq!(to_half_width("１１０１０５１９４９１２３１００２Ｘ"), "11010519491231002X");
        assert_eq!(to_half_width("ａ～！"), "a~!");
        assert_eq!(to_half_width("ＪＹ１２２０\u{3000}１"), "JY1220 1");
        assert_eq!(to_half_width("长春市（分公司）"), "长春市(分公司)");
    }

    #[test]
    fn half_width_keeps_other_characters_borrowed() {
        assert!(matches!(to_half_width("JY12201020000012"), Cow::Borrowed(_)));
        assert!(matches!(to_half_width("二〇一七年○月"), Cow::Borrowed(_)));
        // U+FF5F and above (full-width brackets, half-width katakana) are not ASCII forms.
        assert_eq!(to_half_width("\u{ff5f}\u{ff61}"), "\u{ff5f}\u{ff61}");
        assert_eq!(to_half_width("\u{ff00}"), "\u{ff00}");
    }

    #[test]
    fn normalise_code_trims_folds_and_uppercases() {
        assert_eq!(normalise_code(" ｊｙ12201020000012\u{3000}"), "JY12201020000012");
        assert_eq!(normalise_code("\u{feff}00001333-8"), "00001333-8");
        assert_eq!(normalise_code("11010519491231002x"), "11010519491231002X");
        assert_eq!(normalise_code("ab cd"), "AB CD");
        assert!(matches!(normalise_code("11100000000013338W"), Cow::Borrowed(_)));
        assert!(matches!(normalise_code(" 11100000000013338W "), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn full_width_ascii_round_trips(ascii in "[!-~]{0,40}") {
            let full: String = ascii
                .chars()
                .map(|c| char::from_u32(u32::from(c) + 0xfee0).unwrap())
                .collect();
            prop_assert_eq!(to_half_width(&full), ascii);
        }

        #[test]
        fn trim_is_idempotent_and_a_substring(s in "\\PC{0,20}") {
            let t = trim(&s);
            prop_assert_eq!(trim(t), t);
            prop_assert!(s.contains(t));
            prop_assert!(!t.starts_with(is_trimmable) && !t.ends_with(is_trimmable));
        }

        #[test]
        fn trim_fast_path_agrees_with_the_full_scan(
            s in "[ \t\u{a0}\u{3000}\u{feff}\u{200b}\u{2028}\u{85}a中（]{0,6}\\PC{0,6}[ \u{a0}\u{3000}\u{feff}\u{2029}\u{1680}z（中]{0,4}"
        ) {
            prop_assert_eq!(trim(&s), s.trim_matches(is_trimmable));
        }
    }
}
