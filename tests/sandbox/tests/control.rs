//! The control API (tests and demos only): clock, faults (latency, 5xx, VAU Restart, dropped
//! sessions, IDP down, mail delay), the user-session idle timeout, and the CLI that plays the
//! phone (`epa-sandbox ident approve`) and moves the clock (`epa-sandbox control advance-clock`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use epa_protocol::http::Request;
use epa_protocol::vau::VauError;
use serde_json::{Value, json};
use support::{Env, MARIA, UA};

const AUDIT: &str = "/epa/audit/api/v1/fhir/AuditEvent";
const CONSTRAINTS: &str = "/epa/xds-document/api/v1/constraints";

fn get(path: &str) -> Request {
    Request::get(path)
        .header("x-useragent", UA)
        .header("x-insurantid", MARIA)
}

async fn put_faults(env: &Env, v: &Value) -> (u16, Value) {
    let r = env
        .http
        .put(format!("{}/faults", env.s.ready.control_api))
        .json(v)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn control(env: &Env, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = env
        .http
        .request(method, format!("{}{path}", env.s.ready.control_api));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_and_settings() {
    let env = Env::start().await;
    let before = control(&env, reqwest::Method::GET, "/clock", None).await;
    let after = control(
        &env,
        reqwest::Method::POST,
        "/clock/advance",
        Some(json!({"seconds": 7200})),
    )
    .await;
    let moved = after["now"].as_u64().unwrap() - before["now"].as_u64().unwrap();
    assert!((7200..7210).contains(&moved), "{moved}");
    assert!(after["offset_seconds"].as_i64().unwrap() >= 7199);
    assert!(env.s.clock.now_unix() >= after["now"].as_u64().unwrap());

    let defaults = control(&env, reqwest::Method::GET, "/faults", None).await;
    assert_eq!(defaults["session_idle_timeout_seconds"], 1200);
    assert_eq!(defaults["errors"], json!([]));
    let (s, v) = put_faults(
        &env,
        &json!({"latency_ms": 5, "idp_down": true, "full_access_after_confirm": true}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["latency_ms"], 5);
    assert_eq!(v["idp_down"], true);
    assert_eq!(v["full_access_after_confirm"], true);
    // PATCH changes only what it names.
    let v = control(
        &env,
        reqwest::Method::PATCH,
        "/faults",
        Some(json!({"idp_down": false})),
    )
    .await;
    assert_eq!(
        (v["latency_ms"].as_u64(), v["idp_down"].as_bool()),
        (Some(5), Some(false))
    );
    let v = control(&env, reqwest::Method::DELETE, "/faults", None).await;
    assert_eq!(v, defaults);
    for bad in [
        json!({"errors": [{"prefix": "/epa", "status": 404}]}),
        json!({"errors": [{"prefix": "epa", "status": 500}]}),
        json!({"latency": [{"prefix": "/epa", "ms": 1, "aktensystem": "epa-as-9"}]}),
        json!({"session_idle_timeout_seconds": 0}),
        json!({"latncy_ms": 5}),
    ] {
        let (s, v) = put_faults(&env, &bad).await;
        assert_eq!(
            (s, v["errorCode"].as_str()),
            (400, Some("malformedRequest")),
            "{bad}"
        );
    }
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_on_a_route_prefix() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    put_faults(
        &env,
        &json!({"latency": [{"prefix": "/epa/audit", "ms": 600}]}),
    )
    .await;
    let t = Instant::now();
    assert_eq!(ch.send(&get(AUDIT)).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(600));
    let t = Instant::now();
    assert_eq!(ch.send(&get(CONSTRAINTS)).await.status, 200);
    assert!(t.elapsed() < Duration::from_millis(600));
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_then_recovery() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    put_faults(
        &env,
        &json!({"errors": [{"prefix": CONSTRAINTS, "status": 503, "count": 2}]}),
    )
    .await;
    for _ in 0..2 {
        let (s, b) = ch.json(&get(CONSTRAINTS)).await;
        assert_eq!((s, b), (503, json!({"errorCode": "internalError"})));
    }
    assert_eq!(ch.send(&get(CONSTRAINTS)).await.status, 200);
    let v = control(&env, reqwest::Method::GET, "/faults", None).await;
    assert_eq!(v["errors"], json!([]));
    // Until cleared.
    put_faults(&env, &json!({"errors": [{"prefix": "/epa/audit"}]})).await;
    for _ in 0..3 {
        let (s, b) = ch.json(&get(AUDIT)).await;
        assert_eq!((s, b["errorCode"].as_str()), (500, Some("internalError")));
    }
    assert_eq!(ch.send(&get(CONSTRAINTS)).await.status, 200);
    control(&env, reqwest::Method::DELETE, "/faults", None).await;
    assert_eq!(ch.send(&get(AUDIT)).await.status, 200);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_forgets_the_channel() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    put_faults(&env, &json!({"restart_next": true})).await;
    assert!(matches!(
        ch.try_send(&get(AUDIT)).await,
        Err(VauError::Restart)
    ));
    let v = control(&env, reqwest::Method::GET, "/faults", None).await;
    // One-shot per Aktensystem: epa-as-2 still has it pending until cleared.
    assert_eq!(v["restart_next"], true);
    control(&env, reqwest::Method::DELETE, "/faults", None).await;
    let mut again = env.full_session(MARIA).await;
    assert_eq!(again.send(&get(AUDIT)).await.status, 200);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_sessions_need_a_new_login() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    let v = control(
        &env,
        reqwest::Method::POST,
        "/sessions/drop",
        Some(json!({})),
    )
    .await;
    assert_eq!(v["dropped"], 1);
    let (s, b) = ch.json(&get(AUDIT)).await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("invalAuth")));
    let mut again = env.full_session(MARIA).await;
    assert_eq!(again.send(&get(AUDIT)).await.status, 200);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_down() {
    let mut env = Env::start().await;
    put_faults(&env, &json!({"idp_down": true})).await;
    let issuer = env.issuer_of(MARIA);
    let mut ch = env.channel("epa-as-1").await;
    let (s, b) = ch
        .json(
            &Request::get("/epa/authz/v1/send_authorization_request_fdv")
                .header("x-useragent", UA)
                .header("x-idp-iss", &issuer),
        )
        .await;
    assert_eq!((s, b["errorCode"].as_str()), (500, Some("internalError")));
    // The IDP's own endpoints answer 503, the ident app too.
    let r = env
        .http
        .get(format!("{issuer}/auth?client_id=x&request_uri=y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let r = env
        .http
        .post(format!("{}/approve", env.s.ready.ident_app))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    put_faults(&env, &json!({"idp_down": false})).await;
    env.login(MARIA, None).await;
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_delay_counts_in_sandbox_time() {
    let env = Env::start().await;
    put_faults(&env, &json!({"mail_delay_seconds": 600})).await;
    let to = "maria.muster@example.invalid";
    env.s
        .outbox
        .send(to, "Verzögert", "Hallo", env.s.clock.now_unix())
        .unwrap();
    let list = |env: &Env| {
        let url = format!("{}/messages?to={to}", env.s.ready.mail_api);
        let http = env.http.clone();
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    assert!(list(&env).await.is_empty());
    control(
        &env,
        reqwest::Method::POST,
        "/clock/advance",
        Some(json!({"seconds": 590})),
    )
    .await;
    assert!(list(&env).await.is_empty());
    control(
        &env,
        reqwest::Method::POST,
        "/clock/advance",
        Some(json!({"seconds": 11})),
    )
    .await;
    let mails = list(&env).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["subject"], "Verzögert");
    // The background delivery writes the file too (for `epa-sandbox mail`).
    env.s
        .outbox
        .send(to, "Zweite", "x", env.s.clock.now_unix())
        .unwrap();
    env.s.clock.advance(601);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let files = epa_sandbox::mail::read_outbox(env.s.outbox.dir(), to).unwrap();
    assert_eq!(files.len(), 2);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_time_out() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    // Activity keeps the session alive.
    env.s.clock.advance(1000);
    assert_eq!(ch.send(&get(AUDIT)).await.status, 200);
    env.s.clock.advance(1000);
    assert_eq!(ch.send(&get(AUDIT)).await.status, 200);
    // 20 min idle (plus a second) and it is gone.
    env.s.clock.advance(1201);
    let (s, b) = ch.json(&get(AUDIT)).await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("invalAuth")));
    let (s, _) = ch.json(&get(AUDIT)).await;
    assert_eq!(s, 403);
    let mut again = env.full_session(MARIA).await;
    assert_eq!(again.send(&get(AUDIT)).await.status, 200);
    // A shorter timeout through the control API.
    put_faults(&env, &json!({"session_idle_timeout_seconds": 60})).await;
    env.s.clock.advance(61);
    let (s, b) = again.json(&get(AUDIT)).await;
    assert_eq!((s, b["errorCode"].as_str()), (403, Some("invalAuth")));
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_plays_the_phone_and_moves_the_clock() {
    let mut env = Env::start().await;
    let exe = env!("CARGO_BIN_EXE_epa-sandbox");
    let ca = env.s.ready.ca_cert.clone();
    // Wrong code: exit 1 with a clear message.
    let (_, url) = env.start_login(MARIA, false).await;
    let out = tokio::process::Command::new(exe)
        .args([
            "ident", "approve", &url, "--kvnr", MARIA, "--code", "000000", "--ca", &ca,
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") && err.contains("GesundheitsID code is wrong"),
        "{err}"
    );
    // Right code: prints the redirect URI; its code logs in.
    let (mut ch, url) = env.start_login(MARIA, false).await;
    let out = tokio::process::Command::new(exe)
        .args([
            "ident",
            "approve",
            &url,
            "--kvnr",
            MARIA,
            "--code",
            support::MARIA_CODE,
            "--ca",
            &ca,
            "--ident-app",
            &env.s.ready.ident_app,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let redirect = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        redirect.starts_with("epa-desktop://auth/callback?"),
        "{redirect}"
    );
    let code = support::query_param(&redirect, "code").unwrap();
    let r = ch
        .send(
            &Request::post(
                "/epa/authz/v1/send_authcode_fdv",
                "application/json",
                serde_json::to_vec(&json!({"authorizationCode": code})).unwrap(),
            )
            .header("x-useragent", UA),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Advance the clock from outside.
    let before = env.s.clock.now_unix();
    let out = tokio::process::Command::new(exe)
        .args([
            "control",
            "advance-clock",
            "3600",
            "--control-api",
            &env.s.ready.control_api,
            "--ca",
            &ca,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["now"].as_u64().unwrap() >= before + 3600);
    assert!(env.s.clock.now_unix() >= before + 3600);
    env.s.shutdown().await;
}
