//! The sectoral IDPs ("GesundheitsID", epa-protocol.md §3.4) of the seeded insurers, and the
//! virtual ident app that plays the insurant's phone.
//!
//! One IDP per insurer of the seed; its issuer is `{portal_base}/idp/{insurer.idp}`. The
//! Authorization Service (the relying party) pushes its authorization request ([`Idps::par`], or
//! HTTP `POST {issuer}/PAR_Auth`), sends the FdV to [`Idps::authorization_url`], and — once the
//! insurant has approved with the GesundheitsID app — redeems the code ([`Idps::redeem`], or HTTP
//! `POST {issuer}/token`).
//!
//! # What the browser and the phone see
//!
//! * `GET {issuer}/auth?client_id=…&request_uri=…` is a German page that shows the authorization
//!   URL for the phone (cross-device) and polls `GET {issuer}/auth/status?request_uri=…` every
//!   second; when the request is approved it navigates to the redirect URI
//!   (`epa-desktop://auth/callback?code=…&state=…`). The same page has a same-device form (KVNR +
//!   GesundheitsID code) posting to `{issuer}/auth/approve`, which answers `303` to the redirect
//!   URI.
//! * The virtual ident app: `POST {portal_base}/ident/approve` with JSON
//!   `{"authorization_url", "kvnr", "gesundheitsid_code"}` approves a request like the phone
//!   would; `GET {portal_base}/ident` is a small page doing the same by hand.
//!
//! # Rules (all times from the sandbox [`Clock`])
//!
//! * A `request_uri` must be used within 90 s of the PAR: the `/auth` page must be opened, or the
//!   request approved, within that time. Once the `/auth` page was opened, approval stays possible
//!   for 10 minutes from that first opening, so a human has time to scan and type.
//! * A request is approved at most once; afterwards its status keeps reporting the redirect URI
//!   (for the polling page) until the code expires or the request's window ends.
//! * After 5 wrong GesundheitsID codes for one request, the request is dead
//!   ([`IdpError::UnknownRequest`]). An insurant of another insurer does not count as an attempt.
//! * Authorization codes live 60 s and are one-time: any redemption attempt that names an existing
//!   code consumes it, whether it succeeds or not (PKCE, client or redirect mismatch).
//! * `state` is the relying party's opaque value; it comes back percent-encoded in the redirect
//!   URI and decodes to exactly the value of the PAR.
//!
//! # Simplifications (this is a sandbox)
//!
//! * Nothing is signed or encrypted: there is no `/.well-known/openid-federation`, no mTLS at
//!   PAR/token, and the token endpoint's `id_token` is the JSON claims object serialized as a
//!   string (not a JWE/JWS). [`Idps::redeem`] hands the relying party the claims directly.
//! * The registered client is not checked against a federation; any `client_id` may push a
//!   request, but the redirect URI must be the FdV's registered [`REDIRECT_URI`].
//! * The authorization URL is matched by its path (`/idp/{slug}/auth`) and query, so a URL that
//!   reached the sandbox as `localhost` instead of `127.0.0.1` still works.
//! * The status endpoint hands the redirect URI (with the code) to anyone who knows the
//!   `request_uri`; that is how the desktop page learns about the phone's approval.

mod codec;
mod http;
mod pages;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use epa_protocol::kvnr::Kvnr;

use crate::clock::Clock;
use crate::seed::{InsurantSeed, Seed};

pub use codec::{
    b64url_decode, b64url_encode, form_decode, form_encode, hex, parse_form, pct_encode, s256,
};

/// `oid_versicherter`: the profession claim of an insurant.
pub const PROFESSION_VERSICHERTER: &str = "1.2.276.0.76.4.49";
/// The FdV's registered redirect URI.
pub const REDIRECT_URI: &str = "epa-desktop://auth/callback";
/// The redirect URIs a PAR may name.
pub const REGISTERED_REDIRECT_URIS: &[&str] = &[REDIRECT_URI];

/// `amr` of an approval with the GesundheitsID app.
pub const AMR_OTHER: &str = "urn:telematik:auth:other";
/// `amr` the relying party requests for the representative case (eGK + PIN as a guest).
pub const AMR_GUEST_EGK: &str = "urn:telematik:auth:guest:eGK";
/// The `amr` values a PAR may request (epa-protocol.md §3.4).
pub const AMR_VALUES: &[&str] = &[
    "urn:telematik:auth:eGK",
    "urn:telematik:auth:eID",
    AMR_GUEST_EGK,
    AMR_OTHER,
];
/// The `acr_values` the IDPs support.
pub const ACR_VALUES: &[&str] = &[
    "gematik-ehealth-loa-high",
    "gematik-ehealth-loa-substantial",
];

/// Lifetime of a `request_uri` for starting (PAR → `/auth` or approval).
pub const REQUEST_URI_TTL_S: u64 = 90;
/// How long approval stays possible after the `/auth` page was first opened.
pub const APPROVAL_WINDOW_S: u64 = 600;
/// Lifetime of an authorization code.
pub const CODE_TTL_S: u64 = 60;
/// Wrong GesundheitsID codes after which a request is dead.
pub const MAX_WRONG_CODES: u32 = 5;
/// `expires_in` of the token endpoint's tokens.
pub const TOKEN_TTL_S: u64 = 300;

/// A pushed authorization request (the form fields of `POST {issuer}/PAR_Auth`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParRequest {
    /// The relying party's client id (its URL in the TI federation).
    pub client_id: String,
    /// The relying party's opaque value, echoed in the redirect.
    pub state: String,
    /// Must be one of [`REGISTERED_REDIRECT_URIS`].
    pub redirect_uri: String,
    /// `BASE64URL(SHA256(code_verifier))`.
    pub code_challenge: String,
    /// Must be `S256`.
    pub code_challenge_method: String,
    /// Must be `code`.
    pub response_type: String,
    pub nonce: String,
    /// Space separated; must contain `openid` and `urn:telematik:versicherter`.
    pub scope: String,
    /// Space separated; must contain one of [`ACR_VALUES`].
    pub acr_values: String,
    /// One of [`AMR_VALUES`]; [`AMR_GUEST_EGK`] in the representative case.
    pub amr: Option<String>,
}

/// The answer to a PAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParResponse {
    /// `urn:<client_id>:<32 hex>`.
    pub request_uri: String,
    /// Seconds: [`REQUEST_URI_TTL_S`].
    pub expires_in: u64,
}

/// What the relying party learns about the authenticated insurant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    /// `urn:telematik:claims:id`.
    pub kvnr: String,
    /// `urn:telematik:claims:profession`: [`PROFESSION_VERSICHERTER`].
    pub profession_oid: String,
    pub given_name: String,
    pub family_name: String,
    /// `"{given_name} {family_name}"`.
    pub display_name: String,
    /// The `amr` the PAR asked for, or [`AMR_OTHER`] (GesundheitsID app) when it asked for none.
    pub amr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    #[error("no IDP with this issuer")]
    UnknownIssuer,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unknown, expired or already used authorization request")]
    UnknownRequest,
    #[error("wrong GesundheitsID code")]
    WrongCode,
    #[error("the KVNR is not an insurant of this IDP's insurer")]
    UnknownInsurant,
    #[error(
        "authorization code invalid (unknown, used, expired, or PKCE/client/redirect mismatch)"
    )]
    CodeInvalid,
    #[error("internal error: {0}")]
    Internal(String),
    /// The IDP is down (a control-API fault).
    #[error("the IDP is unavailable")]
    Unavailable,
}

/// One insurer's IDP.
#[derive(Debug, Clone)]
struct Idp {
    insurer: String,
    slug: String,
    issuer: String,
}

/// A pushed request waiting for (or after) approval.
#[derive(Debug)]
struct Pending {
    slug: String,
    par: ParRequest,
    created: u64,
    /// When the `/auth` page was first opened.
    opened: Option<u64>,
    wrong_codes: u32,
    approved: Option<Approved>,
}

#[derive(Debug)]
struct Approved {
    at: u64,
    redirect: String,
}

impl Pending {
    /// Until when (exclusive) the request may be opened or approved.
    fn usable_until(&self) -> u64 {
        match self.opened {
            Some(t) => t.saturating_add(APPROVAL_WINDOW_S),
            None => self.created.saturating_add(REQUEST_URI_TTL_S),
        }
    }

    /// Until when (exclusive) the request is remembered at all.
    fn kept_until(&self) -> u64 {
        let approved = self
            .approved
            .as_ref()
            .map_or(0, |a| a.at.saturating_add(CODE_TTL_S));
        self.usable_until().max(approved)
    }
}

/// An issued authorization code.
#[derive(Debug)]
struct Code {
    slug: String,
    par: ParRequest,
    kvnr: String,
    expires: u64,
}

#[derive(Debug, Default)]
struct State {
    /// By `request_uri`.
    requests: HashMap<String, Pending>,
    /// By code.
    codes: HashMap<String, Code>,
}

impl State {
    fn purge(&mut self, now: u64) {
        self.requests.retain(|_, p| now < p.kept_until());
        self.codes.retain(|_, c| now < c.expires);
    }
}

/// What the polling page learns (`GET {issuer}/auth/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStatus {
    pub approved: bool,
    pub redirect_uri: Option<String>,
}

/// The IDPs of all seeded insurers plus the ident app.
pub struct Idps {
    portal_base: String,
    idps: Vec<Idp>,
    insurants: HashMap<String, InsurantSeed>,
    clock: Arc<Clock>,
    state: Mutex<State>,
    /// Control-API fault: every IDP endpoint answers 503, PAR and redemption fail.
    down: AtomicBool,
}

impl std::fmt::Debug for Idps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idps")
            .field("portal_base", &self.portal_base)
            .field("idps", &self.idps.len())
            .finish_non_exhaustive()
    }
}

impl Idps {
    /// One IDP per insurer of `seed`; `portal_base` like `https://127.0.0.1:4431` (a trailing
    /// slash is ignored). Insurers sharing an `idp` slug share the first one's IDP.
    pub fn new(portal_base: &str, seed: &Seed, clock: Arc<Clock>) -> Arc<Self> {
        let portal_base = portal_base.trim_end_matches('/').to_owned();
        let mut idps: Vec<Idp> = Vec::new();
        for insurer in &seed.insurers {
            if idps.iter().any(|i| i.slug == insurer.idp) {
                tracing::warn!(
                    slug = %insurer.idp,
                    insurer = %insurer.name,
                    "IDP slug used twice; ignoring the second"
                );
                continue;
            }
            idps.push(Idp {
                insurer: insurer.name.clone(),
                slug: insurer.idp.clone(),
                issuer: format!("{portal_base}/idp/{}", insurer.idp),
            });
        }
        let insurants = seed
            .insurants
            .iter()
            .map(|p| (p.kvnr.clone(), p.clone()))
            .collect();
        Arc::new(Self {
            portal_base,
            idps,
            insurants,
            clock,
            state: Mutex::new(State::default()),
            down: AtomicBool::new(false),
        })
    }

    /// Takes the IDPs (and the ident app) down or brings them back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn check_up(&self) -> Result<(), IdpError> {
        if self.is_down() {
            tracing::warn!(rule = "IDP down (control API fault)", "IDP request refused");
            return Err(IdpError::Unavailable);
        }
        Ok(())
    }

    /// (insurer name, issuer URL) for every IDP, in seed order.
    pub fn issuers(&self) -> Vec<(String, String)> {
        self.idps
            .iter()
            .map(|i| (i.insurer.clone(), i.issuer.clone()))
            .collect()
    }

    /// `{portal_base}/ident`: the virtual ident app (`POST …/approve`, `GET …` for humans).
    pub fn ident_app_url(&self) -> String {
        format!("{}/ident", self.portal_base)
    }

    /// Pushed authorization request (RFC 9126), validated like the reference IDP does.
    pub fn par(&self, issuer: &str, req: ParRequest) -> Result<ParResponse, IdpError> {
        self.check_up()?;
        let idp = self.by_issuer(issuer)?;
        validate_par(&req)?;
        let request_uri = format!("urn:{}:{}", req.client_id, codec::hex(&random::<16>()?));
        let now = self.clock.now_unix();
        let mut state = self.state();
        state.purge(now);
        state.requests.insert(
            request_uri.clone(),
            Pending {
                slug: idp.slug.clone(),
                par: req,
                created: now,
                opened: None,
                wrong_codes: 0,
                approved: None,
            },
        );
        tracing::debug!(issuer = %idp.issuer, %request_uri, "PAR accepted");
        Ok(ParResponse {
            request_uri,
            expires_in: REQUEST_URI_TTL_S,
        })
    }

    /// `{issuer}/auth?client_id=<pct>&request_uri=<pct>`: the URL the FdV opens (and the QR
    /// payload of the `/auth` page).
    pub fn authorization_url(&self, issuer: &str, client_id: &str, request_uri: &str) -> String {
        format!(
            "{}/auth?{}",
            issuer.trim_end_matches('/'),
            form_encode(&[("client_id", client_id), ("request_uri", request_uri)])
        )
    }

    /// Redeems an authorization code (the token endpoint): one-time, within 60 s, PKCE S256, and
    /// `client_id`/`redirect_uri` equal to the PAR's.
    pub fn redeem(
        &self,
        issuer: &str,
        code: &str,
        code_verifier: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<IdClaims, IdpError> {
        self.redeem_with_par(issuer, code, code_verifier, client_id, redirect_uri)
            .map(|(claims, _)| claims)
    }

    /// [`Self::redeem`], also returning the PAR (for `nonce` and `acr` of the token endpoint).
    fn redeem_with_par(
        &self,
        issuer: &str,
        code: &str,
        code_verifier: &str,
        client_id: &str,
        redirect_uri: &str,
    ) -> Result<(IdClaims, ParRequest), IdpError> {
        self.check_up()?;
        let idp = self.by_issuer(issuer)?;
        let now = self.clock.now_unix();
        let issued = {
            let mut state = self.state();
            state.purge(now);
            state.codes.remove(code).ok_or(IdpError::CodeInvalid)?
        };
        let refuse = |why: &str| {
            tracing::debug!(issuer = %idp.issuer, why, "code redemption refused");
            Err(IdpError::CodeInvalid)
        };
        if issued.slug != idp.slug {
            return refuse("code of another IDP");
        }
        if issued.par.client_id != client_id {
            return refuse("client_id differs from the PAR's");
        }
        if issued.par.redirect_uri != redirect_uri {
            return refuse("redirect_uri differs from the PAR's");
        }
        if !codec::is_code_verifier(code_verifier)
            || codec::s256(code_verifier) != issued.par.code_challenge
        {
            return refuse("PKCE verification failed");
        }
        let insurant = self
            .insurants
            .get(&issued.kvnr)
            .ok_or_else(|| IdpError::Internal("approved insurant vanished".into()))?;
        Ok((claims_of(insurant, &issued.par), issued.par))
    }

    /// The phone approving `authorization_url` (the `Location` or the QR payload) for `kvnr` with
    /// its GesundheitsID code. Returns `{redirect_uri}?code=…&state=…`.
    pub fn approve(
        &self,
        authorization_url: &str,
        kvnr: &str,
        gesundheitsid_code: &str,
    ) -> Result<String, IdpError> {
        self.check_up()?;
        let target = self.parse_authorization_url(authorization_url)?;
        let kvnr = Kvnr::parse(kvnr.trim())
            .map_err(|e| IdpError::Malformed(format!("KVNR: {e}")))?
            .as_str()
            .to_owned();
        let code_given = gesundheitsid_code.trim();
        if code_given.len() != 6 || !code_given.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdpError::Malformed(
                "the GesundheitsID code has 6 digits".into(),
            ));
        }
        let idp = self.by_slug(&target.slug)?;
        let now = self.clock.now_unix();
        let mut state = self.state();
        state.purge(now);
        let pending = state
            .requests
            .get_mut(&target.request_uri)
            .filter(|p| p.slug == idp.slug && p.par.client_id == target.client_id)
            .filter(|p| p.approved.is_none() && now < p.usable_until())
            .ok_or(IdpError::UnknownRequest)?;
        let insurant = self
            .insurants
            .get(&kvnr)
            .filter(|p| p.insurer == idp.insurer)
            .ok_or(IdpError::UnknownInsurant)?;
        if insurant.gesundheitsid_code != code_given {
            pending.wrong_codes += 1;
            tracing::debug!(
                request_uri = %target.request_uri,
                wrong_codes = pending.wrong_codes,
                "wrong GesundheitsID code"
            );
            if pending.wrong_codes >= MAX_WRONG_CODES {
                state.requests.remove(&target.request_uri);
            }
            return Err(IdpError::WrongCode);
        }
        let code = codec::b64url_encode(&random::<32>()?);
        let sep = if pending.par.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        let redirect = format!(
            "{}{sep}{}",
            pending.par.redirect_uri,
            form_encode(&[("code", &code), ("state", &pending.par.state)])
        );
        pending.approved = Some(Approved {
            at: now,
            redirect: redirect.clone(),
        });
        let issued = Code {
            slug: idp.slug.clone(),
            par: pending.par.clone(),
            kvnr,
            expires: now.saturating_add(CODE_TTL_S),
        };
        state.codes.insert(code, issued);
        tracing::info!(issuer = %idp.issuer, "authorization request approved");
        Ok(redirect)
    }

    /// The `/auth` page was opened: checks the request and starts its 10-minute approval window.
    fn open(&self, slug: &str, client_id: &str, request_uri: &str) -> Result<AuthStatus, IdpError> {
        let now = self.clock.now_unix();
        let mut state = self.state();
        state.purge(now);
        let pending = state
            .requests
            .get_mut(request_uri)
            .filter(|p| p.slug == slug && p.par.client_id == client_id)
            .ok_or(IdpError::UnknownRequest)?;
        if pending.approved.is_none() && now >= pending.usable_until() {
            return Err(IdpError::UnknownRequest);
        }
        pending.opened.get_or_insert(now);
        Ok(status_of(pending))
    }

    /// Whether the request was approved, for the polling page.
    pub fn status(&self, issuer: &str, request_uri: &str) -> Result<AuthStatus, IdpError> {
        let idp = self.by_issuer(issuer)?;
        self.status_by_slug(&idp.slug, request_uri)
    }

    fn status_by_slug(&self, slug: &str, request_uri: &str) -> Result<AuthStatus, IdpError> {
        let now = self.clock.now_unix();
        let mut state = self.state();
        state.purge(now);
        state
            .requests
            .get(request_uri)
            .filter(|p| p.slug == slug)
            .map(status_of)
            .ok_or(IdpError::UnknownRequest)
    }

    fn parse_authorization_url(&self, url: &str) -> Result<AuthTarget, IdpError> {
        let url = url.trim();
        let bad = || IdpError::Malformed("not an authorization URL of this sandbox's IDPs".into());
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let path_and_query = &rest[rest.find('/').ok_or_else(bad)?..];
        let path_and_query = path_and_query.split('#').next().unwrap_or_default();
        let (path, query) = path_and_query.split_once('?').ok_or_else(bad)?;
        let slug = path
            .strip_prefix("/idp/")
            .and_then(|p| p.strip_suffix("/auth"))
            .filter(|s| !s.is_empty() && !s.contains('/'))
            .ok_or_else(bad)?;
        let params = parse_form(query).map_err(|e| IdpError::Malformed(e.to_string()))?;
        let get = |name: &str| {
            params
                .get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| IdpError::Malformed(format!("authorization URL without {name}")))
        };
        Ok(AuthTarget {
            slug: slug.to_owned(),
            client_id: get("client_id")?,
            request_uri: get("request_uri")?,
        })
    }

    fn by_issuer(&self, issuer: &str) -> Result<&Idp, IdpError> {
        let issuer = issuer.trim_end_matches('/');
        self.idps
            .iter()
            .find(|i| i.issuer == issuer)
            .ok_or(IdpError::UnknownIssuer)
    }

    fn by_slug(&self, slug: &str) -> Result<&Idp, IdpError> {
        self.idps
            .iter()
            .find(|i| i.slug == slug)
            .ok_or(IdpError::UnknownIssuer)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The parts of an authorization URL the IDP needs.
#[derive(Debug)]
struct AuthTarget {
    slug: String,
    client_id: String,
    request_uri: String,
}

fn status_of(p: &Pending) -> AuthStatus {
    AuthStatus {
        approved: p.approved.is_some(),
        redirect_uri: p.approved.as_ref().map(|a| a.redirect.clone()),
    }
}

fn claims_of(insurant: &InsurantSeed, par: &ParRequest) -> IdClaims {
    IdClaims {
        kvnr: insurant.kvnr.clone(),
        profession_oid: PROFESSION_VERSICHERTER.to_owned(),
        given_name: insurant.given_name.clone(),
        family_name: insurant.family_name.clone(),
        display_name: format!("{} {}", insurant.given_name, insurant.family_name),
        amr: par.amr.clone().unwrap_or_else(|| AMR_OTHER.to_owned()),
    }
}

/// Checks a PAR like the reference IDP's request validator.
fn validate_par(req: &ParRequest) -> Result<(), IdpError> {
    let bad = |m: &str| Err(IdpError::Malformed(m.to_owned()));
    let printable = |s: &str| s.bytes().all(|b| (0x21..0x7f).contains(&b));
    if req.client_id.is_empty() || !printable(&req.client_id) || req.client_id.len() > 512 {
        return bad("client_id missing or not a printable ASCII string");
    }
    if req.state.is_empty() || req.state.len() > 512 || req.state.chars().any(char::is_control) {
        return bad("state missing, too long, or with control characters");
    }
    if !REGISTERED_REDIRECT_URIS.contains(&req.redirect_uri.as_str()) {
        return bad("redirect_uri is not registered for this client");
    }
    if req.response_type != "code" {
        return bad("response_type must be code");
    }
    if req.code_challenge_method != "S256" {
        return bad("code_challenge_method must be S256");
    }
    if !codec::is_s256_challenge(&req.code_challenge) {
        return bad("code_challenge must be BASE64URL(SHA256(code_verifier)) (43 characters)");
    }
    if req.nonce.is_empty() || req.nonce.len() > 512 || !printable(&req.nonce) {
        return bad("nonce missing or not a printable ASCII string");
    }
    let scopes: Vec<&str> = req.scope.split(' ').filter(|s| !s.is_empty()).collect();
    for needed in ["openid", "urn:telematik:versicherter"] {
        if !scopes.contains(&needed) {
            return Err(IdpError::Malformed(format!("scope must contain {needed}")));
        }
    }
    if !req.acr_values.split(' ').any(|a| ACR_VALUES.contains(&a)) {
        return bad(
            "acr_values must contain gematik-ehealth-loa-high or gematik-ehealth-loa-substantial",
        );
    }
    if let Some(amr) = &req.amr
        && !AMR_VALUES.contains(&amr.as_str())
    {
        return bad("amr is not a supported authentication method");
    }
    Ok(())
}

fn random<const N: usize>() -> Result<[u8; N], IdpError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| IdpError::Internal(format!("random generator: {e}")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests;
