//! Argument blocks that several subcommands share, flattened into each command's `Args`
//! (`#[command(flatten)]`), so that a flag means the same thing, reads the same environment
//! variable and has the same default everywhere.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::Args;

use crate::operators::{Actor, Claim, authorize};
use crate::registry::{Registry, RegistryError, Role};
use crate::sign::RsaSigner;
use crate::sign::key_files::passphrase_from_env_or_file;
use crate::sign::keys::{CA_CERT_FILE, SM2_CA_CERT_FILE};
use crate::verify::TrustAnchors;

/// Where the registry is: `--data` (the folder of the SQLite file and the store),
/// `--registry` (another database, e.g. PostgreSQL) and `--store` (the store elsewhere, e.g. a
/// bucket).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Registry folder (SQLite file and content-addressed store).
    #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
    pub data: PathBuf,
    /// Registry database: postgres://USER@HOST/DB or sqlite:PATH (default: the SQLite file
    /// in --data). With PostgreSQL the store stays in --data/store, a path all machines share.
    #[arg(long, env = "ELICENCE_REGISTRY")]
    pub registry: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

impl RegistryArgs {
    /// Opens (and on first use creates) the registry these flags name.
    pub fn open(&self) -> Result<Registry, RegistryError> {
        Registry::open_with(&self.data, self.registry.as_deref(), self.store.store.as_deref())
    }
}

/// Where the content-addressed store is, when not in `--data/store`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Content-addressed store: a folder (file:PATH) or an S3-compatible bucket
    /// (s3://BUCKET/PREFIX, configured from AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP…). Default: --data/store. Several machines on one
    /// PostgreSQL registry name the same store.
    #[arg(long, env = "ELICENCE_STORE", value_name = "URL")]
    pub store: Option<String>,
}

/// The catalog folder whose licence types decide sharing modes and protected fields.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Catalog folder (one TOML file per licence type). Default: ./pipelines/catalog, else
    /// the packaged /usr/share/elicence/catalog. Rights (sharing modes, scopes, protected
    /// fields) come from the catalog the registry published (`elicence catalog publish`); this
    /// folder is adopted only by a registry that has published none.
    #[arg(long, env = "ELICENCE_CATALOG", default_value_os_t = crate::catalog::default_dir())]
    pub catalog: PathBuf,
}

impl CatalogArgs {
    /// The catalog that decides rights on `registry`: the one it published (`--catalog` is then
    /// not read: it cannot widen anyone's rights); a registry that published none adopts
    /// `--catalog` first (see [`Registry::rights_catalog`]).
    pub fn rights(
        &self,
        registry: &mut Registry,
        at: DateTime<Utc>,
    ) -> Result<crate::catalog::Catalog, RegistryError> {
        Ok(registry.rights_catalog(&self.catalog, at)?.0)
    }
}

/// Who asks: a registered department (or issuer) and its credential.
#[derive(Debug, Clone, Args)]
pub struct DepartmentArgs {
    /// The department's USCC (统一社会信用代码), as registered with `elicence dept add`.
    #[arg(long = "as", value_name = "DEPT")]
    pub as_code: String,
    /// File holding the department's credential (else ELICENCE_CREDENTIAL).
    #[arg(long)]
    pub credential_file: Option<PathBuf>,
}

/// A request for shared data: who asks, and why (事由).
#[derive(Debug, Clone, Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub department: DepartmentArgs,
    /// Why the department asks (事由): required, at most 200 characters; recorded in the audit
    /// trail (and printed in the watermark of a copy).
    #[arg(long)]
    pub reason: Option<String>,
}

/// The signing key set of a command that signs.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Key folder with signer.key and signer.pem. Default: the development key in
    /// <data>/dev-keys (created on first use by `run`; every command that uses it says so);
    /// required by a production registry (`elicence init --production`), which refuses
    /// development keys.
    #[arg(long, env = "ELICENCE_KEYS")]
    pub keys: Option<PathBuf>,
    /// File with the key's passphrase (else ELICENCE_KEY_PASSPHRASE, if the key is encrypted).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key folder: `--keys`, else the development key set in `<data>/dev-keys`.
    pub fn folder(&self, data: &Path) -> PathBuf {
        self.keys.clone().unwrap_or_else(|| data.join("dev-keys"))
    }

    /// Loads the RSA signer of [`KeyArgs::folder`], valid at `at`.
    pub fn load_signer(&self, data: &Path, at: DateTime<Utc>) -> anyhow::Result<RsaSigner> {
        let keys = self.folder(data);
        let passphrase = passphrase_from_env_or_file(self.passphrase_file.as_deref())?;
        RsaSigner::load(&keys, passphrase.as_ref(), at)
            .with_context(|| format!("cannot load the signing key from {}", keys.display()))
    }
}

/// What a verifying command trusts: anchors, TSA roots and CRLs.
#[derive(Debug, Clone, Args)]
pub struct TrustArgs {
    /// Trust anchor certificates (PEM); may be repeated.
    #[arg(long, value_name = "PEM")]
    pub trust: Vec<PathBuf>,
    /// Key directory whose ca.pem (and sm2-ca.pem, for OFD seals) is trusted (e.g. a
    /// development key set).
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Roots trusted for time-stamping authorities (PEM); may be repeated. A signature
    /// timestamp from a TSA under one of them is the time its signer is validated at;
    /// without, the verifier's clock is.
    #[arg(long, value_name = "PEM")]
    pub tsa_trust: Vec<PathBuf>,
    /// Certificate revocation lists (DER or PEM); may be repeated. With any, every
    /// certificate of every path needs a current CRL of its issuer that does not list it.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
}

impl TrustArgs {
    /// The anchors these flags name, plus the development CAs of the registry folder `data`
    /// when it has them. `Ok(None)` when nothing at all is trusted.
    pub fn anchors(&self, data: Option<&Path>) -> anyhow::Result<Option<TrustAnchors>> {
        let mut files = self.trust.clone();
        let mut key_dirs: Vec<PathBuf> = self.keys.iter().cloned().collect();
        key_dirs.extend(data.map(|d| d.join("dev-keys")));
        for (i, dir) in key_dirs.iter().enumerate() {
            // --keys names ca.pem outright (missing = error); a registry's dev-keys may not exist.
            if i == 0 && self.keys.is_some() || dir.join(CA_CERT_FILE).exists() {
                files.push(dir.join(CA_CERT_FILE));
            }
            if dir.join(SM2_CA_CERT_FILE).exists() {
                files.push(dir.join(SM2_CA_CERT_FILE));
            }
        }
        if files.is_empty() {
            return Ok(None);
        }
        let anchors = TrustAnchors::from_pem_files(&files)
            .context("loading trust anchors")?
            .with_tsa(TrustAnchors::from_pem_files(&self.tsa_trust).context("loading TSA roots")?)
            .with_crls(&self.crl)
            .context("loading CRLs")?;
        Ok(Some(anchors))
    }
}

/// A time-stamping authority for the signatures a command makes (PAdES B-T).
#[derive(Debug, Clone, Args)]
pub struct TsaArgs {
    /// RFC 3161 time-stamping authority (http:// or https://): every PDF signature gets a
    /// timestamp token, so it stays verifiable after the signer certificate expires. Probed
    /// once before anything is created; a TSA that stops answering stops the run at a chunk
    /// boundary (nothing unstamped is loaded). Default: the pipeline's `[output] tsa`.
    #[arg(long, env = "ELICENCE_TSA", value_name = "URL")]
    pub tsa: Option<String>,
}

/// The public verification page the faces' QR codes open.
#[derive(Debug, Clone, Args)]
pub struct PublicUrlArgs {
    /// Base URL of the registry's public verification page (`elicence serve --public-url`):
    /// each face's QR code becomes URL/v/<identifier>?d=<digest>, which a phone camera opens.
    /// Default: the pipeline's [output] public_url; without either the QR code holds
    /// ELIC1:<identifier>:<digest>.
    #[arg(long, env = "ELICENCE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

/// Who runs an effectful command: a registered operator and its credential. Required once the
/// registry has an admin operator; before that `--operator` is free text (default: the OS user).
#[derive(Debug, Clone, Args)]
pub struct OperatorArgs {
    /// Who runs this (audit trail): a registered operator once the registry has an admin (see
    /// `elicence operator add`); until then any name, default the OS user.
    #[arg(long)]
    pub operator: Option<String>,
    /// File holding the operator's credential (else ELICENCE_OPERATOR_CREDENTIAL).
    #[arg(long, value_name = "FILE")]
    pub operator_credential_file: Option<PathBuf>,
}

impl OperatorArgs {
    /// The claim these flags make.
    pub fn claim(&self) -> Claim {
        Claim {
            name: self.operator.clone(),
            credential_file: self.operator_credential_file.clone(),
            vouched: false,
        }
    }

    /// Lets the operator run `command` with one of `roles` on `registry` (see
    /// [`crate::operators::authorize`]); refusals are audited and map to exit code 6.
    pub fn authorize(
        &self,
        registry: &mut Registry,
        command: &str,
        roles: &[Role],
    ) -> anyhow::Result<Actor> {
        let at = crate::clock::now()?;
        Ok(authorize(registry, &self.claim(), command, roles, &super::operator(None), at)?)
    }
}
