//! The content-addressed store: every PDF, XML, OFD and archive image (存档副本) the registry
//! references, kept under the SHA-256 of its bytes at the key `ab/cd/<sha256>.<ext>`, in a folder
//! (`<data dir>/store/` by default, or `--store file:PATH`) or in an S3-compatible bucket
//! (`--store s3://bucket/prefix`).
//!
//! This module owns the keys, where a store is ([`StoreLocation`], `--store` /
//! `ELICENCE_STORE`) and the one interface over both kinds ([`Store`]): put a chunk's files with
//! one durability point, read a file back with its hash checked, list what is there. `folder`
//! writes atomically into a folder; `bucket` PUTs objects with SHA-256 checksums. The store
//! knows nothing of licences: the registry database says which hashes are referenced, and
//! [`crate::registry::Registry::store_check`] compares the two. Objects are immutable and never
//! deleted: one written by a run that was killed before its commit stays as an orphan, which the
//! check lists but does not count as a licence.

mod bucket;
mod folder;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub(crate) use folder::{create_dir_durable, sync_dir, write_atomic};

use bucket::BucketStore;
use folder::FolderStore;

/// What a stored file is, which fixes its extension and its role for a licence version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// The signed PDF e-licence.
    Pdf,
    /// The signed XML e-licence (GB/T 36903 metadata).
    Xml,
    /// A decoded and verified scan of the paper licence (存档副本), stored as PNG. Never the
    /// e-licence itself.
    Archive,
    /// The sealed OFD e-licence (GB/T 33190 with a GB/T 38540 seal).
    Ofd,
    /// The files of one committed chunk packed into one object (`segments` in the registry
    /// says which file is where). Not an artefact of a licence: never a version's file.
    Segment,
}

impl FileKind {
    /// The artefacts a licence version may have (every kind but [`FileKind::Segment`]).
    pub const ALL: [FileKind; 4] = [FileKind::Pdf, FileKind::Xml, FileKind::Archive, FileKind::Ofd];

    /// The extension of the stored file, without the dot.
    pub fn ext(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Xml => "xml",
            FileKind::Archive => "png",
            FileKind::Ofd => "ofd",
            FileKind::Segment => "seg",
        }
    }

    /// The role name as stored in the registry (`pdf`, `xml`, `archive`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Xml => "xml",
            FileKind::Archive => "archive",
            FileKind::Ofd => "ofd",
            FileKind::Segment => "segment",
        }
    }

    /// The kind for a role name as stored in the registry (`segment` included).
    pub fn from_role(role: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().chain([FileKind::Segment]).find(|k| k.as_str() == role)
    }

    /// The kind for a stored object's extension (segments included).
    pub fn from_ext(ext: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().chain([FileKind::Segment]).find(|k| k.ext() == ext)
    }
}

/// A file in the store: its kind, lower-case hex SHA-256 and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredFile {
    pub kind: FileKind,
    pub sha256: String,
    pub size: u64,
}

/// A store operation that failed, naming the file or object.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: {op}", path = path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// A file read back does not hash to its name.
    #[error("{path}: content has SHA-256 {actual}, expected {expected}", path = path.display())]
    Altered { path: PathBuf, expected: String, actual: String },
    /// A hash that is not 64 lower-case hex digits.
    #[error("not a SHA-256 hex digest: {found:?}")]
    BadHash { found: String },
    /// A request to the bucket failed (refused, unreachable, not found), naming the object
    /// (`s3://bucket/prefix/ab/cd/<sha256>.<ext>`) or the bucket.
    #[error("{object}: {op}")]
    Object {
        object: String,
        op: &'static str,
        #[source]
        source: object_store::Error,
    },
    /// `--store` / `ELICENCE_STORE` that is neither a folder, `file:PATH` nor `s3://bucket/prefix`.
    #[error("store {spec:?}: {reason}")]
    BadLocation { spec: String, reason: String },
    /// A listing that should be sorted by key (ListObjectsV2, the sorted folder walk, the
    /// registry's files by hash) went backwards: comparing two sorted listings page by page
    /// would be wrong, so nothing is concluded from it.
    #[error("{listing}: not sorted by key ({next} after {previous})")]
    Unsorted { listing: String, previous: String, next: String },
    /// The threads that drive requests to the bucket could not be started.
    #[error("cannot start the object-store client threads")]
    Runtime {
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// True for a store that is named or configured wrongly (`--store`, the `AWS_*`
    /// environment), as opposed to one that failed while in use.
    pub fn is_configuration(&self) -> bool {
        matches!(self, StoreError::BadLocation { .. } | StoreError::Object { op: CONFIGURE_OP, .. })
    }
}

/// The operation a client configuration error names.
pub(crate) const CONFIGURE_OP: &str = "configure the S3 client from the AWS_* environment";

/// What [`Store::check_file`] found for one expected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Present,
    Missing,
    Altered { actual: String },
}

/// A file or object found in the store by [`Store::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEntry {
    /// Where it is: the file's path, or the object's `s3://` URL.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// `(sha256, kind)` when the file has a store name at the right key; `None` for
    /// temporary leftovers and strays.
    pub content: Option<(String, FileKind)>,
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// True for 64 lower-case hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The key of a stored file, relative to the store's root: `ab/cd/<sha256>.<ext>`.
///
/// Fails with [`StoreError::BadHash`] unless `sha256` is 64 lower-case hex digits.
pub fn key_of(sha256: &str, kind: FileKind) -> Result<String, StoreError> {
    if !is_sha256_hex(sha256) {
        return Err(StoreError::BadHash { found: sha256.to_owned() });
    }
    let (a, rest) = sha256.split_at(2);
    let b = rest.get(..2).unwrap_or_default();
    Ok(format!("{a}/{b}/{sha256}.{}", kind.ext()))
}

/// `(sha256, kind)` when `key` is exactly the key [`key_of`] gives for them.
pub fn parse_key(key: &str) -> Option<(String, FileKind)> {
    let name = key.rsplit('/').next()?;
    let (hash, ext) = name.split_once('.')?;
    let kind = FileKind::from_ext(ext)?;
    let expected = key_of(hash, kind).ok()?;
    (expected == key).then(|| (hash.to_owned(), kind))
}

/// A bucket and the prefix of the store's keys inside it (`s3://bucket/prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl BucketUrl {
    /// Parses `s3://bucket[/prefix]`; `None` for another scheme. Fails on an empty bucket
    /// name or an empty, `.` or `..` segment in the prefix.
    fn parse(spec: &str) -> Option<Result<BucketUrl, String>> {
        let rest = spec.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        if bucket.is_empty()
            || !bucket.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Some(Err(format!("bucket name {bucket:?} is not valid")));
        }
        if !prefix.is_empty() && prefix.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
            return Some(Err(format!("prefix {prefix:?} has an empty, . or .. segment")));
        }
        Some(Ok(BucketUrl { bucket: bucket.to_owned(), prefix: prefix.to_owned() }))
    }

    /// The `s3://` URL of `key` in this bucket and prefix.
    pub fn url_of(&self, key: &str) -> String {
        match self.prefix.as_str() {
            "" => format!("s3://{}/{key}", self.bucket),
            prefix => format!("s3://{}/{prefix}/{key}", self.bucket),
        }
    }
}

impl fmt::Display for BucketUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "s3://{}", self.bucket),
            prefix => write!(f, "s3://{}/{prefix}", self.bucket),
        }
    }
}

/// Where a store is: `--store` / `ELICENCE_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A folder (`<data dir>/store` by default, `file:PATH`, or a plain path).
    Folder(PathBuf),
    /// An S3-compatible bucket, configured from the standard `AWS_*` environment
    /// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`).
    Bucket(BucketUrl),
}

impl StoreLocation {
    /// The store `spec` names, or `data_dir/store` when it is `None` or empty.
    ///
    /// Fails with [`StoreError::BadLocation`] for another URL scheme or a malformed
    /// `s3://` URL.
    pub fn parse(spec: Option<&str>, data_dir: &Path) -> Result<StoreLocation, StoreError> {
        let bad =
            |spec: &str, reason: String| StoreError::BadLocation { spec: spec.into(), reason };
        let Some(spec) = spec.filter(|s| !s.is_empty()) else {
            return Ok(StoreLocation::Folder(data_dir.join(super::STORE_DIR)));
        };
        if let Some(parsed) = BucketUrl::parse(spec) {
            return parsed.map(StoreLocation::Bucket).map_err(|reason| bad(spec, reason));
        }
        if let Some(path) = spec.strip_prefix("file://").or_else(|| spec.strip_prefix("file:")) {
            if path.is_empty() {
                return Err(bad(spec, "file: needs a path".into()));
            }
            return Ok(StoreLocation::Folder(PathBuf::from(path)));
        }
        if spec.contains("://") {
            return Err(bad(spec, "expected a folder, file:PATH or s3://bucket/prefix".into()));
        }
        Ok(StoreLocation::Folder(PathBuf::from(spec)))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Folder(path) => write!(f, "{}", path.display()),
            StoreLocation::Bucket(url) => url.fmt(f),
        }
    }
}

/// The content-addressed store: a folder or a bucket behind one interface. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    Folder(FolderStore),
    Bucket(BucketStore),
}

impl Store {
    /// A store in the folder `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { backend: Backend::Folder(FolderStore::new(root.into())) }
    }

    /// The store at `location`. A folder is created on the first write; a bucket must exist.
    ///
    /// Fails with [`StoreError::Object`] when the `AWS_*` configuration is incomplete or
    /// invalid, or [`StoreError::Runtime`].
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        Ok(match location {
            StoreLocation::Folder(root) => Store::new(root.clone()),
            StoreLocation::Bucket(url) => {
                Store { backend: Backend::Bucket(BucketStore::open(url)?) }
            }
        })
    }

    /// Where this store is.
    pub fn location(&self) -> StoreLocation {
        match &self.backend {
            Backend::Folder(f) => StoreLocation::Folder(f.root().to_path_buf()),
            Backend::Bucket(b) => StoreLocation::Bucket(b.url().clone()),
        }
    }

    /// The folder of a folder store; `None` for a bucket.
    pub fn folder(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Folder(f) => Some(f.root()),
            Backend::Bucket(_) => None,
        }
    }

    /// The path relative to the root for a hash and kind: `ab/cd/<sha256>.<ext>`.
    ///
    /// Fails with [`StoreError::BadHash`] unless `sha256` is 64 lower-case hex digits.
    pub fn relative_path(sha256: &str, kind: FileKind) -> Result<PathBuf, StoreError> {
        key_of(sha256, kind).map(PathBuf::from)
    }

    /// Where a stored file is (whether or not it exists): its absolute path in a folder, its
    /// `s3://` URL in a bucket.
    pub fn path_of(&self, sha256: &str, kind: FileKind) -> Result<PathBuf, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.path_of(sha256, kind),
            Backend::Bucket(b) => Ok(PathBuf::from(b.url().url_of(&key_of(sha256, kind)?))),
        }
    }

    /// Stores `bytes` under their SHA-256 and returns what was stored (see
    /// [`Store::put_many`]).
    pub fn put(&self, kind: FileKind, bytes: &[u8]) -> Result<StoredFile, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.put(kind, bytes),
            Backend::Bucket(b) => b.put(kind, bytes),
        }
    }

    /// Stores the concatenation of `parts` as one object of `kind` (a segment) under its
    /// SHA-256 and returns it; durable when this returns, as [`Store::put_many`]. A folder
    /// writes the parts as they are (never the whole in memory once more).
    ///
    /// Fails as [`Store::put_many`] does.
    pub fn put_parts(&self, kind: FileKind, parts: &[&[u8]]) -> Result<StoredFile, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.put_parts(kind, parts),
            Backend::Bucket(b) => b.put_parts(kind, parts),
        }
    }

    /// Stores many files, for a chunk of licences, and returns what was stored, in order. When
    /// this returns, every file is durable where the store keeps it (folder: after one
    /// `syncfs`; bucket: every PUT, with its SHA-256 checksum, answered 200), so the registry
    /// rows that reference them may be committed. A file already present with the right
    /// content counts as written; one present with other content (damaged) is replaced.
    ///
    /// Fails on the first file that cannot be written, naming it; then nothing may be
    /// committed (files already written stay as orphans, harmless because content-addressed).
    pub fn put_many(&self, files: &[(FileKind, &[u8])]) -> Result<Vec<StoredFile>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.put_many(files),
            Backend::Bucket(b) => b.put_many(files),
        }
    }

    /// Reads a stored file and checks that its content hashes to `sha256`.
    ///
    /// Fails with [`StoreError::Io`] or [`StoreError::Object`] (missing or unreadable) or
    /// [`StoreError::Altered`].
    pub fn read(&self, sha256: &str, kind: FileKind) -> Result<Vec<u8>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.read(sha256, kind),
            Backend::Bucket(b) => b.read(sha256, kind),
        }
    }

    /// The `size` bytes at `offset` of the segment `segment` (its SHA-256), checked against
    /// `sha256`, the SHA-256 of the file packed there.
    ///
    /// Fails with [`StoreError::Io`] or [`StoreError::Object`] (missing, unreadable, shorter
    /// than the range) or [`StoreError::Altered`] (naming the segment).
    pub fn read_range(
        &self,
        segment: &str,
        offset: u64,
        size: u64,
        sha256: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let bytes = match &self.backend {
            Backend::Folder(f) => f.read_range(segment, offset, size)?,
            Backend::Bucket(b) => b.read_range(segment, offset, size)?,
        };
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(StoreError::Altered {
                path: self.path_of(segment, FileKind::Segment)?,
                expected: sha256.to_owned(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// [`Store::read`] of many files, in order (a bucket GETs several at once).
    pub fn read_many(&self, files: &[(&str, FileKind)]) -> Result<Vec<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => {
                files.iter().map(|(sha256, kind)| f.read(sha256, *kind)).collect()
            }
            Backend::Bucket(b) => b.read_many(files),
        }
    }

    /// Whether the file for `sha256` is present with the right content (read and re-hashed).
    pub fn check_file(&self, sha256: &str, kind: FileKind) -> Result<FileState, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.check_file(sha256, kind),
            Backend::Bucket(b) => b.check_file(sha256, kind),
        }
    }

    /// [`Store::check_file`] of many files, in order (a bucket GETs several at once, each body
    /// hashed as it streams in, none kept).
    pub fn check_many(&self, files: &[(&str, FileKind)]) -> Result<Vec<FileState>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => {
                files.iter().map(|(sha256, kind)| f.check_file(sha256, *kind)).collect()
            }
            Backend::Bucket(b) => b.check_many(files),
        }
    }

    /// Every file or object in the store with its size, one at a time, sorted by key
    /// (`ab/cd/<sha256>.<ext>`, so by hash and then extension for the store's own names; a
    /// bucket's ListObjectsV2 order). Memory is bounded by one listing page (a bucket) or one
    /// folder's entries (a folder: at most 256 sub-folders, or the files of one leaf folder).
    /// An absent root folder is an empty store.
    ///
    /// Fails (as an item) with [`StoreError::Io`] or [`StoreError::Object`] when a folder or
    /// a listing page cannot be read.
    pub fn entries(&self) -> StoreEntries<'_> {
        match &self.backend {
            Backend::Folder(f) => Box::new(f.entries()),
            Backend::Bucket(b) => Box::new(b.entries()),
        }
    }

    /// Every entry of [`Store::entries`], collected (for small stores and tests).
    pub fn walk(&self) -> Result<Vec<StoreEntry>, StoreError> {
        self.entries().collect()
    }
}

/// The entries of a store, sorted by key, streamed ([`Store::entries`]).
pub type StoreEntries<'a> = Box<dyn Iterator<Item = Result<StoreEntry, StoreError>> + 'a>;

/// One step of [`join_sorted`]: a referenced file and the store's entry under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// Referenced and present under its key, with the size the listing gives.
    Both { file: StoredFile, listed_size: u64 },
    /// Referenced, not in the listing.
    Referenced(StoredFile),
    /// In the listing, not referenced: an orphan with a store name, or a stray (`content`
    /// `None`: a temporary leftover, a foreign file).
    Listed(StoreEntry),
}

/// Walks two listings sorted by key side by side, like a merge join, and hands each key to
/// `visit` once: `referenced` (the registry's files, sorted by hash; the kinds of one hash in
/// any order) against `listing` (a store's [`Store::entries`]). Memory is bounded by one item
/// of each side (plus the files of one hash), so two listings of millions of keys are compared
/// without holding either.
///
/// Fails with the first error of either side or of `visit`, or with [`StoreError::Unsorted`]
/// when either side is not sorted (then no conclusion would be right).
pub fn join_sorted<E: From<StoreError>>(
    referenced: impl IntoIterator<Item = Result<StoredFile, E>>,
    listing: impl IntoIterator<Item = Result<StoreEntry, StoreError>>,
    mut visit: impl FnMut(Joined) -> Result<(), E>,
) -> Result<(), E> {
    let mut files = HashGroups::new(referenced.into_iter());
    let mut listing = listing.into_iter();
    let mut previous: Option<(String, &'static str)> = None;
    // The next listed entry with a store name; strays are visited as they come.
    let mut next_listed = |visit: &mut dyn FnMut(Joined) -> Result<(), E>| -> Result<_, E> {
        for entry in listing.by_ref() {
            let entry = entry?;
            let Some((sha256, kind)) = &entry.content else {
                visit(Joined::Listed(entry))?;
                continue;
            };
            let key = (sha256.clone(), kind.ext());
            if let Some(prev) = previous.as_ref().filter(|p| **p >= key) {
                return Err(StoreError::Unsorted {
                    listing: entry.path.display().to_string(),
                    previous: format!("{}.{}", prev.0, prev.1),
                    next: format!("{}.{}", key.0, key.1),
                }
                .into());
            }
            previous = Some(key);
            return Ok(Some(entry));
        }
        Ok(None)
    };
    let mut file = files.next()?;
    let mut listed = next_listed(&mut visit)?;
    loop {
        match (file.take(), listed.take()) {
            (None, None) => return Ok(()),
            (Some(f), None) => {
                visit(Joined::Referenced(f))?;
                file = files.next()?;
            }
            (None, Some(entry)) => {
                visit(Joined::Listed(entry))?;
                listed = next_listed(&mut visit)?;
            }
            (Some(f), Some(entry)) => {
                let listed_key = entry.content.as_ref().map(|(h, k)| (h.as_str(), k.ext()));
                match Some((f.sha256.as_str(), f.kind.ext())).cmp(&listed_key) {
                    std::cmp::Ordering::Less => {
                        visit(Joined::Referenced(f))?;
                        file = files.next()?;
                        listed = Some(entry);
                    }
                    std::cmp::Ordering::Greater => {
                        visit(Joined::Listed(entry))?;
                        listed = next_listed(&mut visit)?;
                        file = Some(f);
                    }
                    std::cmp::Ordering::Equal => {
                        visit(Joined::Both { file: f, listed_size: entry.size })?;
                        file = files.next()?;
                        listed = next_listed(&mut visit)?;
                    }
                }
            }
        }
    }
}

/// Referenced files sorted by hash, regrouped so that the files of one hash come by extension
/// (the listing's order; a registry sorts them by role name), and checked to be sorted.
struct HashGroups<I: Iterator> {
    inner: std::iter::Peekable<I>,
    group: std::collections::VecDeque<StoredFile>,
    last: Option<String>,
}

impl<E: From<StoreError>, I: Iterator<Item = Result<StoredFile, E>>> HashGroups<I> {
    fn new(inner: I) -> Self {
        HashGroups { inner: inner.peekable(), group: Default::default(), last: None }
    }

    fn next(&mut self) -> Result<Option<StoredFile>, E> {
        if self.group.is_empty() {
            let Some(first) = self.inner.next().transpose()? else { return Ok(None) };
            if let Some(last) = self.last.as_ref().filter(|l| **l >= first.sha256) {
                return Err(StoreError::Unsorted {
                    listing: "the registry's files".to_owned(),
                    previous: last.clone(),
                    next: first.sha256,
                }
                .into());
            }
            while let Some(Ok(next)) = self.inner.peek() {
                if next.sha256 != first.sha256 {
                    break;
                }
                if let Some(Ok(next)) = self.inner.next() {
                    self.group.push_back(next);
                }
            }
            self.last = Some(first.sha256.clone());
            self.group.push_back(first);
            self.group.make_contiguous().sort_by_key(|f| f.kind.ext());
        }
        Ok(self.group.pop_front())
    }
}

/// What [`copy_missing`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Files copied (read from the source with their hash checked, then written).
    pub copied: u64,
    /// Files the target already had under their key with the right size.
    pub present: u64,
}

/// Files copied per batch: read together, then written with one durability point.
const COPY_BATCH: usize = 64;

/// Copies into `target` every file of `files` it lacks, from `source`: the target's listing
/// and `files` (sorted by hash, as [`join_sorted`] needs) compared side by side, then, for each
/// file not there with its size, a read from the source with its hash checked and a write (PUT
/// with its checksum, or an atomic file), [`COPY_BATCH`] at a time. Memory is bounded by a
/// batch and a listing page, whatever the number of files. Idempotent and resumable: a copy
/// interrupted at any point leaves complete files only, and the next one copies what is still
/// missing.
///
/// Fails with the first file that cannot be read (missing or altered in the source) or
/// written, naming it, or with the first error of `files`.
pub fn copy_missing<E: From<StoreError>>(
    source: &Store,
    target: &Store,
    files: impl IntoIterator<Item = Result<StoredFile, E>>,
) -> Result<CopyReport, E> {
    let mut report = CopyReport::default();
    let mut batch: Vec<StoredFile> = Vec::with_capacity(COPY_BATCH);
    let copy = |batch: &mut Vec<StoredFile>, report: &mut CopyReport| {
        let wanted: Vec<(&str, FileKind)> =
            batch.iter().map(|f| (f.sha256.as_str(), f.kind)).collect();
        let contents = source.read_many(&wanted)?;
        let writes: Vec<(FileKind, &[u8])> = batch
            .iter()
            .zip(&contents)
            .map(|(file, bytes)| (file.kind, bytes.as_slice()))
            .collect();
        target.put_many(&writes)?;
        report.copied += batch.len() as u64;
        batch.clear();
        Ok::<_, StoreError>(())
    };
    join_sorted(files, target.entries(), |joined| {
        match joined {
            Joined::Both { file, listed_size } if listed_size == file.size => report.present += 1,
            Joined::Both { file, .. } | Joined::Referenced(file) => {
                batch.push(file);
                if batch.len() == COPY_BATCH {
                    copy(&mut batch, &mut report)?;
                }
            }
            Joined::Listed(_) => {}
        }
        Ok::<_, E>(())
    })?;
    if !batch.is_empty() {
        copy(&mut batch, &mut report)?;
    }
    Ok(report)
}

/// Backups: a backup is a folder or bucket prefix holding named files (`manifest.json`,
/// `registry.sqlite`) beside its own content-addressed store (`store/`).
impl Store {
    /// The store under `name` inside this one (`<root>/name`, `s3://bucket/prefix/name`).
    pub fn child(&self, name: &str) -> Store {
        let backend = match &self.backend {
            Backend::Folder(f) => Backend::Folder(FolderStore::new(f.root().join(name))),
            Backend::Bucket(b) => Backend::Bucket(b.child(name)),
        };
        Store { backend }
    }

    /// Where the named file is: its path, or its object's `s3://` URL.
    pub fn named_path(&self, name: &str) -> PathBuf {
        match &self.backend {
            Backend::Folder(f) => f.root().join(name),
            Backend::Bucket(b) => PathBuf::from(b.url().url_of(name)),
        }
    }

    /// The named file's content (not checked: a name is not a hash); `Ok(None)` when absent.
    pub fn read_named(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.read_named(name),
            Backend::Bucket(b) => b.read_named(name),
        }
    }

    /// Named files, in order, each `None` when absent (a bucket GETs several at once).
    pub fn read_named_many(&self, names: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => names.iter().map(|name| f.read_named(name)).collect(),
            Backend::Bucket(b) => b.read_named_many(names),
        }
    }

    /// Copies the named file into the new local file `dst`, streamed (never whole in memory),
    /// fsynced, and returns its SHA-256 and size; `Ok(None)` when the named file is absent.
    pub fn read_named_to_file(
        &self,
        name: &str,
        dst: &Path,
    ) -> Result<Option<(String, u64)>, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.read_named_to_file(name, dst),
            Backend::Bucket(b) => b.read_named_to_file(name, dst),
        }
    }

    /// Makes the finished local file `local` the named file, replacing it: renamed into place
    /// (fsynced) in a folder, where `local` must be in the root already; uploaded to a bucket
    /// in parts read from the file (one PUT when it is small), then `local` removed. Memory is
    /// bounded by a few parts whatever the file's size. Durable when this returns.
    pub fn put_named_file(&self, name: &str, local: &Path) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.rename_into(local, name),
            Backend::Bucket(b) => {
                b.put_named_file(name, local)?;
                std::fs::remove_file(local).map_err(|source| StoreError::Io {
                    path: local.to_path_buf(),
                    op: "remove temporary file",
                    source,
                })
            }
        }
    }

    /// Removes the named file (durably in a folder); absent already is fine.
    pub fn remove_named(&self, name: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.remove_named(name),
            Backend::Bucket(b) => b.remove_named(name),
        }
    }

    /// Writes `bytes` as the named file, replacing it (atomic file, or one PUT).
    pub fn put_named(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Folder(f) => write_atomic(&f.root().join(name), bytes),
            Backend::Bucket(b) => b.put_named(name, bytes.to_vec()),
        }
    }

    /// True when the folder is absent or empty, or no object has the bucket prefix.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Folder(f) => f.is_empty(),
            Backend::Bucket(b) => b.is_empty(),
        }
    }
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn file(c: char, kind: FileKind, size: u64) -> Result<StoredFile, StoreError> {
        Ok(StoredFile { kind, sha256: hash(c), size })
    }

    fn entry(c: char, kind: FileKind, size: u64) -> Result<StoreEntry, StoreError> {
        let key = key_of(&hash(c), kind)?;
        Ok(StoreEntry { path: PathBuf::from(&key), size, content: parse_key(&key) })
    }

    fn stray(name: &str) -> Result<StoreEntry, StoreError> {
        Ok(StoreEntry { path: PathBuf::from(name), size: 1, content: None })
    }

    /// Every step of a join, as `(step, hash's first digit, extension)`.
    fn joined(
        files: Vec<Result<StoredFile, StoreError>>,
        listing: Vec<Result<StoreEntry, StoreError>>,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        join_sorted(files, listing, |j| {
            out.push(match j {
                Joined::Both { file, listed_size } => {
                    format!("both {}{} {listed_size}", &file.sha256[..1], file.kind.ext())
                }
                Joined::Referenced(f) => format!("referenced {}{}", &f.sha256[..1], f.kind.ext()),
                Joined::Listed(e) => match e.content {
                    Some((h, k)) => format!("listed {}{}", &h[..1], k.ext()),
                    None => format!("stray {}", e.path.display()),
                },
            });
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_join_pairs_each_key_once_whatever_the_order_of_kinds_within_a_hash() {
        // A registry sorts one hash's files by role (archive < pdf), a listing by extension
        // (pdf < png).
        let files = vec![
            file('1', FileKind::Pdf, 10),
            file('3', FileKind::Archive, 30),
            file('3', FileKind::Pdf, 31),
            file('5', FileKind::Xml, 50),
        ];
        let listing = vec![
            stray(".tmp-leftover"),
            entry('2', FileKind::Pdf, 20),
            entry('3', FileKind::Pdf, 31),
            entry('3', FileKind::Archive, 99),
            entry('6', FileKind::Ofd, 60),
        ];
        assert_eq!(
            joined(files, listing).unwrap(),
            [
                "stray .tmp-leftover",
                "referenced 1pdf",
                "listed 2pdf",
                "both 3pdf 31",
                "both 3png 99",
                "referenced 5xml",
                "listed 6ofd",
            ]
        );
        assert_eq!(joined(vec![], vec![]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_listing_or_registry_out_of_order_is_an_error_not_a_conclusion() {
        let listing = vec![entry('4', FileKind::Pdf, 1), entry('2', FileKind::Pdf, 1)];
        assert!(matches!(joined(vec![], listing), Err(StoreError::Unsorted { .. })));
        let listing = vec![entry('4', FileKind::Pdf, 1), entry('4', FileKind::Pdf, 1)];
        assert!(matches!(joined(vec![], listing), Err(StoreError::Unsorted { .. })));
        let files = vec![file('4', FileKind::Pdf, 1), file('2', FileKind::Pdf, 1)];
        assert!(matches!(joined(files, vec![]), Err(StoreError::Unsorted { .. })));
    }

    #[test]
    fn a_folder_is_listed_in_key_order_one_folder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut want = Vec::new();
        // Written in reverse hash order, over several folders.
        for n in (0u32..40).rev() {
            let stored = store.put(FileKind::Pdf, format!("file {n}").as_bytes()).unwrap();
            want.push(stored.sha256);
        }
        std::fs::write(dir.path().join(".stray.tmp"), b"x").unwrap();
        want.sort();
        let listed = store.walk().unwrap();
        assert_eq!(listed.first().map(|e| e.content.is_none()), Some(true), "the stray first");
        let hashes: Vec<String> = listed.into_iter().filter_map(|e| Some(e.content?.0)).collect();
        assert_eq!(hashes, want);
    }
}
