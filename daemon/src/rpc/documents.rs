//! `Documents`: translation, streaming, and the deliberate mapping of documents errors.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use epa_ipc::error::{status, status_with};
use epa_ipc::types::{DocumentQuery, NewDocument};
use epa_ipc::{Reason, pb};
use futures_util::{Stream, StreamExt};
use tonic::{Code, Request, Response, Status, Streaming};

use super::epa::map_error as map_session_error;
use crate::documents::{CHUNK, Documents, DocumentsError, detect};
use crate::store::StoreError;
use crate::users::{Session, Users};

pub struct DocumentsRpc {
    pub users: Arc<Users>,
    pub documents: Arc<Documents>,
}

fn meta(k: &str, v: String) -> BTreeMap<String, String> {
    BTreeMap::from([(k.to_owned(), v)])
}

fn map_error(e: DocumentsError) -> Status {
    use DocumentsError as E;
    let msg = e.to_string();
    match e {
        E::NotFound => status(Code::NotFound, Reason::DocumentNotFound, msg),
        E::TooLarge { max } => status_with(
            Code::InvalidArgument,
            Reason::DocumentTooLarge,
            msg,
            meta("max_bytes", max.to_string()),
        ),
        E::TypeUnsupported => status(Code::InvalidArgument, Reason::DocumentTypeUnsupported, msg),
        E::TitleInvalid => status(Code::InvalidArgument, Reason::DocumentTitleInvalid, msg),
        E::DeleteNotConfirmed => status(Code::FailedPrecondition, Reason::DeleteNotConfirmed, msg),
        E::Rejected { error_code } => status_with(
            Code::FailedPrecondition,
            Reason::DocumentRejected,
            msg,
            meta("error_code", error_code),
        ),
        E::Offline => status(Code::Unavailable, Reason::DocumentOffline, msg),
        E::Corrupt => status(Code::DataLoss, Reason::DocumentCorrupt, msg),
        // A client that does not follow the contract (no metadata first, …).
        E::BadUpload(_) => status(Code::InvalidArgument, Reason::Internal, msg),
        E::Protocol(_) => status_with(
            Code::Unavailable,
            Reason::BackendError,
            msg,
            meta("error_code", "malformed_answer".to_owned()),
        ),
        E::Pdf(problem) => status_with(
            Code::Internal,
            Reason::PdfExportFailed,
            msg,
            meta("problem", problem),
        ),
        E::Session(s) => map_session_error(s),
        E::Store(StoreError::Damaged { .. }) => status(Code::DataLoss, Reason::VaultDamaged, msg),
        E::Store(_) => status(Code::Internal, Reason::StorageFailed, msg),
        E::Internal(_) => {
            tracing::error!(error = %msg, "documents: internal error");
            status(
                Code::Internal,
                Reason::Internal,
                "internal error; see the daemon log",
            )
        }
    }
}

impl DocumentsRpc {
    fn session<T>(&self, req: &Request<T>) -> Result<Session, Status> {
        super::users::session_of(&self.users, req)
    }
}

type ChunkStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The content in 64 KiB messages; the first carries what `first` makes of the total size.
fn chunks<T: Send + 'static>(
    bytes: Vec<u8>,
    make: impl Fn(Vec<u8>, bool, u64) -> T + Send + 'static,
) -> ChunkStream<T> {
    let total = bytes.len() as u64;
    let parts: Vec<Vec<u8>> = if bytes.is_empty() {
        vec![Vec::new()]
    } else {
        bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect()
    };
    let stream = futures_util::stream::iter(
        parts
            .into_iter()
            .enumerate()
            .map(move |(i, c)| Ok(make(c, i == 0, total))),
    );
    Box::pin(stream)
}

#[tonic::async_trait]
impl pb::documents_server::Documents for DocumentsRpc {
    type GetStream = ChunkStream<pb::DocumentChunk>;
    type ExportPdfStream = ChunkStream<pb::PdfChunk>;

    async fn list(
        &self,
        req: Request<pb::ListDocumentsRequest>,
    ) -> Result<Response<pb::ListDocumentsResponse>, Status> {
        let s = self.session(&req)?;
        let q = DocumentQuery::from(req.into_inner());
        let l = self.documents.list(&s, &q).await.map_err(map_error)?;
        Ok(Response::new(pb::ListDocumentsResponse {
            documents: l.documents.iter().map(pb::DocumentSummary::from).collect(),
            total_matching: l.total_matching,
            synced_unix: l.synced_unix.unwrap_or(0),
            offline: l.offline,
        }))
    }

    async fn get(
        &self,
        req: Request<pb::GetDocumentRequest>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let s = self.session(&req)?;
        let (summary, bytes) = self
            .documents
            .get(&s, &req.get_ref().id)
            .await
            .map_err(map_error)?;
        let meta = pb::DocumentSummary::from(&summary);
        Ok(Response::new(chunks(
            bytes.to_vec(),
            move |data, first, total| pb::DocumentChunk {
                metadata: first.then(|| meta.clone()),
                total_size: if first { total } else { 0 },
                data,
            },
        )))
    }

    async fn add(
        &self,
        req: Request<Streaming<pb::AddDocumentPart>>,
    ) -> Result<Response<pb::AddDocumentResponse>, Status> {
        use pb::add_document_part::Part;
        let s = self.session(&req)?;
        let mut parts = req.into_inner();
        let first = parts.next().await.transpose()?;
        let Some(pb::AddDocumentPart {
            part: Some(Part::Metadata(m)),
        }) = first
        else {
            return Err(map_error(DocumentsError::BadUpload(
                "the first part must be the metadata".into(),
            )));
        };
        // Fail early on a bad title, before 25 MB travel.
        if detect::title(&m.title).is_none() {
            return Err(map_error(DocumentsError::TitleInvalid));
        }
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        while let Some(p) = parts.next().await.transpose()? {
            match p.part {
                Some(Part::Data(d)) => {
                    if bytes.len() + d.len() > detect::MAX_UPLOAD_BYTES {
                        return Err(map_error(DocumentsError::TooLarge {
                            max: detect::MAX_UPLOAD_BYTES,
                        }));
                    }
                    bytes.extend_from_slice(&d);
                }
                _ => {
                    return Err(map_error(DocumentsError::BadUpload(
                        "metadata only once, first".into(),
                    )));
                }
            }
        }
        let meta = NewDocument {
            title: m.title,
            comment: m.comment,
            created_unix: Some(m.created_unix).filter(|t| *t != 0),
            file_name: m.file_name,
        };
        let a = self
            .documents
            .add(&s, &meta, &bytes)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::AddDocumentResponse {
            upload_id: a.upload_id,
            detected_mime_type: a.detected_mime_type,
            hints: a.hints,
            document: a.document.as_ref().map(pb::DocumentSummary::from),
        }))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<pb::DeleteDocumentResponse>, Status> {
        let s = self.session(&req)?;
        let r = req.get_ref();
        self.documents
            .delete(&s, &r.id, r.confirm)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::DeleteDocumentResponse {}))
    }

    async fn hide(
        &self,
        req: Request<pb::HideDocumentRequest>,
    ) -> Result<Response<pb::HideDocumentResponse>, Status> {
        let s = self.session(&req)?;
        self.documents
            .hide(&s, &req.get_ref().id)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::HideDocumentResponse {}))
    }

    async fn unhide(
        &self,
        req: Request<pb::UnhideDocumentRequest>,
    ) -> Result<Response<pb::UnhideDocumentResponse>, Status> {
        let s = self.session(&req)?;
        self.documents
            .unhide(&s, &req.get_ref().id)
            .await
            .map_err(map_error)?;
        Ok(Response::new(pb::UnhideDocumentResponse {}))
    }

    async fn export_pdf(
        &self,
        req: Request<pb::ExportPdfRequest>,
    ) -> Result<Response<Self::ExportPdfStream>, Status> {
        let s = self.session(&req)?;
        let pdf = self
            .documents
            .export_pdf(&s, &req.get_ref().ids)
            .await
            .map_err(map_error)?;
        Ok(Response::new(chunks(pdf, |data, first, total| {
            pb::PdfChunk {
                data,
                total_size: if first { total } else { 0 },
            }
        })))
    }

    async fn list_uploads(
        &self,
        req: Request<pb::ListUploadsRequest>,
    ) -> Result<Response<pb::ListUploadsResponse>, Status> {
        let s = self.session(&req)?;
        let u = self.documents.uploads(&s).await.map_err(map_error)?;
        Ok(Response::new(pb::ListUploadsResponse {
            uploads: u.iter().map(pb::Upload::from).collect(),
        }))
    }
}
