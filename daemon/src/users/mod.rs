//! Local users of this PC ("Neuen lokalen Benutzer anlegen", "Anmelden") and their vaults.
//!
//! Directory: one sealed entry per user in the `directory` keyspace, under the installation key
//! (names, creation time, terms state, KDF parameters, the wrapped data key, failed-unlock
//! counter). Vault: the keyspace `u/<id>`, sealed with the user's random data key, which is
//! wrapped by Argon2id(password). Sessions: random tokens held only in memory; the data key
//! lives exactly as long as the user's last token.

pub mod rules;
mod sessions;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use epa_ipc::types::{LocalUser, LockCause};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use self::rules::{RuleError, Username, check_password};
pub use self::sessions::Session;
use self::sessions::Sessions;
use crate::events::EventBus;
use crate::legal::TERMS_VERSION;
use crate::store::crypto::{self, CryptoError, KdfParams, SecretKey};
use crate::store::{Keyspace, Store, StoreError};

/// Wrong passwords allowed before every further attempt has to wait.
pub const FREE_FAILURES: u32 = 5;
const FIRST_BACKOFF_S: u64 = 30;
const MAX_BACKOFF_S: u64 = 3600;
const DIRECTORY: &str = "directory";
const INSTALLATION_KEY_FILE: &str = "installation.key";
const WRAP_LABEL: &[u8] = b"epa-desktop data-key v1";
const PREF_MAX_KEY: usize = 64;
const PREF_MAX_VALUE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("a local user with this name already exists")]
    UsernameTaken,
    #[error("no such local user")]
    UserNotFound,
    #[error("wrong password")]
    WrongPassword { failures_before_backoff: u32 },
    #[error("too many wrong passwords; try again in {retry_after_s} s")]
    Backoff {
        retry_after_s: u64,
        retry_at_unix: u64,
    },
    #[error("not unlocked (or the session expired)")]
    Locked,
    #[error("unknown terms version {0:?}; the current one is {TERMS_VERSION}")]
    TermsVersionUnknown(String),
    #[error("invalid preference: {0}")]
    PreferenceInvalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cryptography failed: {0}")]
    Crypto(#[from] CryptoError),
    #[error("installation key {path}: {problem}")]
    InstallationKey { path: String, problem: String },
}

/// A user's directory entry (sealed under the installation key).
#[derive(Serialize, Deserialize, Clone)]
struct UserEntry {
    id: String,
    username: String,
    created_unix: u64,
    kdf: KdfParams,
    salt: String,
    wrapped_key: String,
    terms_accepted_version: Option<String>,
    failed_unlocks: u32,
    backoff_until_unix: u64,
}

/// Everything `ListUsers` may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub created_unix: u64,
    pub terms_accepted_version: Option<String>,
    pub unlocked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermsInfo {
    pub accepted_version: Option<String>,
    pub current_version: &'static str,
    pub acceptance_required: bool,
}

impl TermsInfo {
    fn of(accepted: Option<&String>) -> Self {
        Self {
            accepted_version: accepted.cloned(),
            current_version: TERMS_VERSION,
            acceptance_required: accepted.map(String::as_str) != Some(TERMS_VERSION),
        }
    }
}

/// Seconds since the epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// How long to wait after `failures` consecutive wrong passwords.
pub fn backoff_after(failures: u32) -> u64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    (FIRST_BACKOFF_S << doublings).min(MAX_BACKOFF_S)
}

pub struct Users {
    store: Arc<Store>,
    directory: Keyspace,
    kdf: KdfParams,
    clock: Clock,
    bus: Arc<EventBus>,
    sessions: Sessions,
    /// Serialises read-modify-write of directory entries (and so every password check).
    directory_lock: tokio::sync::Mutex<()>,
}

impl Users {
    pub fn open(
        data_dir: &Path,
        kdf: KdfParams,
        idle_timeout: Duration,
        clock: Clock,
        bus: Arc<EventBus>,
    ) -> Result<Arc<Self>, UsersError> {
        let installation_key = load_or_create_installation_key(data_dir)?;
        let store = Arc::new(Store::open(&data_dir.join("store"))?);
        let directory = store.keyspace(DIRECTORY, &installation_key)?;
        let users = Arc::new(Self {
            store,
            directory,
            kdf,
            clock,
            bus,
            sessions: Sessions::new(idle_timeout),
            directory_lock: tokio::sync::Mutex::new(()),
        });
        Ok(users)
    }

    pub fn idle_timeout(&self) -> Duration {
        self.sessions.idle_timeout()
    }

    /// Whether the user's vault is open (some session of theirs lives).
    pub fn is_unlocked(&self, user_id: &str) -> bool {
        self.sessions.is_open(user_id)
    }

    fn entries(&self) -> (Vec<UserEntry>, u32) {
        let mut damaged = 0;
        let mut entries = Vec::new();
        for item in self.directory.values() {
            match item.map(|b| serde_json::from_slice::<UserEntry>(&b)) {
                Ok(Ok(e)) => entries.push(e),
                Ok(Err(_)) | Err(_) => damaged += 1,
            }
        }
        entries.sort_by(|a, b| a.username.cmp(&b.username));
        (entries, damaged)
    }

    fn entry(&self, name: &Username) -> Result<UserEntry, UsersError> {
        self.directory
            .get_json(&name.folded())?
            .ok_or(UsersError::UserNotFound)
    }

    fn save(&self, entry: &UserEntry) -> Result<(), UsersError> {
        let name = Username::parse(&entry.username)?;
        self.directory.put_json(&name.folded(), entry, true)?;
        Ok(())
    }

    /// The users as the event snapshot shows them.
    pub fn local_users(&self) -> Vec<LocalUser> {
        self.entries()
            .0
            .into_iter()
            .map(|e| LocalUser {
                unlocked: self.sessions.is_open(&e.id),
                username: e.username,
            })
            .collect()
    }

    fn publish_users(&self) {
        let users = self.local_users();
        self.bus
            .publish(epa_ipc::types::Change::UsersChanged { users });
    }

    pub fn list(&self) -> (Vec<UserInfo>, u32) {
        let (entries, damaged) = self.entries();
        let users = entries
            .into_iter()
            .map(|e| UserInfo {
                unlocked: self.sessions.is_open(&e.id),
                username: e.username,
                created_unix: e.created_unix,
                terms_accepted_version: e.terms_accepted_version,
            })
            .collect();
        (users, damaged)
    }

    pub async fn create(
        &self,
        username: &str,
        password: Zeroizing<String>,
    ) -> Result<UserInfo, UsersError> {
        let name = Username::parse(username)?;
        check_password(&password, &name)?;
        let _guard = self.directory_lock.lock().await;
        if self.directory.get(&name.folded())?.is_some() {
            return Err(UsersError::UsernameTaken);
        }
        let mut id = [0u8; 16];
        crypto::fill_random(&mut id)?;
        let mut salt = [0u8; 16];
        crypto::fill_random(&mut salt)?;
        let id = hex(&id);
        let data_key = SecretKey::random()?;
        let kdf = self.kdf;
        let kek = derive_kek(kdf, password, salt.to_vec()).await?;
        let wrapped = crypto::seal(&kek, &wrap_aad(&id), data_key.expose())?;
        let entry = UserEntry {
            id,
            username: name.as_str().to_owned(),
            created_unix: (self.clock)(),
            kdf,
            salt: hex(&salt),
            wrapped_key: hex(&wrapped),
            terms_accepted_version: None,
            failed_unlocks: 0,
            backoff_until_unix: 0,
        };
        self.save(&entry)?;
        tracing::info!("local user created");
        self.publish_users();
        Ok(UserInfo {
            username: entry.username,
            created_unix: entry.created_unix,
            terms_accepted_version: None,
            unlocked: false,
        })
    }

    /// Checks `password` against `entry` under the backoff rules; records the outcome durably.
    /// The caller holds `directory_lock`.
    async fn verify(
        &self,
        entry: &mut UserEntry,
        password: Zeroizing<String>,
    ) -> Result<SecretKey, UsersError> {
        let now = (self.clock)();
        if entry.backoff_until_unix > now {
            return Err(UsersError::Backoff {
                retry_after_s: entry.backoff_until_unix - now,
                retry_at_unix: entry.backoff_until_unix,
            });
        }
        let salt = unhex(&entry.salt).ok_or(damaged_directory())?;
        let wrapped = unhex(&entry.wrapped_key).ok_or(damaged_directory())?;
        let kek = derive_kek(entry.kdf, password, salt).await?;
        match crypto::open(&kek, &wrap_aad(&entry.id), &wrapped) {
            Ok(bytes) => {
                let key = SecretKey::from_slice(&bytes).ok_or(damaged_directory())?;
                if entry.failed_unlocks > 0 || entry.backoff_until_unix > 0 {
                    entry.failed_unlocks = 0;
                    entry.backoff_until_unix = 0;
                    self.save(entry)?;
                }
                Ok(key)
            }
            Err(_) => {
                entry.failed_unlocks = entry.failed_unlocks.saturating_add(1);
                let wait = backoff_after(entry.failed_unlocks);
                entry.backoff_until_unix = if wait > 0 { now + wait } else { 0 };
                self.save(entry)?;
                tracing::warn!(
                    failures = entry.failed_unlocks,
                    "wrong password for a local user"
                );
                Err(UsersError::WrongPassword {
                    failures_before_backoff: FREE_FAILURES.saturating_sub(entry.failed_unlocks),
                })
            }
        }
    }

    pub async fn unlock(
        &self,
        username: &str,
        password: Zeroizing<String>,
    ) -> Result<(Zeroizing<String>, UserInfo, TermsInfo), UsersError> {
        let name = Username::parse(username).map_err(|_| UsersError::UserNotFound)?;
        let _guard = self.directory_lock.lock().await;
        let mut entry = self.entry(&name)?;
        let data_key = self.verify(&mut entry, password).await?;
        let vault = self.store.keyspace(&vault_name(&entry.id), &data_key)?;
        drop(data_key);
        let (token, newly_open) = self.sessions.open(&entry.id, &entry.username, vault)?;
        if newly_open {
            self.bus.publish(epa_ipc::types::Change::UserUnlocked {
                username: entry.username.clone(),
            });
        }
        tracing::info!("local user unlocked");
        let terms = TermsInfo::of(entry.terms_accepted_version.as_ref());
        Ok((
            token,
            UserInfo {
                username: entry.username,
                created_unix: entry.created_unix,
                terms_accepted_version: entry.terms_accepted_version,
                unlocked: true,
            },
            terms,
        ))
    }

    /// The session behind `token`, refreshing its idle timer.
    pub fn session(&self, token: &str) -> Result<Session, UsersError> {
        self.sessions.touch(token).ok_or(UsersError::Locked)
    }

    pub fn lock(&self, session: &Session) {
        if self.sessions.close_user(&session.user_id) {
            self.announce_locked(&session.username, LockCause::Lock);
        }
    }

    fn announce_locked(&self, username: &str, cause: LockCause) {
        tracing::info!(cause = cause.as_str(), "local user locked");
        self.bus.publish(epa_ipc::types::Change::UserLocked {
            username: username.to_owned(),
            cause,
        });
    }

    /// Ends idle sessions; run periodically.
    pub fn expire_idle(&self) {
        for username in self.sessions.expire_idle() {
            self.announce_locked(&username, LockCause::Idle);
        }
    }

    /// Re-wraps the data key under the new password; other sessions of the user end.
    pub async fn change_password(
        &self,
        session: &Session,
        token: &str,
        old: Zeroizing<String>,
        new: Zeroizing<String>,
    ) -> Result<(), UsersError> {
        let _guard = self.directory_lock.lock().await;
        let name = Username::parse(&session.username)?;
        let mut entry = self.entry(&name)?;
        check_password(&new, &name)?;
        let data_key = self.verify(&mut entry, old).await?;
        let mut salt = [0u8; 16];
        crypto::fill_random(&mut salt)?;
        let kek = derive_kek(self.kdf, new, salt.to_vec()).await?;
        entry.wrapped_key = hex(&crypto::seal(
            &kek,
            &wrap_aad(&entry.id),
            data_key.expose(),
        )?);
        entry.salt = hex(&salt);
        entry.kdf = self.kdf;
        self.save(&entry)?;
        self.sessions.close_others(&session.user_id, token);
        tracing::info!("local user changed password");
        Ok(())
    }

    /// Deletes the user and wipes the vault; needs the password.
    pub async fn delete(
        &self,
        username: &str,
        password: Zeroizing<String>,
    ) -> Result<(), UsersError> {
        let name = Username::parse(username).map_err(|_| UsersError::UserNotFound)?;
        let _guard = self.directory_lock.lock().await;
        let mut entry = self.entry(&name)?;
        let data_key = self.verify(&mut entry, password).await?;
        drop(data_key);
        if self.sessions.close_user(&entry.id) {
            self.announce_locked(&entry.username, LockCause::Deleted);
        }
        self.store.drop_keyspace(&vault_name(&entry.id))?;
        self.directory.remove(&name.folded())?;
        tracing::info!("local user deleted");
        self.publish_users();
        Ok(())
    }

    pub async fn accept_terms(
        &self,
        session: &Session,
        version: &str,
    ) -> Result<TermsInfo, UsersError> {
        if version != TERMS_VERSION {
            return Err(UsersError::TermsVersionUnknown(version.to_owned()));
        }
        let _guard = self.directory_lock.lock().await;
        let mut entry = self.entry(&Username::parse(&session.username)?)?;
        entry.terms_accepted_version = Some(version.to_owned());
        self.save(&entry)?;
        Ok(TermsInfo::of(entry.terms_accepted_version.as_ref()))
    }

    pub fn set_preference(
        &self,
        session: &Session,
        key: &str,
        value: &str,
    ) -> Result<(), UsersError> {
        check_preference_key(key)?;
        if value.len() > PREF_MAX_VALUE {
            return Err(UsersError::PreferenceInvalid("value longer than 64 KiB"));
        }
        session
            .vault
            .put_durable(&format!("pref/{key}"), value.as_bytes())?;
        Ok(())
    }

    pub fn get_preference(
        &self,
        session: &Session,
        key: &str,
    ) -> Result<Option<String>, UsersError> {
        check_preference_key(key)?;
        match session.vault.get(&format!("pref/{key}"))? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| {
                UsersError::Store(StoreError::Damaged {
                    keyspace: "vault".into(),
                })
            }),
        }
    }

    /// Ends every session (daemon shutdown); keys are wiped as they drop.
    pub fn lock_all(&self) {
        for username in self.sessions.close_all() {
            self.announce_locked(&username, LockCause::Lock);
        }
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "flushing the store at shutdown failed");
        }
    }
}

fn check_preference_key(key: &str) -> Result<(), UsersError> {
    let ok = !key.is_empty()
        && key.len() <= PREF_MAX_KEY
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UsersError::PreferenceInvalid(
            "names are 1–64 characters of a–z, 0–9, '.', '_', '-'",
        ))
    }
}

fn damaged_directory() -> UsersError {
    UsersError::Store(StoreError::Damaged {
        keyspace: DIRECTORY.into(),
    })
}

fn vault_name(id: &str) -> String {
    format!("u/{id}")
}

fn wrap_aad(id: &str) -> Vec<u8> {
    [WRAP_LABEL, b"\0", id.as_bytes()].concat()
}

/// Argon2id off the async threads: it takes a noticeable fraction of a second by design.
async fn derive_kek(
    kdf: KdfParams,
    password: Zeroizing<String>,
    salt: Vec<u8>,
) -> Result<SecretKey, UsersError> {
    tokio::task::spawn_blocking(move || kdf.derive_key(password.as_bytes(), &salt))
        .await
        .map_err(|e| UsersError::Crypto(CryptoError::KdfParams(e.to_string())))?
        .map_err(UsersError::from)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The key that seals the user directory. It lives next to the store (0600): it keeps user
/// names and KDF metadata out of plain sight on disk, it is not a defence against someone who
/// has the whole data directory — the vaults' data keys are, via each user's password.
fn load_or_create_installation_key(data_dir: &Path) -> Result<SecretKey, UsersError> {
    let path = data_dir.join(INSTALLATION_KEY_FILE);
    let err = |problem: String| UsersError::InstallationKey {
        path: path.display().to_string(),
        problem,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            SecretKey::from_slice(&bytes).ok_or_else(|| {
                err("has the wrong length; restore it from a backup (without it no local user can log in)".into())
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::random()?;
            epa_ipc::transport::write_private_atomically(&path, key.expose())
                .map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_starts_after_five_failures_doubles_and_is_capped() {
        assert_eq!((0..5).map(backoff_after).sum::<u64>(), 0);
        assert_eq!(backoff_after(5), 30);
        assert_eq!(backoff_after(6), 60);
        assert_eq!(backoff_after(7), 120);
        assert_eq!(backoff_after(12), 3600);
        assert_eq!(backoff_after(u32::MAX), 3600);
    }

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("ä1"), None);
    }

    #[test]
    fn preference_keys() {
        assert!(check_preference_key("ui.lang").is_ok());
        for bad in ["", "UI", "a b", "ä", &"x".repeat(65)] {
            assert!(check_preference_key(bad).is_err(), "{bad}");
        }
    }

    fn users(clock: Clock) -> (tempfile::TempDir, Arc<Users>) {
        let dir = tempfile::tempdir().unwrap();
        let bus = Arc::new(EventBus::new(Default::default(), 16));
        let u = Users::open(
            dir.path(),
            KdfParams::TEST_ONLY,
            Duration::from_secs(60),
            clock,
            bus,
        )
        .unwrap();
        (dir, u)
    }

    fn pw(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_owned())
    }

    #[tokio::test]
    async fn wrong_passwords_back_off_and_time_heals() {
        let now = Arc::new(std::sync::atomic::AtomicU64::new(1_000_000));
        let t = Arc::clone(&now);
        let (_dir, u) = users(Arc::new(move || {
            t.load(std::sync::atomic::Ordering::SeqCst)
        }));
        u.create("Anna", pw("Kastanienbaum 7")).await.unwrap();
        for left in (0..5).rev() {
            match u.unlock("anna", pw("falsch falsch")).await {
                Err(UsersError::WrongPassword {
                    failures_before_backoff,
                }) => assert_eq!(failures_before_backoff, left),
                other => panic!("{:?}", other.err()),
            }
        }
        // Even the right password waits now.
        match u.unlock("Anna", pw("Kastanienbaum 7")).await {
            Err(UsersError::Backoff { retry_after_s, .. }) => assert_eq!(retry_after_s, 30),
            other => panic!("{:?}", other.err()),
        }
        now.fetch_add(31, std::sync::atomic::Ordering::SeqCst);
        let (_token, info, terms) = u.unlock("ANNA", pw("Kastanienbaum 7")).await.unwrap();
        assert_eq!(info.username, "Anna");
        assert!(terms.acceptance_required);
    }

    #[tokio::test]
    async fn password_change_keeps_the_vault_and_needs_the_old_password() {
        let (_dir, u) = users(system_clock());
        u.create("Ben", pw("erste Passphrase")).await.unwrap();
        let (token, _, _) = u.unlock("Ben", pw("erste Passphrase")).await.unwrap();
        let s = u.session(&token).unwrap();
        u.set_preference(&s, "ui.lang", "de").unwrap();
        assert!(matches!(
            u.change_password(&s, &token, pw("nicht die alte"), pw("zweite Passphrase"))
                .await,
            Err(UsersError::WrongPassword { .. })
        ));
        u.change_password(&s, &token, pw("erste Passphrase"), pw("zweite Passphrase"))
            .await
            .unwrap();
        u.lock(&s);
        assert!(matches!(u.session(&token), Err(UsersError::Locked)));
        assert!(u.unlock("Ben", pw("erste Passphrase")).await.is_err());
        let (token, _, _) = u.unlock("Ben", pw("zweite Passphrase")).await.unwrap();
        let s = u.session(&token).unwrap();
        assert_eq!(
            u.get_preference(&s, "ui.lang").unwrap().as_deref(),
            Some("de")
        );
    }
}
