//! Rights held by the registry (issue 15): the catalog that decides sharing modes, scopes and
//! protected fields is the one the registry published (`catalog_versions`, newest last), not
//! whatever `--catalog` a caller points at. `elicence catalog publish` stores a new version
//! (its files, their hash, time and operator; audited `catalog_published`); `run` publishes its
//! pipeline's catalog with `--publish` and otherwise stops when it differs.
//!
//! A registry that has published nothing (every registry before migration 9) adopts the catalog
//! of the first command that reads rights ([`Registry::rights_catalog`]), recorded with the
//! operator [`ADOPTING_OPERATOR`]: the migration itself cannot read the catalog folder.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::audit::{self, AuditEntry};
use super::db::vals;
use super::encode::{get_time, time_text};
use super::{Registry, RegistryError};
use crate::catalog::{Catalog, CatalogSources};

/// The operator recorded when a registry without a published catalog adopts one.
pub const ADOPTING_OPERATOR: &str = "migration";

/// One published catalog version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogVersion {
    /// Its number (1 for the first).
    pub number: i64,
    /// [`CatalogSources::sha256`] of its files.
    pub sha256: String,
    pub sources: CatalogSources,
    pub published_at: DateTime<Utc>,
    pub operator: String,
}

impl CatalogVersion {
    /// The catalog of this version. Fails with [`RegistryError::Catalog`] when its files do not
    /// load (they did when published; a build that checks more may refuse them).
    pub fn catalog(&self) -> Result<Catalog, RegistryError> {
        let origin = format!("published catalog #{}", self.number);
        self.sources
            .load(Path::new(&origin))
            .map_err(|source| RegistryError::Catalog { what: origin, source })
    }
}

impl Registry {
    /// The newest published catalog version, or `None` when nothing was published yet.
    pub fn published_catalog(&self) -> Result<Option<CatalogVersion>, RegistryError> {
        let row = self.db.query_opt(
            "read published catalog",
            "SELECT id, sha256, files, published_at, operator FROM catalog_versions
             ORDER BY id DESC LIMIT 1",
            &[],
            |r| {
                let files: String = r.get(2)?;
                Ok((r.get::<i64>(0)?, r.get::<String>(1)?, files, get_time(r, 3)?, r.get(4)?))
            },
        )?;
        let Some((number, sha256, files, published_at, operator)) = row else {
            return Ok(None);
        };
        let sources: CatalogSources =
            serde_json::from_str(&files).map_err(|e| RegistryError::Catalog {
                what: format!("published catalog #{number}"),
                source: crate::catalog::CatalogError {
                    problems: vec![crate::catalog::ConfigProblem {
                        file: format!("published catalog #{number}").into(),
                        line: None,
                        key: String::new(),
                        message: format!("stored files do not parse: {e}"),
                    }],
                },
            })?;
        Ok(Some(CatalogVersion { number, sha256, sources, published_at, operator }))
    }

    /// The number of the newest published catalog version (0 when none): what a long-running
    /// reader compares to know whether to reload.
    pub fn published_catalog_number(&self) -> Result<i64, RegistryError> {
        self.db.query_one(
            "read published catalog number",
            "SELECT COALESCE(MAX(id), 0) FROM catalog_versions",
            &[],
            |r| r.get(0),
        )
    }

    /// Publishes `sources` (which must load: checked here) as the catalog that decides rights,
    /// by `operator` at `at`, with its audit entry, in one transaction. Nothing is written when
    /// the newest version has the same hash. Returns the newest version and whether this call
    /// published it.
    pub fn publish_catalog(
        &mut self,
        sources: &CatalogSources,
        operator: &str,
        at: DateTime<Utc>,
    ) -> Result<(CatalogVersion, bool), RegistryError> {
        sources
            .load(Path::new("catalog to publish"))
            .map_err(|source| RegistryError::Catalog { what: "to publish".into(), source })?;
        if let Some(v) = self.published_catalog()?
            && v.sha256 == sources.sha256()
        {
            return Ok((v, false));
        }
        let sha256 = sources.sha256();
        let files = serde_json::to_string(sources).map_err(|e| RegistryError::Catalog {
            what: "to publish".into(),
            source: crate::catalog::CatalogError {
                problems: vec![crate::catalog::ConfigProblem {
                    file: "catalog to publish".into(),
                    line: None,
                    key: String::new(),
                    message: e.to_string(),
                }],
            },
        })?;
        let number = self.db.write("publish catalog", |tx| {
            let number = tx.insert_id(
                "insert catalog version",
                "INSERT INTO catalog_versions (sha256, files, published_at, operator)
                 VALUES (?1, ?2, ?3, ?4)",
                &vals![&sha256, &files, time_text(at), operator],
            )?;
            audit::append(
                tx,
                &AuditEntry {
                    action: audit::action::CATALOG_PUBLISHED.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: format!("catalog:{number}"),
                    reason: None,
                    details: json!({
                        "version": number,
                        "sha256": sha256,
                        "files": sources.files.keys().collect::<Vec<_>>(),
                    }),
                },
            )?;
            Ok(number)
        })?;
        let version = CatalogVersion {
            number,
            sha256,
            sources: sources.clone(),
            published_at: at,
            operator: operator.to_owned(),
        };
        Ok((version, true))
    }

    /// The catalog that decides rights on this registry: the published one; when nothing was
    /// published yet, the catalog in `given` is published first (operator
    /// [`ADOPTING_OPERATOR`]) and is that. `given` is not read when a catalog is published.
    pub fn rights_catalog(
        &mut self,
        given: &Path,
        at: DateTime<Utc>,
    ) -> Result<(Catalog, CatalogVersion), RegistryError> {
        let version = match self.published_catalog()? {
            Some(v) => v,
            None => {
                let sources = CatalogSources::read_dir(given).map_err(|source| {
                    RegistryError::Catalog { what: given.display().to_string(), source }
                })?;
                self.publish_catalog(&sources, ADOPTING_OPERATOR, at)?.0
            }
        };
        Ok((version.catalog()?, version))
    }
}
