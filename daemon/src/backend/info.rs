//! Locating a record: every Aktensystem's Information Service is asked (in parallel, no VAU);
//! the one that answers 200 holds it (epa-protocol.md §1).

use epa_protocol::kvnr::Kvnr;
use epa_protocol::rest::{RecordLocation, get_record_status, record_location};

use super::BackendError;
use super::environment::AktensystemEndpoint;

/// Where a record is, as far as the Information Services say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// On this Aktensystem (index into the list), ACTIVATED.
    At(usize),
    /// On this Aktensystem but not usable (SUSPENDED, …): try again later.
    NotActivated(usize),
    /// No Aktensystem knows the KVNR: the insurance has not created a record (yet).
    Nowhere,
}

pub async fn locate_record(
    http: &reqwest::Client,
    systems: &[AktensystemEndpoint],
    kvnr: &Kvnr,
    user_agent: &str,
) -> Result<Located, BackendError> {
    let path = get_record_status(kvnr);
    let asks = systems.iter().map(|a| {
        let url = format!("{}{path}", a.base_url);
        async move {
            let r = http
                .get(&url)
                .header("x-useragent", user_agent)
                .send()
                .await
                .map_err(|e| BackendError::Unreachable {
                    url: a.base_url.clone(),
                    // The request URL names the KVNR: it stays out of errors and logs.
                    reason: e.without_url().to_string(),
                })?;
            let status = r.status().as_u16();
            let body = r.bytes().await.unwrap_or_default();
            record_location(status, &body).map_err(|e| BackendError::Outer {
                status,
                detail: e.to_string(),
            })
        }
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut first_error = None;
    let mut not_activated = None;
    for (i, a) in answers.into_iter().enumerate() {
        match a {
            Ok(RecordLocation::Here) => return Ok(Located::At(i)),
            Ok(RecordLocation::NotActivated) => not_activated = Some(i),
            Ok(RecordLocation::NotHere) => {}
            Err(e) => {
                tracing::warn!(system = %systems[i].id, error = %e, "Information Service failed");
                first_error.get_or_insert(e);
            }
        }
    }
    match (not_activated, first_error) {
        (Some(i), _) => Ok(Located::NotActivated(i)),
        // "Nowhere" only when every system answered; otherwise the record may be on the one
        // that failed.
        (None, Some(e)) => Err(e),
        (None, None) => Ok(Located::Nowhere),
    }
}
