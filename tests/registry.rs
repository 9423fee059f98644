//! The registry through its library API: every lifecycle case, re-run idempotency, chunk
//! overlay, single-instance types, revocation and status, store check, audit tamper detection,
//! backup while writing and verified restore, and hostile database files. The lifecycle, run,
//! store and reopen tests run on both backends (`NAME::sqlite`, `NAME::postgres`).

use std::fs;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use elicence::identify::{LicenceId, serial_from_printed};
use elicence::licence::LicenceStatus;
use elicence::registry::{
    AuditBreakReason, AuditEntry, AuditQueue, Decision, DecisionInput, FileKind, LoadItem,
    LoadResult, NaturalKey, Refusal, Registry, RegistryError, RegistryStatus, RejectRecord,
    RunCounts, RunId, RunOutcome, RunStart, StoreProblem, canonical_json,
};
use sha2::{Digest, Sha256};

mod util;

const TYPE_CODE: &str = "11100000000013338W001";
const OTHER_TYPE: &str = "11100000000013338W002";
const ISSUER: &str = "11220100013544789Q";
const OP: &str = "tester";

/// The day the registry is asked on: within the test licences' validity (to 2027-02-28).
fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).expect("date")
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).single().expect("valid time")
        + chrono::Duration::seconds(secs)
}

fn key(printed: &str) -> NaturalKey {
    key_of(TYPE_CODE, printed)
}

fn key_of(type_code: &str, printed: &str) -> NaturalKey {
    NaturalKey {
        type_code: type_code.to_owned(),
        issuer_code: ISSUER.to_owned(),
        printed_no: printed.to_owned(),
    }
}

/// A row: natural key, face content (hashed), status, holder, single-instance type.
#[derive(Clone)]
struct Row {
    key: NaturalKey,
    content: String,
    status: LicenceStatus,
    holder: String,
    single: bool,
    line: u64,
}

fn row(printed: &str, content: &str) -> Row {
    Row {
        key: key(printed),
        content: content.to_owned(),
        status: LicenceStatus::Valid,
        holder: "91220101MA0Y3XKB4N".to_owned(),
        single: false,
        line: 2,
    }
}

impl Row {
    fn status(mut self, status: LicenceStatus) -> Row {
        self.status = status;
        self
    }
    fn holder(mut self, holder: &str) -> Row {
        self.holder = holder.to_owned();
        self
    }
    fn single(mut self) -> Row {
        self.single = true;
        self
    }
    fn input(&self) -> DecisionInput {
        let digest = Sha256::digest(self.content.as_bytes());
        let mut content_hash = [0u8; 16];
        content_hash.copy_from_slice(&digest[..16]);
        DecisionInput {
            key: self.key.clone(),
            content_hash,
            status: self.status,
            holder_code: self.holder.clone(),
            single_instance: self.single,
        }
    }
}

/// What the caller does: render and sign (here: fake bytes) the rows whose decision needs it.
fn item(row: &Row, decision: Decision) -> LoadItem {
    let (pdf, xml) = match decision.new_version() {
        Some(identifier) => (
            Some(format!("%PDF-1.7 fake {identifier} {}", row.content).into_bytes()),
            Some(format!("<licence id=\"{identifier}\">{}</licence>", row.content).into_bytes()),
        ),
        None => (None, None),
    };
    LoadItem {
        input: row.input(),
        decision,
        holder_name: "长春市某某食品有限公司".to_owned(),
        issue_date: NaiveDate::from_ymd_opt(2017, 3, 1).expect("date"),
        valid_to: NaiveDate::from_ymd_opt(2027, 2, 28),
        fields_json: format!("{{\"content\":{:?}}}", row.content),
        pdf,
        xml,
        ofd: None,
        archive_image: None,
        source: format!("exports/2017.csv:{}", row.line),
        revocation: None,
    }
}

fn open(dir: &Path) -> Registry {
    Registry::open(dir).expect("registry opens")
}

/// A scratch registry on one backend: a data folder (the store), and for PostgreSQL a fresh
/// database dropped afterwards.
struct Backend {
    dir: tempfile::TempDir,
    pg: Option<util::PgDatabase>,
}

impl Backend {
    fn sqlite() -> Backend {
        Backend { dir: tempfile::tempdir().expect("tempdir"), pg: None }
    }

    /// `None` (skipped, with a message) when no PostgreSQL server is reachable.
    fn postgres(test: &str) -> Option<Backend> {
        let pg = util::PgDatabase::create(test)?;
        Some(Backend { dir: tempfile::tempdir().expect("tempdir"), pg: Some(pg) })
    }

    /// Opens (another connection to) this registry.
    fn open(&self) -> Registry {
        Registry::open_with(self.dir.path(), self.pg.as_ref().map(|p| p.url.as_str()), None)
            .expect("registry opens")
    }
}

/// Runs a test body once per backend: `NAME::sqlite` and `NAME::postgres` (skipped when no
/// PostgreSQL is reachable; see `util::PgDatabase::create`).
macro_rules! both_backends {
    (fn $name:ident($b:ident) $body:block) => {
        mod $name {
            use super::*;

            fn body($b: &Backend) $body

            #[test]
            fn sqlite() {
                body(&Backend::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(b) = Backend::postgres(concat!(stringify!($name), "::postgres")) {
                    body(&b);
                }
            }
        }
    };
}

fn start(reg: &mut Registry, secs: i64) -> RunId {
    reg.start_run(&RunStart {
        pipeline: "food-licences".to_owned(),
        inputs: vec![("exports/2017.csv".to_owned(), "ab".repeat(32))],
        operator: OP.to_owned(),
        at: at(secs),
    })
    .expect("run starts")
}

/// Decide a chunk, "render", commit.
fn load(reg: &mut Registry, run: RunId, rows: &[Row], secs: i64) -> Vec<LoadResult> {
    let inputs: Vec<_> = rows.iter().map(Row::input).collect();
    let decisions = reg.decide_many(&inputs).expect("decide");
    let items = rows.iter().zip(decisions).map(|(r, d)| item(r, d)).collect();
    reg.commit_chunk(run, items, OP, at(secs)).expect("commit")
}

/// A new version's identifier, as the registry decides it.
fn lid(printed: &str, version: u16) -> LicenceId {
    LicenceId::for_printed_number(TYPE_CODE, ISSUER, printed, version).expect("identifier")
}

fn id(printed: &str, version: u16) -> String {
    LicenceId::new(TYPE_CODE, ISSUER, &serial_from_printed(printed), version)
        .expect("identifier")
        .to_string()
}

// ---- lifecycle ----

both_backends!(fn new_licence_is_version_1_with_its_files_and_audit(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    let r = row("JY12201020000012", "a");
    assert_eq!(
        reg.decide(&r.input()).unwrap(),
        Decision::New { identifier: lid("JY12201020000012", 1) }
    );
    let results = load(&mut reg, run, std::slice::from_ref(&r), 1);
    assert_eq!(results, vec![LoadResult::Issued { identifier: id("JY12201020000012", 1) }]);

    let v = reg.licence_by_identifier(&id("JY12201020000012", 1)).unwrap().expect("stored");
    assert_eq!(v.version, 1);
    assert_eq!(v.key, r.key);
    assert_eq!(v.row_status, LicenceStatus::Valid);
    assert_eq!(v.run, Some(run));
    assert_eq!(v.source, "exports/2017.csv:2");
    assert_eq!(v.status(), RegistryStatus::Current);
    let pdf = v.file(FileKind::Pdf).expect("pdf stored");
    let bytes = reg.store().read(&pdf.sha256, FileKind::Pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-1.7 fake"));
    assert!(v.file(FileKind::Xml).is_some());

    let c = reg.counts().unwrap();
    assert_eq!((c.licences, c.versions, c.current, c.revoked, c.files), (1, 1, 1, 0, 2));
    let actions: Vec<_> =
        reg.audit_entries(0, 100).unwrap().into_iter().map(|e| e.entry.action).collect();
    assert_eq!(actions, ["run_started", "issued"]);
    assert!(reg.store_check().unwrap().is_empty());
});

both_backends!(fn identifiers_are_built_not_patched(b) {
    // A printed number that is not a serial is hashed into one (identify::serial_from_printed).
    let printed = "吉食药监械经营许20170001号";
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row(printed, "a")], 1);
    let results = load(&mut reg, run, &[row(printed, "b")], 2);
    let v2 = id(printed, 2);
    assert_eq!(
        results,
        vec![LoadResult::Changed { identifier: v2.clone(), superseded: id(printed, 1) }]
    );
    let parsed = LicenceId::parse(&v2).expect("a valid GB/T 36904 identifier");
    assert_eq!(parsed.version(), 2);
    assert_eq!(parsed.serial(), "HERWE1WYFB1TSMS0Z7BS4");
});

both_backends!(fn rerun_of_the_same_input_changes_nothing(b) {
    let mut reg = b.open();
    let rows = vec![
        row("A1", "a"),
        row("A2", "b"),
        row("A2", "b2"),
        row("A3", "c").status(LicenceStatus::Revoked),
        row("A4", "d"),
        row("A4", "d").status(LicenceStatus::Revoked),
    ];
    let run = start(&mut reg, 0);
    let first = load(&mut reg, run, &rows, 1);
    assert!(matches!(first[0], LoadResult::Issued { .. }));
    assert!(matches!(first[2], LoadResult::Changed { .. }));
    assert!(matches!(first[3], LoadResult::Revoked { .. }));
    assert!(matches!(first[5], LoadResult::Revoked { .. }));
    let counts = reg.counts().unwrap();
    let files_before = reg.store().walk().unwrap();

    let run2 = start(&mut reg, 10);
    let second = load(&mut reg, run2, &rows, 11);
    assert!(second.iter().all(|r| matches!(r, LoadResult::Unchanged { .. })), "{second:?}");
    // Row 2 (an older row of A2) is unchanged against version 1, not a new version.
    assert_eq!(second[1], LoadResult::Unchanged { identifier: id("A2", 1) });
    let after = reg.counts().unwrap();
    assert_eq!(after.licences, counts.licences);
    assert_eq!(after.versions, counts.versions);
    assert_eq!(after.current, counts.current);
    assert_eq!(after.revoked, counts.revoked);
    assert_eq!(after.files, counts.files);
    // Only the second run_started entry was added.
    assert_eq!(after.audit_entries, counts.audit_entries + 1);
    assert_eq!(reg.store().walk().unwrap(), files_before);
    reg.audit_verify().unwrap();
});

both_backends!(fn changed_content_supersedes_and_both_versions_stay_queryable(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("B1", "v1")], 1);
    let d = reg.decide(&row("B1", "v2").status(LicenceStatus::Changed).input()).unwrap();
    assert_eq!(
        d,
        Decision::Change { previous_identifier: id("B1", 1), identifier: lid("B1", 2) }
    );
    load(&mut reg, run, &[row("B1", "v2").status(LicenceStatus::Changed)], 2);
    load(&mut reg, run, &[row("B1", "v3")], 3);

    let versions = reg.versions(&key("B1")).unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(versions[0].superseded_by.as_deref(), Some(id("B1", 2).as_str()));
    assert_eq!(versions[0].superseded_at, Some(at(2)));
    assert_eq!(versions[1].row_status, LicenceStatus::Changed);
    assert_eq!(
        reg.status_of(&id("B1", 1), today()).unwrap(),
        RegistryStatus::Superseded { by: id("B1", 2) }
    );
    assert_eq!(
        reg.status_of(&id("B1", 2), today()).unwrap(),
        RegistryStatus::Superseded { by: id("B1", 3) }
    );
    assert_eq!(reg.status_of(&id("B1", 3), today()).unwrap(), RegistryStatus::Current);
    // Every version keeps its files.
    assert!(versions.iter().all(|v| v.files.len() == 2));
    let c = reg.counts().unwrap();
    assert_eq!((c.licences, c.versions, c.current), (1, 3, 1));

    // The first row read again after the changes: unchanged.
    assert_eq!(
        reg.decide(&row("B1", "v1").input()).unwrap(),
        Decision::Unchanged { identifier: id("B1", 1) }
    );
});

both_backends!(fn revocation_in_the_export_keeps_files_and_counts_once(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("C1", "a")], 1);
    let revoked_row = Row { line: 9, ..row("C1", "a").status(LicenceStatus::Revoked) };
    assert_eq!(
        reg.decide(&revoked_row.input()).unwrap(),
        Decision::Revoke { identifier: id("C1", 1) }
    );
    let results = load(&mut reg, run, std::slice::from_ref(&revoked_row), 5);
    assert_eq!(results, vec![LoadResult::Revoked { identifier: id("C1", 1) }]);
    assert_eq!(
        reg.status_of(&id("C1", 1), today()).unwrap(),
        RegistryStatus::Revoked {
            at: at(5),
            effective: at(5).date_naive(),
            reason: "revoked in export exports/2017.csv:9".to_owned(),
            by_operator: OP.to_owned(),
        }
    );
    // Again: already revoked, counted as unchanged.
    assert_eq!(
        reg.decide(&revoked_row.input()).unwrap(),
        Decision::AlreadyRevoked { identifier: id("C1", 1) }
    );
    assert_eq!(
        load(&mut reg, run, &[revoked_row], 6),
        vec![LoadResult::Unchanged { identifier: id("C1", 1) }]
    );
    // Files kept.
    let v = reg.licence_by_identifier(&id("C1", 1)).unwrap().expect("kept");
    assert_eq!(v.files.len(), 2);
    assert!(reg.store_check().unwrap().is_empty());
    let c = reg.counts().unwrap();
    assert_eq!((c.licences, c.versions, c.current, c.revoked, c.files), (1, 1, 0, 1, 2));
});

both_backends!(fn new_key_that_says_revoked_is_registered_revoked(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    let r = row("D1", "a").status(LicenceStatus::Revoked);
    assert_eq!(reg.decide(&r.input()).unwrap(), Decision::New { identifier: lid("D1", 1) });
    assert_eq!(load(&mut reg, run, &[r], 1), vec![LoadResult::Revoked { identifier: id("D1", 1) }]);
    assert!(matches!(reg.status_of(&id("D1", 1), today()).unwrap(), RegistryStatus::Revoked { .. }));
    let actions: Vec<_> =
        reg.audit_entries(0, 100).unwrap().into_iter().map(|e| e.entry.action).collect();
    assert_eq!(actions, ["run_started", "issued", "revoked"]);
});

both_backends!(fn changed_content_after_revocation_is_refused(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("E1", "a"), row("E1", "a").status(LicenceStatus::Revoked)], 1);
    let refusal = Refusal::ChangeAfterRevoke { revoked_identifier: id("E1", 1) };
    assert_eq!(reg.decide(&row("E1", "b").input()).unwrap(), Decision::Refused(refusal.clone()));
    assert_eq!(load(&mut reg, run, &[row("E1", "b")], 2), vec![LoadResult::Rejected { refusal }]);
    // The old row is still just unchanged.
    assert!(matches!(reg.decide(&row("E1", "a").input()).unwrap(), Decision::Unchanged { .. }));
    assert_eq!(reg.counts().unwrap().versions, 1);
});

both_backends!(fn two_rows_of_one_key_in_one_chunk_see_each_other(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    let rows = [
        row("F1", "a"),
        row("F1", "b").status(LicenceStatus::Changed),
        row("F1", "a"),
        row("F1", "c"),
        row("F1", "c").status(LicenceStatus::Revoked),
        row("F1", "c").status(LicenceStatus::Revoked),
    ];
    let decisions = reg.decide_many(&rows.iter().map(Row::input).collect::<Vec<_>>()).unwrap();
    assert_eq!(
        decisions,
        vec![
            Decision::New { identifier: lid("F1", 1) },
            Decision::Change {
                previous_identifier: id("F1", 1),
                identifier: lid("F1", 2),
            },
            Decision::Unchanged { identifier: id("F1", 1) },
            Decision::Change {
                previous_identifier: id("F1", 2),
                identifier: lid("F1", 3),
            },
            Decision::Revoke { identifier: id("F1", 3) },
            Decision::AlreadyRevoked { identifier: id("F1", 3) },
        ]
    );
    // Nothing written by deciding.
    assert_eq!(reg.counts().unwrap().versions, 0);
    let results = load(&mut reg, run, &rows, 1);
    assert_eq!(
        results,
        vec![
            LoadResult::Issued { identifier: id("F1", 1) },
            LoadResult::Changed { identifier: id("F1", 2), superseded: id("F1", 1) },
            LoadResult::Unchanged { identifier: id("F1", 1) },
            LoadResult::Changed { identifier: id("F1", 3), superseded: id("F1", 2) },
            LoadResult::Revoked { identifier: id("F1", 3) },
            LoadResult::Unchanged { identifier: id("F1", 3) },
        ]
    );
    let c = reg.counts().unwrap();
    assert_eq!((c.licences, c.versions, c.current, c.revoked), (1, 3, 0, 1));
    reg.audit_verify().unwrap();
});

both_backends!(fn single_instance_type_allows_one_live_licence_per_holder(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    let holder = "110101199003074514";
    load(&mut reg, run, &[row("G1", "a").holder(holder).single()], 1);

    // A second licence of the type for the holder: refused.
    let second = row("G2", "b").holder(holder).single();
    let conflict =
        Decision::Refused(Refusal::SingleInstanceConflict { live_identifier: id("G1", 1) });
    assert_eq!(reg.decide(&second.input()).unwrap(), conflict);
    // Another holder, another type, or a type that is not single-instance: fine.
    assert!(matches!(
        reg.decide(&row("G3", "c").holder("11010519491231002X").single().input()).unwrap(),
        Decision::New { .. }
    ));
    let other_type =
        Row { key: key_of(OTHER_TYPE, "G4"), ..row("G4", "d").holder(holder).single() };
    assert!(matches!(reg.decide(&other_type.input()).unwrap(), Decision::New { .. }));
    assert!(matches!(
        reg.decide(&row("G5", "e").holder(holder).input()).unwrap(),
        Decision::New { .. }
    ));
    // The live licence's own change is not a conflict.
    assert!(matches!(
        reg.decide(&row("G1", "a2").holder(holder).single().input()).unwrap(),
        Decision::Change { .. }
    ));

    // Within one chunk: the first new licence blocks the second.
    let h2 = "11010519491231002X";
    let chunk = [row("H1", "a").holder(h2).single(), row("H2", "b").holder(h2).single()];
    let results = load(&mut reg, run, &chunk, 2);
    assert_eq!(results[0], LoadResult::Issued { identifier: id("H1", 1) });
    assert_eq!(
        results[1],
        LoadResult::Rejected {
            refusal: Refusal::SingleInstanceConflict { live_identifier: id("H1", 1) }
        }
    );

    // Once the live licence is revoked, the holder may get a new one.
    reg.revoke(&id("G1", 1), "注销: holder request", OP, at(3)).unwrap();
    assert_eq!(reg.decide(&second.input()).unwrap(), Decision::New { identifier: lid("G2", 1) });
    // A revocation row for a new key never conflicts.
    let revoked_new = row("H3", "z").holder(h2).single().status(LicenceStatus::Revoked);
    assert!(matches!(reg.decide(&revoked_new.input()).unwrap(), Decision::New { .. }));
});

both_backends!(fn explicit_revoke_and_status_of_every_kind(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("K1", "a"), row("K1", "b")], 1);
    assert_eq!(reg.status_of(&id("K1", 2), today()).unwrap(), RegistryStatus::Current);
    assert_eq!(
        reg.status_of(&id("K1", 1), today()).unwrap(),
        RegistryStatus::Superseded { by: id("K1", 2) }
    );
    assert_eq!(reg.status_of("1.2.156.3005.2.nope", today()).unwrap(), RegistryStatus::Unknown);
    // 有效期至 (2027-02-28) is the last valid day; the day after, the current version is expired.
    let day = |m, d| NaiveDate::from_ymd_opt(2027, m, d).expect("date");
    assert_eq!(reg.status_of(&id("K1", 2), day(2, 28)).unwrap(), RegistryStatus::Current);
    assert_eq!(
        reg.status_of(&id("K1", 2), day(3, 1)).unwrap(),
        RegistryStatus::Expired { on: day(2, 28) }
    );
    assert!(matches!(
        reg.status_of(&id("K1", 1), day(3, 1)).unwrap(),
        RegistryStatus::Superseded { .. }
    ));

    assert!(matches!(
        reg.revoke(&id("K1", 1), "吊销", OP, at(2)),
        Err(RegistryError::NotCurrent { superseded_by, .. }) if superseded_by == id("K1", 2)
    ));
    assert!(matches!(
        reg.revoke("1.2.156.3005.2.nope", "x", OP, at(2)),
        Err(RegistryError::UnknownIdentifier { .. })
    ));
    reg.revoke(&id("K1", 2), "吊销: court order 2026-17", "clerk", at(3)).unwrap();
    let status = reg.status_of(&id("K1", 2), today()).unwrap();
    assert_eq!(
        status,
        RegistryStatus::Revoked {
            at: at(3),
            effective: at(3).date_naive(),
            reason: "吊销: court order 2026-17".to_owned(),
            by_operator: "clerk".to_owned()
        }
    );
    assert_eq!(serde_json::to_value(&status).unwrap()["status"], serde_json::json!("revoked"));
    assert_eq!(
        serde_json::to_value(reg.status_of(&id("K1", 1), today()).unwrap()).unwrap(),
        serde_json::json!({"status": "superseded", "by": id("K1", 2)})
    );
    assert!(matches!(
        reg.revoke(&id("K1", 2), "again", OP, at(4)),
        Err(RegistryError::AlreadyRevoked { .. })
    ));
    let last = reg.audit_entries(0, 100).unwrap().pop().expect("entries");
    assert_eq!(last.entry.action, "revoked");
    assert_eq!(last.entry.subject, id("K1", 2));
    assert_eq!(last.entry.operator, "clerk");
    assert_eq!(last.entry.reason.as_deref(), Some("吊销: court order 2026-17"));
    // The files stay.
    assert!(reg.store_check().unwrap().is_empty());
    assert_eq!(reg.counts().unwrap().files, 4);
});

both_backends!(fn a_decision_made_stale_by_another_writer_is_refused_whole(b) {
    let mut a = b.open();
    let mut b = b.open();
    let run_a = start(&mut a, 0);
    let run_b = start(&mut b, 0);
    let rows = [row("S0", "x"), row("S1", "a")];
    let decisions = a.decide_many(&rows.iter().map(Row::input).collect::<Vec<_>>()).unwrap();
    // Meanwhile another process loads S1.
    load(&mut b, run_b, &[row("S1", "a")], 1);
    let items = rows.iter().zip(decisions).map(|(r, d)| item(r, d)).collect();
    match a.commit_chunk(run_a, items, OP, at(2)) {
        Err(RegistryError::StaleDecision(stale)) => {
            assert_eq!(stale.expected, Decision::New { identifier: lid("S1", 1) });
            assert_eq!(stale.found, Decision::Unchanged { identifier: id("S1", 1) });
        }
        other => panic!("expected a stale decision, got {other:?}"),
    }
    // Nothing of the chunk was recorded (S0 neither); its files are orphans, not licences.
    assert_eq!(a.counts().unwrap().licences, 1);
    let problems = a.store_check().unwrap();
    assert!(!problems.is_empty() && problems.iter().all(|p| !p.is_fatal()), "{problems:?}");
    // Deciding again works.
    let results = load(&mut a, run_a, &rows, 3);
    assert!(matches!(results[0], LoadResult::Issued { .. }));
    assert!(matches!(results[1], LoadResult::Unchanged { .. }));
    a.audit_verify().unwrap();
});

// ---- runs ----

both_backends!(fn runs_and_rejects_are_recorded(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    reg.record_rejects(
        run,
        &[RejectRecord {
            file: "exports/2017.xlsx".to_owned(),
            sheet: Some("Sheet1".to_owned()),
            line: 412,
            field: "统一社会信用代码".to_owned(),
            rule: "check_char".to_owned(),
            message: "check character is 3, expected W".to_owned(),
        }],
    )
    .unwrap();
    assert_eq!(reg.unfinished_runs().unwrap(), vec![run]);
    let counts = RunCounts { read: 3, issued: 2, rejected: 1, ..RunCounts::default() };
    reg.finish_run(run, &counts, RunOutcome::Completed, OP, at(9)).unwrap();
    let rec = reg.run(run).unwrap().expect("recorded");
    assert_eq!(rec.outcome, Some(RunOutcome::Completed));
    assert_eq!(rec.counts, Some(counts));
    assert_eq!(rec.rejects, 1);
    assert_eq!(rec.finished_at, Some(at(9)));
    assert_eq!(rec.inputs, vec![("exports/2017.csv".to_owned(), "ab".repeat(32))]);
    assert!(reg.unfinished_runs().unwrap().is_empty());
    assert!(matches!(
        reg.finish_run(run, &counts, RunOutcome::Failed, OP, at(10)),
        Err(RegistryError::RunFinished { .. })
    ));
    assert!(matches!(
        reg.commit_chunk(run, vec![], OP, at(10)),
        Err(RegistryError::RunFinished { .. })
    ));
    assert!(matches!(
        reg.commit_chunk(RunId(99), vec![], OP, at(10)),
        Err(RegistryError::UnknownRun { .. })
    ));
    let actions: Vec<_> =
        reg.audit_entries(0, 100).unwrap().into_iter().map(|e| e.entry.action).collect();
    assert_eq!(actions, ["run_started", "run_finished"]);
});

// ---- store ----

both_backends!(fn store_check_finds_missing_altered_and_orphan_files(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("M1", "a"), row("M2", "b")], 1);
    assert!(reg.store_check().unwrap().is_empty());

    let v1 = reg.licence_by_identifier(&id("M1", 1)).unwrap().unwrap();
    let v2 = reg.licence_by_identifier(&id("M2", 1)).unwrap().unwrap();
    let pdf1 = v1.file(FileKind::Pdf).unwrap();
    let xml2 = v2.file(FileKind::Xml).unwrap();
    fs::remove_file(reg.store().path_of(&pdf1.sha256, FileKind::Pdf).unwrap()).unwrap();
    fs::write(
        reg.store().path_of(&xml2.sha256, FileKind::Xml).unwrap(),
        b"<licence>forged</licence>",
    )
    .unwrap();
    // Left by a run killed before its commit.
    let orphan = reg.store().put(FileKind::Pdf, b"%PDF never committed").unwrap();

    let problems = reg.store_check().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| matches!(p,
        StoreProblem::Missing { sha256, file_kind: FileKind::Pdf, .. } if *sha256 == pdf1.sha256)));
    assert!(problems.iter().any(|p| matches!(p,
        StoreProblem::Altered { sha256, file_kind: FileKind::Xml, .. } if *sha256 == xml2.sha256)));
    assert!(problems.iter().any(|p| matches!(p,
        StoreProblem::Orphan { path } if path.to_string_lossy().contains(&orphan.sha256))));
    assert_eq!(problems.iter().filter(|p| p.is_fatal()).count(), 2);
    // An orphan is not a licence.
    assert_eq!(reg.counts().unwrap().licences, 2);
});

// ---- audit ----

/// A registry with at least six audit entries, and a raw connection to tamper with it.
fn tamper_setup(dir: &Path) -> (Registry, rusqlite::Connection) {
    let mut reg = open(dir);
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("T1", "a"), row("T2", "b"), row("T3", "c")], 1);
    reg.audit_append(&AuditEntry {
        action: "query".to_owned(),
        operator: "dept-42".to_owned(),
        at: at(2),
        subject: id("T1", 1),
        reason: Some("事由: 行政许可审查".to_owned()),
        details: serde_json::json!({"fields": ["holder_name"], "masked": true}),
    })
    .unwrap();
    reg.finish_run(run, &RunCounts::default(), RunOutcome::Completed, OP, at(3)).unwrap();
    assert_eq!(reg.audit_verify().unwrap().entries, 6);
    let raw = rusqlite::Connection::open(reg.db_path()).unwrap();
    // A hand editor has to get past the append-only triggers first.
    assert!(raw.execute("UPDATE audit_log SET operator = 'x' WHERE seq = 3", []).is_err());
    assert!(raw.execute("DELETE FROM audit_log WHERE seq = 3", []).is_err());
    raw.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .unwrap();
    (reg, raw)
}

fn queued_entry(thread: usize, i: usize) -> AuditEntry {
    AuditEntry {
        action: "query".to_owned(),
        operator: format!("dept-{thread}"),
        at: at(i64::try_from(i).unwrap()),
        subject: format!("t{thread}-{i}"),
        reason: Some("事由".to_owned()),
        details: serde_json::json!({"thread": thread, "i": i}),
    }
}

both_backends!(
    fn audit_queue_commits_concurrent_entries_chained_and_in_order(b) {
        // The server's group commit: eight connections hand entries to one writer at once;
        // every entry lands, each connection's in its order, and the chain verifies.
        let queue = std::sync::Arc::new(AuditQueue::start(b.open()).unwrap());
        let per_thread = 60;
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let mut reg = b.open();
                reg.attach_audit_queue(queue.clone());
                std::thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for i in 0..per_thread {
                        reg.audit_append(&queued_entry(t, i)).unwrap();
                        if i % 7 == 6 || i + 1 == per_thread {
                            for receipt in reg.take_audit_receipts() {
                                seqs.push(receipt.wait().unwrap());
                            }
                        }
                    }
                    // A write transaction of this connection waits for its entry in flight.
                    reg.audit_append(&queued_entry(t, per_thread)).unwrap();
                    let run = start(&mut reg, 100);
                    assert!(reg.take_audit_receipts().is_empty(), "settled by the write");
                    (seqs, run)
                })
            })
            .collect();
        let runs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        drop(queue);
        let mut all_seqs: Vec<u64> = runs.iter().flat_map(|(seqs, _)| seqs.clone()).collect();
        all_seqs.sort_unstable();
        all_seqs.dedup();
        assert_eq!(all_seqs.len(), 8 * per_thread, "every receipt names its own entry");
        let reg = b.open();
        let report = reg.audit_verify().unwrap();
        assert_eq!(report.entries, 8 * (per_thread as u64 + 1) + 8, "entries and run starts");
        let entries = reg.audit_entries(0, 10_000).unwrap();
        for (t, (seqs, run)) in runs.iter().enumerate() {
            let operator = format!("dept-{t}");
            let mine: Vec<_> = entries.iter().filter(|e| e.entry.operator == operator).collect();
            let subjects: Vec<_> = mine.iter().map(|e| e.entry.subject.clone()).collect();
            let expected: Vec<_> = (0..=per_thread).map(|i| format!("t{t}-{i}")).collect();
            assert_eq!(subjects, expected, "connection {t}'s entries in the order it made them");
            let stored: Vec<u64> = mine.iter().map(|e| e.seq).collect();
            assert_eq!(stored[..per_thread], seqs[..], "receipts name the stored entries");
            let started = entries
                .iter()
                .find(|e| e.entry.action == "run_started" && e.entry.subject == run.to_string())
                .expect("run started entry");
            assert!(started.seq > stored[per_thread], "the write came after the entry");
        }
    }
);

#[test]
fn audit_queue_reports_a_failed_commit_to_every_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let queue = std::sync::Arc::new(AuditQueue::start(open(dir.path())).unwrap());
    let mut reg = open(dir.path());
    reg.attach_audit_queue(queue.clone());
    reg.audit_append(&queued_entry(0, 0)).unwrap();
    assert_eq!(reg.take_audit_receipts().pop().unwrap().wait().unwrap(), 1);
    let raw = rusqlite::Connection::open(reg.db_path()).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'full'); END;",
    )
    .unwrap();
    reg.audit_append(&queued_entry(0, 1)).unwrap();
    reg.audit_append(&queued_entry(0, 2)).unwrap();
    for receipt in reg.take_audit_receipts() {
        assert!(matches!(receipt.wait(), Err(RegistryError::AuditNotRecorded { .. })));
    }
    drop(reg);
    drop(queue);
    assert_eq!(open(dir.path()).audit_verify().unwrap().entries, 1);
}

fn broken_at(reg: &Registry) -> (u64, AuditBreakReason) {
    match reg.audit_verify() {
        Err(RegistryError::AuditBroken(b)) => (b.seq, b.reason),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn audit_verify_names_an_edited_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, raw) = tamper_setup(dir.path());
    raw.execute("UPDATE audit_log SET operator = 'mallory' WHERE seq = 3", []).unwrap();
    let (seq, reason) = broken_at(&reg);
    assert_eq!(seq, 3);
    assert!(matches!(reason, AuditBreakReason::HashMismatch { .. }));
}

#[test]
fn audit_verify_names_an_edited_details_value() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, raw) = tamper_setup(dir.path());
    raw.execute(
        "UPDATE audit_log SET details = replace(details, 'true', 'false') WHERE seq = 5",
        [],
    )
    .unwrap();
    assert_eq!(broken_at(&reg).0, 5);
}

#[test]
fn audit_verify_names_a_deleted_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, raw) = tamper_setup(dir.path());
    raw.execute("DELETE FROM audit_log WHERE seq = 3", []).unwrap();
    assert_eq!(broken_at(&reg), (3, AuditBreakReason::Missing { found: 4 }));
    // Deleted and the rest renumbered to hide the gap: still caught at 3.
    raw.execute_batch(
        "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 3;
         UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000;",
    )
    .unwrap();
    let (seq, reason) = broken_at(&reg);
    assert_eq!(seq, 3);
    assert!(matches!(reason, AuditBreakReason::PrevHashMismatch { .. }));
}

#[test]
fn audit_verify_names_an_inserted_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, raw) = tamper_setup(dir.path());
    let prev: String =
        raw.query_row("SELECT hash FROM audit_log WHERE seq = 2", [], |r| r.get(0)).unwrap();
    raw.execute_batch(
        "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 3;
         UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000;",
    )
    .unwrap();
    raw.execute(
        "INSERT INTO audit_log (seq, at, action, operator, subject, reason, details, prev_hash, hash)
         VALUES (3, '2026-11-27T10:00:01.000000Z', 'revoked', 'mallory', 'x', NULL, '{}', ?1, ?2)",
        rusqlite::params![prev, "f".repeat(64)],
    )
    .unwrap();
    let (seq, reason) = broken_at(&reg);
    assert_eq!(seq, 3);
    assert!(matches!(reason, AuditBreakReason::HashMismatch { .. }));

    // Even with a correctly computed hash for the forged entry, the next one breaks.
    let object = serde_json::json!({
        "action": "revoked", "at": "2026-11-27T10:00:01.000000Z", "details": {},
        "operator": "mallory", "reason": null, "seq": 3, "subject": "x",
    });
    let mut canonical = String::new();
    canonical_json(&object, &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(hex::decode(&prev).unwrap());
    hasher.update(canonical.as_bytes());
    let forged = hex::encode(hasher.finalize());
    raw.execute("UPDATE audit_log SET hash = ?1 WHERE seq = 3", [&forged]).unwrap();
    let (seq, reason) = broken_at(&reg);
    assert_eq!(seq, 4);
    assert!(matches!(reason, AuditBreakReason::PrevHashMismatch { .. }));
}

#[test]
fn audit_verify_names_a_reordered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, raw) = tamper_setup(dir.path());
    raw.execute_batch(
        "UPDATE audit_log SET seq = -1 WHERE seq = 4;
         UPDATE audit_log SET seq = 4 WHERE seq = 3;
         UPDATE audit_log SET seq = 3 WHERE seq = -1;",
    )
    .unwrap();
    let (seq, reason) = broken_at(&reg);
    assert_eq!(seq, 3);
    assert!(matches!(reason, AuditBreakReason::PrevHashMismatch { .. }));
}

#[test]
fn versions_cannot_be_deleted_or_rewritten_through_sql() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(dir.path());
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("U1", "a")], 1);
    let raw = rusqlite::Connection::open(reg.db_path()).unwrap();
    assert!(raw.execute("DELETE FROM versions", []).is_err());
    assert!(raw.execute("UPDATE versions SET content_hash = ?1", [&"0".repeat(32)]).is_err());
    assert!(raw.execute("DELETE FROM licences", []).is_err());
    assert_eq!(reg.counts().unwrap().versions, 1);
}

// ---- backup and restore ----

fn assert_restored_healthy(reg: &Registry) {
    reg.audit_verify().expect("audit chain verifies");
    let problems = reg.store_check().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    // Every licence's files are there and hash right.
    for n in 0..1000 {
        let Some(v) = reg.licence_by_identifier(&id(&format!("P{n}"), 1)).unwrap() else {
            continue;
        };
        for f in &v.files {
            reg.store().read(&f.sha256, f.kind).expect("file verifies");
        }
    }
}

#[test]
fn backup_while_another_process_writes_then_restore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut reg = open(&data);
    let run = start(&mut reg, 0);
    load(&mut reg, run, &(0..20).map(|n| row(&format!("P{n}"), "a")).collect::<Vec<_>>(), 1);

    let writer_data = data.clone();
    let writer = std::thread::spawn(move || {
        let mut w = Registry::open(&writer_data).expect("second connection opens");
        let run = start(&mut w, 100);
        for chunk in 0..40 {
            let rows: Vec<_> =
                (0..5).map(|i| row(&format!("P{}", 100 + chunk * 5 + i), "w")).collect();
            load(&mut w, run, &rows, 100 + chunk);
        }
    });
    let mut backups = Vec::new();
    while !writer.is_finished() || backups.is_empty() {
        let target = dir.path().join(format!("backup{}", backups.len()));
        let manifest = reg.backup(&target, OP, at(200)).expect("backup while writing");
        backups.push((target, manifest));
    }
    writer.join().expect("writer finished");

    for (i, (target, manifest)) in backups.iter().enumerate() {
        let restored_dir = dir.path().join(format!("restored{i}"));
        let restored =
            Registry::restore(target, &restored_dir, "restorer", at(300)).expect("restores");
        assert_restored_healthy(&restored);
        let counts = restored.counts().unwrap();
        assert_eq!(counts.licences, manifest.counts.licences);
        assert_eq!(counts.versions, manifest.counts.versions);
        assert_eq!(counts.files, manifest.counts.files);
        // The snapshot's entries, plus the restore.
        assert_eq!(counts.audit_entries, manifest.audit_entries + 1);
        let last = restored.audit_entries(manifest.audit_entries, 10).unwrap();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].entry.action, "restore");
        assert_eq!(last[0].entry.operator, "restorer");
        assert!(counts.licences >= 20 && counts.licences <= 220);
    }

    // A quiet backup restores to exactly the same registry.
    let quiet = dir.path().join("quiet");
    reg.backup(&quiet, OP, at(400)).unwrap();
    let live = reg.counts().unwrap();
    assert_eq!(live.licences, 220);
    let restored =
        Registry::restore(&quiet, &dir.path().join("quiet-restored"), OP, at(401)).unwrap();
    assert_restored_healthy(&restored);
    let back = restored.counts().unwrap();
    assert_eq!(
        (back.licences, back.versions, back.current, back.revoked, back.files, back.runs),
        (live.licences, live.versions, live.current, live.revoked, live.files, live.runs)
    );
    // The live registry recorded its backups.
    assert!(reg.audit_entries(0, 10_000).unwrap().iter().any(|e| e.entry.action == "backup"));
    reg.audit_verify().unwrap();
}

#[test]
fn restore_refuses_an_altered_backup_and_makes_nothing_live() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(&dir.path().join("data"));
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("Q1", "a"), row("Q2", "b")], 1);
    let backup = dir.path().join("backup");
    let manifest = reg.backup(&backup, OP, at(2)).unwrap();
    let store_file = manifest.files.iter().find(|f| f.path.ends_with(".pdf")).unwrap();
    fs::write(backup.join(&store_file.path), b"%PDF tampered").unwrap();

    let target = dir.path().join("restored");
    assert!(matches!(
        Registry::restore(&backup, &target, OP, at(3)),
        Err(RegistryError::BackupFileAltered { .. })
    ));
    assert!(!target.exists());
    // No temporary folder left behind either.
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("restore"))
        .collect();
    assert!(leftovers.is_empty());

    // An altered database file is refused the same way.
    let backup2 = dir.path().join("backup2");
    let manifest = reg.backup(&backup2, OP, at(4)).unwrap();
    let snapshot = backup2.join(&manifest.files[0].path);
    let mut db = fs::read(&snapshot).unwrap();
    let last = db.len() - 1;
    db[last] ^= 0xff;
    fs::write(&snapshot, db).unwrap();
    assert!(matches!(
        Registry::restore(&backup2, &target, OP, at(5)),
        Err(RegistryError::BackupFileAltered { .. })
    ));
    assert!(!target.exists());
}

#[test]
fn backup_and_restore_refuse_non_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(&dir.path().join("data"));
    let busy = dir.path().join("busy");
    fs::create_dir_all(&busy).unwrap();
    fs::write(busy.join("something"), b"x").unwrap();
    assert!(matches!(reg.backup(&busy, OP, at(0)), Err(RegistryError::NotEmpty { .. })));
    let backup = dir.path().join("backup");
    reg.backup(&backup, OP, at(0)).unwrap();
    assert!(matches!(
        Registry::restore(&backup, &busy, OP, at(1)),
        Err(RegistryError::NotEmpty { .. })
    ));
    // The live registry's folder is never a restore target.
    assert!(matches!(
        Registry::restore(&backup, reg.data_dir(), OP, at(1)),
        Err(RegistryError::NotEmpty { .. })
    ));
    // An empty existing folder is fine.
    let empty = dir.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    Registry::restore(&backup, &empty, OP, at(1)).unwrap().audit_verify().unwrap();
}

// ---- hostile files ----

#[test]
fn garbage_database_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("registry.sqlite"),
        b"this is not a database, just some bytes....".repeat(100),
    )
    .unwrap();
    match Registry::open(dir.path()) {
        Err(e @ RegistryError::Corrupt { .. }) => {
            assert!(e.to_string().contains("registry.sqlite"), "{e}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn someone_elses_database_is_not_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("registry.sqlite")).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)").unwrap();
    drop(conn);
    assert!(matches!(Registry::open(dir.path()), Err(RegistryError::NotARegistry { .. })));
}

#[test]
fn damaged_pages_give_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut reg = open(dir.path());
        let run = start(&mut reg, 0);
        load(&mut reg, run, &(0..50).map(|n| row(&format!("Z{n}"), "a")).collect::<Vec<_>>(), 1);
    }
    let path = dir.path().join("registry.sqlite");
    let mut bytes = fs::read(&path).unwrap();
    // Keep the header page, scribble over the rest.
    for b in bytes.iter_mut().skip(4096) {
        *b = 0x5a;
    }
    fs::write(&path, bytes).unwrap();
    if let Ok(reg) = Registry::open(dir.path()) {
        assert!(
            reg.counts().is_err()
                || reg.audit_verify().is_err()
                || reg.versions(&key("Z1")).is_err()
        );
    }
}

#[test]
fn locked_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(dir.path());
    reg.set_busy_timeout(Duration::from_millis(100)).unwrap();
    let other = rusqlite::Connection::open(reg.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = reg
        .start_run(&RunStart {
            pipeline: "p".to_owned(),
            inputs: vec![],
            operator: OP.to_owned(),
            at: at(0),
        })
        .unwrap_err();
    assert!(matches!(err, RegistryError::Locked { .. }), "{err:?}");
    other.execute_batch("ROLLBACK").unwrap();
    start(&mut reg, 1);
}

both_backends!(fn reopening_keeps_everything(b) {
    {
        let mut reg = b.open();
        let run = start(&mut reg, 0);
        load(&mut reg, run, &[row("R1", "a")], 1);
    }
    let reg = b.open();
    assert_eq!(reg.schema_version().unwrap(), elicence::registry::SCHEMA_VERSION);
    assert_eq!(reg.status_of(&id("R1", 1), today()).unwrap(), RegistryStatus::Current);
    reg.audit_verify().unwrap();
});

#[test]
fn backup_snapshot_excludes_a_write_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut reg = open(&data);
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("W1", "a")], 1);
    let db_path = reg.db_path().to_path_buf();
    let (tx_open, rx_open) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             INSERT INTO licences (type_code, issuer_code, printed_no, created_at)
             VALUES ('T', 'I', 'IN-FLIGHT', '2026-11-27T10:00:00Z');",
        )
        .unwrap();
        tx_open.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        conn.execute_batch("COMMIT").unwrap();
    });
    rx_open.recv().unwrap();
    // The snapshot is taken while the write is open; the backup's own audit entry waits for it.
    let manifest = reg.backup(&dir.path().join("backup"), OP, at(2)).unwrap();
    writer.join().unwrap();
    assert_eq!(manifest.counts.licences, 1);
    assert_eq!(reg.counts().unwrap().licences, 2);
    let restored =
        Registry::restore(&dir.path().join("backup"), &dir.path().join("restored"), OP, at(3))
            .unwrap();
    assert_eq!(restored.counts().unwrap().licences, 1);
    assert_restored_healthy(&restored);
}

both_backends!(fn a_new_version_without_its_signed_files_is_refused_before_anything_is_written(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    let r = row("V1", "a");
    let decision = reg.decide(&r.input()).unwrap();
    let mut it = item(&r, decision);
    it.xml = None;
    assert!(matches!(
        reg.commit_chunk(run, vec![it], OP, at(1)),
        Err(RegistryError::MissingArtefact { kind: FileKind::Xml, .. })
    ));
    assert_eq!(reg.counts().unwrap().licences, 0);
    assert!(reg.store().walk().unwrap().is_empty());
});

both_backends!(fn archive_copy_is_stored_and_linked(b) {
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    let r = row("X1", "a");
    let decision = reg.decide(&r.input()).unwrap();
    let mut it = item(&r, decision);
    it.archive_image = Some(b"\x89PNG\r\n\x1a\n fake scan".to_vec());
    let results = reg.commit_chunk(run, vec![it], OP, at(1)).unwrap();
    let mut counts = RunCounts::default();
    results.iter().for_each(|r| counts.tally(r));
    assert_eq!(counts.issued, 1);
    let v = reg.licence_by_identifier(&id("X1", 1)).unwrap().unwrap();
    let scan = v.file(FileKind::Archive).expect("archive copy linked");
    let path = reg.store().path_of(&scan.sha256, FileKind::Archive).unwrap();
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("png"));
    assert!(reg.store_check().unwrap().is_empty());
});

#[test]
fn restore_refuses_a_manifest_that_leaves_out_a_file_or_misstates_the_audit_head() {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = open(&dir.path().join("data"));
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("N1", "a")], 1);
    let target = dir.path().join("restored");

    let backup = dir.path().join("backup");
    let mut manifest = reg.backup(&backup, OP, at(2)).unwrap();
    manifest.files.retain(|f| !f.path.ends_with(".xml"));
    fs::write(backup.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert!(matches!(
        Registry::restore(&backup, &target, OP, at(3)),
        Err(RegistryError::StoreNotClean { .. })
    ));
    assert!(!target.exists());

    let backup2 = dir.path().join("backup2");
    let mut manifest = reg.backup(&backup2, OP, at(4)).unwrap();
    manifest.audit_head = Some("0".repeat(64));
    fs::write(backup2.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert!(matches!(
        Registry::restore(&backup2, &target, OP, at(5)),
        Err(RegistryError::BadManifest { .. })
    ));
    assert!(!target.exists());

    // A path outside the layout is refused before anything is read.
    let backup3 = dir.path().join("backup3");
    let mut manifest = reg.backup(&backup3, OP, at(6)).unwrap();
    manifest.files[1].path = "../../etc/passwd".to_owned();
    fs::write(backup3.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
    assert!(matches!(
        Registry::restore(&backup3, &target, OP, at(7)),
        Err(RegistryError::BadManifest { .. })
    ));
    fs::write(backup3.join("manifest.json"), b"{not json").unwrap();
    assert!(matches!(
        Registry::restore(&backup3, &target, OP, at(7)),
        Err(RegistryError::BadManifest { .. })
    ));
    assert!(!target.exists());
}

#[test]
fn postgres_refuses_deleting_or_rewriting_history_through_sql() {
    let Some(b) = Backend::postgres("postgres_refuses_deleting_or_rewriting_history_through_sql")
    else {
        return;
    };
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("T1", "a")], 1);
    let url = &b.pg.as_ref().expect("postgres").url;
    let mut raw = postgres::Client::connect(url, postgres::NoTls).expect("connects");
    for sql in [
        "DELETE FROM versions",
        "UPDATE versions SET holder_name = 'x'",
        "DELETE FROM licences",
        "UPDATE audit_log SET operator = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log CASCADE",
        "DELETE FROM files",
    ] {
        let err = raw.batch_execute(sql).expect_err(sql);
        let db = err.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
        assert!(
            ["immutable", "never", "append-only"].iter().any(|w| db.contains(w)),
            "{sql}: {db}"
        );
    }
    reg.audit_verify().unwrap();
    assert_eq!(reg.counts().unwrap().versions, 1);
}

#[test]
fn a_postgres_registry_backs_up_into_the_usual_folder_and_restores_into_sqlite() {
    let Some(b) = Backend::postgres(
        "a_postgres_registry_backs_up_into_the_usual_folder_and_restores_into_sqlite",
    ) else {
        return;
    };
    let mut reg = b.open();
    let run = start(&mut reg, 0);
    load(&mut reg, run, &[row("P1", "a"), row("P2", "b"), row("P1", "a2")], 1);
    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("backup");
    let manifest = reg.backup(&backup, OP, at(5)).unwrap();
    assert_eq!(manifest.counts.versions, 3);
    assert!(backup.join(&manifest.files[0].path).exists());
    assert!(manifest.files[0].path.starts_with("registry-"), "{:?}", manifest.files[0]);
    let restored = Registry::restore(&backup, &scratch.path().join("restored"), OP, at(6)).unwrap();
    assert_eq!(restored.counts().unwrap().versions, 3);
    assert_eq!(
        restored.status_of(&id("P1", 1), today()).unwrap(),
        RegistryStatus::Superseded { by: id("P1", 2) }
    );
    restored.audit_verify().unwrap();
    assert!(restored.store_check().unwrap().is_empty());
    // The backup itself is audited in the PostgreSQL registry.
    let last = reg.audit_entries(0, 100).unwrap().pop().expect("entries");
    assert_eq!(last.entry.action, "backup");
    reg.audit_verify().unwrap();
}
