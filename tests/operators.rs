//! Operators with roles (issue 16): a registry without an admin works as before and says so;
//! once an admin exists, every effectful command needs an authenticated operator with the right
//! role. Every role × command combination is tried with the real binary: allowed ones succeed,
//! refused ones exit 6 and leave an `operator_denied` entry naming the operator and the command.

mod util;

use std::path::PathBuf;
use std::process::Command;

use util::{elicence, root, run_expect};

const FOOD: &str = "pipelines/food-business-permit.toml";
const INPUT: &str = "fixtures/food-business-permit/export-utf8.csv";
const DEPT: &str = "11220100MB18300819";
const ROLES: [&str; 4] = ["collector", "reviewer", "issuer", "admin"];

/// A registry with one operator per role, each with its credential file.
struct Staff {
    dir: tempfile::TempDir,
}

impl Staff {
    fn new() -> Staff {
        let dir = tempfile::tempdir().unwrap();
        let staff = Staff { dir };
        // The first admin is added without authentication (no admin yet).
        let o = run_expect(
            elicence()
                .args(["operator", "add", "admin", "--role", "admin"])
                .arg("--data")
                .arg(staff.data()),
            0,
        );
        std::fs::write(staff.cred("admin"), &o.stdout).unwrap();
        for role in ["collector", "reviewer", "issuer"] {
            let o =
                run_expect(&mut op(&staff, "admin", &["operator", "add", role, "--role", role]), 0);
            std::fs::write(staff.cred(role), &o.stdout).unwrap();
        }
        staff
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cred(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.cred"))
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data().join("registry.sqlite")).unwrap()
    }

    /// `operator_denied` entries as (operator, command, refusal).
    fn denials(&self) -> Vec<(String, String, String)> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT operator, details FROM audit_log WHERE action = 'operator_denied' ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .map(|(op, details)| {
                let d: serde_json::Value = serde_json::from_str(&details).unwrap();
                (
                    op,
                    d["command"].as_str().unwrap().to_owned(),
                    d["refusal"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn one(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

/// `words` (a subcommand and its arguments) run as operator `name` with its credential (in
/// `ELICENCE_OPERATOR_CREDENTIAL`) on the staff's registry.
fn op(staff: &Staff, name: &str, words: &[&str]) -> Command {
    let mut c = elicence();
    c.env("ELICENCE_DATA", staff.data())
        .env("ELICENCE_OPERATOR_CREDENTIAL", std::fs::read_to_string(staff.cred(name)).unwrap());
    c.args(words).args(["--operator", name]);
    c
}

#[test]
fn a_registry_without_an_admin_works_as_before_and_every_run_says_so() {
    let data = tempfile::tempdir().unwrap();
    let o = run_expect(
        elicence()
            .args(["run", FOOD, "--input", INPUT, "--keys"])
            .arg(root().join("fixtures/keys"))
            .arg("--data")
            .arg(data.path()),
        0,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("no admin operator"), "{stderr}");
    // A collector alone does not switch authentication on: any name is recorded.
    run_expect(
        elicence()
            .args(["operator", "add", "li", "--role", "collector"])
            .arg("--data")
            .arg(data.path()),
        0,
    );
    let conn = rusqlite::Connection::open(data.path().join("registry.sqlite")).unwrap();
    let live: String = conn
        .query_row(
            "SELECT identifier FROM versions WHERE superseded_by IS NULL AND revoked_at IS NULL
             ORDER BY identifier LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    run_expect(
        elicence()
            .args(["revoke", &live, "--reason", "test", "--operator", "anyone"])
            .arg("--data")
            .arg(data.path()),
        0,
    );
    let by: String = conn
        .query_row(
            "SELECT operator FROM audit_log WHERE action = 'revoked' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by, "anyone");
}

#[test]
fn missing_wrong_and_disabled_credentials_are_refused_with_exit_6_and_audited() {
    let staff = Staff::new();
    // No --operator at all.
    let mut c = elicence();
    c.env("ELICENCE_DATA", staff.data()).args(["dept", "list"]);
    run_expect(&mut c, 6);
    // No credential.
    let mut c = elicence();
    c.env("ELICENCE_DATA", staff.data()).env_remove("ELICENCE_OPERATOR_CREDENTIAL");
    c.args(["dept", "list", "--operator", "admin"]);
    run_expect(&mut c, 6);
    // A wrong credential, and an unknown name.
    let wrong = staff.dir.path().join("wrong.cred");
    std::fs::write(&wrong, "0123456789abcdef0123456789abcdef").unwrap();
    for name in ["admin", "nobody"] {
        let mut c = elicence();
        c.env("ELICENCE_DATA", staff.data())
            .args(["dept", "list", "--operator", name, "--operator-credential-file"])
            .arg(&wrong);
        run_expect(&mut c, 6);
    }
    // Disabled.
    run_expect(&mut op(&staff, "admin", &["operator", "disable", "issuer"]), 0);
    run_expect(&mut op(&staff, "issuer", &["review", "list"]), 6);
    let refusals: Vec<String> = staff.denials().into_iter().map(|(_, _, r)| r).collect();
    assert_eq!(
        refusals,
        ["no_operator", "no_credential", "wrong_credential", "unknown_operator", "disabled"]
    );
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(staff.data()), 0);
}

/// Owned command words.
fn w(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn every_role_times_every_command_is_allowed_or_refused_with_exit_6_and_audited() {
    let staff = Staff::new();
    let keys = root().join("fixtures/keys");
    let keys = keys.to_str().unwrap().to_owned();
    let scratch = staff.dir.path().to_path_buf();
    let s = |p: PathBuf| p.to_str().unwrap().to_owned();

    // Each case: the command words for a role, and the roles allowed to run it. Allowed runs
    // must succeed (exit 0); refused ones exit 6. Order matters where a case needs an earlier
    // one's effect (licences to revoke, items to review, a backup to restore).
    type Words = Box<dyn Fn(&str) -> Vec<String>>;
    let cases: Vec<(&str, Words, &[&str])> = vec![
        (
            "run",
            Box::new({
                let keys = keys.clone();
                move |_| w(&["run", FOOD, "--input", INPUT, "--keys", &keys])
            }),
            &["issuer"],
        ),
        (
            "run --review",
            Box::new({
                let keys = keys.clone();
                move |_| {
                    w(&[
                        "run",
                        "pipelines/business-licence.toml",
                        "--input",
                        "fixtures/business-licence/export-utf8.csv",
                        "--review",
                        "--keys",
                        &keys,
                    ])
                }
            }),
            &["collector", "issuer"],
        ),
        (
            "review list",
            Box::new(|_| w(&["review", "list"])),
            &["collector", "reviewer", "issuer", "admin"],
        ),
        (
            "review reject",
            Box::new(|_| w(&["review", "reject", "1", "--reason", "档案不符"])),
            &["reviewer"],
        ),
        (
            "review approve",
            Box::new({
                let keys = keys.clone();
                move |_| w(&["review", "approve", "2", "--keys", &keys])
            }),
            &["reviewer"],
        ),
        (
            "revoke",
            Box::new(|_| {
                // The identifier is replaced by the current version of the fixture's first licence
                // (issued by the run case).
                w(&["revoke", "IDENTIFIER", "--reason", "吊销"])
            }),
            &["issuer"],
        ),
        (
            "dept add",
            Box::new(|_| {
                w(&[
                    "dept",
                    "add",
                    DEPT,
                    "--name",
                    "长春市医疗保障局",
                    "--level",
                    "prefectural",
                    "--region",
                    "220100",
                ])
            }),
            &["admin"],
        ),
        ("dept list", Box::new(|_| w(&["dept", "list"])), &["admin"]),
        (
            "dept grant",
            Box::new(|_| w(&["dept", "grant", DEPT, "--type", "food-business-permit"])),
            &["admin"],
        ),
        ("dept disable", Box::new(|_| w(&["dept", "disable", DEPT])), &["admin"]),
        (
            "operator add",
            Box::new(|role| w(&["operator", "add", &format!("new-{role}"), "--role", "collector"])),
            &["admin"],
        ),
        ("operator list", Box::new(|_| w(&["operator", "list"])), &["admin"]),
        (
            "operator grant",
            Box::new(|_| w(&["operator", "grant", "collector", "--role", "collector"])),
            &["admin"],
        ),
        (
            "operator disable",
            Box::new(|role| w(&["operator", "disable", &format!("new-{role}")])),
            &["admin"],
        ),
        (
            "backup",
            Box::new({
                let scratch = scratch.clone();
                move |role| {
                    vec![
                        "backup".into(),
                        s(scratch.join(format!("backup-{role}"))),
                        "--include-secrets".into(),
                    ]
                }
            }),
            &["admin"],
        ),
        (
            "restore",
            Box::new({
                let scratch = scratch.clone();
                move |role| {
                    vec![
                        "restore".into(),
                        s(scratch.join("backup-admin")),
                        "--data".into(),
                        s(scratch.join(format!("restored-{role}"))),
                    ]
                }
            }),
            &["admin"],
        ),
        (
            "migrate",
            Box::new({
                let scratch = scratch.clone();
                move |role| {
                    vec![
                        "migrate".into(),
                        "--to".into(),
                        format!("sqlite:{}", s(scratch.join(format!("migrated-{role}.sqlite")))),
                    ]
                }
            }),
            &["admin"],
        ),
    ];
    let mut expected_denials = Vec::new();
    for (name, words, allowed) in &cases {
        // Refused roles first (nothing happens), then the allowed ones.
        let mut order: Vec<&str> = ROLES.iter().copied().filter(|r| !allowed.contains(r)).collect();
        order.extend(ROLES.iter().copied().filter(|r| allowed.contains(r)));
        for role in order {
            let mut args = words(role);
            if *name == "revoke" {
                args[1] = staff
                    .db()
                    .query_row(
                        "SELECT identifier FROM versions WHERE identifier LIKE '%.JY12201040000016.%'
                         AND superseded_by IS NULL AND revoked_at IS NULL",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
            }
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut c = op(&staff, role, &words);
            if allowed.contains(&role) {
                let o = c.output().unwrap();
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{name} as {role} is allowed; stderr: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            } else {
                let o = c.output().unwrap();
                assert_eq!(
                    o.status.code(),
                    Some(6),
                    "{name} as {role} is refused; stderr: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                // restore is decided by the restored registry, which is never made live: its
                // refusal has no audit trail to go to.
                if *name != "restore" {
                    expected_denials.push((
                        role.to_owned(),
                        name.split(' ').take(2).collect::<Vec<_>>().join(" "),
                    ));
                }
                assert!(
                    !scratch.join(format!("restored-{role}")).exists(),
                    "a refused restore makes nothing live"
                );
            }
        }
    }
    let found: Vec<(String, String)> = staff
        .denials()
        .into_iter()
        .map(|(op, command, refusal)| {
            assert_eq!(refusal, "missing_role");
            (op, command)
        })
        .collect();
    let expected: Vec<(String, String)> = expected_denials
        .into_iter()
        .map(|(op, c)| (op, if c == "run --review" { "run".to_owned() } else { c }))
        .collect();
    assert_eq!(found, expected);

    // The audit trail names the authenticated operators.
    let by = |action: &str| -> String {
        staff
            .db()
            .query_row(
                "SELECT operator FROM audit_log WHERE action = ?1 ORDER BY seq LIMIT 1",
                [action],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(by("issued"), "issuer");
    assert_eq!(by("review_staged"), "collector");
    assert_eq!(by("review_approved"), "reviewer");
    assert_eq!(by("review_rejected"), "reviewer");
    assert_eq!(by("revoked"), "issuer");
    assert_eq!(by("department_added"), "admin");
    // (The first admin was added before anyone was authenticated: the OS user.)
    let last_added: String = staff
        .db()
        .query_row(
            "SELECT operator FROM audit_log WHERE action = 'operator_added' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last_added, "admin");
    assert_eq!(by("backup"), "admin");
    assert_eq!(
        staff.one("SELECT count(*) FROM audit_log WHERE action = 'restore'"),
        0,
        "restores audit in their own registry"
    );
    let restored =
        rusqlite::Connection::open(scratch.join("restored-admin/registry.sqlite")).unwrap();
    let restorer: String = restored
        .query_row("SELECT operator FROM audit_log WHERE action = 'restore'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(restorer, "admin");
    run_expect(elicence().args(["audit", "verify"]).arg("--data").arg(staff.data()), 0);
}
