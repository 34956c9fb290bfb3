//! The audit log of each record (I_Audit_Event v1.0.1, I_Audit_Event_Render v1.1.1): every
//! operation on a record is written here, so that clients can show who accessed what.
//!
//! * `GET /epa/audit/api/v1/fhir/AuditEvent` (listAuditEvents): FHIR R4 `Bundle` of type
//!   `searchset`, newest first, paged with `_count` (default 25) / `_offset` (element offset),
//!   `_total` (`none` default, `estimate`, `accurate`), links `self`/`first`/`last`/`next`/
//!   `previous`. Filters: `_id`, `_lastUpdated`, `date` (prefixes `eq ne gt lt ge le sa eb`,
//!   precision ranges as in FHIR R4 search), `altid`, `type`, `action`, `entity-name`,
//!   `outcome`. Repeated parameters are AND, comma-separated values OR.
//! * `GET /epa/audit/api/v1/fhir/AuditEvent/{id}` (getAuditEventById).
//! * `GET /epa/audit/render/v1/pdf?signed=` (renderAuditEventsToPDF): a small PDF listing the
//!   events. The sandbox holds no C.FD.SIG key, so `signed=true` yields the same document marked
//!   as "unsigned sandbox copy" in its text and metadata.
//!
//! Errors of the search/read operations are FHIR `OperationOutcome`s (400, 404) or the ePA
//! `ErrorType` (403, 409, 500) as the YAML lists them. Reading the log is itself logged only
//! for representatives (the postcondition "representative and ombuds office only"); the
//! insurant reading their own log leaves no trace. Entries are kept 3 years.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use epa_protocol::xds::{is_uuid, rim};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::authz::ChannelSession;
use crate::services::{Access, Caller, RecordServices};

/// AuditEvent.action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// The outcome of a REST operation by its answer: 5xx serious, other refusals minor.
    pub fn of_status(status: StatusCode) -> Self {
        if status.is_success() {
            Self::Success
        } else if status.is_server_error() {
            Self::SeriousFailure
        } else {
            Self::MinorFailure
        }
    }
}

/// Who did it (agent.who / agent.name / the role OID).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// One entity.detail: `"Type=value"` (e.g. `DocumentFormatCode=urn:gematik:ig:…`) becomes
    /// `{"type": "Type", "valueString": "value"}`; text without `=` gets the type `detail`.
    pub entity_detail: Option<String>,
    pub actor: AuditActor,
}

/// One stored entry (owned, so the store can be persisted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A UUID (the read operation's path parameter is `format: uuid`).
    pub id: String,
    /// Sandbox-clock Unix seconds.
    pub recorded: u64,
    pub record: String,
    pub action: AuditAction,
    pub outcome: AuditOutcome,
    pub source: String,
    pub kind: String,
    pub operation: String,
    pub entity_name: String,
    pub entity_detail: Option<String>,
    pub actor: AuditActor,
}

/// Entries are deleted three years after they were written.
pub const RETENTION_S: u64 = 3 * 365 * 86_400 + 86_400;

/// The persisted state of the log.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AuditState {
    /// By record (KVNR), oldest first.
    pub by_record: HashMap<String, Vec<AuditEvent>>,
    /// Sequence number of the last entry (ids derive from it).
    pub last: u64,
}

#[derive(Debug, Default)]
pub struct AuditLog {
    state: Mutex<AuditState>,
}

/// A UUID-shaped id from a sequence number (stable, unique per log, no RNG needed).
fn event_id(n: u64) -> String {
    let d = Sha256::digest(format!("epa-sandbox audit event {n}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    epa_protocol::xds::format_uuid(b, 4)
}

impl AuditLog {
    fn state(&self) -> MutexGuard<'_, AuditState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, recorded: u64, event: NewAuditEvent) -> String {
        let mut s = self.state();
        s.last += 1;
        let id = event_id(s.last);
        s.by_record
            .entry(event.record.clone())
            .or_default()
            .push(AuditEvent {
                id: id.clone(),
                recorded,
                record: event.record,
                action: event.action,
                outcome: event.outcome,
                source: event.source.to_owned(),
                kind: event.kind.to_owned(),
                operation: event.operation.to_owned(),
                entity_name: event.entity_name,
                entity_detail: event.entity_detail,
                actor: event.actor,
            });
        id
    }

    /// The record's events, oldest first (without those past retention at `now`).
    pub fn events_at(&self, record: &str, now: u64) -> Vec<AuditEvent> {
        let mut s = self.state();
        let Some(list) = s.by_record.get_mut(record) else {
            return Vec::new();
        };
        list.retain(|e| e.recorded.saturating_add(RETENTION_S) > now);
        list.clone()
    }

    /// The record's events, oldest first.
    pub fn events(&self, record: &str) -> Vec<AuditEvent> {
        self.state()
            .by_record
            .get(record)
            .cloned()
            .unwrap_or_default()
    }

    /// Everything, for `--state-dir`.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::to_value(&*self.state()).unwrap_or(serde_json::Value::Null)
    }

    pub fn restore(&self, v: serde_json::Value) -> Result<(), serde_json::Error> {
        let restored: AuditState = serde_json::from_value(v)?;
        *self.state() = restored;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// FHIR rendering

const PROFILE: &str = "https://gematik.de/fhir/epa/StructureDefinition/audit-event|1.0";
const OO_PROFILE: &str =
    "https://gematik.de/fhir/epa/StructureDefinition/epa-operation-outcome|1.0.0";
const SOURCE_TYPE_CS: &str = "https://gematik.de/fhir/epa/CodeSystem/epa-auditevent-sourcetype-cs";
const EVENT_TYPE_CS: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const KVID_10: &str = "http://fhir.de/sid/gkv/kvid-10";
const TELEMATIK_ID: &str = "https://gematik.de/fhir/sid/telematik-id";
const TELEMATIK_SERVICE: &str = "https://gematik.de/fhir/epa/sid/epa-telematikservice-identifier";
const FHIR_JSON: &str = "application/fhir+json";
const OID_VERSICHERTER: &str = "1.2.276.0.76.4.49";

fn source_display(code: &str) -> &'static str {
    match code {
        "CDMGMT" => "Consent Decision Management",
        "ENTITMGMT" => "Entitlement Management",
        "DEVICEMGMT" => "Device Management",
        "HRRSVC" => "Health Record Relocation Service",
        "XDSSVC" => "XDS Document Service",
        "MEDICATIONSVC" => "Medication Service",
        "CONMGMT" => "Constraint Management",
        "AUDITSVC" => "AuditEvent Service",
        _ => "",
    }
}

fn is_kvnr(id: &str) -> bool {
    crate::info::insurant_id_ok(id)
}

/// agent.type from EPAParticipationRoleTypeVS.
fn agent_type(actor: &AuditActor) -> Value {
    let (system, code, display) = if actor.oid == OID_VERSICHERTER || is_kvnr(&actor.id) {
        (
            "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
            "PAT",
            "patient",
        )
    } else if actor.id.contains('-') {
        (
            "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
            "PROV",
            "healthcare provider",
        )
    } else {
        (
            "http://dicom.nema.org/resources/ontology/DCM",
            "110150",
            "Application",
        )
    };
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

fn identifier_system(id: &str) -> &'static str {
    if is_kvnr(id) {
        KVID_10
    } else if id.contains('-') {
        TELEMATIK_ID
    } else {
        TELEMATIK_SERVICE
    }
}

fn detail(d: &str) -> Value {
    match d.split_once('=') {
        Some((t, v)) if !t.is_empty() => json!({"type": t, "valueString": v}),
        _ => json!({"type": "detail", "valueString": d}),
    }
}

/// The AuditEvent resource (profile essentials of epa-protocol.md §6.4).
pub fn to_fhir(e: &AuditEvent) -> Value {
    let recorded = crate::mail::rfc3339(e.recorded);
    let mut entity = json!({
        "name": e.entity_name,
        "description": e.operation,
    });
    if let Some(d) = &e.entity_detail {
        entity["detail"] = json!([detail(d)]);
    }
    json!({
        "resourceType": "AuditEvent",
        "id": e.id,
        "meta": {"versionId": "1", "lastUpdated": recorded, "profile": [PROFILE]},
        "type": {"system": EVENT_TYPE_CS, "code": e.kind},
        "action": e.action.code(),
        "recorded": recorded,
        "outcome": e.outcome.code(),
        "agent": [{
            "type": agent_type(&e.actor),
            "who": {"identifier": {"system": identifier_system(&e.actor.id), "value": e.actor.id}},
            "altId": e.actor.id,
            "name": e.actor.name,
            "requestor": false,
        }],
        "source": {
            "observer": {"display": "Elektronische Patientenakte Fachdienst"},
            "type": {"system": SOURCE_TYPE_CS, "code": e.source, "display": source_display(&e.source)},
        },
        "entity": [entity],
    })
}

fn fhir_json(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [("content-type", FHIR_JSON)],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

/// A FHIR OperationOutcome (the YAML gives these as `application/json`).
fn outcome(status: StatusCode, code: &str, issue_code: &str, diagnostics: &str) -> Response {
    tracing::warn!(
        status = status.as_u16(),
        code,
        rule = diagnostics,
        "Audit Event Service: request refused"
    );
    let v = json!({
        "resourceType": "OperationOutcome",
        "meta": {"profile": [OO_PROFILE]},
        "issue": [{
            "severity": "error",
            "code": issue_code,
            "details": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/operation-outcome",
                "code": code,
            }]},
            "diagnostics": diagnostics,
        }],
    });
    (status, axum::Json(v)).into_response()
}

/// A 400 of the search, answered as an OperationOutcome.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    rule: String,
}

impl Refusal {
    fn new(_status: StatusCode, code: &'static str, _issue: &'static str, rule: &str) -> Self {
        Self {
            code,
            rule: rule.to_owned(),
        }
    }

    fn into_response(self) -> Response {
        outcome(StatusCode::BAD_REQUEST, self.code, "processing", &self.rule)
    }
}

fn bad_syntax(rule: &str) -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "MSG_BAD_SYNTAX",
        "processing",
        rule,
    )
}

// ---------------------------------------------------------------------------------------------
// FHIR date search

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The half-open range `[lo, hi)` (Unix seconds) a FHIR date/dateTime value stands for, by its
/// precision: `2025`, `2025-01`, `2025-01-15` (UTC), `2025-01-15T10:00Z`,
/// `2025-01-15T10:00:00(.fff)+01:00`. A time needs a zone (FHIR R4).
pub fn date_range(v: &str) -> Option<(i64, i64)> {
    let (date, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let mut parts = date.split('-');
    let y = i64::from(digits(parts.next()?, 4)?);
    let m = parts
        .next()
        .map(|s| digits(s, 2))
        .map_or(Some(None), |d| d.map(Some))?;
    let d = parts
        .next()
        .map(|s| digits(s, 2))
        .map_or(Some(None), |d| d.map(Some))?;
    if parts.next().is_some() {
        return None;
    }
    if let Some(m) = m
        && !(1..=12).contains(&m)
    {
        return None;
    }
    if let (Some(m), Some(d)) = (m, d)
        && !(1..=days_in_month(y, m)).contains(&d)
    {
        return None;
    }
    let day_start = |y: i64, m: u32, d: u32| rim::days_from_civil(y, m, d) * 86_400;
    let Some(time) = time else {
        return Some(match (m, d) {
            (None, _) => (day_start(y, 1, 1), day_start(y + 1, 1, 1)),
            (Some(m), None) => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (day_start(y, m, 1), day_start(ny, nm, 1))
            }
            (Some(m), Some(d)) => (day_start(y, m, d), day_start(y, m, d) + 86_400),
        });
    };
    let (m, d) = (m?, d?);
    let (clock, zone) = if let Some(t) = time.strip_suffix('Z') {
        (t, 0i64)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (t, z) = time.split_at(at);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':')?;
        let (zh, zm) = (digits(zh, 2)?, digits(zm, 2)?);
        if zh > 14 || zm > 59 {
            return None;
        }
        (t, sign * i64::from(zh * 3600 + zm * 60))
    };
    let mut c = clock.split(':');
    let hh = digits(c.next()?, 2)?;
    let mm = digits(c.next()?, 2)?;
    let (ss, precision) = match c.next() {
        None => (0, 60),
        Some(s) => {
            let whole = match s.split_once('.') {
                Some((w, frac)) if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) => {
                    w
                }
                Some(_) => return None,
                None => s,
            };
            (digits(whole, 2)?, 1)
        }
    };
    if c.next().is_some() || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let lo = day_start(y, m, d) + i64::from(hh * 3600 + mm * 60 + ss) - zone;
    Some((lo, lo + precision))
}

/// A `date`/`_lastUpdated` condition: prefix + range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DateCond {
    prefix: &'static str,
    lo: i64,
    hi: i64,
}

const DATE_PREFIXES: [&str; 8] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"];

fn parse_date_cond(v: &str) -> Option<DateCond> {
    let (prefix, rest) = DATE_PREFIXES
        .iter()
        .find_map(|p| v.strip_prefix(p).map(|r| (*p, r)))
        .unwrap_or(("eq", v));
    let (lo, hi) = date_range(rest)?;
    Some(DateCond { prefix, lo, hi })
}

impl DateCond {
    /// Whether a value recorded at `t` (second precision: the range `[t, t+1)`) matches.
    fn matches(&self, t: u64) -> bool {
        let (tlo, thi) = (t as i64, t as i64 + 1);
        let eq = self.lo <= tlo && thi <= self.hi;
        match self.prefix {
            "eq" => eq,
            "ne" => !eq,
            "gt" => thi > self.hi,
            "lt" => tlo < self.lo,
            "ge" => thi > self.hi || eq,
            "le" => tlo < self.lo || eq,
            "sa" => tlo >= self.hi,
            "eb" => thi <= self.lo,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Search parameters

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringMode {
    StartsWith,
    Exact,
    Contains,
}

#[derive(Debug, Default)]
struct Search {
    count: Option<usize>,
    offset: Option<usize>,
    total: Option<String>,
    /// Each inner Vec is one occurrence (OR of its comma-separated values); occurrences AND.
    ids: Vec<Vec<String>>,
    dates: Vec<Vec<DateCond>>,
    types: Vec<Vec<String>>,
    actions: Vec<Vec<String>>,
    outcomes: Vec<Vec<String>>,
    altids: Vec<(StringMode, Vec<String>)>,
    entity_names: Vec<(StringMode, Vec<String>)>,
    /// The filter parameters as received (raw, for the links).
    raw_filters: Vec<String>,
}

/// Splits at unescaped commas (FHIR escapes `,` as `\,`).
fn split_values(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.retain(|s| !s.is_empty());
    out
}

fn parse_search(raw: Option<&str>) -> Result<Search, Refusal> {
    let mut s = Search::default();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = crate::idp::form_decode(k)
            .map_err(|_| bad_syntax("query parameter name is not valid percent-encoding"))?;
        let value = crate::idp::form_decode(v)
            .map_err(|_| bad_syntax("query parameter value is not valid percent-encoding"))?;
        let (base, modifier) = match name.split_once(':') {
            Some((b, m)) => (b, Some(m)),
            None => (name.as_str(), None),
        };
        let string_mode = |m: Option<&str>| match m {
            None => Ok(StringMode::StartsWith),
            Some("exact") => Ok(StringMode::Exact),
            Some("contains") => Ok(StringMode::Contains),
            Some(_) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "MSG_PARAM_MODIFIER_INVALID",
                "processing",
                "string parameters take the modifiers :exact and :contains only",
            )),
        };
        let no_modifier = |m: Option<&str>| match m {
            None => Ok(()),
            Some(_) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "MSG_PARAM_MODIFIER_INVALID",
                "processing",
                "this parameter takes no modifier",
            )),
        };
        let number = |v: &str, what: &str| {
            v.parse::<usize>()
                .map_err(|_| bad_syntax(&format!("{what} must be a non-negative integer")))
        };
        match base {
            "_count" | "_offset" | "_total" => {
                no_modifier(modifier)?;
                let dup = match base {
                    "_count" => s.count.is_some(),
                    "_offset" => s.offset.is_some(),
                    _ => s.total.is_some(),
                };
                if dup {
                    return Err(bad_syntax(&format!("{base} may occur once")));
                }
                match base {
                    "_count" => s.count = Some(number(&value, "_count")?),
                    "_offset" => s.offset = Some(number(&value, "_offset")?),
                    _ => {
                        if !["none", "estimate", "accurate"].contains(&value.as_str()) {
                            return Err(bad_syntax("_total is none, estimate or accurate"));
                        }
                        s.total = Some(value);
                    }
                }
                continue;
            }
            "_id" | "type" | "action" | "outcome" => {
                no_modifier(modifier)?;
                let vals = split_values(&value);
                if !vals.is_empty() {
                    match base {
                        "_id" => s.ids.push(vals),
                        "type" => s.types.push(vals),
                        "action" => s.actions.push(vals),
                        _ => s.outcomes.push(vals),
                    }
                }
            }
            "date" | "_lastUpdated" => {
                no_modifier(modifier)?;
                let vals = split_values(&value)
                    .iter()
                    .map(|v| parse_date_cond(v))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        bad_syntax(&format!(
                            "{base} must be [eq|ne|gt|lt|ge|le|sa|eb]YYYY[-MM[-DD[Thh:mm[:ss[.f]](Z|+hh:mm)]]]"
                        ))
                    })?;
                if !vals.is_empty() {
                    s.dates.push(vals);
                }
            }
            "altid" | "entity-name" => {
                let mode = string_mode(modifier)?;
                let vals = split_values(&value);
                if !vals.is_empty() {
                    if base == "altid" {
                        s.altids.push((mode, vals));
                    } else {
                        s.entity_names.push((mode, vals));
                    }
                }
            }
            _ => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "MSG_PARAM_UNKNOWN",
                    "processing",
                    &format!("unknown search parameter {base}"),
                ));
            }
        }
        s.raw_filters.push(pair.to_owned());
    }
    Ok(s)
}

fn string_matches(mode: StringMode, value: &str, wanted: &str) -> bool {
    let (v, w) = (value.to_lowercase(), wanted.to_lowercase());
    match mode {
        StringMode::StartsWith => v.starts_with(&w),
        StringMode::Exact => value == wanted,
        StringMode::Contains => v.contains(&w),
    }
}

impl Search {
    fn matches(&self, e: &AuditEvent) -> bool {
        let token = |vals: &Vec<String>, code: &str, system: &str| {
            vals.iter().any(|v| match v.split_once('|') {
                Some((s, c)) => (s.is_empty() || s == system) && c == code,
                None => v == code,
            })
        };
        self.ids.iter().all(|vals| vals.contains(&e.id))
            && self
                .dates
                .iter()
                .all(|conds| conds.iter().any(|c| c.matches(e.recorded)))
            && self
                .types
                .iter()
                .all(|vals| token(vals, &e.kind, EVENT_TYPE_CS))
            && self.actions.iter().all(|vals| {
                token(
                    vals,
                    e.action.code(),
                    "http://hl7.org/fhir/audit-event-action",
                )
            })
            && self.outcomes.iter().all(|vals| {
                token(
                    vals,
                    e.outcome.code(),
                    "http://hl7.org/fhir/audit-event-outcome",
                )
            })
            && self
                .altids
                .iter()
                .all(|(mode, vals)| vals.iter().any(|v| string_matches(*mode, &e.actor.id, v)))
            && self.entity_names.iter().all(|(mode, vals)| {
                vals.iter()
                    .any(|v| string_matches(*mode, &e.entity_name, v))
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Routes

pub fn router(svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
        .route("/epa/audit/api/v1/fhir/AuditEvent", get(list_audit_events))
        .route(
            "/epa/audit/api/v1/fhir/AuditEvent/{id}",
            get(get_audit_event_by_id),
        )
        .route("/epa/audit/api/v1/fhir/{resource_type}", get(unknown_type))
        .route("/epa/audit/render/v1/pdf", get(render_audit_events_to_pdf))
        .with_state(svc)
}

/// "A log-entry for the operation exists — representative and ombuds office only".
fn log_read_by_others(
    svc: &RecordServices,
    caller: &Caller,
    record: &str,
    operation: &'static str,
    outcome: crate::audit::AuditOutcome,
) {
    if caller.user.kvnr == record {
        return;
    }
    svc.audit.record(
        svc.clock.now_unix(),
        NewAuditEvent {
            record: record.to_owned(),
            action: AuditAction::Read,
            outcome,
            source: "AUDITSVC",
            kind: "rest",
            operation,
            entity_name: "AuditEvent".into(),
            entity_detail: None,
            actor: AuditActor {
                id: caller.user.kvnr.clone(),
                name: caller.user.display_name.clone(),
                oid: OID_VERSICHERTER.into(),
            },
        },
    );
}

fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    format!("https://{host}/epa/audit/api/v1/fhir/AuditEvent")
}

async fn list_audit_events(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, record) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let log = |outcome| log_read_by_others(&svc, &caller, &record, "listAuditEvents", outcome);
    let search = match parse_search(query.as_deref()) {
        Ok(s) => s,
        Err(r) => {
            log(AuditOutcome::MinorFailure);
            return r.into_response();
        }
    };
    let mut hits: Vec<AuditEvent> = svc
        .audit
        .events_at(&record, svc.clock.now_unix())
        .into_iter()
        .filter(|e| search.matches(e))
        .collect();
    // Newest first: what a user wants to see; the spec leaves the order open.
    hits.reverse();
    let total = hits.len();
    let count = search.count.unwrap_or(25);
    let offset = search.offset.unwrap_or(0);
    let base = base_url(&headers);
    let link = |rel: &str, off: usize| {
        let mut q = search.raw_filters.clone();
        q.push(format!("_count={count}"));
        q.push(format!("_offset={off}"));
        json!({"relation": rel, "url": format!("{base}?{}", q.join("&"))})
    };
    let last = if count == 0 || total == 0 {
        0
    } else {
        (total - 1) / count * count
    };
    let mut links = vec![link("self", offset), link("first", 0)];
    if count > 0 && offset > 0 {
        links.push(link("previous", offset.saturating_sub(count)));
    }
    if count > 0 && offset.saturating_add(count) < total {
        links.push(link("next", offset + count));
    }
    links.push(link("last", last));
    let entries: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(count)
        .map(|e| {
            json!({
                "fullUrl": format!("{base}/{}", e.id),
                "resource": to_fhir(e),
                "search": {"mode": "match"},
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": svc.random_uuid(),
        "meta": {"lastUpdated": crate::mail::rfc3339(svc.clock.now_unix())},
        "type": "searchset",
        "link": links,
        "entry": entries,
    });
    if matches!(search.total.as_deref(), Some("estimate" | "accurate")) {
        bundle["total"] = json!(total);
    }
    log(AuditOutcome::Success);
    fhir_json(StatusCode::OK, &bundle)
}

async fn get_audit_event_by_id(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, record) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let log = |outcome| log_read_by_others(&svc, &caller, &record, "getAuditEventById", outcome);
    let refused = |r: Response| {
        log(AuditOutcome::MinorFailure);
        r
    };
    if query.is_some_and(|q| !q.is_empty()) {
        return refused(outcome(
            StatusCode::BAD_REQUEST,
            "MSG_BAD_FORMAT",
            "not-supported",
            "the read operation takes no query parameters",
        ));
    }
    if !is_uuid(&id) {
        return refused(outcome(
            StatusCode::BAD_REQUEST,
            "MSG_BAD_FORMAT",
            "not-supported",
            "the id is a UUID",
        ));
    }
    let found = svc
        .audit
        .events_at(&record, svc.clock.now_unix())
        .into_iter()
        .find(|e| e.id.eq_ignore_ascii_case(&id));
    match found {
        Some(e) => {
            log(AuditOutcome::Success);
            fhir_json(StatusCode::OK, &to_fhir(&e))
        }
        None => refused(outcome(
            StatusCode::NOT_FOUND,
            "MSG_RESOURCE_ID_FAIL",
            "processing",
            "no AuditEvent with this id in this record",
        )),
    }
}

async fn unknown_type(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = svc.require(&session, &headers, Access::Record) {
        return r;
    }
    outcome(
        StatusCode::NOT_FOUND,
        "MSG_UNKNOWN_TYPE",
        "processing",
        "the Audit Event Service serves AuditEvent resources only",
    )
}

async fn render_audit_events_to_pdf(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, record) = match svc.require_record(&session, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let log =
        |outcome| log_read_by_others(&svc, &caller, &record, "renderAuditEventsToPDF", outcome);
    let mut signed = None;
    for pair in query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let ok = match pair.split_once('=') {
            Some(("signed", "true")) if signed.is_none() => {
                signed = Some(true);
                true
            }
            Some(("signed", "false")) if signed.is_none() => {
                signed = Some(false);
                true
            }
            _ => false,
        };
        if !ok {
            tracing::warn!(
                rule = "the only query parameter is signed=true|false, once",
                "Audit Event Render: request refused"
            );
            log(AuditOutcome::MinorFailure);
            return crate::info::error(StatusCode::BAD_REQUEST, "malformedRequest", None);
        }
    }
    let signed = signed.unwrap_or(false);
    let now = svc.clock.now_unix();
    let events = svc.audit.events_at(&record, now);
    let owner = svc.people.get(&record).map_or_else(
        || record.clone(),
        |p| format!("{} ({record})", p.display_name()),
    );
    let pdf = render_pdf(&owner, &events, now, signed);
    log(AuditOutcome::Success);
    (StatusCode::OK, [("content-type", "application/pdf")], pdf).into_response()
}

// ---------------------------------------------------------------------------------------------
// A minimal PDF writer (Helvetica, WinAnsi), enough for a readable list.

const LINES_PER_PAGE: usize = 48;

/// Text as a PDF literal string in WinAnsiEncoding (Latin-1 range; others become `?`).
fn pdf_string(s: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in s.chars() {
        let b = u32::from(c);
        let byte = if (0x20..0x7f).contains(&b) || (0xa0..=0xff).contains(&b) {
            b as u8
        } else {
            b'?'
        };
        if matches!(byte, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b')');
    out
}

fn event_line(e: &AuditEvent) -> String {
    let action = match e.action {
        AuditAction::Create => "Erstellen",
        AuditAction::Read => "Lesen",
        AuditAction::Update => "Ändern",
        AuditAction::Delete => "Löschen",
        AuditAction::Execute => "Ausführen",
    };
    let result = match e.outcome {
        AuditOutcome::Success => "erfolgreich",
        AuditOutcome::MinorFailure => "fehlgeschlagen",
        AuditOutcome::SeriousFailure => "schwerer Fehler",
    };
    format!(
        "{}  {} ({})  {}: {} [{}]  {}",
        crate::mail::rfc3339(e.recorded),
        e.actor.name,
        e.actor.id,
        action,
        e.entity_name,
        e.operation,
        result
    )
}

/// A PDF 1.4 document listing `events` (newest first), one page per 48 lines.
pub fn render_pdf(owner: &str, events: &[AuditEvent], now: u64, signed: bool) -> Vec<u8> {
    let mut lines = vec![
        format!("Protokoll der elektronischen Patientenakte von {owner}"),
        format!(
            "Erstellt {} - {} Einträge{}",
            crate::mail::rfc3339(now),
            events.len(),
            if signed {
                " - signierte Fassung angefordert; Sandbox-Kopie ohne Signatur"
            } else {
                ""
            }
        ),
        String::new(),
    ];
    lines.extend(events.iter().rev().map(event_line));
    let pages: Vec<&[String]> = lines.chunks(LINES_PER_PAGE).collect();
    // Objects: 1 catalog, 2 pages, 3 font, 4 info, then (page, content) pairs.
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 5 + 2 * i))
        .collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            pages.len()
        )
        .into_bytes(),
    );
    objects.push(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    );
    let mut info = b"<< /Producer (epa-sandbox) /Title ".to_vec();
    info.extend(pdf_string("ePA Protokoll"));
    if signed {
        info.extend(b" /Subject ");
        info.extend(pdf_string("unsigned sandbox copy (no C.FD.SIG key)"));
    }
    info.extend(b" >>");
    objects.push(info);
    for (i, page) in pages.iter().enumerate() {
        let mut content = b"BT /F1 9 Tf 11 TL 40 800 Td\n".to_vec();
        for line in page.iter() {
            content.extend(pdf_string(line));
            content.extend(b" Tj T*\n");
        }
        content.extend(b"ET");
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
                6 + 2 * i
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend(content);
        stream.extend(b"\nendstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).into_bytes());
        out.extend(body);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).into_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").into_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 4 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .into_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn date_precision_ranges() {
        let day = date_range("2025-01-15").unwrap();
        assert_eq!(day.1 - day.0, 86_400);
        assert_eq!(crate::mail::rfc3339(day.0 as u64), "2025-01-15T00:00:00Z");
        let year = date_range("2024").unwrap();
        assert_eq!(year.1 - year.0, 366 * 86_400);
        let month = date_range("2025-02").unwrap();
        assert_eq!(month.1 - month.0, 28 * 86_400);
        let t = date_range("2025-01-15T11:00:00+01:00").unwrap();
        assert_eq!(crate::mail::rfc3339(t.0 as u64), "2025-01-15T10:00:00Z");
        assert_eq!(t.1 - t.0, 1);
        assert_eq!(date_range("2025-01-15T10:00Z").unwrap().1 - t.0, 60);
        for bad in [
            "2025-15-01T00:00:00Z",
            "2025-02-30",
            "2025-01-15T10:00:00",
            "25",
            "2025-1-1",
            "2025-01-15T24:00:00Z",
        ] {
            assert!(date_range(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn prefixes_on_a_point() {
        let t = date_range("2025-01-15T12:00:00Z").unwrap().0 as u64;
        let m = |q: &str| parse_date_cond(q).unwrap().matches(t);
        assert!(m("2025-01-15") && m("eq2025-01-15") && !m("ne2025-01-15"));
        assert!(m("gt2025-01-14") && !m("gt2025-01-15") && m("sa2025-01-14"));
        assert!(m("lt2025-01-16") && !m("lt2025-01-15") && m("eb2025-01-16"));
        assert!(m("ge2025-01-15") && m("le2025-01-15") && !m("le2025-01-14"));
    }

    #[test]
    fn ids_are_uuids() {
        assert!(is_uuid(&event_id(1)));
        assert_ne!(event_id(1), event_id(2));
    }
}
