//! The `custom` environment: the daemon reaches an ePA it did not start, described only by an
//! environment file (base URLs, TLS CA, VAU trust anchors, IDP issuers) — here a sandbox run by
//! the test, so nothing but the file connects them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use epa_ipc::types::EpaPhase;
use epa_ipc::{ClientError, Reason};
use epa_sandbox::server::Sandbox;
use epa_tests::{MARIA, TestDaemon, TestEnv, start_sandbox, user_client};

/// The environment file a deployment would ship, written next to the test's data.
fn environment_file(dir: &std::path::Path, s: &Sandbox) -> std::path::PathBuf {
    std::fs::copy(&s.ready.ca_cert, dir.join("ca.pem")).unwrap();
    std::fs::copy(&s.ready.vau_trust_anchor, dir.join("vau-root.der")).unwrap();
    let file = dir.join("environment.json");
    let v = serde_json::json!({
        "name": "test-ru",
        "aktensysteme": s.ready.aktensysteme.iter()
            .map(|a| serde_json::json!({"id": a.id, "base_url": a.base_url}))
            .collect::<Vec<_>>(),
        "ca_cert": "ca.pem",
        "vau_trust_anchors": ["vau-root.der"],
        "idps": s.ready.idps.iter()
            .map(|i| serde_json::json!({"insurer": i.insurer, "issuer": i.issuer}))
            .collect::<Vec<_>>(),
    });
    std::fs::write(&file, v.to_string()).unwrap();
    file
}

async fn custom_daemon(env: &TestEnv, file: &std::path::Path) -> TestDaemon {
    TestDaemon::start_with(
        env,
        &[
            "--insecure-test-kdf",
            "--environment",
            "custom",
            "--environment-file",
            file.to_str().unwrap(),
        ],
    )
    .await
}

async fn approve(s: &Sandbox, url: &str) -> String {
    let ca = std::fs::read(&s.ready.ca_cert).unwrap();
    let http = epa_daemon::backend::tls::http_client(&ca).unwrap();
    let body = serde_json::json!({"authorization_url": url, "kvnr": MARIA.0, "gesundheitsid_code": MARIA.2});
    let r = http
        .post(format!("{}/approve", s.ready.ident_app))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    v["redirect_uri"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_environment_is_reached_through_its_file_alone() {
    let s = start_sandbox().await;
    let env = TestEnv::new();
    let files = tempfile::tempdir().unwrap();
    let file = environment_file(files.path(), &s);
    let mut d = custom_daemon(&env, &file).await;
    let c = user_client(&env, "Maria", "korrekt Pferd Batterie").await;
    let info = c.get_info().await.unwrap().environment_info.unwrap();
    assert_eq!(info.kind, "custom");
    assert!(info.ident_app.is_none() && info.demo_insurants.is_empty());
    assert!(info.note.contains("gematik"), "{}", info.note);

    c.set_record_profile(MARIA.1, MARIA.0).await.unwrap();
    let st = c.start_login().await.unwrap();
    assert_eq!(st.phase, EpaPhase::AwaitingIdentApp);
    let link = approve(&s, &st.login.unwrap().authorization_url).await;
    let st = c.complete_login(&link).await.unwrap();
    assert_eq!(st.phase, EpaPhase::DeviceCodeSent, "{st:?}");
    let mail = s.outbox.messages(MARIA.3).unwrap();
    let code: String = mail[0]
        .text
        .lines()
        .find_map(|l| l.strip_prefix("Bestätigungscode: "))
        .unwrap()
        .trim()
        .to_owned();
    let st = c.confirm_device(&code).await.unwrap();
    assert_eq!(st.phase, EpaPhase::ReloginRequired);
    let link = approve(&s, &st.login.unwrap().authorization_url).await;
    let st = c.complete_login(&link).await.unwrap();
    assert_eq!(st.phase, EpaPhase::LoggedIn);
    // The registration lives on the sandbox the file named.
    let devices = s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .devices
        .devices(MARIA.0);
    assert_eq!(devices.len(), 1);
    c.epa_logout().await.unwrap();
    d.terminate();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_environment_file_is_reported_not_fatal() {
    let env = TestEnv::new();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("environment.json");
    std::fs::write(
        &file,
        br#"{"name": "x", "aktensysteme": [{"id": "a", "base_url": "http://plain"}]}"#,
    )
    .unwrap();
    let mut d = custom_daemon(&env, &file).await;
    let c = user_client(&env, "Maria", "korrekt Pferd Batterie").await;
    let info = c.get_info().await.unwrap().environment_info.unwrap();
    let problem = info.problem.unwrap();
    assert!(problem.contains("environment.json"), "{problem}");
    c.set_record_profile(MARIA.1, MARIA.0).await.ok();
    match c.start_login().await {
        Err(ClientError::Rpc { reason, .. }) => assert_eq!(reason, Reason::BackendUnreachable),
        other => panic!("{other:?}"),
    }
    d.terminate();
}
