//! The encrypted store: one sled database, one keyspace (tree) per purpose. Every value is
//! sealed with the keyspace's key and bound (associated data) to keyspace ‖ record id; record
//! ids are keyed hashes, so no record name reaches the disk. A schema version with migrations.
//!
//! Large values (documents) do not suit sled, which copies them through its log: a sealed value
//! over [`INLINE_MAX`] goes to its own file in `blobs/` (fsynced, never overwritten) and sled
//! keeps a pointer to it. The pointer switch in sled is the commit; blob files no pointer names
//! are removed when the store opens.

pub mod crypto;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use self::crypto::{CryptoError, SecretKey, fill_random, keyed_hash, open, seal};

/// Version of the on-disk layout this build writes.
pub const SCHEMA_VERSION: u32 = 1;
const META_TREE: &str = "meta";
const SCHEMA_KEY: &[u8] = b"schema_version";

/// Sealed values above this size live in blob files.
pub const INLINE_MAX: usize = 64 * 1024;
/// First byte of a stored value that points to a blob file (sealed values start with 1).
const BLOB_POINTER: u8 = 2;
const BLOB_NAME_LEN: usize = 32;

/// `MIGRATIONS[i]` takes a store from version `i + 1` to `i + 2`. Each one must be idempotent
/// (a crash between migrating and recording the new version reruns it).
type Migration = fn(&sled::Db) -> Result<(), StoreError>;
const MIGRATIONS: &[Migration] = &[];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the vault is damaged: record in {keyspace} failed its integrity check")]
    Damaged { keyspace: String },
    #[error(
        "the data directory was written by a newer epa-desktop (schema {found}, this one knows {supported}); update epa-desktop"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("storage failed: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Crypto(CryptoError),
    #[error("record encoding failed: {0}")]
    Encoding(String),
    #[error("blob file {path}: {source}")]
    Blob {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn blob_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Blob {
        path: path.to_owned(),
        source,
    }
}

pub struct Store {
    db: sled::Db,
    blobs: PathBuf,
}

impl Store {
    /// Opens (or creates) the store in `dir` (`db/` for sled, `blobs/` for large values),
    /// migrating it to [`SCHEMA_VERSION`] and removing unreferenced blob files.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let blobs = dir.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(blob_err(&blobs))?;
        let store = Self { db, blobs };
        store.migrate(MIGRATIONS)?;
        store.collect_garbage()?;
        Ok(store)
    }

    /// Deletes blob files that no pointer names: left by a crash between writing a blob and
    /// committing its pointer, or between dropping a pointer and deleting its file.
    fn collect_garbage(&self) -> Result<(), StoreError> {
        let mut referenced = std::collections::HashSet::new();
        for name in self.db.tree_names() {
            for item in self.db.open_tree(name)?.iter() {
                let (_, v) = item?;
                if let Some(b) = blob_name(&v) {
                    referenced.insert(b.to_owned());
                }
            }
        }
        let entries = std::fs::read_dir(&self.blobs).map_err(blob_err(&self.blobs))?;
        for entry in entries {
            let path = entry.map_err(blob_err(&self.blobs))?.path();
            let keep = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| referenced.contains(n));
            if !keep {
                tracing::info!(file = %path.display(), "removing an unreferenced blob");
                std::fs::remove_file(&path).map_err(blob_err(&path))?;
            }
        }
        Ok(())
    }

    fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        let meta = self.db.open_tree(META_TREE)?;
        Ok(match meta.get(SCHEMA_KEY)? {
            None => None,
            Some(v) => Some(u32::from_be_bytes(v.as_ref().try_into().map_err(|_| {
                StoreError::Damaged {
                    keyspace: META_TREE.into(),
                }
            })?)),
        })
    }

    fn set_schema_version(&self, v: u32) -> Result<(), StoreError> {
        self.db
            .open_tree(META_TREE)?
            .insert(SCHEMA_KEY, &v.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    fn migrate(&self, migrations: &[Migration]) -> Result<(), StoreError> {
        let target = u32::try_from(migrations.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let mut v = match self.schema_version()? {
            None => return self.set_schema_version(target),
            Some(v) => v,
        };
        if v > target {
            return Err(StoreError::SchemaTooNew {
                found: v,
                supported: target,
            });
        }
        while v < target {
            let step = migrations[(v - 1) as usize];
            tracing::info!(from = v, to = v + 1, "migrating the store");
            step(&self.db)?;
            v += 1;
            self.set_schema_version(v)?;
        }
        Ok(())
    }

    /// The keyspace `name`, sealed with sub-keys of `key`.
    pub fn keyspace(&self, name: &str, key: &SecretKey) -> Result<Keyspace, StoreError> {
        Ok(Keyspace {
            tree: self.db.open_tree(name)?,
            blobs: self.blobs.clone(),
            stale: std::sync::Mutex::new(Vec::new()),
            name: name.to_owned(),
            seal_key: key.derive(b"epa-desktop store seal v1"),
            name_key: key.derive(b"epa-desktop store record-id v1"),
        })
    }

    /// Removes a keyspace and all its records, blob files included.
    pub fn drop_keyspace(&self, name: &str) -> Result<(), StoreError> {
        let tree = self.db.open_tree(name)?;
        let files: Vec<PathBuf> = tree
            .iter()
            .values()
            .filter_map(Result::ok)
            .filter_map(|v| blob_name(&v).map(|n| self.blobs.join(n)))
            .collect();
        self.db.drop_tree(name)?;
        self.db.flush()?;
        for f in files {
            remove_blob(&f);
        }
        Ok(())
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// The blob file a stored value points to, if it is a well-formed pointer.
fn blob_name(stored: &[u8]) -> Option<&str> {
    let (&marker, name) = stored.split_first()?;
    let name = std::str::from_utf8(name).ok()?;
    // Only our own random hex names: a tampered pointer must not reach other paths.
    (marker == BLOB_POINTER
        && name.len() == BLOB_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(name)
}

fn remove_blob(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        // Harmless: the next open collects it.
        tracing::warn!(file = %path.display(), error = %e, "could not remove a blob");
    }
}

/// Writes a new blob file and waits until it is on disk (a pointer may become durable with any
/// later flush, so its file must already be).
fn write_blob(dir: &Path, sealed: &[u8]) -> Result<String, StoreError> {
    use std::io::Write;
    let mut raw = [0u8; BLOB_NAME_LEN / 2];
    fill_random(&mut raw).map_err(StoreError::Crypto)?;
    let name: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(&name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&path).map_err(blob_err(&path))?;
    f.write_all(sealed)
        .and_then(|()| f.sync_data())
        .map_err(blob_err(&path))?;
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(blob_err(dir))?;
    Ok(name)
}

/// One keyspace: sealed records under keyed-hash ids.
pub struct Keyspace {
    tree: sled::Tree,
    blobs: PathBuf,
    /// Blob files replaced by a pointer that is not on disk yet: deleted after the next flush
    /// (a crash before it rolls the pointer back to them).
    stale: std::sync::Mutex<Vec<PathBuf>>,
    name: String,
    seal_key: SecretKey,
    name_key: SecretKey,
}

impl Keyspace {
    fn record_id(&self, record: &str) -> [u8; 32] {
        keyed_hash(&self.name_key, &[self.name.as_bytes(), record.as_bytes()])
    }

    fn aad(&self, id: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.name.len() + 1 + id.len());
        aad.extend_from_slice(self.name.as_bytes());
        aad.push(0);
        aad.extend_from_slice(id);
        aad
    }

    fn damaged(&self) -> StoreError {
        StoreError::Damaged {
            keyspace: self.name.clone(),
        }
    }

    /// Stores `value` under `record` (not yet durable; see [`Keyspace::put_durable`]).
    pub fn put(&self, record: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store(record, value, false)
    }

    /// [`Keyspace::put`], then waits until it is on disk: an acknowledged write survives a crash.
    pub fn put_durable(&self, record: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store(record, value, true)
    }

    fn store(&self, record: &str, value: &[u8], durable: bool) -> Result<(), StoreError> {
        let id = self.record_id(record);
        let sealed = seal(&self.seal_key, &self.aad(&id), value).map_err(StoreError::Crypto)?;
        let stored = if sealed.len() > INLINE_MAX {
            let name = write_blob(&self.blobs, &sealed)?;
            [&[BLOB_POINTER][..], name.as_bytes()].concat()
        } else {
            sealed
        };
        let old = self.tree.insert(id, stored)?;
        if let Some(old_blob) = old.as_deref().and_then(blob_name) {
            self.stale_files().push(self.blobs.join(old_blob));
        }
        if durable {
            self.flush()?;
        }
        Ok(())
    }

    fn stale_files(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.stale.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every write so far is on disk, then deletes the blob files they replaced.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush()?;
        let stale = std::mem::take(&mut *self.stale_files());
        for f in stale {
            remove_blob(&f);
        }
        Ok(())
    }

    /// The plaintext of a stored value (inline or in its blob file).
    fn unseal(&self, id: &[u8], stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let aad = self.aad(id);
        if stored.first() == Some(&BLOB_POINTER) {
            let name = blob_name(stored).ok_or_else(|| self.damaged())?;
            let path = self.blobs.join(name);
            let sealed = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.damaged()),
                Err(e) => return Err(blob_err(&path)(e)),
            };
            return open(&self.seal_key, &aad, &sealed).map_err(|_| self.damaged());
        }
        open(&self.seal_key, &aad, stored).map_err(|_| self.damaged())
    }

    pub fn get(&self, record: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let id = self.record_id(record);
        match self.tree.get(id)? {
            None => Ok(None),
            Some(stored) => self.unseal(&id, &stored).map(Some),
        }
    }

    /// Removes `record` durably; true if it existed.
    pub fn remove(&self, record: &str) -> Result<bool, StoreError> {
        let old = self.tree.remove(self.record_id(record))?;
        if let Some(name) = old.as_deref().and_then(blob_name) {
            self.stale_files().push(self.blobs.join(name));
        }
        self.flush()?;
        Ok(old.is_some())
    }

    /// Every record's plaintext (names are not recoverable: ids are hashes). A damaged record
    /// yields an error in its place; the others still come.
    pub fn values(&self) -> impl Iterator<Item = Result<Zeroizing<Vec<u8>>, StoreError>> + '_ {
        self.tree.iter().map(move |item| {
            let (id, stored) = item?;
            self.unseal(&id, &stored)
        })
    }

    pub fn put_json<T: Serialize>(
        &self,
        record: &str,
        value: &T,
        durable: bool,
    ) -> Result<(), StoreError> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| StoreError::Encoding(e.to_string()))?,
        );
        if durable {
            self.put_durable(record, &bytes)
        } else {
            self.put(record, &bytes)
        }
    }

    pub fn get_json<T: DeserializeOwned>(&self, record: &str) -> Result<Option<T>, StoreError> {
        match self.get(record)? {
            None => Ok(None),
            // Authentic but unparsable: written by a broken build; report as damage.
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| self.damaged()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> SecretKey {
        SecretKey::random().unwrap()
    }

    #[test]
    fn records_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretKey::from_bytes(&mut [3u8; 32]);
        {
            let s = Store::open(dir.path()).unwrap();
            let ks = s.keyspace("u/1", &k).unwrap();
            ks.put_durable("kvnr", b"X110411675").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let ks = s.keyspace("u/1", &k).unwrap();
        assert_eq!(
            ks.get("kvnr").unwrap().as_deref().map(|v| &v[..]),
            Some(&b"X110411675"[..])
        );
        assert!(ks.get("other").unwrap().is_none());
        assert!(ks.remove("kvnr").unwrap());
        assert!(ks.get("kvnr").unwrap().is_none());
    }

    #[test]
    fn a_changed_value_is_damage_and_other_records_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let ks = s.keyspace("u/1", &key()).unwrap();
        ks.put("a", b"alpha").unwrap();
        ks.put("b", b"beta").unwrap();
        let id = ks.record_id("a");
        let mut raw = ks.tree.get(id).unwrap().unwrap().to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 0x80;
        ks.tree.insert(id, raw).unwrap();
        assert!(matches!(ks.get("a"), Err(StoreError::Damaged { .. })));
        assert_eq!(&ks.get("b").unwrap().unwrap()[..], b"beta");
        let results: Vec<_> = ks.values().collect();
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    }

    #[test]
    fn values_are_bound_to_their_keyspace_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let k = SecretKey::from_bytes(&mut [9u8; 32]);
        let a = s.keyspace("u/a", &k).unwrap();
        let b = s.keyspace("u/b", &k).unwrap();
        a.put("x", b"1").unwrap();
        a.put("y", b"2").unwrap();
        // Move a sealed value to another record id, and to another keyspace: both detected.
        let sealed = a.tree.get(a.record_id("x")).unwrap().unwrap();
        a.tree.insert(a.record_id("y"), sealed.clone()).unwrap();
        assert!(matches!(a.get("y"), Err(StoreError::Damaged { .. })));
        b.tree.insert(b.record_id("x"), sealed).unwrap();
        assert!(matches!(b.get("x"), Err(StoreError::Damaged { .. })));
        // Under a wrong key the record is not even found, and its bytes do not open.
        let wrong = s.keyspace("u/a", &key()).unwrap();
        assert!(wrong.get("x").unwrap().is_none());
        assert!(wrong.values().all(|r| r.is_err()));
    }

    #[test]
    fn large_values_live_in_blob_files_that_are_bound_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretKey::from_bytes(&mut [5u8; 32]);
        let big = vec![0x42u8; INLINE_MAX * 3];
        let blob_files = |d: &Path| std::fs::read_dir(d.join("blobs")).unwrap().count();
        {
            let s = Store::open(dir.path()).unwrap();
            let ks = s.keyspace("u/1", &k).unwrap();
            ks.put_durable("doc/1", &big).unwrap();
            ks.put_durable("doc/2", &big).unwrap();
            assert_eq!(&ks.get("doc/1").unwrap().unwrap()[..], &big[..]);
            assert_eq!(blob_files(dir.path()), 2);
            // Overwriting replaces the file; no plaintext in any file.
            ks.put_durable("doc/1", b"small now").unwrap();
            assert_eq!(blob_files(dir.path()), 1);
            for f in std::fs::read_dir(dir.path().join("blobs")).unwrap() {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                assert!(!bytes.windows(64).any(|w| w.iter().all(|&b| b == 0x42)));
            }
            // Moving doc/2's pointer onto doc/1 is detected (the blob is bound to its record).
            let p2 = ks.tree.get(ks.record_id("doc/2")).unwrap().unwrap();
            ks.tree.insert(ks.record_id("doc/1"), p2).unwrap();
            assert!(matches!(ks.get("doc/1"), Err(StoreError::Damaged { .. })));
            ks.remove("doc/1").unwrap();
            // A pointer that names another path is damage, not a file access.
            ks.tree
                .insert(ks.record_id("doc/3"), &b"\x02../../etc/passwd"[..])
                .unwrap();
            assert!(matches!(ks.get("doc/3"), Err(StoreError::Damaged { .. })));
            ks.tree.remove(ks.record_id("doc/3")).unwrap();
            s.flush().unwrap();
            // An orphan, as a crash before the pointer commit would leave it.
            std::fs::write(dir.path().join("blobs").join("0".repeat(32)), b"orphan").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            blob_files(dir.path()),
            0,
            "doc/2's file is gone with its pointer; orphan collected"
        );
        let _ = s;
    }

    #[test]
    fn dropping_a_keyspace_removes_its_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let ks = s.keyspace("u/9", &key()).unwrap();
        ks.put("doc", &vec![1u8; INLINE_MAX + 1]).unwrap();
        s.drop_keyspace("u/9").unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs")).unwrap().count(),
            0
        );
    }

    #[test]
    fn migrations_run_in_order_once_and_newer_schemas_are_refused() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static RAN: AtomicU32 = AtomicU32::new(0);
        fn to_v2(db: &sled::Db) -> Result<(), StoreError> {
            RAN.fetch_add(1, Ordering::SeqCst);
            db.open_tree("v2-marker")?.insert("m", "1")?;
            Ok(())
        }
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), Some(1));
        s.migrate(&[to_v2]).unwrap();
        s.migrate(&[to_v2]).unwrap();
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
        assert_eq!(s.schema_version().unwrap(), Some(2));
        match s.migrate(&[]) {
            Err(StoreError::SchemaTooNew {
                found: 2,
                supported: 1,
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
