//! Local users and the encrypted vault, end to end: real daemon, real store on disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use epa_ipc::types::{Change, Event, LockCause};
use epa_ipc::{ClientError, DaemonClient, Reason};
use epa_tests::{TestDaemon, TestEnv, json, pw, run_epa_stdin};
use futures_util::StreamExt;

const PASSWORD: &str = "Kastanienbaum im Mai";

fn reason(e: &ClientError) -> Option<&Reason> {
    match e {
        ClientError::Rpc { reason, .. } => Some(reason),
        _ => None,
    }
}

async fn user_session(env: &TestEnv, name: &str) -> DaemonClient {
    let c = DaemonClient::connect(&env.endpoint).await.unwrap();
    if c.list_users()
        .await
        .unwrap()
        .users
        .iter()
        .all(|u| u.username != name)
    {
        c.create_user(name, &pw(PASSWORD)).await.unwrap();
    }
    let (token, _) = c.unlock(name, &pw(PASSWORD)).await.unwrap();
    c.with_session(token)
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_readable_reaches_the_disk() {
    let env = TestEnv::new();
    let name = "Zacharias Markermann";
    let markers = ["MARKER-befund-4711", "MARKER-Diagnose-Z99.9", "X110411675"];
    {
        let mut d = TestDaemon::start(&env).await;
        let s = user_session(&env, name).await;
        for (i, m) in markers.iter().enumerate() {
            s.set_preference(&format!("note.{i}"), &format!("{m} {m}"))
                .await
                .unwrap();
        }
        s.accept_terms("2026-11").await.unwrap();
        assert!(d.terminate().success());
    }
    let mut files = Vec::new();
    all_files(&env.data_dir, &mut files);
    assert!(files.len() > 2, "{files:?}");
    let needles: Vec<&[u8]> = markers
        .iter()
        .map(|m| m.as_bytes())
        .chain([
            name.as_bytes(),
            "Markermann".as_bytes(),
            PASSWORD.as_bytes(),
            b"note.0",
        ])
        .collect();
    // The demo backend (a stand-in for the remote Aktensysteme, with the seed's test persons)
    // keeps its own server-side state there; only the modes apply to it.
    let demo_backend = env.data_dir.join("demo-backend");
    for f in &files {
        let bytes = if f.starts_with(&demo_backend) {
            Vec::new()
        } else {
            fs::read(f).unwrap()
        };
        for n in &needles {
            assert!(
                !contains(&bytes, n),
                "{} contains {:?}",
                f.display(),
                String::from_utf8_lossy(n)
            );
        }
        assert_eq!(
            fs::metadata(f).unwrap().mode() & 0o077,
            0,
            "{} is readable by others",
            f.display()
        );
    }
    // And it is all still there.
    let _d = TestDaemon::start(&env).await;
    let s = user_session(&env, name).await;
    assert_eq!(
        s.get_preference("note.1").await.unwrap().as_deref(),
        Some("MARKER-Diagnose-Z99.9 MARKER-Diagnose-Z99.9")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_damages_one_record_and_the_others_stay_readable() {
    let env = TestEnv::new();
    let values = [("a", "alpha"), ("b", "beta"), ("c", "gamma")];
    {
        let mut d = TestDaemon::start(&env).await;
        let s = user_session(&env, "Flip").await;
        for (k, v) in values {
            s.set_preference(k, v).await.unwrap();
        }
        assert!(d.terminate().success());
    }
    {
        // Tamper with one sealed value of the user's vault, as bit rot or an attacker would.
        let db = sled::open(env.data_dir.join("store/db")).unwrap();
        let vault = db
            .tree_names()
            .into_iter()
            .find(|n| n.starts_with(b"u/"))
            .expect("a user vault");
        let tree = db.open_tree(vault).unwrap();
        let (k, v) = tree.iter().next().unwrap().unwrap();
        let mut v = v.to_vec();
        let mid = v.len() / 2;
        v[mid] ^= 0x20;
        tree.insert(k, v).unwrap();
        db.flush().unwrap();
    }
    let _d = TestDaemon::start(&env).await;
    let s = user_session(&env, "Flip").await;
    let (mut damaged, mut fine) = (0, 0);
    for (k, v) in values {
        match s.get_preference(k).await {
            Ok(got) => {
                assert_eq!(got.as_deref(), Some(v));
                fine += 1;
            }
            Err(e) => {
                assert_eq!(reason(&e), Some(&Reason::VaultDamaged), "{e:?}");
                damaged += 1;
            }
        }
    }
    assert_eq!((damaged, fine), (1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_kill_9_during_writes_lose_no_acknowledged_write() {
    let env = TestEnv::new();
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    for round in 0..50u64 {
        let mut d = TestDaemon::start(&env).await;
        let s = user_session(&env, "Crash").await;
        // Every earlier acknowledged write is there.
        for (k, v) in &acknowledged {
            assert_eq!(
                s.get_preference(k).await.unwrap().as_deref(),
                Some(v.as_str()),
                "round {round}"
            );
        }
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                let mut done = Vec::new();
                for n in 0..10_000u32 {
                    let (k, v) = (format!("r{round}.{n}"), format!("value {round}/{n}"));
                    match s.set_preference(&k, &v).await {
                        Ok(()) => done.push((k, v)),
                        Err(_) => break,
                    }
                }
                done
            })
        };
        // Kill at a different moment each round.
        tokio::time::sleep(Duration::from_millis(3 + (round * 7) % 40)).await;
        d.kill9();
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(
        acknowledged.len() > 50,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );
    let _d = TestDaemon::start(&env).await;
    let s = user_session(&env, "Crash").await;
    for (k, v) in &acknowledged {
        assert_eq!(
            s.get_preference(k).await.unwrap().as_deref(),
            Some(v.as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_backoff_survives_a_restart() {
    let env = TestEnv::new();
    {
        let mut d = TestDaemon::start(&env).await;
        let c = DaemonClient::connect(&env.endpoint).await.unwrap();
        c.create_user("Bert", &pw(PASSWORD)).await.unwrap();
        for left in (0..5).rev() {
            let e = c
                .unlock("Bert", &pw("falsches Passwort"))
                .await
                .err()
                .unwrap();
            assert_eq!(reason(&e), Some(&Reason::WrongPassword));
            match &e {
                ClientError::Rpc { metadata, .. } => {
                    assert_eq!(
                        metadata.get("failures_before_backoff"),
                        Some(&left.to_string())
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        let e = c.unlock("Bert", &pw(PASSWORD)).await.err().unwrap();
        assert_eq!(reason(&e), Some(&Reason::UnlockBackoff));
        assert!(d.terminate().success());
    }
    let _d = TestDaemon::start(&env).await;
    let c = DaemonClient::connect(&env.endpoint).await.unwrap();
    let e = c.unlock("Bert", &pw(PASSWORD)).await.err().unwrap();
    match &e {
        ClientError::Rpc {
            reason: Reason::UnlockBackoff,
            metadata,
            ..
        } => {
            let wait: u64 = metadata["retry_after_s"].parse().unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
        }
        other => panic!("{other:?}"),
    }
    // The CLI says when to try again.
    let out = run_epa_stdin(
        &env,
        &["--lang", "en", "user", "login", "Bert", "--password-stdin"],
        "x\n",
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Try again in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_are_isolated() {
    let env = TestEnv::new();
    let _d = TestDaemon::start(&env).await;
    let a = user_session(&env, "Anna").await;
    let b = user_session(&env, "Bernd").await;
    a.set_preference("ui.lang", "de").await.unwrap();
    b.set_preference("ui.lang", "en").await.unwrap();
    assert_eq!(
        a.get_preference("ui.lang").await.unwrap().as_deref(),
        Some("de")
    );
    assert_eq!(
        b.get_preference("ui.lang").await.unwrap().as_deref(),
        Some("en")
    );
    // B's password cannot delete A; B's lock locks only B.
    let anon = DaemonClient::connect(&env.endpoint).await.unwrap();
    let e = anon
        .delete_user("Anna", &pw(PASSWORD.to_uppercase().as_str()))
        .await
        .err()
        .unwrap();
    assert_eq!(reason(&e), Some(&Reason::WrongPassword));
    b.lock().await.unwrap();
    assert_eq!(
        reason(&b.get_preference("ui.lang").await.err().unwrap()),
        Some(&Reason::Locked)
    );
    assert_eq!(
        a.get_preference("ui.lang").await.unwrap().as_deref(),
        Some("de")
    );
    // A forged token is no session at all.
    let forged = anon.with_session(epa_ipc::SessionToken::new("00".repeat(32)));
    assert_eq!(
        reason(&forged.get_preference("ui.lang").await.err().unwrap()),
        Some(&Reason::Locked)
    );
    // Deleting wipes: a new user of the same name starts empty.
    anon.delete_user("anna", &pw(PASSWORD)).await.unwrap();
    assert_eq!(
        reason(&a.get_preference("ui.lang").await.err().unwrap()),
        Some(&Reason::Locked)
    );
    let a2 = user_session(&env, "Anna").await;
    assert_eq!(a2.get_preference("ui.lang").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_unlock_and_idle_timeout_appear_on_watch() {
    let env = TestEnv::new();
    let _d = TestDaemon::start_with(&env, &["--insecure-test-kdf", "--idle-timeout", "1"]).await;
    let c = DaemonClient::connect(&env.endpoint).await.unwrap();
    c.create_user("Wanda", &pw(PASSWORD)).await.unwrap();
    let mut events = c.watch().await.unwrap();
    match events.next().await {
        Some(Ok(Event::Snapshot { state, .. })) => {
            assert_eq!(state.users.len(), 1);
            assert!(!state.users[0].unlocked);
        }
        other => panic!("{other:?}"),
    }
    let mut next_user_change = async || loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap();
        match ev {
            Some(Ok(Event::Delta {
                change: c @ (Change::UserLocked { .. } | Change::UserUnlocked { .. }),
                ..
            })) => break c,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    let (token, _) = c.unlock("Wanda", &pw(PASSWORD)).await.unwrap();
    let s = c.with_session(token);
    assert_eq!(
        next_user_change().await,
        Change::UserUnlocked {
            username: "Wanda".into()
        }
    );
    s.lock().await.unwrap();
    assert_eq!(
        next_user_change().await,
        Change::UserLocked {
            username: "Wanda".into(),
            cause: LockCause::Lock
        }
    );
    let (token, _) = c.unlock("Wanda", &pw(PASSWORD)).await.unwrap();
    let s = c.with_session(token);
    assert_eq!(
        next_user_change().await,
        Change::UserUnlocked {
            username: "Wanda".into()
        }
    );
    // No calls for longer than the idle timeout.
    assert_eq!(
        next_user_change().await,
        Change::UserLocked {
            username: "Wanda".into(),
            cause: LockCause::Idle
        }
    );
    assert_eq!(
        reason(&s.get_preference("x").await.err().unwrap()),
        Some(&Reason::Locked)
    );
}

#[test]
fn the_cli_keeps_its_session_private_and_never_takes_passwords_from_argv() {
    let env = TestEnv::new();
    let out = run_epa_stdin(
        &env,
        &["--json", "user", "create", "Carla", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["username"], "Carla");
    // No terminal and no --password-stdin: a usage error, nothing read from argv.
    let out = env.run_epa(&["--json", "user", "login", "Carla"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["error"]["code"], "NO_TERMINAL");
    let out = run_epa_stdin(
        &env,
        &["--json", "user", "login", "carla", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["terms"]["acceptance_required"], true);
    assert!(
        v.get("session_token").is_none() && !String::from_utf8_lossy(&out.stdout).contains("token")
    );
    let session = env.endpoint.session_path();
    assert_eq!(fs::metadata(&session).unwrap().mode() & 0o777, 0o600);
    // The next command shares the login.
    let out = env.run_epa(&["--json", "user", "terms", "--accept"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["acceptance_required"], false);
    let out = env.run_epa(&["--json", "user", "list"]);
    assert_eq!(json(&out)["users"][0]["terms_accepted_version"], "2026-11");
    let out = env.run_epa(&["user", "lock"]);
    assert!(out.status.success());
    assert!(!session.exists());
    let out = env.run_epa(&["--json", "user", "terms", "--accept"]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(json(&out)["error"]["code"], "LOCKED");
    let out = env.run_epa(&["--json", "user", "terms"]);
    let texts = json(&out);
    assert_eq!(texts.as_array().unwrap().len(), 4);
    assert_eq!(texts[0]["title"], "Nutzungsbedingungen");
    let _ = env.run_epa(&["daemon", "stop"]);
}
