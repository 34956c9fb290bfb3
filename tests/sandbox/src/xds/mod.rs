//! XDS Document Service for insurants (`/epa/xds-document/api/I_Document_Management_Insurant`):
//! registry + repository of each record, ITI-18/41/43/62/92 over SOAP 1.2 + MTOM
//! (epa-protocol.md §5), on the codec of `epa_protocol::xds`.
//!
//! Strict by default: a request that is no SOAP 1.2 envelope, lacks the required WS-Addressing
//! headers or names an unknown action gets a SOAP fault; metadata problems get IHE registry
//! errors in `rs:RegistryErrorList`. Every refusal logs the rule it broke.

mod lifecycle;
mod registry;
mod seeding;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use epa_protocol::xds::rim::{Association, DocumentEntry, SubmissionSet};
use epa_protocol::xds::soap::{self, Chunked, Encoded, Fault};
use epa_protocol::xds::{action, ns, status};
use serde::{Deserialize, Serialize};

use crate::audit::{AuditAction, AuditActor, AuditOutcome, NewAuditEvent};
use crate::authz::ChannelSession;
use crate::services::{Caller, RecordServices};

pub use seeding::{CATEGORIES, MIME_TYPES, dynamic_folder_uuid, seed_file};

pub const PATH: &str = "/epa/xds-document/api/I_Document_Management_Insurant";

/// Largest document the repository takes (IBM's server refers to 250 MiB; the normative value
/// is not public, §11.9). Tests lower it with [`DocumentStore::set_max_document_bytes`].
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 250 * 1024 * 1024;

/// Profession OID of insurants (oid_versicherter).
pub const INSURANT_OID: &str = "1.2.276.0.76.4.49";

/// One version of a document in the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDocument {
    pub entry: DocumentEntry,
    /// Category (static folder) the Aktensystem filed it under.
    pub category: String,
}

/// Registry and repository of one record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecordDocuments {
    /// All versions; the current one of a document is Approved, older ones Deprecated.
    pub entries: Vec<StoredDocument>,
    pub submission_sets: Vec<SubmissionSet>,
    pub associations: Vec<Association>,
    /// Document bytes by document uniqueId (versions of one document share it). Not part of
    /// the JSON state: `--state-dir` keeps them as files (see [`DocumentStore::snapshot`]).
    #[serde(skip)]
    pub contents: BTreeMap<String, bytes::Bytes>,
    /// Dynamic folders (one per pregnancy, DiGA, …) by entryUUID; none are created yet.
    pub dynamic_folders: Vec<String>,
}

/// An audit event the seed wants written when the service starts.
#[derive(Debug, Clone)]
pub struct SeedAudit {
    pub at: u64,
    pub event: NewAuditEvent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentState {
    pub repository_unique_id: String,
    pub home_community_id: String,
    pub max_document_bytes: u64,
    pub records: BTreeMap<String, RecordDocuments>,
    #[serde(skip)]
    pub seed_audit: Vec<SeedAudit>,
}

impl Default for DocumentState {
    fn default() -> Self {
        Self::for_system("epa-sandbox")
    }
}

impl DocumentState {
    /// Ids of this Aktensystem's repository and community, derived from its id.
    fn for_system(system_id: &str) -> Self {
        let oid = |what: &str| {
            let u = epa_protocol::xds::derived_uuid(&format!("{system_id}/{what}"));
            epa_protocol::xds::uuid_oid(&u).unwrap_or_else(|| "2.25.1".to_owned())
        };
        Self {
            repository_unique_id: oid("repository"),
            home_community_id: format!("urn:oid:{}", oid("community")),
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            records: BTreeMap::new(),
            seed_audit: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
pub struct DocumentStore {
    state: Mutex<DocumentState>,
}

impl DocumentStore {
    /// The store of Aktensystem `system_id` with the seed's documents of its records.
    pub fn seeded(seed: &crate::seed::Seed, system_id: &str) -> Self {
        let mut st = DocumentState::for_system(system_id);
        seeding::seed(&mut st, seed, system_id);
        Self {
            state: Mutex::new(st),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DocumentState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For `--state-dir`: the registry as JSON (without document bytes; `contents` lists each
    /// record's uniqueIds) and the bytes of the documents whose uniqueId is not in `saved`.
    /// A document's bytes never change under its uniqueId, so each is written once.
    pub fn snapshot(
        &self,
        saved: &std::collections::HashSet<String>,
    ) -> (serde_json::Value, Vec<(String, bytes::Bytes)>) {
        let st = self.lock();
        let ids: BTreeMap<&String, Vec<&String>> = st
            .records
            .iter()
            .map(|(k, r)| (k, r.contents.keys().collect()))
            .collect();
        let new = st
            .records
            .values()
            .flat_map(|r| r.contents.iter())
            .filter(|(id, _)| !saved.contains(*id))
            .map(|(id, b)| (id.clone(), b.clone()))
            .collect();
        let v = serde_json::json!({ "registry": &*st, "contents": ids });
        (v, new)
    }

    /// Restores what [`Self::snapshot`] produced; `load` reads a document's bytes by uniqueId.
    pub fn restore(
        &self,
        v: serde_json::Value,
        load: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>,
    ) -> Result<(), String> {
        let mut st: DocumentState =
            serde_json::from_value(v.get("registry").cloned().unwrap_or_default())
                .map_err(|e| e.to_string())?;
        let ids: BTreeMap<String, Vec<String>> =
            serde_json::from_value(v.get("contents").cloned().unwrap_or_default())
                .map_err(|e| e.to_string())?;
        for (kvnr, ids) in ids {
            let record = st.records.entry(kvnr).or_default();
            for id in ids {
                let bytes = load(&id)?;
                record.contents.insert(id, bytes.into());
            }
        }
        // Limits are configuration, not state.
        st.max_document_bytes = self.lock().max_document_bytes;
        *self.lock() = st;
        Ok(())
    }

    pub fn set_max_document_bytes(&self, n: u64) {
        self.lock().max_document_bytes = n;
    }

    pub fn repository_unique_id(&self) -> String {
        self.lock().repository_unique_id.clone()
    }

    /// The current (Approved) documents of a record, for tests and other services.
    pub fn current_documents(&self, kvnr: &str) -> Vec<StoredDocument> {
        self.lock()
            .records
            .get(kvnr)
            .map(|r| {
                r.entries
                    .iter()
                    .filter(|e| e.entry.status.as_deref() == Some(status::APPROVED))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `kvnr`'s record holds a document chain with this root id
    /// (`<uuid>^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId`), for Constraint Management.
    pub fn root_document_exists(&self, kvnr: &str, root_document_id: &str) -> bool {
        self.category_of_root(kvnr, root_document_id).is_some()
    }

    /// The category (static folder code, e.g. `patient`, `reports`, `emp`) a document chain is
    /// filed under.
    pub fn category_of_root(&self, kvnr: &str, root_document_id: &str) -> Option<String> {
        let st = self.lock();
        st.records.get(kvnr)?.entries.iter().find_map(|e| {
            (e.entry.status.as_deref() == Some(status::APPROVED)
                && e.entry.root_document_id() == Some(root_document_id))
            .then(|| e.category.clone())
        })
    }

    /// Whether `folder_uuid` (`urn:uuid:…`) is a dynamic folder of `kvnr`'s record (e.g. one
    /// pregnancy, one DiGA).
    pub fn dynamic_folder_exists(&self, kvnr: &str, folder_uuid: &str) -> bool {
        self.lock()
            .records
            .get(kvnr)
            .is_some_and(|r| r.dynamic_folders.iter().any(|f| f == folder_uuid))
    }

    fn take_seed_audit(&self) -> Vec<SeedAudit> {
        std::mem::take(&mut self.lock().seed_audit)
    }
}

pub fn router(svc: Arc<RecordServices>) -> axum::Router {
    // The seed's history (uploads, reads by practices) goes into the audit log once, when the
    // Aktensystem's routes are built.
    for a in svc.documents.take_seed_audit() {
        svc.audit.record(a.at, a.event);
    }
    axum::Router::new()
        .route(PATH, post(document_management))
        // The inner message is already bounded by the VAU layer; our own limit is the
        // repository's (413 + XDSRepositoryError).
        .layer(DefaultBodyLimit::disable())
        .with_state(svc)
}

/// What the handlers of one request share.
pub(crate) struct Ctx<'a> {
    pub svc: &'a RecordServices,
    pub caller: &'a Caller,
    /// The record (`x-insurantid`).
    pub kvnr: &'a str,
    pub relates_to: Option<String>,
}

impl Ctx<'_> {
    pub fn now(&self) -> u64 {
        self.svc.clock.now_unix()
    }

    pub fn new_uuid(&self) -> String {
        self.svc.random_uuid()
    }

    pub fn actor(&self) -> AuditActor {
        AuditActor {
            id: self.caller.user.kvnr.clone(),
            name: self.caller.user.display_name.clone(),
            oid: INSURANT_OID.to_owned(),
        }
    }

    /// One audit event of the XDS service (source XDSSVC, type document).
    pub fn audit(
        &self,
        action: AuditAction,
        outcome: AuditOutcome,
        operation: &'static str,
        entity_name: String,
        entity_detail: Option<String>,
    ) {
        self.svc.audit.record(
            self.now(),
            NewAuditEvent {
                record: self.kvnr.to_owned(),
                action,
                outcome,
                source: "XDSSVC",
                kind: "document",
                operation,
                entity_name,
                entity_detail,
                actor: self.actor(),
            },
        );
    }
}

fn encoded(status: StatusCode, e: Encoded) -> Response {
    (status, [("content-type", e.content_type)], e.body).into_response()
}

/// An answer in pieces: a retrieved document goes out as the buffer it is stored in.
fn chunked(status: StatusCode, c: Chunked) -> Response {
    let stream = futures_util::stream::iter(c.chunks.into_iter().map(Ok::<_, std::io::Error>));
    (
        status,
        [("content-type", c.content_type)],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

/// A SOAP 1.2 fault as the answer (400 for Sender, 500 otherwise).
fn fault_response(
    svc: &RecordServices,
    f: &Fault,
    relates_to: Option<&str>,
    rule: &str,
) -> Response {
    tracing::warn!(rule, fault = %f, "XDS: SOAP fault");
    let uuid = svc.random_uuid();
    let env = soap::envelope(
        &epa_protocol::xds::submit::response_addressing(soap::FAULT_ACTION, relates_to, &uuid),
        &f.to_xml(),
    );
    let st = StatusCode::from_u16(f.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    encoded(st, soap::encode(soap::FAULT_ACTION, env, &[], false, &uuid))
}

/// The body element each action takes.
fn payload_of(action: &str) -> Option<(&'static str, &'static str)> {
    Some(match action {
        action::REGISTRY_STORED_QUERY => (ns::QUERY, "AdhocQueryRequest"),
        action::RETRIEVE_DOCUMENT_SET => (ns::XDSB, "RetrieveDocumentSetRequest"),
        action::PROVIDE_AND_REGISTER => (ns::XDSB, "ProvideAndRegisterDocumentSetRequest"),
        action::DELETE_DOCUMENT_SET => (ns::LCM, "RemoveObjectsRequest"),
        action::RESTRICTED_UPDATE => (ns::LCM, "SubmitObjectsRequest"),
        _ => return None,
    })
}

async fn document_management(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, kvnr) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let max = svc.documents.lock().max_document_bytes;
    // The whole message may carry a few documents plus metadata; far beyond the document
    // limit it is refused before parsing.
    let message_limit = max.saturating_mul(3) / 2 + 1024 * 1024;
    if body.len() as u64 > message_limit {
        tracing::warn!(
            len = body.len(),
            "XDS: message larger than the repository accepts"
        );
        let r = epa_protocol::xds::submit::RegistryResponse::failure(vec![
            epa_protocol::xds::submit::RegistryError::error(
                epa_protocol::xds::error_code::REPOSITORY_ERROR,
                format!("message of {} bytes exceeds the limit", body.len()),
            ),
        ]);
        let e = epa_protocol::xds::submit::build_registry_response(
            action::PROVIDE_AND_REGISTER_RESPONSE,
            None,
            &svc.random_uuid(),
            &r,
        );
        return encoded(StatusCode::PAYLOAD_TOO_LARGE, e);
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let message = match soap::decode_shared(content_type, body.clone()) {
        Ok(m) => m,
        Err(f) => {
            let unsupported = !content_type.starts_with("application/soap+xml")
                && !content_type.starts_with("multipart/related");
            let mut r = fault_response(&svc, &f, None, "the body must be a SOAP 1.2 envelope");
            if unsupported {
                *r.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            }
            return r;
        }
    };
    let relates_to = message.addressing.message_id.clone();
    let act = match soap::check_request_addressing(&message) {
        Ok(a) => a.to_owned(),
        Err(f) => {
            return fault_response(&svc, &f, relates_to.as_deref(), "WS-Addressing (§5.1)");
        }
    };
    let Some((pns, pname)) = payload_of(&act) else {
        let f = Fault::sender(
            Some("ActionNotSupported"),
            format!("{act} is not an action of I_Document_Management_Insurant"),
        );
        return fault_response(
            &svc,
            &f,
            relates_to.as_deref(),
            "wsa:Action must be one of the WSDL's",
        );
    };
    if !message.payload.is(pns, pname) {
        let f = Fault::sender(
            None,
            format!("{act} takes {pname}, not {}", message.payload.name),
        );
        return fault_response(
            &svc,
            &f,
            relates_to.as_deref(),
            "the body must match wsa:Action",
        );
    }
    let ctx = Ctx {
        svc: &svc,
        caller: &caller,
        kvnr: &kvnr,
        relates_to,
    };
    let (st, e) = match act.as_str() {
        action::REGISTRY_STORED_QUERY => registry::stored_query(&ctx, &message),
        action::RETRIEVE_DOCUMENT_SET => {
            let (st, c) = registry::retrieve(&ctx, &message);
            return chunked(st, c);
        }
        action::PROVIDE_AND_REGISTER => lifecycle::provide_and_register(&ctx, &message),
        action::DELETE_DOCUMENT_SET => lifecycle::delete(&ctx, &message),
        _ => lifecycle::restricted_update(&ctx, &message),
    };
    encoded(st, e)
}
