//! What a production registry asks of a signing key (`elicence init --production`): a key set
//! given explicitly (`--keys` or `ELICENCE_KEYS`), none of whose certificates is a development
//! certificate (one that carries [`DEVELOPMENT_KEY_POLICY`](super::keys::DEVELOPMENT_KEY_POLICY),
//! as every certificate `keys init` makes does). [`check_production_key`] is pure: the caller
//! says whether the registry is production and which signer it loaded.

use std::path::{Path, PathBuf};

use super::Signer;
use super::keys::is_development_certificate;

/// A signing key a production registry refuses (a configuration error: exit 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProductionKeyError {
    /// No key set was given, so the development key would sign.
    #[error(
        "the registry is marked production (elicence init --production): give the issuing \
         authority's key set with --keys DIR or ELICENCE_KEYS; development keys are refused"
    )]
    KeysRequired,
    /// The key set's certificate (or a certificate of its chain) is a development certificate.
    #[error(
        "{}: a development key (made by `elicence keys init`; certificate {subject:?}), refused \
         by a production registry; use the issuing authority's key set",
        keys.display()
    )]
    DevelopmentKey { keys: PathBuf, subject: String },
}

/// Checks the key set `keys` (`None`: none given) loaded as `signer` against a registry that is
/// `production` (anything goes otherwise).
pub fn check_production_key(
    production: bool,
    keys: Option<&Path>,
    signer: Option<&dyn Signer>,
) -> Result<(), ProductionKeyError> {
    if !production {
        return Ok(());
    }
    let Some(keys) = keys else {
        return Err(ProductionKeyError::KeysRequired);
    };
    if let Some(signer) = signer
        && signer.chain().iter().any(is_development_certificate)
    {
        return Err(ProductionKeyError::DevelopmentKey {
            keys: keys.to_path_buf(),
            subject: signer.subject_cn().to_string(),
        });
    }
    Ok(())
}

/// True when the PEM file at `path` holds a development certificate (a trust anchor a
/// production registry must not use). A file without certificates is not development (the
/// trust-anchor loader reports it). Fails when the file cannot be read.
pub fn pem_file_is_development(path: &Path) -> std::io::Result<bool> {
    let bytes = std::fs::read(path)?;
    Ok(x509_cert::Certificate::load_pem_chain(&bytes)
        .map(|certs| certs.iter().any(is_development_certificate))
        .unwrap_or(false))
}
