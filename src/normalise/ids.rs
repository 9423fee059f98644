//! Citizen identity numbers (公民身份号码) as exports hold them: the matching form of an
//! 18-character number (full-width digits, lower-case `x`) and the upgrade of an old 15-digit
//! number to 18 characters (GB 11643-1999). The check character itself lives in
//! [`crate::codes`].

use std::borrow::Cow;

use crate::codes::{CodeError, check_citizen_id, citizen_id_check_char};

use super::width::{to_half_width, trim};

/// An old 15-digit citizen number upgraded to 18 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradedId {
    /// The 18-character number, check character included.
    pub id18: String,
    /// The sequence code is 996–999, which was given to people born in the 1800s: the inserted
    /// century `19` is then probably wrong and the row needs a human look.
    pub legacy_1800s: bool,
}

/// Upgrades a 15-digit citizen number (already normalised: trimmed, half-width) to 18
/// characters: `19` is inserted before the 2-digit birth year and the GB 11643-1999 check
/// character appended (`110105491231002` → `11010519491231002X`). The result is validated with
/// [`check_citizen_id`].
///
/// Fails with [`CodeError::Length`] unless `s` has 15 characters, [`CodeError::BadChar`] on a
/// non-digit, and with [`CodeError::BadRegion`] or [`CodeError::BadBirthDate`] when the
/// upgraded number states an impossible region or birth date.
pub fn upgrade_citizen_id_15(s: &str) -> Result<UpgradedId, CodeError> {
    let found = s.chars().count();
    if found != 15 {
        return Err(CodeError::Length { expected: 15, found });
    }
    if let Some((index, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(CodeError::BadChar { index, found: c });
    }
    // 15 ASCII digits: byte 6 is a character boundary.
    let (region, rest) = s.split_at_checked(6).ok_or(CodeError::Length { expected: 15, found })?;
    // GB 11643-1999: the 15-digit form omits the century of the birth year.
    let mut id18 = String::with_capacity(18);
    id18.push_str(region);
    id18.push_str("19");
    id18.push_str(rest);
    let check = citizen_id_check_char(&id18)?;
    id18.push(check);
    let facts = check_citizen_id(&id18)?;
    Ok(UpgradedId { id18, legacy_1800s: (996..=999).contains(&facts.sequence) })
}

/// The matching form of a citizen ID cell: trimmed, half-width, and a lower-case `x` written as
/// `X`. Other characters are kept for the validator to report. Borrowed when nothing changes.
pub fn normalise_citizen_id(s: &str) -> Cow<'_, str> {
    let folded = to_half_width(trim(s));
    if folded.contains('x') { Cow::Owned(folded.replace('x', "X")) } else { folded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_vector_from_domain() {
        assert_eq!(
            upgrade_citizen_id_15("110105491231002"),
            Ok(UpgradedId { id18: "11010519491231002X".into(), legacy_1800s: false })
        );
    }

    #[test]
    fn sequence_996_to_999_is_flagged() {
        for (sequence, flagged) in [(995, false), (996, true), (997, true), (999, true)] {
            let upgraded = upgrade_citizen_id_15(&format!("110105850101{sequence}")).unwrap();
            assert_eq!(upgraded.legacy_1800s, flagged, "{sequence}");
            assert!(upgraded.id18.starts_with("1101051985"));
        }
    }

    #[test]
    fn upgrade_rejections() {
        assert_eq!(
            upgrade_citizen_id_15("11010519491231002X"),
            Err(CodeError::Length { expected: 15, found: 18 })
        );
        assert_eq!(
            upgrade_citizen_id_15("11010549123100X"),
            Err(CodeError::BadChar { index: 14, found: 'X' })
        );
        assert_eq!(
            upgrade_citizen_id_15("110105490231002"),
            Err(CodeError::BadBirthDate { digits: "19490231".into() })
        );
        assert_eq!(
            upgrade_citizen_id_15("990105491231002"),
            Err(CodeError::BadRegion { code: "990105".into() })
        );
    }

    #[test]
    fn normalise_folds_width_and_x() {
        assert_eq!(normalise_citizen_id(" 11010519491231002x "), "11010519491231002X");
        assert_eq!(
            normalise_citizen_id("１１０１０５１９４９１２３１００２ｘ"),
            "11010519491231002X"
        );
        assert_eq!(normalise_citizen_id("\u{feff}11010519491231002Ｘ"), "11010519491231002X");
        assert!(matches!(normalise_citizen_id("11010519491231002X"), Cow::Borrowed(_)));
        // Excel's lossy rendering is left for the validator to reject.
        assert_eq!(normalise_citizen_id("1.10105E+17"), "1.10105E+17");
    }
}
