//! The ePA login journey through the daemon's API, against the demo sandbox the daemon starts
//! itself: the phone is played with the sandbox's ident app, the code read from its mail API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use epa_ipc::types::{Change, EpaPhase, EpaState, Event};
use epa_ipc::{ClientError, DaemonClient, Reason};
use epa_tests::{Demo, MARIA, TestDaemon, TestEnv, bin, url_state, user_client};
use futures_util::StreamExt;

const PASSWORD: &str = "korrekt Pferd Batterie";

async fn daemon(env: &TestEnv) -> TestDaemon {
    let sandbox = bin("epa-sandbox");
    TestDaemon::start_with(
        env,
        &[
            "--insecure-test-kdf",
            "--sandbox-bin",
            sandbox.to_str().unwrap(),
            "--epa-keepalive-ms",
            "200",
        ],
    )
    .await
}

fn reason(e: &ClientError) -> (Reason, std::collections::BTreeMap<String, String>) {
    match e {
        ClientError::Rpc {
            reason, metadata, ..
        } => (reason.clone(), metadata.clone()),
        other => panic!("not a daemon error: {other}"),
    }
}

#[track_caller]
fn expect_reason<T: std::fmt::Debug>(r: Result<T, ClientError>, want: Reason) -> ClientError {
    let e = r.expect_err("expected an error");
    assert_eq!(reason(&e).0, want, "{e}");
    e
}

struct Person<'a> {
    kvnr: &'a str,
    insurer: &'a str,
    code: &'a str,
    email: &'a str,
}

const MARIA_P: Person<'static> = Person {
    kvnr: MARIA.0,
    insurer: MARIA.1,
    code: MARIA.2,
    email: MARIA.3,
};

const PAUL: Person<'static> = Person {
    kvnr: "B908301668",
    insurer: "Techniker Krankenkasse",
    code: "771023",
    email: "paul.probe@example.invalid",
};

/// Profile, StartLogin, the phone, the deep link: the state after CompleteLogin.
async fn ident_app_login(c: &DaemonClient, demo: &Demo, p: &Person<'_>) -> EpaState {
    let s = c.set_record_profile(p.insurer, p.kvnr).await.unwrap();
    assert_eq!(s.phase, EpaPhase::LoggedOut);
    let s = c.start_login().await.unwrap();
    assert_eq!(s.phase, EpaPhase::AwaitingIdentApp);
    let url = s.login.unwrap().authorization_url;
    let link = demo.approve(&url, p.kvnr, p.code).await;
    c.complete_login(&link).await.unwrap()
}

/// The journey up to LoggedIn (register, confirm, re-login).
async fn full_login(c: &DaemonClient, demo: &Demo, p: &Person<'_>) -> EpaState {
    let s = ident_app_login(c, demo, p).await;
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent, "{s:?}");
    let code = demo.confirmation_code(p.email).await;
    let s = c.confirm_device(&code).await.unwrap();
    assert_eq!(s.phase, EpaPhase::ReloginRequired, "{s:?}");
    let link = demo
        .approve(&s.login.unwrap().authorization_url, p.kvnr, p.code)
        .await;
    let s = c.complete_login(&link).await.unwrap();
    assert_eq!(s.phase, EpaPhase::LoggedIn, "{s:?}");
    s
}

/// Collects the user's phase changes from Watch until `until` is seen (bounded).
async fn wait_for_phase(
    events: &mut epa_ipc::client::EventStream,
    username: &str,
    until: &str,
) -> Vec<(String, Option<String>)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("no {until} for {username}; saw {seen:?}"));
        if let Some(Ok(Event::Delta {
            change:
                Change::EpaPhaseChanged {
                    username: u,
                    phase,
                    login_required_reason,
                },
            ..
        })) = ev
            && u == username
        {
            let done = phase == until;
            seen.push((phase, login_required_reason));
            if done {
                return seen;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_journey_from_qr_code_to_full_access() {
    let env = TestEnv::new();
    let d = daemon(&env).await;
    let c = user_client(&env, "anna", PASSWORD).await;
    let demo = Demo::of(&c).await;

    let info = c.get_info().await.unwrap().environment_info.unwrap();
    assert_eq!(info.kind, "demo");
    assert!(info.note.contains("gematik"), "{}", info.note);
    assert!(info.demo_insurants.iter().any(|i| i.kvnr == MARIA.0));
    let insurers = c.list_insurers().await.unwrap();
    assert_eq!(
        insurers
            .iter()
            .filter(|i| i.name.starts_with("AOK"))
            .count(),
        11
    );
    assert!(insurers.iter().any(|i| i.name == "AOK PLUS" && i.available));
    assert!(insurers.iter().any(|i| i.name == "HEK" && !i.available));

    let mut events = c.watch().await.unwrap();
    assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::NoProfile);
    let s = c
        .set_record_profile("aok plus", " x110411675")
        .await
        .unwrap();
    let profile = s.profile.unwrap();
    assert_eq!(
        (profile.insurer.as_str(), profile.kvnr.as_str()),
        (MARIA.1, MARIA.0)
    );

    // The QR code, and the daemon noticing the approval by itself (IDP polling).
    let s = c.start_login().await.unwrap();
    assert_eq!(s.aktensystem.as_deref(), Some("epa-as-1"));
    let login = s.login.unwrap();
    assert_eq!(&login.qr_png[..4], b"\x89PNG");
    assert!(login.qr_text.lines().count() > 10);
    assert!(login.completes_without_browser);
    let now = epa_daemon::session::util::now_unix();
    assert!((now + 80..=now + 91).contains(&login.expires_unix));
    let phone = {
        let demo_url = login.authorization_url.clone();
        let demo = Demo::of(&c).await;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            demo.approve(&demo_url, MARIA.0, MARIA.2).await
        })
    };
    let s = c.wait_login(Duration::from_secs(10)).await.unwrap();
    phone.await.unwrap();
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent, "{s:?}");
    let device = s.device.unwrap();
    assert_eq!(device.tries_left, 5);
    assert!(!device.device_name.is_empty());
    assert!(device.masked_addresses.is_empty());
    assert!((now + 6 * 3600 - 5..=now + 6 * 3600 + 5).contains(&device.code_valid_until_unix));
    // A limited session may manage devices: this PC is listed as pending.
    let devices = c.list_devices().await.unwrap();
    assert!(
        devices
            .iter()
            .any(|d| d.this_device && d.status == "pending"),
        "{devices:?}"
    );

    let code = demo.confirmation_code(MARIA.3).await;
    let s = c.confirm_device(&code).await.unwrap();
    assert_eq!(s.phase, EpaPhase::ReloginRequired);
    assert!(!s.relogin_skipped);
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    let s = c.complete_login(&link).await.unwrap();
    assert_eq!(s.phase, EpaPhase::LoggedIn);
    // Neither the code nor the authorization code nor the state reach the daemon's log.
    let auth_code = link
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let log = d.log();
    assert!(log.contains("ePA phase changed"), "{log}");
    for secret in [code.as_str(), auth_code, url_state(&link).as_str()] {
        assert!(!log.contains(secret), "{secret} in the log");
    }

    let phases: Vec<String> = wait_for_phase(&mut events, "anna", "LOGGED_IN")
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for p in [
        "LOGGED_OUT",
        "AWAITING_IDENT_APP",
        "DEVICE_CODE_SENT",
        "RELOGIN_REQUIRED",
        "LOGGED_IN",
    ] {
        assert!(phases.iter().any(|s| s == p), "{p} missing in {phases:?}");
    }

    // Devices: this PC, confirmed; renaming; removing it needs the explicit flag.
    let devices = c.list_devices().await.unwrap();
    let this = devices.iter().find(|d| d.this_device).unwrap().clone();
    assert_eq!(this.status, "confirmed");
    let renamed = c
        .rename_device(&this.identifier, "Arbeitszimmer")
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Arbeitszimmer");
    assert!(renamed.this_device);
    expect_reason(
        c.remove_device(&this.identifier, false).await,
        Reason::ThisDeviceConfirmationRequired,
    );
    expect_reason(
        c.remove_device("00000000-0000-4000-8000-000000000000", false)
            .await,
        Reason::DeviceNotFound,
    );

    // Logout, then a login with the confirmed device goes straight to full access.
    assert_eq!(c.epa_logout().await.unwrap().phase, EpaPhase::LoggedOut);
    let s = c.start_login().await.unwrap();
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    assert_eq!(
        c.complete_login(&link).await.unwrap().phase,
        EpaPhase::LoggedIn
    );

    // Locking the local user ends the ePA session; unlocked again, it is logged out.
    c.lock().await.unwrap();
    let c = user_client(&env, "anna", PASSWORD).await;
    assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::LoggedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_profiles_missing_records_and_wrong_phases_are_explained() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let c = user_client(&env, "bert", PASSWORD).await;
    let _demo = Demo::of(&c).await;

    expect_reason(c.start_login().await, Reason::EpaProfileMissing);
    expect_reason(
        c.set_record_profile("AOK PLUS", "X110411676").await,
        Reason::KvnrInvalid,
    );
    let e = expect_reason(
        c.set_record_profile("AOK Mars", MARIA.0).await,
        Reason::InsurerUnknown,
    );
    assert_eq!(reason(&e).1["insurer"], "AOK Mars");
    expect_reason(
        c.set_record_profile("DAK-Gesundheit", MARIA.0).await,
        Reason::InsurerUnavailable,
    );

    c.set_record_profile("AOK Hessen", "E082462818")
        .await
        .unwrap();
    expect_reason(c.start_login().await, Reason::NoRecord);
    c.set_record_profile("BARMER", "C131860918").await.unwrap();
    expect_reason(c.start_login().await, Reason::RecordNotActivated);
    assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::LoggedOut);

    let e = expect_reason(c.confirm_device("123456").await, Reason::EpaWrongPhase);
    assert_eq!(reason(&e).1["phase"], "LOGGED_OUT");
    expect_reason(
        c.complete_login("epa-desktop://auth/callback?code=a&state=b")
            .await,
        Reason::EpaWrongPhase,
    );
    expect_reason(c.list_devices().await, Reason::EpaNotLoggedIn);

    // Without a local session nothing works.
    let anonymous = DaemonClient::connect(&env.endpoint).await.unwrap();
    expect_reason(anonymous.epa_state().await, Reason::Locked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_checked_and_a_cancelled_login_ends() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let c = user_client(&env, "carla", PASSWORD).await;
    let _demo = Demo::of(&c).await;
    c.set_record_profile(MARIA.1, MARIA.0).await.unwrap();
    let s = c.start_login().await.unwrap();
    let state = url_state(&s.login.unwrap().authorization_url);

    let e = expect_reason(
        c.complete_login("https://evil.example/auth/callback?code=a&state=b")
            .await,
        Reason::CallbackInvalid,
    );
    assert!(reason(&e).1.contains_key("problem"));
    expect_reason(
        c.complete_login("epa-desktop://auth/callback?code=abc&state=not-the-state")
            .await,
        Reason::CallbackInvalid,
    );
    expect_reason(
        c.complete_login(&format!(
            "epa-desktop://auth/callback?code=abc&state={state}&extra=1"
        ))
        .await,
        Reason::CallbackInvalid,
    );
    // Nothing of that disturbed the pending login.
    assert_eq!(
        c.epa_state().await.unwrap().phase,
        EpaPhase::AwaitingIdentApp
    );

    let e = expect_reason(
        c.complete_login(&format!(
            "epa-desktop://auth/callback?error=access_denied&error_description=abgebrochen&state={state}"
        ))
        .await,
        Reason::LoginCancelled,
    );
    assert_eq!(reason(&e).1["error"], "access_denied");
    assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::LoggedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_down_and_three_failed_registrations_lock_out() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let c = user_client(&env, "dora", PASSWORD).await;
    let demo = Demo::of(&c).await;

    for round in 0..3 {
        let s = ident_app_login(&c, &demo, &MARIA_P).await;
        assert_eq!(s.phase, EpaPhase::DeviceCodeSent, "round {round}: {s:?}");
        let right = demo.confirmation_code(MARIA.3).await;
        let wrong = if right == "000000" {
            "111111"
        } else {
            "000000"
        };
        let e = expect_reason(c.confirm_device("12a456").await, Reason::DeviceCodeWrong);
        assert_eq!(
            reason(&e).1["tries_left"],
            "5",
            "a malformed code costs no try"
        );
        for left in (1..=4).rev() {
            let e = expect_reason(c.confirm_device(wrong).await, Reason::DeviceCodeWrong);
            assert_eq!(reason(&e).1["tries_left"], left.to_string());
            let s = c.epa_state().await.unwrap();
            assert_eq!(s.device.unwrap().tries_left, left);
        }
        expect_reason(c.confirm_device(wrong).await, Reason::DeviceCodeExpired);
        assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::LoggedOut);
    }
    // The fourth registration within 8 h is refused until a stated time.
    let s = c.start_login().await.unwrap();
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    let e = expect_reason(
        c.complete_login(&link).await,
        Reason::DeviceRegistrationLocked,
    );
    let meta = reason(&e).1;
    let until: u64 = meta["until_unix"].parse().unwrap();
    assert!(until > epa_daemon::session::util::now_unix(), "{meta:?}");
    assert!(meta["until"].ends_with('Z') || meta["until"].contains('+'));
    assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::LoggedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_expires_after_six_hours() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let c = user_client(&env, "emil", PASSWORD).await;
    let demo = Demo::of(&c).await;
    let s = ident_app_login(&c, &demo, &MARIA_P).await;
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent);
    let code = demo.confirmation_code(MARIA.3).await;
    // (The limited user session would idle out long before; keep it for this test.)
    demo.faults(serde_json::json!({ "session_idle_timeout_seconds": 86_400 }))
        .await;
    demo.advance_clock(6 * 3600 + 60).await;
    expect_reason(c.confirm_device(&code).await, Reason::DeviceCodeExpired);
    assert_eq!(c.epa_state().await.unwrap().phase, EpaPhase::LoggedOut);
    // The next login registers anew (and a new mail comes).
    let before = demo.mails(MARIA.3).await.len();
    let s = c.start_login().await.unwrap();
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    assert_eq!(
        c.complete_login(&link).await.unwrap().phase,
        EpaPhase::DeviceCodeSent
    );
    assert_eq!(demo.mails(MARIA.3).await.len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_device_survives_a_daemon_restart() {
    let env = TestEnv::new();
    let mut d = daemon(&env).await;
    let c = user_client(&env, "frieda", PASSWORD).await;
    let demo = Demo::of(&c).await;
    let s = ident_app_login(&c, &demo, &MARIA_P).await;
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent);
    let code = demo.confirmation_code(MARIA.3).await;
    let mails = demo.mails(MARIA.3).await.len();
    assert!(d.terminate().success(), "{}", d.log());
    drop(d);

    let _d = daemon(&env).await;
    let c = user_client(&env, "frieda", PASSWORD).await;
    let demo = Demo::of(&c).await;
    let s = c.epa_state().await.unwrap();
    assert_eq!(s.phase, EpaPhase::LoggedOut);
    assert_eq!(s.profile.unwrap().kvnr, MARIA.0);
    let s = c.start_login().await.unwrap();
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    // Straight to the code: no second registration, no second mail.
    let s = c.complete_login(&link).await.unwrap();
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent, "{s:?}");
    assert_eq!(demo.mails(MARIA.3).await.len(), mails);
    let s = c.confirm_device(&code).await.unwrap();
    assert_eq!(s.phase, EpaPhase::ReloginRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_asks_for_a_new_login() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let c = user_client(&env, "greta", PASSWORD).await;
    let demo = Demo::of(&c).await;
    full_login(&c, &demo, &MARIA_P).await;
    let mut events = c.watch().await.unwrap();

    // A VAU Restart: the keepalive notices, Watch says why.
    demo.faults(serde_json::json!({ "restart_next": true }))
        .await;
    let seen = wait_for_phase(&mut events, "greta", "LOGGED_OUT").await;
    assert_eq!(
        seen.last().unwrap().1.as_deref(),
        Some("backend_restart"),
        "{seen:?}"
    );
    let s = c.epa_state().await.unwrap();
    assert_eq!(s.login_required_reason.as_deref(), Some("backend_restart"));
    let e = expect_reason(c.list_devices().await, Reason::EpaNotLoggedIn);
    assert_eq!(reason(&e).1["login_required_reason"], "backend_restart");

    // A fresh login with the confirmed device.
    let s = c.start_login().await.unwrap();
    assert!(s.login_required_reason.is_none());
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    assert_eq!(
        c.complete_login(&link).await.unwrap().phase,
        EpaPhase::LoggedIn
    );

    // The Aktensystem drops the user session: the next call (or keepalive) finds out.
    demo.drop_sessions().await;
    let seen = wait_for_phase(&mut events, "greta", "LOGGED_OUT").await;
    assert_eq!(seen.last().unwrap().1.as_deref(), Some("session_expired"));
    expect_reason(c.list_devices().await, Reason::EpaNotLoggedIn);
    let s = c.start_login().await.unwrap();
    let link = demo
        .approve(&s.login.unwrap().authorization_url, MARIA.0, MARIA.2)
        .await;
    assert_eq!(
        c.complete_login(&link).await.unwrap().phase,
        EpaPhase::LoggedIn
    );
    assert!(!c.list_devices().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_local_users_with_different_records_at_once() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let anna = user_client(&env, "anna", PASSWORD).await;
    let ben = user_client(&env, "ben", PASSWORD).await;
    let demo = Demo::of(&anna).await;
    let (a, b) = tokio::join!(
        full_login(&anna, &demo, &MARIA_P),
        full_login(&ben, &demo, &PAUL)
    );
    assert_eq!(a.aktensystem.as_deref(), Some("epa-as-1"));
    assert_eq!(b.aktensystem.as_deref(), Some("epa-as-2"));
    assert_eq!(a.profile.unwrap().kvnr, MARIA.0);
    assert_eq!(b.profile.unwrap().kvnr, PAUL.kvnr);
    let (da, db) = tokio::join!(anna.list_devices(), ben.list_devices());
    let (da, db) = (da.unwrap(), db.unwrap());
    assert!(da.iter().any(|d| d.this_device) && db.iter().any(|d| d.this_device));
    assert_ne!(
        da.iter().find(|d| d.this_device).unwrap().identifier,
        db.iter().find(|d| d.this_device).unwrap().identifier
    );
    let mut events = anna.watch().await.unwrap();
    match events.next().await {
        Some(Ok(Event::Snapshot { state, .. })) => {
            assert_eq!(state.epa_phases["anna"], "LOGGED_IN");
            assert_eq!(state.epa_phases["ben"], "LOGGED_IN");
        }
        other => panic!("{other:?}"),
    }
    // One user logging out leaves the other alone.
    anna.epa_logout().await.unwrap();
    assert_eq!(ben.epa_state().await.unwrap().phase, EpaPhase::LoggedIn);
    assert!(!ben.list_devices().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_access_after_confirm_skips_the_relogin() {
    let env = TestEnv::new();
    let _d = daemon(&env).await;
    let c = user_client(&env, "hanna", PASSWORD).await;
    let demo = Demo::of(&c).await;
    demo.faults(serde_json::json!({ "full_access_after_confirm": true }))
        .await;
    let s = ident_app_login(&c, &demo, &MARIA_P).await;
    assert_eq!(s.phase, EpaPhase::DeviceCodeSent);
    let code = demo.confirmation_code(MARIA.3).await;
    let s = c.confirm_device(&code).await.unwrap();
    assert_eq!(s.phase, EpaPhase::LoggedIn, "{s:?}");
    assert!(s.relogin_skipped);
    assert!(s.login.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_demo_backend_is_reported_not_fatal() {
    let env = TestEnv::new();
    let nowhere = env.root.path().join("no-sandbox-here");
    let _d = TestDaemon::start_with(
        &env,
        &[
            "--insecure-test-kdf",
            "--sandbox-bin",
            nowhere.to_str().unwrap(),
        ],
    )
    .await;
    let c = user_client(&env, "ida", PASSWORD).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let problem = loop {
        let info = c.get_info().await.unwrap().environment_info.unwrap();
        if let Some(p) = info.problem {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "no problem reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(problem.contains("no-sandbox-here"), "{problem}");
    c.set_record_profile(MARIA.1, MARIA.0).await.unwrap();
    let e = expect_reason(c.start_login().await, Reason::BackendUnreachable);
    assert!(reason(&e).1.contains_key("retry_after_s"));
    assert!(
        c.list_insurers()
            .await
            .unwrap()
            .iter()
            .all(|i| !i.available)
    );
}
