//! Personal data encrypted at rest (issue 18): the registry's field key, sealing and opening
//! what a version (and a staged review item) says about its holder, and the keyed hashes the
//! lifecycle compares instead of plaintext.
//!
//! # What is sealed
//! Every version's face fields (`versions.fields_json`), holder name and holder code, and the
//! row's content hash, as one AES-256-GCM ciphertext per row (the same for a review item's
//! `licence_json`); and a reject's message, which quotes the cell it is about. The whole field set is sealed, not only the fields the catalog marks
//! `personal` or `trade_secret`: nothing reads single fields with SQL, the marks may change
//! with the next published catalog (a field marked later would have stayed readable in old
//! rows), and sealing every row needs no catalog (so a schema migration can do it). One
//! ciphertext per row costs one AES-GCM pass over a few hundred bytes.
//!
//! In the clear stay what the registry must find and compare without the key: the natural key,
//! identifiers, dates, statuses, file hashes. The holder code column holds a keyed blind index
//! ([`FieldKeys::holder_index`], HMAC-SHA256) so single-instance checks and `query --holder`
//! still find rows by equality, and the content hash column holds a keyed hash of the content
//! ([`FieldKeys::content_hash`]), so `unchanged` is decided without opening stored rows and
//! without a hash anyone could brute-force from a guessed citizen ID.
//!
//! # The key file
//! `<data>/secrets/field-key` (folder 0700, file 0600), or the file `ELICENCE_FIELD_KEY_FILE`
//! names (a PostgreSQL registry shared by several machines needs the same file on each):
//! ```text
//! index <64 hex>          HMAC key of the blind index and content hashes; never rotated
//! key <8 hex id> <64 hex> AES-256-GCM data key; the first line is the current one
//! key <id> <64 hex>       an older data key, kept only while `secrets rotate` runs
//! ```
//! The index key cannot be rotated: the keyed hashes it made are in immutable versions and in
//! the hash-chained audit trail. The registry records a check value of the index key and the
//! current data key id (`field_key`), so a key file of another registry is refused before
//! anything is written with it.
//!
//! # Format of a sealed value
//! `sealed:v1:<key id>:<base64 of 96-bit nonce ‖ ciphertext ‖ tag>`. The nonce is random per
//! value; the associated data binds the ciphertext to its table and row (`versions` and the
//! identifier, which names the version), so values cannot be swapped between rows unnoticed.
//! Plaintext face fields are always a JSON object, so a stored value is sealed exactly when it
//! starts with `sealed:`.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::db::{Db, Dialect, vals};
use super::encode::{get_hash16, time_text};
use super::{DecisionInput, LoadItem, RegistryError};
use std::sync::Arc;

/// Environment variable naming the field key file (instead of `<data>/secrets/field-key`).
pub const KEY_FILE_ENV: &str = "ELICENCE_FIELD_KEY_FILE";
/// The folder of the data folder that holds the field key.
pub const SECRETS_DIR: &str = "secrets";
/// The field key's file name in [`SECRETS_DIR`].
pub const KEY_FILE: &str = "field-key";
/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "sealed:";
const SEALED_V1: &str = "sealed:v1:";

/// Where the field key of the registry in `data_dir` is: `ELICENCE_FIELD_KEY_FILE`, else
/// `<data_dir>/secrets/field-key`.
pub fn key_file_path(data_dir: &Path) -> PathBuf {
    match std::env::var_os(KEY_FILE_ENV).filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => data_dir.join(SECRETS_DIR).join(KEY_FILE),
    }
}

/// Why a sealed value does not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// Not `sealed:v1:<id>:<base64>`.
    Malformed,
    /// Sealed with a data key that is not in the key file (rotated away, or another key file).
    UnknownKey { key_id: String },
    /// The tag does not verify: the value was altered, moved to another row, or the key is
    /// another one with the same id.
    Tampered,
    /// Opened, but the plaintext is not what was sealed there.
    BadPlaintext { reason: String },
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Malformed => f.write_str("not a sealed value"),
            SealError::UnknownKey { key_id } => {
                write!(f, "sealed with data key {key_id}, which the field key file does not hold")
            }
            SealError::Tampered => {
                f.write_str("ciphertext does not authenticate (altered, moved or another key)")
            }
            SealError::BadPlaintext { reason } => write!(f, "unexpected plaintext: {reason}"),
        }
    }
}

/// The key file's content: the index key and the data keys, current first.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub index: [u8; 32],
    pub data_keys: Vec<(String, [u8; 32])>,
}

impl fmt::Debug for KeyFile {
    /// Never shows key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.data_keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("KeyFile").field("data_key_ids", &ids).finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> Result<[u8; N], RegistryError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| RegistryError::FieldKey {
        path: PathBuf::new(),
        reason: "the system random number generator failed".into(),
    })?;
    Ok(out)
}

/// A fresh data key: a random 8-hex-digit id and 32 random bytes.
pub fn new_data_key() -> Result<(String, [u8; 32]), RegistryError> {
    Ok((hex::encode(random::<4>()?), random::<32>()?))
}

impl KeyFile {
    /// A new key file: a random index key and one random data key.
    pub fn generate() -> Result<KeyFile, RegistryError> {
        Ok(KeyFile { index: random::<32>()?, data_keys: vec![new_data_key()?] })
    }

    /// Reads a key file. Fails with [`RegistryError::FieldKey`] naming the file and line.
    pub fn read(path: &Path) -> Result<KeyFile, RegistryError> {
        let text = fs::read_to_string(path).map_err(RegistryError::io(path, "read field key"))?;
        let bad = |reason: String| RegistryError::FieldKey { path: path.to_path_buf(), reason };
        let hex32 = |line: usize, s: &str| -> Result<[u8; 32], RegistryError> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(s, &mut out)
                .map_err(|_| bad(format!("line {line}: expected 64 hex digits")))?;
            Ok(out)
        };
        let mut index = None;
        let mut data_keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["index", k] if index.is_none() => index = Some(hex32(n, k)?),
                ["key", id, k] if id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    if data_keys.iter().any(|(i, _)| i == id) {
                        return Err(bad(format!("line {n}: data key {id} twice")));
                    }
                    data_keys.push(((*id).to_ascii_lowercase(), hex32(n, k)?));
                }
                _ => return Err(bad(format!("line {n}: expected `index HEX` or `key ID HEX`"))),
            }
        }
        let index = index.ok_or_else(|| bad("no `index` line".into()))?;
        if data_keys.is_empty() {
            return Err(bad("no `key` line".into()));
        }
        Ok(KeyFile { index, data_keys })
    }

    /// Writes the key file atomically (a temporary file, mode 0600, renamed over `path`),
    /// creating its folder (mode 0700) when missing.
    pub fn write(&self, path: &Path) -> Result<(), RegistryError> {
        let mut text = String::from(
            "# elicence field key: encrypts personal data in the registry. Keep it secret and\n\
             # back it up apart from the registry (`backup` leaves it out without\n\
             # --include-secrets). Losing it loses the holders' data.\n",
        );
        text.push_str(&format!("index {}\n", hex::encode(self.index)));
        for (id, key) in &self.data_keys {
            text.push_str(&format!("key {id} {}\n", hex::encode(key)));
        }
        write_private(path, text.as_bytes())
    }

    /// The current data key's id.
    pub fn current_id(&self) -> &str {
        self.data_keys.first().map_or("", |(id, _)| id.as_str())
    }
}

/// Writes `bytes` to `path` readable by the owner only (0600; folder 0700 when created),
/// atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(RegistryError::io(dir, "create secrets folder"))?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp).map_err(RegistryError::io(&temp, "create field key"))?;
    file.write_all(bytes).map_err(RegistryError::io(&temp, "write field key"))?;
    file.sync_all().map_err(RegistryError::io(&temp, "fsync field key"))?;
    drop(file);
    fs::rename(&temp, path).map_err(RegistryError::io(path, "move field key into place"))?;
    Ok(())
}

struct DataKey {
    id: String,
    key: LessSafeKey,
}

/// The loaded field key: made once when the registry opens, shared by every row.
pub struct FieldKeys {
    index: hmac::Key,
    index_check: String,
    /// Current first.
    data: Vec<DataKey>,
    rng: SystemRandom,
}

impl fmt::Debug for FieldKeys {
    /// Never shows key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldKeys").field("current", &self.current_id()).finish_non_exhaustive()
    }
}

/// Domain separation of the index key's uses.
const CHECK_LABEL: &[u8] = b"elicence field key check";
const CONTENT_LABEL: &[u8] = b"content\x1f";
const HOLDER_LABEL: &[u8] = b"holder\x1f";

impl FieldKeys {
    pub fn new(file: &KeyFile) -> Result<FieldKeys, RegistryError> {
        let index = hmac::Key::new(hmac::HMAC_SHA256, &file.index);
        let index_check = hex::encode(hmac::sign(&index, CHECK_LABEL).as_ref());
        let mut data = Vec::with_capacity(file.data_keys.len());
        for (id, key) in &file.data_keys {
            let unbound =
                UnboundKey::new(&AES_256_GCM, key).map_err(|_| RegistryError::FieldKey {
                    path: PathBuf::new(),
                    reason: format!("data key {id} is not an AES-256 key"),
                })?;
            data.push(DataKey { id: id.clone(), key: LessSafeKey::new(unbound) });
        }
        Ok(FieldKeys { index, index_check, data, rng: SystemRandom::new() })
    }

    /// The check value the registry records for its index key (an HMAC of a fixed label).
    pub fn index_check(&self) -> &str {
        &self.index_check
    }

    /// The id of the data key new values are sealed with.
    pub fn current_id(&self) -> &str {
        self.data.first().map_or("", |k| k.id.as_str())
    }

    /// Whether `sealed` was sealed with the current data key (rotation skips it).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix(SEALED_V1)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.current_id())
    }

    /// The keyed content hash the registry stores and compares: HMAC-SHA256 of the row's
    /// content hash under the index key, first 16 bytes.
    pub fn content_hash(&self, plain: &[u8; 16]) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(CONTENT_LABEL);
        ctx.update(plain);
        let tag = ctx.sign();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag.as_ref()[..16]);
        out
    }

    /// The blind index stored for a holder code: `#` and 32 hex digits of HMAC-SHA256 under the
    /// index key (a holder code never contains `#`, so an index is never taken for a code).
    pub fn holder_index(&self, holder_code: &str) -> String {
        if holder_code.starts_with('#') {
            return holder_code.to_owned();
        }
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(HOLDER_LABEL);
        ctx.update(holder_code.as_bytes());
        format!("#{}", hex::encode(&ctx.sign().as_ref()[..16]))
    }

    /// Seals `plaintext` for the row named by `aad` with the current data key.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<String, RegistryError> {
        let Some(current) = self.data.first() else {
            return Err(RegistryError::FieldKey {
                path: PathBuf::new(),
                reason: "no data key".into(),
            });
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| RegistryError::FieldKey {
            path: PathBuf::new(),
            reason: "the system random number generator failed".into(),
        })?;
        let mut buf = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(plaintext);
        let (head, body) = buf.split_at_mut(NONCE_LEN);
        let tag = current
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated(&current.id, aad).as_bytes()),
                body,
            )
            .map_err(|_| RegistryError::FieldKey {
                path: PathBuf::new(),
                reason: "AES-GCM refused to seal".into(),
            })?;
        let _ = head;
        buf.extend_from_slice(tag.as_ref());
        Ok(format!(
            "{SEALED_V1}{}:{}",
            current.id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&buf)
        ))
    }

    /// Opens a value sealed for the row named by `aad`, with whichever data key it names.
    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let rest = sealed.strip_prefix(SEALED_V1).ok_or(SealError::Malformed)?;
        let (id, b64) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let key = self
            .data
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey { key_id: id.to_owned() })?;
        let mut buf = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| SealError::Malformed)?;
        if buf.len() < NONCE_LEN + 16 {
            return Err(SealError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&buf[..NONCE_LEN]);
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated(id, aad).as_bytes()),
                &mut buf[NONCE_LEN..],
            )
            .map_err(|_| SealError::Tampered)?;
        Ok(plain.to_vec())
    }
}

/// The associated data of a sealed value: the format, the key id and the row.
fn associated(key_id: &str, row: &str) -> String {
    format!("elicence-field-v1\x1f{key_id}\x1f{row}")
}

/// The associated-data row name of a version's sealed fields.
pub(crate) fn version_aad(identifier: &str) -> String {
    format!("versions\x1f{identifier}")
}

/// The associated-data row name of a review item's sealed licence.
pub(crate) fn review_aad(identifier: &str, run: i64) -> String {
    format!("review_items\x1f{identifier}\x1f{run}")
}

/// The associated-data row name of a reject's sealed message.
pub(crate) fn reject_aad(run: i64, file: &str, line: i64, field: &str) -> String {
    format!("rejects\x1f{run}\x1f{file}\x1f{line}\x1f{field}")
}

/// What a version keeps sealed (`versions.fields_json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealedVersion {
    /// The unkeyed content hash (hex), as the row was read.
    pub content_hash: String,
    pub holder_code: String,
    pub holder_name: String,
    /// The face fields, a JSON object as text.
    pub fields_json: String,
}

/// What a staged review item keeps sealed (`review_items.licence_json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealedReview {
    pub content_hash: String,
    pub holder_code: String,
    pub holder_name: String,
    pub licence_json: String,
}

impl FieldKeys {
    pub(crate) fn seal_json<T: Serialize>(
        &self,
        aad: &str,
        value: &T,
    ) -> Result<String, RegistryError> {
        let bytes = serde_json::to_vec(value).map_err(|e| RegistryError::FieldKey {
            path: PathBuf::new(),
            reason: format!("serialise sealed value: {e}"),
        })?;
        self.seal(aad, &bytes)
    }

    pub(crate) fn open_json<T: for<'de> Deserialize<'de>>(
        &self,
        aad: &str,
        sealed: &str,
    ) -> Result<T, SealError> {
        let bytes = self.open(aad, sealed)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| SealError::BadPlaintext { reason: e.to_string() })
    }
}

/// A 16-byte hash from hex (what a sealed value stores).
pub(crate) fn hash16(hex_text: &str) -> Result<[u8; 16], SealError> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex_text, &mut out).map_err(|_| SealError::BadPlaintext {
        reason: "content hash is not 32 hex digits".into(),
    })?;
    Ok(out)
}

/// How [`attach`] treats a registry without a field key yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyNeed {
    /// Create the key file (when the registry has recorded none and the file is absent),
    /// record it, and seal every row still in plaintext (opening a registry normally).
    CreateAndSeal,
    /// Create and record nothing: a registry that recorded no key gets a key in memory only
    /// (a dry run against a registry with nothing sealed yet).
    Ephemeral,
}

/// The registry's recorded field key: the index key's check value, the current data key id, and
/// whether every row is sealed.
fn recorded(db: &Db) -> Result<Option<(String, String, bool)>, RegistryError> {
    db.query_opt(
        "read field key record",
        "SELECT index_check, key_id, sealed_at IS NOT NULL FROM field_key WHERE id = 1",
        &[],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Loads the registry's field key into `db` (see the module docs for where it is):
/// - the registry recorded a key and the file is there: the file must be that key
///   ([`RegistryError::FieldKey`] otherwise, before anything is written with it);
/// - the registry recorded a key and the file is missing: [`RegistryError::FieldKeyMissing`]
///   (the registry's data is sealed; nothing opens without its key);
/// - the registry recorded none: the file is used, or created (mode 0600), and recorded.
///
/// Then, with [`KeyNeed::CreateAndSeal`], every version and review item still in plaintext
/// (a registry of schema 9 or older) is sealed: a registry never stays in plaintext once
/// this build opened it.
pub(crate) fn attach(db: &mut Db, data_dir: &Path, need: KeyNeed) -> Result<(), RegistryError> {
    let path = key_file_path(data_dir);
    let recorded = recorded(db)?;
    let file = match (&recorded, path.exists(), need) {
        (Some(_), false, _) => {
            return Err(RegistryError::FieldKeyMissing {
                location: db.location().to_path_buf(),
                path,
            });
        }
        (_, true, _) => KeyFile::read(&path)?,
        (None, false, KeyNeed::Ephemeral) => KeyFile::generate()?,
        (None, false, KeyNeed::CreateAndSeal) => {
            let file = create_key_file(&path)?;
            if db.dialect() == Dialect::Postgres {
                // A PostgreSQL registry outlives any one machine's --data (often scratch): a
                // key left only there is lost with it, and the data sealed with it.
                tracing::warn!(
                    key_file = %path.display(),
                    "created the field key of PostgreSQL registry {} at {}: every machine of \
                     this registry needs this file (copy it, or mount it and set {KEY_FILE_ENV}); \
                     back it up, without it the holders' data is lost",
                    db.location().display(),
                    path.display()
                );
            }
            file
        }
    };
    let keys = FieldKeys::new(&file).map_err(|e| match e {
        RegistryError::FieldKey { reason, .. } => {
            RegistryError::FieldKey { path: path.clone(), reason }
        }
        other => other,
    })?;
    match &recorded {
        Some((check, key_id, _)) => {
            if check != keys.index_check() {
                return Err(RegistryError::FieldKey {
                    path,
                    reason: format!(
                        "is not the field key of the registry {}",
                        db.location().display()
                    ),
                });
            }
            if !file.data_keys.iter().any(|(id, _)| id == key_id) {
                return Err(RegistryError::FieldKey {
                    path,
                    reason: format!("does not hold the registry's current data key {key_id}"),
                });
            }
        }
        None if need == KeyNeed::CreateAndSeal => {
            let check = keys.index_check().to_owned();
            let key_id = keys.current_id().to_owned();
            let location = db.location().to_path_buf();
            db.write("record field key", |tx| {
                // Another process may have recorded its key first (two machines opening a new
                // PostgreSQL registry with different key files): then ours must be that one.
                match self::recorded(tx)? {
                    Some((other, _, _)) if other != check => Err(RegistryError::FieldKey {
                        path: path.clone(),
                        reason: format!(
                            "is not the field key of the registry {}",
                            location.display()
                        ),
                    }),
                    Some(_) => Ok(()),
                    None => {
                        tx.execute(
                            "record field key",
                            "INSERT INTO field_key (id, index_check, key_id, created_at)
                             VALUES (1, ?1, ?2, ?3)",
                            // Bookkeeping about this database (as `schema_migrations`), not
                            // a registry fact: opening needs no injected clock.
                            &vals![&check, &key_id, time_text(chrono::Utc::now())],
                        )?;
                        Ok(())
                    }
                }
            })?;
        }
        None => {}
    }
    db.set_field_keys(Arc::new(keys));
    let all_sealed = recorded.as_ref().is_some_and(|(_, _, sealed)| *sealed);
    if need == KeyNeed::CreateAndSeal && !all_sealed {
        seal_plaintext_rows(db)?;
    }
    Ok(())
}

/// True when the registry may still hold plaintext rows (a dry run refuses to read them).
pub(crate) fn may_hold_plaintext(db: &Db) -> Result<bool, RegistryError> {
    match recorded(db)? {
        Some((_, _, true)) => Ok(false),
        _ => has_plaintext_rows(db),
    }
}

/// Creates a new key file at `path`, unless another process created one meanwhile (then
/// that one is read): the key is written under a name of this process and linked to `path`,
/// which fails when `path` exists, so processes starting at once agree on one key.
fn create_key_file(path: &Path) -> Result<KeyFile, RegistryError> {
    let file = KeyFile::generate()?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mine = path.with_file_name(format!(".{name}.new-{}", std::process::id()));
    file.write(&mine)?;
    let linked = fs::hard_link(&mine, path);
    // Best effort: the temporary name is ours.
    let _ = fs::remove_file(&mine);
    match linked {
        Ok(()) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => KeyFile::read(path),
        Err(e) => {
            Err(RegistryError::Io { path: path.to_path_buf(), op: "create field key", source: e })
        }
    }
}

/// Rows sealed per transaction when sealing an older registry or rotating.
const SEAL_BATCH: i64 = 500;

/// Whether any version or review item is still in plaintext.
pub(crate) fn has_plaintext_rows(db: &Db) -> Result<bool, RegistryError> {
    db.query_one(
        "look for plaintext rows",
        "SELECT EXISTS (SELECT 1 FROM versions WHERE substr(fields_json, 1, 7) <> 'sealed:')
             OR EXISTS (SELECT 1 FROM review_items WHERE substr(licence_json, 1, 7) <> 'sealed:')
             OR EXISTS (SELECT 1 FROM rejects WHERE substr(message, 1, 7) <> 'sealed:')",
        &[],
        |r| r.get(0),
    )
}

/// Seals every version and review item still in plaintext (the data step of migration 10),
/// in transactions of [`SEAL_BATCH`] rows, so an interrupted run resumes where it stopped;
/// then records that all are (`field_key.sealed_at`), so later opens do not search again
/// (a build that writes plaintext cannot open a registry of this schema).
/// SQLite overwrites the freed plaintext (`secure_delete`) and truncates its write-ahead log
/// afterwards, so no copy of the plaintext is left in the file.
fn seal_plaintext_rows(db: &Db) -> Result<(), RegistryError> {
    if !has_plaintext_rows(db)? {
        return mark_all_sealed(db);
    }
    let sqlite = db.dialect() == Dialect::Sqlite;
    if sqlite {
        db.batch("overwrite freed pages", "PRAGMA secure_delete = ON")?;
    }
    loop {
        let sealed = db.write("seal personal data", |tx| {
            let keys = tx.field_keys()?;
            let versions = tx.query(
                "read plaintext versions",
                "SELECT id, identifier, content_hash, holder_code, holder_name, fields_json
                 FROM versions WHERE substr(fields_json, 1, 7) <> 'sealed:'
                 ORDER BY id LIMIT ?1",
                &vals![SEAL_BATCH],
                |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<String>(1)?,
                        get_hash16(r, 2)?,
                        r.get::<String>(3)?,
                        r.get::<String>(4)?,
                        r.get::<String>(5)?,
                    ))
                },
            )?;
            for (id, identifier, hash, holder_code, holder_name, fields_json) in &versions {
                let sealed = keys.seal_json(
                    &version_aad(identifier),
                    &SealedVersion {
                        content_hash: hex::encode(hash),
                        holder_code: holder_code.clone(),
                        holder_name: holder_name.clone(),
                        fields_json: fields_json.clone(),
                    },
                )?;
                tx.execute(
                    "seal version",
                    "UPDATE versions SET content_hash = ?1, holder_code = ?2, holder_name = '',
                         fields_json = ?3
                     WHERE id = ?4",
                    &vals![
                        hex::encode(keys.content_hash(hash)),
                        keys.holder_index(holder_code),
                        sealed,
                        *id
                    ],
                )?;
            }
            let items = tx.query(
                "read plaintext review items",
                "SELECT id, identifier, run_id, content_hash, holder_code, holder_name, licence_json
                 FROM review_items WHERE substr(licence_json, 1, 7) <> 'sealed:'
                 ORDER BY id LIMIT ?1",
                &vals![SEAL_BATCH],
                |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<String>(1)?,
                        r.get::<i64>(2)?,
                        get_hash16(r, 3)?,
                        r.get::<String>(4)?,
                        r.get::<String>(5)?,
                        r.get::<String>(6)?,
                    ))
                },
            )?;
            for (id, identifier, run, hash, holder_code, holder_name, licence_json) in &items {
                let sealed = keys.seal_json(
                    &review_aad(identifier, *run),
                    &SealedReview {
                        content_hash: hex::encode(hash),
                        holder_code: holder_code.clone(),
                        holder_name: holder_name.clone(),
                        licence_json: licence_json.clone(),
                    },
                )?;
                tx.execute(
                    "seal review item",
                    "UPDATE review_items SET content_hash = ?1, holder_code = ?2,
                         holder_name = '', licence_json = ?3
                     WHERE id = ?4",
                    &vals![
                        hex::encode(keys.content_hash(hash)),
                        keys.holder_index(holder_code),
                        sealed,
                        *id
                    ],
                )?;
            }
            let rejects = tx.query(
                "read plaintext reject messages",
                "SELECT id, run_id, file, line, field, message FROM rejects
                 WHERE substr(message, 1, 7) <> 'sealed:' ORDER BY id LIMIT ?1",
                &vals![SEAL_BATCH],
                |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        reject_aad(
                            r.get(1)?,
                            &r.get::<String>(2)?,
                            r.get(3)?,
                            &r.get::<String>(4)?,
                        ),
                        r.get::<String>(5)?,
                    ))
                },
            )?;
            for (id, aad, message) in &rejects {
                tx.execute(
                    "seal reject message",
                    "UPDATE rejects SET message = ?1 WHERE id = ?2",
                    &vals![keys.seal(aad, message.as_bytes())?, *id],
                )?;
            }
            Ok(versions.len() + items.len() + rejects.len())
        })?;
        if sealed == 0 {
            break;
        }
    }
    if sqlite {
        db.batch("rewrite without free pages", "VACUUM")?;
        db.batch("drop plaintext from the write-ahead log", "PRAGMA wal_checkpoint(TRUNCATE)")?;
    }
    mark_all_sealed(db)
}

fn mark_all_sealed(db: &Db) -> Result<(), RegistryError> {
    db.write("record all rows sealed", |tx| {
        tx.execute(
            "record all rows sealed",
            // Bookkeeping about this database, as `created_at`.
            "UPDATE field_key SET sealed_at = ?1 WHERE id = 1 AND sealed_at IS NULL",
            &vals![time_text(chrono::Utc::now())],
        )?;
        Ok(())
    })
}

/// Opens a version's sealed fields (`fields_json`) into the row, or leaves a plaintext row
/// (a dry run of a registry not sealed yet) as it is.
pub(crate) fn open_version(
    db: &Db,
    identifier: &str,
    stored: &str,
) -> Result<Option<SealedVersion>, RegistryError> {
    if !stored.starts_with(SEALED_PREFIX) {
        return Ok(None);
    }
    let keys = db.field_keys()?;
    keys.open_json(&version_aad(identifier), stored).map(Some).map_err(|reason| {
        RegistryError::Sealed {
            location: db.location().to_path_buf(),
            row: format!("version {identifier}"),
            reason,
        }
    })
}

/// Opens a review item's sealed licence, as [`open_version`] does.
pub(crate) fn open_review(
    db: &Db,
    identifier: &str,
    run: i64,
    stored: &str,
) -> Result<Option<SealedReview>, RegistryError> {
    if !stored.starts_with(SEALED_PREFIX) {
        return Ok(None);
    }
    let keys = db.field_keys()?;
    keys.open_json(&review_aad(identifier, run), stored).map(Some).map_err(|reason| {
        RegistryError::Sealed {
            location: db.location().to_path_buf(),
            row: format!("review item of {identifier}"),
            reason,
        }
    })
}

/// A decision input as the registry stores and compares it: keyed content hash, holder blind
/// index.
pub(crate) fn keyed_input(keys: &FieldKeys, input: &DecisionInput) -> DecisionInput {
    DecisionInput {
        content_hash: keys.content_hash(&input.content_hash),
        holder_code: keys.holder_index(&input.holder_code),
        ..input.clone()
    }
}

/// A load item as the registry stores it: its input keyed, and, when it creates a version,
/// its holder and fields sealed into `fields_json` for the new version's identifier.
pub(crate) fn protect_item(keys: &FieldKeys, item: LoadItem) -> Result<LoadItem, RegistryError> {
    let sealed = match item.decision.new_version() {
        Some(identifier) => Some(keys.seal_json(
            &version_aad(&identifier.to_string()),
            &SealedVersion {
                content_hash: hex::encode(item.input.content_hash),
                holder_code: item.input.holder_code.clone(),
                holder_name: item.holder_name.clone(),
                fields_json: item.fields_json.clone(),
            },
        )?),
        None => None,
    };
    Ok(LoadItem {
        input: keyed_input(keys, &item.input),
        holder_name: String::new(),
        fields_json: sealed.unwrap_or_else(|| "sealed:".to_owned()),
        ..item
    })
}

/// What [`Registry::rotate_field_key`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// The data keys retired (their ids).
    pub retired: Vec<String>,
    /// The new current data key's id.
    pub current: String,
    /// Versions, review items and reject messages sealed again with the new key.
    pub versions: u64,
    pub review_items: u64,
    pub rejects: u64,
    /// True when an interrupted rotation was finished (its new key was in the file already).
    pub resumed: bool,
}

impl super::Registry {
    /// The field key file this registry was opened with (see [`key_file_path`]).
    pub fn field_key_path(&self) -> PathBuf {
        key_file_path(&self.data_dir)
    }

    /// Rotates the data key (`elicence secrets rotate`): a new data key goes first into the key
    /// file, the old one stays there until every sealed value is sealed again with the new one
    /// (in transactions of a few hundred rows), then the old one is removed from the file and
    /// the rotation is audited (`field_key_rotated`). Interrupted, it is resumed by running it
    /// again: a key file with more than one data key is a rotation under way. The index key
    /// (keyed hashes) is not rotated (see the module docs). Run it while no other process
    /// writes to the registry: one that loaded the old key would seal with it meanwhile.
    ///
    /// Fails with [`RegistryError::FieldKey`] when the key file cannot be read or written, or
    /// [`RegistryError::Sealed`] when a stored value does not open (nothing of that batch is
    /// changed).
    pub fn rotate_field_key(
        &mut self,
        operator: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<RotationReport, RegistryError> {
        let path = key_file_path(&self.data_dir);
        let mut file = KeyFile::read(&path)?;
        let resumed = file.data_keys.len() > 1;
        if !resumed {
            file.data_keys.insert(0, new_data_key()?);
            file.write(&path)?;
        }
        let current = file.current_id().to_owned();
        let retired: Vec<String> =
            file.data_keys.iter().skip(1).map(|(id, _)| id.clone()).collect();
        self.db.set_field_keys(Arc::new(FieldKeys::new(&file)?));
        self.db.write("record new data key", |tx| {
            tx.execute(
                "record new data key",
                "UPDATE field_key SET key_id = ?1 WHERE id = 1",
                &vals![&current],
            )?;
            Ok(())
        })?;
        let pattern = format!("{SEALED_V1}{current}:%");
        let mut counts = [0u64; 3];
        for (n, (table, column, aad_of)) in [
            ("versions", "fields_json", "identifier"),
            ("review_items", "licence_json", "identifier, run_id"),
            ("rejects", "message", "run_id, file, line, field"),
        ]
        .into_iter()
        .enumerate()
        {
            loop {
                let done = self.db.write("seal again with the new data key", |tx| {
                    let keys = tx.field_keys()?;
                    let rows = tx.query(
                        "read values sealed with an old key",
                        &format!(
                            "SELECT id, {column}, {aad_of} FROM {table}
                             WHERE substr({column}, 1, 7) = 'sealed:' AND {column} NOT LIKE ?1
                             ORDER BY id LIMIT ?2"
                        ),
                        &vals![&pattern, SEAL_BATCH],
                        |r| {
                            let aad = match table {
                                "versions" => version_aad(&r.get::<String>(2)?),
                                "review_items" => review_aad(&r.get::<String>(2)?, r.get(3)?),
                                _ => reject_aad(
                                    r.get(2)?,
                                    &r.get::<String>(3)?,
                                    r.get(4)?,
                                    &r.get::<String>(5)?,
                                ),
                            };
                            Ok((r.get::<i64>(0)?, r.get::<String>(1)?, aad))
                        },
                    )?;
                    for (id, sealed, aad) in &rows {
                        let plain =
                            keys.open(aad, sealed).map_err(|reason| RegistryError::Sealed {
                                location: tx.location().to_path_buf(),
                                row: format!("{table} row {id}"),
                                reason,
                            })?;
                        tx.execute(
                            "seal again",
                            &format!("UPDATE {table} SET {column} = ?1 WHERE id = ?2"),
                            &vals![keys.seal(aad, &plain)?, *id],
                        )?;
                    }
                    Ok(rows.len() as u64)
                })?;
                if done == 0 {
                    break;
                }
                counts[n] += done;
            }
        }
        let report = RotationReport {
            retired,
            current,
            versions: counts[0],
            review_items: counts[1],
            rejects: counts[2],
            resumed,
        };
        self.db.write("audit key rotation", |tx| {
            super::audit::append(
                tx,
                &super::AuditEntry {
                    action: super::audit::action::FIELD_KEY_ROTATED.to_owned(),
                    operator: operator.to_owned(),
                    at,
                    subject: "field_key".to_owned(),
                    reason: None,
                    details: serde_json::json!({
                        "retired": report.retired,
                        "current": report.current,
                        "versions": report.versions,
                        "review_items": report.review_items,
                        "rejects": report.rejects,
                        "resumed": report.resumed,
                    }),
                },
            )?;
            Ok(())
        })?;
        // Last: the old key leaves the file only when nothing is sealed with it.
        file.data_keys.truncate(1);
        file.write(&path)?;
        self.db.set_field_keys(Arc::new(FieldKeys::new(&file)?));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> FieldKeys {
        FieldKeys::new(&KeyFile::generate().unwrap()).unwrap()
    }

    #[test]
    fn sealed_values_open_only_in_their_row_and_with_their_key() {
        let k = keys();
        let sealed = k.seal("versions\x1fA", b"220183198304050351").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("220183"));
        assert_eq!(k.open("versions\x1fA", &sealed).unwrap(), b"220183198304050351");
        assert_eq!(k.open("versions\x1fB", &sealed), Err(SealError::Tampered));
        let other = keys();
        assert!(matches!(other.open("versions\x1fA", &sealed), Err(SealError::UnknownKey { .. })));
        let mut altered = sealed.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(k.open("versions\x1fA", &altered).is_err());
        assert_eq!(k.open("x", "{}"), Err(SealError::Malformed));
        assert_eq!(k.open("x", "sealed:v1:zz"), Err(SealError::Malformed));
        assert_ne!(sealed, k.seal("versions\x1fA", b"220183198304050351").unwrap(), "nonce");
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets").join(KEY_FILE);
        let file = KeyFile::generate().unwrap();
        file.write(&path).unwrap();
        assert_eq!(KeyFile::read(&path).unwrap(), file);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        fs::write(&path, "index 00\n").unwrap();
        let err = KeyFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    /// A registry made by the previous schema (9), with a plaintext version and a staged
    /// review item: opening it creates the key, seals both (no citizen ID left in any column
    /// or in the file's bytes), keys the hashes, and reads back what was stored.
    #[test]
    fn a_schema_9_registry_is_sealed_when_opened() {
        const ID: &str = "220183198304050351";
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(&data).unwrap();
        let db_path = data.join(super::super::DB_FILE);
        let fields = format!(r#"{{"holder_code":"{ID}","holder_name":"王建军"}}"#);
        let hash = "0123456789abcdef0123456789abcdef";
        {
            let conn = rusqlite::Connection::open(&db_path).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                     applied_at TEXT NOT NULL) STRICT;",
            )
            .unwrap();
            for m in super::super::schema::MIGRATIONS.iter().filter(|m| m.version <= 9) {
                conn.execute_batch(m.sqlite).unwrap();
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?1, ?2, 't')",
                    rusqlite::params![m.version, m.name],
                )
                .unwrap();
            }
            conn.execute_batch(&format!(
                "INSERT INTO runs (id, pipeline, operator, started_at) VALUES (1, 'p', 'o', 't');
                 INSERT INTO licences (id, type_code, issuer_code, printed_no, created_at)
                     VALUES (1, 't', 'i', 'n', '2026-01-01T00:00:00Z');
                 INSERT INTO versions (licence_id, version, identifier, content_hash, row_status,
                     holder_code, holder_name, issue_date, fields_json, source, created_at)
                     VALUES (1, 1, 'v1', '{hash}', 'valid', '{ID}', '王建军', '2020-01-01',
                             '{fields}', 's', '2026-01-01T00:00:00Z');
                 INSERT INTO review_items (run_id, type_code, issuer_code, printed_no, action,
                     identifier, content_hash, row_status, holder_code, holder_name, issue_date,
                     single_instance, licence_json, source, staged_by, staged_at, state)
                     VALUES (1, 't', 'i', 'n', 'issue', 'v2', '{hash}', 'valid', '{ID}',
                             '王建军', '2020-01-01', 0, '{{\"holder\":\"{ID}\"}}', 's', 'o',
                             '2026-01-01T00:00:00Z', 'pending');
                 INSERT INTO rejects (run_id, file, line, field, rule, message)
                     VALUES (1, 'in.csv', 3, '身份证号', 'check_digit', '15-digit ID {ID}: bad');"
            ))
            .unwrap();
        }
        let registry = super::super::Registry::open(&data).unwrap();
        assert!(data.join(SECRETS_DIR).join(KEY_FILE).exists());
        let v = registry.licence_by_identifier("v1").unwrap().unwrap();
        assert_eq!((v.holder_code.as_str(), v.holder_name.as_str()), (ID, "王建军"));
        assert_eq!(v.fields_json, fields);
        assert_eq!(hex::encode(v.content_hash), hash);
        let item = registry.review_item(1).unwrap().unwrap();
        assert_eq!(item.holder_code, ID);
        assert_eq!(item.licence_json, format!(r#"{{"holder":"{ID}"}}"#));
        drop(registry);

        let conn = rusqlite::Connection::open(&db_path).unwrap();
        let (stored_hash, stored_holder, stored_fields): (String, String, String) = conn
            .query_row("SELECT content_hash, holder_code, fields_json FROM versions", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_ne!(stored_hash, hash, "the content hash is keyed");
        assert!(stored_holder.starts_with('#'));
        assert!(stored_fields.starts_with(SEALED_PREFIX));
        let leaks: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM versions WHERE holder_code || holder_name
                             || fields_json LIKE ?1 OR holder_name <> '')
                      + (SELECT COUNT(*) FROM review_items WHERE holder_code || holder_name
                             || licence_json LIKE ?1 OR holder_name <> '')
                      + (SELECT COUNT(*) FROM rejects WHERE message LIKE ?1)",
                [format!("%{ID}%")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leaks, 0);
        // Sealed once: back to plaintext is refused by the schema.
        assert!(conn.execute("UPDATE versions SET fields_json = '{}'", []).is_err());
        drop(conn);
        let bytes = fs::read(&db_path).unwrap();
        assert!(
            !bytes.windows(ID.len()).any(|w| w == ID.as_bytes()),
            "no plaintext left in the file"
        );
    }

    #[test]
    fn keyed_hashes_are_stable_and_differ_between_keys() {
        let file = KeyFile::generate().unwrap();
        let (a, b) = (FieldKeys::new(&file).unwrap(), FieldKeys::new(&file).unwrap());
        assert_eq!(a.content_hash(&[7; 16]), b.content_hash(&[7; 16]));
        assert_eq!(a.holder_index("220183198304050351"), b.holder_index("220183198304050351"));
        assert_eq!(a.holder_index("220183198304050351").len(), 33);
        let c = keys();
        assert_ne!(a.content_hash(&[7; 16]), c.content_hash(&[7; 16]));
        assert_eq!(a.holder_index(&a.holder_index("X")), a.holder_index("X"), "idempotent");
    }
}
