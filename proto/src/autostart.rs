//! Start the daemon on demand: spawn `epad` detached, then wait until `GetInfo` answers
//! (polling the socket, not sleeping a fixed time).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::transport::{self, Endpoint};
use crate::{ClientError, DaemonClient};

/// `epad`'s exit code when another daemon already serves this user. A client that raced
/// another client's autostart keeps waiting for that daemon instead of failing.
pub const EXIT_ALREADY_RUNNING: i32 = 3;

/// Name of the daemon binary.
pub const DAEMON_BIN: &str = if cfg!(windows) { "epad.exe" } else { "epad" };

/// How to start a daemon when none is running.
#[derive(Debug, Clone)]
pub struct Autostart {
    /// The `epad` binary; default: next to the running executable, else from `PATH`.
    pub daemon_exe: Option<PathBuf>,
    /// Passed on as `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// How long the new daemon may take to answer.
    pub timeout: Duration,
}

impl Default for Autostart {
    fn default() -> Self {
        Self {
            daemon_exe: None,
            data_dir: None,
            timeout: Duration::from_secs(20),
        }
    }
}

impl Autostart {
    fn exe(&self) -> PathBuf {
        if let Some(p) = &self.daemon_exe {
            return p.clone();
        }
        std::env::current_exe()
            .ok()
            .map(|me| me.with_file_name(DAEMON_BIN))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(DAEMON_BIN))
    }
}

/// Connects to the daemon at `endpoint`; if none is running and `autostart` is given, starts one.
pub async fn connect_or_start(
    endpoint: &Endpoint,
    client_name: &str,
    autostart: Option<&Autostart>,
) -> Result<DaemonClient, ClientError> {
    match (
        DaemonClient::connect_as(endpoint, client_name).await,
        autostart,
    ) {
        (Err(ClientError::NotRunning { .. }), Some(a)) => start(endpoint, client_name, a).await,
        (result, _) => result,
    }
}

/// Spawns `epad` for `endpoint` and waits for it to answer.
///
/// A daemon that is still shutting down holds the lock for a moment; the new one then exits
/// with [`EXIT_ALREADY_RUNNING`] and is spawned again once the socket stays silent.
pub async fn start(
    endpoint: &Endpoint,
    client_name: &str,
    autostart: &Autostart,
) -> Result<DaemonClient, ClientError> {
    transport::ensure_private_dir(endpoint.dir())?;
    let log_path = endpoint.log_path();
    let deadline = Instant::now() + autostart.timeout;
    let mut child = Some(spawn(endpoint, autostart, &log_path)?);
    let mut delay = Duration::from_millis(5);
    loop {
        match DaemonClient::connect_as(endpoint, client_name).await {
            Err(ClientError::NotRunning { .. }) => {}
            result => return result,
        }
        if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            if status.code() != Some(EXIT_ALREADY_RUNNING) {
                return Err(ClientError::StartFailed {
                    detail: format!("epad exited ({status}): {}", log_tail(&log_path)),
                });
            }
            child = None;
        } else if child.is_none() {
            child = Some(spawn(endpoint, autostart, &log_path)?);
        }
        if Instant::now() >= deadline {
            return Err(ClientError::StartFailed {
                detail: format!(
                    "epad did not answer within {} s; its log is {}",
                    autostart.timeout.as_secs(),
                    log_path.display()
                ),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

fn spawn(
    endpoint: &Endpoint,
    autostart: &Autostart,
    log_path: &Path,
) -> Result<tokio::process::Child, ClientError> {
    let log = open_log(log_path).map_err(|e| ClientError::StartFailed {
        detail: format!("cannot write {}: {e}", log_path.display()),
    })?;
    let exe = autostart.exe();
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.arg("--socket").arg(endpoint.path());
    if let Some(d) = &autostart.data_dir {
        cmd.arg("--data-dir").arg(d);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // Its own process group: a Ctrl-C in the client's terminal must not kill the daemon.
    #[cfg(unix)]
    cmd.process_group(0);
    cmd.spawn().map_err(|e| ClientError::StartFailed {
        detail: format!("cannot run {}: {e}", exe.display()),
    })
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// The last lines of the daemon's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        format!("no output (log: {})", path.display())
    } else {
        tail
    }
}
