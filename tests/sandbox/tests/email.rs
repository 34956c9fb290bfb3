//! E-mail Management (I_Email_Management v1.0.0) through the VAU channel: list, add, read and
//! delete the insurant's own addresses; the last one stays; limited sessions are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use epa_protocol::http::Request;
use serde_json::{Value, json};
use support::{Channel, Env, MARIA, UA};

const MARIA_MAIL: &str = "maria.muster@example.invalid";
const JONAS: &str = "M432109873";
const EMAILS: &str = "/epa/basic/api/v1/emails";

fn get(path: &str) -> Request {
    Request::get(path).header("x-useragent", UA)
}

fn post(path: &str, body: &Value) -> Request {
    Request::post(path, "application/json", serde_json::to_vec(body).unwrap())
        .header("x-useragent", UA)
}

fn delete(path: &str) -> Request {
    Request::delete(path).header("x-useragent", UA)
}

fn code_of(v: &Value) -> &str {
    v["errorCode"].as_str().unwrap_or_default()
}

async fn add(ch: &mut Channel, email: &str) -> String {
    let (status, v) = ch.json(&post(EMAILS, &json!({ "email": email }))).await;
    assert_eq!(status, 201, "{v}");
    v.as_str().expect("the new identifier").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_are_listed_added_read_and_deleted() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;

    let (status, v) = ch.json(&get(EMAILS)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["query"],
        json!({"offset": 0, "limit": 50, "totalMatching": 1})
    );
    let seeded = &v["data"][0];
    assert_eq!(seeded["email"], MARIA_MAIL);
    assert_eq!(seeded["actor"], "AOK PLUS");
    assert!(seeded["createdAt"].as_str().unwrap().ends_with('Z'));
    let seeded_id = seeded["identifier"].as_str().unwrap().to_owned();

    let new_id = add(&mut ch, "maria.neu@example.invalid").await;
    assert_ne!(new_id, seeded_id);
    let notice = env.s.outbox.messages("maria.neu@example.invalid").unwrap();
    assert_eq!(notice.len(), 1);
    assert_eq!(notice[0].subject, "Neue E-Mail-Adresse für Ihre ePA");
    // The same address again: no second entry, no second notice.
    assert_eq!(add(&mut ch, "Maria.Neu@example.invalid").await, new_id);
    assert_eq!(
        env.s
            .outbox
            .messages("maria.neu@example.invalid")
            .unwrap()
            .len(),
        1
    );

    let (_, v) = ch.json(&get(EMAILS)).await;
    assert_eq!(v["query"]["totalMatching"], 2);
    assert_eq!(v["data"][1]["identifier"], new_id.as_str());
    assert_eq!(v["data"][1]["actor"], "Maria Muster");
    let (_, v) = ch.json(&get(&format!("{EMAILS}?limit=1&offset=1"))).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["email"], "maria.neu@example.invalid");

    let (status, v) = ch.json(&get(&format!("{EMAILS}/{new_id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(v["email"], "maria.neu@example.invalid");
    assert_eq!(v["actor"], "Maria Muster");
    assert!(v["createdAt"].is_string());

    // Device codes now go to both addresses.
    let (status, _) = ch
        .json(&post(
            "/epa/basic/api/v1/devices/manage",
            &json!({"deviceName": "zweites Gerät"}),
        ))
        .await;
    assert_eq!(status, 201);
    for to in [MARIA_MAIL, "maria.neu@example.invalid"] {
        assert!(
            env.s
                .outbox
                .messages(to)
                .unwrap()
                .iter()
                .any(|m| m.subject == "Ihr Bestätigungscode für die ePA"),
            "{to}"
        );
    }

    let r = ch.send(&delete(&format!("{EMAILS}/{seeded_id}"))).await;
    assert_eq!(r.status, 204);
    let (status, v) = ch.json(&get(&format!("{EMAILS}/{seeded_id}"))).await;
    assert_eq!((status, code_of(&v)), (404, "noRessource"));
    let (status, v) = ch.json(&delete(&format!("{EMAILS}/{seeded_id}"))).await;
    assert_eq!((status, code_of(&v)), (404, "noRessource"));
    let (status, v) = ch.json(&delete(&format!("{EMAILS}/{new_id}"))).await;
    assert_eq!((status, code_of(&v)), (409, "onlyOneEmail"));
    let (_, v) = ch.json(&get(EMAILS)).await;
    assert_eq!(v["query"]["totalMatching"], 1);

    let events = env
        .s
        .aktensystem("epa-as-1")
        .unwrap()
        .services
        .audit
        .events(MARIA);
    let ops: Vec<&str> = events.iter().map(|e| e.operation.as_str()).collect();
    for op in ["getEmails", "setEmail", "getEmail", "deleteEmail"] {
        assert!(ops.contains(&op), "{op} not audited: {ops:?}");
    }
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_session_is_refused() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    for req in [
        get(EMAILS),
        post(EMAILS, &json!({"email": "x@example.invalid"})),
        get(&format!("{EMAILS}/00000000-0000-4000-8000-000000000001")),
        delete(&format!("{EMAILS}/00000000-0000-4000-8000-000000000001")),
    ] {
        let (status, v) = ch.json(&req).await;
        assert_eq!((status, code_of(&v)), (403, "unregisteredDevice"));
    }
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused() {
    let mut env = Env::start().await;
    let mut ch = env.full_session(MARIA).await;
    for body in [
        json!({"email": "not-an-address"}),
        json!({"email": ""}),
        json!({"email": "maria@localhost"}),
        json!({"email": "maria muster@example.invalid"}),
        json!({"mail": "maria@example.invalid"}),
        json!({}),
        json!("maria@example.invalid"),
    ] {
        let (status, v) = ch.json(&post(EMAILS, &body)).await;
        assert_eq!((status, code_of(&v)), (400, "malformedRequest"), "{body}");
    }
    let plain = Request::post(
        EMAILS,
        "text/plain",
        b"{\"email\":\"a@example.invalid\"}".to_vec(),
    )
    .header("x-useragent", UA);
    assert_eq!(ch.json(&plain).await.0, 400);
    for q in ["limit=0", "limit=51", "limit=x", "offset=-1"] {
        let (status, v) = ch.json(&get(&format!("{EMAILS}?{q}"))).await;
        assert_eq!((status, code_of(&v)), (400, "malformedRequest"), "{q}");
    }
    // Only the insurant's own addresses: another KVNR in x-insurantid is a mismatch.
    let (status, v) = ch.json(&get(EMAILS).header("x-insurantid", JONAS)).await;
    assert_eq!((status, code_of(&v)), (409, "requestMismatch"));
    let (status, _) = ch.json(&get(EMAILS).header("x-insurantid", MARIA)).await;
    assert_eq!(status, 200);
    let (status, _) = ch.json(&get(EMAILS).header("x-insurantid", "nope")).await;
    assert_eq!(status, 400);
    // Nothing was stored on the way.
    let (_, v) = ch.json(&get(EMAILS)).await;
    assert_eq!(v["query"]["totalMatching"], 1);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_insurants_addresses_do_not_exist() {
    let mut env = Env::start().await;
    let mut maria = env.full_session(MARIA).await;
    let (_, v) = maria.json(&get(EMAILS)).await;
    let marias = v["data"][0]["identifier"].as_str().unwrap().to_owned();
    let mut jonas = env.full_session(JONAS).await;
    let (status, v) = jonas.json(&get(&format!("{EMAILS}/{marias}"))).await;
    assert_eq!((status, code_of(&v)), (404, "noRessource"));
    let (status, _) = jonas.json(&delete(&format!("{EMAILS}/{marias}"))).await;
    assert_eq!(status, 404);
    let (_, v) = jonas.json(&get(EMAILS)).await;
    assert_eq!(v["data"][0]["email"], "jonas.beispiel@example.invalid");
    assert_eq!(v["data"][0]["actor"], "AOK Bayern");
    env.s.shutdown().await;
}
