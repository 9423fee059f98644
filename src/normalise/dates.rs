//! Dates as legacy exports write them: ISO and its `/` `.` variants, compact `20170424`,
//! `2017年4月24日`, Chinese numerals (`二〇一七年四月二十四日`), ISO date-times from ODS, Excel
//! serial numbers (1900 and 1904 systems), and the open-ended validity words (长期, 永久) and
//! sentinel 9999-12-31.
//!
//! Plausible years are [`MIN_YEAR`]`..=`[`MAX_YEAR`]; a date outside is an error, never clamped.
//! An open-ended validity becomes [`ValidityEnd::OpenEnded`], never a fake date. The common ISO
//! form is parsed without regex or allocation.

use chrono::{Datelike, Days, NaiveDate};
use thiserror::Error;

use super::width::{to_half_width, trim};

/// Earliest year accepted as a licence date.
pub const MIN_YEAR: i32 = 1900;
/// Latest year accepted as a licence date.
pub const MAX_YEAR: i32 = 2100;

/// Why a date cell was rejected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DateError {
    /// The text matches none of the accepted formats.
    #[error("{text:?} is not a recognised date")]
    Unrecognised { text: String },
    /// The text has a date shape but names no calendar day (2017-02-30, month 13).
    #[error("{year:04}-{month:02}-{day:02} is not a calendar date")]
    NotACalendarDate { year: i32, month: u32, day: u32 },
    /// A real date whose year is outside [`MIN_YEAR`]`..=`[`MAX_YEAR`].
    #[error("year {year} is outside {MIN_YEAR}..={MAX_YEAR}")]
    OutOfRange { year: i32 },
    /// Excel 1900-system serial 60, the 1900-02-29 that Excel invents (Lotus 1-2-3 bug).
    #[error("Excel serial 60 is the non-existent 1900-02-29")]
    FakeLeapDay,
    /// An Excel serial below the first day of its system, beyond 9999-12-31, or not finite.
    #[error("Excel serial {serial} is not a date")]
    BadSerial { serial: f64 },
}

/// The end of a validity period (有效期截止).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityEnd {
    Date(NaiveDate),
    /// 长期, 永久, 长期有效 or the sentinel 9999-12-31: no end date.
    OpenEnded,
}

/// Year, month and day as written, before any calendar check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ymd {
    year: i32,
    month: u32,
    day: u32,
}

impl Ymd {
    const OPEN_ENDED: Ymd = Ymd { year: 9999, month: 12, day: 31 };

    /// The calendar date, if the year is plausible and the day exists.
    fn to_date(self) -> Result<NaiveDate, DateError> {
        let Ymd { year, month, day } = self;
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::OutOfRange { year });
        }
        NaiveDate::from_ymd_opt(year, month, day).ok_or(DateError::NotACalendarDate {
            year,
            month,
            day,
        })
    }
}

/// A forward-only reader over the characters of a date string.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next()?;
        self.rest = chars.as_str();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start_matches(char::is_whitespace);
    }

    /// A run of `min..=max` ASCII digits (no more may follow), as a number.
    fn ascii_number(&mut self, min: usize, max: usize) -> Option<u32> {
        let len = self.rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(min..=max).contains(&len) {
            return None;
        }
        let (digits, tail) = self.rest.split_at_checked(len)?;
        self.rest = tail;
        Some(digits.bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
    }

    /// Four year digits, each ASCII or a Chinese digit (〇 ○ 零 O count as zero).
    fn year_digits(&mut self) -> Option<i32> {
        let mut year = 0;
        for _ in 0..4 {
            let c = self.bump()?;
            let digit = c.to_digit(10).filter(|_| c.is_ascii()).or_else(|| chinese_digit(c))?;
            year = year * 10 + i32::try_from(digit).ok()?;
        }
        Some(year)
    }

    /// A month or day: 1–2 ASCII digits, or Chinese numerals from 一 to 三十九 (十, 十一, 二十,
    /// 二十四, 三十一; 廿 and 卅 for 二十 and 三十).
    fn small_number(&mut self) -> Option<u32> {
        if let Some(n) = self.ascii_number(1, 2) {
            return Some(n);
        }
        let mut tens = None;
        let mut units = None;
        while let Some(c) = self.peek() {
            match (c, tens, units) {
                ('十', None, u) => {
                    tens = Some(u.unwrap_or(1));
                    units = None;
                }
                ('廿', None, None) => tens = Some(2),
                ('卅', None, None) => tens = Some(3),
                (_, _, None) => match chinese_digit(c).filter(|&d| d > 0) {
                    Some(d) => units = Some(d),
                    None => break,
                },
                _ => break,
            }
            self.bump();
        }
        match (tens, units) {
            (None, None) => None,
            (t, u) => Some(t.unwrap_or(0) * 10 + u.unwrap_or(0)),
        }
    }
}

/// The value of a Chinese digit character; 〇 (U+3007), ○ (U+25CB), 零 and the letter O (what
/// a full-width Ｏ becomes) are zero.
fn chinese_digit(c: char) -> Option<u32> {
    Some(match c {
        '〇' | '○' | '零' | 'O' => 0,
        '一' => 1,
        '二' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

/// `YYYY-MM-DD` exactly: the common case, no allocation, no scanning.
fn parse_iso_fast(s: &str) -> Option<Ymd> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = s.as_bytes() else {
        return None;
    };
    let year = [y0, y1, y2, y3].into_iter().try_fold(0, |acc, b| Some(acc * 10 + digit(b)?))?;
    Some(Ymd {
        year: i32::try_from(year).ok()?,
        month: digit(m0)? * 10 + digit(m1)?,
        day: digit(d0)? * 10 + digit(d1)?,
    })
}

/// `YYYYMMDD`.
fn parse_compact(s: &str) -> Option<Ymd> {
    let &[y0, y1, y2, y3, m0, m1, d0, d1] = s.as_bytes() else {
        return None;
    };
    let year = [y0, y1, y2, y3].into_iter().try_fold(0, |acc, b| Some(acc * 10 + digit(b)?))?;
    Some(Ymd {
        year: i32::try_from(year).ok()?,
        month: digit(m0)? * 10 + digit(m1)?,
        day: digit(d0)? * 10 + digit(d1)?,
    })
}

/// True for a time of day after a date: `00:00:00`, `0:00`, `12:30:00.000`, `08:00:00+08:00`,
/// `00:00:00Z`. Its value is ignored.
fn is_time_of_day(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && s.contains(':')
        && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b':' | b'.' | b'+' | b'-' | b'Z'))
}

/// `YYYY-M-D`, `YYYY/M/D`, `YYYY.M.D` (one or two digits for month and day, the same separator
/// twice), optionally followed by `T` or spaces and a time of day.
fn parse_separated(s: &str) -> Option<Ymd> {
    let mut cursor = Cursor { rest: s };
    let year = cursor.ascii_number(4, 4)?;
    let separator = cursor.bump().filter(|c| matches!(c, '-' | '/' | '.'))?;
    let month = cursor.ascii_number(1, 2)?;
    if !cursor.eat(separator) {
        return None;
    }
    let day = cursor.ascii_number(1, 2)?;
    let rest = cursor.rest;
    let time_ok = rest.is_empty()
        || rest.strip_prefix('T').is_some_and(is_time_of_day)
        || rest.starts_with(' ') && is_time_of_day(rest.trim_start());
    time_ok.then_some(Ymd { year: i32::try_from(year).ok()?, month, day })
}

/// `2017年4月24日`, `2017 年 04 月 24 日`, `二〇一七年四月二十四日`: year, month and day each in
/// ASCII digits or Chinese numerals, spaces allowed around them, ending in 日 (or 号).
fn parse_chinese(s: &str) -> Option<Ymd> {
    let mut cursor = Cursor { rest: s };
    let year = cursor.year_digits()?;
    cursor.skip_spaces();
    cursor.eat('年').then_some(())?;
    cursor.skip_spaces();
    let month = cursor.small_number()?;
    cursor.skip_spaces();
    cursor.eat('月').then_some(())?;
    cursor.skip_spaces();
    let day = cursor.small_number()?;
    cursor.skip_spaces();
    (cursor.eat('日') || cursor.eat('号')).then_some(())?;
    cursor.rest.is_empty().then_some(Ymd { year, month, day })
}

/// Year, month and day of trimmed, half-width text in any accepted format.
fn parse_ymd(s: &str) -> Option<Ymd> {
    parse_iso_fast(s)
        .or_else(|| parse_compact(s))
        .or_else(|| parse_separated(s))
        .or_else(|| parse_chinese(s))
}

/// Trims, folds to half-width and reads year, month and day; the fast path skips the folding.
fn read_ymd(s: &str) -> Result<Ymd, DateError> {
    let trimmed = trim(s);
    if let Some(ymd) = parse_iso_fast(trimmed) {
        return Ok(ymd);
    }
    parse_ymd(&to_half_width(trimmed))
        .ok_or_else(|| DateError::Unrecognised { text: trimmed.to_owned() })
}

/// Parses a date cell after trimming and half-width folding. Accepts `2017-04-24`, `2017-4-24`,
/// `2017/4/24`, `2017.4.24`, `20170424`, `2017年4月24日` (also zero-padded, with spaces, or
/// ending in 号), `二〇一七年四月二十四日` and a date followed by a time of day
/// (`2024-08-02T00:00:00`, `2017/4/24 0:00:00`), whose time is ignored.
///
/// Fails with [`DateError::Unrecognised`] for any other text (including empty),
/// [`DateError::OutOfRange`] for a year outside [`MIN_YEAR`]`..=`[`MAX_YEAR`], and
/// [`DateError::NotACalendarDate`] for a day that does not exist (2017-02-30).
pub fn parse_date(s: &str) -> Result<NaiveDate, DateError> {
    read_ymd(s)?.to_date()
}

/// Parses the end of a validity period: 长期, 永久, 长期有效 and the date 9999-12-31 in any
/// [`parse_date`] format give [`ValidityEnd::OpenEnded`]; other text is a date as in
/// [`parse_date`] and fails the same way. An empty cell is the caller's decision and fails here
/// with [`DateError::Unrecognised`].
pub fn parse_validity_end(s: &str) -> Result<ValidityEnd, DateError> {
    let trimmed = trim(s);
    if matches!(trimmed, "长期" | "永久" | "长期有效") {
        return Ok(ValidityEnd::OpenEnded);
    }
    let ymd = read_ymd(trimmed)?;
    if ymd == Ymd::OPEN_ENDED {
        return Ok(ValidityEnd::OpenEnded);
    }
    ymd.to_date().map(ValidityEnd::Date)
}

/// Excel's last serial date, 9999-12-31 in the 1900 system.
const MAX_SERIAL_1900: f64 = 2_958_465.0;

/// The day an Excel serial names, with no plausibility check on the year.
fn excel_serial_day(serial: f64, date1904: bool) -> Result<NaiveDate, DateError> {
    let bad = DateError::BadSerial { serial };
    if !serial.is_finite() {
        return Err(bad);
    }
    // The fraction is the time of day.
    let whole = serial.floor();
    let first = if date1904 { 0.0 } else { 1.0 };
    if !(first..=MAX_SERIAL_1900).contains(&whole) {
        return Err(bad);
    }
    // In range 0..=2_958_465, so the conversion is exact.
    let days = whole as u64;
    let (epoch, offset) = match (date1904, days) {
        // 1904 system: serial 0 is 1904-01-01.
        (true, _) => ((1904, 1, 1), days),
        // 1900 system: serial 1 is 1900-01-01 …
        (false, 1..=59) => ((1899, 12, 31), days),
        // … serial 60 is the fake 1900-02-29 …
        (false, 60) => return Err(DateError::FakeLeapDay),
        // … and from serial 61 (1900-03-01) on, day 0 is effectively 1899-12-30.
        (false, _) => ((1899, 12, 30), days),
    };
    let (y, m, d) = epoch;
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|epoch| epoch.checked_add_days(Days::new(offset)))
        .filter(|date| date.year() <= 9999)
        .ok_or(bad)
}

/// The date of an Excel serial number (a date-formatted cell). `date1904` selects the 1904
/// system (serial 0 = 1904-01-01) over the 1900 system (serial 1 = 1900-01-01,
/// 42849 = 2017-04-24). The fractional part (time of day) is ignored.
///
/// Fails with [`DateError::FakeLeapDay`] for 1900-system serial 60, [`DateError::BadSerial`]
/// for a serial before the system's first day, beyond 9999-12-31 or not finite, and
/// [`DateError::OutOfRange`] for a year outside [`MIN_YEAR`]`..=`[`MAX_YEAR`] (9999-12-31
/// included: use [`excel_serial_to_validity_end`] for validity ends).
pub fn excel_serial_to_date(serial: f64, date1904: bool) -> Result<NaiveDate, DateError> {
    let date = excel_serial_day(serial, date1904)?;
    Ymd { year: date.year(), month: date.month(), day: date.day() }.to_date()
}

/// Like [`excel_serial_to_date`] for the end of a validity period, except that 9999-12-31
/// gives [`ValidityEnd::OpenEnded`]. Fails the same way.
pub fn excel_serial_to_validity_end(serial: f64, date1904: bool) -> Result<ValidityEnd, DateError> {
    let date = excel_serial_day(serial, date1904)?;
    let ymd = Ymd { year: date.year(), month: date.month(), day: date.day() };
    if ymd == Ymd::OPEN_ENDED {
        return Ok(ValidityEnd::OpenEnded);
    }
    ymd.to_date().map(ValidityEnd::Date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn every_text_format_from_domain() {
        let want = Ok(ymd(2017, 4, 24));
        for text in [
            "2017-04-24",
            "2017-4-24",
            "2017/4/24",
            "2017/04/24",
            "2017.4.24",
            "20170424",
            "2017年4月24日",
            "2017年04月24日",
            "2017 年 4 月 24 日",
            "2017年\u{3000}4月24日",
            "2017年4月24号",
            "二〇一七年四月二十四日",
            "二○一七年四月二十四日",
            "二零一七年四月二十四日",
            "二Ｏ一七年四月二十四日",
            "二O一七年四月廿四日",
            "2017年四月二十四日",
            "2017-04-24T00:00:00",
            "2017-04-24T08:30:00.000+08:00",
            "2017/4/24 0:00:00",
            "2017-04-24 00:00",
            "２０１７－０４－２４",
            "２０１７年４月２４日",
            " \u{feff}2017-04-24\u{a0}",
        ] {
            assert_eq!(parse_date(text), want, "{text:?}");
        }
    }

    #[test]
    fn chinese_month_and_day_numerals() {
        for (text, m, d) in [
            ("二〇一七年一月一日", 1, 1),
            ("二〇一七年十月十日", 10, 10),
            ("二〇一七年十一月十九日", 11, 19),
            ("二〇一七年十二月二十日", 12, 20),
            ("二〇一七年十二月三十一日", 12, 31),
            ("二〇一七年十二月卅一日", 12, 31),
            ("二〇一七年三月三十日", 3, 30),
        ] {
            assert_eq!(parse_date(text), Ok(ymd(2017, m, d)), "{text}");
        }
    }

    #[test]
    fn unrecognised_text() {
        for text in [
            "",
            "长期",
            "2017-04",
            "17-04-24",
            "2017-04/24",
            "2017-04-24x",
            "2017-04-24T",
            "2017-004-24",
            "2017年4月",
            "2017年4月24日下午",
            "二〇一七年〇四月二十四日",
            "二〇一七年四月十十日",
            "二〇一七年四月二十四",
            "April 24, 2017",
            "2017〇424",
        ] {
            assert!(matches!(parse_date(text), Err(DateError::Unrecognised { .. })), "{text:?}");
        }
    }

    #[test]
    fn impossible_dates_are_not_unparseable() {
        assert_eq!(
            parse_date("2017-02-30"),
            Err(DateError::NotACalendarDate { year: 2017, month: 2, day: 30 })
        );
        assert_eq!(
            parse_date("2017年13月1日"),
            Err(DateError::NotACalendarDate { year: 2017, month: 13, day: 1 })
        );
        assert_eq!(
            parse_date("20170000"),
            Err(DateError::NotACalendarDate { year: 2017, month: 0, day: 0 })
        );
        assert_eq!(
            parse_date("二〇一七年二月三十日"),
            Err(DateError::NotACalendarDate { year: 2017, month: 2, day: 30 })
        );
        assert_eq!(parse_date("2000-02-29"), Ok(ymd(2000, 2, 29)));
        assert_eq!(
            parse_date("1900-02-29"),
            Err(DateError::NotACalendarDate { year: 1900, month: 2, day: 29 })
        );
    }

    #[test]
    fn years_outside_range() {
        assert_eq!(parse_date("1899-12-31"), Err(DateError::OutOfRange { year: 1899 }));
        assert_eq!(parse_date("2101-01-01"), Err(DateError::OutOfRange { year: 2101 }));
        assert_eq!(parse_date("9999-12-31"), Err(DateError::OutOfRange { year: 9999 }));
        assert_eq!(parse_date("1900-01-01"), Ok(ymd(1900, 1, 1)));
        assert_eq!(parse_date("2100-12-31"), Ok(ymd(2100, 12, 31)));
    }

    #[test]
    fn validity_end() {
        for text in
            ["长期", "永久", "长期有效", " 长期 ", "9999-12-31", "9999年12月31日", "99991231"]
        {
            assert_eq!(parse_validity_end(text), Ok(ValidityEnd::OpenEnded), "{text}");
        }
        assert_eq!(parse_validity_end("2022年4月23日"), Ok(ValidityEnd::Date(ymd(2022, 4, 23))));
        assert_eq!(parse_validity_end("9999-12-30"), Err(DateError::OutOfRange { year: 9999 }));
        assert!(matches!(parse_validity_end(""), Err(DateError::Unrecognised { .. })));
        assert!(matches!(parse_validity_end("长期有效期"), Err(DateError::Unrecognised { .. })));
    }

    #[test]
    fn excel_1900_system() {
        assert_eq!(excel_serial_to_date(42849.0, false), Ok(ymd(2017, 4, 24)));
        assert_eq!(excel_serial_to_date(42849.75, false), Ok(ymd(2017, 4, 24)));
        assert_eq!(excel_serial_to_date(1.0, false), Ok(ymd(1900, 1, 1)));
        assert_eq!(excel_serial_to_date(59.0, false), Ok(ymd(1900, 2, 28)));
        assert_eq!(excel_serial_to_date(60.0, false), Err(DateError::FakeLeapDay));
        assert_eq!(excel_serial_to_date(60.5, false), Err(DateError::FakeLeapDay));
        assert_eq!(excel_serial_to_date(61.0, false), Ok(ymd(1900, 3, 1)));
        assert_eq!(excel_serial_to_date(0.0, false), Err(DateError::BadSerial { serial: 0.0 }));
        assert_eq!(excel_serial_to_date(0.5, false), Err(DateError::BadSerial { serial: 0.5 }));
        assert_eq!(excel_serial_to_date(-1.0, false), Err(DateError::BadSerial { serial: -1.0 }));
        assert!(matches!(excel_serial_to_date(f64::NAN, false), Err(DateError::BadSerial { .. })));
        assert!(matches!(
            excel_serial_to_date(f64::INFINITY, false),
            Err(DateError::BadSerial { .. })
        ));
        assert_eq!(
            excel_serial_to_date(2_958_466.0, false),
            Err(DateError::BadSerial { serial: 2_958_466.0 })
        );
        assert_eq!(
            excel_serial_to_date(2_958_465.0, false),
            Err(DateError::OutOfRange { year: 9999 })
        );
        assert_eq!(excel_serial_to_validity_end(2_958_465.0, false), Ok(ValidityEnd::OpenEnded));
        assert_eq!(
            excel_serial_to_validity_end(42849.0, false),
            Ok(ValidityEnd::Date(ymd(2017, 4, 24)))
        );
    }

    #[test]
    fn excel_1904_system() {
        assert_eq!(excel_serial_to_date(0.0, true), Ok(ymd(1904, 1, 1)));
        // The same day is 1462 serials apart in the two systems.
        assert_eq!(excel_serial_to_date(42849.0 - 1462.0, true), Ok(ymd(2017, 4, 24)));
        assert_eq!(excel_serial_to_date(60.0, true), Ok(ymd(1904, 3, 1)));
        assert_eq!(excel_serial_to_date(-0.5, true), Err(DateError::BadSerial { serial: -0.5 }));
        assert_eq!(excel_serial_to_validity_end(2_957_003.0, true), Ok(ValidityEnd::OpenEnded));
    }

    #[test]
    fn messages_state_the_facts() {
        let e = DateError::NotACalendarDate { year: 2017, month: 2, day: 30 };
        assert_eq!(e.to_string(), "2017-02-30 is not a calendar date");
    }

    const CHINESE_DIGITS: [char; 10] = ['〇', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

    fn chinese_small(n: u32) -> String {
        let digit = |d: u32| CHINESE_DIGITS[d as usize];
        match (n / 10, n % 10) {
            (0, u) => digit(u).to_string(),
            (1, 0) => "十".into(),
            (1, u) => format!("十{}", digit(u)),
            (t, 0) => format!("{}十", digit(t)),
            (t, u) => format!("{}十{}", digit(t), digit(u)),
        }
    }

    fn formats(date: NaiveDate) -> Vec<String> {
        let (y, m, d) = (date.year(), date.month(), date.day());
        let chinese_year: String = y
            .to_string()
            .chars()
            .map(|c| CHINESE_DIGITS[c.to_digit(10).unwrap() as usize])
            .collect();
        let full_width: String = date
            .format("%Y-%m-%d")
            .to_string()
            .chars()
            .map(|c| char::from_u32(u32::from(c) + 0xfee0).unwrap())
            .collect();
        vec![
            date.format("%Y-%m-%d").to_string(),
            format!("{y}-{m}-{d}"),
            format!("{y}/{m}/{d}"),
            format!("{y}/{m:02}/{d:02}"),
            format!("{y}.{m}.{d}"),
            date.format("%Y%m%d").to_string(),
            format!("{y}年{m}月{d}日"),
            format!("{y}年{m:02}月{d:02}日"),
            format!("{chinese_year}年{}月{}日", chinese_small(m), chinese_small(d)),
            format!("{}T00:00:00", date.format("%Y-%m-%d")),
            full_width,
        ]
    }

    proptest! {
        #[test]
        fn every_format_round_trips(days in 0u64..73_414) {
            // 1900-01-01 + 0..73_414 days covers 1900-01-01..=2100-12-31.
            let date = ymd(1900, 1, 1) + Days::new(days);
            for text in formats(date) {
                prop_assert_eq!(parse_date(&text), Ok(date), "{}", text);
            }
        }

        #[test]
        fn excel_serial_round_trips(days in 61u64..73_000) {
            let date = ymd(1899, 12, 30) + Days::new(days);
            prop_assume!(date.year() <= MAX_YEAR);
            prop_assert_eq!(excel_serial_to_date(days as f64 + 0.25, false), Ok(date));
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = parse_date(&s);
            let _ = parse_validity_end(&s);
        }
    }
}
