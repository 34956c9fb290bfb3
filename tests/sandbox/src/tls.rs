//! TLS for every sandbox listener.
//!
//! The sandbox runs its own certificate authority ([`SandboxCa`]). The CA is created once per
//! state directory (`<state_dir>/tls/ca.pem` + `ca.key`) and reused on later starts, so a client
//! that was told to trust it keeps working across restarts. Each listener gets a fresh leaf
//! certificate signed by that CA ([`SandboxCa::server_config`]); clients trust the CA explicitly
//! ([`client_config`], or reqwest's `tls_certs_only`). Nothing here turns certificate
//! verification off.
//!
//! [`serve_tls`] serves an axum [`Router`] over TLS (HTTP/1.1, hyper + hyper-util).
//!
//! # Remote address in handlers
//!
//! [`serve_tls`] inserts `axum::extract::ConnectInfo<std::net::SocketAddr>` (the TCP peer address)
//! into the extensions of every request, so a handler can simply take
//! `ConnectInfo(peer): ConnectInfo<SocketAddr>` as an extractor; no
//! `into_make_service_with_connect_info` is needed (or possible) here.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// File name of the CA certificate inside the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key inside the CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca.key";

/// How long a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight connections may keep running after the shutdown future resolved.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Pause after an accept error that is not about a single connection (e.g. out of file
/// descriptors), so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(250);

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Validity of the CA certificate (it is reused across restarts).
const CA_VALIDITY: Duration = Duration::from_secs(20 * 365 * 24 * 60 * 60);
/// Validity of a leaf certificate (a fresh one is issued on every start).
const LEAF_VALIDITY: Duration = Duration::from_secs(398 * 24 * 60 * 60);

/// Everything that can go wrong with the sandbox's TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot create the TLS directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot restrict the permissions of {path}: {source}")]
    Permissions { path: PathBuf, source: io::Error },
    #[error(
        "{path} is damaged: {reason} (delete ca.pem and ca.key in that directory to create a new CA; clients must then trust the new ca.pem)"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{cert} exists but its private key {key} is missing (delete {cert} to create a new CA; clients must then trust the new one)"
    )]
    MissingKey { cert: PathBuf, key: PathBuf },
    #[error("{cert} and {key} do not form a usable CA: {reason} (delete both to create a new CA)")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{name:?} is not a valid DNS name or IP address for a server certificate")]
    InvalidName { name: String },
    #[error("cannot build the rustls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the CA PEM for the client contains no usable certificate: {reason}")]
    ClientCa { reason: String },
}

/// The sandbox's own CA.
///
/// Generated once per state dir (persisted as `<state_dir>/tls/ca.pem` and `ca.key`, the key with
/// mode 0600) and reused on the next start; without a state dir, the caller passes some other
/// directory (e.g. a temp dir). Either way [`ca_cert_path`](Self::ca_cert_path) is a real PEM file
/// that other processes can read.
///
/// Callers must not run two `load_or_create` on the same directory concurrently (the sandbox
/// holds its state dir exclusively); a half-written CA is detected on the next load.
pub struct SandboxCa {
    cert_path: PathBuf,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for SandboxCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxCa")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl SandboxCa {
    /// Loads the CA from `dir/ca.pem` + `dir/ca.key`, or creates it there.
    ///
    /// `dir` is created (mode 0700) if missing. A damaged file is an error naming that file; a
    /// certificate without its key is an error (clients may already trust that certificate). A
    /// key without a certificate is the remains of an interrupted creation (nobody can trust a
    /// certificate that was never written) and is replaced. A key file readable by others is
    /// tightened to 0600.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        create_private_dir(dir)?;
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let cert_exists = exists(&cert_path)?;
        let key_exists = exists(&key_path)?;
        match (cert_exists, key_exists) {
            (true, true) => Self::load(cert_path, &key_path),
            (true, false) => Err(TlsError::MissingKey {
                cert: cert_path,
                key: key_path,
            }),
            (false, _) => Self::create(dir, cert_path, &key_path),
        }
    }

    /// Path of the CA certificate (PEM). This is the `ca_cert` of the ready line.
    pub fn ca_cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The CA certificate as PEM text (the content of [`ca_cert_path`](Self::ca_cert_path)).
    pub fn ca_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A fresh leaf certificate for `dns_names` (DNS names and IP addresses, both become SANs;
    /// `localhost`, `127.0.0.1` and `::1` are always included), signed by this CA, as a rustls
    /// server config: TLS 1.2 + 1.3, ALPN `http/1.1`, ECDSA P-256 key. Uses the ring provider
    /// directly, so it does not depend on [`install_crypto_provider`].
    pub fn server_config(&self, dns_names: &[&str]) -> Result<Arc<ServerConfig>, TlsError> {
        let (leaf_der, leaf_key) = self.issue_leaf(dns_names)?;
        let mut config = ServerConfig::builder_with_provider(ring_provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_der], leaf_key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    fn create(dir: &Path, cert_path: PathBuf, key_path: &Path) -> Result<Self, TlsError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(&key);
        let cert_pem = params.self_signed(&key)?.pem();
        // Key first: a key without a certificate is recognised as an interrupted creation.
        write_file_atomically(dir, key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_file_atomically(dir, &cert_path, cert_pem.as_bytes(), 0o644)?;
        sync_dir(dir);
        tracing::info!(ca_cert = %cert_path.display(), "created a new sandbox CA");
        Ok(Self {
            cert_path,
            cert_pem,
            issuer: Issuer::new(params, key),
        })
    }

    fn load(cert_path: PathBuf, key_path: &Path) -> Result<Self, TlsError> {
        let cert_pem = read_text(&cert_path)?;
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Damaged {
                path: cert_path.clone(),
                reason: format!("not a PEM certificate ({e})"),
            })?;
        let [ca_der] =
            <[CertificateDer<'static>; 1]>::try_from(certs).map_err(|certs| TlsError::Damaged {
                path: cert_path.clone(),
                reason: format!("expected exactly one certificate, found {}", certs.len()),
            })?;

        restrict_key_permissions(key_path)?;
        let key_pem = read_text(key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::Damaged {
            path: key_path.to_path_buf(),
            reason: format!("not a PEM private key ({e})"),
        })?;
        if !key.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(TlsError::Damaged {
                path: key_path.to_path_buf(),
                reason: "not an ECDSA P-256 key".to_owned(),
            });
        }

        let ca = Self {
            issuer: Issuer::new(ca_params(&key), key),
            cert_path,
            cert_pem,
        };
        // Prove that certificate and key belong together (and that the certificate is still
        // valid): issue a leaf with the key and verify it against the certificate.
        ca.self_check(ca_der).map_err(|reason| TlsError::Mismatch {
            cert: ca.cert_path.clone(),
            key: key_path.to_path_buf(),
            reason,
        })?;
        Ok(ca)
    }

    fn self_check(&self, ca_der: CertificateDer<'static>) -> Result<(), String> {
        let mut roots = RootCertStore::empty();
        roots.add(ca_der).map_err(|e| e.to_string())?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), ring_provider())
                .build()
                .map_err(|e| e.to_string())?;
        let (leaf, _) = self.issue_leaf(&[]).map_err(|e| e.to_string())?;
        let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("a certificate issued with the key does not verify ({e})"))
    }

    fn issue_leaf(
        &self,
        dns_names: &[&str],
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
        let mut sans: Vec<SanType> = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ];
        for name in dns_names {
            let san = san_for(name)?;
            if !sans.contains(&san) {
                sans.push(san);
            }
        }

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "epa-sandbox");
        dn.push(
            DnType::CommonName,
            *dns_names.first().unwrap_or(&"localhost"),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, LEAF_VALIDITY);

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key_der))
    }
}

/// Installs the ring provider as the process-wide default rustls crypto provider.
///
/// Idempotent: if a provider is already installed (by an earlier call or by someone else), that
/// one stays. Needed by clients that use the process default (e.g. reqwest built with
/// `rustls-no-provider`); the configs built in this module do not depend on it.
pub fn install_crypto_provider() {
    // `Err` only means "already installed".
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A rustls client config (TLS 1.2 + 1.3) that trusts exactly the certificates in `ca_pem` —
/// no system roots, no verification shortcuts.
///
/// For reqwest 0.13 pass it to `ClientBuilder::tls_backend_preconfigured`, or instead use
/// `ClientBuilder::tls_certs_only([reqwest::Certificate::from_pem(ca_pem)?])`.
pub fn client_config(ca_pem: &str) -> Result<ClientConfig, TlsError> {
    let certs = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::ClientCa {
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::ClientCa {
            reason: "no CERTIFICATE block found".to_owned(),
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::ClientCa {
            reason: e.to_string(),
        })?;
    }
    Ok(ClientConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves.
///
/// HTTP/1.1 (hyper's connection driver, hyper-util's tokio glue). Each connection runs on its own
/// task; accepted sockets get `TCP_NODELAY`. Handshake failures (including clients that do not
/// trust the CA, and handshakes that take longer than 10 s) are logged with `tracing::debug` and
/// never stop the loop; accept errors are logged and retried.
///
/// Every request carries `axum::extract::ConnectInfo<SocketAddr>` with the peer address in its
/// extensions, so handlers can extract `ConnectInfo<SocketAddr>`.
///
/// When `shutdown` resolves the listener is closed at once (no new connections), open connections
/// are asked to finish (idle keep-alive connections close, a running request may complete) and
/// are dropped after a grace period of 1 s; then this returns. It currently always returns `Ok`.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined {
                    tracing::warn!(error = %e, "a connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    connections.spawn(serve_connection(
                        tcp,
                        peer,
                        acceptor.clone(),
                        router.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(e) if is_connection_error(&e) => {
                    tracing::debug!(error = %e, "accept failed for one connection");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }

    drop(listener);
    // Ignore the error: it only means no connection task is listening any more.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            remaining = connections.len(),
            "dropping connections still open after the shutdown grace period"
        );
        connections.shutdown().await;
    }
    Ok(())
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }

    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = stopped(&mut stop) => return,
    };

    let service = router.map_request(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);

    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Resolves once `serve_tls` asks connections to stop (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // `Err` means the sender was dropped, which also means "stop".
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Errors of `accept` that concern only the one connection being accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parameters of the CA certificate. Everything an [`Issuer`] needs (subject name, key usages,
/// key identifier method) depends only on the key, so the issuer can be rebuilt from `ca.key`
/// alone; the subject carries a fingerprint of the key so that two sandbox CAs never share a
/// name.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let key_id = params.key_identifier(key);
    let fingerprint: String = key_id.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "epa-sandbox");
    dn.push(
        DnType::CommonName,
        format!("epa-sandbox local test CA {fingerprint}"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY);
    params
}

fn san_for(name: &str) -> Result<SanType, TlsError> {
    let invalid = || TlsError::InvalidName {
        name: name.to_owned(),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    match ServerName::try_from(host) {
        Ok(ServerName::DnsName(_)) => {}
        _ => return Err(invalid()),
    }
    Ok(SanType::DnsName(
        name.to_ascii_lowercase()
            .try_into()
            .map_err(|_| invalid())?,
    ))
}

/// Valid from a day ago (tolerates clock skew) for `validity` from now.
fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let now = rcgen::date_time_ymd(1970, 1, 1) + Duration::from_secs(since_epoch.as_secs());
    params.not_before = now - DAY;
    params.not_after = now + validity;
}

fn exists(path: &Path) -> Result<bool, TlsError> {
    path.try_exists().map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| TlsError::Damaged {
        path: path.to_path_buf(),
        reason: "not PEM text (invalid UTF-8)".to_owned(),
    })
}

fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| TlsError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// Writes `contents` to a temporary file in `dir` (created with `mode`), syncs it and renames it
/// to `path`, so `path` is either absent, the old file or the complete new one.
fn write_file_atomically(
    dir: &Path,
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), TlsError> {
    use std::io::Write as _;

    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write_err = |source| TlsError::Write {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let result = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let result = result.and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

/// Best effort: make the renames durable.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "cannot sync directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Tightens a CA key file that others can read to 0600.
fn restrict_key_permissions(path: &Path) -> Result<(), TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;

        let metadata = std::fs::metadata(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "CA key was accessible to other users; restricting it to 0600"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| TlsError::Permissions {
                    path: path.to_path_buf(),
                    source,
                },
            )?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
