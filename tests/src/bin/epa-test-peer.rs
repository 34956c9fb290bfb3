//! A deliberately naive gRPC peer for the security suites: it connects to a socket with none of
//! the client-side checks and calls `Daemon.GetInfo`. Prints `OK <version>` (exit 0) or
//! `ERR <reason>` (exit 1). Run as another uid, it must be refused by the daemon.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use epa_ipc::pb;
use hyper_util::rt::TokioIo;
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};

async fn call(socket: String) -> Result<String, Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_static("http://peer.local")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let name = socket.to_fs_name::<GenericFilePath>()?;
                Ok::<_, std::io::Error>(TokioIo::new(Stream::connect(name).await?))
            }
        }))
        .await?;
    let mut client = pb::daemon_client::DaemonClient::new(channel);
    let mut req = tonic::Request::new(pb::GetInfoRequest::default());
    req.set_timeout(std::time::Duration::from_secs(5));
    Ok(client.get_info(req).await?.into_inner().daemon_version)
}

fn main() -> ExitCode {
    let Some(socket) = std::env::args().nth(1) else {
        eprintln!("usage: epa-test-peer SOCKET");
        return ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("ERR runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(call(socket)) {
        Ok(v) => {
            println!("OK {v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("ERR {e}");
            ExitCode::FAILURE
        }
    }
}
