//! The store in a folder (`<data dir>/store/` or `--store file:PATH`): the atomic write
//! (temporary file in the same folder, fsync, rename, fsync the folder), the one durability
//! barrier per chunk, and reading a file back. A crash leaves each file absent or complete, plus
//! possibly `.tmp` leftovers that [`FolderStore::entries`] reports as strays.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::{
    FileKind, FileState, StoreEntry, StoreError, StoredFile, key_of, parse_key, sha256_hex,
};

/// Temporary-file names must be unique across threads of one process too.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { path: path.to_path_buf(), op, source }
}

/// Fsyncs a directory so that a rename or a new entry in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "fsync folder"))
}

/// Creates `dir` and any missing parents, fsyncing each parent that gained an entry.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        // Another writer created it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => {
            return Err(StoreError::Io { path: dir.to_path_buf(), op: "create folder", source: e });
        }
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Creates the temporary file `tmp`, which must not exist.
fn create_temp(tmp: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(io_err(tmp, "create temporary file"))
}

/// A fresh temporary name beside `path`: hidden, with this process's id and a counter.
fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Makes the content of `paths` (files or folders) durable. On Linux one `syncfs` of the file
/// system that holds `root` does it for all of them at once; elsewhere each is fsynced.
#[cfg(target_os = "linux")]
fn flush_files<'p>(root: &Path, _paths: impl Iterator<Item = &'p Path>) -> Result<(), StoreError> {
    let dir = File::open(root).map_err(io_err(root, "open the store folder"))?;
    rustix::fs::syncfs(&dir).map_err(|e| StoreError::Io {
        path: root.to_path_buf(),
        op: "syncfs",
        source: e.into(),
    })
}

#[cfg(not(target_os = "linux"))]
fn flush_files<'p>(_root: &Path, paths: impl Iterator<Item = &'p Path>) -> Result<(), StoreError> {
    for p in paths {
        File::open(p).and_then(|f| f.sync_all()).map_err(io_err(p, "fsync"))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename over
/// `path`, fsync the folder. A crash leaves either the old state or the complete file (plus
/// possibly a `.tmp` leftover, which [`FolderStore::entries`] reports).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dir_durable(dir)?;
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = create_temp(&tmp)?;
        f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err(path, "rename temporary file into place"))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: the temporary file is ours; the error that matters is the one above.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The entries of the folder `dir` as `(path, is a folder)`, sorted by name in reverse (the
/// walk pops the smallest first).
fn sorted_dir(dir: &Path) -> Result<Vec<(PathBuf, bool)>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir, "list folder"))? {
        let entry = entry.map_err(io_err(dir, "list folder"))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(io_err(&path, "stat"))?;
        out.push((path, file_type.is_dir()));
    }
    out.sort_by(|a, b| b.0.file_name().cmp(&a.0.file_name()));
    Ok(out)
}

/// A new local file being written and hashed at once (a restored database, streamed).
pub(super) struct HashingFile {
    path: PathBuf,
    file: File,
    hasher: Sha256,
    size: u64,
}

impl HashingFile {
    /// Creates `path` (which must not exist).
    pub(super) fn create(path: &Path) -> Result<HashingFile, StoreError> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err(path, "create"))?;
        Ok(HashingFile { path: path.to_path_buf(), file, hasher: Sha256::new(), size: 0 })
    }

    pub(super) fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).map_err(io_err(&self.path, "write"))
    }

    /// Fsyncs the file and returns its SHA-256 and size.
    pub(super) fn finish(self) -> Result<(String, u64), StoreError> {
        self.file.sync_all().map_err(io_err(&self.path, "fsync"))?;
        Ok((hex::encode(self.hasher.finalize()), self.size))
    }
}

/// The content-addressed store rooted at one folder.
#[derive(Debug, Clone)]
pub(super) struct FolderStore {
    root: PathBuf,
}

impl FolderStore {
    /// A store rooted at `root` (created on the first write).
    pub(super) fn new(root: PathBuf) -> FolderStore {
        FolderStore { root }
    }

    /// The store's root folder.
    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a stored file (whether or not it exists).
    pub(super) fn path_of(&self, sha256: &str, kind: FileKind) -> Result<PathBuf, StoreError> {
        Ok(self.root.join(key_of(sha256, kind)?))
    }

    /// Stores `bytes` under their SHA-256 and returns what was stored. When the file is already
    /// present with the right content nothing is written; when it is present with other content
    /// (damaged) it is replaced atomically.
    pub(super) fn put(&self, kind: FileKind, bytes: &[u8]) -> Result<StoredFile, StoreError> {
        let sha256 = sha256_hex(bytes);
        let path = self.path_of(&sha256, kind)?;
        let stored = StoredFile { kind, sha256, size: bytes.len() as u64 };
        if let Ok(existing) = fs::read(&path)
            && sha256_hex(&existing) == stored.sha256
        {
            return Ok(stored);
        }
        write_atomic(&path, bytes)?;
        Ok(stored)
    }

    /// Stores the concatenation of `parts` as one file (a segment), streamed: written to a
    /// temporary file in the root and hashed on the way (no copy of the whole in memory), then
    /// made durable, renamed to its name and made durable again, as [`FolderStore::put_many`]
    /// does for many files. A file already there under that name is left as it is (same name,
    /// same bytes, unless damaged: then it is replaced).
    pub(super) fn put_parts(
        &self,
        kind: FileKind,
        parts: &[&[u8]],
    ) -> Result<StoredFile, StoreError> {
        create_dir_durable(&self.root)?;
        let tmp = temp_path(&self.root.join(kind.ext()));
        let result = (|| {
            let mut f = create_temp(&tmp)?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            for part in parts {
                hasher.update(part);
                size += part.len() as u64;
                f.write_all(part).map_err(io_err(&tmp, "write"))?;
            }
            drop(f);
            let stored = StoredFile { kind, sha256: hex::encode(hasher.finalize()), size };
            let path = self.path_of(&stored.sha256, kind)?;
            if self.check_file(&stored.sha256, kind)? == FileState::Present {
                fs::remove_file(&tmp).map_err(io_err(&tmp, "remove temporary file"))?;
                return Ok(stored);
            }
            flush_files(&self.root, std::iter::once(tmp.as_path()))?;
            let dir = path.parent().unwrap_or(Path::new("."));
            if cfg!(target_os = "linux") {
                fs::create_dir_all(dir).map_err(io_err(dir, "create folder"))?;
            } else {
                create_dir_durable(dir)?;
            }
            fs::rename(&tmp, &path).map_err(io_err(&path, "rename temporary file into place"))?;
            flush_files(&self.root, std::iter::once(dir))?;
            Ok(stored)
        })();
        if result.is_err() {
            // Best effort: the temporary file is ours; the error that matters is `result`.
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Stores many files with one durability barrier for all of them, for a chunk of licences.
    /// Same result as [`FolderStore::put`] on each, in order, but instead of two fsyncs per file
    /// (file and folder) it writes every temporary file, flushes them all at once, renames them
    /// into place and flushes the folders at once. A crash leaves each file either absent or
    /// complete (plus possibly `.tmp` leftovers), and every file is durable before this returns,
    /// so the registry rows that reference them may be committed.
    pub(super) fn put_many(
        &self,
        files: &[(FileKind, &[u8])],
    ) -> Result<Vec<StoredFile>, StoreError> {
        let mut stored = Vec::with_capacity(files.len());
        // (temporary file, final path) of each file still to be renamed into place.
        let mut pending: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut renamed: Vec<PathBuf> = Vec::new();
        // Paths already queued in this batch (the same content twice is stored once).
        let mut queued: HashSet<PathBuf> = HashSet::with_capacity(files.len());
        let result = (|| {
            for (kind, bytes) in files {
                let sha256 = sha256_hex(bytes);
                let path = self.path_of(&sha256, *kind)?;
                let present = !queued.insert(path.clone())
                    || fs::read(&path).is_ok_and(|existing| sha256_hex(&existing) == sha256);
                stored.push(StoredFile { kind: *kind, sha256, size: bytes.len() as u64 });
                if present {
                    continue;
                }
                let dir = path.parent().unwrap_or(Path::new("."));
                // On Linux the final syncfs also makes new folders durable.
                if cfg!(target_os = "linux") {
                    fs::create_dir_all(dir).map_err(io_err(dir, "create folder"))?;
                } else {
                    create_dir_durable(dir)?;
                }
                let tmp = temp_path(&path);
                let mut f = create_temp(&tmp)?;
                pending.push((tmp.clone(), path));
                f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
            }
            if pending.is_empty() {
                return Ok(());
            }
            flush_files(&self.root, pending.iter().map(|(tmp, _)| tmp.as_path()))?;
            for (tmp, path) in std::mem::take(&mut pending) {
                if let Err(e) = fs::rename(&tmp, &path) {
                    pending.push((tmp, path.clone()));
                    return Err(StoreError::Io {
                        path,
                        op: "rename temporary file into place",
                        source: e,
                    });
                }
                renamed.push(path);
            }
            let dirs: BTreeSet<&Path> = renamed.iter().filter_map(|p| p.parent()).collect();
            flush_files(&self.root, dirs.into_iter())
        })();
        for (tmp, _) in &pending {
            // Best effort: the temporary files are ours; the error that matters is `result`.
            let _ = fs::remove_file(tmp);
        }
        result.map(|()| stored)
    }

    /// Reads a stored file and checks that its content hashes to `sha256`.
    ///
    /// Fails with [`StoreError::Io`] (missing or unreadable) or [`StoreError::Altered`].
    pub(super) fn read(&self, sha256: &str, kind: FileKind) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(sha256, kind)?;
        let bytes = fs::read(&path).map_err(io_err(&path, "read"))?;
        let actual = sha256_hex(&bytes);
        if actual != sha256 {
            return Err(StoreError::Altered { path, expected: sha256.to_owned(), actual });
        }
        Ok(bytes)
    }

    /// `size` bytes at `offset` of the segment `segment` (not checked: the caller checks the
    /// file's own hash).
    pub(super) fn read_range(
        &self,
        segment: &str,
        offset: u64,
        size: u64,
    ) -> Result<Vec<u8>, StoreError> {
        use std::os::unix::fs::FileExt;
        let path = self.path_of(segment, FileKind::Segment)?;
        let file = File::open(&path).map_err(io_err(&path, "read"))?;
        let len = usize::try_from(size).map_err(|_| StoreError::Io {
            path: path.clone(),
            op: "read",
            source: io::Error::from(io::ErrorKind::InvalidInput),
        })?;
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, offset).map_err(io_err(&path, "read"))?;
        Ok(bytes)
    }

    /// Whether the file for `sha256` is present with the right content.
    pub(super) fn check_file(&self, sha256: &str, kind: FileKind) -> Result<FileState, StoreError> {
        let path = self.path_of(sha256, kind)?;
        match fs::read(&path) {
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                Ok(if actual == sha256 {
                    FileState::Present
                } else {
                    FileState::Altered { actual }
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(FileState::Missing),
            Err(e) => Err(StoreError::Io { path, op: "read", source: e }),
        }
    }

    /// Every regular file under the root, one at a time, sorted by key: each folder's entries
    /// are read and sorted when the walk enters it, so memory holds one folder per level. An
    /// absent root is an empty store.
    pub(super) fn entries(&self) -> impl Iterator<Item = Result<StoreEntry, StoreError>> + '_ {
        // One sorted list per open folder, deepest last; each in reverse, to pop.
        let mut open: Vec<Vec<(PathBuf, bool)>> = Vec::new();
        let mut started = false;
        std::iter::from_fn(move || {
            if !started {
                started = true;
                if !self.root.exists() {
                    return None;
                }
                match sorted_dir(&self.root) {
                    Ok(entries) => open.push(entries),
                    Err(e) => return Some(Err(e)),
                }
            }
            loop {
                let level = open.last_mut()?;
                let Some((path, is_dir)) = level.pop() else {
                    open.pop();
                    continue;
                };
                if is_dir {
                    match sorted_dir(&path) {
                        Ok(entries) => open.push(entries),
                        Err(e) => return Some(Err(e)),
                    }
                    continue;
                }
                let size = match fs::symlink_metadata(&path) {
                    Ok(meta) => meta.len(),
                    // Gone since the folder was read (a temporary file renamed into place).
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Some(Err(StoreError::Io { path, op: "stat", source: e })),
                };
                let content = self.parse_store_path(&path);
                return Some(Ok(StoreEntry { path, size, content }));
            }
        })
    }

    /// The file `name` (relative to the root); `Ok(None)` when it does not exist.
    pub(super) fn read_named(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.root.join(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io { path, op: "read", source: e }),
        }
    }

    /// Copies the file `name` into the new file `dst`, hashing it on the way, and fsyncs `dst`.
    pub(super) fn read_named_to_file(
        &self,
        name: &str,
        dst: &Path,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let path = self.root.join(name);
        let mut input = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io { path, op: "open", source: e }),
        };
        let mut out = HashingFile::create(dst)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = input.read(&mut buf).map_err(io_err(&path, "read"))?;
            match buf.get(..n) {
                Some(chunk) if !chunk.is_empty() => out.write(chunk)?,
                _ => break,
            }
        }
        out.finish().map(Some)
    }

    /// Removes the file `name` and fsyncs its folder; absent already is fine.
    pub(super) fn remove_named(&self, name: &str) -> Result<(), StoreError> {
        let path = self.root.join(name);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io { path, op: "remove", source: e }),
        }
    }

    /// Moves the finished file `local` (in the root folder already) to `name`, durably.
    pub(super) fn rename_into(&self, local: &Path, name: &str) -> Result<(), StoreError> {
        let path = self.root.join(name);
        File::open(local).and_then(|f| f.sync_all()).map_err(io_err(local, "fsync"))?;
        fs::rename(local, &path).map_err(io_err(&path, "rename into place"))?;
        sync_dir(path.parent().unwrap_or(&self.root))
    }

    /// True when the root is absent or holds nothing.
    pub(super) fn is_empty(&self) -> Result<bool, StoreError> {
        match fs::read_dir(&self.root) {
            Ok(mut entries) => Ok(entries.next().is_none()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(StoreError::Io { path: self.root.clone(), op: "list folder", source: e }),
        }
    }

    /// `(sha256, kind)` when `path` is exactly where the store would put that file.
    fn parse_store_path(&self, path: &Path) -> Option<(String, FileKind)> {
        let relative = path.strip_prefix(&self.root).ok()?;
        let parts: Vec<&str> = relative.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
        parse_key(&parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::store::Store;

    #[test]
    fn put_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("store"));
        let a = store.put(FileKind::Pdf, b"%PDF-1.7 fake").unwrap();
        let b = store.put(FileKind::Pdf, b"%PDF-1.7 fake").unwrap();
        assert_eq!(a, b);
        let rel = Store::relative_path(&a.sha256, FileKind::Pdf).unwrap();
        assert_eq!(
            rel.to_str().unwrap(),
            format!("{}/{}/{}.pdf", &a.sha256[..2], &a.sha256[2..4], a.sha256)
        );
        assert_eq!(store.read(&a.sha256, FileKind::Pdf).unwrap(), b"%PDF-1.7 fake");
        let files = store.walk().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].content, Some((a.sha256.clone(), FileKind::Pdf)));
    }

    #[test]
    fn damaged_file_is_detected_and_repaired_by_put() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a = store.put(FileKind::Xml, b"<licence/>").unwrap();
        let path = store.path_of(&a.sha256, FileKind::Xml).unwrap();
        fs::write(&path, b"<licence>forged</licence>").unwrap();
        assert!(matches!(
            store.check_file(&a.sha256, FileKind::Xml).unwrap(),
            FileState::Altered { .. }
        ));
        assert!(matches!(store.read(&a.sha256, FileKind::Xml), Err(StoreError::Altered { .. })));
        store.put(FileKind::Xml, b"<licence/>").unwrap();
        assert_eq!(store.check_file(&a.sha256, FileKind::Xml).unwrap(), FileState::Present);
        fs::remove_file(&path).unwrap();
        assert_eq!(store.check_file(&a.sha256, FileKind::Xml).unwrap(), FileState::Missing);
    }

    #[test]
    fn stray_files_are_not_store_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let a = store.put(FileKind::Pdf, b"x").unwrap();
        let path = store.path_of(&a.sha256, FileKind::Pdf).unwrap();
        let tmp = path.with_file_name(format!(".{}.pdf.1.0.tmp", a.sha256));
        fs::write(&tmp, b"half").unwrap();
        // The right name in the wrong folder is a stray too.
        fs::write(dir.path().join(format!("{}.pdf", a.sha256)), b"x").unwrap();
        let strays: Vec<_> =
            store.walk().unwrap().into_iter().filter(|e| e.content.is_none()).collect();
        assert_eq!(strays.len(), 2);
    }

    #[test]
    fn bad_hash_is_refused() {
        assert!(matches!(
            Store::relative_path("../../etc", FileKind::Pdf),
            Err(StoreError::BadHash { .. })
        ));
    }
}
