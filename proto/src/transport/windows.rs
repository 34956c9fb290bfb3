//! Windows named pipe. UNTESTED: written to the interprocess API, never run. The pipe name is
//! per user; the DACL ("D:P(A;;GA;;;OW)") grants access to the owner only.

use std::path::Path;

use interprocess::local_socket::tokio::{Listener as LsListener, Stream as LsStream};
use interprocess::local_socket::traits::StreamCommon;
use interprocess::local_socket::traits::tokio::Listener as _;
use interprocess::local_socket::{GenericFilePath, ListenerOptions, ToFsName};
use interprocess::os::windows::local_socket::ListenerOptionsExt;
use interprocess::os::windows::security_descriptor::SecurityDescriptor;

use super::{Endpoint, IpcConn, PeerInfo, TransportError, io_err};

pub fn ensure_private_dir(_dir: &Path) -> Result<(), TransportError> {
    Ok(())
}

pub struct Listener {
    inner: LsListener,
    endpoint: Endpoint,
}

pub fn bind(endpoint: &Endpoint) -> Result<Listener, TransportError> {
    let path = endpoint.path();
    let sddl = widestring::U16CString::from_str("D:P(A;;GA;;;OW)")
        .map_err(|e| io_err("security descriptor")(std::io::Error::other(e)))?;
    let sd = SecurityDescriptor::deserialize(&sddl).map_err(io_err("security descriptor"))?;
    let name = path
        .to_fs_name::<GenericFilePath>()
        .map_err(io_err(format!("pipe name {}", path.display())))?;
    // A second instance fails here: the name is taken (no overwrite on Windows).
    let inner = ListenerOptions::new()
        .name(name)
        .security_descriptor(sd)
        .create_tokio()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => TransportError::AlreadyRunning { pid: None },
            _ => io_err(format!("creating {}", path.display()))(e),
        })?;
    Ok(Listener {
        inner,
        endpoint: endpoint.clone(),
    })
}

impl Listener {
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Windows: the pipe name itself keeps a second daemon out; no separate lock.
    pub fn take_instance_lock(&mut self) -> super::InstanceLock {
        super::InstanceLock { _file: None }
    }

    pub async fn accept(&self) -> std::io::Result<IpcConn> {
        let stream = self.inner.accept().await?;
        let pid = stream
            .peer_creds()
            .ok()
            .and_then(|c| c.pid())
            .map(|p| p as u32);
        Ok(IpcConn::new(stream, PeerInfo { uid: None, pid }))
    }
}

/// Windows has no socket activation; the type cannot be constructed.
#[derive(Debug)]
pub enum ActivatedSocket {}

pub fn take_activated_socket() -> Result<Option<ActivatedSocket>, TransportError> {
    Ok(None)
}

pub fn adopt(socket: ActivatedSocket) -> Result<Listener, TransportError> {
    match socket {}
}

pub fn check_before_connect(_endpoint: &Endpoint) -> Result<bool, TransportError> {
    Ok(true)
}

pub fn check_server_peer(_endpoint: &Endpoint, _stream: &LsStream) -> Result<(), TransportError> {
    Ok(())
}
