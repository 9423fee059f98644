//! Synthetic organisations: unified social credit codes (统一社会信用代码, GB 32100-2015) that
//! are unique per generator and carry valid check characters (including the embedded
//! organisation code, GB 11714), and company, shop and canteen names built from a region, a
//! trade name (字号), an industry and an organisation form.

use super::dates::push_uint;
use super::places::DISTRICTS;
use super::rng::Rng;
use crate::codes::uscc_check_char;

// GB 32100-2015: code characters, no I O Z S V.
const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Who registered the organisation, as the first two USCC characters say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrant {
    /// 91: an enterprise registered with market regulation.
    Enterprise,
    /// 92: an individual business (个体工商户).
    IndividualBusiness,
    /// 93: a farmers' cooperative (农民专业合作社).
    Cooperative,
    /// 12: a public institution (事业单位), e.g. a school with a canteen.
    PublicInstitution,
}

impl Registrant {
    fn prefix(self) -> &'static str {
        match self {
            Registrant::Enterprise => "91",
            Registrant::IndividualBusiness => "92",
            Registrant::Cooperative => "93",
            Registrant::PublicInstitution => "12",
        }
    }
}

/// GB 11714: the check character of an 8-character organisation-code body.
fn org_check(body: &[u8; 8]) -> u8 {
    const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 =
        body.iter().zip(WEIGHTS).map(|(&c, w)| char::from(c).to_digit(36).unwrap_or(0) * w).sum();
    // C9 = 11 − (Σ mod 11); 10 is written X, 11 is written 0.
    match 11 - sum % 11 {
        10 => b'X',
        11 => b'0',
        v => b'0' + v as u8,
    }
}

/// Makes USCCs that never repeat within one export: the organisation code is a bijective
/// scramble of a counter, so no two holders share a code (which would make them one licence).
#[derive(Debug)]
pub struct UsccMaker {
    issued: u64,
    /// Where this export's codes start, drawn from the seed.
    offset: u64,
}

/// 31⁶: the number of six-character tails of a post-2015 organisation code (`MA` + 6).
const TAILS: u64 = 887_503_681;
/// Odd, and coprime to 5 and 31, so `n ↦ n·K + offset` is a bijection modulo 31⁶ and 10⁸.
const SCRAMBLE: u64 = 2_246_822_519;

impl UsccMaker {
    /// A maker whose codes depend on the seed.
    pub fn new(rng: &mut Rng) -> UsccMaker {
        UsccMaker { issued: 0, offset: rng.below(TAILS) }
    }

    /// Appends a new USCC: registrant, region, organisation code (`MA` + 6 characters for codes
    /// issued since 2015, 8 digits before), check character.
    pub fn push(&mut self, out: &mut String, registrant: Registrant, region: &str, modern: bool) {
        let n = self.issued;
        self.issued += 1;
        let mut body = [b'0'; 8];
        if modern {
            body[0] = b'M';
            body[1] = b'A';
            let mut x = ((n % TAILS) * SCRAMBLE + self.offset) % TAILS;
            for slot in body[2..].iter_mut().rev() {
                *slot = USCC_ALPHABET[(x % 31) as usize];
                x /= 31;
            }
        } else {
            // Old numeric organisation codes: 8 digits, scrambled the same way within 10⁸.
            let mut x = ((n % 100_000_000) * SCRAMBLE + self.offset) % 100_000_000;
            for slot in body.iter_mut().rev() {
                *slot = b'0' + (x % 10) as u8;
                x /= 10;
            }
        }
        let start = out.len();
        out.push_str(registrant.prefix());
        out.push_str(region);
        for &b in &body {
            out.push(char::from(b));
        }
        out.push(char::from(org_check(&body)));
        let check = out.get(start..).and_then(|s| uscc_check_char(s).ok()).unwrap_or('0');
        out.push(check);
    }
}

/// A USCC character other than `right`.
pub fn wrong_uscc_check(right: char, rng: &mut Rng) -> char {
    // The code may have been made dirty already (lower case, full width), which validation
    // folds back: compare with the folded character, or the "wrong" one may be the right one.
    let right = super::people::fold_check_char(right);
    let i = rng.index(USCC_ALPHABET.len());
    let c = char::from(USCC_ALPHABET[i]);
    if c == right { char::from(USCC_ALPHABET[(i + 1) % USCC_ALPHABET.len()]) } else { c }
}

/// Trade names (字号).
pub const TRADE_NAMES: [&str; 64] = [
    "华信",
    "鑫隆",
    "福顺",
    "恒泰",
    "宏达",
    "金鼎",
    "瑞丰",
    "嘉禾",
    "百味",
    "惠民",
    "长兴",
    "盛世",
    "东方",
    "天成",
    "永和",
    "祥瑞",
    "汇通",
    "宏远",
    "博远",
    "隆盛",
    "佳美",
    "益民",
    "众诚",
    "万家",
    "和顺",
    "德盛",
    "康达",
    "润发",
    "兴业",
    "鼎盛",
    "金桥",
    "新华",
    "正大",
    "亿达",
    "信达",
    "中泰",
    "海润",
    "天宇",
    "北辰",
    "启航",
    "远航",
    "安泰",
    "宏图",
    "锦程",
    "腾飞",
    "旺达",
    "聚丰",
    "丰源",
    "吉祥",
    "金穗",
    "一品",
    "好运来",
    "合家欢",
    "味之源",
    "粮满仓",
    "鲜丰",
    "绿源",
    "春城",
    "长白山",
    "松花江",
    "净月",
    "北湖",
    "嘉德",
    "荣盛",
];

const INDUSTRIES: [&str; 25] = [
    "科技",
    "商贸",
    "物流",
    "餐饮管理",
    "食品",
    "建筑工程",
    "房地产开发",
    "农业发展",
    "医药",
    "信息技术",
    "文化传媒",
    "机械制造",
    "汽车销售",
    "装饰工程",
    "劳务服务",
    "环保科技",
    "电子",
    "广告",
    "物业管理",
    "贸易",
    "生物科技",
    "教育咨询",
    "供应链管理",
    "网络科技",
    "建材",
];

const CITY_PREFIXES: [&str; 4] = ["长春市", "吉林省", "长春", "吉林"];

/// Appends `长春市华信科技` style: region prefix, trade name, industry.
fn push_firm_stem(out: &mut String, rng: &mut Rng, industry: Option<&str>) {
    out.push_str(rng.pick(&CITY_PREFIXES));
    out.push_str(rng.pick(&TRADE_NAMES));
    out.push_str(industry.unwrap_or_else(|| rng.pick(&INDUSTRIES)));
}

/// Appends a company name with the given form (有限公司, 股份有限公司, …).
pub fn push_company(out: &mut String, rng: &mut Rng, industry: Option<&str>, form: &str) {
    push_firm_stem(out, rng, industry);
    out.push_str(form);
}

/// Appends the name of an individual business in a district: `长春市朝阳区老张家饺子馆`.
pub fn push_shop(out: &mut String, rng: &mut Rng, district: usize, kinds: &[&str]) {
    out.push_str("长春市");
    out.push_str(DISTRICTS.get(district).map_or("朝阳区", |d| d.name));
    if rng.chance(0.3) {
        // A family name as trade name: 老张家, 李记.
        let surname = rng.pick(&["张", "李", "王", "刘", "赵", "孙", "周", "吴", "马", "郑"]);
        if rng.chance(0.5) {
            out.push('老');
            out.push_str(surname);
            out.push('家');
        } else {
            out.push_str(surname);
            out.push('记');
        }
    } else {
        out.push_str(rng.pick(&TRADE_NAMES));
    }
    if rng.below(25) == 0 {
        // A branch in full-width brackets, kept as written: 饺子馆（红旗街店）.
        out.push('（');
        out.push_str(DISTRICTS.get(district).map_or("红旗街", |d| d.offices[0]));
        out.push_str("店）");
    }
    out.push_str(rng.pick(kinds));
}

/// Appends the name of a unit with a canteen: a school, hospital or company.
pub fn push_canteen(out: &mut String, rng: &mut Rng) -> Registrant {
    let registrant = match rng.below(4) {
        0 => {
            out.push_str("长春市第");
            push_uint(out, rng.range(1, 150) as u64);
            out.push_str("中学");
            Registrant::PublicInstitution
        }
        1 => {
            out.push_str("吉林省");
            out.push_str(rng.pick(&TRADE_NAMES));
            out.push_str("医院");
            Registrant::PublicInstitution
        }
        2 => {
            out.push_str("长春");
            out.push_str(rng.pick(&TRADE_NAMES));
            out.push_str("学院");
            Registrant::PublicInstitution
        }
        _ => {
            push_company(out, rng, None, "有限公司");
            Registrant::Enterprise
        }
    };
    out.push_str(rng.pick(&["职工食堂", "食堂", "学生食堂", "员工餐厅"]));
    registrant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{check_org_code, check_uscc};
    use std::collections::HashSet;

    #[test]
    fn usccs_are_valid_and_unique() {
        let mut rng = Rng::new(1);
        let mut maker = UsccMaker::new(&mut rng);
        let mut seen = HashSet::new();
        for i in 0..20_000 {
            let mut s = String::new();
            maker.push(&mut s, Registrant::Enterprise, "220104", i % 3 != 0);
            check_uscc(&s).unwrap();
            check_org_code(&s[8..17]).unwrap();
            assert!(seen.insert(s));
        }
    }
}
