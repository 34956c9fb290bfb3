//! The typed client: view types in, view types out. No prost type crosses this API.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use interprocess::local_socket::tokio::Stream as LsStream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Uri};

use crate::i18n::Lang;
use crate::secret::{Password, SESSION_HEADER, SessionToken};
use crate::transport::{self, Endpoint, TransportError};
use crate::types::{
    AddedDocument, DaemonInfo, Device, DocumentList, DocumentQuery, DocumentSummary, EpaState,
    Event, Insurer, LegalText, NewDocument, TermsState, Unlocked, Upload, UserList, UserSummary,
};
use crate::{ClientError, PROTOCOL_HEADER, PROTOCOL_VERSION, pb};

/// How long a unary call may take before the daemon counts as hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Transfers (up to 25 MB through the Aktensystem) may take much longer than a unary call.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);
/// Size of the upload messages `add_document` sends.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// Stamps every request with our protocol version and, once unlocked, the session token.
#[derive(Clone, Default)]
struct ClientHeaders {
    session: Option<Arc<SessionToken>>,
}

impl Interceptor for ClientHeaders {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert(PROTOCOL_HEADER, MetadataValue::from(PROTOCOL_VERSION));
        if let Some(token) = &self.session {
            let mut v = MetadataValue::try_from(token.expose())
                .map_err(|_| tonic::Status::invalid_argument("malformed session token"))?;
            v.set_sensitive(true);
            req.metadata_mut().insert(SESSION_HEADER, v);
        }
        Ok(req)
    }
}

type Svc = InterceptedService<Channel, ClientHeaders>;

/// A stream of `Events.Watch` messages.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<Event, ClientError>> + Send>>;

/// A connected, version-checked client of one daemon.
#[derive(Clone)]
pub struct DaemonClient {
    channel: Channel,
    headers: ClientHeaders,
    endpoint: Endpoint,
    info: DaemonInfo,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("endpoint", &self.endpoint)
            .field("info", &self.info)
            .finish()
    }
}

impl DaemonClient {
    /// Connects, checks who serves the socket, and calls `GetInfo`. A daemon of another
    /// protocol version is refused with [`ClientError::Incompatible`].
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, ClientError> {
        Self::connect_as(endpoint, &format!("epa-ipc {}", crate::CLIENT_VERSION)).await
    }

    /// [`connect`](Self::connect) with a client name for the daemon's log.
    pub async fn connect_as(endpoint: &Endpoint, client_name: &str) -> Result<Self, ClientError> {
        let channel = open_channel(endpoint).await?;
        let headers = ClientHeaders::default();
        let mut rpc = pb::daemon_client::DaemonClient::new(InterceptedService::new(
            channel.clone(),
            headers.clone(),
        ));
        let mut req = tonic::Request::new(pb::GetInfoRequest {
            client_protocol_version: PROTOCOL_VERSION,
            client_name: client_name.to_owned(),
        });
        req.set_timeout(CONNECT_TIMEOUT);
        let info: DaemonInfo = rpc
            .get_info(req)
            .await
            .map_err(ClientError::from_status)?
            .into_inner()
            .into();
        if info.protocol_version != PROTOCOL_VERSION {
            return Err(ClientError::Incompatible {
                path: endpoint.path().to_owned(),
                daemon: info.protocol_version,
                client: PROTOCOL_VERSION,
                daemon_version: info.daemon_version,
            });
        }
        Ok(Self {
            channel,
            headers,
            endpoint: endpoint.clone(),
            info,
        })
    }

    fn svc(&self) -> Svc {
        InterceptedService::new(self.channel.clone(), self.headers.clone())
    }

    fn users(&self) -> pb::users_client::UsersClient<Svc> {
        pb::users_client::UsersClient::new(self.svc())
    }

    fn epa(&self) -> pb::epa_client::EpaClient<Svc> {
        pb::epa_client::EpaClient::new(self.svc())
    }

    fn documents(&self) -> pb::documents_client::DocumentsClient<Svc> {
        // Chunks are 64 KiB; the default 4 MiB limit only matters for a misbehaving peer.
        pb::documents_client::DocumentsClient::new(self.svc())
    }

    /// The same connection, acting for the user `token` unlocked.
    pub fn with_session(&self, token: SessionToken) -> Self {
        let mut c = self.clone();
        c.headers.session = Some(Arc::new(token));
        c
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What `GetInfo` answered when this client connected.
    pub fn info(&self) -> &DaemonInfo {
        &self.info
    }

    /// A fresh `GetInfo` (uptime changes).
    pub async fn get_info(&self) -> Result<DaemonInfo, ClientError> {
        let mut rpc = pb::daemon_client::DaemonClient::new(self.svc());
        let resp = rpc
            .get_info(timed(pb::GetInfoRequest {
                client_protocol_version: PROTOCOL_VERSION,
                client_name: String::new(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(resp.into_inner().into())
    }

    /// Asks the daemon to shut down in order. Returns when it has accepted the request.
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        let mut rpc = pb::daemon_client::DaemonClient::new(self.svc());
        rpc.shutdown(timed(pb::ShutdownRequest {}))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    /// Subscribes to the daemon's state: a snapshot first, then numbered deltas.
    pub async fn watch(&self) -> Result<EventStream, ClientError> {
        let mut rpc = pb::events_client::EventsClient::new(self.svc());
        let stream = rpc
            .watch(pb::WatchRequest {})
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(Box::pin(stream.map(|item| match item {
            Ok(ev) => Event::try_from(ev),
            Err(status) => Err(ClientError::from_status(status)),
        })))
    }
}

impl DaemonClient {
    pub async fn create_user(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<UserSummary, ClientError> {
        let r = self
            .users()
            .create_user(timed(pb::CreateUserRequest {
                username: username.to_owned(),
                password: password.expose().to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        r.user
            .map(UserSummary::from)
            .ok_or_else(|| ClientError::Malformed("CreateUser without user".into()))
    }

    pub async fn list_users(&self) -> Result<UserList, ClientError> {
        let r = self
            .users()
            .list_users(timed(pb::ListUsersRequest {}))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(UserList {
            users: r.users.into_iter().map(UserSummary::from).collect(),
            damaged_entries: r.damaged_entries,
        })
    }

    /// Unlocks `username`'s vault; the token authorises later calls ([`Self::with_session`]).
    pub async fn unlock(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<(SessionToken, Unlocked), ClientError> {
        let r = self
            .users()
            .unlock(timed(pb::UnlockRequest {
                username: username.to_owned(),
                password: password.expose().to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        let (Some(user), Some(terms)) = (r.user, r.terms) else {
            return Err(ClientError::Malformed(
                "Unlock without user or terms".into(),
            ));
        };
        Ok((
            SessionToken::new(r.session_token),
            Unlocked {
                user: user.into(),
                terms: terms.into(),
                idle_timeout_s: r.idle_timeout_s,
            },
        ))
    }

    /// Locks the session's user (every session of that user ends).
    pub async fn lock(&self) -> Result<(), ClientError> {
        self.users()
            .lock(timed(pb::LockRequest {}))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    pub async fn change_password(&self, old: &Password, new: &Password) -> Result<(), ClientError> {
        self.users()
            .change_password(timed(pb::ChangePasswordRequest {
                old_password: old.expose().to_owned(),
                new_password: new.expose().to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    pub async fn delete_user(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<(), ClientError> {
        self.users()
            .delete_user(timed(pb::DeleteUserRequest {
                username: username.to_owned(),
                password: password.expose().to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    pub async fn accept_terms(&self, version: &str) -> Result<TermsState, ClientError> {
        let r = self
            .users()
            .accept_terms(timed(pb::AcceptTermsRequest {
                version: version.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        r.terms
            .map(TermsState::from)
            .ok_or_else(|| ClientError::Malformed("AcceptTerms without terms".into()))
    }

    /// The legal texts in `lang`, and the version of the terms of use currently in force.
    pub async fn legal_texts(&self, lang: Lang) -> Result<(Vec<LegalText>, String), ClientError> {
        let r = self
            .users()
            .get_legal_texts(timed(pb::GetLegalTextsRequest {
                lang: lang.pick("de", "en").to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok((
            r.texts.into_iter().map(LegalText::from).collect(),
            r.current_terms_version,
        ))
    }

    pub async fn set_preference(&self, key: &str, value: &str) -> Result<(), ClientError> {
        self.users()
            .set_preference(timed(pb::SetPreferenceRequest {
                key: key.to_owned(),
                value: value.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    pub async fn get_preference(&self, key: &str) -> Result<Option<String>, ClientError> {
        let r = self
            .users()
            .get_preference(timed(pb::GetPreferenceRequest {
                key: key.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(r.found.then_some(r.value))
    }

    // ---- the ePA journey: every call acts for the session's local user ----

    pub async fn epa_state(&self) -> Result<EpaState, ClientError> {
        let r = self
            .epa()
            .get_state(timed(pb::GetEpaStateRequest {}))
            .await
            .map_err(ClientError::from_status)?;
        r.into_inner().try_into()
    }

    pub async fn list_insurers(&self) -> Result<Vec<Insurer>, ClientError> {
        let r = self
            .epa()
            .list_insurers(timed(pb::ListInsurersRequest {}))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(r.insurers
            .into_iter()
            .map(|i| Insurer {
                name: i.name,
                available: i.available,
            })
            .collect())
    }

    /// "ePA verbinden": insurer + KVNR.
    pub async fn set_record_profile(
        &self,
        insurer: &str,
        kvnr: &str,
    ) -> Result<EpaState, ClientError> {
        let r = self
            .epa()
            .set_record_profile(timed(pb::SetRecordProfileRequest {
                insurer: insurer.to_owned(),
                kvnr: kvnr.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        r.into_inner().try_into()
    }

    /// Starts the login with the ident app; the state carries the URL and the QR code.
    pub async fn start_login(&self) -> Result<EpaState, ClientError> {
        let r = self
            .epa()
            .start_login(timed(pb::StartLoginRequest {}))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        r.state
            .ok_or_else(|| ClientError::Malformed("StartLogin without state".into()))?
            .try_into()
    }

    /// Waits up to `timeout` for the pending login to complete; the state either way.
    pub async fn wait_login(&self, timeout: Duration) -> Result<EpaState, ClientError> {
        let mut req = tonic::Request::new(pb::WaitLoginRequest {
            timeout_s: u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX),
        });
        req.set_timeout(timeout + CALL_TIMEOUT);
        let r = self
            .epa()
            .wait_login(req)
            .await
            .map_err(ClientError::from_status)?;
        r.into_inner().try_into()
    }

    /// Forwards the deep link the OS handed over (`epa-desktop://auth/callback?...`).
    pub async fn complete_login(&self, callback_url: &str) -> Result<EpaState, ClientError> {
        let r = self
            .epa()
            .complete_login(timed(pb::CompleteLoginRequest {
                callback_url: callback_url.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        r.into_inner().try_into()
    }

    /// The 6-digit code from the confirmation e-mail.
    pub async fn confirm_device(&self, code: &str) -> Result<EpaState, ClientError> {
        let r = self
            .epa()
            .confirm_device(timed(pb::ConfirmDeviceRequest {
                code: code.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        r.into_inner().try_into()
    }

    pub async fn epa_logout(&self) -> Result<EpaState, ClientError> {
        let r = self
            .epa()
            .logout(timed(pb::LogoutRequest {}))
            .await
            .map_err(ClientError::from_status)?;
        r.into_inner().try_into()
    }

    pub async fn list_devices(&self) -> Result<Vec<Device>, ClientError> {
        let r = self
            .epa()
            .list_devices(timed(pb::ListDevicesRequest {}))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(r.devices.into_iter().map(Device::from).collect())
    }

    pub async fn rename_device(
        &self,
        identifier: &str,
        display_name: &str,
    ) -> Result<Device, ClientError> {
        let r = self
            .epa()
            .rename_device(timed(pb::RenameDeviceRequest {
                identifier: identifier.to_owned(),
                display_name: display_name.to_owned(),
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(r.into_inner().into())
    }

    /// Removing this PC's own registration needs `confirm_this_device`.
    pub async fn remove_device(
        &self,
        identifier: &str,
        confirm_this_device: bool,
    ) -> Result<(), ClientError> {
        self.epa()
            .remove_device(timed(pb::RemoveDeviceRequest {
                identifier: identifier.to_owned(),
                confirm_this_device,
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }
}

/// A server-streamed transfer (a document's content or an exported PDF): the total size is
/// known up front, so clients can draw a progress bar while pulling chunks.
pub struct Download {
    /// Total bytes announced by the daemon.
    pub total_size: u64,
    first: Option<Vec<u8>>,
    rest: Pin<Box<dyn Stream<Item = Result<Vec<u8>, ClientError>> + Send>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("total_size", &self.total_size)
            .finish_non_exhaustive()
    }
}

/// The first message of a streamed answer (it carries the sizes and metadata).
async fn first_message<T>(stream: &mut tonic::Streaming<T>, call: &str) -> Result<T, ClientError> {
    stream
        .message()
        .await
        .map_err(ClientError::from_status)?
        .ok_or_else(|| ClientError::Malformed(format!("{call} without chunks")))
}

impl Download {
    /// The first chunk's data, then the data of every later message of `rest`.
    fn new<T: Send + 'static>(
        total_size: u64,
        first: Vec<u8>,
        rest: tonic::Streaming<T>,
        data: fn(T) -> Vec<u8>,
    ) -> Self {
        let rest = rest.map(move |c| c.map(data).map_err(ClientError::from_status));
        Download {
            total_size,
            first: Some(first),
            rest: Box::pin(rest),
        }
    }

    /// The next chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        if let Some(first) = self.first.take()
            && !first.is_empty()
        {
            return Ok(Some(first));
        }
        self.rest.next().await.transpose()
    }

    /// All remaining bytes; `progress(received, total)` after every chunk.
    pub async fn collect(
        mut self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Vec<u8>, ClientError> {
        let mut out =
            Vec::with_capacity(usize::try_from(self.total_size).unwrap_or(0).min(32 << 20));
        while let Some(chunk) = self.next_chunk().await? {
            out.extend_from_slice(&chunk);
            progress(out.len() as u64, self.total_size);
        }
        Ok(out)
    }
}

impl DaemonClient {
    // ---- documents: every call acts for the session's local user and its ePA record ----

    /// The documents table: from the cache (refreshed in the background), or fresh from the
    /// Aktensystem with `query.refresh`.
    pub async fn list_documents(&self, query: &DocumentQuery) -> Result<DocumentList, ClientError> {
        let mut req = tonic::Request::new(pb::ListDocumentsRequest::from(query));
        req.set_timeout(if query.refresh {
            TRANSFER_TIMEOUT
        } else {
            CALL_TIMEOUT
        });
        let r = self
            .documents()
            .list(req)
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(r.into())
    }

    /// Starts downloading a document: its metadata now, the content via [`Download`].
    pub async fn get_document(&self, id: &str) -> Result<(DocumentSummary, Download), ClientError> {
        let mut req = tonic::Request::new(pb::GetDocumentRequest { id: id.to_owned() });
        req.set_timeout(TRANSFER_TIMEOUT);
        let mut stream = self
            .documents()
            .get(req)
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        let first = first_message(&mut stream, "Get").await?;
        let metadata = first
            .metadata
            .map(DocumentSummary::from)
            .ok_or_else(|| ClientError::Malformed("Get without metadata".into()))?;
        let download = Download::new(first.total_size, first.data, stream, |c| c.data);
        Ok((metadata, download))
    }

    /// Uploads `content`; answers once the upload is queued durably (it survives a daemon
    /// crash). `progress(sent, total)` is called as chunks leave.
    pub async fn add_document(
        &self,
        document: &NewDocument,
        content: Vec<u8>,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<AddedDocument, ClientError> {
        use pb::add_document_part::Part;
        let total = content.len() as u64;
        let first = pb::AddDocumentPart {
            part: Some(Part::Metadata(pb::AddDocumentMetadata {
                title: document.title.clone(),
                comment: document.comment.clone(),
                created_unix: document.created_unix.unwrap_or(0),
                file_name: document.file_name.clone(),
            })),
        };
        let chunks: Vec<Vec<u8>> = content.chunks(UPLOAD_CHUNK).map(<[u8]>::to_vec).collect();
        let mut sent = 0u64;
        let parts = futures_util::stream::iter(std::iter::once(first).chain(
            chunks.into_iter().map(move |c| {
                sent += c.len() as u64;
                progress(sent, total);
                pb::AddDocumentPart {
                    part: Some(Part::Data(c)),
                }
            }),
        ));
        let mut req = tonic::Request::new(parts);
        req.set_timeout(TRANSFER_TIMEOUT);
        let r = self
            .documents()
            .add(req)
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        Ok(r.into())
    }

    /// Deletes a document from the record for good; `confirm` must be true.
    pub async fn delete_document(&self, id: &str, confirm: bool) -> Result<(), ClientError> {
        self.documents()
            .delete(timed(pb::DeleteDocumentRequest {
                id: id.to_owned(),
                confirm,
            }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    /// Hides a document from practices (Constraint Management).
    pub async fn hide_document(&self, id: &str) -> Result<(), ClientError> {
        self.documents()
            .hide(timed(pb::HideDocumentRequest { id: id.to_owned() }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    pub async fn unhide_document(&self, id: &str) -> Result<(), ClientError> {
        self.documents()
            .unhide(timed(pb::UnhideDocumentRequest { id: id.to_owned() }))
            .await
            .map_err(ClientError::from_status)?;
        Ok(())
    }

    /// One PDF of the documents `ids` (cover page first), streamed.
    pub async fn export_pdf(&self, ids: &[String]) -> Result<Download, ClientError> {
        let mut req = tonic::Request::new(pb::ExportPdfRequest { ids: ids.to_vec() });
        req.set_timeout(TRANSFER_TIMEOUT);
        let mut stream = self
            .documents()
            .export_pdf(req)
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        let first = first_message(&mut stream, "ExportPdf").await?;
        Ok(Download::new(first.total_size, first.data, stream, |c| {
            c.data
        }))
    }

    /// Uploads waiting, running, failed or recently done.
    pub async fn list_uploads(&self) -> Result<Vec<Upload>, ClientError> {
        let r = self
            .documents()
            .list_uploads(timed(pb::ListUploadsRequest {}))
            .await
            .map_err(ClientError::from_status)?
            .into_inner();
        r.uploads.into_iter().map(Upload::try_from).collect()
    }
}

fn timed<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(CALL_TIMEOUT);
    req
}

impl From<TransportError> for ClientError {
    fn from(e: TransportError) -> Self {
        match e {
            TransportError::Insecure { path, problem } => ClientError::Insecure { path, problem },
            other => ClientError::Transport(other.to_string()),
        }
    }
}

async fn connect_stream(endpoint: &Endpoint) -> std::io::Result<LsStream> {
    let name = endpoint.path().to_fs_name::<GenericFilePath>()?;
    let stream = LsStream::connect(name).await?;
    transport::check_server_peer(endpoint, &stream).map_err(std::io::Error::other)?;
    Ok(stream)
}

/// Opens a channel over the local socket. The first connection is made here so that its
/// failure comes back typed (not running / insecure); tonic's reconnects use the same checks.
///
/// Clients use [`DaemonClient`]; this is public for raw-protocol tests and benchmarks.
pub async fn open_channel(endpoint: &Endpoint) -> Result<Channel, ClientError> {
    let not_running = || ClientError::NotRunning {
        path: endpoint.path().to_owned(),
    };
    if !transport::check_before_connect(endpoint)? {
        return Err(not_running());
    }
    let first = match tokio::time::timeout(CONNECT_TIMEOUT, connect_stream(endpoint)).await {
        Err(_) => return Err(ClientError::Transport("connecting timed out".into())),
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    not_running()
                }
                _ => match e
                    .into_inner()
                    .map(|inner| inner.downcast::<TransportError>())
                {
                    Some(Ok(t)) => ClientError::from(*t),
                    Some(Err(other)) => ClientError::Transport(other.to_string()),
                    None => ClientError::Transport("connecting failed".into()),
                },
            });
        }
    };
    let first = Arc::new(Mutex::new(Some(first)));
    let ep = endpoint.clone();
    tonic::transport::Endpoint::from_static("http://epad.local")
        .connect_timeout(CONNECT_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let ep = ep.clone();
            let ready = first.lock().ok().and_then(|mut f| f.take());
            async move {
                let stream = match ready {
                    Some(s) => s,
                    None => {
                        // Reconnect: the same checks as the first time.
                        transport::check_before_connect(&ep).map_err(std::io::Error::other)?;
                        connect_stream(&ep).await?
                    }
                };
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))
}
