//! Where the daemon listens and who may talk to it (ARCHITECTURE §4).
//!
//! Unix: a socket `epad.sock` (0600) in a private directory (0700, owned by us, no symlink),
//! the peer's uid checked on every accept, the socket's owner and the server's uid checked by
//! the client. One daemon per OS user: an exclusive lock on `epad.lock` next to the socket, and
//! a stale socket is removed only after a connect to it failed. Never TCP. Under systemd socket
//! activation the daemon adopts the socket systemd bound (fd 3) after the same directory, owner
//! and mode checks, and takes the same lock.
//!
//! Windows (untested): a per-user named pipe whose DACL admits only the owner.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use interprocess::local_socket::tokio::Stream as LsStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{
    ActivatedSocket, Listener, adopt, bind, check_before_connect, check_server_peer,
    ensure_private_dir, take_activated_socket,
};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{
    ActivatedSocket, Listener, adopt, bind, check_before_connect, check_server_peer,
    ensure_private_dir, take_activated_socket,
};

/// Directory name under the per-user runtime directory.
pub const APP_DIR: &str = "epa-desktop";
/// File name of the daemon's socket.
pub const SOCKET_NAME: &str = "epad.sock";

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{path}: {problem}")]
    Insecure { path: PathBuf, problem: String },
    #[error("another epad is already running for this user{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { pid: Option<u32> },
    #[error(
        "no per-user runtime directory: XDG_RUNTIME_DIR is unset and neither /run/user/<uid> nor a cache directory is usable; pass --socket PATH (in a directory only you can access)"
    )]
    NoRuntimeDir,
    #[error(
        "socket path {path} is {len} bytes long; the limit is {max}; choose a shorter --socket"
    )]
    PathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TransportError {
    let context = context.into();
    move |source| TransportError::Io { context, source }
}

/// Where a daemon listens: a socket path (Unix) or a named-pipe path (Windows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    path: PathBuf,
}

impl Endpoint {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The private directory holding the socket, its lock and the autostart log.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn sibling(&self, ext: &str) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(OsString::from)
            .unwrap_or_default();
        name.push(ext);
        self.path.with_file_name(name)
    }

    /// Lock file that makes the daemon unique per socket (and so per OS user).
    pub fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    /// Where the CLI keeps its local-session token between commands (0600, private directory).
    pub fn session_path(&self) -> PathBuf {
        self.sibling(".session")
    }

    /// Where an autostarted daemon's stderr goes: next to the socket, in its private directory
    /// (Windows: the per-user temp directory, since a pipe has no directory).
    pub fn log_path(&self) -> PathBuf {
        if cfg!(windows) {
            return std::env::temp_dir().join("epad.log");
        }
        self.sibling(".log")
    }

    /// The default endpoint of the current OS user.
    pub fn default_for_user() -> Result<Self, TransportError> {
        default_endpoint(&UserEnv::from_process())
    }
}

/// The environment facts the default socket location depends on; injectable for tests.
#[derive(Debug, Clone, Default)]
pub struct UserEnv {
    pub xdg_runtime_dir: Option<OsString>,
    pub xdg_cache_home: Option<OsString>,
    pub home: Option<OsString>,
    pub uid: u32,
    /// Windows: the user name that makes the pipe name per-user.
    pub user_name: Option<OsString>,
}

impl UserEnv {
    pub fn from_process() -> Self {
        Self {
            xdg_runtime_dir: std::env::var_os("XDG_RUNTIME_DIR"),
            xdg_cache_home: std::env::var_os("XDG_CACHE_HOME"),
            home: std::env::var_os("HOME"),
            uid: current_uid(),
            user_name: std::env::var_os("USERNAME"),
        }
    }
}

#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

#[cfg(not(unix))]
pub fn current_uid() -> u32 {
    0
}

/// Resolution order (Linux): `$XDG_RUNTIME_DIR/epa-desktop`, then `/run/user/<uid>/epa-desktop`
/// if that directory is ours and private, then `$XDG_CACHE_HOME` (or `~/.cache`)
/// `/epa-desktop/run`. Never a shared temp directory. macOS: `~/Library/Application
/// Support/epa-desktop/run`. Windows: `\\.\pipe\epa-desktop-<user>`.
pub fn default_endpoint(env: &UserEnv) -> Result<Endpoint, TransportError> {
    if cfg!(windows) {
        let user = env
            .user_name
            .as_ref()
            .map(|u| u.to_string_lossy().into_owned())
            .unwrap_or_else(|| "user".into());
        let safe: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        return Ok(Endpoint::at(format!(r"\\.\pipe\{APP_DIR}-{safe}")));
    }
    let abs = |v: &Option<OsString>| v.as_ref().map(PathBuf::from).filter(|p| p.is_absolute());
    if cfg!(target_os = "macos") {
        let home = abs(&env.home).ok_or(TransportError::NoRuntimeDir)?;
        return Ok(Endpoint::at(
            home.join("Library/Application Support")
                .join(APP_DIR)
                .join("run")
                .join(SOCKET_NAME),
        ));
    }
    if let Some(dir) = abs(&env.xdg_runtime_dir) {
        return Ok(Endpoint::at(dir.join(APP_DIR).join(SOCKET_NAME)));
    }
    #[cfg(unix)]
    {
        let run_user = PathBuf::from(format!("/run/user/{}", env.uid));
        if unix::is_private_dir_of(&run_user, env.uid) {
            return Ok(Endpoint::at(run_user.join(APP_DIR).join(SOCKET_NAME)));
        }
    }
    let cache = abs(&env.xdg_cache_home).or_else(|| abs(&env.home).map(|h| h.join(".cache")));
    match cache {
        Some(c) => Ok(Endpoint::at(c.join(APP_DIR).join("run").join(SOCKET_NAME))),
        None => Err(TransportError::NoRuntimeDir),
    }
}

/// The per-user daemon lock once taken from its [`Listener`]; released when dropped.
#[must_use = "dropping it lets a second daemon start"]
#[derive(Debug, Default)]
pub struct InstanceLock {
    _file: Option<std::fs::File>,
}

impl Listener {
    /// Checked connections as a stream for `serve_with_incoming`. Accept errors (e.g. out of
    /// file descriptors) are logged and retried after a pause, never handed to tonic, which
    /// would stop serving.
    pub fn incoming(self) -> impl futures_util::Stream<Item = std::io::Result<IpcConn>> + Send {
        futures_util::stream::unfold(self, |listener| async move {
            loop {
                match listener.accept().await {
                    Ok(conn) => return Some((Ok(conn), listener)),
                    Err(e) => {
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            }
        })
    }
}

/// Writes a file only this user may read, all or nothing: a temp file (0600) next to it,
/// fsync, rename over `path`, fsync of the directory. A reader never sees half a file.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().map(OsString::from).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Who is on the other end of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    pub uid: Option<u32>,
    pub pid: Option<u32>,
}

/// An accepted, checked connection, ready for tonic's `serve_with_incoming`.
///
/// `guard` lives exactly as long as the connection: the daemon uses it to count clients.
pub struct IpcConn {
    stream: LsStream,
    peer: PeerInfo,
    _guard: Option<Box<dyn Send + Sync>>,
}

impl IpcConn {
    pub(crate) fn new(stream: LsStream, peer: PeerInfo) -> Self {
        Self {
            stream,
            peer,
            _guard: None,
        }
    }

    pub fn peer(&self) -> PeerInfo {
        self.peer
    }

    /// Ties `guard` to this connection's lifetime.
    pub fn with_guard(mut self, guard: impl Send + Sync + 'static) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }
}

impl tonic::transport::server::Connected for IpcConn {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer
    }
}

impl AsyncRead for IpcConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for IpcConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> UserEnv {
        UserEnv {
            uid: u32::MAX - 7, // no /run/user directory for this uid
            ..UserEnv::default()
        }
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn default_endpoint_prefers_xdg_runtime_dir_then_cache_never_tmp() {
        let e = UserEnv {
            xdg_runtime_dir: Some("/run/user/1000".into()),
            home: Some("/home/a".into()),
            ..env()
        };
        assert_eq!(
            default_endpoint(&e).ok(),
            Some(Endpoint::at("/run/user/1000/epa-desktop/epad.sock"))
        );
        // A relative XDG_RUNTIME_DIR is ignored, as the XDG spec demands.
        let e = UserEnv {
            xdg_runtime_dir: Some("relative".into()),
            home: Some("/home/a".into()),
            ..env()
        };
        assert_eq!(
            default_endpoint(&e).ok(),
            Some(Endpoint::at("/home/a/.cache/epa-desktop/run/epad.sock"))
        );
        let e = UserEnv {
            xdg_cache_home: Some("/c".into()),
            home: Some("/home/a".into()),
            ..env()
        };
        assert_eq!(
            default_endpoint(&e).ok(),
            Some(Endpoint::at("/c/epa-desktop/run/epad.sock"))
        );
        assert!(matches!(
            default_endpoint(&env()),
            Err(TransportError::NoRuntimeDir)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_written_whole_and_0600() -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("token");
        write_private_atomically(&p, b"first")?;
        write_private_atomically(&p, b"second")?;
        assert_eq!(std::fs::read(&p)?, b"second");
        assert_eq!(std::fs::metadata(&p)?.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            1,
            "temp file left behind"
        );
        Ok(())
    }

    #[test]
    fn sibling_paths() {
        let e = Endpoint::at("/x/epa-desktop/epad.sock");
        assert_eq!(
            e.lock_path(),
            PathBuf::from("/x/epa-desktop/epad.sock.lock")
        );
        assert_eq!(e.log_path(), PathBuf::from("/x/epa-desktop/epad.sock.log"));
        assert_eq!(e.dir(), Path::new("/x/epa-desktop"));
    }
}
