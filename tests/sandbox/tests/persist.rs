//! `--state-dir`: what a client did survives a sandbox restart (pending device registrations,
//! e-mail addresses, uploaded documents with their bytes, hidden categories, the audit log), and a
//! damaged state file stops the start with a message instead of being overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use epa_protocol::http::Request;
use epa_protocol::xds::query::{ReturnType, StoredQuery};
use epa_protocol::xds::rim;
use serde_json::json;
use support::xds::{upload, xds};
use support::{Env, MARIA, UA};

fn post(path: &str, body: serde_json::Value) -> Request {
    Request::post(path, "application/json", serde_json::to_vec(&body).unwrap())
        .header("x-useragent", UA)
}

fn find_all(kvnr: &str) -> StoredQuery {
    StoredQuery::find_documents(&rim::patient_id(kvnr), ReturnType::LeafClass)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sandbox_remembers_what_clients_did() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = Env::in_state_dir(dir.path()).await;

    // A pending registration from a limited session.
    let mut limited = env.login(MARIA, None).await;
    let (status, reg) = limited
        .json(&post(
            "/epa/basic/api/v1/devices/manage",
            json!({"deviceName": "Laptop"}),
        ))
        .await;
    assert_eq!(status, 201, "{reg}");
    // A second address, an upload, a hidden category.
    let mut x = xds(&mut env, MARIA).await;
    let (status, _) =
        x.ch.json(&post(
            "/epa/basic/api/v1/emails",
            json!({"email": "maria@zweite.example"}),
        ))
        .await;
    assert_eq!(status, 201);
    let (objects, docs) = upload(
        MARIA,
        "Impfpass Foto",
        1,
        "image/jpeg",
        b"\xff\xd8\xff\xd9 bytes",
    );
    let (_, r) = x.register(&objects, &docs).await;
    assert!(r.is_success(), "{:?}", r.errors);
    let before = x.documents(find_all(MARIA)).await;
    assert!(
        before
            .iter()
            .any(|d| d.title.as_deref() == Some("Impfpass Foto"))
    );
    let (status, hidden) =
        x.ch.json(
            &post(
                "/epa/xds-document/api/v1/constraints",
                json!({"for": "category", "parameters": {"categoryId": "reports"}}),
            )
            .header("x-insurantid", MARIA),
        )
        .await;
    assert_eq!(status, 201, "{hidden}");
    let audit_before = env
        .s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .audit
        .events(MARIA)
        .len();
    env.s.shutdown().await;

    let mut env = Env::in_state_dir(dir.path()).await;
    let svc = &env.s.aktensystem("epa-as-1").unwrap().services;
    let devices = svc.devices.devices(MARIA);
    assert!(
        devices
            .iter()
            .any(|d| d.identifier == reg["deviceIdentifier"] && d.display_name == "Laptop"),
        "the pending registration is back"
    );
    assert!(
        svc.emails
            .addresses(MARIA)
            .contains(&"maria@zweite.example".to_owned())
    );
    assert!(
        svc.audit.events(MARIA).len() >= audit_before,
        "no audit entry lost"
    );
    let mut x = xds(&mut env, MARIA).await;
    let after = x.documents(find_all(MARIA)).await;
    assert_eq!(
        {
            let mut t: Vec<_> = before.iter().map(|d| d.title.clone()).collect();
            t.sort();
            t
        },
        {
            let mut t: Vec<_> = after.iter().map(|d| d.title.clone()).collect();
            t.sort();
            t
        }
    );
    // The uploaded bytes come back byte-equal.
    let uploaded = after
        .iter()
        .find(|d| d.title.as_deref() == Some("Impfpass Foto"))
        .unwrap();
    let bytes = x.retrieve_one(uploaded).await;
    assert_eq!(bytes, b"\xff\xd8\xff\xd9 bytes");
    let (status, list) =
        x.ch.json(
            &Request::get("/epa/xds-document/api/v1/constraints")
                .header("x-useragent", UA)
                .header("x-insurantid", MARIA),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"][0]["assignmentId"], hidden["assignmentId"]);
    env.s.shutdown().await;

    // Nothing in the state dir is a half-written temp file.
    for e in std::fs::read_dir(dir.path().join("records")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            name.ends_with(".json") || name.ends_with(".blobs"),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_state_file_stops_the_start_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::in_state_dir(dir.path()).await;
    env.s.shutdown().await;
    let file = dir.path().join("records/epa-as-1.json");
    assert!(file.is_file());
    std::fs::write(&file, b"{\"format\": 1, \"state\": ").unwrap();
    let err = epa_sandbox::server::Sandbox::start(epa_sandbox::server::Options {
        state_dir: Some(dir.path().to_owned()),
        seed: epa_sandbox::seed::Seed::default_seed().unwrap(),
        bind: "127.0.0.1".parse().unwrap(),
        rng_seed: None,
    })
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("epa-as-1.json") && err.contains("move it away"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"{\"format\": 1, \"state\": "
    );
}
