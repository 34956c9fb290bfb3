//! One simulated Aktensystem: its records, the Information Service and the VAU endpoint
//! (`POST /VAU`, `POST <VAU-CID>`, `GET /CertData.<hash>-<cdv>`) on the server side of
//! `epa-protocol`, with PU flag 0. Inner requests go to an inner router that the record
//! services (authorization, devices, documents, …) add their routes to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use epa_protocol::http::{Limits, parse_request};
use epa_protocol::pki::{CertData, TestPki, VauSigner};
use epa_protocol::vau::messages::{encode_error, encode_restart};
use epa_protocol::vau::{Environment, ServerAwaitingM3, ServerChannel, VauError, VauServerKeys};
use futures_util::StreamExt;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tower::ServiceExt;

use crate::authz::ChannelSession;
use crate::clock::Clock;
use crate::control::FaultPlan;
use crate::info;
use crate::seed::RecordStatus;
use crate::services::{Record, RecordServices};

/// VAU server keys are renewed this often (the signed lifetime is a week; OCSP must stay < 24 h).
const KEY_RENEWAL_S: u64 = 12 * 3600;
const KEY_LIFETIME_S: u64 = 7 * 24 * 3600;
const CDV: u64 = 1;
/// Largest outer request body: the repository's document limit, base64-sized, plus framing.
const OUTER_BODY_LIMIT: usize =
    (crate::xds::DEFAULT_MAX_DOCUMENT_BYTES as usize) / 3 * 4 + 4 * 1024 * 1024;

/// Faults a test can switch on.
#[derive(Debug, Default)]
pub struct Faults {
    /// The next data request is answered with a VAU `Restart` and the channel is forgotten.
    pub restart_next: AtomicBool,
}

struct Keys {
    made_at: u64,
    keys: Arc<VauServerKeys>,
}

enum ChannelState {
    Handshaking(ServerAwaitingM3, Arc<VauServerKeys>),
    Open(ServerChannel, Arc<ChannelSession>),
    /// A request of this channel is being answered (the session stays reachable for faults).
    Busy(Arc<ChannelSession>),
}

pub struct Aktensystem {
    pub id: String,
    pub host: String,
    pub relaxed_useragent: bool,
    pub faults: Faults,
    /// Control-API faults shared by all Aktensysteme (latency, 5xx, idle timeout).
    pub plan: Arc<FaultPlan>,
    pub services: Arc<RecordServices>,
    clock: Arc<Clock>,
    pki: Arc<TestPki>,
    signer: VauSigner,
    cert_data: Vec<u8>,
    cert_path: String,
    keys: Mutex<Option<Keys>>,
    channels: Mutex<HashMap<String, ChannelState>>,
    rng: Mutex<ChaCha20Rng>,
    inner: axum::Router,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A CBOR VAU error reply with the status of the error catalogue (epa-protocol.md §2.11).
fn vau_error(e: &VauError) -> Response {
    tracing::warn!(error = %e, "VAU request refused");
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    cbor(
        status,
        encode_error(i64::from(e.http_status()), &e.to_string()),
    )
}

fn cbor(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [("content-type", "application/cbor")], body).into_response()
}

fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl Aktensystem {
    pub fn new(
        id: &str,
        host: &str,
        services: Arc<RecordServices>,
        pki: Arc<TestPki>,
        mut rng: ChaCha20Rng,
        inner: axum::Router,
        plan: Arc<FaultPlan>,
    ) -> Arc<Self> {
        // One clock for the whole sandbox: the record services'.
        let clock = Arc::clone(&services.clock);
        let signer = pki.issue_vau_signer(&mut rng, clock.now_unix(), true);
        let cert_data = CertData {
            cert: signer.cert_der.clone(),
            ca: pki.ca_der().to_vec(),
            rca_chain: vec![],
        }
        .to_cbor();
        let cert_path = epa_protocol::pki::cert_data_path(&signer.cert_hash(), CDV);
        Arc::new(Self {
            id: id.to_owned(),
            host: host.to_owned(),
            relaxed_useragent: false,
            faults: Faults::default(),
            plan,
            services,
            clock,
            pki,
            signer,
            cert_data,
            cert_path,
            keys: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
            rng: Mutex::new(rng),
            inner,
        })
    }

    /// Ends the user session of every channel (control API); how many were active.
    pub fn drop_user_sessions(&self) -> usize {
        let channels = lock(&self.channels);
        let mut n = 0;
        for state in channels.values() {
            if let ChannelState::Open(_, s) | ChannelState::Busy(s) = state
                && s.is_active()
            {
                s.drop_session();
                n += 1;
            }
        }
        n
    }

    pub fn record(&self, kvnr: &str) -> Option<Record> {
        self.services.records.get(kvnr)
    }

    pub fn record_status(&self, kvnr: &str) -> Option<RecordStatus> {
        self.record(kvnr).map(|r| r.status)
    }

    /// The signed keys in force; renewed (with a fresh OCSP response) when they get old.
    fn current_keys(&self) -> Result<Arc<VauServerKeys>, VauError> {
        let now = self.clock.now_unix();
        let mut k = lock(&self.keys);
        if let Some(keys) = k.as_ref().filter(|k| now < k.made_at + KEY_RENEWAL_S) {
            return Ok(Arc::clone(&keys.keys));
        }
        let ocsp = self
            .pki
            .ocsp_response(&self.signer.cert_der, true, now.saturating_sub(60));
        let mut rng = lock(&self.rng);
        let comment = format!("VAU-Instanz {} (epa-sandbox)", self.id);
        let keys = Arc::new(VauServerKeys::generate(
            &mut *rng,
            &self.signer,
            CDV,
            ocsp,
            now.saturating_sub(60),
            now + KEY_LIFETIME_S,
            &comment,
        )?);
        *k = Some(Keys {
            made_at: now,
            keys: Arc::clone(&keys),
        });
        Ok(keys)
    }

    fn new_cid(&self) -> String {
        let mut raw = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut *lock(&self.rng), &mut raw);
        format!("/VAU/{}/{}", self.id, crate::idp::hex(&raw))
    }

    /// Outer router: Information Service + VAU.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let vau = axum::Router::new()
            .route("/VAU", post(m1))
            .route("/VAU/{*cid}", post(on_cid))
            .route("/{certdata}", get(cert_data))
            // axum's default (2 MB) would refuse sealed ITI-41 uploads long before the
            // repository's own document limit: allow that limit with room for base64 and framing.
            .layer(axum::extract::DefaultBodyLimit::max(OUTER_BODY_LIMIT))
            .with_state(Arc::clone(self));
        info::router(Arc::clone(self)).merge(vau)
    }

    /// Passes an inner HTTP request through the inner router (with the channel's session slot)
    /// and frames the answer.
    async fn dispatch_inner(&self, inner: &[u8], session: &Arc<ChannelSession>) -> InnerAnswer {
        let req = match parse_request(inner, &Limits::default()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "inner request is not valid HTTP/1.1");
                return epa_protocol::http::Response::new(400).into();
            }
        };
        let mut builder = axum::http::Request::builder()
            .method(req.method.as_str())
            .uri(&req.path);
        for (n, v) in &req.headers {
            builder = builder.header(n, v);
        }
        if let Some(r) = self.plan.before_inner(&self.id, &req.path).await {
            return r.into();
        }
        builder = builder.extension(Arc::clone(session));
        let Ok(http_req) = builder.body(Body::from(req.body)) else {
            return epa_protocol::http::Response::new(400).into();
        };
        let resp = match self.inner.clone().oneshot(http_req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.to_string(), v.to_owned())))
            .collect();
        // The body's pieces as the handler made them (a document is its stored buffer):
        // sealing copies each once.
        let mut chunks = Vec::new();
        let mut stream = resp.into_body().into_data_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            chunks.push(chunk);
        }
        let mut out = epa_protocol::http::Response::new(status);
        out.headers = headers;
        InnerAnswer { head: out, chunks }
    }
}

/// An inner answer: the status line and headers, and the body in pieces.
struct InnerAnswer {
    head: epa_protocol::http::Response,
    chunks: Vec<Bytes>,
}

impl From<epa_protocol::http::Response> for InnerAnswer {
    fn from(r: epa_protocol::http::Response) -> Self {
        let chunks = vec![r.body.clone()];
        InnerAnswer { head: r, chunks }
    }
}

impl InnerAnswer {
    /// Seals the answer as one inner HTTP response (framed by Content-Length).
    fn seal(&self, channel: &mut ServerChannel, counter: u64, rng: &mut ChaCha20Rng) -> Vec<u8> {
        let len = self.chunks.iter().map(Bytes::len).sum();
        let (head, with_body) = self.head.head_for(len);
        let mut parts: Vec<&[u8]> = vec![&head];
        if with_body {
            parts.extend(self.chunks.iter().map(|c| &c[..]));
        }
        channel.seal_response_parts(counter, &parts, rng)
    }
}

/// The outer requests carry `x-useragent` too; a missing or malformed one is a 400 VAU error.
fn outer_useragent_error(system: &Aktensystem, headers: &HeaderMap) -> Option<Response> {
    info::check_useragent(headers, system.relaxed_useragent)
        .err()
        .map(|rule| {
            vau_error(&VauError::BadField {
                field: "x-useragent",
                problem: rule.to_owned(),
            })
        })
}

async fn m1(State(system): State<Arc<Aktensystem>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = outer_useragent_error(&system, &headers) {
        return r;
    }
    if !content_type(&headers).starts_with("application/cbor") {
        return vau_error(&VauError::Cbor(
            "M1 needs Content-Type: application/cbor".into(),
        ));
    }
    let keys = match system.current_keys() {
        Ok(k) => k,
        Err(e) => return vau_error(&e),
    };
    let result = keys.receive_m1(&body, &mut *lock(&system.rng));
    match result {
        Ok((awaiting, m2)) => {
            let cid = system.new_cid();
            lock(&system.channels).insert(cid.clone(), ChannelState::Handshaking(awaiting, keys));
            let mut resp = cbor(StatusCode::OK, m2);
            if let Ok(v) = HeaderValue::from_str(&cid) {
                resp.headers_mut().insert("vau-cid", v);
            }
            resp
        }
        Err(e) => vau_error(&e),
    }
}

async fn on_cid(
    State(system): State<Arc<Aktensystem>>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = outer_useragent_error(&system, &headers) {
        return r;
    }
    let cid = format!("/VAU/{rest}");
    let state = {
        let mut channels = lock(&system.channels);
        match channels.get(&cid) {
            Some(ChannelState::Open(_, s)) => {
                let busy = ChannelState::Busy(Arc::clone(s));
                channels.insert(cid.clone(), busy)
            }
            Some(ChannelState::Busy(_)) => None,
            _ => channels.remove(&cid),
        }
    };
    match state {
        Some(ChannelState::Busy(_)) | None if lock(&system.channels).contains_key(&cid) => {
            tracing::warn!(%cid, "a second request while one is in flight");
            cbor(
                StatusCode::FORBIDDEN,
                encode_error(403, "one request at a time per VAU channel"),
            )
        }
        Some(ChannelState::Busy(_)) => {
            cbor(StatusCode::FORBIDDEN, encode_error(403, "unknown CID"))
        }
        None => {
            tracing::warn!(%cid, "unknown VAU-CID");
            cbor(StatusCode::FORBIDDEN, encode_error(403, "unknown CID"))
        }
        Some(ChannelState::Handshaking(awaiting, keys)) => {
            let result =
                awaiting.receive_m3(&keys, &body, Environment::Test, &mut *lock(&system.rng));
            match result {
                Ok((channel, m4)) => {
                    let session = Arc::new(ChannelSession::default());
                    lock(&system.channels).insert(cid, ChannelState::Open(channel, session));
                    cbor(StatusCode::OK, m4)
                }
                // A failed handshake leaves nothing behind.
                Err(e) => vau_error(&e),
            }
        }
        Some(ChannelState::Open(mut channel, session)) => {
            if system.faults.restart_next.swap(false, Ordering::SeqCst) {
                tracing::info!(%cid, "fault: answering Restart and forgetting the channel");
                lock(&system.channels).remove(&cid);
                return cbor(StatusCode::OK, encode_restart(channel.key_id()));
            }
            let opened = channel.open_request(&body);
            let response = match opened {
                Ok((counter, inner)) => {
                    session
                        .note_request(system.clock.now_unix(), system.plan.session_idle_timeout());
                    let answer = system.dispatch_inner(&inner, &session).await;
                    let sealed = answer.seal(&mut channel, counter, &mut lock(&system.rng));
                    (
                        StatusCode::OK,
                        [("content-type", "application/octet-stream")],
                        sealed,
                    )
                        .into_response()
                }
                Err(e) => vau_error(&e),
            };
            lock(&system.channels).insert(cid, ChannelState::Open(channel, session));
            response
        }
    }
}

async fn cert_data(State(system): State<Arc<Aktensystem>>, Path(seg): Path<String>) -> Response {
    if format!("/{seg}") == system.cert_path {
        cbor(StatusCode::OK, system.cert_data.clone())
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// Makes each Aktensystem's channel RNG from one seed, so a seeded sandbox is deterministic.
pub fn rng_for(seed: [u8; 32], index: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::from_seed(seed);
    rng.set_stream(index);
    rng
}
