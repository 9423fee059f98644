//! Synthetic people: Chinese names (surname + one or two given-name characters, a few rare
//! characters that only GB18030 encodes) and citizen identity numbers (公民身份号码,
//! GB 11643-1999) with valid check characters, or deliberately broken ones.

use chrono::{Datelike, NaiveDate};

use super::dates::push_padded;
use super::rng::Rng;
use crate::codes::citizen_id_check_char;

/// The most common surnames first: a name draws from the first ten more often.
const SURNAMES: [&str; 100] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "韦", "付", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛", "闫", "段", "雷", "侯",
    "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严", "覃", "武", "戴",
    "莫", "孔", "关", "郎",
];

const COMPOUND_SURNAMES: [&str; 6] = ["欧阳", "司马", "上官", "诸葛", "东方", "慕容"];

const MALE_GIVEN: [&str; 56] = [
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "飞", "波",
    "宁", "志", "峰", "浩", "宇", "轩", "博", "俊", "建", "国", "文", "斌", "海", "东", "生", "德",
    "胜", "春", "林", "山", "成", "龙", "云", "亮", "健", "永", "福", "贵", "兴", "宏", "达", "鑫",
    "旭", "凯", "晨", "阳", "鸿", "昊", "天", "庆",
];

const FEMALE_GIVEN: [&str; 48] = [
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "秀", "英", "霞", "桂", "兰", "玉", "华", "红", "燕",
    "丹", "婷", "雪", "梅", "琳", "颖", "欣", "怡", "萱", "涵", "彤", "雨", "淑", "珍", "凤", "芝",
    "琴", "慧", "莉", "萍", "月", "倩", "佳", "悦", "思", "琪", "晶", "瑶", "春", "秋", "玲", "洁",
];

/// Characters of real names that GBK lacks or that few fonts have: 䶮 (CJK Ext. A) and 𠈌
/// (Ext. B) exist only in GB18030; the others are rare but in GBK.
const RARE_GIVEN: [&str; 8] = ["䶮", "𠈌", "堃", "喆", "昇", "淼", "犇", "垚"];

/// Appends a plausible name: surname and one or two given-name characters.
pub fn push_name(out: &mut String, rng: &mut Rng, male: bool) {
    let surname = if rng.below(200) == 0 {
        rng.pick(&COMPOUND_SURNAMES)
    } else if rng.chance(0.4) {
        rng.pick(&SURNAMES[..10])
    } else {
        rng.pick(&SURNAMES)
    };
    out.push_str(surname);
    let given: &[&str] = if male { &MALE_GIVEN } else { &FEMALE_GIVEN };
    let two = rng.chance(0.65);
    for i in 0..if two { 2 } else { 1 } {
        if i == 1 && rng.below(500) == 0 {
            out.push_str(rng.pick(&RARE_GIVEN));
        } else {
            out.push_str(rng.pick(given));
        }
    }
}

/// Region codes (GB/T 2260) of places of first registration: mostly Changchun, some elsewhere
/// in Jilin and a few in other provinces.
const BIRTH_REGIONS: [&str; 20] = [
    "220102", "220103", "220104", "220105", "220106", "220112", "220113", "220122", "220182",
    "220183", "220184", "220204", "220302", "220502", "220702", "220802", "222401", "230102",
    "210102", "370102",
];

/// A 6-digit region code for a new person.
pub fn draw_birth_region(rng: &mut Rng) -> &'static str {
    if rng.chance(0.8) { rng.pick(&BIRTH_REGIONS[..11]) } else { rng.pick(&BIRTH_REGIONS) }
}

/// Appends the first 17 characters of a citizen ID: region, birth date (as given, which may be
/// impossible on purpose) and a sequence code whose parity gives the sex (odd for men).
pub fn push_id_body(
    out: &mut String,
    region: &str,
    y: u32,
    m: u32,
    d: u32,
    rng: &mut Rng,
    male: bool,
) {
    out.push_str(region);
    push_padded(out, u64::from(y), 4);
    push_padded(out, u64::from(m), 2);
    push_padded(out, u64::from(d), 2);
    // Sequence codes 996-999 were given to people born in the 1800s: never drawn.
    let mut seq = rng.below(498) * 2;
    if male {
        seq += 1;
    }
    push_padded(out, seq, 3);
}

/// Appends the GB 11643 check character of the 17 characters at the end of `out`.
fn push_check(out: &mut String, body_start: usize) {
    let check = out.get(body_start..).and_then(|b| citizen_id_check_char(b).ok()).unwrap_or('0');
    out.push(check);
}

/// Appends a valid 18-character citizen ID for someone of `birth`.
pub fn push_citizen_id(
    out: &mut String,
    rng: &mut Rng,
    region: &str,
    birth: NaiveDate,
    male: bool,
) {
    let start = out.len();
    push_id_body(out, region, birth.year().unsigned_abs(), birth.month(), birth.day(), rng, male);
    push_check(out, start);
}

/// Appends an 18-character ID whose birth date does not exist (e.g. 19820230) but whose check
/// character is right, so that only the birth date is wrong.
pub fn push_id_impossible_birth(out: &mut String, rng: &mut Rng, region: &str, male: bool) {
    const IMPOSSIBLE: [(u32, u32); 9] =
        [(2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (13, 1), (0, 12), (7, 0)];
    let (m, d) = IMPOSSIBLE[rng.index(IMPOSSIBLE.len())];
    let y = rng.range(1950, 1999) as u32;
    let start = out.len();
    push_id_body(out, region, y, m, d, rng, male);
    push_check(out, start);
}

/// The pre-1999 15-digit form of an 18-digit ID of someone born in the 1900s: region, 2-digit
/// year, month, day, sequence (GB 11643-1989). `None` when `id18` is not such an ID.
pub fn id15_of(id18: &str) -> Option<String> {
    if id18.len() != 18 || !id18.is_ascii() || id18.get(6..8) != Some("19") {
        return None;
    }
    Some(format!("{}{}", id18.get(..6)?, id18.get(8..17)?))
}

/// A check character other than the right one for an ID ending in `right`.
pub fn wrong_id_check(right: char, rng: &mut Rng) -> char {
    const CHECKS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let mut c = CHECKS[rng.index(CHECKS.len())];
    if c == fold_check_char(right) {
        let i = CHECKS.iter().position(|&x| x == c).unwrap_or(0);
        c = CHECKS[(i + 1) % CHECKS.len()];
    }
    c
}

/// A check character as validation reads it: full-width ASCII (`Ｘ`) folded to ASCII, upper
/// case.
pub fn fold_check_char(c: char) -> char {
    let ascii = match u32::from(c) {
        cp @ 0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    ascii.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{CodeError, check_citizen_id};

    #[test]
    fn a_wrong_check_character_differs_from_a_dirty_right_one() {
        let mut rng = Rng::new(7);
        for _ in 0..2000 {
            for right in ['x', 'Ｘ', 'X', '５'] {
                assert_ne!(wrong_id_check(right, &mut rng), fold_check_char(right), "{right}");
            }
            for right in ['a', 'Ａ', '９', 'y'] {
                let wrong = super::super::orgs::wrong_uscc_check(right, &mut rng);
                assert_ne!(wrong, fold_check_char(right), "{right}");
            }
        }
    }
    use crate::normalise::ids::upgrade_citizen_id_15;

    #[test]
    fn ids_are_valid_and_sexed() {
        let mut rng = Rng::new(11);
        for i in 0..500 {
            let male = i % 2 == 0;
            let mut id = String::new();
            let birth = super::super::dates::ymd(1980, 2, 29);
            let region = draw_birth_region(&mut rng);
            push_citizen_id(&mut id, &mut rng, region, birth, male);
            let facts = check_citizen_id(&id).unwrap();
            assert_eq!(facts.birth_date, birth);
            assert_eq!(facts.male, male);
            let up = upgrade_citizen_id_15(&id15_of(&id).unwrap()).unwrap();
            assert_eq!(up.id18, id);
            assert!(!up.legacy_1800s);
        }
    }

    #[test]
    fn impossible_birth_dates_fail_only_on_the_date() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let mut id = String::new();
            push_id_impossible_birth(&mut id, &mut rng, "220104", true);
            assert!(matches!(check_citizen_id(&id), Err(CodeError::BadBirthDate { .. })), "{id}");
        }
    }

    #[test]
    fn names_have_two_or_three_characters() {
        let mut rng = Rng::new(9);
        for _ in 0..1000 {
            let mut n = String::new();
            let male = rng.chance(0.5);
            push_name(&mut n, &mut rng, male);
            assert!((2..=4).contains(&n.chars().count()), "{n}");
        }
    }
}
