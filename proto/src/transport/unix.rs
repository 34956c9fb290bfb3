//! Unix sockets: private directory, lock, stale-socket rule, kernel peer credentials.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use interprocess::local_socket::tokio::{Listener as LsListener, Stream as LsStream};
use interprocess::local_socket::traits::StreamCommon;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::unix::local_socket::ListenerOptionsExt;

use super::{Endpoint, IpcConn, PeerInfo, TransportError, current_uid, io_err};

/// `sun_path` holds 108 bytes on Linux, 104 on the BSDs/macOS, including the NUL.
const MAX_SOCKET_PATH: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

fn insecure(path: &Path, problem: impl Into<String>) -> TransportError {
    TransportError::Insecure {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// Creates `dir` (0700, parents too) if missing, then checks that it is a real directory owned
/// by us with no group/other permission bits. An existing bad directory is refused, not
/// repaired: somebody else may have prepared it.
pub fn ensure_private_dir(dir: &Path) -> Result<(), TransportError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(format!("creating {}", dir.display())))?,
        Err(e) => return Err(io_err(format!("inspecting {}", dir.display()))(e)),
        Ok(_) => {}
    }
    check_private_dir(dir, current_uid())
}

fn check_private_dir(dir: &Path, uid: u32) -> Result<(), TransportError> {
    let meta =
        fs::symlink_metadata(dir).map_err(io_err(format!("inspecting {}", dir.display())))?;
    if meta.file_type().is_symlink() {
        return Err(insecure(
            dir,
            "is a symbolic link; the socket directory must be a real directory",
        ));
    }
    if !meta.is_dir() {
        return Err(insecure(dir, "is not a directory"));
    }
    if meta.uid() != uid {
        return Err(insecure(
            dir,
            format!("belongs to uid {}, not to you (uid {uid})", meta.uid()),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(insecure(
            dir,
            format!(
                "has mode {mode:04o}; only you may access it (run `chmod 700 {}`)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn is_private_dir_of(dir: &Path, uid: u32) -> bool {
    check_private_dir(dir, uid).is_ok()
}

fn check_path_len(path: &Path) -> Result<(), TransportError> {
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(TransportError::PathTooLong {
            path: path.to_owned(),
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    Ok(())
}

/// The daemon's listening socket plus the lock that makes it unique. Dropping it removes the
/// socket file (interprocess' name reclamation) and releases the lock.
pub struct Listener {
    inner: LsListener,
    endpoint: Endpoint,
    lock: Option<File>,
}

/// Binds the daemon's socket under the rules in the module docs.
pub fn bind(endpoint: &Endpoint) -> Result<Listener, TransportError> {
    let path = endpoint.path();
    check_path_len(path)?;
    ensure_private_dir(endpoint.dir())?;
    let lock = acquire_lock(&endpoint.lock_path())?;
    remove_stale_socket(path)?;
    let name = path
        .to_fs_name::<GenericFilePath>()
        .map_err(io_err(format!("socket name {}", path.display())))?;
    let inner = ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .reclaim_name(true)
        .create_tokio()
        .map_err(io_err(format!("binding {}", path.display())))?;
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    if meta.mode() & 0o077 != 0 || meta.uid() != current_uid() {
        return Err(insecure(
            path,
            format!("was created with mode {:04o}", meta.mode() & 0o7777),
        ));
    }
    Ok(Listener {
        inner,
        endpoint: endpoint.clone(),
        lock: Some(lock),
    })
}

/// A listening socket the service manager handed over (systemd socket activation).
#[derive(Debug)]
pub struct ActivatedSocket {
    listener: std::os::unix::net::UnixListener,
}

/// Takes the listening socket a service manager passed as fd 3 (`LISTEN_FDS`), but only when
/// `LISTEN_PID` names this very process, as sd_listen_fds(3) demands: variables inherited from
/// an activated parent are not for us. `LISTEN_FDS` and `LISTEN_PID` are removed from the
/// environment in every case, so the sandbox child never sees them; the fd is close-on-exec.
///
/// Call it before any other thread exists: it changes the process environment.
pub fn take_activated_socket() -> Result<Option<ActivatedSocket>, TransportError> {
    let Some(count) = std::env::var_os("LISTEN_FDS") else {
        return Ok(None);
    };
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    // Reads and removes LISTEN_FDS/LISTEN_PID (its own unsafe code, not ours).
    let mut fds = listenfd::ListenFd::from_env();
    if !for_us {
        tracing::warn!(
            listen_fds = ?count,
            "LISTEN_FDS is set but LISTEN_PID is not this process; ignoring it and binding the socket myself"
        );
        return Ok(None);
    }
    if fds.len() > 1 {
        tracing::warn!(
            count = fds.len(),
            "the service manager passed more than one socket; using the first (fd 3)"
        );
    }
    match fds.take_unix_listener(0) {
        Ok(Some(listener)) => Ok(Some(ActivatedSocket { listener })),
        Ok(None) => Ok(None),
        Err(e) => Err(io_err(
            "socket activation: fd 3 is not a listening Unix stream socket (check ListenStream= in epad.socket)",
        )(e)),
    }
}

/// Serves on a socket the service manager bound, under the same rules as [`bind`]: the socket
/// must be a file in a private directory of ours (`DirectoryMode=0700`), owned by us with no
/// group/other bits (`SocketMode=0600`), and the per-user lock must be free. The endpoint is
/// the socket's own path. The socket file belongs to the service manager and stays on exit.
/// Needs a Tokio runtime.
pub fn adopt(socket: ActivatedSocket) -> Result<Listener, TransportError> {
    let ActivatedSocket { listener } = socket;
    let addr = listener
        .local_addr()
        .map_err(io_err("socket activation: reading the socket's address"))?;
    let Some(path) = addr.as_pathname() else {
        return Err(insecure(
            Path::new("fd 3"),
            "the activated socket has no file path (abstract or unnamed); use ListenStream=%t/epa-desktop/epad.sock",
        ));
    };
    let endpoint = Endpoint::at(path);
    check_private_dir(endpoint.dir(), current_uid())?;
    let meta =
        fs::symlink_metadata(path).map_err(io_err(format!("inspecting {}", path.display())))?;
    check_socket_file(path, &meta)?;
    if meta.mode() & 0o077 != 0 {
        return Err(insecure(
            path,
            format!(
                "has mode {:04o}; set SocketMode=0600 in epad.socket",
                meta.mode() & 0o7777
            ),
        ));
    }
    let lock = acquire_lock(&endpoint.lock_path())?;
    // No name reclamation: interprocess only reclaims names it bound itself.
    let uds = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(
        std::os::fd::OwnedFd::from(listener),
    )
    .map_err(io_err(format!("serving on {}", path.display())))?;
    Ok(Listener {
        inner: LsListener::from(uds),
        endpoint,
        lock: Some(lock),
    })
}

/// Takes the per-user daemon lock and records our pid in it. The kernel releases the lock when
/// the process dies, however it dies, so a crashed daemon never blocks the next one.
fn acquire_lock(path: &Path) -> Result<File, TransportError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let pid = file
                .read_to_string(&mut text)
                .ok()
                .and_then(|_| text.trim().parse().ok());
            return Err(TransportError::AlreadyRunning { pid });
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(io_err(format!("locking {}", path.display()))(e));
        }
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_data())
        .map_err(io_err(format!("writing {}", path.display())))?;
    Ok(file)
}

/// Connect before unlink: a socket file that still answers belongs to a live daemon.
fn remove_stale_socket(path: &Path) -> Result<(), TransportError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("inspecting {}", path.display()))(e)),
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(TransportError::AlreadyRunning { pid: None });
            }
            tracing::info!(path = %path.display(), "removing stale socket");
            fs::remove_file(path).map_err(io_err(format!("removing stale {}", path.display())))
        }
        Ok(_) => Err(insecure(
            path,
            "exists and is not a socket; move it away if nothing uses it",
        )),
    }
}

impl Listener {
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The per-user lock, to be held apart from the socket: until the daemon has closed its
    /// store and stopped its children, no second daemon may start, even after the socket is
    /// gone.
    pub fn take_instance_lock(&mut self) -> super::InstanceLock {
        super::InstanceLock {
            _file: self.lock.take(),
        }
    }

    /// Accepts the next connection from our own uid. Connections from any other uid are closed
    /// at once and logged; they never reach tonic.
    pub async fn accept(&self) -> std::io::Result<IpcConn> {
        let me = current_uid();
        loop {
            let stream = self.inner.accept().await?;
            match peer_of(&stream) {
                Ok(peer) if peer.uid == Some(me) => return Ok(IpcConn::new(stream, peer)),
                Ok(peer) => {
                    tracing::warn!(uid = ?peer.uid, pid = ?peer.pid, "refused a connection from another user");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "refused a connection without peer credentials")
                }
            }
        }
    }
}

fn peer_of(stream: &LsStream) -> std::io::Result<PeerInfo> {
    let creds = stream.peer_creds()?;
    Ok(PeerInfo {
        uid: creds.euid(),
        pid: creds.pid().and_then(|p| u32::try_from(p).ok()),
    })
}

/// The client's checks before it sends anything: the directory is private and ours, and the
/// socket is a socket owned by us (a squatter cannot pose as the daemon).
pub fn check_before_connect(endpoint: &Endpoint) -> Result<bool, TransportError> {
    let path = endpoint.path();
    match fs::symlink_metadata(endpoint.dir()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        _ => check_private_dir(endpoint.dir(), current_uid())?,
    }
    let meta = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(format!("inspecting {}", path.display()))(e)),
        Ok(m) => m,
    };
    check_socket_file(path, &meta)?;
    Ok(true)
}

/// A socket file of ours: a squatter's file or socket is refused.
fn check_socket_file(path: &Path, meta: &fs::Metadata) -> Result<(), TransportError> {
    if !meta.file_type().is_socket() {
        return Err(insecure(path, "is not a socket"));
    }
    if meta.uid() != current_uid() {
        return Err(insecure(
            path,
            format!(
                "belongs to uid {}, not to you (uid {})",
                meta.uid(),
                current_uid()
            ),
        ));
    }
    Ok(())
}

/// After connecting: the process that accepted runs as us.
pub fn check_server_peer(endpoint: &Endpoint, stream: &LsStream) -> Result<(), TransportError> {
    let peer = peer_of(stream).map_err(io_err("reading the daemon's credentials"))?;
    if peer.uid != Some(current_uid()) {
        return Err(insecure(
            endpoint.path(),
            format!("is served by uid {:?}, not by you", peer.uid),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn private_dir_is_created_0700_and_bad_dirs_are_refused()
    -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let d = tmp.path().join("a/b");
        ensure_private_dir(&d)?;
        assert_eq!(fs::metadata(&d)?.mode() & 0o777, 0o700);

        let open = tmp.path().join("open");
        fs::create_dir(&open)?;
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755))?;
        let err = ensure_private_dir(&open)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("0755") && err.contains("chmod 700"), "{err}");

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&d, &link)?;
        let err = ensure_private_dir(&link)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("symbolic link"), "{err}");
        Ok(())
    }

    #[test]
    fn overlong_socket_paths_are_refused() {
        let long = Path::new("/").join("x".repeat(200));
        assert!(matches!(
            check_path_len(&long),
            Err(TransportError::PathTooLong { .. })
        ));
    }
}
