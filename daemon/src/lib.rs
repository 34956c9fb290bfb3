//! `epad`: the per-user daemon. It owns every secret and every piece of state; clients reach it
//! only through the `epa.desktop.v1` API on a private local socket.
#![forbid(unsafe_code)]

pub mod backend;
pub mod documents;
pub mod events;
pub mod legal;
mod rpc;
pub mod session;
pub mod store;
pub mod users;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use epa_ipc::transport::{self, Endpoint, Listener, TransportError};
use epa_ipc::types::{Change, DaemonState};
use epa_ipc::{PROTOCOL_VERSION, pb};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::backend::environment::{self, DemoSandbox};
use crate::backend::slot::{BackendSlot, SlotState};
use crate::events::{ClientGuard, EventBus, SUBSCRIBER_BUFFER};
use crate::session::EpaSessions;
use crate::store::crypto::KdfParams;
use crate::users::{Users, UsersError};

/// Name of the environment that runs against the embedded sandbox.
pub const DEMO_ENVIRONMENT: &str = "demo";
/// Name of the environment described by an environment file.
pub const CUSTOM_ENVIRONMENT: &str = "custom";

/// Shown in `GetInfo` (and so in `epa status`).
const DEMO_NOTE: &str = "Demo-Umgebung mit Testpersonen; echte ePA-Umgebungen brauchen eine von der gematik zugelassene Client-ID";
const CUSTOM_NOTE: &str = "Eigene Umgebung aus der Umgebungsdatei; echte ePA-Umgebungen brauchen eine von der gematik zugelassene Client-ID";

/// How long open calls may take to finish once shutdown began.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("opening the local users' store failed: {0}")]
    Users(#[from] UsersError),
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
    /// Argon2id cost for new users and password changes.
    pub kdf: KdfParams,
    /// Local sessions die after this long without a call.
    pub idle_timeout: Duration,
    /// `custom` only: the environment file (base URLs, CA, VAU trust anchors, IDP issuers).
    pub environment_file: Option<PathBuf>,
    /// `demo` only: the `epa-sandbox` binary [default: next to this executable, else PATH].
    pub sandbox_bin: Option<PathBuf>,
    /// How often a logged-in ePA user session is kept alive.
    pub epa_keepalive: Duration,
}

/// Default local-session idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Config {
    /// Default data directory: the XDG data dir (`~/.local/share/epa-desktop` on Linux).
    pub fn default_data_dir() -> Option<PathBuf> {
        directories::ProjectDirs::from("de", "epa-desktop", "epa-desktop")
            .map(|d| d.data_dir().to_owned())
    }

    /// A config with the defaults for everything but socket and data directory.
    pub fn new(endpoint: Endpoint, data_dir: PathBuf) -> Self {
        Self {
            endpoint,
            data_dir,
            environment: DEMO_ENVIRONMENT.to_owned(),
            kdf: KdfParams::DEFAULT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            environment_file: None,
            sandbox_bin: None,
            epa_keepalive: session::DEFAULT_KEEPALIVE,
        }
    }
}

/// Where the ePA backend comes from.
#[derive(Debug, Clone)]
enum BackendSource {
    Demo {
        bin: PathBuf,
        data_dir: PathBuf,
    },
    Custom(PathBuf),
    /// A config error found at start: reported, never fatal.
    Invalid(String),
}

fn default_sandbox_bin() -> PathBuf {
    let name = format!("epa-sandbox{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(&name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The daemon's shared state.
pub struct Daemon {
    started: Instant,
    environment: String,
    bus: Arc<EventBus>,
    users: Arc<Users>,
    shutdown: watch::Sender<bool>,
    source: BackendSource,
    slot: Arc<BackendSlot>,
    epa: Arc<EpaSessions>,
    documents: Arc<documents::Documents>,
    /// The demo sandbox child; stopped (state saved) when the daemon stops.
    sandbox: tokio::sync::Mutex<Option<DemoSandbox>>,
}

impl Daemon {
    fn new(config: &Config) -> Result<Arc<Self>, DaemonError> {
        let bus = Arc::new(EventBus::new(DaemonState::default(), SUBSCRIBER_BUFFER));
        let users = Users::open(
            &config.data_dir,
            config.kdf,
            config.idle_timeout,
            users::system_clock(),
            Arc::clone(&bus),
        )?;
        let environment = config.environment.clone();
        bus.reset_state(DaemonState {
            environment: environment.clone(),
            users: users.local_users(),
            ..DaemonState::default()
        });
        let source = match (environment.as_str(), &config.environment_file) {
            (DEMO_ENVIRONMENT, _) => BackendSource::Demo {
                bin: config
                    .sandbox_bin
                    .clone()
                    .unwrap_or_else(default_sandbox_bin),
                data_dir: config.data_dir.clone(),
            },
            (CUSTOM_ENVIRONMENT, Some(file)) => BackendSource::Custom(file.clone()),
            (CUSTOM_ENVIRONMENT, None) => {
                BackendSource::Invalid("the custom environment needs --environment-file".into())
            }
            (other, _) => BackendSource::Invalid(format!("unknown environment {other:?}")),
        };
        let slot = Arc::new(BackendSlot::new());
        let epa = EpaSessions::new(Arc::clone(&slot), Arc::clone(&bus), config.epa_keepalive);
        let documents = documents::Documents::new(
            Arc::clone(&epa),
            Arc::clone(&users),
            // Default cache limit; a setting comes with the preferences UI (Config stays
            // literal-compatible for embedders).
            documents::DocumentsConfig::default(),
        );
        Ok(Arc::new(Self {
            started: Instant::now(),
            environment,
            bus,
            users,
            shutdown: watch::Sender::new(false),
            source,
            slot,
            epa,
            documents,
            sandbox: tokio::sync::Mutex::new(None),
        }))
    }

    /// Brings the backend up in the background: the daemon serves meanwhile, Epa calls wait
    /// for it (bounded), and a failure is reported, never fatal.
    fn spawn_backend(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let daemon = Arc::clone(self);
        tokio::spawn(async move {
            match daemon.source.clone() {
                BackendSource::Demo { bin, data_dir } => {
                    let log = match open_log(&data_dir.join("demo-backend.log")) {
                        Ok(f) => f,
                        Err(e) => {
                            daemon
                                .slot
                                .set_failed(format!("the demo backend's log file: {e}"));
                            return;
                        }
                    };
                    let state_dir = data_dir.join("demo-backend");
                    match environment::start_demo(&bin, &state_dir, log).await {
                        Ok((child, backend)) => {
                            *daemon.sandbox.lock().await = Some(child);
                            tracing::info!("demo backend (epa-sandbox) ready");
                            daemon.slot.set_ready(backend);
                        }
                        Err(e) => daemon.slot.set_failed(e.to_string()),
                    }
                }
                BackendSource::Custom(file) => match environment::load_custom(&file) {
                    Ok(backend) => daemon.slot.set_ready(backend),
                    Err(e) => daemon.slot.set_failed(e.to_string()),
                },
                BackendSource::Invalid(problem) => daemon.slot.set_failed(problem),
            }
        })
    }

    fn environment_info(&self) -> pb::EnvironmentInfo {
        let demo = matches!(self.source, BackendSource::Demo { .. });
        let mut info = epa_ipc::types::EnvironmentInfo {
            kind: if demo {
                DEMO_ENVIRONMENT
            } else {
                CUSTOM_ENVIRONMENT
            }
            .to_owned(),
            note: if demo { DEMO_NOTE } else { CUSTOM_NOTE }.to_owned(),
            ..Default::default()
        };
        match self.slot.current() {
            SlotState::Starting => {}
            SlotState::Failed(problem) => info.problem = Some(problem),
            SlotState::Ready(c) => {
                if let Some(ready) = &c.backend.demo {
                    info.ident_app = Some(ready.ident_app.clone());
                    info.mail_api = Some(ready.mail_api.clone());
                    info.mail_outbox = Some(ready.outbox_dir.display().to_string());
                    info.control_api = ready.control_api.clone();
                    info.ca_cert = Some(ready.ca_cert.display().to_string());
                    info.demo_insurants = ready
                        .insurants
                        .iter()
                        .map(|i| epa_ipc::types::DemoInsurant {
                            kvnr: i.kvnr.clone(),
                            insurer: i.insurer.clone(),
                            gesundheitsid_code: i.gesundheitsid_code.clone(),
                            email: i.email.clone(),
                            has_record: i.has_record,
                        })
                        .collect();
                }
            }
        }
        pb::EnvironmentInfo::from(&info)
    }

    fn info(&self) -> pb::GetInfoResponse {
        pb::GetInfoResponse {
            daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol_version: PROTOCOL_VERSION,
            environment: self.environment.clone(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            pid: std::process::id(),
            environment_info: Some(self.environment_info()),
        }
    }

    /// Starts the ordered shutdown (idempotent): announce it on the event bus, then stop serving.
    pub fn request_shutdown(&self) {
        if !self.shutdown.send_replace(true) {
            self.bus.publish(Change::ShuttingDown);
        }
    }

    /// Ends idle local sessions, on a period well below the timeout.
    fn spawn_idle_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let daemon = Arc::clone(self);
        let period = (daemon.users.idle_timeout() / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                daemon.users.expire_idle();
            }
        })
    }
}

/// Binds the socket, prepares the data directory and serves until SIGTERM/SIGINT or a
/// `Shutdown` call. The socket is removed on the way out.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    run_with(config, None).await.map(drop)
}

/// [`run`], serving on the socket a service manager handed over when there is one. Returns
/// the per-user lock: drop it only after the runtime is gone (the last task holding the store
/// ended), so that a daemon started meanwhile waits for this one instead of racing it.
pub async fn run_with(
    config: Config,
    activated: Option<transport::ActivatedSocket>,
) -> Result<transport::InstanceLock, DaemonError> {
    let mut bound = bind_with(config, activated)?;
    let lock = bound.listener.take_instance_lock();
    let signals = watch_signals(bound.daemon()).map_err(DaemonError::Signals)?;
    let result = bound.serve().await;
    signals.abort();
    tracing::info!("epad stopped");
    result.map(|()| lock)
}

/// A daemon that holds its socket and lock but does not serve yet.
pub struct Bound {
    listener: Listener,
    daemon: Arc<Daemon>,
}

/// Takes the socket (one daemon per user) and prepares the data directory.
pub fn bind(config: Config) -> Result<Bound, DaemonError> {
    bind_with(config, None)
}

/// [`bind`], or with socket activation: serve on the socket systemd bound (checked like our
/// own); its path replaces the configured one.
pub fn bind_with(
    mut config: Config,
    activated: Option<transport::ActivatedSocket>,
) -> Result<Bound, DaemonError> {
    let listener = match activated {
        None => transport::bind(&config.endpoint)?,
        Some(socket) => {
            let listener = transport::adopt(socket)?;
            tracing::info!("socket activation: serving on the socket the service manager passed");
            if listener.endpoint() != &config.endpoint {
                tracing::warn!(
                    configured = %config.endpoint.path().display(),
                    activated = %listener.endpoint().path().display(),
                    "socket activation: serving on the socket systemd passed, not the configured path"
                );
            }
            config.endpoint = listener.endpoint().clone();
            listener
        }
    };
    transport::ensure_private_dir(&config.data_dir)?;
    if config.kdf != KdfParams::DEFAULT {
        tracing::warn!(?config.kdf, "non-default key-derivation cost: for tests only");
    }
    tracing::info!(
        socket = %config.endpoint.path().display(),
        data_dir = %config.data_dir.display(),
        environment = %config.environment,
        pid = std::process::id(),
        "epad listening"
    );
    let daemon = Daemon::new(&config)?;
    Ok(Bound { listener, daemon })
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
        let sweeper = daemon.spawn_idle_sweeper();
        let backend = daemon.spawn_backend();
        let care = daemon.epa.spawn_care(Arc::clone(&daemon.users));
        let server = tonic::transport::Server::builder()
            .add_service(pb::daemon_server::DaemonServer::new(rpc::DaemonRpc(
                Arc::clone(&daemon),
            )))
            .add_service(pb::events_server::EventsServer::with_interceptor(
                rpc::EventsRpc(Arc::clone(&daemon)),
                rpc::check_protocol,
            ))
            .add_service(pb::users_server::UsersServer::with_interceptor(
                rpc::UsersRpc(Arc::clone(&daemon.users)),
                rpc::check_protocol,
            ))
            .add_service(pb::epa_server::EpaServer::with_interceptor(
                rpc::EpaRpc {
                    users: Arc::clone(&daemon.users),
                    epa: Arc::clone(&daemon.epa),
                },
                rpc::check_protocol,
            ))
            // Add carries up to 25 MB in 64 KiB parts (tonic's 4 MiB bounds one message).
            .add_service(pb::documents_server::DocumentsServer::with_interceptor(
                rpc::DocumentsRpc {
                    users: Arc::clone(&daemon.users),
                    documents: Arc::clone(&daemon.documents),
                },
                rpc::check_protocol,
            ))
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stop.wait_for(|s| *s).await;
            });
        tokio::pin!(server);
        let mut stopping = daemon.shutdown.subscribe();
        let result = tokio::select! {
            r = &mut server => r.map_err(DaemonError::from),
            // (The watch guard must not live across the drain below: it is not Send.)
            () = async { let _ = stopping.wait_for(|s| *s).await; } => {
                match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
                    Ok(r) => r.map_err(DaemonError::from),
                    Err(_) => {
                        tracing::warn!("open calls did not finish in time; closing them");
                        Ok(())
                    }
                }
            }
        };
        // Last: no call can reach a vault any more; wipe the keys.
        sweeper.abort();
        backend.abort();
        for task in &care {
            task.abort();
        }
        daemon.epa.end_all().await;
        daemon.users.lock_all();
        // The sandbox saves its state when its stdin closes.
        if let Some(sandbox) = daemon.sandbox.lock().await.take() {
            sandbox.stop().await;
        }
        result
    }
}

/// The demo backend's stderr: appended, private to the user.
fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
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
