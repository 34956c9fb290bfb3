//! The HTTP face of the IDPs and the ident app (see the module docs of [`super`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::codec::parse_form;
use super::pages::{self, AuthPage};
use super::{IdpError, Idps, ParRequest, TOKEN_TTL_S};

impl Idps {
    /// The routes of all IDPs and of the ident app, with absolute paths, for the portal router:
    ///
    /// | route | |
    /// |---|---|
    /// | `POST /idp/{slug}/PAR_Auth` | form → `201 {"request_uri", "expires_in": 90}` |
    /// | `GET /idp/{slug}/auth?client_id&request_uri` | HTML: QR payload, polling script, same-device form |
    /// | `GET /idp/{slug}/auth/status?request_uri` | `{"approved": bool, "redirect_uri": string \| null}` |
    /// | `POST /idp/{slug}/auth/approve` | form (`client_id`, `request_uri`, `kvnr`, `gesundheitsid_code`) → `303` to the redirect URI |
    /// | `POST /idp/{slug}/token` | form → `{"id_token", "access_token", "token_type": "Bearer", "expires_in": 300}` |
    /// | `POST /ident/approve` | JSON `{"authorization_url", "kvnr", "gesundheitsid_code"}` → `{"redirect_uri"}` |
    /// | `GET /ident`, `POST /ident` | the ident app page for humans (form) |
    ///
    /// The token endpoint's `id_token` is not a JWT: this sandbox signs and encrypts nothing, so
    /// it is the claims object (`iss`, `sub`, `aud`, `iat`, `exp`, `nonce`, `acr`, `amr`,
    /// `urn:telematik:claims:{id,profession,given_name,family_name,display_name}`) serialized as a
    /// JSON string.
    ///
    /// IDP endpoints (PAR, token) answer errors OAuth-style (`{"error", "error_description"}`);
    /// the status and ident endpoints ePA-style (`{"errorCode", "errorDetail"}`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/idp/{slug}/PAR_Auth", post(par))
            .route("/idp/{slug}/auth", get(auth_page))
            .route("/idp/{slug}/auth/status", get(auth_status))
            .route("/idp/{slug}/auth/approve", post(auth_approve))
            .route("/idp/{slug}/token", post(token))
            .route("/ident", get(ident_page).post(ident_form))
            .route("/ident/approve", post(ident_approve))
            .route_layer(axum::middleware::from_fn_with_state(
                Arc::clone(self),
                when_down,
            ))
            .with_state(Arc::clone(self))
    }
}

type Shared = State<Arc<Idps>>;

/// The "IDP down" fault: every IDP and ident-app endpoint answers 503.
async fn when_down(
    State(idps): Shared,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if idps.is_down() {
        tracing::warn!(path = %req.uri().path(), rule = "IDP down (control API fault)", "IDP request refused");
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "error": "temporarily_unavailable", "error_description": "the IDP is down (sandbox fault)" })),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    next.run(req).await
}

/// `{"error", "error_description"}` (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn oauth_error_of(e: &IdpError) -> Response {
    match e {
        IdpError::UnknownIssuer => {
            oauth_error(StatusCode::NOT_FOUND, "invalid_request", "unknown issuer")
        }
        IdpError::Malformed(m) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", m),
        IdpError::CodeInvalid => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &e.to_string())
        }
        IdpError::Internal(_) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &e.to_string(),
        ),
        IdpError::Unavailable => oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            &e.to_string(),
        ),
        IdpError::UnknownRequest | IdpError::WrongCode | IdpError::UnknownInsurant => {
            oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string())
        }
    }
}

/// `{"errorCode", "errorDetail"}` like the ePA services.
fn epa_error(e: &IdpError) -> Response {
    let (status, code) = match e {
        IdpError::WrongCode => (StatusCode::FORBIDDEN, "wrongCode"),
        IdpError::UnknownInsurant => (StatusCode::FORBIDDEN, "unknownInsurant"),
        IdpError::UnknownRequest | IdpError::UnknownIssuer => {
            (StatusCode::NOT_FOUND, "unknownRequest")
        }
        IdpError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformedRequest"),
        IdpError::CodeInvalid | IdpError::Internal(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internalError")
        }
        IdpError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "internalError"),
    };
    (
        status,
        axum::Json(json!({ "errorCode": code, "errorDetail": e.to_string() })),
    )
        .into_response()
}

fn form_of(body: &[u8]) -> Result<HashMap<String, String>, IdpError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| IdpError::Malformed("the form body is not UTF-8".into()))?;
    parse_form(text).map_err(|e| IdpError::Malformed(e.to_string()))
}

fn query_of(q: Option<String>) -> Result<HashMap<String, String>, IdpError> {
    parse_form(q.as_deref().unwrap_or_default()).map_err(|e| IdpError::Malformed(e.to_string()))
}

/// A required, non-empty parameter.
fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, IdpError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| IdpError::Malformed(format!("parameter {name} missing")))
}

fn issuer_of(idps: &Idps, slug: &str) -> Result<String, IdpError> {
    idps.by_slug(slug).map(|i| i.issuer.clone())
}

async fn par(State(idps): Shared, Path(slug): Path<String>, body: Bytes) -> Response {
    let result = (|| {
        let issuer = issuer_of(&idps, &slug)?;
        let f = form_of(&body)?;
        let req = ParRequest {
            client_id: required(&f, "client_id")?.to_owned(),
            state: required(&f, "state")?.to_owned(),
            redirect_uri: required(&f, "redirect_uri")?.to_owned(),
            code_challenge: required(&f, "code_challenge")?.to_owned(),
            code_challenge_method: required(&f, "code_challenge_method")?.to_owned(),
            response_type: required(&f, "response_type")?.to_owned(),
            nonce: required(&f, "nonce")?.to_owned(),
            scope: required(&f, "scope")?.to_owned(),
            acr_values: required(&f, "acr_values")?.to_owned(),
            amr: f.get("amr").filter(|a| !a.is_empty()).cloned(),
        };
        idps.par(&issuer, req)
    })();
    match result {
        Ok(r) => {
            let mut resp = (
                StatusCode::CREATED,
                axum::Json(json!({ "request_uri": r.request_uri, "expires_in": r.expires_in })),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => oauth_error_of(&e),
    }
}

async fn token(State(idps): Shared, Path(slug): Path<String>, body: Bytes) -> Response {
    let result = (|| {
        let issuer = issuer_of(&idps, &slug)?;
        let f = form_of(&body)?;
        let grant_type = required(&f, "grant_type")?;
        if grant_type != "authorization_code" {
            return Ok(Err(grant_type.to_owned()));
        }
        let (claims, par) = idps.redeem_with_par(
            &issuer,
            required(&f, "code")?,
            required(&f, "code_verifier")?,
            required(&f, "client_id")?,
            required(&f, "redirect_uri")?,
        )?;
        let now = idps.clock.now_unix();
        let id_token = json!({
            "iss": issuer,
            "sub": claims.kvnr,
            "aud": required(&f, "client_id")?,
            "iat": now,
            "exp": now + TOKEN_TTL_S,
            "nonce": par.nonce,
            "acr": par.acr_values.split(' ').find(|a| super::ACR_VALUES.contains(a)),
            "amr": [claims.amr],
            "urn:telematik:claims:id": claims.kvnr,
            "urn:telematik:claims:profession": claims.profession_oid,
            "urn:telematik:claims:given_name": claims.given_name,
            "urn:telematik:claims:family_name": claims.family_name,
            "urn:telematik:claims:display_name": claims.display_name,
        });
        let access_token = super::codec::b64url_encode(&super::random::<32>()?);
        Ok(Ok((id_token.to_string(), access_token)))
    })();
    match result {
        Ok(Ok((id_token, access_token))) => {
            let mut r = axum::Json(json!({
                "id_token": id_token,
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_S,
            }))
            .into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Ok(Err(grant_type)) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("grant_type {grant_type:?} is not supported; use authorization_code"),
        ),
        Err(e) => oauth_error_of(&e),
    }
}

/// The values the `/auth` page is built from, checked.
struct AuthParams {
    issuer: String,
    client_id: String,
    request_uri: String,
}

fn auth_params(
    idps: &Idps,
    slug: &str,
    p: &HashMap<String, String>,
) -> Result<AuthParams, IdpError> {
    Ok(AuthParams {
        issuer: issuer_of(idps, slug)?,
        client_id: required(p, "client_id")?.to_owned(),
        request_uri: required(p, "request_uri")?.to_owned(),
    })
}

fn render_auth(idps: &Idps, slug: &str, a: &AuthParams, error: Option<&str>) -> AuthPage {
    let insurer = idps
        .by_slug(slug)
        .map(|i| i.insurer.clone())
        .unwrap_or_default();
    AuthPage {
        insurer,
        slug: slug.to_owned(),
        authorization_url: idps.authorization_url(&a.issuer, &a.client_id, &a.request_uri),
        client_id: a.client_id.clone(),
        request_uri: a.request_uri.clone(),
        ident_app_url: idps.ident_app_url(),
        error: error.map(str::to_owned),
    }
}

fn error_page(e: &IdpError) -> Response {
    let status = match e {
        IdpError::UnknownIssuer | IdpError::UnknownRequest => StatusCode::NOT_FOUND,
        IdpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        IdpError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    (status, no_store(Html(pages::error_page(e)))).into_response()
}

fn no_store(html: Html<String>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], html)
}

async fn auth_page(
    State(idps): Shared,
    Path(slug): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let result = (|| {
        let p = query_of(q)?;
        let a = auth_params(&idps, &slug, &p)?;
        idps.open(&slug, &a.client_id, &a.request_uri)?;
        Ok(render_auth(&idps, &slug, &a, None))
    })();
    match result {
        Ok(page) => no_store(Html(page.render())).into_response(),
        Err(e) => error_page(&e),
    }
}

async fn auth_status(
    State(idps): Shared,
    Path(slug): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let result = query_of(q)
        .and_then(|p| required(&p, "request_uri").map(str::to_owned))
        .and_then(|request_uri| {
            issuer_of(&idps, &slug)?;
            idps.status_by_slug(&slug, &request_uri)
        });
    match result {
        Ok(s) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({ "approved": s.approved, "redirect_uri": s.redirect_uri })),
        )
            .into_response(),
        Err(e) => epa_error(&e),
    }
}

/// The same-device form of the `/auth` page.
async fn auth_approve(State(idps): Shared, Path(slug): Path<String>, body: Bytes) -> Response {
    let f = match form_of(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&e),
    };
    let a = match auth_params(&idps, &slug, &f) {
        Ok(a) => a,
        Err(e) => return error_page(&e),
    };
    let url = idps.authorization_url(&a.issuer, &a.client_id, &a.request_uri);
    let kvnr = f.get("kvnr").map(String::as_str).unwrap_or_default();
    let code = f
        .get("gesundheitsid_code")
        .map(String::as_str)
        .unwrap_or_default();
    match idps.approve(&url, kvnr, code) {
        Ok(redirect) => see_other(&redirect),
        Err(
            e @ (IdpError::UnknownRequest
            | IdpError::UnknownIssuer
            | IdpError::Internal(_)
            | IdpError::Unavailable),
        ) => error_page(&e),
        Err(e) => {
            let status = if matches!(e, IdpError::Malformed(_)) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            let page = render_auth(&idps, &slug, &a, Some(&pages::german(&e)));
            (status, no_store(Html(page.render()))).into_response()
        }
    }
}

fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, v),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => error_page(&IdpError::Internal(
            "redirect URI is not a valid header value".into(),
        )),
    }
}

#[derive(Deserialize)]
struct IdentApprove {
    authorization_url: String,
    kvnr: String,
    gesundheitsid_code: String,
}

async fn ident_approve(State(idps): Shared, body: Bytes) -> Response {
    let req: IdentApprove = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return epa_error(&IdpError::Malformed(format!(
                "expected JSON {{\"authorization_url\", \"kvnr\", \"gesundheitsid_code\"}}: {e}"
            )));
        }
    };
    match idps.approve(&req.authorization_url, &req.kvnr, &req.gesundheitsid_code) {
        Ok(redirect_uri) => axum::Json(json!({ "redirect_uri": redirect_uri })).into_response(),
        Err(e) => epa_error(&e),
    }
}

async fn ident_page(State(idps): Shared, RawQuery(q): RawQuery) -> Response {
    // `?authorization_url=…` pre-fills the form (a phone "scanning" a link).
    let prefill = query_of(q)
        .ok()
        .and_then(|p| p.get("authorization_url").cloned())
        .unwrap_or_default();
    let page = pages::ident_page(&idps.ident_app_url(), &prefill, "", None);
    no_store(Html(page)).into_response()
}

async fn ident_form(State(idps): Shared, body: Bytes) -> Response {
    let f = match form_of(&body) {
        Ok(f) => f,
        Err(e) => {
            let page =
                pages::ident_page(&idps.ident_app_url(), "", "", Some(Err(pages::german(&e))));
            return (StatusCode::BAD_REQUEST, no_store(Html(page))).into_response();
        }
    };
    let field = |n: &str| f.get(n).map(String::as_str).unwrap_or_default();
    let (url, kvnr) = (field("authorization_url"), field("kvnr"));
    match idps.approve(url, kvnr, field("gesundheitsid_code")) {
        Ok(redirect) => {
            let page = pages::ident_page(&idps.ident_app_url(), "", kvnr, Some(Ok(redirect)));
            no_store(Html(page)).into_response()
        }
        Err(e) => {
            let status = epa_error(&e).status();
            let page = pages::ident_page(
                &idps.ident_app_url(),
                url,
                kvnr,
                Some(Err(pages::german(&e))),
            );
            (status, no_store(Html(page))).into_response()
        }
    }
}
