//! Device Management (I_Device_Management_Insurant v1.1.0, epa-protocol.md §4): the device
//! registry per KVNR of one Aktensystem, its timers (6 h confirmation codes, 5 wrong codes,
//! lockout after 3 failed registrations within 8 h, 2-year maximum age), the Authorization
//! Service's device check at login, and the six inner routes under `/epa/basic/api/v1/devices`.
//!
//! The timers are applied lazily: every access to a KVNR's registrations first deletes what has
//! expired by then, and a pending registration that expired counts as a failed registration at
//! the moment it expired (`createdAt` + 6 h), not at the moment somebody noticed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use epa_protocol::xds::{is_uuid, rim};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditAction, AuditActor, AuditOutcome, NewAuditEvent};
use crate::authz::{ChannelSession, Scope, UserSession};
use crate::info::error;
use crate::mail::rfc3339;
use crate::services::{Access, RecordServices};

/// A confirmation code is valid this long from `createdAt`; then the pending registration goes.
pub const CODE_VALIDITY_S: u64 = 6 * 3600;
/// Failed registrations count for the lockout within this window; the lockout lasts this long
/// after the last failure.
pub const LOCKOUT_WINDOW_S: u64 = 8 * 3600;
/// This many failed registrations within the window block new registrations.
pub const LOCKOUT_FAILURES: usize = 3;
/// `remainingConfirmationRetries` of a fresh registration; the wrong code after the last retry
/// deletes the registration (the 5th consecutive wrong code).
pub const INITIAL_RETRIES: u8 = 4;
/// `displayName` / `deviceName`: at most this many characters.
pub const MAX_NAME_CHARS: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    Pending,
    Confirmed,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// What a pending registration carries until it is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConfirmation {
    /// The 6 digits mailed to the insurant.
    pub code: String,
    /// `remainingConfirmationRetries`: 4 → 0.
    pub remaining_retries: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub identifier: String,
    /// 64 hex digits; compared in constant time.
    pub token: String,
    pub status: DeviceStatus,
    pub display_name: String,
    /// `lastUse` (= the schema's `lastLogin`): confirmation, then every login with the device.
    pub last_use: u64,
    /// `createdAt`: the registerDevice call; never changes.
    pub created_at: u64,
    /// Code and retry counter while pending; `None` once confirmed.
    pub confirmation: Option<PendingConfirmation>,
}

impl Device {
    /// A confirmed registration made at `now` (also used by test suites that need a full
    /// session without going through registerDevice).
    pub fn confirmed(identifier: &str, token: &str, display_name: &str, now: u64) -> Self {
        Self {
            identifier: identifier.to_owned(),
            token: token.to_owned(),
            status: DeviceStatus::Confirmed,
            display_name: display_name.to_owned(),
            last_use: now,
            created_at: now,
            confirmation: None,
        }
    }

    /// A fresh pending registration waiting for `code`.
    pub fn pending(
        identifier: &str,
        token: &str,
        display_name: &str,
        code: &str,
        now: u64,
    ) -> Self {
        Self {
            identifier: identifier.to_owned(),
            token: token.to_owned(),
            status: DeviceStatus::Pending,
            display_name: display_name.to_owned(),
            last_use: 0,
            created_at: now,
            confirmation: Some(PendingConfirmation {
                code: code.to_owned(),
                remaining_retries: INITIAL_RETRIES,
            }),
        }
    }

    /// DeviceType / PendingDeviceType as the interface returns them. Confirmed entries carry the
    /// last use under both names the spec uses (`lastUse` in prose and examples, `lastLogin` in
    /// the schema).
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "deviceIdentifier": self.identifier,
            "status": self.status.as_str(),
            "displayName": self.display_name,
            "createdAt": rfc3339(self.created_at),
        });
        match (&self.confirmation, self.status) {
            (Some(p), DeviceStatus::Pending) => {
                v["remainingConfirmationRetries"] = json!(p.remaining_retries);
            }
            _ => {
                v["lastUse"] = json!(rfc3339(self.last_use));
                v["lastLogin"] = json!(rfc3339(self.last_use));
            }
        }
        v
    }
}

/// Why a login's device headers were refused (sendAuthCodeFdV's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCheck {
    /// 404 noResource: no such device for this KVNR.
    Unknown,
    /// 403 invalidToken.
    WrongToken,
    /// 409 statusMismatch: confirm the registration first.
    Pending,
}

/// Why confirmPendingDevice refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmError {
    /// 404 noResource: no such registration for this KVNR (also: expired, deleted).
    Unknown,
    /// 409 statusMismatch: already confirmed.
    AlreadyConfirmed,
    /// 403 invalidCode: code or token wrong; `remaining` retries left, `deleted` when this was
    /// the 5th consecutive wrong attempt and the registration is gone.
    WrongCode { remaining: u8, deleted: bool },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Inner {
    by_kvnr: HashMap<String, Vec<Device>>,
    /// When each KVNR's failed registrations happened (sorted); reset by a confirmation.
    failures: HashMap<String, Vec<u64>>,
}

#[derive(Debug, Default)]
pub struct DeviceRegistry {
    state: Mutex<Inner>,
}

impl DeviceRegistry {
    /// Everything, for `--state-dir`.
    pub fn snapshot(&self) -> Value {
        serde_json::to_value(&*self.state.lock().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or(Value::Null)
    }

    pub fn restore(&self, v: Value) -> Result<(), serde_json::Error> {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = serde_json::from_value(v)?;
        Ok(())
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn same_token(a: &str, b: &str) -> bool {
    ct_eq(
        a.to_ascii_lowercase().as_bytes(),
        b.to_ascii_lowercase().as_bytes(),
    )
}

/// The same calendar moment two years later (29 February → 1 March): when a registration made
/// at `t` is deleted.
pub fn two_years_after(t: u64) -> u64 {
    let days = (t / 86_400) as i64;
    let (y, m, d) = rim::civil_from_days(days);
    let (m, d) = if m == 2 && d == 29 { (3, 1) } else { (m, d) };
    u64::try_from(rim::days_from_civil(y + 2, m, d)).unwrap_or(0) * 86_400 + t % 86_400
}

impl Inner {
    /// Deletes what has expired for `kvnr` by `now`; expired pending registrations are failed
    /// registrations at their expiry time.
    fn sweep(&mut self, kvnr: &str, now: u64) {
        let Some(devices) = self.by_kvnr.get_mut(kvnr) else {
            return;
        };
        let mut failed = Vec::new();
        devices.retain(|d| {
            if now >= two_years_after(d.created_at) {
                tracing::info!(device = %d.identifier, "device registration older than 2 years deleted");
                return false;
            }
            if d.status == DeviceStatus::Pending && now >= d.created_at + CODE_VALIDITY_S {
                tracing::info!(device = %d.identifier, "pending device registration expired (6 h)");
                failed.push(d.created_at + CODE_VALIDITY_S);
                return false;
            }
            true
        });
        if devices.is_empty() {
            self.by_kvnr.remove(kvnr);
        }
        for at in failed {
            self.fail(kvnr, at);
        }
    }

    fn fail(&mut self, kvnr: &str, at: u64) {
        let f = self.failures.entry(kvnr.to_owned()).or_default();
        f.push(at);
        f.sort_unstable();
    }

    fn lockout_until(&self, kvnr: &str, now: u64) -> Option<u64> {
        let f = self.failures.get(kvnr)?;
        let last_three = f.get(f.len().checked_sub(LOCKOUT_FAILURES)?..)?;
        let (first, last) = (*last_three.first()?, *last_three.last()?);
        let until = last + LOCKOUT_WINDOW_S;
        (last - first <= LOCKOUT_WINDOW_S && now < until).then_some(until)
    }

    fn device_mut(&mut self, kvnr: &str, identifier: &str) -> Option<&mut Device> {
        self.by_kvnr
            .get_mut(kvnr)?
            .iter_mut()
            .find(|d| d.identifier.eq_ignore_ascii_case(identifier))
    }
}

impl DeviceRegistry {
    fn state(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a registration as it is (no rules applied).
    pub fn insert(&self, kvnr: &str, device: Device) {
        self.state()
            .by_kvnr
            .entry(kvnr.to_owned())
            .or_default()
            .push(device);
    }

    /// The KVNR's registrations as stored, oldest first (no expiry applied).
    pub fn devices(&self, kvnr: &str) -> Vec<Device> {
        self.state().by_kvnr.get(kvnr).cloned().unwrap_or_default()
    }

    /// The KVNR's registrations at `now` (expired ones deleted first), oldest first.
    pub fn list(&self, kvnr: &str, now: u64) -> Vec<Device> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        s.by_kvnr.get(kvnr).cloned().unwrap_or_default()
    }

    pub fn get(&self, kvnr: &str, identifier: &str, now: u64) -> Option<Device> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        s.device_mut(kvnr, identifier).map(|d| d.clone())
    }

    /// When the registration lockout ends, if one is in force at `now`.
    pub fn lockout_until(&self, kvnr: &str, now: u64) -> Option<u64> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        s.lockout_until(kvnr, now)
    }

    /// The failed registrations counted for the lockout, oldest first.
    pub fn failures(&self, kvnr: &str) -> Vec<u64> {
        self.state().failures.get(kvnr).cloned().unwrap_or_default()
    }

    /// Creates a pending registration named `name`, or `newDevice001`, `newDevice002`, … (the
    /// first such name none of the KVNR's registrations has). `Err(until)` while locked out.
    pub fn register(
        &self,
        kvnr: &str,
        identifier: &str,
        token: &str,
        name: Option<&str>,
        code: &str,
        now: u64,
    ) -> Result<Device, u64> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        if let Some(until) = s.lockout_until(kvnr, now) {
            return Err(until);
        }
        let list = s.by_kvnr.entry(kvnr.to_owned()).or_default();
        let name = match name {
            Some(n) => n.to_owned(),
            None => (1u32..)
                .map(|n| format!("newDevice{n:03}"))
                .find(|c| !list.iter().any(|d| d.display_name == *c))
                .unwrap_or_default(),
        };
        let device = Device::pending(identifier, token, &name, code, now);
        list.push(device.clone());
        Ok(device)
    }

    /// confirmPendingDevice: identifier, token and code must match; a success makes the
    /// registration confirmed with `lastUse = now` and ends the KVNR's run of failures.
    pub fn confirm(
        &self,
        kvnr: &str,
        identifier: &str,
        token: &str,
        code: &str,
        now: u64,
    ) -> Result<Device, ConfirmError> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        let device = s
            .device_mut(kvnr, identifier)
            .ok_or(ConfirmError::Unknown)?;
        let Some(pending) = device.confirmation.as_mut() else {
            return Err(ConfirmError::AlreadyConfirmed);
        };
        let code_ok = ct_eq(pending.code.as_bytes(), code.as_bytes());
        if code_ok && same_token(&device.token, token) {
            device.status = DeviceStatus::Confirmed;
            device.confirmation = None;
            device.last_use = now;
            let done = device.clone();
            s.failures.remove(kvnr);
            return Ok(done);
        }
        if pending.remaining_retries > 0 {
            pending.remaining_retries -= 1;
            return Err(ConfirmError::WrongCode {
                remaining: pending.remaining_retries,
                deleted: false,
            });
        }
        let id = device.identifier.clone();
        if let Some(list) = s.by_kvnr.get_mut(kvnr) {
            list.retain(|d| d.identifier != id);
        }
        tracing::info!(device = %id, "pending device registration deleted after 5 wrong codes");
        s.fail(kvnr, now);
        Err(ConfirmError::WrongCode {
            remaining: 0,
            deleted: true,
        })
    }

    /// updateDevice: any status; timestamps stay.
    pub fn rename(&self, kvnr: &str, identifier: &str, name: &str, now: u64) -> Option<Device> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        let d = s.device_mut(kvnr, identifier)?;
        d.display_name = name.to_owned();
        Some(d.clone())
    }

    /// deleteDevice (also the roll-back of a registration whose mail could not be sent). Not a
    /// failed registration.
    pub fn remove(&self, kvnr: &str, identifier: &str, now: u64) -> Option<Device> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        let list = s.by_kvnr.get_mut(kvnr)?;
        let i = list
            .iter()
            .position(|d| d.identifier.eq_ignore_ascii_case(identifier))?;
        Some(list.remove(i))
    }

    /// The check at login: only this KVNR's registrations count, after the expiry rules;
    /// success updates `lastUse`.
    pub fn verify(
        &self,
        kvnr: &str,
        identifier: &str,
        token: &str,
        now: u64,
    ) -> Result<(), DeviceCheck> {
        let mut s = self.state();
        s.sweep(kvnr, now);
        let device = s.device_mut(kvnr, identifier).ok_or(DeviceCheck::Unknown)?;
        if !same_token(&device.token, token) {
            return Err(DeviceCheck::WrongToken);
        }
        if device.status == DeviceStatus::Pending {
            return Err(DeviceCheck::Pending);
        }
        device.last_use = now;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Shared by the ePA-Basic list operations: query parsing and page-index paging.

/// `limit` / `offset` of an ePA-Basic list operation: `limit` is the page size (1..50, default
/// 50), `offset` the index of the page (default 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub limit: usize,
    pub offset: usize,
}

pub const MAX_PAGE: usize = 50;

/// The query string as name → value (percent-decoded). Each name at most once, and every
/// parameter needs a value; names that the operation does not know are ignored.
pub fn parse_query(raw: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("query parameter {pair:?} has no value"))?;
        let k = crate::idp::form_decode(k).map_err(|e| e.to_string())?;
        let v = crate::idp::form_decode(v).map_err(|e| e.to_string())?;
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("query parameter {k:?} appears more than once"));
        }
    }
    Ok(out)
}

/// `limit` and `offset` of a parsed query, checked against the schema.
pub fn paging(q: &BTreeMap<String, String>) -> Result<Paging, String> {
    let limit = match q.get("limit") {
        None => MAX_PAGE,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(format!("limit must be an integer 1..{MAX_PAGE}, got {v:?}")),
        },
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| format!("offset must be a page index (integer ≥ 0), got {v:?}"))?,
    };
    Ok(Paging { limit, offset })
}

/// `{"query": {offset, limit, totalMatching}, "data": [page]}` for the matching `items`.
pub fn paged(items: Vec<Value>, p: Paging) -> Value {
    let total = items.len();
    let start = p.offset.saturating_mul(p.limit);
    let data: Vec<Value> = items.into_iter().skip(start).take(p.limit).collect();
    json!({
        "query": { "offset": p.offset, "limit": p.limit, "totalMatching": total },
        "data": data,
    })
}

/// `application/json` body of type `T`, or the rule it breaks.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, String> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err("the body must be application/json".into());
    }
    serde_json::from_slice(body).map_err(|e| format!("body does not match the schema: {e}"))
}

/// A refused request: the spec's error body (the rule went to stderr when it was made).
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: Option<String>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.detail)
    }
}

/// A refusal with the spec's error body; the rule goes to stderr.
pub fn refuse(
    status: StatusCode,
    code: &'static str,
    detail: Option<String>,
    rule: &str,
) -> Refusal {
    tracing::warn!(code, rule, "record service: request refused");
    Refusal {
        status,
        code,
        detail,
    }
}

fn malformed(rule: &str) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, "malformedRequest", None, rule)
}

fn token_ok(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn code_ok(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

fn name_ok(s: &str) -> bool {
    s.chars().count() <= MAX_NAME_CHARS
}

/// What an operation reports for the audit log when it went through.
pub struct Done {
    pub response: Response,
    pub entity_name: String,
    pub entity_detail: Option<String>,
}

/// A service whose routes [`audited`] runs: the access they need, the audit source and the
/// entity name of events that concern no single item.
pub struct AuditedService {
    pub access: Access,
    pub source: &'static str,
    pub name: &'static str,
}

/// A route of Device or E-Mail Management: the access guard (a refusal there is not logged),
/// then the operation; writes its audit event (outcome from the answer) and returns the answer.
pub fn audited(
    svc: &RecordServices,
    session: &ChannelSession,
    headers: &HeaderMap,
    service: &AuditedService,
    action: AuditAction,
    operation: &'static str,
    op: impl FnOnce(&UserSession) -> Result<Done, Refusal>,
) -> Response {
    let caller = match svc.require(session, headers, service.access) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let user = &caller.user;
    let (response, entity_name, entity_detail) = match op(user) {
        Ok(d) => (d.response, d.entity_name, d.entity_detail),
        Err(r) => (r.into_response(), service.name.to_owned(), None),
    };
    svc.audit.record(
        svc.clock.now_unix(),
        NewAuditEvent {
            record: user.kvnr.clone(),
            action,
            outcome: AuditOutcome::of_status(response.status()),
            source: service.source,
            kind: "rest",
            operation,
            entity_name,
            entity_detail,
            actor: AuditActor {
                id: user.kvnr.clone(),
                name: user.display_name.clone(),
                oid: crate::idp::PROFESSION_VERSICHERTER.to_owned(),
            },
        },
    );
    response
}

const SERVICE: AuditedService = AuditedService {
    access: Access::DeviceManagement,
    source: "DEVICEMGMT",
    name: "Device Management",
};

pub fn router(svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
        .route(
            "/epa/basic/api/v1/devices/manage",
            post(register_device).put(confirm_pending_device),
        )
        .route("/epa/basic/api/v1/devices", get(get_devices))
        .route(
            "/epa/basic/api/v1/devices/{deviceidentifier}",
            get(get_device).put(update_device).delete(delete_device),
        )
        .with_state(svc)
}

fn done(status: StatusCode, body: Value, device: Option<&Device>) -> Done {
    Done {
        response: (status, Json(body)).into_response(),
        entity_name: device.map_or_else(|| SERVICE.name.to_owned(), |d| d.display_name.clone()),
        entity_detail: device.map(|d| format!("DeviceIdentifier={}", d.identifier)),
    }
}

fn not_found(rule: &str) -> Refusal {
    refuse(StatusCode::NOT_FOUND, "noResource", None, rule)
}

fn no_device() -> Refusal {
    not_found("no such device registration for this KVNR")
}

/// Six random digits (uniform).
fn confirmation_code(svc: &RecordServices) -> String {
    loop {
        let mut b = [0u8; 4];
        rand_core::Rng::fill_bytes(&mut *svc.rng(), &mut b);
        let v = u32::from_be_bytes(b);
        // 4_294_000_000 is a multiple of 1_000_000: no bias.
        if v < 4_294_000_000 {
            return format!("{:06}", v % 1_000_000);
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegisterBody {
    device_name: String,
}

async fn register_device(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Create,
        "registerDevice",
        |user| register(&svc, user, &headers, &body),
    )
}

fn register(
    svc: &RecordServices,
    user: &UserSession,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Done, Refusal> {
    let name = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let b: RegisterBody = json_body(headers, body).map_err(|rule| malformed(&rule))?;
        if !name_ok(&b.device_name) {
            return Err(malformed("deviceName has more than 80 characters"));
        }
        Some(b.device_name)
    };
    if user.scope == Scope::Representative {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "invalidRequest",
            None,
            "no device registration in the \"authorize representative\" case",
        ));
    }
    let addresses = svc.emails.addresses(&user.kvnr);
    if addresses.is_empty() {
        return Err(not_found("no e-mail address stored for this KVNR"));
    }
    let now = svc.clock.now_unix();
    let identifier = svc.random_uuid();
    let token = svc.random_hex(32);
    let code = confirmation_code(svc);
    let device = svc
        .devices
        .register(&user.kvnr, &identifier, &token, name.as_deref(), &code, now)
        .map_err(|until| {
            refuse(
                StatusCode::CONFLICT,
                "statusMismatch",
                Some(rfc3339(until)),
                "3 failed device registrations within 8 h: wait until the time in errorDetail",
            )
        })?;
    let person = svc
        .people
        .get(&user.kvnr)
        .map_or_else(|| user.display_name.clone(), |p| p.display_name());
    let text = format!(
        "Guten Tag {person},\n\
         \n\
         für Ihre elektronische Patientenakte (ePA) wurde ein neues Gerät angemeldet:\n\
         „{name}“, am {created} (UTC).\n\
         \n\
         Bestätigungscode: {code}\n\
         \n\
         Bitte geben Sie den Code in Ihrer ePA-App ein. Er gilt 6 Stunden, bis {valid} (UTC).\n\
         Haben Sie kein Gerät angemeldet, ignorieren Sie diese E-Mail; die Anmeldung verfällt\n\
         dann von selbst.\n\
         \n\
         Ihr ePA-Aktensystem {system}\n",
        name = device.display_name,
        created = rfc3339(now),
        valid = rfc3339(now + CODE_VALIDITY_S),
        system = svc.system_id,
    );
    for to in &addresses {
        if let Err(e) = svc
            .outbox
            .send(to, "Ihr Bestätigungscode für die ePA", &text, now)
        {
            tracing::error!(error = %e, "sending the confirmation code failed");
            svc.devices.remove(&user.kvnr, &identifier, now);
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internalError",
                None,
                "the confirmation mail could not be sent",
            ));
        }
    }
    let mut data = device.to_json();
    if let Some(m) = data.as_object_mut() {
        m.remove("deviceIdentifier");
    }
    Ok(done(
        StatusCode::CREATED,
        json!({ "deviceIdentifier": identifier, "deviceToken": token, "data": data }),
        Some(&device),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfirmBody {
    device_identifier: Option<String>,
    device_token: Option<String>,
    confirmation_code: String,
}

async fn confirm_pending_device(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Update,
        "confirmPendingDevice",
        |user| confirm(&svc, &session, user, &headers, &body),
    )
}

fn confirm(
    svc: &RecordServices,
    session: &ChannelSession,
    user: &UserSession,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Done, Refusal> {
    let b: ConfirmBody = json_body(headers, body).map_err(|rule| malformed(&rule))?;
    let (Some(id), Some(token)) = (b.device_identifier, b.device_token) else {
        return Err(malformed(
            "deviceIdentifier and deviceToken are needed to confirm a registration",
        ));
    };
    if !is_uuid(&id) || !token_ok(&token) || !code_ok(&b.confirmation_code) {
        return Err(malformed(
            "deviceIdentifier is a UUID, deviceToken 64 hex digits, confirmationCode 6 digits",
        ));
    }
    let now = svc.clock.now_unix();
    match svc
        .devices
        .confirm(&user.kvnr, &id, &token, &b.confirmation_code, now)
    {
        Ok(device) => {
            if svc
                .behaviour
                .full_access_after_confirm
                .load(std::sync::atomic::Ordering::SeqCst)
                && session.upgrade_to_full()
            {
                tracing::info!("device confirmed: the session now has full access");
            }
            Ok(done(StatusCode::OK, device.to_json(), Some(&device)))
        }
        Err(ConfirmError::Unknown) => Err(no_device()),
        Err(ConfirmError::AlreadyConfirmed) => Err(refuse(
            StatusCode::CONFLICT,
            "statusMismatch",
            None,
            "the device registration is already confirmed",
        )),
        Err(ConfirmError::WrongCode { remaining, deleted }) => Err(refuse(
            StatusCode::FORBIDDEN,
            "invalidCode",
            Some(remaining.to_string()),
            if deleted {
                "5th wrong confirmation code: the registration is deleted"
            } else {
                "wrong confirmation code or device token"
            },
        )),
    }
}

async fn get_devices(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Read,
        "getDevices",
        |user| {
            let q = parse_query(query.as_deref()).map_err(|rule| malformed(&rule))?;
            let p = paging(&q).map_err(|rule| malformed(&rule))?;
            let status = match q.get("devicestatus") {
                None => None,
                Some(s) => Some(
                    DeviceStatus::parse(s)
                        .ok_or_else(|| malformed("devicestatus must be pending or confirmed"))?,
                ),
            };
            let items = svc
                .devices
                .list(&user.kvnr, svc.clock.now_unix())
                .iter()
                .filter(|d| status.is_none_or(|s| d.status == s))
                .map(Device::to_json)
                .collect();
            Ok(done(StatusCode::OK, paged(items, p), None))
        },
    )
}

fn checked_id(id: &str) -> Result<(), Refusal> {
    if is_uuid(id) {
        Ok(())
    } else {
        Err(malformed("deviceidentifier must be a UUID"))
    }
}

async fn get_device(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Read,
        "getDevice",
        |user| {
            checked_id(&id)?;
            let d = svc
                .devices
                .get(&user.kvnr, &id, svc.clock.now_unix())
                .ok_or_else(no_device)?;
            Ok(done(StatusCode::OK, d.to_json(), Some(&d)))
        },
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    display_name: String,
}

async fn update_device(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Update,
        "updateDevice",
        |user| {
            checked_id(&id)?;
            let b: UpdateBody = json_body(&headers, &body).map_err(|rule| malformed(&rule))?;
            if !name_ok(&b.display_name) {
                return Err(malformed("displayName has more than 80 characters"));
            }
            let d = svc
                .devices
                .rename(&user.kvnr, &id, &b.display_name, svc.clock.now_unix())
                .ok_or_else(no_device)?;
            Ok(done(StatusCode::OK, d.to_json(), Some(&d)))
        },
    )
}

async fn delete_device(
    State(svc): State<Arc<RecordServices>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    audited(
        &svc,
        &session,
        &headers,
        &SERVICE,
        AuditAction::Delete,
        "deleteDevice",
        |user| {
            checked_id(&id)?;
            let d = svc
                .devices
                .remove(&user.kvnr, &id, svc.clock.now_unix())
                .ok_or_else(no_device)?;
            Ok(Done {
                response: StatusCode::NO_CONTENT.into_response(),
                entity_name: d.display_name,
                entity_detail: Some(format!("DeviceIdentifier={}", d.identifier)),
            })
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const K: &str = "X110411675";
    const ID1: &str = "11111111-1111-4111-8111-111111111111";
    const ID2: &str = "22222222-2222-4222-8222-222222222222";
    const T0: u64 = 1_750_000_000;

    fn tok() -> String {
        "ab".repeat(32)
    }

    #[test]
    fn the_login_check_follows_the_table() {
        let r = DeviceRegistry::default();
        r.insert(K, Device::confirmed(ID1, &tok(), "newDevice001", T0));
        r.insert(
            K,
            Device::pending(ID2, &tok(), "newDevice002", "123456", T0),
        );
        let t = tok();
        assert_eq!(r.verify(K, ID1, &t, T0 + 5), Ok(()));
        assert_eq!(r.devices(K)[0].last_use, T0 + 5);
        assert_eq!(
            r.verify(K, ID1, &"cd".repeat(32), T0 + 6),
            Err(DeviceCheck::WrongToken)
        );
        assert_eq!(r.verify(K, ID2, &t, T0 + 7), Err(DeviceCheck::Pending));
        // Another insurant's device does not exist for this KVNR.
        assert_eq!(
            r.verify("M432109873", ID1, &t, T0 + 8),
            Err(DeviceCheck::Unknown)
        );
        // 6 h later the pending one is gone (and counted as a failed registration).
        assert_eq!(
            r.verify(K, ID2, &t, T0 + CODE_VALIDITY_S),
            Err(DeviceCheck::Unknown)
        );
        assert_eq!(r.failures(K), vec![T0 + CODE_VALIDITY_S]);
    }

    #[test]
    fn names_are_generated_unique() {
        let r = DeviceRegistry::default();
        let a = r.register(K, ID1, &tok(), None, "111111", T0).unwrap();
        let b = r.register(K, ID2, &tok(), None, "222222", T0).unwrap();
        assert_eq!(
            (a.display_name.as_str(), b.display_name.as_str()),
            ("newDevice001", "newDevice002")
        );
        r.remove(K, ID1, T0);
        let c = r
            .register(
                K,
                "33333333-3333-4333-8333-333333333333",
                &tok(),
                None,
                "3",
                T0,
            )
            .unwrap();
        assert_eq!(c.display_name, "newDevice001");
        let d = r
            .register(
                K,
                "44444444-4444-4444-8444-444444444444",
                &tok(),
                Some("Tablet"),
                "4",
                T0,
            )
            .unwrap();
        assert_eq!(d.display_name, "Tablet");
        // Deleting is not a failed registration.
        assert!(r.failures(K).is_empty());
    }

    #[test]
    fn five_wrong_codes_delete_and_count_as_failure() {
        let r = DeviceRegistry::default();
        r.register(K, ID1, &tok(), None, "123456", T0).unwrap();
        for left in [3, 2, 1, 0] {
            assert_eq!(
                r.confirm(K, ID1, &tok(), "000000", T0 + 1).err(),
                Some(ConfirmError::WrongCode {
                    remaining: left,
                    deleted: false
                })
            );
        }
        // The right code with the wrong token is wrong too: the 5th attempt deletes.
        assert_eq!(
            r.confirm(K, ID1, &"cd".repeat(32), "123456", T0 + 2).err(),
            Some(ConfirmError::WrongCode {
                remaining: 0,
                deleted: true
            })
        );
        assert_eq!(
            r.confirm(K, ID1, &tok(), "123456", T0 + 3).err(),
            Some(ConfirmError::Unknown)
        );
        assert_eq!(r.failures(K), vec![T0 + 2]);
    }

    #[test]
    fn confirmation_keeps_created_at_and_sets_last_use() {
        let r = DeviceRegistry::default();
        r.register(K, ID1, &tok(), None, "123456", T0).unwrap();
        assert_eq!(
            r.confirm("M432109873", ID1, &tok(), "123456", T0 + 1)
                .unwrap_err(),
            ConfirmError::Unknown
        );
        let d = r.confirm(K, ID1, &tok(), "123456", T0 + 60).unwrap();
        assert_eq!(d.status, DeviceStatus::Confirmed);
        assert_eq!((d.created_at, d.last_use), (T0, T0 + 60));
        assert_eq!(d.confirmation, None);
        let j = d.to_json();
        assert_eq!(j["lastUse"], j["lastLogin"]);
        assert!(j.get("remainingConfirmationRetries").is_none());
        assert_eq!(
            r.confirm(K, ID1, &tok(), "123456", T0 + 61).unwrap_err(),
            ConfirmError::AlreadyConfirmed
        );
    }

    #[test]
    fn three_failures_within_8_hours_lock_registration_for_8_hours() {
        let r = DeviceRegistry::default();
        let ids = [
            "a0000000-0000-4000-8000-000000000001",
            "a0000000-0000-4000-8000-000000000002",
            "a0000000-0000-4000-8000-000000000003",
        ];
        for (i, id) in ids.iter().enumerate() {
            r.register(K, id, &tok(), None, "123456", T0 + i as u64)
                .unwrap();
        }
        // Noticed only much later; the failures happened at expiry.
        let later = T0 + 10 * 3600;
        let last = T0 + 2 + CODE_VALIDITY_S;
        assert_eq!(r.lockout_until(K, later), Some(last + LOCKOUT_WINDOW_S));
        assert_eq!(
            r.register(K, ID1, &tok(), None, "1", later).unwrap_err(),
            last + LOCKOUT_WINDOW_S
        );
        assert_eq!(r.lockout_until(K, last + LOCKOUT_WINDOW_S), None);
        assert!(
            r.register(K, ID1, &tok(), None, "1", last + LOCKOUT_WINDOW_S)
                .is_ok()
        );
    }

    #[test]
    fn failures_spread_over_more_than_8_hours_do_not_lock() {
        let r = DeviceRegistry::default();
        let mut s = r.state();
        s.fail(K, T0);
        s.fail(K, T0 + 5 * 3600);
        s.fail(K, T0 + 9 * 3600);
        assert_eq!(s.lockout_until(K, T0 + 9 * 3600 + 1), None);
        s.fail(K, T0 + 10 * 3600);
        assert_eq!(s.lockout_until(K, T0 + 10 * 3600), Some(T0 + 18 * 3600));
    }

    #[test]
    fn a_confirmation_ends_the_run_of_failures() {
        let r = DeviceRegistry::default();
        r.state().fail(K, T0);
        r.state().fail(K, T0 + 1);
        r.register(K, ID1, &tok(), None, "123456", T0 + 2).unwrap();
        r.confirm(K, ID1, &tok(), "123456", T0 + 3).unwrap();
        assert!(r.failures(K).is_empty());
        r.state().fail(K, T0 + 4);
        assert_eq!(r.lockout_until(K, T0 + 5), None);
    }

    #[test]
    fn registrations_expire_after_two_calendar_years() {
        // 2024-02-29T12:00:00Z → 2026-03-01T12:00:00Z
        assert_eq!(rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
        assert_eq!(
            rfc3339(two_years_after(1_709_208_000)),
            "2026-03-01T12:00:00Z"
        );
        // 2025-06-15T08:30:00Z → 2027-06-15T08:30:00Z
        assert_eq!(
            rfc3339(two_years_after(1_749_976_200)),
            "2027-06-15T08:30:00Z"
        );
        let r = DeviceRegistry::default();
        r.insert(K, Device::confirmed(ID1, &tok(), "a", T0));
        let end = two_years_after(T0);
        assert_eq!(r.verify(K, ID1, &tok(), end - 1), Ok(()));
        assert_eq!(r.verify(K, ID1, &tok(), end), Err(DeviceCheck::Unknown));
        assert!(r.list(K, end).is_empty());
        assert!(r.failures(K).is_empty());
    }

    #[test]
    fn paging_uses_page_indexes() {
        let items: Vec<Value> = (0..75).map(|i| json!(i)).collect();
        let page = |o| {
            paged(
                items.clone(),
                Paging {
                    limit: 40,
                    offset: o,
                },
            )
        };
        assert_eq!(page(0)["data"].as_array().unwrap().len(), 40);
        assert_eq!(page(1)["data"][0], json!(40));
        assert_eq!(page(1)["data"].as_array().unwrap().len(), 35);
        assert_eq!(page(2)["data"].as_array().unwrap().len(), 0);
        assert_eq!(page(2)["query"]["totalMatching"], json!(75));
        let q = |s: &str| parse_query(Some(s)).and_then(|q| paging(&q));
        assert_eq!(
            q("").unwrap(),
            Paging {
                limit: 50,
                offset: 0
            }
        );
        assert!(q("limit=0").is_err());
        assert!(q("limit=51").is_err());
        assert!(q("limit=x").is_err());
        assert!(q("offset=-1").is_err());
        assert!(q("limit=5&limit=6").is_err());
        assert_eq!(q("limit=50&offset=3&other=1").unwrap().offset, 3);
    }
}
