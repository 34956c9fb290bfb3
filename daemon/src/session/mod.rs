//! The ePA session of each local user (ARCHITECTURE §5, epa-protocol.md §0.3): record profile,
//! locating the record, the VAU channel, the ident-app login, this PC's device registration and
//! the re-login the daemon leads itself, keepalive and loss of the user session.
//!
//! Each local user has one [`Journey`] behind an async mutex: every step of it (and so every
//! inner request of its channel) runs one at a time, and a call that waited for a rebuild finds
//! the rebuilt channel instead of starting another (single flight). Nothing here keeps a vault
//! open: secrets are read from and written to the caller's vault during the call.

pub mod insurers;
mod secrets;
pub mod util;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use epa_ipc::deeplink::{AuthCallback, parse_auth_callback};
use epa_ipc::types::{
    Change, Device, EpaPhase, EpaState, Event, Insurer, PendingDevice, PendingLogin, RecordProfile,
};
use epa_protocol::http::{Request, Response};
use epa_protocol::kvnr::{Kvnr, KvnrError};
use epa_protocol::rest::{self, RestError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::backend::info::{Located, locate_record};
use crate::backend::slot::{BackendSlot, Connected};
use crate::backend::{BackendError, VauClient, VauTarget};
use crate::events::EventBus;
use crate::store::{Keyspace, StoreError};
use crate::users::{Session, Users};
use secrets::{LoginState, StoredDevice};

/// This build's ClientId in `x-useragent`. Real ePA environments assign one at gematik's
/// approval; this open-source build has none, so it only works against test environments.
pub const CLIENT_ID: &str = "EPADESKTOPOPENSOURCE";
/// How long an Epa call waits for a backend that is still starting.
const BACKEND_WAIT: Duration = Duration::from_secs(20);
/// PAR `request_uri` lifetime of the reference IDP (epa-protocol.md §9).
const REQUEST_URI_LIFETIME_S: u64 = 90;
/// The device confirmation code is valid 6 h from `createdAt` (§4.2).
const CODE_VALIDITY_S: u64 = 6 * 3600;
/// `remainingConfirmationRetries` starts at 4: five attempts in all.
const INITIAL_TRIES: u32 = 5;
/// The spec's retry hint after a 500 (§1, §4).
const RETRY_AFTER_5XX_S: u64 = 600;
const RETRY_AFTER_UNREACHABLE_S: u64 = 60;
/// logoutFdV is best effort; it must not hold up a lock or a profile change.
const LOGOUT_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_PERIOD: Duration = Duration::from_secs(1);
const POLL_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Default keepalive period: well under the 20 min idle timeout of user sessions.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(4 * 60);
/// Page size for getDevices (the interface's maximum).
const PAGE: u32 = 50;

const PROFILE_KEY: &str = "epa/profile";
const LOCATION_KEY: &str = "epa/location";

fn device_key(kvnr: &str, aktensystem: &str) -> String {
    format!("epa/device/{kvnr}/{aktensystem}")
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no insurer and KVNR set yet (\"ePA verbinden\")")]
    NoProfile,
    #[error(transparent)]
    KvnrInvalid(#[from] KvnrError),
    #[error("{0:?} is not an insurer this build knows")]
    InsurerUnknown(String),
    #[error("this environment offers no login for {0}")]
    InsurerUnavailable(String),
    #[error("no Aktensystem has a record for this KVNR")]
    NoRecord,
    #[error("the record exists but is not activated (e.g. suspended); try again in a day")]
    RecordNotActivated,
    #[error("not possible now (phase {})", .0.as_str())]
    WrongPhase(EpaPhase),
    #[error("the callback link is unusable: {0}")]
    CallbackInvalid(String),
    #[error("the login was ended at the IDP ({error})")]
    LoginCancelled { error: String },
    #[error("the login took too long; start it again")]
    LoginExpired,
    #[error("the Aktensystem refused the login ({error_code})")]
    LoginRefused { error_code: String },
    #[error("wrong confirmation code; {tries_left} tries left")]
    DeviceCodeWrong { tries_left: u32 },
    #[error("the confirmation code has 6 digits; {tries_left} tries left")]
    DeviceCodeMalformed { tries_left: u32 },
    #[error("the confirmation code expired or was entered wrongly too often; log in again")]
    DeviceCodeExpired,
    #[error("too many failed device registrations; try again after {until}")]
    RegistrationLocked { until_unix: u64, until: String },
    #[error("the record has no e-mail address for the confirmation code")]
    NoEmailAddress,
    #[error("no such device")]
    DeviceNotFound,
    #[error("this is this PC's own registration; removing it must be confirmed")]
    ThisDeviceConfirmationRequired,
    #[error("a device name has 1 to 80 characters")]
    DeviceNameInvalid,
    #[error("not logged in to the ePA")]
    NotLoggedIn { reason: Option<String> },
    #[error("the ePA backend is unreachable: {detail}")]
    BackendUnreachable { detail: String, retry_after_s: u64 },
    #[error("the ePA backend answered with an error: {detail}")]
    Backend {
        error_code: String,
        detail: String,
        retry_after_s: Option<u64>,
    },
    #[error("the vault failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

type Result<T, E = SessionError> = std::result::Result<T, E>;

fn from_backend(e: BackendError) -> SessionError {
    match e {
        BackendError::Unreachable { .. } | BackendError::ChannelLost => {
            SessionError::BackendUnreachable {
                detail: e.to_string(),
                retry_after_s: RETRY_AFTER_UNREACHABLE_S,
            }
        }
        BackendError::Outer { status, .. } if status >= 500 => SessionError::BackendUnreachable {
            detail: e.to_string(),
            retry_after_s: RETRY_AFTER_5XX_S,
        },
        BackendError::Outer { status, .. } => SessionError::Backend {
            error_code: format!("vau_outer_{status}"),
            detail: e.to_string(),
            retry_after_s: None,
        },
        BackendError::Vau(_) | BackendError::TrustAnchor(_) => SessionError::Backend {
            error_code: "vau".into(),
            detail: e.to_string(),
            retry_after_s: None,
        },
        BackendError::InnerHttp(_) => SessionError::Backend {
            error_code: "inner_http".into(),
            detail: e.to_string(),
            retry_after_s: None,
        },
        BackendError::Random(_) => SessionError::Internal(e.to_string()),
    }
}

fn rest_error(resp: &Response) -> RestError {
    RestError {
        status: resp.status,
        error: serde_json::from_slice(&resp.body).ok(),
    }
}

/// An answer the journey has no plan for.
fn unexpected(op: &str, resp: &Response) -> SessionError {
    let e = rest_error(resp);
    let error_code = e.code().unwrap_or("none").to_owned();
    let detail = format!("{op}: {e}");
    if e.status == 503 {
        return SessionError::BackendUnreachable {
            detail,
            retry_after_s: RETRY_AFTER_5XX_S,
        };
    }
    SessionError::Backend {
        error_code,
        detail,
        retry_after_s: (e.status >= 500).then_some(RETRY_AFTER_5XX_S),
    }
}

fn schema(op: &str, e: &rest::RestFailure) -> SessionError {
    SessionError::Backend {
        error_code: "schema".into(),
        detail: format!("{op}: {e}"),
        retry_after_s: None,
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Profile {
    insurer: String,
    kvnr: String,
}

/// Where the record was found last (epa-protocol.md §1: cache, re-locate on 404).
#[derive(Serialize, Deserialize)]
struct StoredLocation {
    kvnr: String,
    aktensystem: String,
}

/// A login waiting for the ident app.
struct PendingAuth {
    authorization_url: String,
    state: LoginState,
    expires_unix: u64,
    qr_png: Vec<u8>,
    qr_text: String,
    /// The IDP's cross-device status endpoint, when it answered the probe.
    status_url: Option<String>,
    /// The re-login after the device was confirmed.
    relogin: bool,
    seq: u64,
}

struct DeviceCode {
    name: String,
    valid_until_unix: u64,
    tries_left: u32,
}

enum Phase {
    LoggedOut,
    Awaiting(Box<PendingAuth>),
    /// Limited user session (device management only); the code is on its way.
    DeviceCodeSent(DeviceCode),
    LoggedIn,
}

/// One local user's ePA state.
struct Journey {
    profile: Option<Profile>,
    phase: Phase,
    /// Id of the Aktensystem the channel goes to.
    aktensystem: Option<String>,
    vau: Option<Arc<VauClient>>,
    display_name: Option<String>,
    login_required_reason: Option<String>,
    relogin_skipped: bool,
    login_seq: u64,
}

impl Journey {
    fn external_phase(&self) -> EpaPhase {
        match (&self.profile, &self.phase) {
            (None, _) => EpaPhase::NoProfile,
            (_, Phase::LoggedOut) => EpaPhase::LoggedOut,
            (_, Phase::Awaiting(p)) if p.relogin => EpaPhase::ReloginRequired,
            (_, Phase::Awaiting(_)) => EpaPhase::AwaitingIdentApp,
            (_, Phase::DeviceCodeSent(_)) => EpaPhase::DeviceCodeSent,
            (_, Phase::LoggedIn) => EpaPhase::LoggedIn,
        }
    }

    /// Whether a user session exists on the channel (limited or full).
    fn has_user_session(&self) -> bool {
        matches!(self.phase, Phase::DeviceCodeSent(_) | Phase::LoggedIn)
    }

    fn state(&self) -> EpaState {
        EpaState {
            phase: self.external_phase(),
            profile: self.profile.as_ref().map(|p| RecordProfile {
                insurer: p.insurer.clone(),
                kvnr: p.kvnr.clone(),
            }),
            aktensystem: self.aktensystem.clone(),
            login: match &self.phase {
                Phase::Awaiting(p) => Some(PendingLogin {
                    authorization_url: p.authorization_url.clone(),
                    qr_png: p.qr_png.clone(),
                    qr_text: p.qr_text.clone(),
                    expires_unix: p.expires_unix,
                    completes_without_browser: p.status_url.is_some(),
                }),
                _ => None,
            },
            device: match &self.phase {
                // A limited session cannot read the record's e-mail addresses (E-mail
                // Management needs a confirmed device), so the addresses stay unnamed.
                Phase::DeviceCodeSent(d) => Some(PendingDevice {
                    device_name: d.name.clone(),
                    masked_addresses: Vec::new(),
                    code_valid_until_unix: d.valid_until_unix,
                    tries_left: d.tries_left,
                }),
                _ => None,
            },
            display_name: self.display_name.clone(),
            login_required_reason: self.login_required_reason.clone(),
            relogin_skipped: self.relogin_skipped,
        }
    }

    fn kvnr_and_system(&self) -> Result<(String, String)> {
        let kvnr = self
            .profile
            .as_ref()
            .map(|p| p.kvnr.clone())
            .ok_or(SessionError::NoProfile)?;
        let system = self
            .aktensystem
            .clone()
            .ok_or_else(|| SessionError::Internal("no Aktensystem located".into()))?;
        Ok((kvnr, system))
    }

    fn not_logged_in(&self) -> SessionError {
        SessionError::NotLoggedIn {
            reason: self.login_required_reason.clone(),
        }
    }
}

struct UserEpa {
    user_id: String,
    username: String,
    journey: tokio::sync::Mutex<Journey>,
    /// Bumped after every step, so that WaitLogin wakes up.
    changed: watch::Sender<u64>,
}

/// Every local user's ePA session.
pub struct EpaSessions {
    slot: Arc<BackendSlot>,
    bus: Arc<EventBus>,
    user_agent: String,
    keepalive: Duration,
    users: StdMutex<HashMap<String, Arc<UserEpa>>>,
}

#[derive(Deserialize)]
struct IdpStatus {
    approved: bool,
    #[serde(default)]
    redirect_uri: Option<String>,
}

impl EpaSessions {
    pub fn new(slot: Arc<BackendSlot>, bus: Arc<EventBus>, keepalive: Duration) -> Arc<Self> {
        let user_agent = format!("{CLIENT_ID}/{}", env!("CARGO_PKG_VERSION"));
        Arc::new(Self {
            slot,
            bus,
            user_agent,
            keepalive,
            users: StdMutex::new(HashMap::new()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<UserEpa>>> {
        // The table holds only Arcs; a panic elsewhere cannot leave it half-changed.
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user's journey, created (LoggedOut or NoProfile) at the first call after unlock.
    fn entry(&self, s: &Session) -> Result<Arc<UserEpa>> {
        if let Some(u) = self.table().get(&s.user_id) {
            return Ok(Arc::clone(u));
        }
        let profile: Option<Profile> = s.vault.get_json(PROFILE_KEY)?;
        let journey = Journey {
            profile,
            phase: Phase::LoggedOut,
            aktensystem: None,
            vau: None,
            display_name: None,
            login_required_reason: None,
            relogin_skipped: false,
            login_seq: 0,
        };
        let phase = journey.external_phase();
        let fresh = Arc::new(UserEpa {
            user_id: s.user_id.clone(),
            username: s.username.clone(),
            journey: tokio::sync::Mutex::new(journey),
            changed: watch::Sender::new(0),
        });
        let mut table = self.table();
        if let Some(u) = table.get(&s.user_id) {
            return Ok(Arc::clone(u));
        }
        table.insert(s.user_id.clone(), Arc::clone(&fresh));
        drop(table);
        self.bus.publish(Change::EpaPhaseChanged {
            username: s.username.clone(),
            phase: phase.as_str().to_owned(),
            login_required_reason: None,
        });
        Ok(fresh)
    }

    /// Announces a phase change (Events.Watch) and wakes waiters.
    fn commit(&self, u: &UserEpa, before: EpaPhase, j: &Journey) {
        let after = j.external_phase();
        if before != after {
            tracing::info!(
                from = before.as_str(),
                to = after.as_str(),
                "ePA phase changed"
            );
            self.bus.publish(Change::EpaPhaseChanged {
                username: u.username.clone(),
                phase: after.as_str().to_owned(),
                login_required_reason: if after == EpaPhase::LoggedOut {
                    j.login_required_reason.clone()
                } else {
                    None
                },
            });
        }
        u.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    async fn connected(&self) -> Result<Arc<Connected>> {
        self.slot
            .wait(BACKEND_WAIT)
            .await
            .map_err(|detail| SessionError::BackendUnreachable {
                detail,
                retry_after_s: RETRY_AFTER_UNREACHABLE_S,
            })
    }

    // ---- the RPCs ---------------------------------------------------------------------------

    pub async fn state(&self, s: &Session) -> Result<EpaState> {
        let u = self.entry(s)?;
        let j = u.journey.lock().await;
        Ok(j.state())
    }

    pub async fn insurers(&self) -> Vec<Insurer> {
        let connected = self.slot.wait(BACKEND_WAIT).await.ok();
        insurers::INSURERS
            .iter()
            .map(|name| Insurer {
                name: (*name).to_owned(),
                available: connected
                    .as_ref()
                    .is_some_and(|c| c.backend.issuer_of(name).is_some()),
            })
            .collect()
    }

    pub async fn set_profile(&self, s: &Session, insurer: &str, kvnr: &str) -> Result<EpaState> {
        let insurer = insurers::canonical(insurer)
            .ok_or_else(|| SessionError::InsurerUnknown(insurer.trim().to_owned()))?;
        let kvnr = Kvnr::parse(kvnr)?;
        // Availability is known only once the backend is there; a failed backend is reported
        // at login instead of blocking the profile.
        if let Ok(c) = self.slot.wait(BACKEND_WAIT).await
            && c.backend.issuer_of(insurer).is_none()
        {
            return Err(SessionError::InsurerUnavailable(insurer.to_owned()));
        }
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let profile = Profile {
            insurer: insurer.to_owned(),
            kvnr: kvnr.as_str().to_owned(),
        };
        let changed = j
            .profile
            .as_ref()
            .is_none_or(|p| p.insurer != profile.insurer || p.kvnr != profile.kvnr);
        if changed {
            s.vault.put_json(PROFILE_KEY, &profile, true)?;
            self.end_channel(&mut j).await;
            j.phase = Phase::LoggedOut;
            j.aktensystem = None;
            j.display_name = None;
            j.login_required_reason = None;
            j.relogin_skipped = false;
            j.profile = Some(profile);
            tracing::info!("ePA record profile set");
        }
        self.commit(&u, before, &j);
        Ok(j.state())
    }

    pub async fn start_login(&self, s: &Session) -> Result<EpaState> {
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let r = match j.external_phase() {
            EpaPhase::NoProfile => Err(SessionError::NoProfile),
            EpaPhase::LoggedIn => Err(SessionError::WrongPhase(EpaPhase::LoggedIn)),
            // Starting again during the re-login keeps it a re-login.
            p => {
                self.begin_login(&mut j, &s.vault, p == EpaPhase::ReloginRequired)
                    .await
            }
        };
        self.commit(&u, before, &j);
        r.map(|()| j.state())
    }

    pub async fn complete_login(&self, s: &Session, callback_url: &str) -> Result<EpaState> {
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let r = self.complete(&mut j, &s.vault, callback_url).await;
        self.commit(&u, before, &j);
        r.map(|()| j.state())
    }

    /// Waits for the pending login to complete: by another client's CompleteLogin, or by
    /// polling the IDP's status when it offers that.
    pub async fn wait_login(&self, s: &Session, timeout: Duration) -> Result<EpaState> {
        let u = self.entry(s)?;
        let deadline = Instant::now() + timeout.min(MAX_WAIT);
        let mut rx = u.changed.subscribe();
        let (seq, status_url) = {
            let j = u.journey.lock().await;
            match &j.phase {
                Phase::Awaiting(p) => (p.seq, p.status_url.clone()),
                _ => return Ok(j.state()),
            }
        };
        let http = match &status_url {
            Some(_) => self.slot.wait(BACKEND_WAIT).await.ok(),
            None => None,
        };
        loop {
            {
                let j = u.journey.lock().await;
                let waiting = matches!(&j.phase, Phase::Awaiting(p) if p.seq == seq);
                if !waiting || Instant::now() >= deadline {
                    return Ok(j.state());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if let (Some(url), Some(c)) = (&status_url, &http) {
                if let Some(redirect) = poll_idp(&c.http, url).await {
                    let mut j = u.journey.lock().await;
                    if !matches!(&j.phase, Phase::Awaiting(p) if p.seq == seq) {
                        return Ok(j.state());
                    }
                    let before = j.external_phase();
                    let r = self.complete(&mut j, &s.vault, &redirect).await;
                    self.commit(&u, before, &j);
                    return r.map(|()| j.state());
                }
                let _ = tokio::time::timeout(POLL_PERIOD.min(left), rx.changed()).await;
            } else if let Ok(Err(_)) = tokio::time::timeout(left, rx.changed()).await {
                // The journey ended (local user locked).
                return Err(SessionError::NotLoggedIn { reason: None });
            }
        }
    }

    pub async fn confirm_device(&self, s: &Session, code: &str) -> Result<EpaState> {
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let r = self.confirm(&mut j, &s.vault, code.trim()).await;
        self.commit(&u, before, &j);
        r.map(|()| j.state())
    }

    pub async fn logout(&self, s: &Session) -> Result<EpaState> {
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        self.end_channel(&mut j).await;
        j.phase = Phase::LoggedOut;
        j.login_required_reason = None;
        j.relogin_skipped = false;
        j.display_name = None;
        self.commit(&u, before, &j);
        Ok(j.state())
    }

    pub async fn list_devices(&self, s: &Session) -> Result<Vec<Device>> {
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let r = self.devices(&mut j, &s.vault).await;
        self.commit(&u, before, &j);
        r
    }

    pub async fn rename_device(&self, s: &Session, id: &str, name: &str) -> Result<Device> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
            return Err(SessionError::DeviceNameInvalid);
        }
        check_device_id(id)?;
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let r = self.rename(&mut j, &s.vault, id, name).await;
        self.commit(&u, before, &j);
        r
    }

    pub async fn remove_device(&self, s: &Session, id: &str, confirm_this: bool) -> Result<()> {
        check_device_id(id)?;
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        let before = j.external_phase();
        let r = self.remove(&mut j, &s.vault, id, confirm_this).await;
        self.commit(&u, before, &j);
        r
    }

    // ---- record services for other modules (documents) ---------------------------------------

    /// The KVNR of the user's record profile, read from the vault (works offline and logged
    /// out: the documents cache is keyed by it).
    pub fn profile_kvnr(&self, s: &Session) -> Result<Option<String>> {
        let p: Option<Profile> = s.vault.get_json(PROFILE_KEY)?;
        Ok(p.map(|p| p.kvnr))
    }

    /// The logged-in record: KVNR and the insurant's display name (for upload metadata).
    pub async fn logged_in_record(&self, s: &Session) -> Result<(String, Option<String>)> {
        let u = self.entry(s)?;
        let j = u.journey.lock().await;
        if !matches!(j.phase, Phase::LoggedIn) {
            return Err(j.not_logged_in());
        }
        let kvnr = j
            .profile
            .as_ref()
            .map(|p| p.kvnr.clone())
            .ok_or(SessionError::NoProfile)?;
        Ok((kvnr, j.display_name.clone()))
    }

    /// An inner request on the logged-in user's channel for the record's services (XDS,
    /// Constraint Management, Audit): needs a full session, adds `x-useragent` and
    /// `x-insurantid`, and loses the session like every other call. Returns the KVNR the
    /// request went to, so that callers file the answer under the right record.
    pub async fn send_record_request(
        &self,
        s: &Session,
        req: Request,
    ) -> Result<(Response, String)> {
        let u = self.entry(s)?;
        let mut j = u.journey.lock().await;
        if !matches!(j.phase, Phase::LoggedIn) {
            return Err(j.not_logged_in());
        }
        let kvnr = j
            .profile
            .as_ref()
            .map(|p| p.kvnr.clone())
            .ok_or(SessionError::NoProfile)?;
        let before = j.external_phase();
        let r = self
            .call(&mut j, req.header("x-insurantid", kvnr.as_str()))
            .await;
        self.commit(&u, before, &j);
        r.map(|resp| (resp, kvnr))
    }

    // ---- the steps ----------------------------------------------------------------------------

    /// Locates the record, opens a fresh channel and asks for the IDP's authorization URL.
    async fn begin_login(&self, j: &mut Journey, vault: &Keyspace, relogin: bool) -> Result<()> {
        let profile = j.profile.clone().ok_or(SessionError::NoProfile)?;
        // A new login always gets a new channel; an old user session is ended first.
        self.end_channel(j).await;
        j.phase = Phase::LoggedOut;
        j.login_required_reason = None;
        j.relogin_skipped = false;
        j.display_name = None;
        let c = self.connected().await?;
        let issuer = c
            .backend
            .issuer_of(&profile.insurer)
            .ok_or_else(|| SessionError::InsurerUnavailable(profile.insurer.clone()))?
            .to_owned();
        let kvnr = Kvnr::parse(&profile.kvnr)?;
        let index = self.locate(&c, vault, &kvnr).await?;
        let Some(system) = c.backend.aktensysteme.get(index) else {
            return Err(SessionError::Internal("located outside the list".into()));
        };
        j.aktensystem = Some(system.id.clone());
        let vau = Arc::new(VauClient::new(
            c.http.clone(),
            VauTarget {
                base_url: system.base_url.clone(),
                trusted_roots: c.backend.vau_roots.clone(),
                environment: c.backend.vau_environment,
                user_agent: self.user_agent.clone(),
            },
        ));
        let resp = self
            .pre_login(&vau, rest::send_authorization_request_fdv(&issuer, false))
            .await?;
        if resp.status != 302 {
            let e = rest_error(&resp);
            return Err(match (e.status, e.code()) {
                (404, _) => SessionError::InsurerUnavailable(profile.insurer),
                (400 | 403, code) => SessionError::LoginRefused {
                    error_code: code.unwrap_or("none").to_owned(),
                },
                _ => unexpected("sendAuthorizationRequestFdV", &resp),
            });
        }
        let location = resp.header("location").unwrap_or_default().to_owned();
        let parsed =
            util::parse_authorization_url(&location).ok_or_else(|| SessionError::Backend {
                error_code: "invalid_location".into(),
                detail: "sendAuthorizationRequestFdV: the Location is not an https URL with state"
                    .into(),
                retry_after_s: None,
            })?;
        let (qr_png, qr_text) = util::qr_code(&location).map_err(SessionError::Internal)?;
        let status_url = match parsed.status_url {
            Some(url) if idp_offers_polling(&c.http, &url).await => Some(url),
            _ => None,
        };
        j.login_seq = j.login_seq.wrapping_add(1);
        j.vau = Some(vau);
        j.phase = Phase::Awaiting(Box::new(PendingAuth {
            authorization_url: location,
            state: LoginState::new(parsed.state),
            expires_unix: util::now_unix() + REQUEST_URI_LIFETIME_S,
            qr_png,
            qr_text,
            status_url,
            relogin,
            seq: j.login_seq,
        }));
        Ok(())
    }

    /// getRecordStatus: the remembered Aktensystem first, all of them when it says 404.
    async fn locate(&self, c: &Connected, vault: &Keyspace, kvnr: &Kvnr) -> Result<usize> {
        let systems = &c.backend.aktensysteme;
        let remembered: Option<StoredLocation> = vault.get_json(LOCATION_KEY)?;
        let known = remembered
            .filter(|l| l.kvnr == kvnr.as_str())
            .and_then(|l| systems.iter().position(|a| a.id == l.aktensystem));
        if let Some(i) = known {
            let one = std::slice::from_ref(&systems[i]);
            match locate_record(&c.http, one, kvnr, &self.user_agent).await {
                Ok(Located::At(_)) => return Ok(i),
                Ok(Located::NotActivated(_)) => return Err(SessionError::RecordNotActivated),
                Ok(Located::Nowhere) => tracing::info!("the record moved; locating it again"),
                Err(e) => return Err(from_backend(e)),
            }
        }
        let found = locate_record(&c.http, systems, kvnr, &self.user_agent)
            .await
            .map_err(from_backend)?;
        let (i, activated) = match found {
            Located::At(i) => (i, true),
            Located::NotActivated(i) => (i, false),
            Located::Nowhere => {
                vault.remove(LOCATION_KEY)?;
                return Err(SessionError::NoRecord);
            }
        };
        vault.put_json(
            LOCATION_KEY,
            &StoredLocation {
                kvnr: kvnr.as_str().to_owned(),
                aktensystem: systems[i].id.clone(),
            },
            true,
        )?;
        if activated {
            Ok(i)
        } else {
            Err(SessionError::RecordNotActivated)
        }
    }

    /// An inner request before login: no user session can be lost, so a lost channel is
    /// rebuilt (by the client, on the next send) and the request tried once more.
    async fn pre_login(&self, vau: &VauClient, req: Request) -> Result<Response> {
        let req = req.header("x-useragent", self.user_agent.as_str());
        match vau.send(&req).await {
            Err(e) if e.needs_new_channel() => {
                tracing::info!(error = %e, "channel lost before login; rebuilding once");
                vau.send(&req).await.map_err(from_backend)
            }
            r => r.map_err(from_backend),
        }
    }

    /// An inner request of a user session. A lost channel or session cannot be rebuilt
    /// without the human (ident app), so it ends the session with the reason.
    async fn call(&self, j: &mut Journey, req: Request) -> Result<Response> {
        let Some(vau) = j.vau.clone().filter(|_| j.has_user_session()) else {
            return Err(j.not_logged_in());
        };
        let req = req.header("x-useragent", self.user_agent.as_str());
        match vau.send(&req).await {
            Ok(r) if r.status == 403 && rest_error(&r).code() == Some("invalAuth") => {
                self.lose(j, "session_expired");
                Err(j.not_logged_in())
            }
            Ok(r) => Ok(r),
            Err(e @ (BackendError::ChannelLost | BackendError::Vau(_))) => {
                tracing::info!(error = %e, "VAU channel lost");
                self.lose(j, "backend_restart");
                Err(j.not_logged_in())
            }
            Err(e @ BackendError::Outer { .. }) => {
                // The client dropped the channel: the user session went with it.
                let reason = if e.needs_new_channel() {
                    "session_expired"
                } else {
                    "backend_error"
                };
                tracing::info!(error = %e, "VAU channel refused");
                self.lose(j, reason);
                match e {
                    BackendError::Outer { status, .. } if status >= 500 => Err(from_backend(e)),
                    _ => Err(j.not_logged_in()),
                }
            }
            Err(e) => Err(from_backend(e)),
        }
    }

    fn lose(&self, j: &mut Journey, reason: &str) {
        tracing::info!(reason, "ePA user session lost; a new login is needed");
        j.vau = None;
        j.phase = Phase::LoggedOut;
        j.display_name = None;
        j.login_required_reason = Some(reason.to_owned());
    }

    /// logoutFdV (best effort, bounded) when a user session exists; drops the channel.
    async fn end_channel(&self, j: &mut Journey) {
        let Some(vau) = j.vau.take() else { return };
        if !j.has_user_session() {
            return;
        }
        let req = rest::logout_fdv().header("x-useragent", self.user_agent.as_str());
        match tokio::time::timeout(LOGOUT_TIMEOUT, vau.send(&req)).await {
            Ok(Ok(r)) if matches!(r.status, 200 | 204) => tracing::info!("logoutFdV done"),
            Ok(Ok(r)) => tracing::info!(status = r.status, "logoutFdV refused; channel dropped"),
            Ok(Err(e)) => tracing::info!(error = %e, "logoutFdV failed; channel dropped"),
            Err(_) => tracing::info!("logoutFdV timed out; channel dropped"),
        }
    }

    /// The deep link: state check, sendAuthCodeFdV, then full session or the device path.
    async fn complete(&self, j: &mut Journey, vault: &Keyspace, url: &str) -> Result<()> {
        let Phase::Awaiting(pending) = &j.phase else {
            return Err(SessionError::WrongPhase(j.external_phase()));
        };
        let callback =
            parse_auth_callback(url).map_err(|e| SessionError::CallbackInvalid(e.to_string()))?;
        if !callback.state().is_some_and(|s| pending.state.matches(s)) {
            return Err(SessionError::CallbackInvalid(
                "the state does not belong to the pending login".into(),
            ));
        }
        let expired = util::now_unix() > pending.expires_unix;
        let code = match callback {
            AuthCallback::Error { error, .. } => {
                j.vau = None;
                j.phase = Phase::LoggedOut;
                return Err(SessionError::LoginCancelled { error });
            }
            AuthCallback::Code { code, .. } => code,
        };
        let Some(vau) = j.vau.clone() else {
            return Err(SessionError::Internal(
                "pending login without channel".into(),
            ));
        };
        let (kvnr, system) = j.kvnr_and_system()?;
        let key = device_key(&kvnr, &system);
        let stored: Option<StoredDevice> = vault.get_json(&key)?;
        // Device headers only for a confirmed registration (§3.1).
        let credential = stored
            .as_ref()
            .filter(|d| d.confirmed)
            .and_then(StoredDevice::credential);
        let sent = self
            .pre_login(
                &vau,
                rest::send_authcode_fdv(code.expose(), credential.as_ref()),
            )
            .await;
        drop(code);
        // Whatever happens now, this login's URL and state are used up.
        j.phase = Phase::LoggedOut;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                j.vau = None;
                return Err(e);
            }
        };
        if resp.status != 200 {
            j.vau = None;
            let e = rest_error(&resp);
            let code = e.code().unwrap_or("none").to_owned();
            tracing::info!(status = e.status, error_code = %code, "sendAuthCodeFdV refused");
            return match (e.status, code.as_str()) {
                (404, _) | (403, "invalidToken" | "invalToken") if credential.is_some() => {
                    // The registration is gone (deleted, expired): the next login registers anew.
                    vault.remove(&key)?;
                    Err(SessionError::LoginRefused { error_code: code })
                }
                (409, "statusMismatch") if credential.is_some() => {
                    // Still pending at the Aktensystem: log in without headers, confirm then.
                    if let Some(mut d) = stored {
                        d.confirmed = false;
                        d.tries_left = INITIAL_TRIES;
                        vault.put_json(&key, &d, true)?;
                    }
                    self.begin_login(j, vault, false).await
                }
                (403, "invalAuth") if expired => Err(SessionError::LoginExpired),
                (s, _) if s >= 500 => Err(unexpected("sendAuthCodeFdV", &resp)),
                _ => Err(SessionError::LoginRefused { error_code: code }),
            };
        }
        let mut resp = resp;
        let body: rest::AuthCodeResponse = match rest::expect_json(&resp, 200) {
            Ok(b) => b,
            Err(e) => {
                j.vau = None;
                return Err(schema("sendAuthCodeFdV", &e));
            }
        };
        vau.set_vau_np(body.vau_np).await;
        // [newer] servers name the insurant; 3.0.1 ones do not.
        j.display_name = serde_json::from_slice::<serde_json::Value>(&resp.body)
            .ok()
            .and_then(|v| v.get("displayName")?.as_str().map(str::to_owned));
        // The body carried the pseudonym.
        resp.wipe_body();
        if credential.is_some() {
            j.phase = Phase::LoggedIn;
            tracing::info!("ePA login complete (device confirmed)");
            return Ok(());
        }
        j.phase = Phase::DeviceCodeSent(DeviceCode {
            name: String::new(),
            valid_until_unix: 0,
            tries_left: INITIAL_TRIES,
        });
        let r = self.device_registration(j, vault, stored, &key).await;
        if r.is_err() && j.has_user_session() {
            self.end_channel(j).await;
            j.phase = Phase::LoggedOut;
        }
        r
    }

    /// Limited session: use the pending registration, or registerDevice.
    async fn device_registration(
        &self,
        j: &mut Journey,
        vault: &Keyspace,
        stored: Option<StoredDevice>,
        key: &str,
    ) -> Result<()> {
        let now = util::now_unix();
        if let Some(d) = stored.filter(|d| !d.confirmed)
            && d.created_unix + CODE_VALIDITY_S > now
        {
            tracing::info!("a pending device registration exists; waiting for its code");
            j.phase = Phase::DeviceCodeSent(DeviceCode {
                name: d.name.clone(),
                valid_until_unix: d.created_unix + CODE_VALIDITY_S,
                tries_left: d.tries_left,
            });
            return Ok(());
        }
        let name = util::device_name();
        let mut resp = self.call(j, rest::register_device(Some(&name))).await?;
        match resp.status {
            201 => {
                let parsed = rest::expect_json(&resp, 201);
                // The body carried the device token.
                resp.wipe_body();
                let reg: rest::DeviceRegistration =
                    parsed.map_err(|e| schema("registerDevice", &e))?;
                let created_unix = util::parse_rfc3339(&reg.data.created_at).unwrap_or(now);
                let d = StoredDevice {
                    identifier: reg.device_identifier.clone(),
                    token: reg.device_token.expose().to_owned(),
                    name: reg.data.display_name.clone(),
                    created_unix,
                    confirmed: false,
                    tries_left: INITIAL_TRIES,
                };
                vault.put_json(key, &d, true)?;
                tracing::info!("device registered; the confirmation code is mailed");
                j.phase = Phase::DeviceCodeSent(DeviceCode {
                    name: d.name.clone(),
                    valid_until_unix: created_unix + CODE_VALIDITY_S,
                    tries_left: INITIAL_TRIES,
                });
                Ok(())
            }
            409 => {
                let e = rest_error(&resp);
                let until_unix = e.detail().and_then(util::parse_rfc3339).unwrap_or(0);
                Err(SessionError::RegistrationLocked {
                    until_unix,
                    until: e.detail().unwrap_or_default().to_owned(),
                })
            }
            404 => Err(SessionError::NoEmailAddress),
            _ => Err(unexpected("registerDevice", &resp)),
        }
    }

    async fn confirm(&self, j: &mut Journey, vault: &Keyspace, code: &str) -> Result<()> {
        let Phase::DeviceCodeSent(dc) = &j.phase else {
            return Err(SessionError::WrongPhase(j.external_phase()));
        };
        let tries = dc.tries_left;
        if !util::is_confirmation_code(code) {
            return Err(SessionError::DeviceCodeMalformed { tries_left: tries });
        }
        let (kvnr, system) = j.kvnr_and_system()?;
        let key = device_key(&kvnr, &system);
        let stored: Option<StoredDevice> = vault.get_json(&key)?;
        let Some(mut d) = stored else {
            self.end_channel(j).await;
            j.phase = Phase::LoggedOut;
            return Err(SessionError::DeviceCodeExpired);
        };
        if !d.confirmed {
            let credential = d.credential().ok_or_else(|| {
                SessionError::Internal("the stored device token is damaged".into())
            })?;
            let resp = self
                .call(j, rest::confirm_pending_device(&credential, code))
                .await?;
            let e = rest_error(&resp);
            match (resp.status, e.code()) {
                // 409: confirmed already (e.g. by an earlier attempt whose answer was lost).
                (200, _) | (409, Some("statusMismatch")) => {}
                (403, Some("invalidCode")) => {
                    let remaining = e.detail().and_then(|n| n.trim().parse::<u32>().ok());
                    // errorDetail counts the retries after this one (4 → 0), and the 5th wrong
                    // code also says 0, so the local count decides when the registration is gone.
                    let left = tries
                        .saturating_sub(1)
                        .min(remaining.map_or(u32::MAX, |n| n.saturating_add(1)));
                    if left == 0 {
                        vault.remove(&key)?;
                        self.end_channel(j).await;
                        j.phase = Phase::LoggedOut;
                        return Err(SessionError::DeviceCodeExpired);
                    }
                    d.tries_left = left;
                    vault.put_json(&key, &d, true)?;
                    if let Phase::DeviceCodeSent(dc) = &mut j.phase {
                        dc.tries_left = left;
                    }
                    return Err(SessionError::DeviceCodeWrong { tries_left: left });
                }
                (404, _) => {
                    vault.remove(&key)?;
                    self.end_channel(j).await;
                    j.phase = Phase::LoggedOut;
                    return Err(SessionError::DeviceCodeExpired);
                }
                _ => return Err(unexpected("confirmPendingDevice", &resp)),
            }
            d.confirmed = true;
            d.tries_left = 0;
            vault.put_json(&key, &d, true)?;
            tracing::info!("device confirmed");
        }
        self.after_confirm(j, vault).await
    }

    /// The daemon leads the re-login: unless the same session already has full access (an
    /// Aktensystem may grant that), log out and start a new login with device headers.
    async fn after_confirm(&self, j: &mut Journey, vault: &Keyspace) -> Result<()> {
        // getEmails is for full sessions only: a 200 proves full access.
        match self.call(j, rest::get_emails(0, 1)).await {
            Ok(r) if r.status == 200 => {
                tracing::info!("full access in the same session; no re-login needed");
                j.phase = Phase::LoggedIn;
                j.relogin_skipped = true;
                return Ok(());
            }
            Ok(_) | Err(SessionError::NotLoggedIn { .. }) => {}
            Err(e) => tracing::info!(error = %e, "full-access probe failed; logging in again"),
        }
        self.begin_login(j, vault, true).await
    }

    fn this_device(&self, j: &Journey, vault: &Keyspace) -> Result<Option<String>> {
        let (kvnr, system) = j.kvnr_and_system()?;
        let stored: Option<StoredDevice> = vault.get_json(&device_key(&kvnr, &system))?;
        Ok(stored.map(|d| d.identifier.clone()))
    }

    async fn devices(&self, j: &mut Journey, vault: &Keyspace) -> Result<Vec<Device>> {
        if !j.has_user_session() {
            return Err(j.not_logged_in());
        }
        let this = self.this_device(j, vault)?;
        let mut all = Vec::new();
        // Pages by index (§4.1); bounded even against a server that never says "done".
        for page in 0..100 {
            let resp = self.call(j, rest::get_devices(page, PAGE)).await?;
            if resp.status != 200 {
                return Err(unexpected("getDevices", &resp));
            }
            let p: rest::Page<rest::Device> =
                rest::expect_json(&resp, 200).map_err(|e| schema("getDevices", &e))?;
            let empty = p.data.is_empty();
            all.extend(p.data.iter().map(|d| device(d, this.as_deref())));
            if empty || all.len() >= p.query.total_matching as usize {
                break;
            }
        }
        Ok(all)
    }

    async fn rename(
        &self,
        j: &mut Journey,
        vault: &Keyspace,
        id: &str,
        name: &str,
    ) -> Result<Device> {
        if !j.has_user_session() {
            return Err(j.not_logged_in());
        }
        let this = self.this_device(j, vault)?;
        let resp = self.call(j, rest::update_device(id, name)).await?;
        match resp.status {
            200 => {
                let mut d: rest::Device =
                    rest::expect_json(&resp, 200).map_err(|e| schema("updateDevice", &e))?;
                d.device_identifier.get_or_insert_with(|| id.to_owned());
                Ok(device(&d, this.as_deref()))
            }
            404 => Err(SessionError::DeviceNotFound),
            _ => Err(unexpected("updateDevice", &resp)),
        }
    }

    async fn remove(
        &self,
        j: &mut Journey,
        vault: &Keyspace,
        id: &str,
        confirm_this: bool,
    ) -> Result<()> {
        if !j.has_user_session() {
            return Err(j.not_logged_in());
        }
        let this = self.this_device(j, vault)?.is_some_and(|t| t == id);
        if this && !confirm_this {
            return Err(SessionError::ThisDeviceConfirmationRequired);
        }
        let resp = self.call(j, rest::delete_device(id)).await?;
        match resp.status {
            200 | 204 => {
                if this {
                    let (kvnr, system) = j.kvnr_and_system()?;
                    vault.remove(&device_key(&kvnr, &system))?;
                    tracing::info!("this PC's device registration removed");
                }
                Ok(())
            }
            404 => Err(SessionError::DeviceNotFound),
            _ => Err(unexpected("deleteDevice", &resp)),
        }
    }

    // ---- background care ----------------------------------------------------------------------

    /// Ends the user's ePA session (local user locked or deleted): logoutFdV best effort, and
    /// the journey is forgotten, so that unlocking again shows LoggedOut.
    fn end_user(self: &Arc<Self>, username: &str) {
        let gone: Vec<Arc<UserEpa>> = {
            let mut table = self.table();
            let ids: Vec<String> = table
                .iter()
                .filter(|(_, u)| u.username == username)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| table.remove(id)).collect()
        };
        for u in gone {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                let mut j = u.journey.lock().await;
                let before = j.external_phase();
                me.end_channel(&mut j).await;
                j.phase = Phase::LoggedOut;
                me.commit(&u, before, &j);
            });
        }
    }

    /// Daemon shutdown: logoutFdV for every user session (each bounded), journeys forgotten.
    pub async fn end_all(&self) {
        let all: Vec<Arc<UserEpa>> = self.table().drain().map(|(_, u)| u).collect();
        for u in all {
            let mut j = u.journey.lock().await;
            let before = j.external_phase();
            self.end_channel(&mut j).await;
            j.phase = Phase::LoggedOut;
            self.commit(&u, before, &j);
        }
    }

    /// Keepalive of logged-in sessions and reaction to locked local users.
    pub fn spawn_care(self: &Arc<Self>, users: Arc<Users>) -> Vec<tokio::task::JoinHandle<()>> {
        let me = Arc::clone(self);
        let watcher = tokio::spawn(async move {
            let mut events = Box::pin(me.bus.watch());
            while let Some(ev) = events.next().await {
                match ev {
                    Event::Delta {
                        change: Change::UserLocked { username, .. },
                        ..
                    } => me.end_user(&username),
                    // After lagging: reconcile with who is unlocked now.
                    Event::Snapshot { .. } => {
                        let locked: Vec<String> = me
                            .table()
                            .values()
                            .filter(|u| !users.is_unlocked(&u.user_id))
                            .map(|u| u.username.clone())
                            .collect();
                        for name in locked {
                            me.end_user(&name);
                        }
                    }
                    _ => {}
                }
            }
        });
        let me = Arc::clone(self);
        let keepalive = tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.keepalive);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let all: Vec<Arc<UserEpa>> = me.table().values().cloned().collect();
                for u in all {
                    // A busy journey is in use anyway.
                    let Ok(mut j) = u.journey.try_lock() else {
                        continue;
                    };
                    if !j.has_user_session() {
                        continue;
                    }
                    let before = j.external_phase();
                    match me.call(&mut j, rest::get_devices(0, 1)).await {
                        Ok(_) => tracing::debug!("ePA keepalive"),
                        Err(e) => tracing::info!(error = %e, "ePA keepalive failed"),
                    }
                    me.commit(&u, before, &j);
                }
            }
        });
        vec![watcher, keepalive]
    }
}

/// Device identifiers go into the inner request path: UUID characters only.
/// deviceIdentifier is a UUID (DeviceIdentifierType); anything else cannot name a device.
fn check_device_id(id: &str) -> Result<()> {
    if epa_protocol::xds::is_uuid(id) {
        Ok(())
    } else {
        Err(SessionError::DeviceNotFound)
    }
}

fn device(d: &rest::Device, this: Option<&str>) -> Device {
    let identifier = d.device_identifier.clone().unwrap_or_default();
    Device {
        this_device: this.is_some_and(|t| !identifier.is_empty() && t == identifier),
        identifier,
        display_name: d.display_name.clone(),
        status: match d.status {
            rest::DeviceStatus::Pending => "pending",
            rest::DeviceStatus::Confirmed => "confirmed",
        }
        .to_owned(),
        created_unix: util::parse_rfc3339(&d.created_at).unwrap_or(0),
        last_used_unix: d.last_used().and_then(util::parse_rfc3339),
    }
}

/// Whether the IDP answers its (vendor-specific) status endpoint the way the daemon can use.
async fn idp_offers_polling(http: &reqwest::Client, url: &str) -> bool {
    fetch_idp_status(http, url).await.is_some()
}

async fn fetch_idp_status(http: &reqwest::Client, url: &str) -> Option<IdpStatus> {
    let r = tokio::time::timeout(POLL_TIMEOUT, http.get(url).send())
        .await
        .ok()?
        .ok()?;
    if r.status().as_u16() != 200 {
        return None;
    }
    let body = tokio::time::timeout(POLL_TIMEOUT, r.bytes())
        .await
        .ok()?
        .ok()?;
    serde_json::from_slice(&body).ok()
}

/// The redirect once the IDP reports the approval.
async fn poll_idp(http: &reqwest::Client, url: &str) -> Option<String> {
    let s = fetch_idp_status(http, url).await?;
    if s.approved { s.redirect_uri } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journey(profile: bool, phase: Phase) -> Journey {
        Journey {
            profile: profile.then(|| Profile {
                insurer: "AOK PLUS".into(),
                kvnr: "X110411675".into(),
            }),
            phase,
            aktensystem: None,
            vau: None,
            display_name: None,
            login_required_reason: None,
            relogin_skipped: false,
            login_seq: 0,
        }
    }

    fn pending(relogin: bool) -> Phase {
        Phase::Awaiting(Box::new(PendingAuth {
            authorization_url: "https://idp/auth?state=s".into(),
            state: LoginState::new("s".into()),
            expires_unix: 1,
            qr_png: vec![],
            qr_text: String::new(),
            status_url: Some("https://idp/auth/status".into()),
            relogin,
            seq: 1,
        }))
    }

    #[test]
    fn phases_map_to_the_contract() {
        assert_eq!(
            journey(false, Phase::LoggedIn).external_phase(),
            EpaPhase::NoProfile
        );
        assert_eq!(
            journey(true, Phase::LoggedOut).external_phase(),
            EpaPhase::LoggedOut
        );
        assert_eq!(
            journey(true, pending(false)).external_phase(),
            EpaPhase::AwaitingIdentApp
        );
        assert_eq!(
            journey(true, pending(true)).external_phase(),
            EpaPhase::ReloginRequired
        );
        let dc = Phase::DeviceCodeSent(DeviceCode {
            name: "pc".into(),
            valid_until_unix: 9,
            tries_left: 3,
        });
        let j = journey(true, dc);
        assert_eq!(j.external_phase(), EpaPhase::DeviceCodeSent);
        assert!(j.has_user_session());
        let s = j.state();
        assert_eq!(s.device.as_ref().map(|d| d.tries_left), Some(3));
        assert!(s.device.is_some_and(|d| d.masked_addresses.is_empty()));
        assert!(s.login.is_none());
    }

    #[test]
    fn a_pending_login_is_shown_with_its_url_and_polling() {
        let s = journey(true, pending(false)).state();
        let l = s.login.unwrap_or_else(|| unreachable!());
        assert!(l.completes_without_browser);
        assert_eq!(l.authorization_url, "https://idp/auth?state=s");
        assert!(!journey(true, pending(false)).has_user_session());
    }

    #[test]
    fn device_ids_are_path_safe() {
        assert!(check_device_id("1d20dfa6-e920-4196-80ab-d411ee257748").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b", &"a".repeat(65)] {
            assert!(check_device_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backend_failures_map_deliberately() {
        let e = from_backend(BackendError::Outer {
            status: 503,
            detail: String::new(),
        });
        assert!(matches!(
            e,
            SessionError::BackendUnreachable {
                retry_after_s: 600,
                ..
            }
        ));
        let mut r = Response::new(500);
        r.body = br#"{"errorCode":"internalError"}"#.to_vec().into();
        assert!(matches!(
            unexpected("x", &r),
            SessionError::Backend { ref error_code, retry_after_s: Some(600), .. } if error_code == "internalError"
        ));
    }
}
