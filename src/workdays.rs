//! Working days (工作日) for deadlines: a check request (核查) is due a number of working days
//! after it is opened (Art. 13: the issuer answers promptly). Saturdays and Sundays are not
//! working days, nor are the public holidays of a holiday list; a weekend day the list names as
//! a make-up working day (调休) is one. Pure, except [`Holidays::load`], which reads the list.
//!
//! A holiday list is a text file with one date a line, as the State Council's yearly notice
//! gives them: `YYYY-MM-DD` for a day off, `YYYY-MM-DD workday` (or `上班`) for a weekend day
//! worked instead. A `#` starts a comment; blank lines are ignored. For 国庆节 2026:
//!
//! ```text
//! 2026-10-01
//! ...
//! 2026-10-07
//! 2026-09-27 上班   # Sunday
//! 2026-10-10 上班   # Saturday
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};

/// Working days an issuer has to answer a check request when its licence type says nothing
/// (catalog `check_answer_days`).
pub const DEFAULT_CHECK_ANSWER_DAYS: u32 = 5;

/// Days off besides weekends, and weekend days worked (调休).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays {
    days: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
}

/// A holiday list that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HolidayError {
    #[error("{}: cannot read the holiday list", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {text:?} is not a YYYY-MM-DD date, optionally followed by `workday` or `上班`", path.display())]
    BadDate { path: PathBuf, line: usize, text: String },
    #[error("{}:{line}: {day} is listed both as a holiday and as a working day", path.display())]
    Both { path: PathBuf, line: usize, day: NaiveDate },
}

impl Holidays {
    /// Holidays from a list of dates.
    pub fn new(days: impl IntoIterator<Item = NaiveDate>) -> Holidays {
        Holidays { days: days.into_iter().collect(), workdays: BTreeSet::new() }
    }

    /// The same, with weekend days that are worked (调休).
    pub fn with_workdays(mut self, days: impl IntoIterator<Item = NaiveDate>) -> Holidays {
        self.workdays.extend(days);
        self
    }

    /// Reads a holiday list (see the module docs); every line must be a date, a comment or
    /// blank. Fails naming the file and line.
    pub fn load(path: &Path) -> Result<Holidays, HolidayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| HolidayError::Read { path: path.to_path_buf(), source })?;
        let mut out = Holidays::default();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let t = line.split('#').next().unwrap_or_default();
            let t = t.trim().trim_start_matches('\u{feff}').trim();
            if t.is_empty() {
                continue;
            }
            let bad = || HolidayError::BadDate {
                path: path.to_path_buf(),
                line: line_no,
                text: t.to_owned(),
            };
            let mut words = t.split_whitespace();
            let day = words.next().ok_or_else(bad)?;
            let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
            let worked = match (words.next(), words.next()) {
                (None, _) => false,
                (Some("workday" | "上班" | "班"), None) => true,
                _ => return Err(bad()),
            };
            let (this, other) = if worked {
                (&mut out.workdays, &out.days)
            } else {
                (&mut out.days, &out.workdays)
            };
            if other.contains(&day) {
                return Err(HolidayError::Both { path: path.to_path_buf(), line: line_no, day });
            }
            this.insert(day);
        }
        Ok(out)
    }

    /// Whether `day` is a working day: a listed make-up working day, or else not a Saturday,
    /// Sunday or listed holiday.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        self.workdays.contains(&day)
            || (!matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.days.contains(&day))
    }

    /// The `n`th working day after `start` (`start` itself never counts): the last day on
    /// which something opened on `start` with `n` working days to go is on time.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> NaiveDate {
        let mut day = start;
        let mut left = n;
        while left > 0 {
            match day.succ_opt() {
                Some(next) => day = next,
                None => return day,
            }
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn five_working_days_skip_the_weekend() {
        let none = Holidays::default();
        // Thursday 2026-11-26 → Fri, Mon, Tue, Wed, Thu.
        assert_eq!(none.add_working_days(d(2026, 11, 26), 5), d(2026, 12, 3));
        // Opened on a Saturday: Mon..Fri.
        assert_eq!(none.add_working_days(d(2026, 11, 28), 5), d(2026, 12, 4));
        // Friday → next Friday.
        assert_eq!(none.add_working_days(d(2026, 11, 27), 5), d(2026, 12, 4));
        assert_eq!(none.add_working_days(d(2026, 11, 27), 0), d(2026, 11, 27));
    }

    #[test]
    fn listed_holidays_are_skipped_too() {
        // 国庆节 2026: 1–7 October (Thursday to Wednesday).
        let golden_week = Holidays::new((1..=7).map(|day| d(2026, 10, day)));
        // Opened Tuesday 29 September: Wed 30 Sep, then Thu 8, Fri 9, Mon 12, Tue 13 October.
        assert_eq!(golden_week.add_working_days(d(2026, 9, 29), 5), d(2026, 10, 13));
    }

    #[test]
    fn make_up_working_days_count() {
        // 国庆节 2026 with its 调休: Sunday 27 September and Saturday 10 October are worked.
        let golden_week = Holidays::new((1..=7).map(|day| d(2026, 10, day)))
            .with_workdays([d(2026, 9, 27), d(2026, 10, 10)]);
        assert!(golden_week.is_working_day(d(2026, 10, 10)));
        assert!(!golden_week.is_working_day(d(2026, 10, 11)));
        // Opened Friday 25 September: Sun 27, Mon 28, Tue 29, Wed 30 September, Thu 8 October.
        assert_eq!(golden_week.add_working_days(d(2026, 9, 25), 5), d(2026, 10, 8));
        // Opened Wednesday 30 September: Thu 8, Fri 9, Sat 10, Mon 12, Tue 13 October.
        assert_eq!(golden_week.add_working_days(d(2026, 9, 30), 5), d(2026, 10, 13));
        assert_eq!(golden_week.add_working_days(d(2026, 9, 30), 3), d(2026, 10, 10));
    }

    #[test]
    fn a_holiday_list_reads_make_up_days_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holidays.txt");
        let text = "\u{feff}# 国庆节\n2026-10-01 # 星期四\n2026-09-27 上班\n2026-10-10 workday\n";
        std::fs::write(&path, text).unwrap();
        let h = Holidays::load(&path).unwrap();
        let expected =
            Holidays::new([d(2026, 10, 1)]).with_workdays([d(2026, 9, 27), d(2026, 10, 10)]);
        assert_eq!(h, expected);
        std::fs::write(&path, "2026-10-01\n2026-10-01 上班\n").unwrap();
        match Holidays::load(&path) {
            Err(e @ HolidayError::Both { line: 2, .. }) => {
                assert!(e.to_string().contains("holidays.txt:2: 2026-10-01"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "2026-10-10 休\n").unwrap();
        assert!(matches!(Holidays::load(&path), Err(HolidayError::BadDate { line: 1, .. })));
    }

    #[test]
    fn a_holiday_list_names_its_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("holidays.txt");
        std::fs::write(&path, "# 2026\n2026-10-01\n\n2026-10-02\n10/03/2026\n").unwrap();
        match Holidays::load(&path) {
            Err(HolidayError::BadDate { line, .. }) => assert_eq!(line, 5),
            other => panic!("{other:?}"),
        }
        std::fs::write(&path, "# 2026\n2026-10-01\n\n2026-10-02\n").unwrap();
        let h = Holidays::load(&path).unwrap();
        assert!(!h.is_working_day(d(2026, 10, 2)));
        assert!(h.is_working_day(d(2026, 10, 9)));
    }
}
