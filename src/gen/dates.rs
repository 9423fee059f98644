//! Dates as legacy exports write them, for the generator: mostly ISO, some `2017年4月24日`,
//! `2017/4/24`, `2017.4.24`, `20170424` and `二〇一七年四月二十四日`, and in workbooks date
//! cells (Excel serial numbers). Formatting is by hand (no `format!`) because it is hot.

use chrono::{Datelike, Months, NaiveDate};

use super::rng::Rng;

/// How one date cell is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateForm {
    /// `2017-04-24`
    Iso,
    /// `2017年4月24日`
    Chinese,
    /// `2017/4/24`
    Slash,
    /// `2017.4.24`
    Dotted,
    /// `20170424`
    Compact,
    /// `二〇一七年四月二十四日` (sometimes with ○ for zero)
    ChineseNumerals,
    /// A workbook date cell: the Excel serial number (1900 system) with a date format.
    SerialCell,
    /// A workbook number cell holding the bare serial, as exports without formats have it.
    SerialNumber,
}

impl DateForm {
    /// Draws a form with the mix legacy exports show; serial forms only for workbooks.
    pub fn draw(rng: &mut Rng, workbook: bool) -> DateForm {
        const TEXT: [DateForm; 6] = [
            DateForm::Iso,
            DateForm::Chinese,
            DateForm::Slash,
            DateForm::Dotted,
            DateForm::Compact,
            DateForm::ChineseNumerals,
        ];
        const TEXT_WEIGHTS: [u32; 6] = [70, 10, 8, 3, 5, 4];
        if workbook {
            match rng.below(100) {
                0..=11 => return DateForm::SerialCell,
                12..=13 => return DateForm::SerialNumber,
                _ => {}
            }
        }
        TEXT[rng.weighted(&TEXT_WEIGHTS)]
    }

    /// Whether the form is a workbook number rather than text.
    pub fn is_serial(self) -> bool {
        matches!(self, DateForm::SerialCell | DateForm::SerialNumber)
    }

    /// A text form (for dates that must stay text, such as impossible ones).
    pub fn draw_text(rng: &mut Rng) -> DateForm {
        DateForm::draw(rng, false)
    }
}

/// Appends `n` in decimal.
pub fn push_uint(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Appends `n` with at least `width` digits, zero-padded.
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = 1;
    let mut m = n / 10;
    while m > 0 {
        digits += 1;
        m /= 10;
    }
    for _ in digits..width {
        out.push('0');
    }
    push_uint(out, n);
}

const CN_DIGITS: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

/// `1..=31` in Chinese numerals: 十, 十一, 二十, 二十四, 三十一.
fn push_cn_number(out: &mut String, n: u32) {
    let (tens, units) = ((n / 10) as usize, (n % 10) as usize);
    match tens {
        0 => out.push(CN_DIGITS[units % 10]),
        _ => {
            if tens > 1 {
                out.push(CN_DIGITS[tens % 10]);
            }
            out.push('十');
            if units > 0 {
                out.push(CN_DIGITS[units]);
            }
        }
    }
}

/// Appends year, month and day in `form`, without checking that they make a calendar date (the
/// generator writes impossible dates on purpose). Serial forms need a real date: use
/// [`push_date`] for those; here they fall back to ISO.
pub fn push_ymd(out: &mut String, y: i32, m: u32, d: u32, form: DateForm, zero: char) {
    let year = u64::from(y.unsigned_abs());
    match form {
        DateForm::Iso | DateForm::SerialCell | DateForm::SerialNumber => {
            push_padded(out, year, 4);
            out.push('-');
            push_padded(out, u64::from(m), 2);
            out.push('-');
            push_padded(out, u64::from(d), 2);
        }
        DateForm::Chinese => {
            push_uint(out, year);
            out.push('年');
            push_uint(out, u64::from(m));
            out.push('月');
            push_uint(out, u64::from(d));
            out.push('日');
        }
        DateForm::Slash | DateForm::Dotted => {
            let sep = if form == DateForm::Slash { '/' } else { '.' };
            push_uint(out, year);
            out.push(sep);
            push_uint(out, u64::from(m));
            out.push(sep);
            push_uint(out, u64::from(d));
        }
        DateForm::Compact => {
            push_padded(out, year, 4);
            push_padded(out, u64::from(m), 2);
            push_padded(out, u64::from(d), 2);
        }
        DateForm::ChineseNumerals => {
            let mut digits = [0usize; 4];
            let mut rest = year;
            for slot in digits.iter_mut().rev() {
                *slot = (rest % 10) as usize;
                rest /= 10;
            }
            for digit in digits {
                out.push(if digit == 0 { zero } else { CN_DIGITS[digit] });
            }
            out.push('年');
            push_cn_number(out, m);
            out.push('月');
            push_cn_number(out, d);
            out.push('日');
        }
    }
}

/// Days from 1899-12-30 to `d`: the Excel 1900-system serial of dates after 1900-02-28.
pub fn excel_serial(d: NaiveDate) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or(NaiveDate::MIN);
    d.signed_duration_since(epoch).num_days()
}

/// Appends `d` in `form` (the serial number for the serial forms).
pub fn push_date(out: &mut String, d: NaiveDate, form: DateForm, rng: &mut Rng) {
    if form.is_serial() {
        let serial = excel_serial(d);
        push_uint(out, serial.unsigned_abs());
        return;
    }
    // 〇 is the usual zero; some systems typed ○ (U+25CB) or 零.
    let zero = match rng.below(20) {
        0 => '○',
        1 => '零',
        _ => '〇',
    };
    push_ymd(out, d.year(), d.month(), d.day(), form, zero);
}

/// A uniformly drawn day in `lo..=hi`.
pub fn draw_between(rng: &mut Rng, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    let span = hi.signed_duration_since(lo).num_days();
    let offset = rng.range(0, span);
    lo.checked_add_signed(chrono::Duration::days(offset)).unwrap_or(lo)
}

/// `d` plus `years` whole years (the last day of February when the day does not exist).
pub fn add_years(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_add_months(Months::new(years * 12)).unwrap_or(d)
}

/// `d` moved by `days` (unchanged when out of chrono's range).
pub fn add_days(d: NaiveDate, days: i64) -> NaiveDate {
    d.checked_add_signed(chrono::Duration::days(days)).unwrap_or(d)
}

/// A calendar date from constants.
pub fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalise::dates::parse_date;

    fn show(d: NaiveDate, form: DateForm) -> String {
        let mut s = String::new();
        push_ymd(&mut s, d.year(), d.month(), d.day(), form, '〇');
        s
    }

    #[test]
    fn every_text_form_reads_back() {
        let d = ymd(2017, 4, 24);
        assert_eq!(show(d, DateForm::Iso), "2017-04-24");
        assert_eq!(show(d, DateForm::Chinese), "2017年4月24日");
        assert_eq!(show(d, DateForm::Slash), "2017/4/24");
        assert_eq!(show(d, DateForm::Dotted), "2017.4.24");
        assert_eq!(show(d, DateForm::Compact), "20170424");
        assert_eq!(show(d, DateForm::ChineseNumerals), "二〇一七年四月二十四日");
        assert_eq!(show(ymd(2020, 10, 10), DateForm::ChineseNumerals), "二〇二〇年十月十日");
        assert_eq!(show(ymd(2019, 12, 31), DateForm::ChineseNumerals), "二〇一九年十二月三十一日");
        let mut rng = Rng::new(3);
        for days in (0..4000).step_by(37) {
            let d = add_days(ymd(2012, 1, 1), days);
            for form in [
                DateForm::Iso,
                DateForm::Chinese,
                DateForm::Slash,
                DateForm::Dotted,
                DateForm::Compact,
                DateForm::ChineseNumerals,
            ] {
                let mut s = String::new();
                push_date(&mut s, d, form, &mut rng);
                assert_eq!(parse_date(&s), Ok(d), "{s}");
            }
        }
    }

    #[test]
    fn serials_are_excel_1900() {
        assert_eq!(excel_serial(ymd(2017, 4, 24)), 42849);
        let mut s = String::new();
        push_padded(&mut s, 7, 3);
        push_uint(&mut s, 0);
        assert_eq!(s, "0070");
    }
}
