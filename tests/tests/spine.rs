//! The spine's end-to-end suites: real `epad`, real `epa`, real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use epa_ipc::types::{Change, Event};
use epa_ipc::{ClientError, DaemonClient, PROTOCOL_HEADER, Reason, pb};
use epa_tests::{TestDaemon, TestEnv, bin, json, keys};
use futures_util::StreamExt;

fn mode(path: &std::path::Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn directory_socket_and_lock_are_private() {
    let env = TestEnv::new();
    let _d = TestDaemon::start(&env).await;
    assert_eq!(mode(env.run_dir()), 0o700);
    assert_eq!(mode(env.socket()), 0o600);
    assert!(
        fs::symlink_metadata(env.socket())
            .unwrap()
            .file_type()
            .is_socket()
    );
    assert_eq!(mode(&env.endpoint.lock_path()), 0o600);
    assert_eq!(mode(&env.data_dir), 0o700);
    assert_eq!(
        fs::symlink_metadata(env.socket()).unwrap().uid(),
        rustix::process::geteuid().as_raw()
    );
}

use std::os::unix::fs::FileTypeExt;

#[tokio::test]
async fn a_second_daemon_is_refused_with_a_clear_message() {
    let env = TestEnv::new();
    let first = TestDaemon::start(&env).await;
    let out = env.epad().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(epa_ipc::autostart::EXIT_ALREADY_RUNNING)
    );
    let err = stderr(&out);
    assert!(
        err.contains("already running") && err.contains(&format!("pid {}", first.pid())),
        "{err}"
    );
    // The first daemon is unharmed.
    DaemonClient::connect(&env.endpoint).await.unwrap();
}

#[tokio::test]
async fn a_stale_socket_after_kill_9_is_recovered() {
    let env = TestEnv::new();
    let mut d = TestDaemon::start(&env).await;
    d.kill9();
    assert!(
        env.socket().exists(),
        "kill -9 leaves the socket file behind"
    );
    let after = DaemonClient::connect(&env.endpoint).await.err();
    assert!(
        matches!(after, Some(ClientError::NotRunning { .. })),
        "{after:?}"
    );
    let d2 = TestDaemon::start(&env).await;
    let c = DaemonClient::connect(&env.endpoint).await.unwrap();
    assert_eq!(c.info().pid, d2.pid());
}

#[tokio::test]
async fn an_open_or_symlinked_runtime_dir_is_refused() {
    let env = TestEnv::new();
    fs::create_dir(env.run_dir()).unwrap();
    fs::set_permissions(env.run_dir(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.epad().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    assert!(!env.socket().exists());

    let env = TestEnv::new();
    let real = env.root.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, env.run_dir()).unwrap();
    let out = env.epad().output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));

    // The client refuses such a directory too, before sending anything.
    let r = DaemonClient::connect(&env.endpoint).await;
    assert!(matches!(r, Err(ClientError::Insecure { .. })), "{r:?}");
}

// Multi-threaded: `terminate()` blocks this thread while the client's connection task must
// still answer the server's graceful-shutdown ping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_in_order_and_removes_the_socket() {
    let env = TestEnv::new();
    let mut d = TestDaemon::start(&env).await;
    let client = DaemonClient::connect(&env.endpoint).await.unwrap();
    let mut events = client.watch().await.unwrap();
    assert!(matches!(
        events.next().await,
        Some(Ok(Event::Snapshot { .. }))
    ));
    let status = d.terminate();
    assert!(status.success(), "{status}\n{}", d.log());
    // Watchers hear about it before the stream ends.
    let mut saw_shutdown = false;
    while let Some(ev) = events.next().await {
        if let Ok(Event::Delta {
            change: Change::ShuttingDown,
            ..
        }) = ev
        {
            saw_shutdown = true;
        }
    }
    assert!(saw_shutdown);
    assert!(!env.socket().exists(), "socket left behind:\n{}", d.log());
}

#[tokio::test]
async fn watch_delivers_the_snapshot_first_then_numbered_deltas() {
    let env = TestEnv::new();
    let _d = TestDaemon::start(&env).await;
    let a = DaemonClient::connect(&env.endpoint).await.unwrap();
    let mut events = a.watch().await.unwrap();
    let (seq, clients) = match events.next().await {
        Some(Ok(Event::Snapshot { seq, state })) => {
            assert_eq!(state.environment, "demo");
            assert!(!state.shutting_down);
            (seq, state.connected_clients)
        }
        other => panic!("first message must be a snapshot, got {other:?}"),
    };
    assert!(clients >= 1);
    let b = DaemonClient::connect(&env.endpoint).await.unwrap();
    // Deltas are numbered without gaps. The harness's own readiness probe may say goodbye
    // (one client fewer) before `b` arrives; nothing else may come in between.
    let mut expected = seq + 1;
    let mut count = clients;
    let next_clients = async |events: &mut epa_ipc::client::EventStream, expected: &mut u64| {
        let next = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap();
        match next {
            Some(Ok(Event::Delta {
                seq: s,
                change: Change::ClientsChanged { connected_clients },
            })) => {
                assert_eq!(s, *expected, "deltas are numbered without gaps");
                *expected += 1;
                connected_clients
            }
            other => panic!("expected a ClientsChanged delta, got {other:?}"),
        }
    };
    loop {
        let n = next_clients(&mut events, &mut expected).await;
        if n == count + 1 {
            count = n;
            break;
        }
        assert_eq!(
            n + 1,
            count,
            "only an earlier client may leave before b arrives"
        );
        count = n;
    }
    drop(b);
    assert_eq!(next_clients(&mut events, &mut expected).await, count - 1);
}

/// A fake daemon that claims another protocol version.
async fn fake_daemon(env: &TestEnv, protocol_version: u32) -> tokio::task::JoinHandle<()> {
    struct Fake(u32);
    #[tonic::async_trait]
    impl pb::daemon_server::Daemon for Fake {
        async fn get_info(
            &self,
            _: tonic::Request<pb::GetInfoRequest>,
        ) -> Result<tonic::Response<pb::GetInfoResponse>, tonic::Status> {
            Ok(tonic::Response::new(pb::GetInfoResponse {
                daemon_version: "9.9.9".into(),
                protocol_version: self.0,
                environment: "demo".into(),
                uptime_ms: 1,
                pid: 1,
                environment_info: None,
            }))
        }
        async fn shutdown(
            &self,
            _: tonic::Request<pb::ShutdownRequest>,
        ) -> Result<tonic::Response<pb::ShutdownResponse>, tonic::Status> {
            Err(tonic::Status::unimplemented("fake"))
        }
    }
    let listener = epa_ipc::transport::bind(&env.endpoint).unwrap();
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(pb::daemon_server::DaemonServer::new(Fake(protocol_version)))
            .serve_with_incoming(listener.incoming())
            .await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_mismatch_is_a_typed_error() {
    let env = TestEnv::new();
    let server = fake_daemon(&env, epa_ipc::PROTOCOL_VERSION + 1).await;
    match DaemonClient::connect(&env.endpoint).await {
        Err(ClientError::Incompatible {
            daemon,
            client,
            daemon_version,
            ..
        }) => {
            assert_eq!(daemon, epa_ipc::PROTOCOL_VERSION + 1);
            assert_eq!(client, epa_ipc::PROTOCOL_VERSION);
            assert_eq!(daemon_version, "9.9.9");
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // The CLI says so, with exit code 3 and a stable code.
    let out = tokio::task::spawn_blocking({
        let mut cmd = env.epa();
        move || cmd.args(["--json", "status"]).output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert_eq!(v["error"]["code"], "DAEMON_INCOMPATIBLE");
    assert_eq!(keys(&v["error"]), ["code", "exit_code", "hint", "message"]);
    server.abort();
}

#[tokio::test]
async fn the_daemon_refuses_calls_with_another_protocol_version() {
    let env = TestEnv::new();
    let _d = TestDaemon::start(&env).await;
    let channel = epa_ipc::client::open_channel(&env.endpoint).await.unwrap();
    for header in [Some("999"), None] {
        let mut events = pb::events_client::EventsClient::new(channel.clone());
        let mut req = tonic::Request::new(pb::WatchRequest {});
        if let Some(h) = header {
            req.metadata_mut()
                .insert(PROTOCOL_HEADER, h.parse().unwrap());
        }
        let Err(status) = events.watch(req).await else {
            panic!("a call with protocol header {header:?} must be refused");
        };
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        match ClientError::from_status(status) {
            ClientError::Rpc { reason, .. } => assert_eq!(reason, Reason::ProtocolMismatch),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn status_json_autostarts_the_daemon_and_its_shape_is_pinned() {
    let env = TestEnv::new();
    let out = env.run_epa(&["--no-autostart", "--json", "status"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json(&out)["error"]["code"], "DAEMON_NOT_RUNNING");

    let out = env.run_epa(&["--json", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(keys(&v), ["client", "daemon", "socket"]);
    assert_eq!(
        keys(&v["daemon"]),
        [
            "daemon_version",
            "environment",
            "environment_info",
            "pid",
            "protocol_version",
            "uptime_ms"
        ]
    );
    assert_eq!(keys(&v["client"]), ["protocol_version", "version"]);
    assert_eq!(v["daemon"]["protocol_version"], epa_ipc::PROTOCOL_VERSION);
    assert_eq!(v["daemon"]["daemon_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["daemon"]["environment"], "demo");
    assert_eq!(v["socket"], env.socket().display().to_string());
    let pid = v["daemon"]["pid"].as_u64().unwrap();

    // The autostarted daemon is detached and stays; `daemon status` sees the same one.
    let out = env.run_epa(&["--json", "daemon", "status"]);
    assert_eq!(json(&out)["daemon"]["pid"].as_u64(), Some(pid));
    let out = env.run_epa(&["--json", "daemon", "start"]);
    assert_eq!(json(&out)["started"], false);

    let out = env.run_epa(&["--json", "daemon", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out), serde_json::json!({"stopped": true, "pid": pid}));
    assert!(!env.socket().exists());
    let out = env.run_epa(&["--json", "daemon", "status"]);
    assert_eq!(out.status.code(), Some(3));
    let out = env.run_epa(&["daemon", "stop"]);
    assert!(out.status.success());
}

#[test]
fn human_errors_are_german_by_default_and_english_on_request() {
    let env = TestEnv::new();
    let out = env
        .epa()
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "C.UTF-8")
        .args(["--no-autostart", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("läuft nicht") && err.contains("Hinweis:"),
        "{err}"
    );
    let out = env.run_epa(&["--no-autostart", "--lang", "en", "status"]);
    let err = stderr(&out);
    assert!(
        err.contains("not running") && err.contains("Hint:"),
        "{err}"
    );
}

/// Runs the naive peer against `socket`, optionally as `nobody`; (succeeded, stdout).
async fn run_peer(
    peer: &std::path::Path,
    socket: &std::path::Path,
    as_nobody: bool,
) -> (bool, String) {
    let mut cmd = if as_nobody {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(peer);
        c
    } else {
        std::process::Command::new(peer)
    };
    cmd.arg(socket);
    // The copied binary may be "text file busy" for a moment: another test's fork can still
    // hold the copy's write descriptor until that child execs.
    let out = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            match cmd.output() {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other.unwrap(),
            }
        }
        panic!("the peer binary stayed busy");
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The daemon checks the kernel's peer credentials on every accept. To test that check alone,
/// the directory and socket are opened up (as a careless admin might) and a naive peer connects
/// as `nobody`: the daemon must drop it. Needs root for `setpriv`; skipped with a reason otherwise.
#[tokio::test]
async fn a_connection_from_another_uid_is_refused() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to run a peer as another uid");
        return;
    }
    if std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: setpriv (util-linux) is not installed");
        return;
    }
    let env = TestEnv::new();
    let d = TestDaemon::start(&env).await;

    // A copy of the peer that `nobody` may execute.
    let peer_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(peer_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let peer = peer_dir.path().join("epa-test-peer");
    fs::copy(bin("epa-test-peer"), &peer).unwrap();
    fs::set_permissions(&peer, fs::Permissions::from_mode(0o755)).unwrap();

    // Control: the same peer as our own uid gets an answer.
    let (ok, text) = run_peer(&peer, env.socket(), false).await;
    assert!(ok && text.starts_with("OK "), "{text}");

    // Let the kernel admit `nobody`, so the daemon's own check is the only barrier.
    fs::set_permissions(env.root.path(), fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(env.run_dir(), fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(env.socket(), fs::Permissions::from_mode(0o666)).unwrap();
    let (ok, text) = run_peer(&peer, env.socket(), true).await;
    assert!(
        !ok && text.starts_with("ERR "),
        "nobody got through: {text}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !d.log().contains("refused a connection from another user") {
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.log().contains("uid=Some(65534)"), "{}", d.log());
    // The daemon still serves its owner.
    fs::set_permissions(env.run_dir(), fs::Permissions::from_mode(0o700)).unwrap();
    DaemonClient::connect(&env.endpoint).await.unwrap();
}
