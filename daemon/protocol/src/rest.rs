//! Client-side models and request builders of the ePA-Basic REST interfaces an insurant client
//! uses (3.0.1): Information Service, Authorization Service FdV, Device Management, E-mail
//! Management. Names follow the OpenAPI files; unknown response fields are ignored (servers add
//! fields between versions), missing required ones are errors.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::http::{Request, Response};

pub mod paths {
    pub const RECORD_STATUS: &str = "/information/api/v1/ehr";
    pub const SEND_AUTHORIZATION_REQUEST_FDV: &str = "/epa/authz/v1/send_authorization_request_fdv";
    pub const SEND_AUTHCODE_FDV: &str = "/epa/authz/v1/send_authcode_fdv";
    pub const LOGOUT_FDV: &str = "/epa/authz/v1/logoutFdV";
    pub const DEVICES_MANAGE: &str = "/epa/basic/api/v1/devices/manage";
    pub const DEVICES: &str = "/epa/basic/api/v1/devices";
    pub const EMAILS: &str = "/epa/basic/api/v1/emails";
}

/// `{"errorCode", "errorDetail"}` — the error body of every ePA REST interface.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorType {
    pub error_code: String,
    #[serde(default)]
    pub error_detail: Option<String>,
}

/// A non-success answer of a REST operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} {}{}", error.as_ref().map_or("(no ePA error body)", |e| e.error_code.as_str()),
    error.as_ref().and_then(|e| e.error_detail.as_deref()).map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct RestError {
    pub status: u16,
    pub error: Option<ErrorType>,
}

impl RestError {
    pub fn code(&self) -> Option<&str> {
        self.error.as_ref().map(|e| e.error_code.as_str())
    }

    pub fn detail(&self) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.error_detail.as_deref())
    }
}

/// Why a response could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RestFailure {
    #[error(transparent)]
    Rejected(#[from] RestError),
    #[error("the response body does not match the interface: {0}")]
    Schema(String),
}

/// Checks the status against `expected` and decodes the body as `T` (use `()` for no body).
pub fn expect_json<T: serde::de::DeserializeOwned>(
    resp: &Response,
    expected: u16,
) -> Result<T, RestFailure> {
    expect_status(resp, expected)?;
    let body: &[u8] = if resp.body.is_empty() {
        b"null"
    } else {
        &resp.body
    };
    serde_json::from_slice(body).map_err(|e| RestFailure::Schema(e.to_string()))
}

/// Checks the status; any other status becomes a [`RestError`] with the server's error body.
pub fn expect_status(resp: &Response, expected: u16) -> Result<(), RestError> {
    if resp.status == expected {
        return Ok(());
    }
    Err(RestError {
        status: resp.status,
        error: serde_json::from_slice(&resp.body).ok(),
    })
}

fn json_request(method: &str, path: &str, body: &impl Serialize) -> Request {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    match method {
        "PUT" => Request::put(path, "application/json", bytes),
        _ => Request::post(path, "application/json", bytes),
    }
}

// ---- Information Service (no VAU) -------------------------------------------------------------

/// What `getRecordStatus` says about a KVNR on one Aktensystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordLocation {
    /// 200: the record is here and ACTIVATED.
    Here,
    /// 404 noHealthRecord: not here (or still INITIALIZED).
    NotHere,
    /// 409 statusMismatch: here, but not ACTIVATED (e.g. SUSPENDED); retry in about a day.
    NotActivated,
}

pub fn get_record_status(kvnr: &crate::kvnr::Kvnr) -> String {
    format!("{}/{}", paths::RECORD_STATUS, kvnr.as_str())
}

pub fn record_location(status: u16, body: &[u8]) -> Result<RecordLocation, RestError> {
    match status {
        200 => Ok(RecordLocation::Here),
        404 => Ok(RecordLocation::NotHere),
        409 => Ok(RecordLocation::NotActivated),
        _ => Err(RestError {
            status,
            error: serde_json::from_slice(body).ok(),
        }),
    }
}

// ---- Authorization Service, FdV ---------------------------------------------------------------

/// sendAuthorizationRequestFdV: the IDP is named by its issuer.
pub fn send_authorization_request_fdv(idp_issuer: &str, representative: bool) -> Request {
    let r = Request::get(paths::SEND_AUTHORIZATION_REQUEST_FDV).header("x-idp-iss", idp_issuer);
    if representative {
        r.header("x-authorize-representative", "true")
    } else {
        r
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AuthCode<'a> {
    authorization_code: &'a str,
}

/// sendAuthCodeFdV with the device credential when there is one.
pub fn send_authcode_fdv(authorization_code: &str, device: Option<&DeviceCredential>) -> Request {
    let r = json_request(
        "POST",
        paths::SEND_AUTHCODE_FDV,
        &AuthCode { authorization_code },
    );
    match device {
        Some(d) => r
            .header("x-device-identifier", d.identifier.as_str())
            .header("x-device-token", d.token.expose()),
        None => r,
    }
}

/// The pseudonym the login returns; it goes into `VAU-NP` on every later outer request.
#[derive(Deserialize)]
pub struct AuthCodeResponse {
    #[serde(rename = "vau-np")]
    pub vau_np: String,
}

pub fn logout_fdv() -> Request {
    Request::get(paths::LOGOUT_FDV)
}

// ---- Device Management ------------------------------------------------------------------------

/// A device token: 64 hex digits, the long-term device secret. No Debug, no Clone, zeroized.
pub struct DeviceToken(Zeroizing<String>);

impl DeviceToken {
    pub fn new(token: String) -> Option<Self> {
        let t = Zeroizing::new(token);
        (t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Self(t))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DeviceToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        Self::new(s.to_string())
            .ok_or_else(|| serde::de::Error::custom("deviceToken is not 64 hex digits"))
    }
}

/// What a client keeps per (KVNR, Aktensystem) after registerDevice.
pub struct DeviceCredential {
    pub identifier: String,
    pub token: DeviceToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Pending,
    Confirmed,
}

/// DeviceType / PendingDeviceType. The last-use time is `lastLogin` in the schema and `lastUse`
/// in the examples; servers may send either or both, see [`Device::last_used`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    #[serde(default)]
    pub device_identifier: Option<String>,
    pub status: DeviceStatus,
    pub display_name: String,
    pub created_at: String,
    #[serde(default)]
    pub remaining_confirmation_retries: Option<u8>,
    #[serde(default)]
    pub last_login: Option<String>,
    #[serde(default)]
    pub last_use: Option<String>,
}

impl Device {
    /// When the device was last used to log in, whichever name the server used.
    pub fn last_used(&self) -> Option<&str> {
        self.last_login.as_deref().or(self.last_use.as_deref())
    }
}

/// registerDevice's 201 body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRegistration {
    pub device_identifier: String,
    pub device_token: DeviceToken,
    pub data: Device,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceName<'a> {
    device_name: &'a str,
}

pub fn register_device(device_name: Option<&str>) -> Request {
    match device_name {
        Some(device_name) => {
            json_request("POST", paths::DEVICES_MANAGE, &DeviceName { device_name })
        }
        None => Request::post(paths::DEVICES_MANAGE, "application/json", Vec::new()),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Confirm<'a> {
    device_identifier: &'a str,
    device_token: &'a str,
    confirmation_code: &'a str,
}

pub fn confirm_pending_device(device: &DeviceCredential, confirmation_code: &str) -> Request {
    json_request(
        "PUT",
        paths::DEVICES_MANAGE,
        &Confirm {
            device_identifier: &device.identifier,
            device_token: device.token.expose(),
            confirmation_code,
        },
    )
}

/// Paging of every ePA-Basic list: `offset` is a page index, `limit` the page size (1..50).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    pub offset: u32,
    pub limit: u32,
    pub total_matching: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page<T> {
    pub query: PageQuery,
    pub data: Vec<T>,
}

pub fn get_devices(page: u32, limit: u32) -> Request {
    Request::get(format!("{}?limit={limit}&offset={page}", paths::DEVICES))
}

pub fn get_device(identifier: &str) -> Request {
    Request::get(format!("{}/{identifier}", paths::DEVICES))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DisplayName<'a> {
    display_name: &'a str,
}

pub fn update_device(identifier: &str, display_name: &str) -> Request {
    json_request(
        "PUT",
        &format!("{}/{identifier}", paths::DEVICES),
        &DisplayName { display_name },
    )
}

pub fn delete_device(identifier: &str) -> Request {
    Request::delete(format!("{}/{identifier}", paths::DEVICES))
}

// ---- E-mail Management ------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailEntry {
    pub identifier: String,
    pub email: String,
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

pub fn get_emails(page: u32, limit: u32) -> Request {
    Request::get(format!("{}?limit={limit}&offset={page}", paths::EMAILS))
}

#[derive(Serialize)]
struct Email<'a> {
    email: &'a str,
}

pub fn set_email(email: &str) -> Request {
    json_request("POST", paths::EMAILS, &Email { email })
}

pub fn delete_email(identifier: &str) -> Request {
    Request::delete(format!("{}/{identifier}", paths::EMAILS))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        let mut r = Response::new(status);
        r.body = body.as_bytes().to_vec().into();
        r
    }

    #[test]
    fn the_spec_examples_decode() {
        let reg: DeviceRegistration = expect_json(
            &resp(201, r#"{"deviceIdentifier":"1d20dfa6-e920-4196-80ab-d411ee257748","deviceToken":"8827da6359c78d81a5df7650b972308aa88394fa8f325b742b125372d7f70f50","data":{"status":"pending","displayName":"my health care device","createdAt":"2025-04-22T14:23:01Z","remainingConfirmationRetries":4}}"#),
            201,
        )
        .unwrap();
        assert_eq!(reg.data.status, DeviceStatus::Pending);
        assert_eq!(reg.data.remaining_confirmation_retries, Some(4));
        let d: Device = serde_json::from_str(
            r#"{"deviceIdentifier":"x","status":"confirmed","displayName":"a","createdAt":"t","lastUse":"u"}"#,
        )
        .unwrap();
        assert_eq!(d.last_used(), Some("u"));
        // Both names at once (what a careful server emits) must not fail.
        let d: Device = serde_json::from_str(
            r#"{"status":"confirmed","displayName":"a","createdAt":"t","lastUse":"u","lastLogin":"u"}"#,
        )
        .unwrap();
        assert_eq!(d.last_used(), Some("u"));
    }

    #[test]
    fn errors_carry_code_and_detail() {
        let e = expect_status(
            &resp(
                409,
                r#"{"errorCode":"statusMismatch","errorDetail":"2025-07-14T17:22:00Z"}"#,
            ),
            201,
        )
        .unwrap_err();
        assert_eq!(e.code(), Some("statusMismatch"));
        assert_eq!(e.detail(), Some("2025-07-14T17:22:00Z"));
        assert!(e.to_string().contains("statusMismatch"));
        let e = expect_status(&resp(502, "<html>"), 200).unwrap_err();
        assert_eq!(e.code(), None);
    }

    #[test]
    fn device_tokens_are_checked() {
        assert!(DeviceToken::new("ab".repeat(32)).is_some());
        assert!(DeviceToken::new("xy".repeat(32)).is_none());
        let bad: Result<DeviceRegistration, _> = serde_json::from_str(
            r#"{"deviceIdentifier":"x","deviceToken":"short","data":{"status":"pending","displayName":"a","createdAt":"t"}}"#,
        );
        assert!(bad.is_err());
    }
}
