//! Working days (工作日) for deadlines: a check request (核查) is due a number of working days
//! after it is opened (Art. 13: the issuer answers promptly). Saturdays and Sundays are not
//! working days, nor are the public holidays of a holiday list; make-up working days on a
//! weekend (调休) are not modelled: list the holidays that matter instead. Pure, except
//! [`Holidays::load`], which reads the list.
//!
//! A holiday list is a text file with one `YYYY-MM-DD` date a line; blank lines and lines
//! starting with `#` are ignored (e.g. copied from the State Council's yearly notice).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};

/// Working days an issuer has to answer a check request when its licence type says nothing
/// (catalog `check_answer_days`).
pub const DEFAULT_CHECK_ANSWER_DAYS: u32 = 5;

/// Days off besides weekends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays {
    days: BTreeSet<NaiveDate>,
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
    #[error("{}:{line}: {text:?} is not a YYYY-MM-DD date", path.display())]
    BadDate { path: PathBuf, line: usize, text: String },
}

impl Holidays {
    /// Holidays from a list of dates.
    pub fn new(days: impl IntoIterator<Item = NaiveDate>) -> Holidays {
        Holidays { days: days.into_iter().collect() }
    }

    /// Reads a holiday list (see the module docs); every line must be a date, a comment or
    /// blank. Fails naming the file and line.
    pub fn load(path: &Path) -> Result<Holidays, HolidayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| HolidayError::Read { path: path.to_path_buf(), source })?;
        let mut days = BTreeSet::new();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim().trim_start_matches('\u{feff}');
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let day = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| {
                HolidayError::BadDate { path: path.to_path_buf(), line: i + 1, text: t.to_owned() }
            })?;
            days.insert(day);
        }
        Ok(Holidays { days })
    }

    /// Whether `day` is a working day: not a Saturday, Sunday or listed holiday.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.days.contains(&day)
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
