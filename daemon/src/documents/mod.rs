//! "Dokumente": the record's documents through the XDS Document Service (epa-protocol.md §5),
//! Constraint Management (§6.5) and the audit log (§6.4), with an encrypted offline cache and a
//! persistent upload queue in the user's vault.
//!
//! Vault records (all sealed; names never reach the disk):
//! * `doc/index/<kvnr>`: every Approved DocumentEntry of the record (one record: List needs all)
//! * `doc/lru/<kvnr>`: sizes and use order of cached contents (size limit, LRU eviction)
//! * `doc/content/<kvnr>/<uniqueId>`: a downloaded content
//! * `doc/uploads`: the upload queue; `doc/upload/<uploadId>`: a queued content
//!
//! Titles, names and contents are health data: they are never logged.

pub mod cache;
pub mod detect;
pub mod pdf;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use epa_ipc::types::{
    AddedDocument, DocumentList, DocumentQuery, DocumentSummary, NewDocument, Upload, UploadStatus,
};
use epa_protocol::http::Request;
use epa_protocol::xds::query::{self, ReturnType, StoredQuery};
use epa_protocol::xds::retrieve::{self, DocumentRequest};
use epa_protocol::xds::rim::{self, DocumentEntry, InsurantDocument};
use epa_protocol::xds::soap::{self, Encoded, Message};
use epa_protocol::xds::submit::{self, DocumentContent};
use epa_protocol::xds::{derived_uuid, error_code, format_uuid, sha1_hex, status, uuid_oid};
use serde::{Deserialize, Serialize};

use self::cache::{CachedEntry, ContentLru, Index, StoredIndex};
use crate::session::{EpaSessions, SessionError};
use crate::store::crypto::fill_random;
use crate::store::{Keyspace, StoreError};
use crate::users::{Session, Users};

/// XDS Document Service for insurants (§5.1).
pub const XDS_PATH: &str = "/epa/xds-document/api/I_Document_Management_Insurant";
/// Constraint Management (§6.5).
pub const CONSTRAINTS_PATH: &str = "/epa/xds-document/api/v1/constraints";
/// Audit Event Service (§6.4).
pub const AUDIT_PATH: &str = "/epa/audit/api/v1/fhir/AuditEvent";
/// Default size limit of cached contents.
pub const DEFAULT_CACHE_LIMIT: u64 = 256 * 1024 * 1024;
/// Chunks of Get and ExportPdf.
pub const CHUNK: usize = 64 * 1024;
/// List answers from the cache and refreshes in the background when it is older than this.
const STALE_AFTER: Duration = Duration::from_secs(60);
const AUDIT_PAGE: usize = 100;
const CONSTRAINTS_PAGE: usize = 50;
/// Bounds against a server that never ends its paging.
const MAX_PAGES: usize = 200;
/// Upload retries: 2 s doubling to 5 min.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// Finished uploads kept for ListUploads.
const KEEP_FINISHED: usize = 20;

const UPLOADS_KEY: &str = "doc/uploads";

fn index_key(kvnr: &str) -> String {
    format!("doc/index/{kvnr}")
}
fn lru_key(kvnr: &str) -> String {
    format!("doc/lru/{kvnr}")
}
fn content_key(kvnr: &str, id: &str) -> String {
    format!("doc/content/{kvnr}/{id}")
}
fn upload_key(upload_id: &str) -> String {
    format!("doc/upload/{upload_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    #[error("no such document")]
    NotFound,
    #[error("the document has more than {max} bytes")]
    TooLarge { max: usize },
    #[error("the content is none of PDF, JPEG, PNG, TIFF or plain text")]
    TypeUnsupported,
    #[error("a title has 1 to 128 characters without control characters")]
    TitleInvalid,
    #[error("deleting must be confirmed")]
    DeleteNotConfirmed,
    #[error("the Aktensystem refused the document ({error_code})")]
    Rejected { error_code: String },
    #[error("the document is not cached and the Aktensystem is unreachable")]
    Offline,
    #[error("the downloaded content does not match its size or hash")]
    Corrupt,
    #[error("the upload request is incomplete: {0}")]
    BadUpload(String),
    #[error("the Aktensystem's answer is unusable: {0}")]
    Protocol(String),
    #[error("creating the PDF failed: {0}")]
    Pdf(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = DocumentsError> = std::result::Result<T, E>;

impl DocumentsError {
    /// The Aktensystem could not be asked (as opposed to: it said no).
    fn is_unreachable(&self) -> bool {
        matches!(
            self,
            DocumentsError::Session(
                SessionError::BackendUnreachable { .. } | SessionError::NotLoggedIn { .. }
            )
        )
    }
}

fn protocol(what: &str, e: impl std::fmt::Display) -> DocumentsError {
    DocumentsError::Protocol(format!("{what}: {e}"))
}

fn unavailable(detail: String) -> DocumentsError {
    DocumentsError::Session(SessionError::BackendUnreachable {
        detail,
        retry_after_s: 60,
    })
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    fill_random(&mut b).map_err(|e| DocumentsError::Internal(e.to_string()))?;
    Ok(format_uuid(b, 4))
}

/// A fresh `2.25.<uuid>` OID (§5.3).
fn new_oid() -> Result<String> {
    uuid_oid(&random_uuid()?).ok_or_else(|| DocumentsError::Internal("uuid oid".into()))
}

/// Settings.
#[derive(Debug, Clone)]
pub struct DocumentsConfig {
    pub cache_limit_bytes: u64,
}

impl Default for DocumentsConfig {
    fn default() -> Self {
        Self {
            cache_limit_bytes: DEFAULT_CACHE_LIMIT,
        }
    }
}

/// One queued upload (durable in the vault before Add answers).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueuedUpload {
    /// Also the DocumentEntry uniqueId: chosen once, so a retry can never create a second copy.
    upload_id: String,
    kvnr: String,
    title: String,
    comment: String,
    created_unix: u64,
    mime_type: String,
    size: u64,
    status: UploadStatus,
    error_reason: Option<String>,
    /// Sends started; after the first, the record is asked before sending again.
    attempts: u32,
}

/// One record's cache in memory.
#[derive(Default)]
struct RecordState {
    kvnr: String,
    index: Index,
    lru: ContentLru,
    /// The last sync attempt failed because the Aktensystem could not be asked.
    offline: bool,
    last_attempt: Option<Instant>,
}

#[derive(Default)]
struct UserDocs {
    state: tokio::sync::Mutex<Option<RecordState>>,
    syncing: AtomicBool,
    worker: AtomicBool,
    /// Serialises changes of the upload queue record.
    queue: tokio::sync::Mutex<()>,
}

/// What ExportPdf hands to the PDF writer.
pub use self::pdf::{ExportItem, PdfError};

pub struct Documents {
    epa: Arc<EpaSessions>,
    users: Arc<Users>,
    config: DocumentsConfig,
    per_user: StdMutex<HashMap<String, Arc<UserDocs>>>,
}

impl Documents {
    pub fn new(epa: Arc<EpaSessions>, users: Arc<Users>, config: DocumentsConfig) -> Arc<Self> {
        Arc::new(Self {
            epa,
            users,
            config,
            per_user: StdMutex::new(HashMap::new()),
        })
    }

    fn user(&self, s: &Session) -> Arc<UserDocs> {
        let mut t = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(t.entry(s.user_id.clone()).or_default())
    }

    fn kvnr(&self, s: &Session) -> Result<String> {
        self.epa
            .profile_kvnr(s)?
            .ok_or(DocumentsError::Session(SessionError::NoProfile))
    }

    /// The record's cache, loaded from the vault at first use (a damaged index is dropped and
    /// rebuilt by the next sync).
    fn load(&self, s: &Session, kvnr: &str) -> Result<RecordState> {
        let stored: StoredIndex = match s.vault.get_json(&index_key(kvnr)) {
            Ok(v) => v.unwrap_or_default(),
            Err(StoreError::Damaged { .. }) => {
                tracing::warn!("documents index failed its integrity check; dropping it");
                s.vault.remove(&index_key(kvnr))?;
                StoredIndex::default()
            }
            Err(e) => return Err(e.into()),
        };
        let lru: ContentLru = match s.vault.get_json(&lru_key(kvnr)) {
            Ok(v) => v.unwrap_or_default(),
            Err(StoreError::Damaged { .. }) => ContentLru::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(RecordState {
            kvnr: kvnr.to_owned(),
            index: Index::from_stored(stored),
            lru,
            offline: false,
            last_attempt: None,
        })
    }

    /// Runs `f` on the record's cache (loaded if needed, reloaded after a profile change).
    async fn with_state<T>(
        &self,
        s: &Session,
        f: impl FnOnce(&mut RecordState) -> Result<T>,
    ) -> Result<T> {
        let kvnr = self.kvnr(s)?;
        let u = self.user(s);
        let mut g = u.state.lock().await;
        if g.as_ref().is_none_or(|st| st.kvnr != kvnr) {
            *g = Some(self.load(s, &kvnr)?);
        }
        match g.as_mut() {
            Some(st) => f(st),
            None => Err(DocumentsError::Internal("cache not loaded".into())),
        }
    }

    // ---- List ----------------------------------------------------------------------------------

    pub async fn list(self: &Arc<Self>, s: &Session, q: &DocumentQuery) -> Result<DocumentList> {
        self.kick_uploads(s);
        let (synced, stale) = self
            .with_state(s, |st| {
                Ok((
                    st.index.synced_unix,
                    st.last_attempt.is_none_or(|t| t.elapsed() > STALE_AFTER),
                ))
            })
            .await?;
        if q.refresh || synced == 0 {
            match self.sync(s).await {
                Ok(()) => {}
                // Never synced and not reachable: nothing to show but the reason.
                Err(e) if synced == 0 => {
                    if !self.has_entries(s).await? {
                        return Err(e);
                    }
                }
                Err(e) if e.is_unreachable() => {}
                Err(e) => return Err(e),
            }
        } else if stale {
            self.spawn_sync(s);
        }
        let vault = Arc::clone(&s.vault);
        self.with_state(s, |st| {
            let (page, total) = st.index.query(q);
            let documents = page
                .into_iter()
                .map(|e| cache::summary(e, st.lru.items.contains_key(&e.id)))
                .collect();
            drop(vault);
            Ok(DocumentList {
                documents,
                total_matching: u32::try_from(total).unwrap_or(u32::MAX),
                synced_unix: Some(st.index.synced_unix).filter(|t| *t != 0),
                offline: st.offline,
            })
        })
        .await
    }

    async fn has_entries(&self, s: &Session) -> Result<bool> {
        self.with_state(s, |st| Ok(!st.index.entries.is_empty()))
            .await
    }

    fn spawn_sync(self: &Arc<Self>, s: &Session) {
        let u = self.user(s);
        if u.syncing.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        let s = s.clone();
        tokio::spawn(async move {
            if let Err(e) = me.sync(&s).await {
                tracing::info!(error = %e, "background documents sync failed");
            }
            me.user(&s).syncing.store(false, Ordering::SeqCst);
        });
    }

    /// Reconciles the cache with the record: FindDocuments (Approved), the hiding constraints
    /// and the audit log's reads by others. Entries gone from the record lose their content.
    pub async fn sync(&self, s: &Session) -> Result<()> {
        let result = self.fetch_all(s).await;
        let offline = matches!(&result, Err(e) if e.is_unreachable());
        let fetched = match result {
            Ok(f) => Some(f),
            Err(e) => {
                self.with_state(s, |st| {
                    st.offline = offline;
                    st.last_attempt = Some(Instant::now());
                    Ok(())
                })
                .await?;
                return Err(e);
            }
        };
        let Some((kvnr, entries)) = fetched else {
            return Ok(());
        };
        let vault = Arc::clone(&s.vault);
        self.with_state(s, move |st| {
            if st.kvnr != kvnr {
                // The profile changed meanwhile; this answer belongs to another record.
                return Ok(());
            }
            let mut index = Index::default();
            for e in entries {
                index.upsert(e);
            }
            index.synced_unix = now_unix();
            let gone: Vec<String> = st
                .lru
                .items
                .keys()
                .filter(|id| index.get(id).is_none())
                .cloned()
                .collect();
            for id in gone {
                st.lru.items.remove(&id);
                vault.remove(&content_key(&kvnr, &id))?;
            }
            st.index = index;
            st.offline = false;
            st.last_attempt = Some(Instant::now());
            vault.put_json(&index_key(&kvnr), &st.index.to_stored(), true)?;
            vault.put_json(&lru_key(&kvnr), &st.lru, true)?;
            Ok(())
        })
        .await
    }

    async fn fetch_all(&self, s: &Session) -> Result<(String, Vec<CachedEntry>)> {
        let kvnr = self.kvnr(s)?;
        let q = StoredQuery::find_documents(&rim::patient_id(&kvnr), ReturnType::LeafClass);
        let (m, kvnr) = self
            .xds(s, &query::build_request(&q, &random_uuid()?))
            .await?;
        let r = query::parse_response(&m).map_err(|e| protocol("FindDocuments", e))?;
        if r.status == status::FAILURE {
            return Err(DocumentsError::Rejected {
                error_code: first_code(&r.errors),
            });
        }
        let hidden = self.constraints(s).await?;
        let reads = self.reads_by_others(s, &kvnr).await?;
        let entries = r
            .documents()
            .filter(|d| d.status.as_deref().is_none_or(|st| st == status::APPROVED))
            .map(|d| {
                let mut e = cached_entry(d, &kvnr);
                e.accesses = reads.count(&e.id, &e.title);
                e.hidden_by = e.root_id.as_ref().and_then(|r| hidden.get(r)).cloned();
                e
            })
            .collect();
        Ok((kvnr, entries))
    }

    /// Document constraints: rootDocumentId → assignmentId.
    async fn constraints(&self, s: &Session) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for page in 0..MAX_PAGES {
            let path = format!(
                "{CONSTRAINTS_PATH}?for=document&limit={CONSTRAINTS_PAGE}&offset={}",
                page * CONSTRAINTS_PAGE
            );
            let (resp, _) = self.epa.send_record_request(s, Request::get(path)).await?;
            if resp.status >= 500 {
                return Err(unavailable(format!("constraints: HTTP {}", resp.status)));
            }
            if resp.status != 200 {
                return Err(protocol("constraints", format!("HTTP {}", resp.status)));
            }
            let p: ConstraintPage =
                serde_json::from_slice(&resp.body).map_err(|e| protocol("constraints", e))?;
            let n = p.data.len();
            for c in p.data {
                if let Some(root) = c.parameters.root_document_id {
                    out.insert(root, c.assignment_id);
                }
            }
            if n < CONSTRAINTS_PAGE || p.query.is_some_and(|q| out.len() >= q.total_matching) {
                break;
            }
        }
        Ok(out)
    }

    async fn reads_by_others(&self, s: &Session, kvnr: &str) -> Result<Reads> {
        let mut reads = Reads::default();
        for page in 0..MAX_PAGES {
            let path = format!(
                "{AUDIT_PATH}?_count={AUDIT_PAGE}&_offset={}",
                page * AUDIT_PAGE
            );
            let (resp, _) = self.epa.send_record_request(s, Request::get(path)).await?;
            if resp.status >= 500 {
                return Err(unavailable(format!("audit: HTTP {}", resp.status)));
            }
            if resp.status != 200 {
                return Err(protocol("audit", format!("HTTP {}", resp.status)));
            }
            let b: Bundle = serde_json::from_slice(&resp.body).map_err(|e| protocol("audit", e))?;
            let n = b.entry.len();
            for e in b.entry {
                reads.add(&e.resource, kvnr);
            }
            if n < AUDIT_PAGE {
                break;
            }
        }
        Ok(reads)
    }

    /// An XDS call: SOAP in, SOAP out. A 5xx without a usable answer counts as unreachable.
    async fn xds(&self, s: &Session, e: &Encoded) -> Result<(Message, String)> {
        let req = Request::post(XDS_PATH, &e.content_type, e.body.clone());
        let (resp, kvnr) = self.epa.send_record_request(s, req).await?;
        let ct = resp.header("content-type").unwrap_or("").to_owned();
        if resp.status >= 500 {
            return Err(unavailable(format!("XDS: HTTP {}", resp.status)));
        }
        // Retrieved documents are slices of the answer (no copy); it is wiped when the last
        // of them goes.
        soap::decode_shared(&ct, resp.body.clone())
            .map(|m| (m, kvnr))
            .map_err(|e| protocol("XDS", format!("HTTP {}: {e}", resp.status)))
    }

    async fn find(&self, s: &Session, id: &str) -> Result<CachedEntry> {
        if let Some(e) = self
            .with_state(s, |st| Ok(st.index.get(id).cloned()))
            .await?
        {
            return Ok(e);
        }
        // Not known yet (e.g. uploaded elsewhere): ask the record once.
        match self.sync(s).await {
            Ok(()) | Err(_) => {}
        }
        self.with_state(s, |st| {
            st.index.get(id).cloned().ok_or(DocumentsError::NotFound)
        })
        .await
    }

    // ---- Get -----------------------------------------------------------------------------------

    /// The verified content: from the cache, else ITI-43 (then cached).
    pub async fn get(self: &Arc<Self>, s: &Session, id: &str) -> Result<(DocumentSummary, Bytes)> {
        self.kick_uploads(s);
        let entry = self.find(s, id).await?;
        let kvnr = self.kvnr(s)?;
        let key = content_key(&kvnr, id);
        let cached = match s.vault.get(&key) {
            Ok(Some(b)) if verify(&entry, &b) => Some(b),
            Ok(Some(_)) => {
                tracing::warn!("a cached document no longer matches its hash; fetching it again");
                self.forget_content(s, id).await?;
                None
            }
            Ok(None) => None,
            Err(StoreError::Damaged { .. }) => {
                tracing::warn!("a cached document failed its integrity check; fetching it again");
                self.forget_content(s, id).await?;
                None
            }
            Err(e) => return Err(e.into()),
        };
        let from_cache = cached.is_some();
        let bytes = match cached {
            // Wiped when the last slice of it goes, like a retrieved answer.
            Some(b) => Bytes::from_owner(b),
            None => {
                let b = match self.retrieve(s, &entry).await {
                    Err(e) if e.is_unreachable() => return Err(DocumentsError::Offline),
                    r => r?,
                };
                if !verify(&entry, &b) {
                    return Err(DocumentsError::Corrupt);
                }
                b
            }
        };
        let limit = self.config.cache_limit_bytes;
        let vault = Arc::clone(&s.vault);
        let summary = self
            .with_state(s, |st| {
                let size = bytes.len() as u64;
                if size <= limit {
                    // Also after a damaged entry was dropped: the LRU may still name it.
                    if !from_cache {
                        vault.put(&content_key(&st.kvnr, id), &bytes)?;
                    }
                    st.lru.touch(id, size);
                    for old in st.lru.evict(limit, id) {
                        vault.remove(&content_key(&st.kvnr, &old))?;
                    }
                    vault.put_json(&lru_key(&st.kvnr), &st.lru, true)?;
                }
                Ok(cache::summary(&entry, st.lru.items.contains_key(id)))
            })
            .await?;
        Ok((summary, bytes))
    }

    /// Drops a cached content that cannot be used (damaged or no longer matching its entry), and
    /// its LRU entry, so that it is neither served nor listed as cached until fetched again.
    async fn forget_content(&self, s: &Session, id: &str) -> Result<()> {
        let vault = Arc::clone(&s.vault);
        self.with_state(s, |st| {
            vault.remove(&content_key(&st.kvnr, id))?;
            if st.lru.items.remove(id).is_some() {
                vault.put_json(&lru_key(&st.kvnr), &st.lru, true)?;
            }
            Ok(())
        })
        .await
    }

    async fn retrieve(&self, s: &Session, e: &CachedEntry) -> Result<Bytes> {
        let repo = e
            .repository_unique_id
            .clone()
            .ok_or_else(|| protocol("ITI-43", "entry without repositoryUniqueId"))?;
        let req = DocumentRequest {
            home_community_id: e.home_community_id.clone(),
            repository_unique_id: repo,
            document_unique_id: e.id.clone(),
        };
        let (m, _) = self
            .xds(s, &retrieve::build_request(&[req], &random_uuid()?, true))
            .await?;
        let r = retrieve::parse_response(&m).map_err(|x| protocol("ITI-43", x))?;
        match r
            .documents
            .into_iter()
            .find(|d| d.document_unique_id == e.id)
        {
            Some(d) => Ok(d.bytes),
            None if r.response.errors.iter().any(|x| {
                x.code == error_code::MISSING_DOCUMENT
                    || x.code == error_code::DOCUMENT_UNIQUE_ID_ERROR
            }) =>
            {
                Err(DocumentsError::NotFound)
            }
            None => Err(DocumentsError::Rejected {
                error_code: first_code(&r.response.errors),
            }),
        }
    }

    // ---- Add and the upload queue --------------------------------------------------------------

    /// Checks and queues an upload durably; the worker sends it.
    pub async fn add(
        self: &Arc<Self>,
        s: &Session,
        meta: &NewDocument,
        bytes: &[u8],
    ) -> Result<AddedDocument> {
        let title = detect::title(&meta.title).ok_or(DocumentsError::TitleInvalid)?;
        if bytes.len() > detect::MAX_UPLOAD_BYTES {
            return Err(DocumentsError::TooLarge {
                max: detect::MAX_UPLOAD_BYTES,
            });
        }
        let mime = detect::mime_type(bytes).ok_or(DocumentsError::TypeUnsupported)?;
        let comment = meta.comment.trim();
        if comment.chars().count() > 1024 || comment.chars().any(|c| c.is_control() && c != '\n') {
            return Err(DocumentsError::BadUpload("comment".into()));
        }
        let mut hints = Vec::new();
        if mime == "application/pdf" && !detect::is_pdfa(bytes) {
            hints.push(
                "PDF ist nicht PDF/A: für die dauerhafte Lesbarkeit empfiehlt sich PDF/A."
                    .to_owned(),
            );
        }
        let kvnr = self.kvnr(s)?;
        let upload = QueuedUpload {
            upload_id: new_oid()?,
            kvnr,
            title,
            comment: comment.to_owned(),
            created_unix: meta.created_unix.unwrap_or_else(now_unix),
            mime_type: mime.to_owned(),
            size: bytes.len() as u64,
            status: UploadStatus::Queued,
            error_reason: None,
            attempts: 0,
        };
        // Content first, then the queue entry naming it: both durable before the answer.
        s.vault.put_durable(&upload_key(&upload.upload_id), bytes)?;
        {
            let u = self.user(s);
            let _q = u.queue.lock().await;
            let mut all = load_queue(&s.vault)?;
            all.push(upload.clone());
            s.vault.put_json(UPLOADS_KEY, &all, true)?;
        }
        self.kick_uploads(s);
        Ok(AddedDocument {
            upload_id: upload.upload_id,
            detected_mime_type: mime.to_owned(),
            hints,
            document: None,
        })
    }

    pub async fn uploads(self: &Arc<Self>, s: &Session) -> Result<Vec<Upload>> {
        self.kick_uploads(s);
        let u = self.user(s);
        let _q = u.queue.lock().await;
        Ok(load_queue(&s.vault)?
            .into_iter()
            .map(|q| Upload {
                upload_id: q.upload_id,
                title: q.title,
                status: q.status,
                error_reason: q.error_reason,
                size: q.size,
            })
            .collect())
    }

    /// Starts the user's upload worker unless it runs. It works while the vault is open and
    /// the ePA session is logged in; the next call of the user restarts it after that.
    pub fn kick_uploads(self: &Arc<Self>, s: &Session) {
        let u = self.user(s);
        if u.worker.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        let s = s.clone();
        tokio::spawn(async move {
            loop {
                me.work(&s).await;
                u.worker.store(false, Ordering::SeqCst);
                // Work queued between the last look and the flag: take it, unless someone
                // else already started.
                let pending = {
                    let _q = u.queue.lock().await;
                    load_queue(&s.vault).is_ok_and(|q| q.iter().any(is_pending))
                };
                if !pending
                    || !me.users.is_unlocked(&s.user_id)
                    || me.epa.logged_in_record(&s).await.is_err()
                    || u.worker.swap(true, Ordering::SeqCst)
                {
                    break;
                }
            }
        });
    }

    async fn work(&self, s: &Session) {
        let mut delay = RETRY_FIRST;
        loop {
            if !self.users.is_unlocked(&s.user_id) {
                return;
            }
            let next = {
                let u = self.user(s);
                let _q = u.queue.lock().await;
                match load_queue(&s.vault) {
                    Ok(q) => q.into_iter().find(is_pending),
                    Err(e) => {
                        tracing::warn!(error = %e, "the upload queue is unreadable");
                        return;
                    }
                }
            };
            let Some(item) = next else { return };
            match self.upload(s, item.clone()).await {
                Ok(()) => {
                    delay = RETRY_FIRST;
                    tracing::info!("upload done");
                    let _ = self
                        .finish(s, &item.upload_id, UploadStatus::Done, None)
                        .await;
                    let _ = s.vault.remove(&upload_key(&item.upload_id));
                    if let Err(e) = self.sync(s).await {
                        tracing::info!(error = %e, "sync after upload failed");
                    }
                }
                Err(DocumentsError::Rejected { error_code }) => {
                    tracing::info!(%error_code, "upload refused by the Aktensystem");
                    let _ = self
                        .finish(s, &item.upload_id, UploadStatus::Failed, Some(error_code))
                        .await;
                    let _ = s.vault.remove(&upload_key(&item.upload_id));
                }
                Err(DocumentsError::Session(SessionError::NotLoggedIn { .. })) => {
                    // Resumes at the user's next call after logging in again.
                    return;
                }
                Err(e) => {
                    tracing::info!(error = %e, retry_in_s = delay.as_secs(), "upload failed; retrying");
                    let _ = self.note_problem(s, &item.upload_id, &e).await;
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn update_queue(
        &self,
        s: &Session,
        upload_id: &str,
        f: impl FnOnce(&mut QueuedUpload),
    ) -> Result<()> {
        let u = self.user(s);
        let _q = u.queue.lock().await;
        let mut all = load_queue(&s.vault)?;
        if let Some(q) = all.iter_mut().find(|q| q.upload_id == upload_id) {
            f(q);
        }
        // Keep only the newest finished entries.
        let finished = all.iter().filter(|q| !is_pending(q)).count();
        if finished > KEEP_FINISHED {
            let mut drop_n = finished - KEEP_FINISHED;
            all.retain(|q| {
                if drop_n > 0 && !is_pending(q) {
                    drop_n -= 1;
                    false
                } else {
                    true
                }
            });
        }
        s.vault.put_json(UPLOADS_KEY, &all, true)?;
        Ok(())
    }

    async fn finish(
        &self,
        s: &Session,
        upload_id: &str,
        status: UploadStatus,
        reason: Option<String>,
    ) -> Result<()> {
        self.update_queue(s, upload_id, |q| {
            q.status = status;
            q.error_reason = reason;
        })
        .await
    }

    async fn note_problem(&self, s: &Session, upload_id: &str, e: &DocumentsError) -> Result<()> {
        let reason = match e {
            DocumentsError::Session(SessionError::BackendUnreachable { .. }) => {
                "BACKEND_UNREACHABLE"
            }
            _ => "BACKEND_ERROR",
        };
        self.update_queue(s, upload_id, |q| {
            q.status = UploadStatus::Queued;
            q.error_reason = Some(reason.to_owned());
        })
        .await
    }

    /// One attempt: after an earlier (maybe half-done) send, first ask whether the document
    /// arrived; then ITI-41.
    async fn upload(&self, s: &Session, item: QueuedUpload) -> Result<()> {
        let (kvnr, display_name) = self.epa.logged_in_record(s).await?;
        if kvnr != item.kvnr {
            return Err(DocumentsError::Rejected {
                error_code: "RECORD_CHANGED".into(),
            });
        }
        if item.attempts > 0 && self.arrived(s, &item).await? {
            return Ok(());
        }
        self.update_queue(s, &item.upload_id, |q| {
            q.attempts += 1;
            q.status = UploadStatus::Uploading;
        })
        .await?;
        let bytes = s
            .vault
            .get(&upload_key(&item.upload_id))?
            .ok_or_else(|| DocumentsError::Internal("queued content missing".into()))?;
        let name = display_name.unwrap_or_default();
        let (given, family) = match name.trim().rsplit_once(' ') {
            Some((g, f)) => (g.to_owned(), f.to_owned()),
            None => (String::new(), name.trim().to_owned()),
        };
        let created = rim::dtm_from_unix(item.created_unix);
        let doc = InsurantDocument {
            kvnr: &kvnr,
            given_name: &given,
            family_name: &family,
            title: &item.title,
            comments: Some(item.comment.as_str()).filter(|c| !c.is_empty()),
            mime_type: &item.mime_type,
            creation_time: &created,
            id: "Document01",
            unique_id: &item.upload_id,
        };
        let mut entry = doc.entry();
        entry.hash = Some(sha1_hex(&bytes));
        entry.size = Some(bytes.len() as u64);
        let source_id = uuid_oid(&derived_uuid("epa-desktop sourceId"))
            .ok_or_else(|| DocumentsError::Internal("source id".into()))?;
        let objects = doc.submission(
            entry,
            &new_oid()?,
            &source_id,
            &rim::dtm_from_unix(now_unix()),
        );
        let docs = vec![DocumentContent {
            id: "Document01".into(),
            mime_type: item.mime_type.clone(),
            bytes: bytes.to_vec().into(),
        }];
        let e = submit::build_provide_and_register(&objects, &docs, &random_uuid()?, true);
        let (m, _) = self.xds(s, &e).await?;
        let r = submit::parse_registry_response(&m).map_err(|x| protocol("ITI-41", x))?;
        if r.is_success() {
            return Ok(());
        }
        // The uniqueId is ours alone: a duplicate means an earlier send arrived.
        if r.errors
            .iter()
            .any(|x| x.code == error_code::DUPLICATE_UNIQUE_ID_IN_REGISTRY)
        {
            return Ok(());
        }
        if r.errors
            .iter()
            .any(|x| x.code == error_code::REGISTRY_ERROR || x.code == error_code::REPOSITORY_ERROR)
            && r.errors.iter().all(|x| x.context.contains("unavailable"))
        {
            return Err(unavailable("ITI-41: service unavailable".into()));
        }
        Err(DocumentsError::Rejected {
            error_code: first_code(&r.errors),
        })
    }

    /// Whether the queued document is in the record already (FindDocumentsByTitle, then the
    /// uniqueId decides).
    async fn arrived(&self, s: &Session, item: &QueuedUpload) -> Result<bool> {
        let pattern = item.title.replace(['%', '_'], "_");
        let q = StoredQuery::find_documents_by_title(&rim::patient_id(&item.kvnr), &pattern);
        let (m, _) = self
            .xds(s, &query::build_request(&q, &random_uuid()?))
            .await?;
        let r = query::parse_response(&m).map_err(|e| protocol("FindDocumentsByTitle", e))?;
        if r.status == status::FAILURE {
            return Err(unavailable(format!(
                "FindDocumentsByTitle: {}",
                first_code(&r.errors)
            )));
        }
        Ok(r.documents().any(|d| d.unique_id == item.upload_id))
    }

    // ---- Delete, Hide, Unhide ------------------------------------------------------------------

    pub async fn delete(self: &Arc<Self>, s: &Session, id: &str, confirm: bool) -> Result<()> {
        if !confirm {
            return Err(DocumentsError::DeleteNotConfirmed);
        }
        let entry = self.find(s, id).await?;
        let (m, kvnr) = self
            .xds(
                s,
                &submit::build_remove_objects(
                    std::slice::from_ref(&entry.entry_uuid),
                    &random_uuid()?,
                ),
            )
            .await?;
        let r = submit::parse_registry_response(&m).map_err(|x| protocol("ITI-62", x))?;
        if !r.is_success() {
            if r.errors
                .iter()
                .any(|x| x.code == error_code::UNRESOLVED_REFERENCE)
            {
                self.drop_entry(s, &kvnr, id).await?;
                return Err(DocumentsError::NotFound);
            }
            return Err(DocumentsError::Rejected {
                error_code: first_code(&r.errors),
            });
        }
        self.drop_entry(s, &kvnr, id).await
    }

    async fn drop_entry(&self, s: &Session, kvnr: &str, id: &str) -> Result<()> {
        let vault = Arc::clone(&s.vault);
        let kvnr = kvnr.to_owned();
        self.with_state(s, move |st| {
            st.index.remove(id);
            st.lru.items.remove(id);
            vault.remove(&content_key(&kvnr, id))?;
            vault.put_json(&index_key(&kvnr), &st.index.to_stored(), true)?;
            vault.put_json(&lru_key(&kvnr), &st.lru, true)?;
            Ok(())
        })
        .await
    }

    async fn set_hidden(&self, s: &Session, id: &str, by: Option<String>) -> Result<()> {
        let vault = Arc::clone(&s.vault);
        self.with_state(s, move |st| {
            if let Some(e) = st.index.get_mut(id) {
                e.hidden_by = by;
            }
            vault.put_json(&index_key(&st.kvnr), &st.index.to_stored(), true)?;
            Ok(())
        })
        .await
    }

    /// Hides the document from institutions (§6.5, `for: document` with the root id).
    pub async fn hide(self: &Arc<Self>, s: &Session, id: &str) -> Result<()> {
        let entry = self.find(s, id).await?;
        if entry.hidden_by.is_some() {
            return Ok(());
        }
        let root = entry
            .root_id
            .clone()
            .ok_or_else(|| DocumentsError::Rejected {
                error_code: "noRootDocumentId".into(),
            })?;
        let body = serde_json::json!({"for": "document", "parameters": {"rootDocumentId": root}});
        let req = Request::post(CONSTRAINTS_PATH, "application/json", body.to_string());
        let (resp, _) = self.epa.send_record_request(s, req).await?;
        match resp.status {
            200 | 201 => {
                let a: Assignment =
                    serde_json::from_slice(&resp.body).map_err(|e| protocol("constraints", e))?;
                self.set_hidden(s, id, Some(a.assignment_id)).await
            }
            // Already hidden (duplicate): learn the assignment from the list.
            409 => {
                let all = self.constraints(s).await?;
                match all.get(&root) {
                    Some(a) => self.set_hidden(s, id, Some(a.clone())).await,
                    None => Err(DocumentsError::Rejected {
                        error_code: rest_code(&resp.body),
                    }),
                }
            }
            404 => Err(DocumentsError::NotFound),
            st if st >= 500 => Err(unavailable(format!("constraints: HTTP {st}"))),
            _ => Err(DocumentsError::Rejected {
                error_code: rest_code(&resp.body),
            }),
        }
    }

    pub async fn unhide(self: &Arc<Self>, s: &Session, id: &str) -> Result<()> {
        let entry = self.find(s, id).await?;
        let assignment = match entry.hidden_by.clone() {
            Some(a) => Some(a),
            None => match &entry.root_id {
                Some(root) => self.constraints(s).await?.get(root).cloned(),
                None => None,
            },
        };
        let Some(assignment) = assignment else {
            return Ok(());
        };
        if !epa_protocol::xds::is_uuid(&assignment) {
            return Err(protocol("constraints", "assignmentId is no UUID"));
        }
        let req = Request::delete(format!("{CONSTRAINTS_PATH}/{assignment}"));
        let (resp, _) = self.epa.send_record_request(s, req).await?;
        match resp.status {
            200 | 204 | 404 => self.set_hidden(s, id, None).await,
            st if st >= 500 => Err(unavailable(format!("constraints: HTTP {st}"))),
            _ => Err(DocumentsError::Rejected {
                error_code: rest_code(&resp.body),
            }),
        }
    }

    // ---- ExportPdf -----------------------------------------------------------------------------

    pub async fn export_pdf(self: &Arc<Self>, s: &Session, ids: &[String]) -> Result<Vec<u8>> {
        if ids.is_empty() {
            return Err(DocumentsError::NotFound);
        }
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let (d, bytes) = self.get(s, id).await?;
            items.push(ExportItem {
                title: d.title,
                author: if d.by_me {
                    "von mir".to_owned()
                } else {
                    d.author
                },
                created_unix: d.created_unix,
                mime_type: d.mime_type,
                bytes: bytes.to_vec(),
            });
        }
        // PDF rendering is CPU work: off the async workers.
        tokio::task::spawn_blocking(move || pdf::export(&items))
            .await
            .map_err(|e| DocumentsError::Internal(e.to_string()))?
            .map(|x| x.pdf)
            .map_err(|e| DocumentsError::Pdf(e.to_string()))
    }
}

fn is_pending(q: &QueuedUpload) -> bool {
    matches!(q.status, UploadStatus::Queued | UploadStatus::Uploading)
}

fn load_queue(vault: &Keyspace) -> Result<Vec<QueuedUpload>> {
    Ok(vault.get_json(UPLOADS_KEY)?.unwrap_or_default())
}

fn first_code(errors: &[submit::RegistryError]) -> String {
    errors
        .first()
        .map_or_else(|| "unknown".to_owned(), |e| e.code.clone())
}

fn rest_code(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errorCode")
                .and_then(|c| c.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Size and SHA-1 as the registry knows them (§5.6: the repository computes them).
fn verify(e: &CachedEntry, bytes: &[u8]) -> bool {
    e.size.is_none_or(|n| n == bytes.len() as u64)
        && e.hash
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(&sha1_hex(bytes)))
}

/// The table row of a DocumentEntry.
fn cached_entry(d: &DocumentEntry, kvnr: &str) -> CachedEntry {
    let person = d.authors.iter().find_map(|a| a.person.as_deref());
    let by_me = person.is_some_and(|p| p.split('^').next() == Some(kvnr));
    let author = d
        .authors
        .iter()
        .find_map(|a| {
            a.person
                .as_deref()
                .map(person_name)
                .filter(|n| !n.is_empty())
        })
        .or_else(|| {
            d.authors.iter().find_map(|a| {
                a.institutions
                    .first()
                    .map(|i| i.split('^').next().unwrap_or("").to_owned())
            })
        })
        .unwrap_or_default();
    let type_code = d.type_code.as_ref().map(|c| c.code.as_str());
    let class_code = d
        .class_code
        .as_ref()
        .map(|c| c.code.clone())
        .unwrap_or_default();
    CachedEntry {
        id: d.unique_id.clone(),
        entry_uuid: d.id.clone(),
        repository_unique_id: d.repository_unique_id.clone(),
        home_community_id: d.home.clone(),
        title: d.title.clone().unwrap_or_default(),
        author,
        by_me,
        mime_type: d.mime_type.clone(),
        category: category(type_code, &class_code, by_me).to_owned(),
        class_display: d
            .class_code
            .as_ref()
            .map(|c| c.display.clone())
            .unwrap_or_default(),
        class_code,
        created_unix: d.created_unix().unwrap_or(0),
        size: d.size,
        hash: d.hash.clone(),
        comment: d.comments.clone().unwrap_or_default(),
        root_id: d.root_document_id().map(str::to_owned),
        accesses: 0,
        hidden_by: None,
    }
}

/// "Dr. med. Eva Sommer" from XCN `id^Sommer^Eva^^^Dr. med.^…`.
fn person_name(xcn: &str) -> String {
    let f: Vec<&str> = xcn.split('^').collect();
    let get = |i: usize| f.get(i).copied().unwrap_or("").trim();
    [get(5), get(2), get(3), get(1)]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The record category (§5.6 folders) a document most likely sits in. The server assigns
/// folders; this derives the common ones from the codes so the filter works from the cache.
fn category(type_code: Option<&str>, class_code: &str, by_me: bool) -> &'static str {
    if by_me || type_code == Some("PATD") {
        return "patient";
    }
    match class_code {
        "AUS" => "vaccination",
        "MED" => "emp",
        _ => "reports",
    }
}

#[derive(Deserialize)]
struct ConstraintPage {
    #[serde(default)]
    query: Option<PageQuery>,
    #[serde(default)]
    data: Vec<Constraint>,
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(rename = "totalMatching", default)]
    total_matching: usize,
}

#[derive(Deserialize)]
struct Constraint {
    #[serde(rename = "assignmentId")]
    assignment_id: String,
    #[serde(default)]
    parameters: ConstraintParameters,
}

#[derive(Deserialize, Default)]
struct ConstraintParameters {
    #[serde(rename = "rootDocumentId", default)]
    root_document_id: Option<String>,
}

#[derive(Deserialize)]
struct Assignment {
    #[serde(rename = "assignmentId")]
    assignment_id: String,
}

/// FHIR searchset Bundle (only what "Zugriffe" needs).
#[derive(Deserialize)]
struct Bundle {
    #[serde(default)]
    entry: Vec<BundleEntry>,
}

#[derive(Deserialize)]
struct BundleEntry {
    #[serde(default)]
    resource: serde_json::Value,
}

/// Reads by others, per uniqueId (entity.detail) or, without one, per title (entity.name).
#[derive(Default)]
struct Reads {
    by_id: HashMap<String, u32>,
    by_name: HashMap<String, u32>,
}

impl Reads {
    fn add(&mut self, ev: &serde_json::Value, kvnr: &str) {
        if ev.get("action").and_then(|a| a.as_str()) != Some("R") {
            return;
        }
        let who = ev
            .get("agent")
            .and_then(|a| a.as_array())
            .and_then(|a| a.first())
            .and_then(|a| a.pointer("/who/identifier/value"))
            .and_then(|v| v.as_str());
        if who.is_none_or(|w| w == kvnr) {
            return;
        }
        let Some(entities) = ev.get("entity").and_then(|e| e.as_array()) else {
            return;
        };
        for e in entities {
            let details: Vec<&str> = e
                .get("detail")
                .and_then(|d| d.as_array())
                .map(|d| {
                    d.iter()
                        .filter_map(|x| x.get("valueString").and_then(|v| v.as_str()))
                        .collect()
                })
                .unwrap_or_default();
            if details.is_empty() {
                if let Some(name) = e.get("name").and_then(|n| n.as_str())
                    && !name.is_empty()
                {
                    *self.by_name.entry(name.to_owned()).or_default() += 1;
                }
            } else {
                for d in details {
                    let id = d.rsplit_once('=').map_or(d, |(_, v)| v);
                    *self.by_id.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
    }

    fn count(&self, id: &str, title: &str) -> u32 {
        self.by_id.get(id).copied().unwrap_or(0) + self.by_name.get(title).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_count_others_only() {
        let mut r = Reads::default();
        let ev = |who: &str, action: &str, detail: &str| {
            serde_json::json!({
                "action": action,
                "agent": [{"who": {"identifier": {"value": who}}}],
                "entity": [{"name": "t", "detail": [{"type": "detail", "valueString": detail}]}],
            })
        };
        r.add(&ev("1-2001", "R", "2.25.7"), "X1");
        r.add(&ev("1-2002", "R", "2.25.7"), "X1");
        r.add(&ev("X1", "R", "2.25.7"), "X1");
        r.add(&ev("1-2001", "C", "2.25.7"), "X1");
        r.add(&ev("1-2001", "R", "uniqueId=2.25.8"), "X1");
        assert_eq!(r.count("2.25.7", "t"), 2);
        assert_eq!(r.count("2.25.8", "x"), 1);
        assert_eq!(r.count("2.25.9", "x"), 0);
    }

    #[test]
    fn names_and_verification() {
        assert_eq!(
            person_name("^Sommer^Eva^^^Dr. med.^^^"),
            "Dr. med. Eva Sommer"
        );
        assert_eq!(person_name("X1^Muster^Maria^^^^^^&1.2&ISO"), "Maria Muster");
        let mut e = CachedEntry::default();
        assert!(verify(&e, b"abc"));
        e.size = Some(3);
        e.hash = Some(sha1_hex(b"abc").to_uppercase());
        assert!(verify(&e, b"abc"));
        assert!(!verify(&e, b"abd"));
        e.size = Some(4);
        assert!(!verify(&e, b"abc"));
    }
}
