//! Device Management (I_Device_Management_Insurant v1.1.0) through the VAU channel: the
//! registration lifecycle from a limited login to a full one, the confirmation-code table, the
//! 6 h / 8 h / 2 year rules, paging, and other users' devices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use epa_protocol::http::{Request, Response};
use epa_sandbox::mail::rfc3339;
use serde_json::{Value, json};
use support::{Channel, Env, MARIA, UA};

const MARIA_MAIL: &str = "maria.muster@example.invalid";
const JONAS: &str = "M432109873";
const OLGA: &str = "E082462818";
const DEVICES: &str = "/epa/basic/api/v1/devices";
const MANAGE: &str = "/epa/basic/api/v1/devices/manage";
const HOUR: u64 = 3600;

fn get(path: &str) -> Request {
    Request::get(path).header("x-useragent", UA)
}

fn post(path: &str, body: &Value) -> Request {
    Request::post(path, "application/json", serde_json::to_vec(body).unwrap())
        .header("x-useragent", UA)
}

fn put(path: &str, body: &Value) -> Request {
    Request::put(path, "application/json", serde_json::to_vec(body).unwrap())
        .header("x-useragent", UA)
}

fn delete(path: &str) -> Request {
    Request::delete(path).header("x-useragent", UA)
}

/// A pending registration made on `ch`.
struct Reg {
    id: String,
    token: String,
    created_at: String,
}

async fn register(ch: &mut Channel, name: Option<&str>) -> Reg {
    let req = match name {
        Some(n) => post(MANAGE, &json!({ "deviceName": n })),
        None => Request::post(MANAGE, "application/json", Vec::new()).header("x-useragent", UA),
    };
    let (status, v) = ch.json(&req).await;
    assert_eq!(status, 201, "{v}");
    Reg {
        id: v["deviceIdentifier"].as_str().unwrap().to_owned(),
        token: v["deviceToken"].as_str().unwrap().to_owned(),
        created_at: v["data"]["createdAt"].as_str().unwrap().to_owned(),
    }
}

async fn confirm(ch: &mut Channel, reg: &Reg, code: &str) -> (u16, Value) {
    ch.json(&put(
        MANAGE,
        &json!({ "deviceIdentifier": reg.id, "deviceToken": reg.token, "confirmationCode": code }),
    ))
    .await
}

/// The code of the newest confirmation mail to `to`.
fn mailed_code(env: &Env, to: &str) -> String {
    let mails = env.s.outbox.messages(to).unwrap();
    let mail = mails
        .iter()
        .find(|m| m.subject == "Ihr Bestätigungscode für die ePA")
        .expect("a confirmation mail");
    let code = mail
        .text
        .lines()
        .find_map(|l| l.strip_prefix("Bestätigungscode: "))
        .expect("a code line")
        .trim()
        .to_owned();
    assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
    code
}

fn wrong(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

fn error_of(v: &Value) -> (&str, Option<&str>) {
    (
        v["errorCode"].as_str().unwrap_or_default(),
        v["errorDetail"].as_str(),
    )
}

fn unix_of(rfc: &str) -> u64 {
    // Inverse of rfc3339 for whole seconds: search by bisection (the sandbox has no parser).
    let (mut lo, mut hi) = (0u64, 4_102_444_800u64);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if rfc3339(mid).as_str() < rfc {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    assert_eq!(rfc3339(lo), rfc);
    lo
}

async fn emails_status(ch: &mut Channel) -> u16 {
    ch.send(&get("/epa/basic/api/v1/emails")).await.status
}

fn services(env: &Env) -> &epa_sandbox::services::RecordServices {
    &env.s.aktensystem("epa-as-1").unwrap().services
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_goes_from_limited_login_to_full_access() {
    let mut env = Env::start().await;
    let mut limited = env.login(MARIA, None).await;
    assert_eq!(emails_status(&mut limited).await, 403);

    let (status, v) = limited
        .json(&post(MANAGE, &json!({ "deviceName": "Marias Laptop" })))
        .await;
    assert_eq!(status, 201, "{v}");
    let reg = Reg {
        id: v["deviceIdentifier"].as_str().unwrap().to_owned(),
        token: v["deviceToken"].as_str().unwrap().to_owned(),
        created_at: v["data"]["createdAt"].as_str().unwrap().to_owned(),
    };
    assert!(epa_protocol::xds::is_uuid(&reg.id));
    assert!(reg.token.len() == 64 && reg.token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(v["data"]["status"], "pending");
    assert_eq!(v["data"]["displayName"], "Marias Laptop");
    assert_eq!(v["data"]["remainingConfirmationRetries"], 4);

    let mails = env.s.outbox.messages(MARIA_MAIL).unwrap();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.contains("Marias Laptop"), "{}", mails[0].text);
    let code = mailed_code(&env, MARIA_MAIL);

    // Logging in with the pending device: confirm first.
    let (_, r) = env.try_login(MARIA, Some((&reg.id, &reg.token))).await;
    assert_eq!(r.status, 409);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["errorCode"], "statusMismatch");

    let (status, v) = confirm(&mut limited, &reg, &code).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["deviceIdentifier"], reg.id.as_str());
    assert_eq!(v["status"], "confirmed");
    assert_eq!(v["createdAt"], reg.created_at.as_str());
    assert!(v["lastUse"].is_string());
    assert_eq!(v["lastUse"], v["lastLogin"]);
    assert!(v.get("remainingConfirmationRetries").is_none());
    let (status, v) = confirm(&mut limited, &reg, &code).await;
    assert_eq!((status, error_of(&v).0), (409, "statusMismatch"));
    // By default the running session stays limited: clients log in again.
    assert_eq!(emails_status(&mut limited).await, 403);

    env.s.clock.advance(60);
    let mut full = env.login(MARIA, Some((&reg.id, &reg.token))).await;
    assert_eq!(emails_status(&mut full).await, 200);
    let (status, v) = full.json(&get(&format!("{DEVICES}/{}", reg.id))).await;
    assert_eq!(status, 200);
    assert!(unix_of(v["lastUse"].as_str().unwrap()) >= unix_of(&reg.created_at) + 60);

    let events = services(&env).audit.events(MARIA);
    let ops: Vec<&str> = events
        .iter()
        .filter(|e| e.source == "DEVICEMGMT")
        .map(|e| e.operation.as_str())
        .collect();
    assert!(ops.starts_with(&[
        "registerDevice",
        "confirmPendingDevice",
        "confirmPendingDevice"
    ]));
    assert!(ops.contains(&"getDevice"));
    let reg_event = events
        .iter()
        .find(|e| e.operation == "registerDevice")
        .unwrap();
    assert_eq!(reg_event.entity_name, "Marias Laptop");
    assert_eq!(reg_event.actor.id, MARIA);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_wrong_codes_delete_the_registration() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    let reg = register(&mut ch, None).await;
    let code = mailed_code(&env, MARIA_MAIL);
    for left in ["3", "2", "1", "0"] {
        let (status, v) = confirm(&mut ch, &reg, &wrong(&code)).await;
        assert_eq!((status, error_of(&v)), (403, ("invalidCode", Some(left))));
    }
    let (status, v) = ch.json(&get(&format!("{DEVICES}/{}", reg.id))).await;
    assert_eq!(
        (status, &v["remainingConfirmationRetries"]),
        (200, &json!(0))
    );
    // The right code with a wrong token is a wrong attempt too: the 5th deletes.
    let other_token = Reg {
        id: reg.id.clone(),
        token: "0f".repeat(32),
        created_at: String::new(),
    };
    let (status, v) = confirm(&mut ch, &other_token, &code).await;
    assert_eq!((status, error_of(&v)), (403, ("invalidCode", Some("0"))));
    let (status, v) = confirm(&mut ch, &reg, &code).await;
    assert_eq!((status, error_of(&v).0), (404, "noResource"));
    let (_, r) = env.try_login(MARIA, Some((&reg.id, &reg.token))).await;
    assert_eq!(r.status, 404);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_registration_expires_after_6_hours() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    let reg = register(&mut ch, Some("Handy")).await;
    let code = mailed_code(&env, MARIA_MAIL);
    env.s.clock.advance(6 * HOUR + 1);
    // Sessions do not outlive hours of idleness: log in again, as a client would.
    let mut ch = env.login(MARIA, None).await;
    let (status, v) = confirm(&mut ch, &reg, &code).await;
    assert_eq!((status, error_of(&v).0), (404, "noResource"));
    let (status, v) = ch.json(&get(DEVICES)).await;
    assert_eq!(status, 200);
    assert_eq!(v["query"]["totalMatching"], 0);
    // It counted as a failed registration at its expiry.
    assert_eq!(
        services(&env).devices.failures(MARIA),
        vec![unix_of(&reg.created_at) + 6 * HOUR]
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_registrations_lock_registration_for_8_hours() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    // Two expire, the third is killed by wrong codes: the lockout runs from that moment.
    register(&mut ch, None).await;
    let second = register(&mut ch, None).await;
    env.s.clock.advance(6 * HOUR + 1);
    let mut ch = env.login(MARIA, None).await;
    let third = register(&mut ch, None).await;
    let code = mailed_code(&env, MARIA_MAIL);
    for _ in 0..4 {
        confirm(&mut ch, &third, &wrong(&code)).await;
    }
    let before = env.s.clock.now_unix();
    let (status, _) = confirm(&mut ch, &third, &wrong(&code)).await;
    let after = env.s.clock.now_unix();
    assert_eq!(status, 403);
    let failures = services(&env).devices.failures(MARIA);
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[1], unix_of(&second.created_at) + 6 * HOUR);
    let (status, v) = ch.json(&post(MANAGE, &json!({"deviceName": "x"}))).await;
    assert_eq!((status, error_of(&v).0), (409, "statusMismatch"));
    let until = v["errorDetail"].as_str().unwrap();
    assert!(
        (before + 8 * HOUR..=after + 8 * HOUR).contains(&unix_of(until)),
        "{until}"
    );
    assert_eq!(unix_of(until), failures[2] + 8 * HOUR);
    // Waiting time over: registering works again.
    env.s.clock.advance(8 * HOUR + 1);
    let mut ch = env.login(MARIA, None).await;
    register(&mut ch, None).await;
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockout_end_is_8_hours_after_the_last_expiry() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(register(&mut ch, None).await);
    }
    env.s.clock.advance(6 * HOUR + 1);
    let mut ch = env.login(MARIA, None).await;
    let (status, v) = ch.json(&post(MANAGE, &json!({"deviceName": "x"}))).await;
    assert_eq!(status, 409, "{v}");
    let end = unix_of(&last.unwrap().created_at) + 6 * HOUR + 8 * HOUR;
    assert_eq!(
        error_of(&v),
        ("statusMismatch", Some(rfc3339(end).as_str()))
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_listed_in_pages() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    for _ in 0..75 {
        register(&mut ch, None).await;
    }
    let page = |offset: u32| get(&format!("{DEVICES}?limit=40&offset={offset}"));
    let (status, v) = ch.json(&page(0)).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["query"],
        json!({"offset": 0, "limit": 40, "totalMatching": 75})
    );
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 40);
    assert_eq!(data[0]["displayName"], "newDevice001");
    assert_eq!(data[0]["status"], "pending");
    let (_, v) = ch.json(&page(1)).await;
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 35);
    assert_eq!(data[0]["displayName"], "newDevice041");
    assert_eq!(data[34]["displayName"], "newDevice075");
    let (_, v) = ch.json(&page(2)).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    assert_eq!(v["query"]["totalMatching"], 75);
    let (_, v) = ch.json(&get(DEVICES)).await;
    assert_eq!(v["query"]["limit"], 50);
    assert_eq!(v["data"].as_array().unwrap().len(), 50);
    let (_, v) = ch
        .json(&get(&format!(
            "{DEVICES}?devicestatus=pending&limit=1&offset=74"
        )))
        .await;
    assert_eq!(v["data"][0]["displayName"], "newDevice075");
    let (_, v) = ch
        .json(&get(&format!("{DEVICES}?devicestatus=confirmed")))
        .await;
    assert_eq!(v["query"]["totalMatching"], 0);
    for bad in [
        "limit=0",
        "limit=51",
        "limit=x",
        "offset=-1",
        "offset=y",
        "devicestatus=verified",
        "limit=10&limit=20",
    ] {
        let (status, v) = ch.json(&get(&format!("{DEVICES}?{bad}"))).await;
        assert_eq!((status, error_of(&v).0), (400, "malformedRequest"), "{bad}");
    }
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_renamed_and_deleted_and_other_users_see_none() {
    let mut env = Env::start().await;
    let mut maria = env.login(MARIA, None).await;
    let reg = register(&mut maria, None).await;
    let code = mailed_code(&env, MARIA_MAIL);
    let path = format!("{DEVICES}/{}", reg.id);

    let mut jonas = env.login(JONAS, None).await;
    let (status, v) = jonas.json(&get(&path)).await;
    assert_eq!((status, error_of(&v).0), (404, "noResource"));
    let (status, _) = jonas
        .json(&put(&path, &json!({"displayName": "meins"})))
        .await;
    assert_eq!(status, 404);
    assert_eq!(jonas.send(&delete(&path)).await.status, 404);
    let (status, _) = confirm(&mut jonas, &reg, &code).await;
    assert_eq!(status, 404);
    let (_, v) = jonas.json(&get(DEVICES)).await;
    assert_eq!(v["query"]["totalMatching"], 0);

    let (status, v) = maria.json(&get(&path)).await;
    assert_eq!(status, 200);
    assert_eq!(v["displayName"], "newDevice001");
    assert_eq!(v["remainingConfirmationRetries"], 4);
    let (status, v) = maria
        .json(&put(&path, &json!({"displayName": "Küchentablett"})))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["displayName"], "Küchentablett");
    assert_eq!(v["createdAt"], reg.created_at.as_str());
    let eighty = "ä".repeat(80);
    let (status, _) = maria
        .json(&put(&path, &json!({"displayName": eighty})))
        .await;
    assert_eq!(status, 200);
    for body in [
        json!({"displayName": "x".repeat(81)}),
        json!({"name": "x"}),
        json!({}),
    ] {
        let (status, v) = maria.json(&put(&path, &body)).await;
        assert_eq!(
            (status, error_of(&v).0),
            (400, "malformedRequest"),
            "{body}"
        );
    }
    let (status, _) = maria.json(&get(&format!("{DEVICES}/not-a-uuid"))).await;
    assert_eq!(status, 400);
    let (status, _) = maria
        .json(&get(&format!(
            "{DEVICES}/99999999-9999-4999-8999-999999999999"
        )))
        .await;
    assert_eq!(status, 404);
    // Registration bodies: a name of ≤ 80 characters, or no body at all.
    for body in [
        json!({"deviceName": "y".repeat(81)}),
        json!({}),
        json!({"deviceName": 5}),
    ] {
        let (status, v) = maria.json(&post(MANAGE, &body)).await;
        assert_eq!(
            (status, error_of(&v).0),
            (400, "malformedRequest"),
            "{body}"
        );
    }

    // Confirmed, used, deleted: the old pair no longer logs in.
    let (status, _) = confirm(&mut maria, &reg, &code).await;
    assert_eq!(status, 200);
    env.login(MARIA, Some((&reg.id, &reg.token))).await;
    let r: Response = maria.send(&delete(&path)).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(maria.send(&delete(&path)).await.status, 404);
    assert_eq!(maria.json(&get(&path)).await.0, 404);
    let (_, r) = env.try_login(MARIA, Some((&reg.id, &reg.token))).await;
    assert_eq!(r.status, 404);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["errorCode"], "noResource");
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_older_than_two_years_are_deleted() {
    let mut env = Env::start().await;
    let mut ch = env.login(MARIA, None).await;
    let reg = register(&mut ch, Some("alt")).await;
    let code = mailed_code(&env, MARIA_MAIL);
    assert_eq!(confirm(&mut ch, &reg, &code).await.0, 200);
    let created = unix_of(&reg.created_at);
    // Two years on, no VAU channel can be opened any more (its certificate is valid for one
    // year), so the login's device check is asked directly, as send_authcode_fdv asks it.
    let devices = &services(&env).devices;
    env.s.clock.advance(730 * 24 * HOUR - 2 * HOUR);
    let now = env.s.clock.now_unix();
    assert!(now < epa_sandbox::devices::two_years_after(created));
    assert_eq!(devices.verify(MARIA, &reg.id, &reg.token, now), Ok(()));
    env.s.clock.advance(2 * 24 * HOUR);
    let now = env.s.clock.now_unix();
    assert_eq!(
        devices.verify(MARIA, &reg.id, &reg.token, now),
        Err(epa_sandbox::devices::DeviceCheck::Unknown)
    );
    assert!(devices.list(MARIA, now).is_empty());
    // Deleting confirmed registrations is not a failed registration.
    assert!(devices.failures(MARIA).is_empty());
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_behaviour_switch_upgrades_the_session_at_confirmation() {
    let mut env = Env::start().await;
    services(&env)
        .behaviour
        .full_access_after_confirm
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut ch = env.login(MARIA, None).await;
    assert_eq!(emails_status(&mut ch).await, 403);
    let reg = register(&mut ch, None).await;
    let code = mailed_code(&env, MARIA_MAIL);
    // A failed confirmation changes nothing.
    confirm(&mut ch, &reg, &wrong(&code)).await;
    assert_eq!(emails_status(&mut ch).await, 403);
    assert_eq!(confirm(&mut ch, &reg, &code).await.0, 200);
    assert_eq!(emails_status(&mut ch).await, 200);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_registration_without_an_address_or_as_representative() {
    let mut env = Env::start().await;
    // Olga has no record, so no address on any Aktensystem.
    let mut ch = env.login(OLGA, None).await;
    let (status, v) = ch.json(&post(MANAGE, &json!({"deviceName": "x"}))).await;
    assert_eq!((status, error_of(&v).0), (404, "noResource"));

    let mut rep = env.representative_login(MARIA).await;
    let (status, v) = rep.json(&post(MANAGE, &json!({"deviceName": "x"}))).await;
    assert_eq!((status, error_of(&v).0), (403, "invalidRequest"));
    assert!(env.s.outbox.messages(MARIA_MAIL).unwrap().is_empty());

    // Without a user session nothing is reachable.
    let mut anon = env.channel("epa-as-1").await;
    let (status, v) = anon.json(&get(DEVICES)).await;
    assert_eq!((status, error_of(&v).0), (403, "invalAuth"));
    env.s.shutdown().await;
}
