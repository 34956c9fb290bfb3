//! Shared by the sandbox suites: an in-process sandbox, HTTPS with its CA, VAU channels through
//! epa-protocol's client, and logins through the ident app — the way the daemon will do them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod xds;

use epa_protocol::http::{Limits, Request, Response, parse_response};
use epa_protocol::pki::{CertData, CertVerification};
use epa_protocol::vau::{ClientChannel, ClientHandshake, Environment, VauError};
use epa_sandbox::devices::Device;
use epa_sandbox::seed::Seed;
use epa_sandbox::server::{Options, Sandbox};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const UA: &str = "EPADESKTOP0123456789/0.1.0";
pub const MARIA: &str = "X110411675";
pub const MARIA_CODE: &str = "428193";

pub fn client(ca_pem: &str) -> reqwest::Client {
    epa_sandbox::tls::install_crypto_provider();
    let config = epa_sandbox::tls::client_config(ca_pem).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

pub struct Env {
    pub s: Sandbox,
    pub http: reqwest::Client,
    anchor: Vec<u8>,
    seed: u8,
}

/// One VAU channel (with whatever user session it carries).
pub struct Channel {
    http: reqwest::Client,
    pub url: String,
    host: String,
    ch: ClientChannel,
    rng: ChaCha20Rng,
}

impl Env {
    pub async fn start() -> Self {
        Self::with_seed(Seed::default_seed().unwrap()).await
    }

    pub async fn with_seed(seed: Seed) -> Self {
        Self::with_options(seed, None).await
    }

    /// A sandbox that keeps its state in `dir` (and picks it up again from there).
    pub async fn in_state_dir(dir: &std::path::Path) -> Self {
        Self::with_options(Seed::default_seed().unwrap(), Some(dir.to_owned())).await
    }

    async fn with_options(seed: Seed, state_dir: Option<std::path::PathBuf>) -> Self {
        let s = Sandbox::start(Options {
            state_dir,
            seed,
            bind: "127.0.0.1".parse().unwrap(),
            rng_seed: Some([3; 32]),
        })
        .await
        .unwrap();
        let http = client(&std::fs::read_to_string(&s.ready.ca_cert).unwrap());
        let anchor = std::fs::read(&s.ready.vau_trust_anchor).unwrap();
        Self {
            s,
            http,
            anchor,
            seed: 0,
        }
    }

    pub fn base(&self, system: &str) -> String {
        self.s
            .ready
            .aktensysteme
            .iter()
            .find(|a| a.id == system)
            .unwrap()
            .base_url
            .clone()
    }

    /// The Aktensystem that holds `kvnr`'s record (epa-as-1 for insurants without one).
    pub fn system_of(&self, kvnr: &str) -> String {
        self.s
            .aktensysteme
            .iter()
            .find(|a| a.record(kvnr).is_some())
            .map_or_else(|| "epa-as-1".to_owned(), |a| a.id.clone())
    }

    pub fn issuer_of(&self, kvnr: &str) -> String {
        let insurer = &self
            .s
            .ready
            .insurants
            .iter()
            .find(|i| i.kvnr == kvnr)
            .unwrap()
            .insurer;
        self.s
            .ready
            .idps
            .iter()
            .find(|i| &i.insurer == insurer)
            .unwrap()
            .issuer
            .clone()
    }

    pub fn gesundheitsid_code(&self, kvnr: &str) -> String {
        self.s
            .ready
            .insurants
            .iter()
            .find(|i| i.kvnr == kvnr)
            .unwrap()
            .gesundheitsid_code
            .clone()
    }

    /// A VAU handshake over HTTPS, strict certificate check against the sandbox's VAU root.
    pub async fn channel(&mut self, system: &str) -> Channel {
        self.seed = self.seed.wrapping_add(1);
        let mut rng = ChaCha20Rng::from_seed([self.seed; 32]);
        let base = self.base(system);
        let hs = ClientHandshake::start(&mut rng);
        let r = self
            .http
            .post(format!("{base}/VAU"))
            .header("x-useragent", UA)
            .header("content-type", "application/cbor")
            .body(hs.m1().to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let cid = r.headers()["vau-cid"].to_str().unwrap().to_owned();
        let awaiting = hs.receive_m2(&r.bytes().await.unwrap()).unwrap();
        let cert = self
            .http
            .get(format!("{base}{}", awaiting.cert_data_path()))
            .send()
            .await
            .unwrap();
        let cert = CertData::from_cbor(&cert.bytes().await.unwrap()).unwrap();
        let now = self.s.clock.now_unix();
        let mode = CertVerification::Strict {
            trusted_roots: vec![self.anchor.clone()],
            now_unix: now,
        };
        let (awaiting, m3) = awaiting.finish(&cert, &mode, now, &mut rng).unwrap();
        let r = self
            .http
            .post(format!("{base}{cid}"))
            .header("x-useragent", UA)
            .header("content-type", "application/cbor")
            .body(m3)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let ch = awaiting
            .receive_m4(&r.bytes().await.unwrap(), Environment::Test)
            .unwrap();
        Channel {
            http: self.http.clone(),
            url: format!("{base}{cid}"),
            host: format!("{system}.sandbox.local"),
            ch,
            rng,
        }
    }

    /// The start of a login on a fresh channel to `kvnr`'s Aktensystem: the channel and the
    /// authorization URL for the ident app (`representative`: the "authorize representative"
    /// mode).
    pub async fn start_login(&mut self, kvnr: &str, representative: bool) -> (Channel, String) {
        let system = self.system_of(kvnr);
        let issuer = self.issuer_of(kvnr);
        let mut ch = self.channel(&system).await;
        let mut req = Request::get("/epa/authz/v1/send_authorization_request_fdv")
            .header("x-useragent", UA)
            .header("x-idp-iss", &issuer);
        if representative {
            req = req.header("x-authorize-representative", "true");
        }
        let r = ch.send(&req).await;
        assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
        let location = r.header("location").unwrap().to_owned();
        (ch, location)
    }

    /// The rest of a login started with [`Self::start_login`]: the ident app approves, the
    /// authorization code goes to `send_authcode_fdv` (with the device headers, if any).
    /// Returns the raw answer.
    pub async fn finish_login(
        &self,
        ch: &mut Channel,
        kvnr: &str,
        location: &str,
        device: Option<(&str, &str)>,
    ) -> Response {
        let code = self.gesundheitsid_code(kvnr);
        let v: serde_json::Value = self
            .http
            .post(format!("{}/approve", self.s.ready.ident_app))
            .json(&serde_json::json!({"authorization_url": location, "kvnr": kvnr, "gesundheitsid_code": code}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let redirect = v["redirect_uri"].as_str().unwrap().to_owned();
        let code = query_param(&redirect, "code").unwrap();
        let mut req = Request::post(
            "/epa/authz/v1/send_authcode_fdv",
            "application/json",
            serde_json::to_vec(&serde_json::json!({"authorizationCode": code})).unwrap(),
        )
        .header("x-useragent", UA);
        if let Some((id, token)) = device {
            req = req
                .header("x-device-identifier", id)
                .header("x-device-token", token);
        }
        ch.send(&req).await
    }

    /// The ident-app login on a fresh channel; `device` = (identifier, token) headers or none.
    /// Returns the channel and the raw `send_authcode_fdv` answer.
    pub async fn try_login(
        &mut self,
        kvnr: &str,
        device: Option<(&str, &str)>,
    ) -> (Channel, Response) {
        let (mut ch, location) = self.start_login(kvnr, false).await;
        let r = self.finish_login(&mut ch, kvnr, &location, device).await;
        (ch, r)
    }

    /// The ident-app login in the "authorize representative" mode (no device headers); panics
    /// when it fails.
    pub async fn representative_login(&mut self, kvnr: &str) -> Channel {
        let (mut ch, location) = self.start_login(kvnr, true).await;
        let r = self.finish_login(&mut ch, kvnr, &location, None).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        ch
    }

    /// A logged-in channel; panics when the login fails.
    pub async fn login(&mut self, kvnr: &str, device: Option<(&str, &str)>) -> Channel {
        let (ch, r) = self.try_login(kvnr, device).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        ch
    }

    /// A full session without going through Device Management: a confirmed device is put into
    /// the registry directly (for suites about other services).
    pub async fn full_session(&mut self, kvnr: &str) -> Channel {
        let system = self.system_of(kvnr);
        let id = format!("{:08x}-0000-4000-8000-{:012x}", u32::from(self.seed) + 1, 7);
        let token = "5a".repeat(32);
        self.s
            .aktensystem(&system)
            .unwrap()
            .services
            .devices
            .insert(
                kvnr,
                Device::confirmed(
                    &id,
                    &token,
                    &format!("test device {id}"),
                    self.s.clock.now_unix(),
                ),
            );
        self.login(kvnr, Some((&id, &token))).await
    }
}

impl Channel {
    /// Requests sent on this channel so far.
    pub fn counter(&self) -> u64 {
        self.ch.counter()
    }

    /// Seals bytes as the next request without sending them (replay and framing tests).
    pub fn seal_raw(&mut self, plain: &[u8]) -> Vec<u8> {
        self.ch.seal_request(plain, &mut self.rng).unwrap()
    }

    /// Sends one inner request; a VAU-level error (Restart, …) comes back as `Err`.
    pub async fn try_send(&mut self, inner: &Request) -> Result<Response, VauError> {
        let body = self
            .ch
            .seal_request(&inner.to_bytes(&self.host).unwrap(), &mut self.rng)
            .unwrap();
        let r = self
            .http
            .post(&self.url)
            .header("x-useragent", UA)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let plain = self
            .ch
            .open_response(ct.as_deref(), &r.bytes().await.unwrap())?;
        Ok(parse_response(&plain, &Limits::default()).unwrap())
    }

    pub async fn send(&mut self, inner: &Request) -> Response {
        self.try_send(inner).await.unwrap()
    }

    /// Sends and parses a JSON body (whatever the status).
    pub async fn json(&mut self, inner: &Request) -> (u16, serde_json::Value) {
        let r = self.send(inner).await;
        let v = if r.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
        };
        (r.status, v)
    }
}

/// A query parameter of a URL, percent-decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| epa_sandbox::idp::form_decode(v).unwrap())
    })
}
