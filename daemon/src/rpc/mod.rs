//! tonic services: thin translation into the daemon's state and deliberate error mapping.

use std::pin::Pin;
use std::sync::Arc;

use epa_ipc::error::status;
use epa_ipc::{PROTOCOL_HEADER, PROTOCOL_VERSION, Reason, pb};
use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::Daemon;

mod documents;
mod epa;
mod users;
pub use documents::DocumentsRpc;
pub use epa::EpaRpc;
pub use users::UsersRpc;

pub struct DaemonRpc(pub Arc<Daemon>);

#[tonic::async_trait]
impl pb::daemon_server::Daemon for DaemonRpc {
    async fn get_info(
        &self,
        req: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        let r = req.get_ref();
        if r.client_protocol_version != PROTOCOL_VERSION {
            tracing::warn!(
                client = %r.client_name,
                client_protocol = r.client_protocol_version,
                "client speaks another protocol version"
            );
        }
        Ok(Response::new(self.0.info()))
    }

    async fn shutdown(
        &self,
        _req: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        tracing::info!("shutdown requested over RPC");
        self.0.request_shutdown();
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}

pub struct EventsRpc(pub Arc<Daemon>);

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::events_server::Events for EventsRpc {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let stream = self.0.bus.watch().map(|ev| Ok(pb::WatchEvent::from(&ev)));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Every service but `Daemon` requires the client's protocol version to match ours, so that a
/// stale client gets a clear reason instead of a decode error. `GetInfo` stays open: it is how
/// a client finds out.
#[allow(clippy::result_large_err)] // tonic's interceptor signature
pub fn check_protocol(req: Request<()>) -> Result<Request<()>, Status> {
    let got = req
        .metadata()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    match got {
        Some(v) if v == PROTOCOL_VERSION => Ok(req),
        Some(v) => Err(status(
            tonic::Code::FailedPrecondition,
            Reason::ProtocolMismatch,
            format!("client protocol {v}, daemon protocol {PROTOCOL_VERSION}"),
        )),
        None => Err(status(
            tonic::Code::FailedPrecondition,
            Reason::ProtocolMismatch,
            format!("missing {PROTOCOL_HEADER} header; daemon protocol {PROTOCOL_VERSION}"),
        )),
    }
}
