//! One window per user: the first `epa-desktop` listens on a socket in the private runtime
//! directory; a second launch hands its request (show the window, or a deep link) to it and
//! exits. The deep link is forwarded by the running window because only it holds the local
//! session the daemon needs for `CompleteLogin`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// What a second launch asks of the running one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Focus,
    OpenUrl(String),
}

/// Longest request line accepted (deep links are at most 4096 bytes).
const MAX_LINE: u64 = 8 * 1024;

impl Request {
    pub fn encode(&self) -> String {
        match self {
            Request::Focus => "focus\n".to_owned(),
            Request::OpenUrl(url) => format!("open {url}\n"),
        }
    }

    pub fn decode(line: &str) -> Option<Self> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line == "focus" {
            Some(Request::Focus)
        } else {
            line.strip_prefix("open ")
                .filter(|u| !u.contains(['\n', '\r']))
                .map(|u| Request::OpenUrl(u.to_owned()))
        }
    }
}

/// The socket next to the daemon's, in the same private directory.
pub fn socket_path(daemon_socket: &Path) -> PathBuf {
    daemon_socket.with_file_name("epa-desktop-gui.sock")
}

/// Hands `request` to a running window. `Ok(false)`: none is running.
#[cfg(unix)]
pub fn hand_over(path: &Path, request: &Request) -> std::io::Result<bool> {
    use std::os::unix::net::UnixStream;
    let mut stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    stream.write_all(request.encode().as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the running window's acknowledgement so the caller may exit safely.
    let mut ack = String::new();
    stream.take(16).read_to_string(&mut ack)?;
    Ok(ack.starts_with("ok"))
}

#[cfg(not(unix))]
pub fn hand_over(_path: &Path, _request: &Request) -> std::io::Result<bool> {
    // Windows/macOS single-instance handling is not implemented yet: every launch opens a window.
    Ok(false)
}

/// Listens for later launches; `on_request` runs on the listener thread.
#[cfg(unix)]
pub fn listen(path: &Path, on_request: impl Fn(Request) + Send + 'static) -> std::io::Result<()> {
    use std::os::unix::net::UnixListener;
    if let Some(dir) = path.parent() {
        epa_ipc::transport::ensure_private_dir(dir)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
    }
    // A leftover socket (crash) is removed only after a connect to it failed.
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    // The directory is private already; the socket is too, in case it is ever moved.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::thread::Builder::new()
        .name("epa-desktop-instance".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new((&stream).take(MAX_LINE));
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                if let Some(req) = Request::decode(&line) {
                    on_request(req);
                    let _ = (&stream).write_all(b"ok\n");
                } else {
                    let _ = (&stream).write_all(b"bad\n");
                }
            }
        })?;
    Ok(())
}

#[cfg(not(unix))]
pub fn listen(_path: &Path, _on_request: impl Fn(Request) + Send + 'static) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Focus,
            Request::OpenUrl("epa-desktop://auth/callback?code=a&state=b".into()),
        ] {
            assert_eq!(Request::decode(&r.encode()), Some(r));
        }
        assert_eq!(Request::decode("rm -rf\n"), None);
    }

    #[test]
    fn a_second_launch_reaches_the_first() {
        let dir = std::env::temp_dir().join(format!("epa-gui-instance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = socket_path(&dir.join("epad.sock"));
        assert!(matches!(hand_over(&path, &Request::Focus), Ok(false)));
        let (tx, rx) = mpsc::channel();
        listen(&path, move |r| {
            let _ = tx.send(r);
        })
        .unwrap_or_else(|e| panic!("listen: {e}"));
        let url = Request::OpenUrl("epa-desktop://auth/callback?code=x&state=y".into());
        assert!(matches!(hand_over(&path, &url), Ok(true)));
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(5)).ok(),
            Some(url)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
