//! Masking (脱敏) of personal (个人信息) and trade-secret (商业秘密) field values shown to a
//! department without an unmasking grant. Pure: no I/O.
//!
//! | style        | rule                                      | example                 |
//! |--------------|-------------------------------------------|-------------------------|
//! | citizen ID   | first 4 and last 4 kept                   | `2201**********123X`    |
//! | phone        | first 3 and last 4 kept                   | `138****5678`           |
//! | person name  | first character, then `**`                | `张**`                  |
//! | address      | first 6 characters, then `***`            | `吉林省长春市***`       |
//! | anything else| `***`                                     | `***`                   |
//!
//! A value too short to keep anything without giving it all away becomes `***`. An empty value
//! stays empty (there is nothing to hide). Name masks have a fixed length, so they do not tell
//! how long the name is.

use crate::catalog::{FieldKind, FieldSpec};

/// How a protected value is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskStyle {
    CitizenId,
    Phone,
    PersonName,
    Address,
    Other,
}

/// What is printed in place of a hidden value.
pub const HIDDEN: &str = "***";

impl MaskStyle {
    /// The style for a catalog field, by its kind, key and label. `holder_code_type` is the
    /// type's GB/T 36903 holder-code type (`111` = citizen ID) for [`FieldKind::HolderCode`].
    pub fn for_field(spec: &FieldSpec, holder_code_type: &str) -> MaskStyle {
        let key = spec.key.to_ascii_lowercase();
        let label = spec.label.as_str();
        match spec.kind {
            FieldKind::CitizenId => return MaskStyle::CitizenId,
            FieldKind::HolderCode if holder_code_type == "111" => return MaskStyle::CitizenId,
            _ => {}
        }
        let has = |words: &[&str], text: &str| words.iter().any(|w| text.contains(w));
        if has(&["phone", "tel", "mobile"], &key) || has(&["电话", "手机"], label) {
            MaskStyle::Phone
        } else if has(&["address", "premises", "domicile", "residence"], &key)
            || has(&["地址", "住所", "场所", "住址"], label)
        {
            MaskStyle::Address
        } else if key.ends_with("name")
            || has(&["legal_rep", "principal", "lead", "person", "signer"], &key)
            || has(&["姓名", "法定代表人", "负责人"], label)
        {
            MaskStyle::PersonName
        } else {
            MaskStyle::Other
        }
    }
}

/// `value` masked in `style` (see the module table).
pub fn mask(value: &str, style: MaskStyle) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    let keep = |head: usize, tail: usize| -> String {
        let mut out: String = chars.iter().take(head).collect();
        out.extend(std::iter::repeat_n('*', n - head - tail));
        out.extend(chars.iter().skip(n - tail));
        out
    };
    match style {
        // Keep 8 of at least 15 characters (15- and 18-digit IDs); shorter: hide all.
        MaskStyle::CitizenId if n >= 15 => keep(4, 4),
        MaskStyle::Phone if n >= 11 => keep(3, 4),
        MaskStyle::PersonName if n >= 2 => {
            let mut out: String = chars.iter().take(1).collect();
            out.push_str("**");
            out
        }
        MaskStyle::Address if n > 6 => {
            let mut out: String = chars.iter().take(6).collect();
            out.push_str(HIDDEN);
            out
        }
        _ => HIDDEN.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str, label: &str, kind: FieldKind) -> FieldSpec {
        FieldSpec {
            key: key.into(),
            label: label.into(),
            kind,
            required: true,
            max_len: None,
            personal: true,
            trade_secret: false,
        }
    }

    #[test]
    fn citizen_id_keeps_first_and_last_four() {
        assert_eq!(mask("22010419800512123X", MaskStyle::CitizenId), "2201**********123X");
        assert_eq!(mask("110105491231002", MaskStyle::CitizenId), "1101*******1002");
        assert_eq!(mask("1234", MaskStyle::CitizenId), HIDDEN);
    }

    #[test]
    fn phone_keeps_first_three_and_last_four() {
        assert_eq!(mask("13812345678", MaskStyle::Phone), "138****5678");
        assert_eq!(mask("5678", MaskStyle::Phone), HIDDEN);
    }

    #[test]
    fn name_keeps_first_character_and_hides_length() {
        assert_eq!(mask("张伟", MaskStyle::PersonName), "张**");
        assert_eq!(mask("欧阳娜娜", MaskStyle::PersonName), "欧**");
        assert_eq!(mask("张", MaskStyle::PersonName), HIDDEN);
    }

    #[test]
    fn address_keeps_six_characters() {
        assert_eq!(mask("吉林省长春市朝阳区红旗街1号", MaskStyle::Address), "吉林省长春市***");
        assert_eq!(mask("长春市", MaskStyle::Address), HIDDEN);
    }

    #[test]
    fn other_text_is_hidden_whole_and_empty_stays_empty() {
        assert_eq!(mask("1980-05-12", MaskStyle::Other), HIDDEN);
        assert_eq!(mask("", MaskStyle::Other), "");
        assert_eq!(mask("", MaskStyle::CitizenId), "");
    }

    #[test]
    fn styles_follow_kind_key_and_label() {
        assert_eq!(
            MaskStyle::for_field(
                &spec("legal_rep_id", "法定代表人身份证号", FieldKind::CitizenId),
                "001"
            ),
            MaskStyle::CitizenId
        );
        assert_eq!(
            MaskStyle::for_field(&spec("holder_code", "身份证号", FieldKind::HolderCode), "111"),
            MaskStyle::CitizenId
        );
        assert_eq!(
            MaskStyle::for_field(&spec("contact_phone", "联系电话", FieldKind::Text), "001"),
            MaskStyle::Phone
        );
        assert_eq!(
            MaskStyle::for_field(&spec("legal_rep", "法定代表人", FieldKind::Text), "001"),
            MaskStyle::PersonName
        );
        assert_eq!(
            MaskStyle::for_field(&spec("holder_name", "姓名", FieldKind::Text), "111"),
            MaskStyle::PersonName
        );
        assert_eq!(
            MaskStyle::for_field(&spec("warehouse_address", "仓库地址", FieldKind::Text), "001"),
            MaskStyle::Address
        );
        assert_eq!(
            MaskStyle::for_field(&spec("birth_date", "出生日期", FieldKind::Date), "111"),
            MaskStyle::Other
        );
    }
}
