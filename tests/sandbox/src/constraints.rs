//! Constraint Management for insurants (I_Constraint_Management_Insurant v1.1.3): hiding
//! categories, documents and dynamic folders from healthcare institutions (the "general deny
//! policy").
//!
//! * `GET /epa/xds-document/api/v1/constraints` (getDenyPolicyAssignments): `limit` 1..50
//!   (default 50), `offset` = page index (default 0), filters `for`, `parameters.categoryId`,
//!   `parameters.rootDocumentId`, `parameters.folderUUID` (different names AND, repeated names
//!   OR). Answer `{"query": {offset, limit, totalMatching}, "data": [...]}` in creation order.
//! * `POST …/constraints` (setDenyPolicyAssignment): `{"for", "parameters"}` → `201` with the
//!   server's `assignmentId`.
//! * `DELETE …/constraints/{assignmentId}` (deleteDenyPolicyAssignment) → `204`.
//!
//! Refusals as the YAML's table: 400 malformedRequest (schema), 403 invalidResource (`emp` or a
//! document of it), 404 noResource (document/folder/assignment unknown), 409 requestMismatch
//! (category not of the XDS Document Service, folder not dynamic, document of a uniform/mixed
//! category, duplicate). Set and delete are logged (source CONMGMT) for every result once the
//! access guard passed; the list has no log postcondition.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use epa_protocol::xds::{is_urn_uuid, is_uuid};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditAction, AuditActor, AuditOutcome, NewAuditEvent};
use crate::authz::ChannelSession;
use crate::info::error;
use crate::services::{Caller, RecordServices};

/// The categories of the XDS Document Service that can be hidden (CategoryIdType): the static
/// categories without `emp`.
pub fn is_category_id(c: &str) -> bool {
    c != EMP && crate::xds::CATEGORIES.contains(&c)
}

/// Categories whose folders are of type `uniform` or `mixed` in the implementation guides
/// (ig-childsrecord, ig-dentalrecord, ig-diga, ig-mothersrecord, ig-vaccination): single
/// documents there cannot be hidden, only the category (or a dynamic folder) as a whole.
pub const RESTRICTED_CATEGORIES: [&str; 5] = [
    "child",
    "dental",
    "diga",
    "pregnancy_childbirth",
    "vaccination",
];

/// The category that can never be hidden (managed by consent decisions).
pub const EMP: &str = "emp";

const ROOT_SUFFIX: &str = "^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId";

/// What an assignment hides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", content = "parameters", rename_all = "lowercase")]
pub enum Target {
    Category {
        #[serde(rename = "categoryId")]
        category_id: String,
    },
    Document {
        #[serde(rename = "rootDocumentId")]
        root_document_id: String,
    },
    Folder {
        #[serde(rename = "folderUUID")]
        folder_uuid: String,
    },
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Self::Category { .. } => "category",
            Self::Document { .. } => "document",
            Self::Folder { .. } => "folder",
        }
    }

    /// Same target (UUIDs compared case-insensitively).
    fn same(&self, other: &Target) -> bool {
        match (self, other) {
            (Self::Category { category_id: a }, Self::Category { category_id: b }) => a == b,
            (
                Self::Document {
                    root_document_id: a,
                },
                Self::Document {
                    root_document_id: b,
                },
            ) => a.eq_ignore_ascii_case(b),
            (Self::Folder { folder_uuid: a }, Self::Folder { folder_uuid: b }) => {
                a.eq_ignore_ascii_case(b)
            }
            _ => false,
        }
    }

    /// `parameterName=value`, for the audit entry.
    fn detail(&self) -> String {
        match self {
            Self::Category { category_id } => format!("categoryId={category_id}"),
            Self::Document { root_document_id } => format!("rootDocumentId={root_document_id}"),
            Self::Folder { folder_uuid } => format!("folderUUID={folder_uuid}"),
        }
    }
}

/// One assignment of the general deny policy (DenyPolicyAssignmentResponseType).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    #[serde(rename = "assignmentId")]
    pub assignment_id: String,
    #[serde(flatten)]
    pub target: Target,
}

/// The persisted state: the assignments of every record, in creation order.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ConstraintsState {
    pub by_record: HashMap<String, Vec<Assignment>>,
}

/// What is hidden from institutions in one record (for the XDS side's result filtering).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hidden {
    pub categories: BTreeSet<String>,
    /// `uuid^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId`, UUID part lower-cased.
    pub root_documents: BTreeSet<String>,
    /// `urn:uuid:…`, lower-cased.
    pub folders: BTreeSet<String>,
}

impl Hidden {
    /// Whether a document (of `category`, with this root id, member of `folders`) is hidden.
    pub fn hides(&self, category: Option<&str>, root_document_id: &str, folders: &[&str]) -> bool {
        category.is_some_and(|c| self.categories.contains(c))
            || self
                .root_documents
                .contains(&normalize_root_id(root_document_id))
            || folders
                .iter()
                .any(|f| self.folders.contains(&f.to_ascii_lowercase()))
    }

    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.root_documents.is_empty() && self.folders.is_empty()
    }
}

/// Why an assignment could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    #[error("the assignment exists already")]
    Duplicate,
}

#[derive(Debug, Default)]
pub struct Constraints {
    state: Mutex<ConstraintsState>,
}

impl Constraints {
    fn state(&self) -> MutexGuard<'_, ConstraintsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record's assignments, in creation order.
    pub fn list(&self, kvnr: &str) -> Vec<Assignment> {
        self.state()
            .by_record
            .get(kvnr)
            .cloned()
            .unwrap_or_default()
    }

    /// Stores an assignment (also for the XDS side: documents provided with confidentialityCode
    /// CON are hidden internally).
    pub fn assign(&self, kvnr: &str, assignment: Assignment) -> Result<(), AssignError> {
        let mut s = self.state();
        let list = s.by_record.entry(kvnr.to_owned()).or_default();
        if list.iter().any(|a| a.target.same(&assignment.target)) {
            return Err(AssignError::Duplicate);
        }
        list.push(assignment);
        Ok(())
    }

    /// Removes an assignment; whether it existed.
    pub fn remove(&self, kvnr: &str, assignment_id: &str) -> Option<Assignment> {
        let mut s = self.state();
        let list = s.by_record.get_mut(kvnr)?;
        let at = list
            .iter()
            .position(|a| a.assignment_id.eq_ignore_ascii_case(assignment_id))?;
        Some(list.remove(at))
    }

    /// "Assignments are deleted internally in case a referenced document or folder is deleted":
    /// the XDS side calls this when a document chain goes.
    pub fn forget_document(&self, kvnr: &str, root_document_id: &str) {
        let gone = Target::Document {
            root_document_id: root_document_id.to_owned(),
        };
        if let Some(list) = self.state().by_record.get_mut(kvnr) {
            list.retain(|a| !a.target.same(&gone));
        }
    }

    /// Like [`Self::forget_document`], for a deleted dynamic folder.
    pub fn forget_folder(&self, kvnr: &str, folder_uuid: &str) {
        let gone = Target::Folder {
            folder_uuid: folder_uuid.to_owned(),
        };
        if let Some(list) = self.state().by_record.get_mut(kvnr) {
            list.retain(|a| !a.target.same(&gone));
        }
    }

    /// Everything hidden from institution roles in `kvnr`'s record.
    pub fn hidden_for_institutions(&self, kvnr: &str) -> Hidden {
        let mut h = Hidden::default();
        for a in self.list(kvnr) {
            match a.target {
                Target::Category { category_id } => {
                    h.categories.insert(category_id);
                }
                Target::Document { root_document_id } => {
                    h.root_documents
                        .insert(normalize_root_id(&root_document_id));
                }
                Target::Folder { folder_uuid } => {
                    h.folders.insert(folder_uuid.to_ascii_lowercase());
                }
            }
        }
        h
    }

    /// Everything, for `--state-dir`.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&*self.state()).unwrap_or(serde_json::Value::Null)
    }

    pub fn restore(&self, v: serde_json::Value) -> Result<(), serde_json::Error> {
        let restored: ConstraintsState = serde_json::from_value(v)?;
        *self.state() = restored;
        Ok(())
    }
}

fn normalize_root_id(id: &str) -> String {
    match id.strip_suffix(ROOT_SUFFIX) {
        Some(uuid) => format!("{}{ROOT_SUFFIX}", uuid.to_ascii_lowercase()),
        None => id.to_ascii_lowercase(),
    }
}

/// RootDocumentIdType: `<uuid>^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId`.
pub fn root_document_id_ok(s: &str) -> bool {
    s.strip_suffix(ROOT_SUFFIX).is_some_and(is_uuid)
}

/// UuidType: `urn:uuid:<uuid>`.
pub fn folder_uuid_ok(s: &str) -> bool {
    is_urn_uuid(s)
}

// ---------------------------------------------------------------------------------------------
// Routes

pub fn router(svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
        .route(
            "/epa/xds-document/api/v1/constraints",
            get(get_deny_policy_assignments).post(set_deny_policy_assignment),
        )
        .route(
            "/epa/xds-document/api/v1/constraints/{assignment_id}",
            delete(delete_deny_policy_assignment),
        )
        .with_state(svc)
}

/// A refusal: the spec's status and error code, and the rule broken (for the log).
#[derive(Debug)]
struct Refused {
    status: StatusCode,
    code: &'static str,
    rule: String,
}

impl Refused {
    fn into_response(self) -> Response {
        refuse(self.status, self.code, &self.rule)
    }
}

fn refuse(status: StatusCode, code: &'static str, rule: &str) -> Response {
    tracing::warn!(code, rule, "Constraint Management: request refused");
    error(status, code, None)
}

fn refused(status: StatusCode, code: &'static str, rule: &str) -> Refused {
    Refused {
        status,
        code,
        rule: rule.to_owned(),
    }
}

fn malformed(rule: &str) -> Refused {
    refused(StatusCode::BAD_REQUEST, "malformedRequest", rule)
}

/// "A log-entry for the operation exists — all operation results".
fn log(
    svc: &RecordServices,
    caller: &Caller,
    record: &str,
    action: AuditAction,
    operation: &'static str,
    status: StatusCode,
    detail: Option<String>,
) {
    svc.audit.record(
        svc.clock.now_unix(),
        NewAuditEvent {
            record: record.to_owned(),
            action,
            outcome: AuditOutcome::of_status(status),
            source: "CONMGMT",
            kind: "rest",
            operation,
            entity_name: "Constraint Management".into(),
            entity_detail: detail,
            actor: AuditActor {
                id: caller.user.kvnr.clone(),
                name: caller.user.display_name.clone(),
                oid: crate::idp::PROFESSION_VERSICHERTER.into(),
            },
        },
    );
}

#[derive(Debug, Default)]
struct ListQuery {
    limit: Option<usize>,
    offset: Option<usize>,
    kinds: Vec<String>,
    categories: Vec<String>,
    documents: Vec<String>,
    folders: Vec<String>,
}

fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, Refused> {
    let mut q = ListQuery::default();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Ok(name), Ok(value)) = (crate::idp::form_decode(k), crate::idp::form_decode(v)) else {
            return Err(malformed("query is not valid percent-encoding"));
        };
        match name.as_str() {
            "limit" | "offset" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| malformed("limit and offset are non-negative integers"))?;
                let slot = if name == "limit" {
                    &mut q.limit
                } else {
                    &mut q.offset
                };
                if slot.is_some() {
                    return Err(malformed("limit and offset may occur once"));
                }
                if name == "limit" && !(1..=50).contains(&n) {
                    return Err(malformed("limit is 1..50"));
                }
                *slot = Some(n);
            }
            "for" => {
                if !["category", "document", "folder"].contains(&value.as_str()) {
                    return Err(malformed("for is category, document or folder"));
                }
                q.kinds.push(value);
            }
            "parameters.categoryId" => {
                if !is_category_id(&value) {
                    return Err(malformed("parameters.categoryId is not a CategoryIdType"));
                }
                q.categories.push(value);
            }
            "parameters.rootDocumentId" => {
                if !root_document_id_ok(&value) {
                    return Err(malformed(
                        "parameters.rootDocumentId is uuid^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId",
                    ));
                }
                q.documents.push(value);
            }
            "parameters.folderUUID" => {
                if !folder_uuid_ok(&value) {
                    return Err(malformed("parameters.folderUUID is urn:uuid:<uuid>"));
                }
                q.folders.push(value);
            }
            other => return Err(malformed(&format!("unknown query parameter {other}"))),
        }
    }
    Ok(q)
}

impl ListQuery {
    fn matches(&self, a: &Assignment) -> bool {
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == a.target.kind());
        // A parameter filter only concerns assignments that have that parameter.
        let param_ok = match &a.target {
            Target::Category { category_id } => {
                self.categories.is_empty() || self.categories.contains(category_id)
            }
            Target::Document { root_document_id } => {
                self.documents.is_empty()
                    || self
                        .documents
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(root_document_id))
            }
            Target::Folder { folder_uuid } => {
                self.folders.is_empty()
                    || self
                        .folders
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(folder_uuid))
            }
        };
        // Filters for other kinds exclude this kind ("different names AND").
        let other_filters_absent = match a.target {
            Target::Category { .. } => self.documents.is_empty() && self.folders.is_empty(),
            Target::Document { .. } => self.categories.is_empty() && self.folders.is_empty(),
            Target::Folder { .. } => self.categories.is_empty() && self.documents.is_empty(),
        };
        kind_ok && param_ok && other_filters_absent
    }
}

async fn get_deny_policy_assignments(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_caller, record) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let q = match parse_list_query(query.as_deref()) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    let matching: Vec<Assignment> = svc
        .constraints
        .list(&record)
        .into_iter()
        .filter(|a| q.matches(a))
        .collect();
    let data: Vec<&Assignment> = matching
        .iter()
        .skip(offset.saturating_mul(limit))
        .take(limit)
        .collect();
    axum::Json(json!({
        "query": {"offset": offset, "limit": limit, "totalMatching": matching.len()},
        "data": data,
    }))
    .into_response()
}

/// The body of setDenyPolicyAssignment, checked against the schema.
fn parse_assignment(headers: &HeaderMap, body: &[u8]) -> Result<Target, Refused> {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json {
        return Err(malformed("the body must be application/json"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| malformed("the body is not JSON"))?;
    let Some(obj) = v.as_object() else {
        return Err(malformed("the body is a JSON object"));
    };
    if let Some(k) = obj.keys().find(|k| *k != "for" && *k != "parameters") {
        return Err(malformed(&format!("unknown member {k}")));
    }
    let kind = obj
        .get("for")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("for (category|document|folder) is required"))?;
    let params = obj
        .get("parameters")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("parameters (object) is required"))?;
    let key = match kind {
        "category" => "categoryId",
        "document" => "rootDocumentId",
        "folder" => "folderUUID",
        _ => return Err(malformed("for is category, document or folder")),
    };
    if let Some(k) = params.keys().find(|k| *k != key) {
        return Err(malformed(&format!(
            "parameters of for={kind} has {key} only, not {k}"
        )));
    }
    let value = params
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(&format!("parameters.{key} (string) is required")))?
        .to_owned();
    Ok(match kind {
        "category" => Target::Category { category_id: value },
        "document" => {
            if !root_document_id_ok(&value) {
                return Err(malformed(
                    "rootDocumentId is uuid^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId",
                ));
            }
            Target::Document {
                root_document_id: value,
            }
        }
        _ => {
            if !folder_uuid_ok(&value) {
                return Err(malformed("folderUUID is urn:uuid:<uuid>"));
            }
            Target::Folder { folder_uuid: value }
        }
    })
}

/// The rules of setDenyPolicyAssignment beyond the schema, in the YAML's order.
fn check_target(svc: &RecordServices, record: &str, target: &Target) -> Result<(), Refused> {
    match target {
        Target::Category { category_id } => {
            if category_id == EMP {
                return Err(refused(
                    StatusCode::FORBIDDEN,
                    "invalidResource",
                    "the category emp cannot be hidden",
                ));
            }
            if !is_category_id(category_id) {
                return Err(refused(
                    StatusCode::CONFLICT,
                    "requestMismatch",
                    "the category is not part of the XDS Document Service",
                ));
            }
        }
        Target::Document { root_document_id } => {
            if !svc.documents.root_document_exists(record, root_document_id) {
                return Err(refused(
                    StatusCode::NOT_FOUND,
                    "noResource",
                    "no document with this rootDocumentId in the record",
                ));
            }
            let category = svc.documents.category_of_root(record, root_document_id);
            if category.as_deref() == Some(EMP) {
                return Err(refused(
                    StatusCode::FORBIDDEN,
                    "invalidResource",
                    "documents of the category emp cannot be hidden",
                ));
            }
            if category
                .as_deref()
                .is_some_and(|c| RESTRICTED_CATEGORIES.contains(&c))
            {
                return Err(refused(
                    StatusCode::CONFLICT,
                    "requestMismatch",
                    "the document is part of a uniform/mixed category; hide the category or folder",
                ));
            }
        }
        Target::Folder { folder_uuid } => {
            // The document store knows dynamic folders only; any other UUID is "no resource".
            if !svc.documents.dynamic_folder_exists(record, folder_uuid) {
                return Err(refused(
                    StatusCode::NOT_FOUND,
                    "noResource",
                    "no dynamic folder with this UUID in the record",
                ));
            }
        }
    }
    Ok(())
}

async fn set_deny_policy_assignment(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (caller, record) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let audit = |status, detail| {
        log(
            &svc,
            &caller,
            &record,
            AuditAction::Create,
            "setDenyPolicyAssignment",
            status,
            detail,
        );
    };
    let target = match parse_assignment(&headers, &body) {
        Ok(t) => t,
        Err(r) => {
            audit(r.status, None);
            return r.into_response();
        }
    };
    let detail = Some(target.detail());
    if let Err(r) = check_target(&svc, &record, &target) {
        audit(r.status, detail);
        return r.into_response();
    }
    let assignment = Assignment {
        assignment_id: svc.random_uuid(),
        target,
    };
    let r = match svc.constraints.assign(&record, assignment.clone()) {
        Ok(()) => (StatusCode::CREATED, axum::Json(&assignment)).into_response(),
        Err(AssignError::Duplicate) => refuse(
            StatusCode::CONFLICT,
            "requestMismatch",
            "the assignment exists already",
        ),
    };
    audit(r.status(), detail);
    r
}

async fn delete_deny_policy_assignment(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    Path(assignment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (caller, record) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let op = "deleteDenyPolicyAssignment";
    let detail = Some(format!("assignmentId={assignment_id}"));
    let r = if !is_uuid(&assignment_id) {
        malformed("assignmentId is a UUID").into_response()
    } else {
        match svc.constraints.remove(&record, &assignment_id) {
            Some(_) => StatusCode::NO_CONTENT.into_response(),
            None => refuse(
                StatusCode::NOT_FOUND,
                "noResource",
                "no assignment with this id in the record",
            ),
        }
    };
    log(
        &svc,
        &caller,
        &record,
        AuditAction::Delete,
        op,
        r.status(),
        detail,
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn assignments_serialize_like_the_yaml() {
        let a = Assignment {
            assignment_id: "ddf19ee6-e831-430d-893f-71d219ac12a0".into(),
            target: Target::Category {
                category_id: "patient".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"assignmentId": "ddf19ee6-e831-430d-893f-71d219ac12a0", "for": "category", "parameters": {"categoryId": "patient"}})
        );
        let back: Assignment = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn hidden_items() {
        let c = Constraints::default();
        let uuid = "0F70653D-D5F4-46F0-99E1-B6AF92EEA2B6";
        c.assign(
            "X110411675",
            Assignment {
                assignment_id: "a".into(),
                target: Target::Document {
                    root_document_id: format!("{uuid}{ROOT_SUFFIX}"),
                },
            },
        )
        .unwrap();
        let h = c.hidden_for_institutions("X110411675");
        assert!(h.hides(
            Some("reports"),
            &format!("{}{ROOT_SUFFIX}", uuid.to_lowercase()),
            &[]
        ));
        assert!(!h.hides(Some("reports"), "other", &[]));
        assert!(c.hidden_for_institutions("A526018157").is_empty());
    }
}
