//! Full ePA login through the daemon against the sandbox, without the human steps: StartLogin
//! (locate the record, VAU handshake, sendAuthorizationRequestFdV, QR code) plus CompleteLogin
//! (sendAuthCodeFdV with the confirmed device) — the ident app's approval is not timed.
//! Also the VAU handshake's share. Target: < 500 ms wall per login.
//!
//! `cargo bench -p epa-tests --bench login`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use epa_daemon::backend::{VauClient, VauTarget, tls};
use epa_daemon::store::crypto::KdfParams;
use epa_daemon::{CUSTOM_ENVIRONMENT, Config};
use epa_ipc::types::EpaPhase;
use epa_ipc::{DaemonClient, Endpoint};
use epa_protocol::http::Request;
use epa_protocol::vau::Environment;
use epa_sandbox::seed::Seed;
use epa_sandbox::server::{Options, Sandbox};

const TARGET: Duration = Duration::from_millis(500);
const ROUNDS: usize = 20;
const KVNR: &str = "X110411675";
const INSURER: &str = "AOK PLUS";
const CODE: &str = "428193";
const EMAIL: &str = "maria.muster@example.invalid";

fn stats(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (p(0.0), p(0.5), p(0.9))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Phone {
    http: reqwest::Client,
    ident_app: String,
    mail_api: String,
}

impl Phone {
    async fn approve(&self, url: &str) -> String {
        let r = self
            .http
            .post(format!("{}/approve", self.ident_app))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"authorization_url": url, "kvnr": KVNR, "gesundheitsid_code": CODE})
                    .to_string(),
            )
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        v["redirect_uri"].as_str().unwrap().to_owned()
    }

    async fn code(&self) -> String {
        let r = self
            .http
            .get(format!("{}/messages?to={EMAIL}", self.mail_api))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find_map(|m| {
                m["text"]
                    .as_str()?
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Bestätigungscode:"))
                    .map(|c| c.trim().to_owned())
            })
            .unwrap()
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let sandbox = Sandbox::start(Options {
        state_dir: None,
        seed: Seed::default_seed().unwrap(),
        bind: "127.0.0.1".parse().unwrap(),
        rng_seed: None,
    })
    .await
    .unwrap();
    let ready = &sandbox.ready;
    let dir = tempfile::tempdir().unwrap();
    // The sandbox as a `custom` environment: the daemon sees only URLs, CA and trust anchors.
    let env_file = dir.path().join("environment.json");
    std::fs::write(
        &env_file,
        serde_json::json!({
            "name": "bench",
            "aktensysteme": ready.aktensysteme.iter().map(|a| serde_json::json!({"id": a.id, "base_url": a.base_url})).collect::<Vec<_>>(),
            "ca_cert": ready.ca_cert,
            "vau_trust_anchors": [ready.vau_trust_anchor],
            "idps": ready.idps.iter().map(|i| serde_json::json!({"insurer": i.insurer, "issuer": i.issuer})).collect::<Vec<_>>(),
        })
        .to_string(),
    )
    .unwrap();
    let endpoint = Endpoint::at(dir.path().join("run/epad.sock"));
    let mut config = Config::new(endpoint.clone(), dir.path().join("data"));
    config.environment = CUSTOM_ENVIRONMENT.into();
    config.environment_file = Some(env_file);
    config.kdf = KdfParams::TEST_ONLY;
    let bound = epa_daemon::bind(config).unwrap();
    let daemon = bound.daemon();
    let server = tokio::spawn(bound.serve());

    let ca = std::fs::read(&ready.ca_cert).unwrap();
    let phone = Phone {
        http: tls::http_client(&ca).unwrap(),
        ident_app: ready.ident_app.clone(),
        mail_api: ready.mail_api.clone(),
    };
    let c = DaemonClient::connect(&endpoint).await.unwrap();
    let password = epa_ipc::Password::new("korrekt Pferd Batterie".into());
    c.create_user("bench", &password).await.unwrap();
    let (token, _) = c.unlock("bench", &password).await.unwrap();
    let c = c.with_session(token);
    c.set_record_profile(INSURER, KVNR).await.unwrap();

    // Once, untimed: register and confirm this "PC".
    let s = c.start_login().await.unwrap();
    let link = phone.approve(&s.login.unwrap().authorization_url).await;
    assert_eq!(
        c.complete_login(&link).await.unwrap().phase,
        EpaPhase::DeviceCodeSent
    );
    let s = c.confirm_device(&phone.code().await).await.unwrap();
    let link = phone.approve(&s.login.unwrap().authorization_url).await;
    assert_eq!(
        c.complete_login(&link).await.unwrap().phase,
        EpaPhase::LoggedIn
    );

    let mut logins = Vec::new();
    let mut starts = Vec::new();
    for _ in 0..ROUNDS {
        c.epa_logout().await.unwrap();
        let t0 = Instant::now();
        let s = c.start_login().await.unwrap();
        let start = t0.elapsed();
        let link = phone.approve(&s.login.unwrap().authorization_url).await;
        let t1 = Instant::now();
        let s = c.complete_login(&link).await.unwrap();
        let complete = t1.elapsed();
        assert_eq!(s.phase, EpaPhase::LoggedIn);
        starts.push(start);
        logins.push(start + complete);
    }

    // The handshake's share: a fresh channel's first request minus a request on an open one.
    let a = ready
        .aktensysteme
        .iter()
        .find(|a| a.id == "epa-as-1")
        .unwrap();
    let ua = format!("{}/0.1.0", epa_daemon::session::CLIENT_ID);
    let issuer = ready
        .idps
        .iter()
        .find(|i| i.insurer == INSURER)
        .unwrap()
        .issuer
        .clone();
    let req = Request::get("/epa/authz/v1/send_authorization_request_fdv")
        .header("x-useragent", ua.as_str())
        .header("x-idp-iss", issuer.as_str());
    let mut handshakes = Vec::new();
    for _ in 0..ROUNDS {
        let vau = VauClient::new(
            tls::http_client(&ca).unwrap(),
            VauTarget {
                base_url: a.base_url.clone(),
                trusted_roots: vec![std::fs::read(&ready.vau_trust_anchor).unwrap()],
                environment: Environment::Test,
                user_agent: ua.clone(),
            },
        );
        let t0 = Instant::now();
        vau.send(&req).await.unwrap();
        let first = t0.elapsed();
        let t1 = Instant::now();
        vau.send(&req).await.unwrap();
        handshakes.push(first.saturating_sub(t1.elapsed()));
    }

    let (lmin, lmed, lp90) = stats(logins);
    let (_, smed, _) = stats(starts);
    let (_, hmed, _) = stats(handshakes);
    println!("ePA login via epad against the sandbox, {ROUNDS} rounds (human steps excluded):");
    println!(
        "  full login (StartLogin + CompleteLogin): min {:.1} ms, median {:.1} ms, p90 {:.1} ms (target < {} ms)",
        ms(lmin),
        ms(lmed),
        ms(lp90),
        TARGET.as_millis()
    );
    println!(
        "  of which StartLogin (locate, handshake, authorization request, QR): median {:.1} ms",
        ms(smed)
    );
    println!(
        "  VAU handshake (M1..M4 incl. CertData): median {:.1} ms = {:.0}% of the median login",
        ms(hmed),
        100.0 * hmed.as_secs_f64() / lmed.as_secs_f64().max(f64::EPSILON)
    );
    println!(
        "  {}",
        if lp90 < TARGET {
            "target met"
        } else {
            "TARGET MISSED"
        }
    );
    daemon.request_shutdown();
    let _ = server.await;
    sandbox.shutdown().await;
}
