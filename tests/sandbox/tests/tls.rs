//! The sandbox's CA and TLS listener: persistence, trust, and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use epa_sandbox::tls::{self, SandboxCa, TlsError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Upper bound for things that should happen promptly; only hit when a test fails.
const PROMPTLY: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(ca: &SandboxCa, names: &[&str]) -> Self {
        let router = Router::new().route("/hello", get(|| async { "hi" })).route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        Self::start_with(ca, names, router).await
    }

    async fn start_with(ca: &SandboxCa, names: &[&str], router: Router) -> Self {
        let config = ca.server_config(names).unwrap();
        // Bind first, then spawn: the port accepts connections before the task even runs.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tls::serve_tls(listener, config, router, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    async fn shut_down(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let result = tokio::time::timeout(PROMPTLY, &mut self.task)
            .await
            .expect("serve_tls did not return after shutdown");
        result.unwrap().unwrap();
    }
}

/// A reqwest client that trusts exactly `ca_pem` (reqwest's own rustls config).
fn client_trusting(ca_pem: &str) -> reqwest::Client {
    tls::install_crypto_provider();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

/// A reqwest client using our own [`tls::client_config`].
fn client_preconfigured(ca_pem: &str) -> reqwest::Client {
    tls::install_crypto_provider();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client_config(ca_pem).unwrap())
        .build()
        .unwrap()
}

/// The rustls error somewhere in `err`'s source chain. `io::Error` hides its payload from
/// `source()`, so look inside it explicitly.
fn rustls_error(err: &reqwest::Error) -> Option<rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(e) = e.downcast_ref::<rustls::Error>() {
            return Some(e.clone());
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

fn assert_unknown_issuer(err: &reqwest::Error) {
    assert!(
        matches!(
            rustls_error(err),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ),
        "expected UnknownIssuer, got {err:?}"
    );
}

async fn get_text(client: &reqwest::Client, url: &str) -> reqwest::Result<String> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn ca_is_persisted_and_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state").join("tls");

    let first = SandboxCa::load_or_create(&dir).unwrap();
    assert_eq!(first.ca_cert_path(), dir.join("ca.pem"));
    assert!(dir.join("ca.key").is_file());
    assert_eq!(
        std::fs::read_to_string(first.ca_cert_path()).unwrap(),
        first.ca_pem()
    );
    assert!(first.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }

    let second = SandboxCa::load_or_create(&dir).unwrap();
    assert_eq!(second.ca_pem(), first.ca_pem());
    #[cfg(unix)]
    assert_eq!(mode(&dir.join("ca.key")), 0o600);

    // Leaves issued by the reloaded CA verify against the original certificate.
    let config = second.server_config(&["sandbox.test"]).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

    // Another directory gets another CA.
    let other = SandboxCa::load_or_create(&tmp.path().join("other")).unwrap();
    assert_ne!(other.ca_pem(), first.ca_pem());
}

#[cfg(unix)]
#[test]
fn loose_key_permissions_are_tightened() {
    use std::os::unix::fs::PermissionsExt as _;

    let tmp = tempfile::tempdir().unwrap();
    let ca = SandboxCa::load_or_create(tmp.path()).unwrap();
    let key = tmp.path().join("ca.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = SandboxCa::load_or_create(tmp.path()).unwrap();
    assert_eq!(again.ca_pem(), ca.ca_pem());
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn damaged_files_are_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    SandboxCa::load_or_create(dir).unwrap();
    let cert = dir.join("ca.pem");
    let key = dir.join("ca.key");
    let good_cert = std::fs::read(&cert).unwrap();
    let good_key = std::fs::read(&key).unwrap();

    std::fs::write(&cert, "not a certificate").unwrap();
    let err = SandboxCa::load_or_create(dir).unwrap_err();
    assert!(
        matches!(&err, TlsError::Damaged { path, .. } if *path == cert),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&cert.display().to_string()),
        "{err}"
    );

    std::fs::write(&cert, &good_cert).unwrap();
    std::fs::write(
        &key,
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = SandboxCa::load_or_create(dir).unwrap_err();
    assert!(
        matches!(&err, TlsError::Damaged { path, .. } if *path == key),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&key.display().to_string()),
        "{err}"
    );

    // A key that does not belong to the certificate.
    let other_dir = tmp.path().join("other");
    SandboxCa::load_or_create(&other_dir).unwrap();
    std::fs::copy(other_dir.join("ca.key"), &key).unwrap();
    let err = SandboxCa::load_or_create(dir).unwrap_err();
    assert!(matches!(err, TlsError::Mismatch { .. }), "{err:?}");

    // A certificate without its key is not silently replaced.
    std::fs::remove_file(&key).unwrap();
    let err = SandboxCa::load_or_create(dir).unwrap_err();
    assert!(matches!(err, TlsError::MissingKey { .. }), "{err:?}");

    // Restored, it loads again.
    std::fs::write(&key, &good_key).unwrap();
    let ca = SandboxCa::load_or_create(dir).unwrap();
    assert_eq!(ca.ca_pem().as_bytes(), good_cert.as_slice());
}

#[test]
fn a_key_without_certificate_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let first = SandboxCa::load_or_create(tmp.path()).unwrap();
    std::fs::remove_file(first.ca_cert_path()).unwrap();
    let second = SandboxCa::load_or_create(tmp.path()).unwrap();
    assert_ne!(second.ca_pem(), first.ca_pem());
    assert!(second.ca_cert_path().is_file());
}

#[test]
fn invalid_names_and_pems_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = SandboxCa::load_or_create(tmp.path()).unwrap();
    let err = ca.server_config(&["not a hostname"]).unwrap_err();
    assert!(matches!(err, TlsError::InvalidName { .. }), "{err:?}");
    assert!(
        ca.server_config(&["*.sandbox.test", "::1", "10.0.0.1"])
            .is_ok()
    );

    assert!(matches!(
        tls::client_config(""),
        Err(TlsError::ClientCa { .. })
    ));
    assert!(matches!(
        tls::client_config("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(TlsError::ClientCa { .. })
    ));
    assert!(tls::client_config(ca.ca_pem()).is_ok());
}

#[tokio::test]
async fn trusted_client_reaches_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = SandboxCa::load_or_create(tmp.path()).unwrap();
    let server = Server::start(&ca, &["epa-as-1.sandbox.test"]).await;

    let client = client_trusting(ca.ca_pem());
    assert_eq!(
        get_text(&client, &server.url("/hello")).await.unwrap(),
        "hi"
    );

    // Handlers see the peer address.
    let peer: SocketAddr = get_text(&client, &server.url("/peer"))
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(peer.ip().is_loopback(), "{peer}");
    assert_ne!(peer.port(), server.addr.port());

    // Our own client config works as well, also by host name ("localhost" is always included,
    // and the names passed to server_config are honoured).
    let client = client_preconfigured(ca.ca_pem());
    assert_eq!(
        get_text(&client, &server.url("/hello")).await.unwrap(),
        "hi"
    );
    let url = format!("https://localhost:{}/hello", server.addr.port());
    assert_eq!(get_text(&client, &url).await.unwrap(), "hi");
    let named = reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client_config(ca.ca_pem()).unwrap())
        .resolve("epa-as-1.sandbox.test", server.addr)
        .build()
        .unwrap();
    let url = format!("https://epa-as-1.sandbox.test:{}/hello", server.addr.port());
    assert_eq!(get_text(&named, &url).await.unwrap(), "hi");

    // A name the certificate does not cover is refused.
    let unnamed = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()])
        .resolve("elsewhere.sandbox.test", server.addr)
        .build()
        .unwrap();
    let url = format!(
        "https://elsewhere.sandbox.test:{}/hello",
        server.addr.port()
    );
    let err = get_text(&unnamed, &url).await.unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{err:?}"
    );

    server.shut_down().await;
}

#[tokio::test]
async fn client_without_our_ca_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = SandboxCa::load_or_create(tmp.path()).unwrap();
    let server = Server::start(&ca, &[]).await;

    // Default roots (the platform verifier) do not include the sandbox CA.
    tls::install_crypto_provider();
    let default_client = reqwest::Client::builder().build().unwrap();
    let err = get_text(&default_client, &server.url("/hello"))
        .await
        .unwrap_err();
    assert_unknown_issuer(&err);

    // Trusting another sandbox's CA does not help, neither with reqwest's config ...
    let other = SandboxCa::load_or_create(&tmp.path().join("other")).unwrap();
    let err = get_text(&client_trusting(other.ca_pem()), &server.url("/hello"))
        .await
        .unwrap_err();
    assert_unknown_issuer(&err);
    // ... nor with ours.
    let err = get_text(&client_preconfigured(other.ca_pem()), &server.url("/hello"))
        .await
        .unwrap_err();
    assert_unknown_issuer(&err);

    // A client that is not speaking TLS at all does not disturb the server either.
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        raw.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(PROMPTLY, raw.read_to_end(&mut buf))
            .await
            .expect("server did not close a non-TLS connection");
    }

    // The failed handshakes did not stop the server.
    let client = client_trusting(ca.ca_pem());
    assert_eq!(
        get_text(&client, &server.url("/hello")).await.unwrap(),
        "hi"
    );

    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = SandboxCa::load_or_create(tmp.path()).unwrap();
    let server = Server::start(&ca, &[]).await;
    let addr = server.addr;

    // The client keeps its connection alive in its pool; that must not block the shutdown.
    let client = client_trusting(ca.ca_pem());
    assert_eq!(
        get_text(&client, &server.url("/hello")).await.unwrap(),
        "hi"
    );
    let url = server.url("/hello");

    server.shut_down().await;

    // The listener is closed: new connections are refused.
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(get_text(&client, &url).await.is_err());
}

#[tokio::test]
async fn in_flight_connections_are_dropped_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = SandboxCa::load_or_create(tmp.path()).unwrap();
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    let router = Router::new().route(
        "/hang",
        get({
            let entered = entered.clone();
            || async move {
                entered.notify_one();
                std::future::pending::<()>().await;
                "never"
            }
        }),
    );
    let server = Server::start_with(&ca, &[], router).await;

    // A client that connects but never starts the handshake ...
    let _stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // ... and a request whose handler never answers.
    let client = client_trusting(ca.ca_pem());
    let request = tokio::spawn(client.get(server.url("/hang")).send());
    tokio::time::timeout(PROMPTLY, entered.notified())
        .await
        .expect("the request did not reach the handler");

    server.shut_down().await;
    let response = tokio::time::timeout(PROMPTLY, request)
        .await
        .expect("the hanging request was not dropped")
        .unwrap();
    assert!(response.is_err(), "{response:?}");
}
