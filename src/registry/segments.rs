//! The segment store: the files of one committed chunk packed into one store object, a
//! segment (`ab/cd/<sha256>.seg`, named by the SHA-256 of its bytes like every object), with
//! the registry saying which file is where (`segments`, `segment_files`, migration 13).
//!
//! Why: a file per artefact costs the single loader thread a file creation, a write and a rename
//! per file (three per licence with the OFD) and a bucket one PUT per file; a segment costs one
//! of each per chunk. The files keep their own SHA-256 and their row in `files` (versions, the
//! transparency log and `verify` see no difference); only where the bytes are changes.
//!
//! Exactly-once is kept as before: the segment is durable (one `syncfs`, or the PUT answered)
//! before the transaction that records it and the versions commits; a SIGKILL in between leaves
//! an orphan segment (or a `.tmp` leftover) that nothing references and the rerun writes again.
//! A segment is immutable and never deleted, like every object. Objects of their own (files
//! committed without segments, by an older elicence or by staging for review) are read as
//! before: a file with no `segment_files` row is the object `ab/cd/<sha256>.<ext>`.
//!
//! Every reader of a version's bytes goes through [`Registry::read_file`], which reads the
//! file's range of its segment and checks its SHA-256; `store check`, `backup`, `restore` and
//! `migrate --store-to` handle a segment as the one object it is (listed, sized, re-hashed and
//! copied by its name), so they need nothing else.

use super::db::{Db, vals};
use super::encode::get_u64;
use super::store::{FileKind, Store, StoredFile, sha256_hex};
use super::{Registry, RegistryError};

/// A chunk's files packed into one segment, before it is recorded.
#[derive(Debug)]
pub(crate) struct Packed {
    /// The segment object as stored.
    pub segment: StoredFile,
    /// Each file in the segment with its offset, in the order given.
    pub members: Vec<(StoredFile, u64)>,
}

/// Packs `files` (each file once: the same bytes of the same kind are stored once) into one
/// segment, stores it with one durability point, and returns every file as stored, in order,
/// with what [`record`] needs. An empty `files` stores nothing.
pub(crate) fn store_packed(
    store: &Store,
    files: &[(FileKind, &[u8])],
) -> Result<(Vec<StoredFile>, Option<Packed>), RegistryError> {
    if files.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut parts: Vec<&[u8]> = Vec::with_capacity(files.len());
    let mut offset = 0u64;
    let mut stored = Vec::with_capacity(files.len());
    let mut members: Vec<(StoredFile, u64)> = Vec::with_capacity(files.len());
    let mut seen = std::collections::HashSet::with_capacity(files.len());
    for (kind, bytes) in files {
        let file = StoredFile { kind: *kind, sha256: sha256_hex(bytes), size: bytes.len() as u64 };
        if seen.insert((file.sha256.clone(), file.kind)) {
            members.push((file.clone(), offset));
            parts.push(bytes);
            offset += file.size;
        }
        stored.push(file);
    }
    let segment = store.put_parts(FileKind::Segment, &parts)?;
    Ok((stored, Some(Packed { segment, members })))
}

/// Records a stored segment and where its files are, inside the transaction that records the
/// versions (before them: each new file's `files` row is inserted here, with its place). A
/// file recorded before (the same bytes committed earlier, as an object of its own or in
/// another segment) keeps its place: its copy in this segment is unused.
pub(crate) fn record(tx: &Db, packed: &Packed) -> Result<(), RegistryError> {
    tx.execute(
        "insert segment",
        "INSERT INTO segments (sha256, size) VALUES (?1, ?2) ON CONFLICT (sha256) DO NOTHING",
        &vals![&packed.segment.sha256, packed.segment.size],
    )?;
    for (file, offset) in &packed.members {
        let inserted = tx.execute(
            "insert file",
            "INSERT INTO files (sha256, kind, size) VALUES (?1, ?2, ?3)
             ON CONFLICT (sha256, kind) DO NOTHING",
            &vals![&file.sha256, file.kind.as_str(), file.size],
        )?;
        if inserted == 0 {
            // Recorded before: it keeps its place.
            continue;
        }
        tx.execute(
            "insert segment file",
            "INSERT INTO segment_files (sha256, kind, segment, byte_offset)
             VALUES (?1, ?2, ?3, ?4)",
            &vals![&file.sha256, file.kind.as_str(), &packed.segment.sha256, *offset],
        )?;
    }
    Ok(())
}

/// Where a file's bytes are: `Some((segment SHA-256, offset))`, or `None` for an object of
/// its own.
pub(crate) fn locate(
    db: &Db,
    sha256: &str,
    kind: FileKind,
) -> Result<Option<(String, u64)>, RegistryError> {
    db.query_opt(
        "read segment file",
        "SELECT segment, byte_offset FROM segment_files WHERE sha256 = ?1 AND kind = ?2",
        &vals![sha256, kind.as_str()],
        |r| Ok((r.get(0)?, get_u64(r, 1)?)),
    )
}

impl Registry {
    /// The bytes of a stored file of a version, from its segment or its own object, checked
    /// against its SHA-256.
    ///
    /// Fails with a store error when the object is missing, unreadable, too short or does not
    /// hash to `file.sha256`, naming the object.
    pub fn read_file(&self, file: &StoredFile) -> Result<Vec<u8>, RegistryError> {
        Ok(match locate(&self.db, &file.sha256, file.kind)? {
            Some((segment, offset)) => {
                self.store.read_range(&segment, offset, file.size, &file.sha256)?
            }
            None => self.store.read(&file.sha256, file.kind)?,
        })
    }

    /// [`Registry::read_file`] of a file known by hash and kind only (its size read from the
    /// registry).
    pub fn read_stored(&self, sha256: &str, kind: FileKind) -> Result<Vec<u8>, RegistryError> {
        let size: Option<u64> = self.db.query_opt(
            "read file",
            "SELECT size FROM files WHERE sha256 = ?1 AND kind = ?2",
            &vals![sha256, kind.as_str()],
            |r| get_u64(r, 0),
        )?;
        match size {
            Some(size) => self.read_file(&StoredFile { kind, sha256: sha256.to_owned(), size }),
            None => Ok(self.store.read(sha256, kind)?),
        }
    }
}
