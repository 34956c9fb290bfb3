//! Authorization Service, FdV flavour (I_Authorization_Service 3.0.1 v1.1.2), as inner routes
//! of the VAU channel: sendAuthorizationRequestFdV (PAR to the insurer's IDP, 302),
//! sendAuthCodeFdV (code redemption, device check, session scope), logoutFdV. One user session
//! per VAU channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use epa_protocol::xds::is_uuid;
use rand_chacha::ChaCha20Rng;
use serde::Deserialize;

use crate::clock::Clock;
use crate::devices::{DeviceCheck, DeviceRegistry};
use crate::idp::{self, Idps, ParRequest, b64url_encode, pct_encode, s256};
use crate::info::{check_useragent, error};

/// What a logged-in user may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// No (or no valid) device: Device Management only.
    DeviceManagement,
    /// Confirmed device: every service of the record.
    Full,
    /// `x-authorize-representative`: Entitlement Management of the user's own record only.
    Representative,
}

#[derive(Debug, Clone)]
pub struct UserSession {
    pub kvnr: String,
    pub display_name: String,
    pub scope: Scope,
    pub vau_np: String,
}

#[derive(Debug, Clone, Default)]
enum SessionState {
    #[default]
    None,
    AuthorizationRequested {
        issuer: String,
        code_verifier: String,
        representative: bool,
    },
    Active(UserSession),
    LoggedOut,
}

/// The user-session slot of one VAU channel.
#[derive(Debug, Default)]
pub struct ChannelSession {
    state: Mutex<SessionState>,
    /// Sandbox time of the last inner request on this channel (for the idle timeout).
    last_active: AtomicU64,
}

impl ChannelSession {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The logged-in user of this channel, if any.
    pub fn user(&self) -> Option<UserSession> {
        match &*self.state() {
            SessionState::Active(u) => Some(u.clone()),
            _ => None,
        }
    }

    /// A device confirmed in this session upgrades a Device-Management-only session to full
    /// access (the `full_access_after_confirm` behaviour switch). Whether it did.
    pub fn upgrade_to_full(&self) -> bool {
        match &mut *self.state() {
            SessionState::Active(u) if u.scope == Scope::DeviceManagement => {
                u.scope = Scope::Full;
                true
            }
            _ => false,
        }
    }

    /// Ends the session (logout, or a fault that drops it).
    pub fn drop_session(&self) {
        *self.state() = SessionState::LoggedOut;
    }

    /// Whether a user is logged in on this channel.
    pub fn is_active(&self) -> bool {
        matches!(*self.state(), SessionState::Active(_))
    }

    /// Called by the VAU dispatch before each inner request: a user session idle for longer
    /// than `timeout_s` is gone (the client gets 403 invalAuth and must log in again on a new
    /// channel); then the request counts as activity. Returns whether the session expired.
    pub fn note_request(&self, now: u64, timeout_s: u64) -> bool {
        let last = self.last_active.swap(now, Ordering::SeqCst);
        let mut state = self.state();
        if matches!(*state, SessionState::Active(_)) && now.saturating_sub(last) > timeout_s {
            *state = SessionState::LoggedOut;
            tracing::warn!(
                idle_s = now.saturating_sub(last),
                timeout_s,
                rule = "user session idle timeout",
                "user session ended"
            );
            return true;
        }
        false
    }
}

pub struct Authz {
    pub idps: Arc<Idps>,
    pub devices: Arc<DeviceRegistry>,
    pub clock: Arc<Clock>,
    /// This Aktensystem's client id at the IDPs (the relying party's URL).
    pub client_id: String,
    pub rng: Mutex<ChaCha20Rng>,
}

impl Authz {
    fn random_hex(&self, bytes: usize) -> String {
        let mut raw = vec![0u8; bytes];
        rand_core::Rng::fill_bytes(
            &mut *self.rng.lock().unwrap_or_else(|p| p.into_inner()),
            &mut raw,
        );
        idp::hex(&raw)
    }
}

pub fn router(authz: Arc<Authz>) -> axum::Router {
    axum::Router::new()
        .route(
            "/epa/authz/v1/send_authorization_request_fdv",
            get(send_authorization_request_fdv),
        )
        .route("/epa/authz/v1/send_authcode_fdv", post(send_authcode_fdv))
        .route("/epa/authz/v1/logoutFdV", get(logout_fdv))
        .with_state(authz)
}

fn refuse(status: StatusCode, code: &'static str, rule: &str) -> Response {
    tracing::warn!(code, rule, "Authorization Service: request refused");
    error(status, code, None)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn send_authorization_request_fdv(
    State(authz): State<Arc<Authz>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
) -> Response {
    if let Err(rule) = check_useragent(&headers, false) {
        return refuse(StatusCode::BAD_REQUEST, "malformedRequest", rule);
    }
    let representative = match header(&headers, "x-authorize-representative") {
        None => false,
        Some("true") => true,
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformedRequest",
                "x-authorize-representative may only be true",
            );
        }
    };
    let Some(issuer) = header(&headers, "x-idp-iss").map(str::to_owned) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "malformedRequest",
            "x-idp-iss header missing",
        );
    };
    if !authz.idps.issuers().iter().any(|(_, i)| *i == issuer) {
        return refuse(
            StatusCode::NOT_FOUND,
            "noResource",
            "x-idp-iss names no known IDP",
        );
    }
    if matches!(
        *session.state(),
        SessionState::Active(_) | SessionState::LoggedOut
    ) {
        return refuse(
            StatusCode::FORBIDDEN,
            "invalAuth",
            "this VAU channel already had a user session; open a new channel",
        );
    }
    let state = authz.random_hex(16);
    let code_verifier = b64url_encode(authz.random_hex(32).as_bytes());
    let code_challenge = s256(&code_verifier);
    let par = authz.idps.par(
        &issuer,
        ParRequest {
            client_id: authz.client_id.clone(),
            state: state.clone(),
            redirect_uri: idp::REDIRECT_URI.to_owned(),
            code_challenge,
            code_challenge_method: "S256".into(),
            response_type: "code".into(),
            nonce: authz.random_hex(16),
            scope: "openid urn:telematik:versicherter urn:telematik:display_name".into(),
            acr_values: "gematik-ehealth-loa-high".into(),
            amr: representative.then(|| "urn:telematik:auth:guest:eGK".to_owned()),
        },
    );
    let par = match par {
        Ok(p) => p,
        // An IDP that cannot be reached is no "invalid request": 500 per the YAML's table.
        Err(e @ idp::IdpError::Unavailable) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internalError",
                &format!("PAR failed: {e}"),
            );
        }
        Err(e) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "invalAuth",
                &format!("PAR failed: {e}"),
            );
        }
    };
    *session.state() = SessionState::AuthorizationRequested {
        issuer: issuer.clone(),
        code_verifier,
        representative,
    };
    let location = format!(
        "{}&state={}",
        authz
            .idps
            .authorization_url(&issuer, &authz.client_id, &par.request_uri),
        pct_encode(&state)
    );
    (StatusCode::FOUND, [("location", location)]).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AuthCode {
    authorization_code: String,
}

async fn send_authcode_fdv(
    State(authz): State<Arc<Authz>>,
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // Whatever happens below, a failed call leaves no session behind.
    let previous = std::mem::take(&mut *session.state());
    let fail = |status, code, rule: &str| refuse(status, code, rule);
    if let Err(rule) = check_useragent(&headers, false) {
        return fail(StatusCode::BAD_REQUEST, "malformedRequest", rule);
    }
    let json = header(&headers, "content-type").is_some_and(|c| c.starts_with("application/json"));
    let code = match serde_json::from_slice::<AuthCode>(&body) {
        Ok(c) if json && !c.authorization_code.is_empty() && c.authorization_code.len() <= 2000 => {
            c.authorization_code
        }
        _ => {
            return fail(
                StatusCode::BAD_REQUEST,
                "malformedRequest",
                "body must be {\"authorizationCode\": ≤ 2000 chars} as application/json",
            );
        }
    };
    let device = match (
        header(&headers, "x-device-identifier"),
        header(&headers, "x-device-token"),
    ) {
        (None, None) => None,
        (Some(id), Some(token)) => {
            if !is_uuid(id) || token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return fail(
                    StatusCode::BAD_REQUEST,
                    "malformedRequest",
                    "x-device-identifier is a UUID, x-device-token 64 hex digits",
                );
            }
            Some((id.to_owned(), token.to_owned()))
        }
        _ => {
            return fail(
                StatusCode::BAD_REQUEST,
                "paramExcpected",
                "send both device headers or none",
            );
        }
    };
    if matches!(previous, SessionState::Active(_)) {
        *session.state() = previous;
        return refuse(
            StatusCode::CONFLICT,
            "statusMismatch",
            "this channel already has a user session",
        );
    }
    let SessionState::AuthorizationRequested {
        issuer,
        code_verifier,
        representative,
    } = previous
    else {
        return fail(
            StatusCode::FORBIDDEN,
            "invalAuth",
            "no preceding sendAuthorizationRequestFdV on this channel",
        );
    };
    if representative && device.is_some() {
        return fail(
            StatusCode::BAD_REQUEST,
            "authorizeRep",
            "no device headers in the representative case",
        );
    }
    let claims = match authz.idps.redeem(
        &issuer,
        &code,
        &code_verifier,
        &authz.client_id,
        idp::REDIRECT_URI,
    ) {
        Ok(c) => c,
        Err(e @ idp::IdpError::Unavailable) => {
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internalError",
                &format!("code redemption failed: {e}"),
            );
        }
        Err(e) => {
            return fail(
                StatusCode::FORBIDDEN,
                "invalAuth",
                &format!("code redemption failed: {e}"),
            );
        }
    };
    if claims.profession_oid != idp::PROFESSION_VERSICHERTER {
        return fail(
            StatusCode::FORBIDDEN,
            "invalidOid",
            "the authenticated person is not an insurant",
        );
    }
    let scope = match device {
        _ if representative => Scope::Representative,
        None => Scope::DeviceManagement,
        Some((id, token)) => {
            match authz
                .devices
                .verify(&claims.kvnr, &id, &token, authz.clock.now_unix())
            {
                Ok(()) => Scope::Full,
                Err(DeviceCheck::Unknown) => {
                    return fail(
                        StatusCode::NOT_FOUND,
                        "noResource",
                        "device unknown for this KVNR",
                    );
                }
                Err(DeviceCheck::WrongToken) => {
                    return fail(StatusCode::FORBIDDEN, "invalidToken", "device token wrong");
                }
                Err(DeviceCheck::Pending) => {
                    return fail(
                        StatusCode::CONFLICT,
                        "statusMismatch",
                        "device registration still pending",
                    );
                }
            }
        }
    };
    let vau_np = authz.random_hex(32);
    tracing::info!(?scope, "user session opened");
    *session.state() = SessionState::Active(UserSession {
        kvnr: claims.kvnr,
        display_name: claims.display_name,
        scope,
        vau_np: vau_np.clone(),
    });
    Json(serde_json::json!({ "vau-np": vau_np })).into_response()
}

async fn logout_fdv(
    Extension(session): Extension<Arc<ChannelSession>>,
    headers: HeaderMap,
) -> Response {
    if let Err(rule) = check_useragent(&headers, false) {
        return refuse(StatusCode::BAD_REQUEST, "malformedRequest", rule);
    }
    session.drop_session();
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_identifiers_are_uuids() {
        assert!(is_uuid("4ab42e19-7d33-40fa-949f-3499135b910b"));
        assert!(!is_uuid("4ab42e19-7d33-40fa-949f-3499135b910"));
    }
}
