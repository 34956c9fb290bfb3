//! The backend as the rest of the daemon sees it while it may still be starting: the demo
//! sandbox starts in the background after the socket is bound, so calls wait for it (bounded)
//! instead of the daemon start waiting.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::environment::Backend;
use super::tls;

/// A usable backend: its description and an HTTPS client trusting exactly its CA.
pub struct Connected {
    pub backend: Backend,
    pub http: reqwest::Client,
}

#[derive(Clone)]
pub enum SlotState {
    Starting,
    Ready(Arc<Connected>),
    /// Why there is no backend (shown in `GetInfo` and in BACKEND_UNREACHABLE).
    Failed(String),
}

pub struct BackendSlot {
    tx: watch::Sender<SlotState>,
}

impl Default for BackendSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl BackendSlot {
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(SlotState::Starting),
        }
    }

    /// Publishes the backend; a CA that does not load makes it a failure instead.
    pub fn set_ready(&self, backend: Backend) {
        match tls::http_client(&backend.tls_ca_pem) {
            Ok(http) => {
                self.tx
                    .send_replace(SlotState::Ready(Arc::new(Connected { backend, http })));
            }
            Err(e) => self.set_failed(e.to_string()),
        }
    }

    pub fn set_failed(&self, problem: String) {
        tracing::error!(%problem, "no ePA backend");
        self.tx.send_replace(SlotState::Failed(problem));
    }

    pub fn current(&self) -> SlotState {
        self.tx.borrow().clone()
    }

    /// The backend once it is there; the problem when it failed or did not come up in `limit`.
    pub async fn wait(&self, limit: Duration) -> Result<Arc<Connected>, String> {
        let mut rx = self.tx.subscribe();
        let settled =
            tokio::time::timeout(limit, rx.wait_for(|s| !matches!(s, SlotState::Starting))).await;
        match settled {
            Ok(Ok(state)) => match &*state {
                SlotState::Ready(c) => Ok(Arc::clone(c)),
                SlotState::Failed(p) => Err(p.clone()),
                SlotState::Starting => Err("the ePA backend is still starting".into()),
            },
            Ok(Err(_)) => Err("the ePA backend is gone".into()),
            Err(_) => Err(format!(
                "the ePA backend did not start within {}s",
                limit.as_secs()
            )),
        }
    }
}
