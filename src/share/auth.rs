//! Department credentials: generated at random, stored only as an argon2id hash (PHC string,
//! random salt, the crate's default cost: 19 MiB, 2 passes), checked by the password-hash
//! verifier, which compares in constant time. The credential itself is printed once, when a
//! department is added, and never stored or logged.

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use thiserror::Error;

use crate::share::input::MAX_KEY;

/// Environment variable holding a department's credential (else `--credential-file`).
pub const CREDENTIAL_ENV: &str = "ELICENCE_CREDENTIAL";
/// Shortest credential accepted from a file when adding a department.
pub const MIN_CREDENTIAL: usize = 16;

/// Why a credential could not be read or hashed.
#[derive(Debug, Error)]
pub enum CredentialError {
    #[error("no credential: give --credential-file FILE or set {CREDENTIAL_ENV}")]
    Missing,
    #[error("{path}: cannot read the credential file")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("credential must be {MIN_CREDENTIAL} to {MAX_KEY} printable characters")]
    Malformed,
    #[error("cannot hash the credential: {detail}")]
    Hash { detail: String },
}

/// A new random credential: 32 random bytes as 64 hex digits.
pub fn generate() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The credential from `file` (first line, trimmed), else from `ELICENCE_CREDENTIAL`.
pub fn read(file: Option<&Path>) -> Result<String, CredentialError> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| CredentialError::Read { path: path.display().to_string(), source })?,
        None => std::env::var(CREDENTIAL_ENV).map_err(|_| CredentialError::Missing)?,
    };
    parse(&raw)
}

/// A credential as presented (a file's first line, an environment variable, a JSON field):
/// trimmed, non-empty, bounded, no control characters.
pub fn parse(raw: &str) -> Result<String, CredentialError> {
    let value = raw.lines().next().unwrap_or_default().trim().to_string();
    if value.is_empty() {
        return Err(CredentialError::Missing);
    }
    let n = value.chars().count();
    if n > MAX_KEY || value.chars().any(char::is_control) {
        return Err(CredentialError::Malformed);
    }
    Ok(value)
}

/// Checks a credential chosen by an administrator (from `--credential-file`).
pub fn check_strength(credential: &str) -> Result<(), CredentialError> {
    let n = credential.chars().count();
    if !(MIN_CREDENTIAL..=MAX_KEY).contains(&n) {
        return Err(CredentialError::Malformed);
    }
    Ok(())
}

/// The argon2id PHC string of `credential`, with a fresh random salt.
pub fn hash(credential: &str) -> Result<String, CredentialError> {
    Argon2::default()
        .hash_password(credential.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash { detail: e.to_string() })
}

/// Whether `credential` matches the stored PHC string (constant-time comparison inside the
/// verifier). A stored value that does not parse matches nothing.
pub fn matches(credential: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(credential.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_salted_and_verifies() {
        let c = generate();
        assert_eq!(c.len(), 64);
        let h1 = hash(&c).unwrap();
        let h2 = hash(&c).unwrap();
        assert!(h1.starts_with("$argon2id$"));
        assert_ne!(h1, h2, "salted");
        assert!(!h1.contains(&c));
        assert!(matches(&c, &h1));
        assert!(matches(&c, &h2));
        assert!(!matches("wrong-credential-value", &h1));
        assert!(!matches(&c, "not a phc string"));
    }
}
