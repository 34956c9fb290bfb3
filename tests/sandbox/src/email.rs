//! E-mail Management (I_Email_Management v1.0.0): the addresses of a record's owner, which
//! receive the device confirmation codes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::services::{Person, RecordServices};

#[derive(Debug, Clone)]
pub struct EmailEntry {
    pub identifier: String,
    pub email: String,
    /// Display name of who stored it (the insurance or the insurant).
    pub actor: String,
    pub created_at: u64,
}

#[derive(Debug, Default)]
pub struct EmailDirectory {
    by_kvnr: Mutex<HashMap<String, Vec<EmailEntry>>>,
}

impl EmailDirectory {
    /// The insurance stored each record owner's address when it created the record.
    pub fn seeded<'a>(people: impl Iterator<Item = &'a Person>) -> Self {
        let mut map: HashMap<String, Vec<EmailEntry>> = HashMap::new();
        for (i, p) in people.enumerate() {
            map.entry(p.kvnr.clone()).or_default().push(EmailEntry {
                identifier: format!("00000000-0000-4000-8000-{:012}", i + 1),
                email: p.email.clone(),
                actor: p.insurer.clone(),
                created_at: 0,
            });
        }
        Self {
            by_kvnr: Mutex::new(map),
        }
    }

    /// Every stored address of `kvnr` (where device codes go).
    pub fn addresses(&self, kvnr: &str) -> Vec<String> {
        self.by_kvnr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kvnr)
            .map(|v| v.iter().map(|e| e.email.clone()).collect())
            .unwrap_or_default()
    }
}

pub fn router(_svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
}
