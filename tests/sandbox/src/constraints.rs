//! Constraint Management for insurants (I_Constraint_Management_Insurant v1.1.3): hiding
//! categories, documents and dynamic folders from healthcare institutions.

use std::sync::Arc;

use crate::services::RecordServices;

#[derive(Debug, Default)]
pub struct Constraints {}

pub fn router(_svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
}
