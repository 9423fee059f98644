//! Check requests with deadlines (issue 16, Art. 13): each request is due a number of working
//! days after it is opened (the type's `check_answer_days`, default 5), weekends and listed
//! holidays skipped; `check-request --list` shows due and overdue requests; `stats` reports per
//! issuer the requests open, answered on time, answered late, overdue now, the age of the
//! oldest and the inconsistent answers.

mod util;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use util::{elicence, run_expect};

const MED: &str = "11220100MB18300819";
const ISSUER: &str = "11220104MB1875524M";
const CURRENT: &str =
    "1.2.156.3005.2.11100000MB0143028R901.11220104MB1875524M.JY12201040000016.002.8";
/// Thursday.
const THURSDAY: &str = "2026-12-03T10:00:00Z";

struct Desk {
    dir: tempfile::TempDir,
}

impl Desk {
    fn cmd(&self, now: &str) -> Command {
        let mut c = elicence();
        c.env("ELICENCE_DATA", self.dir.path().join("data"))
            .env("ELICENCE_NOW", now)
            .env_remove("ELICENCE_CREDENTIAL")
            .env_remove("ELICENCE_HOLIDAYS");
        c
    }

    fn dept(&self, code: &str) -> PathBuf {
        let o = run_expect(
            self.cmd(THURSDAY).args(["dept", "add", code, "--name", "某局", "--level"]).args([
                "prefectural",
                "--region",
                "220100",
            ]),
            0,
        );
        let path = self.dir.path().join(format!("{code}.cred"));
        std::fs::write(&path, o.stdout).unwrap();
        path
    }

    fn as_dept(&self, now: &str, code: &str, args: &[&str]) -> Command {
        let mut c = self.cmd(now);
        c.args(args)
            .args(["--as", code, "--credential-file"])
            .arg(self.dir.path().join(format!("{code}.cred")));
        c
    }
}

#[test]
fn due_dates_count_working_days_across_weekends_and_holidays_and_stats_report_them() {
    let desk = Desk { dir: tempfile::tempdir().unwrap() };
    run_expect(
        desk.cmd(THURSDAY)
            .args(["run", "pipelines/food-business-permit.toml", "--keys", "fixtures/keys"])
            .args(["--input", "fixtures/food-business-permit/export-utf8.csv"]),
        0,
    );
    desk.dept(MED);
    desk.dept(ISSUER);
    let holidays = desk.dir.path().join("holidays.txt");
    std::fs::write(&holidays, "# 调休示例\n2026-12-07\n").unwrap();
    let ask = |extra: &[&str]| -> Value {
        let mut c = desk.as_dept(
            THURSDAY,
            MED,
            &["check-request", CURRENT, "--reason", "核对经营场所", "--json"],
        );
        let o = run_expect(c.args(extra), 0);
        serde_json::from_slice(&o.stdout).unwrap()
    };
    // Thursday + 5 working days: Fri 4, Mon 7, Tue 8, Wed 9, Thu 10 December.
    assert_eq!(ask(&[])["due_on"], "2026-12-10");
    // With Monday 7 December a holiday: Friday 11 December.
    assert_eq!(ask(&["--holidays", holidays.to_str().unwrap()])["due_on"], "2026-12-11");
    assert_eq!(ask(&[])["due_on"], "2026-12-10");

    // Friday 11 December: requests 1 and 3 are overdue, 2 is due today.
    let friday = "2026-12-11T09:00:00Z";
    let o =
        run_expect(&mut desk.as_dept(friday, ISSUER, &["check-request", "--list", "--json"]), 0);
    let open: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let overdue: Vec<bool> = open.iter().map(|r| r["overdue"].as_bool().unwrap()).collect();
    assert_eq!(overdue, [true, false, true]);
    let o = run_expect(&mut desk.as_dept(friday, ISSUER, &["check-request", "--list"]), 0);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("due 2026-12-10 OVERDUE"), "{text}");
    assert!(text.contains("due 2026-12-11  "), "{text}");

    // Answered on Friday: request 2 on time (inconsistent), request 3 late.
    let answer = |id: &str, result: &str| {
        run_expect(
            &mut desk.as_dept(
                friday,
                ISSUER,
                &["check-answer", id, "--result", result, "--note", "已核对"],
            ),
            0,
        );
    };
    answer("2", "inconsistent");
    answer("3", "consistent");

    let o = run_expect(desk.cmd("2026-12-12T10:00:00Z").args(["stats", "--json"]), 0);
    let stats: Value = serde_json::from_slice(&o.stdout).unwrap();
    let d = &stats["check_requests"]["deadlines"][ISSUER];
    assert_eq!(d["open"], 1, "{d}");
    assert_eq!(d["overdue_now"], 1, "{d}");
    assert_eq!(d["answered_on_time"], 1, "{d}");
    assert_eq!(d["answered_late"], 1, "{d}");
    assert_eq!(d["inconsistent"], 1, "{d}");
    assert_eq!(d["oldest_open_days"], 9, "{d}");
}

#[test]
fn a_holiday_list_with_a_bad_line_is_a_configuration_error() {
    let desk = Desk { dir: tempfile::tempdir().unwrap() };
    run_expect(
        desk.cmd(THURSDAY)
            .args(["run", "pipelines/food-business-permit.toml", "--keys", "fixtures/keys"])
            .args(["--input", "fixtures/food-business-permit/export-utf8.csv"]),
        0,
    );
    desk.dept(MED);
    let holidays = desk.dir.path().join("holidays.txt");
    std::fs::write(&holidays, "2026-12-07\n07/12/2026\n").unwrap();
    let o = run_expect(
        desk.as_dept(THURSDAY, MED, &["check-request", CURRENT, "--reason", "核对"])
            .arg("--holidays")
            .arg(&holidays),
        3,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(":2:"));
}
