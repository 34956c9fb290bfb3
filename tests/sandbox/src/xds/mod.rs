//! XDS Document Service for insurants (`/epa/xds-document/api/I_Document_Management_Insurant`):
//! registry + repository of each record, ITI-18/41/43/62/92 over SOAP 1.2 + MTOM.

use std::sync::Arc;

use crate::services::RecordServices;

#[derive(Debug, Default)]
pub struct DocumentStore {}

impl DocumentStore {
    /// Whether `kvnr`'s record holds a document chain with this root id
    /// (`<uuid>^^^^urn:gematik:iti:xds:2023:rootDocumentUniqueId`), for Constraint Management.
    pub fn root_document_exists(&self, _kvnr: &str, _root_document_id: &str) -> bool {
        false
    }

    /// The category (static folder code, e.g. `patient`, `reports`, `emp`) a document chain is
    /// filed under.
    pub fn category_of_root(&self, _kvnr: &str, _root_document_id: &str) -> Option<String> {
        None
    }

    /// Whether `folder_uuid` (`urn:uuid:…`) is a dynamic folder of `kvnr`'s record (e.g. one
    /// pregnancy, one DiGA).
    pub fn dynamic_folder_exists(&self, _kvnr: &str, _folder_uuid: &str) -> bool {
        false
    }
}

pub fn router(_svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
}
