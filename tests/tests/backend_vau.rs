//! The daemon's VAU transport against the sandbox over real HTTPS: strict handshake, inner
//! requests, `VAU-NP`, and recovery from a server-side Restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use epa_daemon::backend::{BackendError, VauClient, VauTarget, tls};
use epa_protocol::http::Request;
use epa_protocol::vau::Environment;
use epa_sandbox::server::Sandbox;
use epa_tests::start_sandbox;

const UA: &str = "EPADESKTOP0123456789/0.1.0";

fn target(s: &Sandbox, system: &str) -> VauTarget {
    VauTarget {
        base_url: s
            .ready
            .aktensysteme
            .iter()
            .find(|a| a.id == system)
            .unwrap()
            .base_url
            .clone(),
        trusted_roots: vec![std::fs::read(&s.ready.vau_trust_anchor).unwrap()],
        environment: Environment::Test,
        user_agent: UA.into(),
    }
}

fn client(s: &Sandbox, system: &str) -> VauClient {
    let ca = std::fs::read(&s.ready.ca_cert).unwrap();
    VauClient::new(tls::http_client(&ca).unwrap(), target(s, system))
}

fn authorization_request(s: &Sandbox) -> Request {
    Request::get("/epa/authz/v1/send_authorization_request_fdv")
        .header("x-useragent", UA)
        .header("x-idp-iss", &s.ready.idps[0].issuer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_a_verified_channel_and_survive_a_restart() {
    let s = start_sandbox().await;
    let vau = client(&s, "epa-as-1");
    assert!(!vau.is_open().await);
    let r = vau.send(&authorization_request(&s)).await.unwrap();
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    assert!(vau.is_open().await);
    vau.set_vau_np("ab".repeat(32)).await;

    s.aktensystem("epa-as-1")
        .unwrap()
        .faults
        .restart_next
        .store(true, Ordering::SeqCst);
    let e = vau.send(&authorization_request(&s)).await.unwrap_err();
    assert!(matches!(e, BackendError::ChannelLost), "{e}");
    assert!(e.needs_new_channel());
    assert!(!vau.is_open().await);
    // The next request opens a new channel by itself.
    let r = vau.send(&authorization_request(&s)).await.unwrap();
    assert_eq!(r.status, 302);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_vau_root_or_tls_ca_is_refused() {
    let s = start_sandbox().await;
    let other = start_sandbox().await;
    // The other sandbox's VAU root: the handshake fails the certificate check.
    let ca = std::fs::read(&s.ready.ca_cert).unwrap();
    let vau = VauClient::new(
        tls::http_client(&ca).unwrap(),
        VauTarget {
            trusted_roots: vec![std::fs::read(&other.ready.vau_trust_anchor).unwrap()],
            ..target(&s, "epa-as-1")
        },
    );
    let e = vau.send(&authorization_request(&s)).await.unwrap_err();
    assert!(matches!(e, BackendError::Vau(_)), "{e}");
    assert!(!vau.is_open().await);
    // The other sandbox's TLS CA: no connection at all.
    let vau = VauClient::new(
        tls::http_client(&std::fs::read(&other.ready.ca_cert).unwrap()).unwrap(),
        target(&s, "epa-as-1"),
    );
    let e = vau.send(&authorization_request(&s)).await.unwrap_err();
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e}");
    // A production client refuses the sandbox's PU=0 channel.
    let prod = VauClient::new(
        tls::http_client(&ca).unwrap(),
        VauTarget {
            environment: Environment::Production,
            ..target(&s, "epa-as-1")
        },
    );
    // (The server sees the PU flag in the first data message and refuses it.)
    let e = prod.send(&authorization_request(&s)).await.unwrap_err();
    assert!(
        matches!(&e, BackendError::Outer { status: 403, detail } if detail.contains("PU flag")),
        "{e}"
    );
    s.shutdown().await;
    other.shutdown().await;
}
