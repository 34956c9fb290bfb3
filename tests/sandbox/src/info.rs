//! Information Service (I_Information_Service 3.0.1): no VAU, no login. getRecordStatus,
//! getConsentDecisionInformation, setUserExperienceResult — with the spec's status/error table.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::aktensystem::Aktensystem;
use crate::seed::RecordStatus;

/// `{"errorCode": …, "errorDetail": …}`, the error body of every ePA REST interface.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorType {
    pub error_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
}

pub fn error(status: StatusCode, code: &'static str, detail: Option<String>) -> Response {
    (
        status,
        Json(ErrorType {
            error_code: code,
            error_detail: detail,
        }),
    )
        .into_response()
}

/// Strict by default: the refusal names the rule on stderr.
fn malformed(rule: &str) -> Response {
    tracing::warn!(
        rule,
        "Information Service: request refused (malformedRequest)"
    );
    error(StatusCode::BAD_REQUEST, "malformedRequest", None)
}

pub fn router(system: Arc<Aktensystem>) -> axum::Router {
    axum::Router::new()
        .route("/information/api/v1/ehr/{insurantid}", get(record_status))
        .route(
            "/information/api/v1/ehr/{insurantid}/consentdecisions",
            get(consent_decisions),
        )
        .route("/information/api/v1/userexperience", post(user_experience))
        .with_state(system)
}

/// `^[A-Z]{1}\d{9}$` — the spec checks the pattern only; an unknown KVNR is simply not here.
pub fn insurant_id_ok(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 10 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

/// `x-useragent` is required on every call; 3.0.1's strict pattern unless relaxed.
pub fn check_useragent(headers: &HeaderMap, relaxed: bool) -> Result<(), &'static str> {
    let Some(v) = headers.get("x-useragent").and_then(|v| v.to_str().ok()) else {
        return Err("x-useragent header missing");
    };
    if epa_protocol::useragent::UserAgent::parse(v).is_ok() {
        return Ok(());
    }
    // Newer interfaces: ClientId `[a-zA-Z0-9-]{1,20}`.
    if relaxed
        && let Some((id, version)) = v.split_once('/')
        && (1..=20).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && (1..=15).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Ok(());
    }
    Err("x-useragent does not match ^[a-zA-Z0-9]{20}/[a-zA-Z0-9\\-\\.]{1,15}$")
}

/// The rule a request breaks, if any.
fn precheck(
    system: &Aktensystem,
    headers: &HeaderMap,
    insurant: Option<&str>,
) -> Result<(), &'static str> {
    check_useragent(headers, system.relaxed_useragent)?;
    match insurant {
        Some(id) if !insurant_id_ok(id) => Err("insurantid does not match ^[A-Z]{1}\\d{9}$"),
        _ => Ok(()),
    }
}

async fn record_status(
    State(system): State<Arc<Aktensystem>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(rule) = precheck(&system, &headers, Some(&id)) {
        return malformed(rule);
    }
    match system.record_status(&id) {
        Some(RecordStatus::Activated) => StatusCode::OK.into_response(),
        None | Some(RecordStatus::Initialized) => {
            error(StatusCode::NOT_FOUND, "noHealthRecord", None)
        }
        Some(RecordStatus::Suspended) => error(StatusCode::CONFLICT, "statusMismatch", None),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsentDecision {
    function_id: String,
    decision: String,
}

async fn consent_decisions(
    State(system): State<Arc<Aktensystem>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(rule) = precheck(&system, &headers, Some(&id)) {
        return malformed(rule);
    }
    match system.record(&id) {
        None => error(StatusCode::NOT_FOUND, "noHealthRecord", None),
        Some(r) if r.status != RecordStatus::Activated => {
            error(StatusCode::CONFLICT, "statusMismatch", None)
        }
        Some(r) => Json(
            r.consent
                .iter()
                .map(|(f, d)| ConsentDecision {
                    function_id: f.clone(),
                    decision: d.clone(),
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UxRequest {
    use_case: String,
    measurement: i64,
}

const UX_USE_CASES: [&str; 7] = [
    "UX_Login_PS",
    "UX_Doc_Upload_PS",
    "UX_Doc_Download_PS",
    "UX_Login_V",
    "UX_Doc_Upload_V",
    "UX_Doc_Download_V",
    "UX_LEI_search",
];

async fn user_experience(
    State(system): State<Arc<Aktensystem>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(rule) = precheck(&system, &headers, None) {
        return malformed(rule);
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json {
        return malformed("userexperience needs Content-Type: application/json");
    }
    match serde_json::from_slice::<UxRequest>(&body) {
        Ok(ux) if UX_USE_CASES.contains(&ux.use_case.as_str()) => {
            tracing::debug!(use_case = %ux.use_case, ms = ux.measurement, "UX measurement");
            StatusCode::OK.into_response()
        }
        Ok(_) => malformed("useCase is not one of the UxRequestType enum values"),
        Err(_) => malformed("body is not a UxRequestType {useCase, measurement}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insurant_id_pattern_only() {
        assert!(insurant_id_ok("Z123456789")); // the spec's example: pattern-valid, check digit wrong
        for bad in ["z123456789", "Z12345678", "Z1234567890", "ZZ23456789", ""] {
            assert!(!insurant_id_ok(bad), "{bad}");
        }
    }

    #[test]
    fn useragent_strict_and_relaxed() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(
                "x-useragent",
                v.parse().unwrap_or_else(|_| {
                    "x".parse()
                        .unwrap_or(axum::http::HeaderValue::from_static("x"))
                }),
            );
            m
        };
        assert!(check_useragent(&h("CLIENTID1234567890AB/2.1.12-45"), false).is_ok());
        assert!(check_useragent(&h("epa-desktop/0.1.0"), false).is_err());
        assert!(check_useragent(&h("epa-desktop/0.1.0"), true).is_ok());
        assert!(check_useragent(&HeaderMap::new(), true).is_err());
    }
}
