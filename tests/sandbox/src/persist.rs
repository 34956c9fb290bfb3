//! `--state-dir`: each Aktensystem's state (devices, e-mail addresses, documents, constraints,
//! audit log) lives in `<state-dir>/records/<id>.json`, document bytes as one file per document
//! in `<state-dir>/records/<id>.blobs/`; both are read back at start. Without `--state-dir`
//! everything stays in memory.
//!
//! A writer task takes a snapshot every [`SAVE_PERIOD`] and writes it atomically (temp file,
//! fsync, rename) when it differs from the last one written, and once more at shutdown: a crash
//! loses at most the last quarter second and never leaves a half-written file.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::services::RecordServices;

pub const SAVE_PERIOD: Duration = Duration::from_millis(250);
/// Bumped when the layout changes incompatibly; older files are refused, not misread.
const FORMAT: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a sandbox state file of this version ({reason}); move it away to start fresh"
    )]
    Format { path: String, reason: String },
}

fn io_err(path: &Path, source: std::io::Error) -> PersistError {
    PersistError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| io_err(dir, e))?;
    tmp.write_all(bytes).map_err(|e| io_err(path, e))?;
    tmp.as_file().sync_all().map_err(|e| io_err(path, e))?;
    tmp.persist(path).map_err(|e| io_err(path, e.error))?;
    Ok(())
}

/// One Aktensystem's state on disk.
pub struct StateFile {
    path: PathBuf,
    blobs: PathBuf,
    services: Arc<RecordServices>,
    /// Digest of the JSON last written, and the documents whose bytes are on disk.
    written: Mutex<([u8; 32], HashSet<String>)>,
}

/// Document uniqueIds are OIDs, but a file name is never taken from outside input.
fn blob_name(unique_id: &str) -> String {
    crate::idp::hex(&Sha256::digest(unique_id.as_bytes()))
}

impl StateFile {
    pub fn new(state_dir: &Path, services: Arc<RecordServices>) -> Self {
        let records = state_dir.join("records");
        Self {
            path: records.join(format!("{}.json", services.system_id)),
            blobs: records.join(format!("{}.blobs", services.system_id)),
            services,
            written: Mutex::new(([0; 32], HashSet::new())),
        }
    }

    /// Reads the state into the services, if a file exists; `Ok(false)` when there is none.
    pub fn load(&self) -> Result<bool, PersistError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(&self.path, e)),
        };
        let bad = |reason: String| PersistError::Format {
            path: self.path.display().to_string(),
            reason,
        };
        let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if v.get("format").and_then(Value::as_u64) != Some(FORMAT) {
            return Err(bad(format!("format is not {FORMAT}")));
        }
        let mut saved = HashSet::new();
        let mut load = |id: &str| {
            let p = self.blobs.join(blob_name(id));
            let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            saved.insert(id.to_owned());
            Ok(b)
        };
        let documents = v.get_mut("documents").map(Value::take).unwrap_or_default();
        self.services
            .documents
            .restore(documents, &mut load)
            .map_err(&bad)?;
        self.services
            .restore(v.get_mut("state").map(Value::take).unwrap_or_default())
            .map_err(bad)?;
        *self.written.lock().unwrap_or_else(|p| p.into_inner()) =
            (Sha256::digest(&bytes).into(), saved);
        Ok(true)
    }

    /// Writes new document bytes, then the JSON when it changed since the last write.
    pub fn save_if_changed(&self) -> Result<(), PersistError> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let (documents, new_blobs) = self.services.documents.snapshot(&written.1);
        for (id, bytes) in new_blobs {
            write_atomically(&self.blobs.join(blob_name(&id)), &bytes)?;
            written.1.insert(id);
        }
        let v = serde_json::json!({
            "format": FORMAT,
            "documents": documents,
            "state": self.services.snapshot(),
        });
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        if written.0 != digest {
            write_atomically(&self.path, &bytes)?;
            written.0 = digest;
        }
        Ok(())
    }
}

/// Saves every state file each [`SAVE_PERIOD`] until `stop` turns true, then once more.
pub async fn run_writer(files: Vec<StateFile>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let save_all = |files: &[StateFile]| {
        for f in files {
            if let Err(e) = f.save_if_changed() {
                tracing::error!(error = %e, "saving the sandbox state failed");
            }
        }
    };
    let mut tick = tokio::time::interval(SAVE_PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => save_all(&files),
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    save_all(&files);
}
