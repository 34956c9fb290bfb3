//! The encrypted store: one sled database, one keyspace (tree) per purpose. Every value is
//! sealed with the keyspace's key and bound (associated data) to keyspace ‖ record id; record
//! ids are keyed hashes, so no record name reaches the disk. A schema version with migrations.

pub mod crypto;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use self::crypto::{CryptoError, SecretKey, keyed_hash, open, seal};

/// Version of the on-disk layout this build writes.
pub const SCHEMA_VERSION: u32 = 1;
const META_TREE: &str = "meta";
const SCHEMA_KEY: &[u8] = b"schema_version";

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
}

pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the store in `dir`, migrating it to [`SCHEMA_VERSION`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let store = Self { db };
        store.migrate(MIGRATIONS)?;
        Ok(store)
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
            name: name.to_owned(),
            seal_key: key.derive(b"epa-desktop store seal v1"),
            name_key: key.derive(b"epa-desktop store record-id v1"),
        })
    }

    /// Removes a keyspace and all its records.
    pub fn drop_keyspace(&self, name: &str) -> Result<(), StoreError> {
        self.db.drop_tree(name)?;
        self.db.flush()?;
        Ok(())
    }

    /// Waits until everything written so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// One keyspace: sealed records under keyed-hash ids.
pub struct Keyspace {
    tree: sled::Tree,
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
        let id = self.record_id(record);
        let sealed = seal(&self.seal_key, &self.aad(&id), value).map_err(StoreError::Crypto)?;
        self.tree.insert(id, sealed)?;
        Ok(())
    }

    /// [`Keyspace::put`], then waits until it is on disk: an acknowledged write survives a crash.
    pub fn put_durable(&self, record: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put(record, value)?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, record: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let id = self.record_id(record);
        match self.tree.get(id)? {
            None => Ok(None),
            Some(sealed) => open(&self.seal_key, &self.aad(&id), &sealed)
                .map(Some)
                .map_err(|_| self.damaged()),
        }
    }

    /// Removes `record` durably; true if it existed.
    pub fn remove(&self, record: &str) -> Result<bool, StoreError> {
        let existed = self.tree.remove(self.record_id(record))?.is_some();
        self.tree.flush()?;
        Ok(existed)
    }

    /// Every record's plaintext (names are not recoverable: ids are hashes). A damaged record
    /// yields an error in its place; the others still come.
    pub fn values(&self) -> impl Iterator<Item = Result<Zeroizing<Vec<u8>>, StoreError>> + '_ {
        self.tree.iter().map(move |item| {
            let (id, sealed) = item?;
            open(&self.seal_key, &self.aad(&id), &sealed).map_err(|_| self.damaged())
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
