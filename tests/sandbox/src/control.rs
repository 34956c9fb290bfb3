//! The control API — for tests and demos only, never part of a real Aktensystem: the sandbox
//! clock and fault injection, on the portal listener under `{control_api}` =
//! `https://<portal>/control`.
//!
//! | route | |
//! |---|---|
//! | `GET {control_api}/clock` | `{"now": unix, "now_rfc3339": …, "offset_seconds": …}` |
//! | `POST {control_api}/clock/advance` | `{"seconds": N}` → the new clock |
//! | `GET {control_api}/faults` | the [`FaultSettings`] in force |
//! | `PUT {control_api}/faults` | replaces them (omitted members take their defaults) |
//! | `PATCH {control_api}/faults` | changes only the members given |
//! | `DELETE {control_api}/faults` | back to the defaults |
//! | `POST {control_api}/sessions/drop` | ends every user session now → `{"dropped": N}` |
//!
//! Faults act on the inner requests of the VAU channels (after decryption): added latency, 5xx
//! answers with the spec's `{"errorCode":"internalError"}`, a VAU `Restart` for the next data
//! request, the IDPs (and the ident app) answering 503, delayed mails, and the idle timeout of
//! user sessions. The same JSON can be loaded at start (`epa-sandbox serve --faults FILE`).
//!
//! Mail delay counts in sandbox time: a mail sent at `t` appears in the outbox once the sandbox
//! clock reaches `t + mail_delay_seconds` (real time passing or `clock/advance`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aktensystem::Aktensystem;
use crate::clock::Clock;
use crate::idp::Idps;
use crate::mail::Outbox;

/// User sessions end after this much inactivity (sandbox clock) unless configured otherwise.
pub const DEFAULT_SESSION_IDLE_TIMEOUT_S: u64 = 20 * 60;

/// Extra latency for inner requests whose path starts with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyRule {
    /// Inner path prefix, e.g. `/epa/xds-document`; `/` for all.
    pub prefix: String,
    pub ms: u64,
    /// Only this Aktensystem (its id); all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aktensystem: Option<String>,
}

/// Answer inner requests whose path starts with `prefix` with a 5xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRule {
    pub prefix: String,
    /// 500..=599; the body is always `{"errorCode":"internalError"}`.
    #[serde(default = "default_error_status")]
    pub status: u16,
    /// How many requests fail; absent = until cleared. Counts down as requests fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aktensystem: Option<String>,
}

fn default_error_status() -> u16 {
    500
}

/// Every switch of the control API, as JSON (`--faults FILE`, `GET/PUT/PATCH …/faults`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Added to every inner request.
    pub latency_ms: u64,
    /// Added to matching inner requests (on top of `latency_ms`, all matching rules add up).
    pub latency: Vec<LatencyRule>,
    /// The first matching rule answers.
    pub errors: Vec<ErrorRule>,
    /// The next data request on any VAU channel gets a VAU `Restart` (one-shot per Aktensystem).
    pub restart_next: bool,
    /// The IDPs and the ident app answer 503; sendAuthorizationRequestFdV fails with 500
    /// internalError.
    pub idp_down: bool,
    /// Mails appear in the outbox this many sandbox seconds after they were sent.
    pub mail_delay_seconds: u64,
    /// A user session idle longer than this (sandbox clock) is gone (403 invalAuth).
    pub session_idle_timeout_seconds: u64,
    /// After confirmPendingDevice the running session gets full access at once.
    pub full_access_after_confirm: bool,
}

impl Default for FaultSettings {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            latency: Vec::new(),
            errors: Vec::new(),
            restart_next: false,
            idp_down: false,
            mail_delay_seconds: 0,
            session_idle_timeout_seconds: DEFAULT_SESSION_IDLE_TIMEOUT_S,
            full_access_after_confirm: false,
        }
    }
}

impl FaultSettings {
    /// The rule the settings break, if any.
    pub fn validate(&self, systems: &[String]) -> Result<(), String> {
        let known = |a: &Option<String>| match a {
            Some(id) if !systems.contains(id) => Err(format!("unknown aktensystem {id:?}")),
            _ => Ok(()),
        };
        for r in &self.latency {
            if !r.prefix.starts_with('/') {
                return Err(format!("latency prefix {:?} must start with /", r.prefix));
            }
            known(&r.aktensystem)?;
        }
        for r in &self.errors {
            if !r.prefix.starts_with('/') {
                return Err(format!("error prefix {:?} must start with /", r.prefix));
            }
            if !(500..=599).contains(&r.status) {
                return Err(format!("error status {} is not 5xx", r.status));
            }
            if r.count == Some(0) {
                return Err("error count 0 would never fire; omit the rule".into());
            }
            known(&r.aktensystem)?;
        }
        if self.session_idle_timeout_seconds == 0 {
            return Err("session_idle_timeout_seconds must be > 0".into());
        }
        Ok(())
    }
}

/// What the inner dispatch of every Aktensystem consults.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PlanState {
    pub latency_ms: u64,
    pub latency: Vec<LatencyRule>,
    pub errors: Vec<ErrorRule>,
    pub session_idle_timeout_seconds: u64,
}

/// Faults that act inside the Aktensysteme (shared by all of them).
#[derive(Debug, Default)]
pub struct FaultPlan {
    state: Mutex<PlanState>,
}

impl FaultPlan {
    pub fn new(settings: &FaultSettings) -> Self {
        let plan = Self::default();
        plan.set(settings);
        plan
    }

    fn state(&self) -> MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, s: &FaultSettings) {
        *self.state() = PlanState {
            latency_ms: s.latency_ms,
            latency: s.latency.clone(),
            errors: s.errors.clone(),
            session_idle_timeout_seconds: s.session_idle_timeout_seconds,
        };
    }

    pub fn snapshot(&self) -> PlanState {
        self.state().clone()
    }

    pub fn session_idle_timeout(&self) -> u64 {
        match self.state().session_idle_timeout_seconds {
            0 => DEFAULT_SESSION_IDLE_TIMEOUT_S,
            s => s,
        }
    }

    /// Delay and maybe a 5xx status for an inner request to `path` on `system`; a rule with a
    /// count is used up here.
    fn decide(&self, system: &str, path: &str) -> (u64, Option<u16>) {
        let mut s = self.state();
        let applies = |prefix: &str, a: &Option<String>| {
            path.starts_with(prefix) && a.as_deref().is_none_or(|id| id == system)
        };
        let delay = s.latency_ms.saturating_add(
            s.latency
                .iter()
                .filter(|r| applies(&r.prefix, &r.aktensystem))
                .map(|r| r.ms)
                .sum(),
        );
        let hit = s
            .errors
            .iter()
            .position(|r| applies(&r.prefix, &r.aktensystem));
        let status = hit.map(|i| {
            let status = s.errors[i].status;
            if let Some(n) = s.errors[i].count.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    s.errors.remove(i);
                }
            }
            status
        });
        (delay, status)
    }

    /// Applies latency; returns the 5xx inner response when an error rule fires.
    pub async fn before_inner(
        &self,
        system: &str,
        path: &str,
    ) -> Option<epa_protocol::http::Response> {
        let (delay, status) = self.decide(system, path);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let status = status?;
        tracing::warn!(
            system,
            path,
            status,
            rule = "fault injection (control API)",
            "inner request answered with a 5xx"
        );
        Some(epa_protocol::http::Response::with_body(
            status,
            "application/json",
            br#"{"errorCode":"internalError"}"#.to_vec(),
        ))
    }
}

/// Everything the control API reaches.
pub struct ControlApi {
    pub clock: Arc<Clock>,
    pub plan: Arc<FaultPlan>,
    pub systems: Vec<Arc<Aktensystem>>,
    pub idps: Arc<Idps>,
    pub outbox: Arc<Outbox>,
    /// Serialises changes (so GET never sees half an update).
    update: Mutex<()>,
}

impl ControlApi {
    pub fn new(
        clock: Arc<Clock>,
        plan: Arc<FaultPlan>,
        systems: Vec<Arc<Aktensystem>>,
        idps: Arc<Idps>,
        outbox: Arc<Outbox>,
    ) -> Arc<Self> {
        Arc::new(Self {
            clock,
            plan,
            systems,
            idps,
            outbox,
            update: Mutex::new(()),
        })
    }

    fn system_ids(&self) -> Vec<String> {
        self.systems.iter().map(|s| s.id.clone()).collect()
    }

    /// Puts `settings` in force everywhere.
    pub fn apply(&self, settings: &FaultSettings) -> Result<(), String> {
        settings.validate(&self.system_ids())?;
        let _guard = self.update.lock().unwrap_or_else(|p| p.into_inner());
        self.plan.set(settings);
        for s in &self.systems {
            s.faults
                .restart_next
                .store(settings.restart_next, Ordering::SeqCst);
            s.services
                .behaviour
                .full_access_after_confirm
                .store(settings.full_access_after_confirm, Ordering::SeqCst);
        }
        self.idps.set_down(settings.idp_down);
        self.outbox.set_delay(settings.mail_delay_seconds);
        tracing::info!(?settings, "control API: fault settings in force");
        Ok(())
    }

    /// The settings in force (error counts as they stand now).
    pub fn current(&self) -> FaultSettings {
        let _guard = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let plan = self.plan.snapshot();
        FaultSettings {
            latency_ms: plan.latency_ms,
            latency: plan.latency,
            errors: plan.errors,
            restart_next: self
                .systems
                .iter()
                .any(|s| s.faults.restart_next.load(Ordering::SeqCst)),
            idp_down: self.idps.is_down(),
            mail_delay_seconds: self.outbox.delay(),
            session_idle_timeout_seconds: plan.session_idle_timeout_seconds,
            full_access_after_confirm: self.systems.iter().any(|s| {
                s.services
                    .behaviour
                    .full_access_after_confirm
                    .load(Ordering::SeqCst)
            }),
        }
    }

    /// Ends every user session of every Aktensystem; how many there were.
    pub fn drop_sessions(&self) -> usize {
        let n = self.systems.iter().map(|s| s.drop_user_sessions()).sum();
        tracing::info!(dropped = n, "control API: all user sessions dropped");
        n
    }

    pub fn clock_json(&self) -> Value {
        let now = self.clock.now_unix();
        json!({
            "now": now,
            "now_rfc3339": crate::mail::rfc3339(now),
            "offset_seconds": now as i64 - real_now() as i64,
        })
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/control/clock", get(clock))
            .route("/control/clock/advance", post(advance))
            .route(
                "/control/faults",
                get(get_faults)
                    .put(put_faults)
                    .patch(patch_faults)
                    .delete(delete_faults),
            )
            .route("/control/sessions/drop", post(drop_sessions))
            .with_state(Arc::clone(self))
    }
}

fn real_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

type Api = State<Arc<ControlApi>>;

fn bad(rule: &str) -> Response {
    tracing::warn!(rule, "control API: request refused");
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"errorCode": "malformedRequest", "errorDetail": rule})),
    )
        .into_response()
}

async fn clock(State(api): Api) -> Response {
    Json(api.clock_json()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: u64,
}

async fn advance(State(api): Api, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<Advance>(&body) {
        Ok(a) => {
            api.clock.advance(a.seconds);
            tracing::info!(seconds = a.seconds, "control API: clock advanced");
            Json(api.clock_json()).into_response()
        }
        Err(e) => bad(&format!("expected {{\"seconds\": N}} (N ≥ 0): {e}")),
    }
}

async fn get_faults(State(api): Api) -> Response {
    Json(api.current()).into_response()
}

fn applied(api: &ControlApi, settings: &FaultSettings) -> Response {
    match api.apply(settings) {
        Ok(()) => Json(api.current()).into_response(),
        Err(rule) => bad(&rule),
    }
}

async fn put_faults(State(api): Api, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<FaultSettings>(&body) {
        Ok(s) => applied(&api, &s),
        Err(e) => bad(&format!("not a fault settings object: {e}")),
    }
}

async fn patch_faults(State(api): Api, body: axum::body::Bytes) -> Response {
    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(&body) else {
        return bad("PATCH takes a JSON object with the members to change");
    };
    let mut merged = match serde_json::to_value(api.current()) {
        Ok(Value::Object(m)) => m,
        _ => return bad("current settings are not an object"),
    };
    merged.extend(changes);
    match serde_json::from_value::<FaultSettings>(Value::Object(merged)) {
        Ok(s) => applied(&api, &s),
        Err(e) => bad(&format!("not a fault settings object: {e}")),
    }
}

async fn delete_faults(State(api): Api) -> Response {
    applied(&api, &FaultSettings::default())
}

async fn drop_sessions(State(api): Api) -> Response {
    Json(json!({"dropped": api.drop_sessions()})).into_response()
}

// ---------------------------------------------------------------------------------------------
// The HTTPS client side of the CLI (`epa-sandbox ident approve`, `epa-sandbox control …`).

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0} is not an https:// URL with host and path")]
    Url(String),
    #[error("cannot read the CA certificate {path}: {source}")]
    Ca {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot reach {url}: {source}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} answered with something that is not HTTP: {reason}")]
    Http { url: String, reason: String },
}

/// `(host, port, path_and_query)` of an `https://` URL.
fn split_url(url: &str) -> Result<(String, u16, String), ClientError> {
    let bad = || ClientError::Url(url.to_owned());
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']').ok_or_else(bad)?;
        (h.to_owned(), p.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (authority.to_owned(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 443,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port, path))
}

/// The origin (`https://host:port`) of a URL.
pub fn origin(url: &str) -> Result<String, ClientError> {
    let (host, port, _) = split_url(url)?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok(format!("https://{host}:{port}"))
}

/// One HTTPS request (HTTP/1.1, `Connection: close`) trusting exactly the CA in `ca_pem`.
pub async fn https_request(
    url: &str,
    request: epa_protocol::http::Request,
    ca_pem: &str,
) -> Result<epa_protocol::http::Response, ClientError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (host, port, path) = split_url(url)?;
    let config = Arc::new(crate::tls::client_config(ca_pem)?);
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|_| ClientError::Url(url.to_owned()))?;
    let io = |source| ClientError::Io {
        url: url.to_owned(),
        source,
    };
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(io)?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(io)?;
    let mut req = request.header("connection", "close");
    req.path = path;
    let host_header = if port == 443 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let bytes = req.to_bytes(&host_header).map_err(|e| ClientError::Http {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    tls.write_all(&bytes).await.map_err(io)?;
    tls.flush().await.map_err(io)?;
    let mut answer = Vec::new();
    // A peer closing without close_notify still delivered its response.
    match tls.read_to_end(&mut answer).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(io(e)),
    }
    epa_protocol::http::parse_response(&answer, &epa_protocol::http::Limits::default()).map_err(
        |e| ClientError::Http {
            url: url.to_owned(),
            reason: e.to_string(),
        },
    )
}

/// Reads a CA PEM file.
pub fn read_ca(path: &std::path::Path) -> Result<String, ClientError> {
    std::fs::read_to_string(path).map_err(|source| ClientError::Ca {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("https://127.0.0.1:4431/idp/aok/auth?x=1").unwrap(),
            ("127.0.0.1".into(), 4431, "/idp/aok/auth?x=1".into())
        );
        assert_eq!(
            origin("https://localhost:9/a").unwrap(),
            "https://localhost:9"
        );
        assert!(split_url("http://x/").is_err());
    }

    #[test]
    fn settings_defaults_and_validation() {
        let s: FaultSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, FaultSettings::default());
        assert_eq!(s.session_idle_timeout_seconds, 1200);
        let bad: FaultSettings =
            serde_json::from_str(r#"{"errors": [{"prefix": "/epa", "status": 404}]}"#).unwrap();
        assert!(bad.validate(&[]).is_err());
        assert!(serde_json::from_str::<FaultSettings>(r#"{"latncy_ms": 1}"#).is_err());
    }

    #[test]
    fn counted_errors_run_out() {
        let plan = FaultPlan::new(&FaultSettings {
            errors: vec![ErrorRule {
                prefix: "/epa/audit".into(),
                status: 503,
                count: Some(2),
                aktensystem: None,
            }],
            ..FaultSettings::default()
        });
        assert_eq!(plan.decide("a", "/epa/audit/x").1, Some(503));
        assert_eq!(plan.decide("a", "/epa/other").1, None);
        assert_eq!(plan.decide("a", "/epa/audit/x").1, Some(503));
        assert_eq!(plan.decide("a", "/epa/audit/x").1, None);
    }
}
