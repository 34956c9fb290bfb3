//! The sandbox as a process and in process: ready line, TLS with its own CA, the Information
//! Service table, and a full VAU handshake plus data exchange with epa-protocol's client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use epa_protocol::http::Request;
use epa_protocol::vau::{ClientHandshake, VauError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::{Env, UA, query_param};

#[test]
fn serve_prints_one_ready_line_and_stops_when_stdin_closes() {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_epa-sandbox"))
        .args(["serve", "--exit-on-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    eprintln!("ready after {:?}", t.elapsed());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["aktensysteme"].as_array().unwrap().len(), 2);
    assert!(
        v["aktensysteme"][0]["base_url"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert!(std::path::Path::new(v["ca_cert"].as_str().unwrap()).is_file());
    assert!(
        v["insurants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["has_record"] == false)
    );
    // The seed's representation: Lena acts for Maria.
    let lena = v["insurants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kvnr"] == "A526018157")
        .unwrap();
    assert_eq!(lena["represents"], serde_json::json!(["X110411675"]));
    assert!(v["control_api"].as_str().unwrap().starts_with("https://"));
    drop(child.stdin.take());
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_information_service_follows_the_spec_table() {
    let env = Env::start().await;
    let c = env.http.clone();
    let get = |system: &str, path: String| {
        let c = c.clone();
        let url = format!("{}{path}", env.base(system));
        async move { c.get(url).header("x-useragent", UA).send().await.unwrap() }
    };
    let status = |system: &'static str, kvnr: &'static str| {
        let g = get(system, format!("/information/api/v1/ehr/{kvnr}"));
        async move { g.await.status().as_u16() }
    };
    assert_eq!(status("epa-as-1", "X110411675").await, 200); // AOK PLUS, ACTIVATED
    assert_eq!(status("epa-as-2", "X110411675").await, 404); // lives on the other system
    assert_eq!(status("epa-as-2", "C131860918").await, 409); // SUSPENDED
    assert_eq!(status("epa-as-1", "D390996037").await, 404); // INITIALIZED
    assert_eq!(status("epa-as-1", "E082462818").await, 404); // no record
    let r = get("epa-as-1", "/information/api/v1/ehr/X11041167".into()).await;
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["errorCode"],
        "malformedRequest"
    );
    let r = get("epa-as-1", "/information/api/v1/ehr/E082462818".into()).await;
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["errorCode"],
        "noHealthRecord"
    );
    // x-useragent is required.
    let r = c
        .get(format!(
            "{}/information/api/v1/ehr/X110411675",
            env.base("epa-as-1")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = get(
        "epa-as-1",
        "/information/api/v1/ehr/M432109873/consentdecisions".into(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|d| d["functionId"] == "medication" && d["decision"] == "deny")
    );
    let ux = |body: serde_json::Value| {
        c.post(format!(
            "{}/information/api/v1/userexperience",
            env.base("epa-as-1")
        ))
        .header("x-useragent", UA)
        .json(&body)
        .send()
    };
    assert_eq!(
        ux(serde_json::json!({"useCase": "UX_Login_V", "measurement": 812}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        ux(serde_json::json!({"useCase": "UX_Nope", "measurement": 1}))
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vau_channel_opens_over_https_and_carries_inner_http() {
    let mut env = Env::start().await;
    let c = env.http.clone();
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    let b = env.base("epa-as-1");
    let mut ch = env.channel("epa-as-1").await;
    let url = ch.url.clone();
    // getNonce is not an FdV operation: the inner router answers 404, through the channel.
    let resp = ch
        .try_send(&Request::get("/epa/authz/v1/getNonce").header("x-useragent", UA))
        .await
        .unwrap();
    assert_eq!(resp.status, 404);
    assert_eq!(ch.counter(), 1);
    // A replayed request is refused by the VAU (403, CBOR error).
    let replay = ch.seal_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let ok = c
        .post(&url)
        .header("x-useragent", UA)
        .header("content-type", "application/octet-stream")
        .body(replay.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let again = c
        .post(&url)
        .header("x-useragent", UA)
        .header("content-type", "application/octet-stream")
        .body(replay)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 403);
    assert_eq!(again.headers()["content-type"], "application/cbor");
    // Unknown CID.
    let r = c
        .post(format!("{b}/VAU/epa-as-1/0000"))
        .header("x-useragent", UA)
        .body(vec![2u8; 80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Fault: Restart; the channel is gone afterwards.
    env.s
        .aktensystem("epa-as-1")
        .unwrap()
        .faults
        .restart_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = ch.try_send(&Request::get("/x")).await.unwrap_err();
    assert!(matches!(e, VauError::Restart), "{e:?}");
    let r = c
        .post(&url)
        .header("x-useragent", UA)
        .body(vec![2u8; 80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // Without x-useragent the VAU refuses M1.
    let r = c
        .post(format!("{b}/VAU"))
        .header("content-type", "application/cbor")
        .body(ClientHandshake::start(&mut rng).m1().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mails_land_in_the_outbox_and_the_mail_api() {
    let env = Env::start().await;
    let c = env.http.clone();
    let to = "maria.muster@example.invalid";
    env.s
        .outbox
        .send(
            to,
            "Ihr Bestätigungscode",
            "Code: 482913",
            env.s.clock.now_unix(),
        )
        .unwrap();
    env.s
        .outbox
        .send(to, "Neues Gerät", "Hallo", env.s.clock.now_unix() + 1)
        .unwrap();
    let v: serde_json::Value = c
        .get(format!("{}/messages?to={to}", env.s.ready.mail_api))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["subject"], "Neues Gerät");
    assert_eq!(v[1]["text"], "Code: 482913");
    let r = c
        .get(format!("{}/messages", env.s.ready.mail_api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // The CLI reads the same outbox.
    let out = Command::new(env!("CARGO_BIN_EXE_epa-sandbox"))
        .args([
            "mail",
            "latest",
            "--to",
            to,
            "--outbox",
            &env.s.ready.outbox_dir,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let latest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(latest["subject"], "Neues Gerät");
    let out = Command::new(env!("CARGO_BIN_EXE_epa-sandbox"))
        .args([
            "mail",
            "latest",
            "--to",
            "nobody@example.invalid",
            "--outbox",
            &env.s.ready.outbox_dir,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    env.s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insurant_logs_in_with_the_ident_app_and_gets_a_device_management_session() {
    let mut env = Env::start().await;
    let c = env.http.clone();
    let issuer = env
        .s
        .ready
        .idps
        .iter()
        .find(|i| i.insurer == "AOK PLUS")
        .unwrap()
        .issuer
        .clone();
    assert_eq!(
        env.s
            .ready
            .idps
            .iter()
            .filter(|i| i.insurer.starts_with("AOK"))
            .count(),
        11
    );

    let mut ch = env.channel("epa-as-1").await;
    let authz = |extra: &[(&str, &str)]| {
        let mut r =
            Request::get("/epa/authz/v1/send_authorization_request_fdv").header("x-useragent", UA);
        for (n, v) in extra {
            r = r.header(*n, *v);
        }
        r
    };
    // Spec errors first.
    let r = ch.try_send(&authz(&[])).await.unwrap();
    assert_eq!(r.status, 400);
    let r = ch
        .try_send(&authz(&[("x-idp-iss", "https://idp.example.invalid")]))
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("noResource"));

    let r = ch
        .try_send(&authz(&[("x-idp-iss", &issuer)]))
        .await
        .unwrap();
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_owned();
    assert!(location.starts_with(&issuer));
    for p in ["client_id", "request_uri", "state"] {
        assert!(
            query_param(&location, p).is_some(),
            "{p} missing in {location}"
        );
    }
    let state = query_param(&location, "state").unwrap();

    // The phone: a wrong GesundheitsID code first, then the right one.
    let approve = |code: &str| {
        c.post(format!("{}/approve", env.s.ready.ident_app))
            .json(&serde_json::json!({"authorization_url": location, "kvnr": "X110411675", "gesundheitsid_code": code}))
            .send()
    };
    assert_eq!(approve("000000").await.unwrap().status().as_u16(), 403);
    let v: serde_json::Value = approve("428193").await.unwrap().json().await.unwrap();
    let redirect = v["redirect_uri"].as_str().unwrap().to_owned();
    assert!(redirect.starts_with("epa-desktop://auth/callback?"));
    assert_eq!(
        query_param(&redirect, "state").as_deref(),
        Some(state.as_str())
    );
    let code = query_param(&redirect, "code").unwrap();

    let authcode = |code: &str| {
        Request::post(
            "/epa/authz/v1/send_authcode_fdv",
            "application/json",
            serde_json::to_vec(&serde_json::json!({"authorizationCode": code})).unwrap(),
        )
        .header("x-useragent", UA)
    };
    // Only one device header: refused, and the attempt is spent.
    let r = ch
        .try_send(&authcode(&code).header(
            "x-device-identifier",
            "4ab42e19-7d33-40fa-949f-3499135b910b",
        ))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("paramExcpected"));
    let r = ch.try_send(&authcode(&code)).await.unwrap();
    assert_eq!(r.status, 403, "the failed call discarded the pending login");

    // A fresh channel and a clean login: a Device-Management-only session.
    let mut ch = env.channel("epa-as-1").await;
    let r = ch
        .try_send(&authz(&[("x-idp-iss", &issuer)]))
        .await
        .unwrap();
    let location = r.header("location").unwrap().to_owned();
    let v: serde_json::Value = c
        .post(format!("{}/approve", env.s.ready.ident_app))
        .json(&serde_json::json!({"authorization_url": location, "kvnr": "X110411675", "gesundheitsid_code": "428193"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = query_param(v["redirect_uri"].as_str().unwrap(), "code").unwrap();
    let r = ch.try_send(&authcode(&code)).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let np: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let np = np["vau-np"].as_str().unwrap();
    assert!(np.len() == 64 && np.bytes().all(|b| b.is_ascii_hexdigit()));
    // The code is one-time; a second login on this channel is refused.
    let r = ch.try_send(&authcode(&code)).await.unwrap();
    assert_eq!(r.status, 409);
    let r = ch
        .try_send(&Request::get("/epa/authz/v1/logoutFdV").header("x-useragent", UA))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    env.s.shutdown().await;
}
