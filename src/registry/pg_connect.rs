//! Connecting to PostgreSQL as libpq does (PostgreSQL docs §34.1 "Connection Strings", §34.15
//! "Environment Variables", §34.16 "The Password File", §34.19 "SSL Support"):
//!
//! 1. the `postgres://` URL, whose query may carry `sslmode` (`disable`, `prefer`, `require`,
//!    `verify-ca`, `verify-full`) and `sslrootcert`;
//! 2. what the URL leaves out from the environment: `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
//!    `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`; the user defaults to the OS user;
//! 3. the password, if still missing, from the password file (`PGPASSFILE`, else `~/.pgpass`;
//!    ignored, as libpq does, when group or others can read it);
//! 4. TLS through OpenSSL (`postgres-openssl`): `prefer` and `require` encrypt without
//!    checking the server (libpq: `require` with a root certificate checks it like
//!    `verify-ca`), `verify-ca` checks the chain against `sslrootcert` (default
//!    `~/.postgresql/root.crt`), `verify-full` also the host name.
//!
//! [`ConnectSpec::parse`] and [`pgpass_lookup`] are pure (the environment is passed in);
//! [`connect`] is the effect.

use std::path::{Path, PathBuf};

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use percent_encoding::percent_decode_str;
use postgres::config::{Host, SslMode};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(s: &str) -> Option<TlsMode> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Why a connection could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum ConnectSpecError {
    #[error("sslmode {0:?}: expected disable, prefer, require, verify-ca or verify-full")]
    BadSslMode(String),
    #[error("{0}")]
    Url(String),
    #[error("sslmode {mode} needs the server's root certificate: sslrootcert={} does not exist", path.display())]
    MissingRootCert { mode: &'static str, path: PathBuf },
    #[error("cannot set up TLS: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
}

/// What a connection is made from, resolved.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    pub config: postgres::Config,
    pub tls: TlsMode,
    pub root_cert: Option<PathBuf>,
}

/// The environment as [`ConnectSpec::parse`] reads it.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl ConnectSpec {
    /// Resolves `url` with `env` (module docs, steps 1 and 2; the password file is
    /// [`connect`]'s). Fails on an unknown `sslmode` or a URL the driver does not accept.
    pub fn parse(url: &str, env: &dyn Env) -> Result<ConnectSpec, ConnectSpecError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let (mut sslmode, mut rootcert) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(v).decode_utf8_lossy().into_owned();
            match k {
                "sslmode" => sslmode = Some(value),
                "sslrootcert" => rootcert = Some(value),
                _ => kept.push(pair),
            }
        }
        let driver_url =
            if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        let mut config: postgres::Config = driver_url
            .parse()
            .map_err(|e: postgres::Error| ConnectSpecError::Url(e.to_string()))?;
        if config.get_hosts().is_empty() {
            config.host(&env.var("PGHOST").unwrap_or_else(|| "localhost".to_owned()));
        }
        if config.get_ports().is_empty()
            && let Some(port) = env.var("PGPORT")
        {
            let port = port
                .parse::<u16>()
                .map_err(|_| ConnectSpecError::Url(format!("PGPORT={port:?} is not a port")))?;
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env.var("PGUSER").or_else(|| env.var("USER"));
            if let Some(user) = user {
                config.user(&user);
            }
        }
        if config.get_password().is_none()
            && let Some(password) = env.var("PGPASSWORD")
        {
            config.password(password);
        }
        if config.get_dbname().is_none()
            && let Some(db) = env.var("PGDATABASE")
        {
            config.dbname(&db);
        }
        let mode_text = sslmode.or_else(|| env.var("PGSSLMODE")).unwrap_or_else(|| "prefer".into());
        let tls = TlsMode::parse(&mode_text).ok_or(ConnectSpecError::BadSslMode(mode_text))?;
        let root_cert = rootcert
            .or_else(|| env.var("PGSSLROOTCERT"))
            .map(PathBuf::from)
            .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")));
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        Ok(ConnectSpec { config, tls, root_cert })
    }

    /// The first host as the password file names it (`localhost` for a socket folder).
    fn host_for_pgpass(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_owned(),
        }
    }

    fn port_for_pgpass(&self) -> u16 {
        self.config.get_ports().first().copied().unwrap_or(5432)
    }
}

/// The password for (host, port, database, user) from a password file's text: the first line
/// whose fields match, each field a value or `*`; `\:` and `\\` escape. None when no line
/// matches.
pub fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        let [h, p, d, u, password] = fields.as_slice() else { continue };
        let matches = |field: &str, value: &str| field == "*" || field == value;
        if matches(h, host) && matches(p, &port) && matches(d, db) && matches(u, user) {
            return Some(password.clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

/// The password file libpq would read, if it exists and only its owner can read it.
fn pgpass_file(env: &dyn Env) -> Option<PathBuf> {
    let path = env
        .var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; ignored (chmod 0600 it)",
                path.display()
            );
            return None;
        }
    }
    meta.is_file().then_some(path)
}

/// A connection could not be made: the spec, or the server (TLS, authentication, network).
#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    #[error(transparent)]
    Spec(#[from] ConnectSpecError),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
}

/// Connects as the module docs say.
pub fn connect(url: &str) -> Result<postgres::Client, PgConnectError> {
    let env = ProcessEnv;
    let mut spec = ConnectSpec::parse(url, &env)?;
    if spec.config.get_password().is_none()
        && let Some(file) = pgpass_file(&env)
        && let Ok(text) = std::fs::read_to_string(&file)
    {
        let user = spec.config.get_user().unwrap_or_default().to_owned();
        let db = spec.config.get_dbname().map_or_else(|| user.clone(), str::to_owned);
        if let Some(password) =
            pgpass_lookup(&text, &spec.host_for_pgpass(), spec.port_for_pgpass(), &db, &user)
        {
            spec.config.password(password);
        }
    }
    if spec.tls == TlsMode::Disable {
        return Ok(spec.config.connect(postgres::NoTls)?);
    }
    let root = spec.root_cert.as_ref().filter(|p| p.is_file());
    // libpq: `require` with a root certificate file present checks the chain as verify-ca.
    let (check_chain, check_host) = match spec.tls {
        TlsMode::VerifyFull => (true, true),
        TlsMode::VerifyCa => (true, false),
        TlsMode::Require => (root.is_some(), false),
        _ => (false, false),
    };
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(ConnectSpecError::Tls)?;
    if check_chain {
        let Some(root) = root else {
            return Err(ConnectSpecError::MissingRootCert {
                mode: if check_host { "verify-full" } else { "verify-ca" },
                path: spec.root_cert.clone().unwrap_or_default(),
            }
            .into());
        };
        builder.set_ca_file(root).map_err(ConnectSpecError::Tls)?;
        builder.set_verify(SslVerifyMode::PEER);
    } else {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let mut tls = postgres_openssl::MakeTlsConnector::new(builder.build());
    tls.set_callback(move |config, _domain| {
        config.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(spec.config.connect(tls)?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct MapEnv(HashMap<&'static str, &'static str>);

    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    #[test]
    fn the_url_wins_and_the_environment_fills_in() {
        let env = MapEnv(HashMap::from([
            ("PGHOST", "db.internal"),
            ("PGPORT", "6543"),
            ("PGUSER", "app"),
            ("PGPASSWORD", "s3cret"),
            ("PGDATABASE", "registry"),
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/etc/ca.pem"),
        ]));
        let spec = ConnectSpec::parse("postgres://", &env).unwrap();
        assert_eq!(spec.config.get_hosts(), &[Host::Tcp("db.internal".into())]);
        assert_eq!(spec.config.get_ports(), &[6543]);
        assert_eq!(spec.config.get_user(), Some("app"));
        assert_eq!(spec.config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(spec.config.get_dbname(), Some("registry"));
        assert_eq!(spec.tls, TlsMode::VerifyFull);
        assert_eq!(spec.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let spec = ConnectSpec::parse(
            "postgres://other@h:5433/db?sslmode=disable&sslrootcert=%2Ftmp%2Fca.pem&connect_timeout=5",
            &env,
        )
        .unwrap();
        assert_eq!(spec.config.get_user(), Some("other"));
        assert_eq!(spec.config.get_ports(), &[5433]);
        assert_eq!(spec.tls, TlsMode::Disable);
        assert_eq!(spec.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        assert!(matches!(
            ConnectSpec::parse("postgres://h/db?sslmode=allow-ish", &env),
            Err(ConnectSpecError::BadSslMode(_))
        ));
    }

    #[test]
    fn the_password_file_matches_fields_and_wildcards_in_order() {
        let text =
            "# comment\nother:5432:*:app:no\ndb.internal:*:registry:app:pa\\:ss\n*:*:*:*:any\n";
        assert_eq!(
            pgpass_lookup(text, "db.internal", 6543, "registry", "app").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(pgpass_lookup(text, "x", 1, "y", "z").as_deref(), Some("any"));
        assert_eq!(pgpass_lookup("h:1:d:u:p\n", "h", 2, "d", "u"), None);
    }
}
