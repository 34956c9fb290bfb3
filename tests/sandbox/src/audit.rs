//! The audit log of each record (I_Audit_Event v1.0.1): every operation on a record is written
//! here, so that clients can show who accessed what.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::services::RecordServices;

/// AuditEvent.action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Read,
    Update,
    Delete,
    Execute,
}

impl AuditAction {
    pub fn code(self) -> &'static str {
        match self {
            Self::Create => "C",
            Self::Read => "R",
            Self::Update => "U",
            Self::Delete => "D",
            Self::Execute => "E",
        }
    }
}

/// AuditEvent.outcome: 0 success, 4 minor failure, 12 major failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Success,
    MinorFailure,
    SeriousFailure,
}

impl AuditOutcome {
    pub fn code(self) -> &'static str {
        match self {
            Self::Success => "0",
            Self::MinorFailure => "4",
            Self::SeriousFailure => "12",
        }
    }
}

/// Who did it (agent.who / agent.name / the role OID).
#[derive(Debug, Clone)]
pub struct AuditActor {
    /// KVNR or TelematikID.
    pub id: String,
    pub name: String,
    /// Profession OID, e.g. 1.2.276.0.76.4.49 for insurants.
    pub oid: String,
}

/// What a service reports; the log adds id and time.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// The record (KVNR) the operation concerned.
    pub record: String,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    /// source.type: CDMGMT, ENTITMGMT, DEVICEMGMT, HRRSVC, XDSSVC, MEDICATIONSVC, CONMGMT, AUDITSVC.
    pub source: &'static str,
    /// type: rest | document | object.
    pub kind: &'static str,
    /// entity.description: the spec's operationId (registerDevice, RetrieveDocumentSet, …).
    pub operation: &'static str,
    /// entity.name: what was touched (a document title, a device name, …).
    pub entity_name: String,
    pub entity_detail: Option<String>,
    pub actor: AuditActor,
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub recorded: u64,
    pub event: NewAuditEvent,
}

#[derive(Debug, Default)]
pub struct AuditLog {
    by_record: Mutex<HashMap<String, Vec<AuditEvent>>>,
    next: Mutex<u64>,
}

impl AuditLog {
    pub fn record(&self, recorded: u64, event: NewAuditEvent) -> String {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|p| p.into_inner());
            *n += 1;
            format!("ae-{:08}", *n)
        };
        self.by_record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(event.record.clone())
            .or_default()
            .push(AuditEvent {
                id: id.clone(),
                recorded,
                event,
            });
        id
    }

    /// The record's events, oldest first.
    pub fn events(&self, record: &str) -> Vec<AuditEvent> {
        self.by_record
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(record)
            .cloned()
            .unwrap_or_default()
    }
}

pub fn router(_svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
}
