//! Oversight figures that do not double (issue 16): `stats` after two runs of the same input
//! (same SHA-256) equals `stats` after one, rejects included; `stats` reports the days from the
//! paper issue date to the e-licence per issuer, and the review backlog.

mod util;

use serde_json::Value;
use util::{elicence, root, run_expect};

fn stats(data: &std::path::Path) -> Value {
    let o = run_expect(elicence().args(["stats", "--json"]).arg("--data").arg(data), 0);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn run(data: &std::path::Path, pipeline: &str, input: &str, review: bool) -> Value {
    let mut c = elicence();
    c.args(["run", pipeline, "--input", input, "--json", "--keys"])
        .arg(root().join("fixtures/keys"))
        .arg("--data")
        .arg(data);
    if review {
        c.arg("--review");
    }
    serde_json::from_slice(&run_expect(&mut c, 0).stdout).unwrap()
}

#[test]
fn stats_after_two_identical_runs_equal_stats_after_one() {
    let data = tempfile::tempdir().unwrap();
    let input = "fixtures/food-business-permit/export-gbk.csv";
    let first = run(data.path(), "pipelines/food-business-permit.toml", input, false);
    let once = stats(data.path());
    let rejected = first["counts"]["rejected"].as_u64().unwrap();
    assert!(rejected > 0, "the fixture has rejects");
    let counted: u64 =
        once["rejects"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, rejected);
    run(data.path(), "pipelines/food-business-permit.toml", input, false);
    assert_eq!(stats(data.path()), once, "the second run of the same input adds nothing");

    // Days from the paper's 发证日期 to the e-licence: the clock is pinned to 2026-11-27 and
    // the fixture's licences were issued on paper from 2017 on.
    let delays = once["issue_delays"].as_array().unwrap();
    assert!(!delays.is_empty());
    for d in delays {
        assert!(d["versions"].as_u64().unwrap() > 0);
        assert!(d["max_days"].as_i64().unwrap() >= d["mean_days"].as_f64().unwrap() as i64);
        assert!(d["mean_days"].as_f64().unwrap() > 365.0, "{d}");
    }
    assert!(once["review_backlog"].as_object().unwrap().is_empty());

    // A review run's items are the backlog, staged today.
    let staged = run(
        data.path(),
        "pipelines/business-licence.toml",
        "fixtures/business-licence/export-utf8.csv",
        true,
    );
    let pending = staged["counts"]["pending"].as_u64().unwrap();
    assert!(pending > 0);
    let after = stats(data.path());
    let backlog: u64 = after["review_backlog"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| {
            assert_eq!(b["oldest_days"], 0);
            b["pending"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(backlog, pending);
}
