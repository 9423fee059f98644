//! Argument blocks that several subcommands share, flattened into each command's `Args`
//! (`#[command(flatten)]`), so that a flag means the same thing, reads the same environment
//! variable and has the same default everywhere.

use std::path::PathBuf;

use clap::Args;

use crate::registry::{Registry, RegistryError};

/// Where the registry is: `--data` (the folder of the SQLite file and the store) and
/// `--registry` (another database, e.g. PostgreSQL).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Registry folder (SQLite file and content-addressed store).
    #[arg(long, env = "ELICENCE_DATA", default_value = "elicence-data")]
    pub data: PathBuf,
    /// Registry database: postgres://USER@HOST/DB or sqlite:PATH (default: the SQLite file
    /// in --data). With PostgreSQL the store stays in --data/store, a path all machines share.
    #[arg(long, env = "ELICENCE_REGISTRY")]
    pub registry: Option<String>,
}

impl RegistryArgs {
    /// Opens (and on first use creates) the registry these flags name.
    pub fn open(&self) -> Result<Registry, RegistryError> {
        Registry::open_with(&self.data, self.registry.as_deref())
    }
}

/// The catalog folder whose licence types decide sharing modes and protected fields.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// Catalog folder (one TOML file per licence type). Default: ./pipelines/catalog, else
    /// the packaged /usr/share/elicence/catalog.
    #[arg(long, env = "ELICENCE_CATALOG", default_value_os_t = crate::catalog::default_dir())]
    pub catalog: PathBuf,
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
