//! `epad`: the per-user daemon. It owns every secret and every piece of state; clients reach it
//! only through the `epa.desktop.v1` API on a private local socket.
#![forbid(unsafe_code)]

pub mod events;
mod rpc;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use epa_ipc::transport::{self, Endpoint, Listener, TransportError};
use epa_ipc::types::{Change, DaemonState};
use epa_ipc::{PROTOCOL_VERSION, pb};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::events::{ClientGuard, EventBus, SUBSCRIBER_BUFFER};

/// Name of the environment that runs against the embedded sandbox.
pub const DEMO_ENVIRONMENT: &str = "demo";

/// How long open calls may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("no data directory: pass --data-dir PATH")]
    NoDataDir,
    #[error("serving the API failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("installing signal handlers failed: {0}")]
    Signals(std::io::Error),
}

/// Everything the daemon needs to know at start; every path is injectable.
#[derive(Debug, Clone)]
pub struct Config {
    pub endpoint: Endpoint,
    pub data_dir: PathBuf,
    pub environment: String,
}

impl Config {
    /// Default data directory: the XDG data dir (`~/.local/share/epa-desktop` on Linux).
    pub fn default_data_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("de", "epa-desktop", "epa-desktop")
            .map(|d| d.data_dir().to_owned())
    }
}

/// The daemon's shared state.
pub struct Daemon {
    started: Instant,
    environment: String,
    bus: Arc<EventBus>,
    shutdown: watch::Sender<bool>,
}

impl Daemon {
    fn new(environment: String) -> Arc<Self> {
        let bus = Arc::new(EventBus::new(
            DaemonState {
                environment: environment.clone(),
                ..DaemonState::default()
            },
            SUBSCRIBER_BUFFER,
        ));
        Arc::new(Self {
            started: Instant::now(),
            environment,
            bus,
            shutdown: watch::Sender::new(false),
        })
    }

    fn info(&self) -> pb::GetInfoResponse {
        pb::GetInfoResponse {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
            environment: self.environment.clone(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            pid: std::process::id(),
        }
    }

    /// Starts the ordered shutdown (idempotent): announce it on the event bus, then stop serving.
    pub fn request_shutdown(&self) {
        if !self.shutdown.send_replace(true) {
            self.bus.publish(Change::ShuttingDown);
        }
    }
}

/// Binds the socket, prepares the data directory and serves until SIGTERM/SIGINT or a
/// `Shutdown` call. The socket is removed on the way out.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    let bound = bind(config)?;
    let signals = watch_signals(bound.daemon()).map_err(DaemonError::Signals)?;
    let result = bound.serve().await;
    signals.abort();
    tracing::info!("epad stopped");
    result
}

/// A daemon that holds its socket and lock but does not serve yet.
pub struct Bound {
    listener: Listener,
    daemon: Arc<Daemon>,
}

/// Takes the socket (one daemon per user) and prepares the data directory.
pub fn bind(config: Config) -> Result<Bound, DaemonError> {
    let listener = transport::bind(&config.endpoint)?;
    transport::ensure_private_dir(&config.data_dir)?;
    tracing::info!(
        socket = %config.endpoint.path().display(),
        data_dir = %config.data_dir.display(),
        environment = %config.environment,
        pid = std::process::id(),
        "epad listening"
    );
    Ok(Bound {
        listener,
        daemon: Daemon::new(config.environment),
    })
}

impl Bound {
    pub fn daemon(&self) -> Arc<Daemon> {
        Arc::clone(&self.daemon)
    }

    /// Serves the API until `request_shutdown()`, then drains open calls (bounded) and
    /// releases the socket.
    pub async fn serve(self) -> Result<(), DaemonError> {
        let Bound { listener, daemon } = self;
        let bus = Arc::clone(&daemon.bus);
        let incoming = listener
            .incoming()
            .map(move |conn| conn.map(|c| c.with_guard(ClientGuard::new(Arc::clone(&bus)))));
        let mut stop = daemon.shutdown.subscribe();
        let server = tonic::transport::Server::builder()
            .add_service(pb::daemon_server::DaemonServer::new(rpc::DaemonRpc(
                Arc::clone(&daemon),
            )))
            .add_service(pb::events_server::EventsServer::with_interceptor(
                rpc::EventsRpc(Arc::clone(&daemon)),
                rpc::check_protocol,
            ))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            });
        tokio::pin!(server);
        let mut stopping = daemon.shutdown.subscribe();
        tokio::select! {
            r = &mut server => return r.map_err(DaemonError::from),
            _ = stopping.wait_for(|s| *s) => {}
        }
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
            Ok(r) => r.map_err(DaemonError::from),
            Err(_) => {
                tracing::warn!("open calls did not finish in time; closing them");
                Ok(())
            }
        }
    }
}

#[cfg(unix)]
fn watch_signals(daemon: Arc<Daemon>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        daemon.request_shutdown();
    }))
}

#[cfg(not(unix))]
fn watch_signals(daemon: Arc<Daemon>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    Ok(tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            daemon.request_shutdown();
        }
    }))
}
