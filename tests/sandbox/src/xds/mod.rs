//! XDS Document Service for insurants (`/epa/xds-document/api/I_Document_Management_Insurant`):
//! registry + repository of each record, ITI-18/41/43/62/92 over SOAP 1.2 + MTOM.

use std::sync::Arc;

use crate::services::RecordServices;

#[derive(Debug, Default)]
pub struct DocumentStore {}

pub fn router(_svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
}
