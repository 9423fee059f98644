//! Synthetic places in Changchun (长春市): districts with their GB/T 2260 region codes, roads
//! and street addresses `吉林省长春市<district><road><number>号`.

use super::dates::push_uint;
use super::rng::Rng;

/// A district (区/县/市) of Changchun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct District {
    pub name: &'static str,
    /// GB/T 2260 region code.
    pub region: &'static str,
    /// Sub-district offices (街道/镇), used for supervision offices (监督管理所).
    pub offices: [&'static str; 4],
}

/// Changchun's districts, urban ones first.
pub const DISTRICTS: [District; 11] = [
    District {
        name: "南关区", region: "220102", offices: ["永吉", "南岭", "自由大路", "明珠"]
    },
    District {
        name: "宽城区", region: "220103", offices: ["东站", "南广场", "兴业", "凯旋"]
    },
    District {
        name: "朝阳区", region: "220104", offices: ["红旗街", "桂林", "南湖", "重庆路"]
    },
    District {
        name: "二道区", region: "220105", offices: ["东盛", "吉林", "荣光", "远达"]
    },
    District {
        name: "绿园区", region: "220106", offices: ["正阳", "春城", "青年", "西新"]
    },
    District {
        name: "双阳区", region: "220112", offices: ["云山", "平湖", "奢岭", "鹿乡"]
    },
    District {
        name: "九台区", region: "220113", offices: ["九台", "营城", "卡伦", "龙嘉"]
    },
    District {
        name: "农安县", region: "220122", offices: ["农安", "合隆", "烧锅", "伏龙泉"]
    },
    District {
        name: "榆树市", region: "220182", offices: ["华昌", "正阳", "培英", "城郊"]
    },
    District {
        name: "德惠市", region: "220183", offices: ["胜利", "建设", "惠发", "夏家店"]
    },
    District {
        name: "公主岭市", region: "220184", offices: ["岭东", "岭西", "铁北", "河北"]
    },
];

/// The district with this region code.
pub fn district_of_region(region: &str) -> Option<usize> {
    DISTRICTS.iter().position(|d| d.region == region)
}

/// A district index, urban districts more often.
pub fn draw_district(rng: &mut Rng) -> usize {
    if rng.chance(0.75) { rng.index(5) } else { rng.index(DISTRICTS.len()) }
}

const ROADS: [&str; 40] = [
    "人民大街",
    "红旗街",
    "西民主大街",
    "湖西路",
    "工农大路",
    "南湖大路",
    "建设街",
    "延安大街",
    "自由大路",
    "卫星路",
    "硅谷大街",
    "青年路",
    "东风大街",
    "亚泰大街",
    "普阳街",
    "同志街",
    "大马路",
    "重庆路",
    "长春大街",
    "解放大路",
    "南京大街",
    "东盛大街",
    "临河街",
    "开运街",
    "春城大街",
    "繁荣路",
    "飞跃路",
    "景阳大路",
    "前进大街",
    "生态大街",
    "新民大街",
    "吉林大路",
    "远达大街",
    "隆礼路",
    "长白路",
    "北海路",
    "西安大路",
    "清华路",
    "安达街",
    "义和路",
];

/// Appends a street address in district `district`.
pub fn push_address(out: &mut String, rng: &mut Rng, district: usize) {
    let d = DISTRICTS.get(district).unwrap_or(&DISTRICTS[0]);
    out.push_str("吉林省长春市");
    out.push_str(d.name);
    out.push_str(rng.pick(&ROADS));
    push_uint(out, rng.range(1, 3999) as u64);
    out.push('号');
    match rng.below(8) {
        0 => {
            push_uint(out, rng.range(1, 30) as u64);
            out.push('栋');
            push_uint(out, rng.range(1, 6) as u64);
            out.push_str("单元");
            push_uint(out, rng.range(101, 2604) as u64);
            out.push('室');
        }
        1 => {
            push_uint(out, rng.range(1, 28) as u64);
            out.push('层');
        }
        2 => {
            push_uint(out, rng.range(1, 40) as u64);
            out.push_str("号门市");
        }
        3 => {
            out.push_str("商业网点");
            push_uint(out, rng.range(1, 60) as u64);
            out.push('号');
        }
        _ => {}
    }
}
