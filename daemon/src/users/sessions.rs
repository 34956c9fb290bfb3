//! Local sessions: random tokens, held only in memory (as SHA-256 digests), each with an idle
//! timer. A user's vault (and with it the data key) stays open exactly while a token of that
//! user lives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::store::Keyspace;
use crate::store::crypto::{CryptoError, fill_random};

/// What an authenticated call acts on.
#[derive(Clone)]
pub struct Session {
    pub user_id: String,
    pub username: String,
    pub vault: Arc<Keyspace>,
}

struct Token {
    user_id: String,
    last_used: Instant,
}

struct OpenVault {
    username: String,
    vault: Arc<Keyspace>,
}

#[derive(Default)]
struct Table {
    tokens: HashMap<[u8; 32], Token>,
    open: HashMap<String, OpenVault>,
}

impl Table {
    /// Closes the vaults that no token refers to any more; returns their user names.
    fn close_orphans(&mut self) -> Vec<String> {
        let tokens = &self.tokens;
        let orphans: Vec<String> = self
            .open
            .keys()
            .filter(|id| !tokens.values().any(|t| &t.user_id == *id))
            .cloned()
            .collect();
        orphans
            .into_iter()
            .filter_map(|id| self.open.remove(&id).map(|v| v.username))
            .collect()
    }
}

pub struct Sessions {
    table: Mutex<Table>,
    idle_timeout: Duration,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(idle_timeout: Duration) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            idle_timeout,
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // Every mutation leaves the table consistent; a poisoned lock is still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_open(&self, user_id: &str) -> bool {
        self.table().open.contains_key(user_id)
    }

    /// A new token for `user_id`; `vault` is kept if the user's vault is not open yet.
    /// Returns the token and whether the vault was newly opened.
    pub fn open(
        &self,
        user_id: &str,
        username: &str,
        vault: Keyspace,
    ) -> Result<(Zeroizing<String>, bool), CryptoError> {
        let mut raw = Zeroizing::new([0u8; 32]);
        fill_random(&mut raw[..])?;
        let token: Zeroizing<String> =
            Zeroizing::new(raw.iter().map(|b| format!("{b:02x}")).collect());
        let mut t = self.table();
        t.tokens.insert(
            digest(&token),
            Token {
                user_id: user_id.to_owned(),
                last_used: Instant::now(),
            },
        );
        let newly = !t.open.contains_key(user_id);
        if newly {
            t.open.insert(
                user_id.to_owned(),
                OpenVault {
                    username: username.to_owned(),
                    vault: Arc::new(vault),
                },
            );
        }
        Ok((token, newly))
    }

    /// The live session for `token`, its idle timer restarted.
    pub fn touch(&self, token: &str) -> Option<Session> {
        let mut t = self.table();
        let key = digest(token);
        let tok = t.tokens.get_mut(&key)?;
        if tok.last_used.elapsed() > self.idle_timeout {
            // Expired but not yet swept: it is dead now.
            return None;
        }
        tok.last_used = Instant::now();
        let user_id = tok.user_id.clone();
        let open = t.open.get(&user_id)?;
        Some(Session {
            username: open.username.clone(),
            vault: Arc::clone(&open.vault),
            user_id,
        })
    }

    /// Ends every token of `user_id`; true if the vault was open.
    pub fn close_user(&self, user_id: &str) -> bool {
        let mut t = self.table();
        t.tokens.retain(|_, tok| tok.user_id != user_id);
        t.open.remove(user_id).is_some()
    }

    /// Ends the user's other tokens (after a password change).
    pub fn close_others(&self, user_id: &str, keep: &str) {
        let keep = digest(keep);
        self.table()
            .tokens
            .retain(|k, tok| tok.user_id != user_id || *k == keep);
    }

    /// Drops idle tokens; returns the users whose vault closed.
    pub fn expire_idle(&self) -> Vec<String> {
        let idle = self.idle_timeout;
        let mut t = self.table();
        t.tokens.retain(|_, tok| tok.last_used.elapsed() <= idle);
        t.close_orphans()
    }

    pub fn close_all(&self) -> Vec<String> {
        let mut t = self.table();
        t.tokens.clear();
        t.close_orphans()
    }
}
