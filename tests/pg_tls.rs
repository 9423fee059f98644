//! PostgreSQL over TLS (issue 18) against a real server this test starts itself: `initdb` and
//! `pg_ctl` on a free port, `ssl = on` with a certificate for `localhost` issued by a test CA
//! (made with the `openssl` command line). `verify-full` with the right CA connects; with
//! another CA, or with a host name the certificate does not name, it fails and says why;
//! `verify-ca` checks the chain only; the libpq environment and a password file work; and
//! `require` against the same server without TLS fails.
//!
//! As root (CI), the server runs as the `postgres` user (`initdb` refuses root) through
//! `runuser`. Without PostgreSQL's server binaries the test is skipped, unless
//! `ELICENCE_REQUIRE_PG=1`.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use util::{elicence, openssl};

/// `initdb`, `pg_ctl` of the newest installed PostgreSQL.
fn pg_bin(name: &str) -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin").join(name)))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Runs a server binary as the `postgres` user when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn check(out: std::io::Result<Output>, what: &str) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A PostgreSQL cluster in a scratch folder, stopped when dropped.
struct Server {
    dir: tempfile::TempDir,
    pg_ctl: PathBuf,
    port: u16,
}

impl Server {
    fn data(&self) -> PathBuf {
        self.dir.path().join("cluster")
    }

    fn ctl(&self, args: &[&str]) {
        let log = self.dir.path().join("server.log");
        let out = as_server_user(&self.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60"])
            .args(args)
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("pg_ctl {args:?}: {out:?}\n{log}");
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_server_user(&self.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// A CA (`NAME.pem`, `NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// Starts a TLS server: `ca.pem` issued `server.crt` for DNS:localhost only; `other-ca.pem` is
/// a CA that did not. The superuser `elicence` logs in with a password over TCP.
fn start() -> Option<Server> {
    let (Some(initdb), Some(pg_ctl)) = (pg_bin("initdb"), pg_bin("pg_ctl")) else {
        let required = std::env::var("ELICENCE_REQUIRE_PG").is_ok_and(|v| v == "1");
        assert!(!required, "ELICENCE_REQUIRE_PG=1 but initdb/pg_ctl are not installed");
        eprintln!("SKIPPED: no PostgreSQL server binaries in /usr/lib/postgresql");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server { dir, pg_ctl, port: free_port() };
    let d = server.dir.path();
    make_ca(d, "ca");
    make_ca(d, "other-ca");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(d.join("san.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "7",
            "-days",
            "30",
            "-extfile",
            "san.cnf",
            "-out",
            "server.crt",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(d.join("password"), "s3cret\n").unwrap();
    if is_root() {
        check(Command::new("chown").args(["-R", "postgres:"]).arg(d).output(), "chown");
    }
    check(
        as_server_user(&initdb)
            .arg("-D")
            .arg(server.data())
            .args([
                "-U",
                "elicence",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg("--pwfile")
            .arg(d.join("password"))
            .output(),
        "initdb",
    );
    let conf = format!(
        "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
         ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
        server.port,
        d.display(),
        d.join("server.crt").display(),
        d.join("server.key").display()
    );
    let conf_path = server.data().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf_path).unwrap();
    text.push_str(&conf);
    std::fs::write(&conf_path, text).unwrap();
    server.ctl(&["start"]);
    Some(server)
}

/// `elicence init` against `url` (a connection, the schema created), with `env`.
fn init(server: &Server, url: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = elicence();
    cmd.args(["init", "--json", "--registry", url]).arg("--data").arg(server.path("data"));
    for var in ["PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE", "PGSSLMODE"] {
        cmd.env_remove(var);
    }
    cmd.env_remove("PGSSLROOTCERT").env_remove("PGPASSFILE").env("HOME", server.path("home"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn postgres_over_tls_verifies_the_server_as_sslmode_says() {
    let Some(server) = start() else { return };
    let port = server.port;
    let ca = server.path("ca.pem");
    let other = server.path("other-ca.pem");
    let url = |host: &str, mode: &str, root: &Path| {
        format!(
            "postgres://elicence:s3cret@{host}:{port}/postgres?sslmode={mode}&sslrootcert={}",
            root.display()
        )
    };

    // verify-full with the CA that issued the server's certificate.
    let out = init(&server, &url("localhost", "verify-full", &ca), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Another CA: refused, and the message says so.
    let out = init(&server, &url("localhost", "verify-full", &other), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("certificate verify failed"), "{}", stderr(&out));
    // A host name the certificate does not name (it names localhost, not 127.0.0.1).
    let out = init(&server, &url("127.0.0.1", "verify-full", &ca), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("certificate verify failed"), "{}", stderr(&out));
    // verify-ca checks the chain, not the name.
    let out = init(&server, &url("127.0.0.1", "verify-ca", &ca), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // verify-full without the root certificate file: a clear configuration message.
    let out = init(&server, &url("localhost", "verify-full", &server.path("none.pem")), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs the server's root certificate"), "{}", stderr(&out));

    // Everything from the libpq environment, the password from a password file.
    let port_text = port.to_string();
    let pgpass = server.path("pgpass");
    std::fs::write(&pgpass, format!("localhost:{port}:postgres:elicence:s3cret\n")).unwrap();
    let env = [
        ("PGHOST", "localhost"),
        ("PGPORT", port_text.as_str()),
        ("PGUSER", "elicence"),
        ("PGDATABASE", "postgres"),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", ca.to_str().unwrap()),
        ("PGPASSFILE", pgpass.to_str().unwrap()),
    ];
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = init(&server, "postgres://", &env);
    assert_eq!(out.status.code(), Some(1), "a world-readable password file is ignored");
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = init(&server, "postgres://", &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out =
        init(&server, "postgres://", &[("PGPASSWORD", "s3cret"), env[0], env[1], env[2], env[3]]);
    assert_eq!(out.status.code(), Some(0), "prefer by default, PGPASSWORD: {}", stderr(&out));

    // The same server without TLS: require fails, disable connects.
    server.ctl(&["restart", "-o", "-c ssl=off"]);
    let out = init(&server, &url("localhost", "require", &server.path("none.pem")), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not support TLS"), "{}", stderr(&out));
    let out = init(&server, &url("localhost", "disable", &ca), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
