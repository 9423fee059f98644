//! Where a registry's database lives: `--registry` / `ELICENCE_REGISTRY`.
//!
//! - absent: the SQLite file `<data>/registry.sqlite` (the default);
//! - `sqlite:PATH`: the SQLite file at PATH;
//! - `postgres://…` or `postgresql://…`: a PostgreSQL database (libpq URL syntax).
//!
//! Errors and messages show a PostgreSQL URL without its password ([`RegistryLocation::display`]).

use std::fmt;
use std::path::{Path, PathBuf};

use super::db::Db;
use super::{DB_FILE, RegistryError, sqlite};

/// A registry database location.
#[derive(Clone, PartialEq, Eq)]
pub enum RegistryLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl fmt::Debug for RegistryLocation {
    /// Never shows a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegistryLocation({self})")
    }
}

impl fmt::Display for RegistryLocation {
    /// The file path, or the URL without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryLocation::Sqlite(path) => write!(f, "{}", path.display()),
            RegistryLocation::Postgres(url) => f.write_str(&redact_password(url)),
        }
    }
}

impl RegistryLocation {
    /// Reads a `--registry` value; `None` is the SQLite file in `data_dir`.
    ///
    /// Fails with [`RegistryError::BadLocation`] for anything else than `postgres://`,
    /// `postgresql://` or `sqlite:` with a path.
    pub fn parse(spec: Option<&str>, data_dir: &Path) -> Result<RegistryLocation, RegistryError> {
        let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(RegistryLocation::Sqlite(data_dir.join(DB_FILE)));
        };
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            return Ok(RegistryLocation::Postgres(spec.to_owned()));
        }
        if let Some(path) = spec.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(RegistryError::BadLocation {
                    spec: spec.to_owned(),
                    reason: "sqlite: needs a file path, e.g. sqlite:data/registry.sqlite".into(),
                });
            }
            return Ok(RegistryLocation::Sqlite(PathBuf::from(path)));
        }
        Err(RegistryError::BadLocation {
            spec: redact_password(spec),
            reason: "expected postgres://USER@HOST:PORT/DATABASE or sqlite:PATH".into(),
        })
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, RegistryLocation::Postgres(_))
    }

    /// Opens a connection (creating a SQLite file, never a PostgreSQL database).
    pub(crate) fn connect(&self) -> Result<Db, RegistryError> {
        match self {
            RegistryLocation::Sqlite(path) => Ok(Db::sqlite(sqlite::connect(path)?, path)),
            RegistryLocation::Postgres(url) => Db::postgres(url, Path::new(&redact_password(url))),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`; a `password=…` query
/// parameter is dropped too.
pub fn redact_password(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> =
                query.split('&').filter(|kv| !kv.starts_with("password=")).collect();
            if kept.is_empty() { path.to_owned() } else { format!("{path}?{}", kept.join("&")) }
        }
        None => tail.to_owned(),
    };
    match scheme {
        Some(s) => format!("{s}://{authority}{tail}"),
        None => format!("{authority}{tail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_password("postgres://app:s3cret@db.example:5432/reg?sslmode=disable&password=x"),
            "postgres://app@db.example:5432/reg?sslmode=disable"
        );
        assert_eq!(
            redact_password("postgres://root@127.0.0.1/test"),
            "postgres://root@127.0.0.1/test"
        );
        let loc = RegistryLocation::parse(Some("postgres://a:b@h/d"), Path::new("x")).unwrap();
        assert_eq!(format!("{loc} {loc:?}"), "postgres://a@h/d RegistryLocation(postgres://a@h/d)");
    }

    #[test]
    fn locations_parse() {
        let data = Path::new("data");
        assert_eq!(
            RegistryLocation::parse(None, data).unwrap(),
            RegistryLocation::Sqlite(data.join(DB_FILE))
        );
        assert_eq!(
            RegistryLocation::parse(Some("sqlite:/tmp/r.sqlite"), data).unwrap(),
            RegistryLocation::Sqlite(PathBuf::from("/tmp/r.sqlite"))
        );
        assert!(RegistryLocation::parse(Some("mysql://x"), data).is_err());
        assert!(RegistryLocation::parse(Some("sqlite:"), data).is_err());
    }
}
