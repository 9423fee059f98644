//! The store in an S3-compatible bucket (`--store s3://bucket/prefix`): one object per stored
//! file, at `prefix/ab/cd/<sha256>.<ext>`, written with a SHA-256 checksum the server checks.
//!
//! The rest of elicence is synchronous (threads, rayon); this module keeps one small tokio
//! runtime for the whole process and blocks on it, so no caller becomes async. A chunk's objects
//! are PUT concurrently ([`PUT_CONCURRENCY`] at a time) and [`BucketStore::put_many`] returns
//! only when every PUT has answered 200: that answer is the commit point of an object (what the
//! registry transaction then relies on). Create-if-absent is not used: it is not atomic on every
//! server, and content-addressed objects do not need it (writing the same bytes again is
//! harmless, and it replaces a damaged object). The exactly-once ledger stays in the database.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use futures_util::{StreamExt, TryStreamExt, stream};
use object_store::aws::{AmazonS3Builder, Checksum};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;

use super::folder::HashingFile;
use super::{
    BucketUrl, CONFIGURE_OP, FileKind, FileState, StoreEntry, StoreError, StoredFile, key_of,
    parse_key, sha256_hex,
};

/// How many PUTs (or GETs) of one call are in flight at once.
pub(super) const PUT_CONCURRENCY: usize = 16;

/// The size of each part of a multipart upload (a database snapshot); S3 wants at least 5 MiB
/// for every part but the last.
pub(super) const PART_SIZE: usize = 8 << 20;

/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Worker threads of the runtime that drives the HTTP connections.
const RUNTIME_THREADS: usize = 2;

/// The process's one runtime for object-store requests (never dropped, so never dropped inside
/// another runtime either).
static RUNTIME: OnceLock<Runtime> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, StoreError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_THREADS)
        .thread_name("elicence-store")
        .enable_all()
        .build()
        .map_err(|source| StoreError::Runtime { source })?;
    // Another thread may have set it meanwhile: then theirs is used and ours dropped here,
    // outside any async context.
    let _ = RUNTIME.set(rt);
    RUNTIME.get().ok_or_else(|| StoreError::Runtime { source: io::Error::other("not started") })
}

/// A store in one bucket, under one prefix.
#[derive(Debug, Clone)]
pub(super) struct BucketStore {
    client: Arc<dyn ObjectStore>,
    url: BucketUrl,
    runtime: &'static Runtime,
}

impl BucketStore {
    /// The client for `url`, configured from the `AWS_*` environment, with SHA-256 checksums on
    /// every PUT and path-style requests unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` says
    /// otherwise. Sends no request.
    pub(super) fn open(url: &BucketUrl) -> Result<BucketStore, StoreError> {
        let client = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_checksum_algorithm(Checksum::SHA256)
            .build()
            .map_err(|source| StoreError::Object {
                object: url.to_string(),
                op: CONFIGURE_OP,
                source,
            })?;
        Ok(BucketStore { client: Arc::new(client), url: url.clone(), runtime: runtime()? })
    }

    pub(super) fn url(&self) -> &BucketUrl {
        &self.url
    }

    /// The object path of a key (`prefix/key`).
    fn object(&self, key: &str) -> ObjectPath {
        match self.url.prefix.as_str() {
            "" => ObjectPath::from(key),
            prefix => ObjectPath::from(format!("{prefix}/{key}")),
        }
    }

    /// The error of a failed request for `key`, naming its object.
    fn err(
        &self,
        key: &str,
        op: &'static str,
    ) -> impl FnOnce(object_store::Error) -> StoreError + use<> {
        let object = self.url.url_of(key);
        move |source| StoreError::Object { object, op, source }
    }

    /// The store under `name` inside this one's prefix (a backup's `store/`), same client.
    pub(super) fn child(&self, name: &str) -> BucketStore {
        let prefix = match self.url.prefix.as_str() {
            "" => name.to_owned(),
            prefix => format!("{prefix}/{name}"),
        };
        BucketStore { url: BucketUrl { bucket: self.url.bucket.clone(), prefix }, ..self.clone() }
    }

    /// GETs the object `name` (relative to the prefix); `Ok(None)` when it does not exist.
    pub(super) fn read_named(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(name)
    }

    /// PUTs `bytes` as the object `name` (relative to the prefix), replacing it.
    pub(super) fn put_named(&self, name: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.object(name);
        self.runtime
            .block_on(self.client.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(self.err(name, "PUT object"))
    }

    /// True when no object has this prefix (one listing request).
    pub(super) fn is_empty(&self) -> Result<bool, StoreError> {
        let prefix =
            (!self.url.prefix.is_empty()).then(|| ObjectPath::from(self.url.prefix.as_str()));
        let first = self.runtime.block_on(async {
            let mut listing = self.client.list(prefix.as_ref());
            listing.next().await.transpose()
        });
        first.map(|f| f.is_none()).map_err(|source| StoreError::Object {
            object: self.url.to_string(),
            op: "list objects",
            source,
        })
    }

    /// PUTs one object and returns what was stored.
    pub(super) fn put(&self, kind: FileKind, bytes: &[u8]) -> Result<StoredFile, StoreError> {
        let mut stored = self.put_many(&[(kind, bytes)])?;
        match stored.pop() {
            Some(file) => Ok(file),
            None => Err(StoreError::BadHash { found: sha256_hex(bytes) }),
        }
    }

    /// PUTs the concatenation of `parts` as one object (a segment), named by its hash.
    pub(super) fn put_parts(
        &self,
        kind: FileKind,
        parts: &[&[u8]],
    ) -> Result<StoredFile, StoreError> {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        let size: usize = parts.iter().map(|p| p.len()).sum();
        let stored = StoredFile { kind, sha256: hex::encode(hasher.finalize()), size: size as u64 };
        let key = key_of(&stored.sha256, kind)?;
        let mut whole = Vec::with_capacity(size);
        for part in parts {
            whole.extend_from_slice(part);
        }
        let payload = PutPayload::from(whole);
        self.runtime
            .block_on(self.client.put(&self.object(&key), payload))
            .map_err(self.err(&key, "PUT object"))?;
        Ok(stored)
    }

    /// PUTs every file (each key once), [`PUT_CONCURRENCY`] at a time, and returns when all
    /// have answered 200; fails with the first refused or failed PUT, naming its object.
    pub(super) fn put_many(
        &self,
        files: &[(FileKind, &[u8])],
    ) -> Result<Vec<StoredFile>, StoreError> {
        let mut stored = Vec::with_capacity(files.len());
        let mut seen = HashSet::with_capacity(files.len());
        let mut uploads = Vec::with_capacity(files.len());
        for (kind, bytes) in files {
            let sha256 = sha256_hex(bytes);
            let key = key_of(&sha256, *kind)?;
            stored.push(StoredFile { kind: *kind, sha256, size: bytes.len() as u64 });
            if seen.insert(key.clone()) {
                uploads.push((key, PutPayload::from(bytes.to_vec())));
            }
        }
        let puts = uploads.into_iter().map(|(key, payload)| {
            let path = self.object(&key);
            let on_err = self.err(&key, "PUT object");
            async move { self.client.put(&path, payload).await.map(|_| ()).map_err(on_err) }
        });
        self.runtime.block_on(async {
            stream::iter(puts).buffer_unordered(PUT_CONCURRENCY).try_collect::<Vec<()>>().await
        })?;
        Ok(stored)
    }

    /// GETs an object; `Ok(None)` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime.block_on(self.get_async(key))
    }

    async fn get_async(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.object(key);
        match self.client.get(&path).await {
            Ok(got) => got.bytes().await.map(|b| Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
        .map_err(self.err(key, "GET object"))
    }

    /// `size` bytes at `offset` of the segment `segment` (one ranged GET; not checked: the
    /// caller checks the file's own hash).
    pub(super) fn read_range(
        &self,
        segment: &str,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>, StoreError> {
        let key = key_of(segment, FileKind::Segment)?;
        let path = self.object(&key);
        let got = self
            .runtime
            .block_on(self.client.get_range(&path, offset..offset + size))
            .map_err(self.err(&key, "GET object range"))?;
        if got.len() as u64 != size {
            return Err(StoreError::Io {
                path: PathBuf::from(self.url.url_of(&key)),
                op: "GET object range",
                source: io::Error::from(io::ErrorKind::UnexpectedEof),
            });
        }
        Ok(got.to_vec())
    }

    /// Reads an object and checks that its content hashes to `sha256`.
    pub(super) fn read(&self, sha256: &str, kind: FileKind) -> Result<Vec<u8>, StoreError> {
        let key = key_of(sha256, kind)?;
        let bytes = self.get(&key)?;
        self.checked(sha256, &key, bytes)
    }

    /// [`BucketStore::read`] of many objects, [`PUT_CONCURRENCY`] GETs at a time, in order.
    pub(super) fn read_many(&self, files: &[(&str, FileKind)]) -> Result<Vec<Vec<u8>>, StoreError> {
        let keys: Vec<String> =
            files.iter().map(|(sha256, kind)| key_of(sha256, *kind)).collect::<Result<_, _>>()?;
        let gets = keys.iter().map(|key| self.get_async(key));
        let got = self.runtime.block_on(async {
            stream::iter(gets).buffered(PUT_CONCURRENCY).try_collect::<Vec<_>>().await
        })?;
        files
            .iter()
            .zip(keys.iter().zip(got))
            .map(|((sha256, _), (key, bytes))| self.checked(sha256, key, bytes))
            .collect()
    }

    /// The bytes of a GET, or an error when absent or not hashing to `sha256`.
    fn checked(
        &self,
        sha256: &str,
        key: &str,
        bytes: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, StoreError> {
        let path = PathBuf::from(self.url.url_of(key));
        let Some(bytes) = bytes else {
            return Err(StoreError::Io {
                path,
                op: "GET object",
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(StoreError::Altered { path, expected: sha256.to_owned(), actual });
        }
        Ok(bytes)
    }

    /// Whether the object for `sha256` is present with the right content (GET and re-hash).
    pub(super) fn check_file(&self, sha256: &str, kind: FileKind) -> Result<FileState, StoreError> {
        let key = key_of(sha256, kind)?;
        Ok(match self.get(&key)? {
            None => FileState::Missing,
            Some(bytes) => {
                let actual = sha256_hex(&bytes);
                if actual == sha256 { FileState::Present } else { FileState::Altered { actual } }
            }
        })
    }

    /// Every object under the prefix with its size, one at a time in the server's order
    /// (ListObjectsV2: sorted by key), one page (1,000 keys) requested at a time.
    pub(super) fn entries(&self) -> impl Iterator<Item = Result<StoreEntry, StoreError>> + '_ {
        let prefix =
            (!self.url.prefix.is_empty()).then(|| ObjectPath::from(self.url.prefix.as_str()));
        let mut listing = self.client.list(prefix.as_ref());
        let strip = match self.url.prefix.as_str() {
            "" => String::new(),
            prefix => format!("{prefix}/"),
        };
        std::iter::from_fn(move || {
            let meta = self.runtime.block_on(listing.next())?;
            Some(
                meta.map(|meta| {
                    let location = meta.location.to_string();
                    let key = location.strip_prefix(&strip).unwrap_or(&location);
                    StoreEntry {
                        path: PathBuf::from(self.url.url_of(key)),
                        size: meta.size,
                        content: parse_key(key),
                    }
                })
                .map_err(|source| StoreError::Object {
                    object: self.url.to_string(),
                    op: "list objects",
                    source,
                }),
            )
        })
    }

    /// GETs `key` and returns the SHA-256 and size of its body, hashed as it streams in (not
    /// kept); `Ok(None)` when it does not exist.
    async fn hash_object(&self, key: &str) -> Result<Option<(String, u64)>, StoreError> {
        let path = self.object(key);
        let got = match self.client.get(&path).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(key, "GET object")(e)),
        };
        let mut body = got.into_stream();
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(self.err(key, "GET object"))?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok(Some((hex::encode(hasher.finalize()), size)))
    }

    /// [`BucketStore::check_file`] of many objects, [`PUT_CONCURRENCY`] GETs at a time, in
    /// order; each body is hashed as it arrives and dropped.
    pub(super) fn check_many(
        &self,
        files: &[(&str, FileKind)],
    ) -> Result<Vec<FileState>, StoreError> {
        let keys: Vec<String> =
            files.iter().map(|(sha256, kind)| key_of(sha256, *kind)).collect::<Result<_, _>>()?;
        let checks = keys.iter().zip(files).map(|(key, (sha256, _))| async move {
            Ok::<_, StoreError>(match self.hash_object(key).await? {
                None => FileState::Missing,
                Some((actual, _)) if actual == *sha256 => FileState::Present,
                Some((actual, _)) => FileState::Altered { actual },
            })
        });
        self.runtime.block_on(async {
            stream::iter(checks).buffered(PUT_CONCURRENCY).try_collect::<Vec<_>>().await
        })
    }

    /// GETs the objects `names` (relative to the prefix), [`PUT_CONCURRENCY`] at a time, in
    /// order; `None` for one that does not exist.
    pub(super) fn read_named_many(
        &self,
        names: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let gets = names.iter().map(|name| self.get_async(name));
        self.runtime.block_on(async {
            stream::iter(gets).buffered(PUT_CONCURRENCY).try_collect::<Vec<_>>().await
        })
    }

    /// GETs the object `name` into the new local file `dst`, streamed and hashed on the way;
    /// `Ok(None)` when it does not exist.
    pub(super) fn read_named_to_file(
        &self,
        name: &str,
        dst: &std::path::Path,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let path = self.object(name);
        self.runtime.block_on(async {
            let got = match self.client.get(&path).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(self.err(name, "GET object")(e)),
            };
            let mut out = HashingFile::create(dst)?;
            let mut body = got.into_stream();
            while let Some(chunk) = body.next().await {
                out.write(&chunk.map_err(self.err(name, "GET object"))?)?;
            }
            out.finish().map(Some)
        })
    }

    /// Uploads the local file `local` as the object `name` (relative to the prefix),
    /// replacing it: one PUT when it is smaller than [`PART_SIZE`], else a multipart upload
    /// of parts read from the file one at a time, at most [`PARTS_IN_FLIGHT`] uploading, so
    /// memory stays near `PART_SIZE × (PARTS_IN_FLIGHT + 1)` whatever the file's size. The
    /// object appears, whole, only when the upload completes; a failed upload is aborted.
    pub(super) fn put_named_file(
        &self,
        name: &str,
        local: &std::path::Path,
    ) -> Result<(), StoreError> {
        let mut file = std::fs::File::open(local).map_err(|source| StoreError::Io {
            path: local.to_path_buf(),
            op: "open",
            source,
        })?;
        let first = read_part(&mut file, local)?;
        if first.len() < PART_SIZE {
            return self.put_named(name, first);
        }
        let path = self.object(name);
        self.runtime.block_on(async {
            let upload = self
                .client
                .put_multipart(&path)
                .await
                .map_err(self.err(name, "start multipart upload"))?;
            let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            parts.put(first.into());
            let failure = loop {
                if let Err(e) = parts.wait_for_capacity(PARTS_IN_FLIGHT).await {
                    break Some(self.err(name, "upload part")(e));
                }
                match read_part(&mut file, local) {
                    Ok(part) if part.is_empty() => break None,
                    Ok(part) => parts.put(part.into()),
                    Err(e) => break Some(e),
                }
            };
            match failure {
                None => parts
                    .finish()
                    .await
                    .map(|_| ())
                    .map_err(self.err(name, "complete multipart upload")),
                Some(e) => {
                    // Best effort: parts of an aborted upload are the server's to drop; the
                    // error that matters is `e`.
                    let _ = parts.abort().await;
                    Err(e)
                }
            }
        })
    }

    /// DELETEs the object `name` (relative to the prefix); absent already is fine.
    pub(super) fn remove_named(&self, name: &str) -> Result<(), StoreError> {
        let path = self.object(name);
        match self.runtime.block_on(self.client.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(name, "DELETE object")(e)),
        }
    }
}

/// Up to [`PART_SIZE`] bytes from `file` (fewer only at its end).
fn read_part(file: &mut std::fs::File, path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    use std::io::Read as _;
    let mut part = Vec::with_capacity(PART_SIZE);
    file.take(PART_SIZE as u64).read_to_end(&mut part).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        op: "read",
        source,
    })?;
    Ok(part)
}
