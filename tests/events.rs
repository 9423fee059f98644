//! Change events for consumers (issue 16): `elicence events --as DEPT --since CURSOR` lists the
//! changes and revocations of licences that department queried or was handed, after the
//! cursor; other licences' events, and events before the department looked, are not listed.

mod util;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use util::{elicence, root, run_expect};

const MED: &str = "11220100MB18300819";
const HOLDER: &str = "91220104MA00001708";

struct Desk {
    dir: tempfile::TempDir,
    /// A PostgreSQL registry; `None`: SQLite in the data folder.
    registry: Option<String>,
}

impl Desk {
    fn cmd(&self) -> Command {
        let mut c = elicence();
        c.env("ELICENCE_DATA", self.dir.path().join("data")).env_remove("ELICENCE_CREDENTIAL");
        match &self.registry {
            Some(url) => c.env("ELICENCE_REGISTRY", url),
            None => c.env_remove("ELICENCE_REGISTRY"),
        };
        c
    }

    fn cred(&self) -> PathBuf {
        self.dir.path().join("med.cred")
    }

    fn events(&self, since: u64) -> Value {
        let o = run_expect(
            self.cmd()
                .args(["events", "--as", MED, "--json", "--since", &since.to_string()])
                .arg("--credential-file")
                .arg(self.cred()),
            0,
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// The fixture with licence JY12201040000074's 经营场所 changed.
fn changed_export(dir: &std::path::Path) -> PathBuf {
    let text =
        std::fs::read_to_string(root().join("fixtures/food-business-permit/export-utf8.csv"))
            .unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = rows[0].iter().position(|h| h == "经营场所").unwrap();
    let mut row: Vec<String> = rows
        .iter()
        .find(|r| &r[0] == "JY12201040000074")
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    row[column] = "吉林省长春市朝阳区湖西路9号".to_owned();
    let path = dir.join("changed.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(&rows[0]).unwrap();
    w.write_record(&row).unwrap();
    w.flush().unwrap();
    path
}

#[test]
fn a_department_learns_of_changes_and_revocations_of_the_licences_it_relied_on() {
    relied_on_changes_are_events(Desk { dir: tempfile::tempdir().unwrap(), registry: None });
}

#[test]
fn a_department_learns_of_changes_and_revocations_on_postgresql() {
    let Some(db) = util::PgDatabase::create("events_postgres") else { return };
    let desk = Desk { dir: tempfile::tempdir().unwrap(), registry: Some(db.url.clone()) };
    relied_on_changes_are_events(desk);
}

fn relied_on_changes_are_events(desk: Desk) {
    let run = |input: &std::path::Path| {
        run_expect(
            desk.cmd()
                .args([
                    "run",
                    "pipelines/food-business-permit.toml",
                    "--keys",
                    "fixtures/keys",
                    "--input",
                ])
                .arg(input),
            0,
        );
    };
    run(&root().join("fixtures/food-business-permit/export-utf8.csv"));
    let o = run_expect(
        desk.cmd().args([
            "dept",
            "add",
            MED,
            "--name",
            "长春市医疗保障局",
            "--level",
            "prefectural",
            "--region",
            "220100",
        ]),
        0,
    );
    std::fs::write(desk.cred(), o.stdout).unwrap();
    // The fixture's own changes and revocations happened before the department looked.
    let first = desk.events(0);
    assert_eq!(first["events"], Value::Array(vec![]));
    let cursor = first["next_cursor"].as_u64().unwrap();
    assert!(cursor > 0);

    // It queries one holder's licences.
    let o = run_expect(
        desk.cmd()
            .args([
                "query",
                "--as",
                MED,
                "--reason",
                "医保定点资格审核",
                "--holder",
                HOLDER,
                "--json",
            ])
            .arg("--credential-file")
            .arg(desk.cred()),
        0,
    );
    let answer: Value = serde_json::from_slice(&o.stdout).unwrap();
    let live = answer["licences"]
        .as_array()
        .unwrap()
        .iter()
        // The latest version (superseded ones are not revoked; it may have expired).
        .find(|l| l["registry_status"]["status"] != "superseded")
        .unwrap()["identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    // A licence it never looked at changes: no event for it.
    run(&changed_export(desk.dir.path()));
    assert_eq!(desk.events(cursor)["events"], Value::Array(vec![]));
    // The licence it relied on is revoked: one event, with its effective date.
    run_expect(desk.cmd().args(["revoke", &live, "--reason", "吊销：食品安全违法"]), 0);
    let later = desk.events(cursor);
    let events = later["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{later}");
    assert_eq!(events[0]["kind"], "revoked");
    assert_eq!(events[0]["identifier"], live.as_str());
    assert_eq!(events[0]["effective"], "2026-11-27");
    // Past the new cursor: nothing more; from the old one again: the same event (at least once).
    let next = later["next_cursor"].as_u64().unwrap();
    assert_eq!(desk.events(next)["events"], Value::Array(vec![]));
    assert_eq!(desk.events(cursor)["events"].as_array().unwrap().len(), 1);
    // What the department relied on is kept beside the trail (read once, not on every call)
    // and derived from the trail alone: rebuilt from scratch, the answers are the same.
    let mut db = Sql::open(&desk);
    let relied = db.count("SELECT count(*) FROM relied_licences");
    // One row per licence the query returned (a licence's older versions count once).
    assert!(relied > 0 && relied <= answer["licences"].as_array().unwrap().len() as i64);
    assert!(db.count("SELECT audit_seq FROM relied_scanned") > cursor as i64);
    db.batch("DELETE FROM relied_licences; DELETE FROM relied_scanned;");
    assert_eq!(desk.events(cursor)["events"], later["events"]);
    assert_eq!(db.count("SELECT count(*) FROM relied_licences"), relied);
    run_expect(desk.cmd().args(["audit", "verify"]), 0);
}

/// The desk's registry database, whichever backend.
enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Sql {
    fn open(desk: &Desk) -> Sql {
        match &desk.registry {
            None => Sql::Sqlite(
                rusqlite::Connection::open(desk.dir.path().join("data/registry.sqlite")).unwrap(),
            ),
            Some(url) => Sql::Postgres(postgres::Client::connect(url, postgres::NoTls).unwrap()),
        }
    }

    fn count(&mut self, sql: &str) -> i64 {
        match self {
            Sql::Sqlite(c) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Sql::Postgres(c) => c.query_one(sql, &[]).unwrap().get(0),
        }
    }

    fn batch(&mut self, sql: &str) {
        match self {
            Sql::Sqlite(c) => c.execute_batch(sql).unwrap(),
            Sql::Postgres(c) => c.batch_execute(sql).unwrap(),
        }
    }
}
