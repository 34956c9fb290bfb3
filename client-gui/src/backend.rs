//! What the GUI asks of the daemon, behind a trait so the view model can be driven by a fake
//! in headless tests. [`DaemonBackend`] is the real one: a thin shim over [`DaemonClient`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use epa_ipc::i18n::Lang;
use epa_ipc::types::{
    AddedDocument, Device, DocumentList, DocumentQuery, DocumentSummary, EpaState, Insurer,
    LegalText, NewDocument, TermsState, Unlocked, UserSummary,
};
use epa_ipc::{ClientError, DaemonClient, Password, SessionToken};

pub type Fut<T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send>>;
/// Transfer progress: (bytes done, bytes total).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Every daemon call the GUI makes. Calls after `unlock` act for that local user.
pub trait Backend: Send + Sync {
    fn legal_texts(&self, lang: Lang) -> Fut<(Vec<LegalText>, String)>;
    fn create_user(&self, name: String, password: Password) -> Fut<UserSummary>;
    /// Unlocks and keeps the session for the following calls.
    fn unlock(&self, name: String, password: Password) -> Fut<Unlocked>;
    /// Locks the user and forgets the session.
    fn lock(&self) -> Fut<()>;
    /// Forgets the session without asking the daemon (it is gone already).
    fn forget_session(&self);
    fn accept_terms(&self, version: String) -> Fut<TermsState>;
    fn get_preference(&self, key: String) -> Fut<Option<String>>;
    fn set_preference(&self, key: String, value: String) -> Fut<()>;
    fn epa_state(&self) -> Fut<EpaState>;
    fn list_insurers(&self) -> Fut<Vec<Insurer>>;
    fn set_record_profile(&self, insurer: String, kvnr: String) -> Fut<EpaState>;
    fn start_login(&self) -> Fut<EpaState>;
    fn complete_login(&self, url: String) -> Fut<EpaState>;
    fn confirm_device(&self, code: String) -> Fut<EpaState>;
    fn epa_logout(&self) -> Fut<EpaState>;
    fn list_devices(&self) -> Fut<Vec<Device>>;
    fn list_documents(&self, query: DocumentQuery) -> Fut<DocumentList>;
    fn get_document(&self, id: String, progress: Progress) -> Fut<(DocumentSummary, Vec<u8>)>;
    fn add_document(
        &self,
        doc: NewDocument,
        content: Vec<u8>,
        progress: Progress,
    ) -> Fut<AddedDocument>;
    fn delete_document(&self, id: String) -> Fut<()>;
    fn set_hidden(&self, id: String, hidden: bool) -> Fut<()>;
    fn export_pdf(&self, ids: Vec<String>, progress: Progress) -> Fut<Vec<u8>>;
}

/// The real backend. The connection task puts its current client into `client`; the session
/// token lives only here, in memory.
#[derive(Default)]
pub struct DaemonBackend {
    client: Arc<Mutex<Option<DaemonClient>>>,
    session: Arc<Mutex<Option<SessionToken>>>,
}

impl DaemonBackend {
    /// Where the connection task publishes the client (or `None` while disconnected).
    pub fn slot(&self) -> Arc<Mutex<Option<DaemonClient>>> {
        self.client.clone()
    }

    fn base(&self) -> Result<DaemonClient, ClientError> {
        self.client
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .ok_or_else(|| ClientError::Transport("not connected to the ePA service".into()))
    }

    /// The client acting for the unlocked user; `LOCKED` without a session.
    fn session(&self) -> Result<DaemonClient, ClientError> {
        let base = self.base()?;
        let token = self
            .session
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|t| SessionToken::new(t.expose().to_owned())))
            .ok_or_else(|| ClientError::locked("no local session"))?;
        Ok(base.with_session(token))
    }

    fn call<T, F, Fu>(&self, f: F) -> Fut<T>
    where
        F: FnOnce(DaemonClient) -> Fu + Send + 'static,
        Fu: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        match self.session() {
            Ok(c) => Box::pin(f(c)),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

fn progress_fn(p: &Progress) -> impl FnMut(u64, u64) + Send + 'static {
    let p = p.clone();
    move |done, total| p(done, total)
}

impl Backend for DaemonBackend {
    fn legal_texts(&self, lang: Lang) -> Fut<(Vec<LegalText>, String)> {
        match self.base() {
            Ok(c) => Box::pin(async move { c.legal_texts(lang).await }),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn create_user(&self, name: String, password: Password) -> Fut<UserSummary> {
        match self.base() {
            Ok(c) => Box::pin(async move { c.create_user(&name, &password).await }),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn unlock(&self, name: String, password: Password) -> Fut<Unlocked> {
        let base = match self.base() {
            Ok(c) => c,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        // The token goes straight into the session slot; the view model never sees it.
        let session = self.session.clone();
        Box::pin(async move {
            let (token, unlocked) = base.unlock(&name, &password).await?;
            if let Ok(mut s) = session.lock() {
                *s = Some(token);
            }
            Ok(unlocked)
        })
    }

    fn lock(&self) -> Fut<()> {
        let r = self.session();
        self.forget_session();
        match r {
            Ok(c) => Box::pin(async move { c.lock().await }),
            Err(_) => Box::pin(async { Ok(()) }),
        }
    }

    fn forget_session(&self) {
        if let Ok(mut s) = self.session.lock() {
            *s = None;
        }
    }

    fn accept_terms(&self, version: String) -> Fut<TermsState> {
        self.call(move |c| async move { c.accept_terms(&version).await })
    }

    fn get_preference(&self, key: String) -> Fut<Option<String>> {
        self.call(move |c| async move { c.get_preference(&key).await })
    }

    fn set_preference(&self, key: String, value: String) -> Fut<()> {
        self.call(move |c| async move { c.set_preference(&key, &value).await })
    }

    fn epa_state(&self) -> Fut<EpaState> {
        self.call(|c| async move { c.epa_state().await })
    }

    fn list_insurers(&self) -> Fut<Vec<Insurer>> {
        self.call(|c| async move { c.list_insurers().await })
    }

    fn set_record_profile(&self, insurer: String, kvnr: String) -> Fut<EpaState> {
        self.call(move |c| async move { c.set_record_profile(&insurer, &kvnr).await })
    }

    fn start_login(&self) -> Fut<EpaState> {
        self.call(|c| async move { c.start_login().await })
    }

    fn complete_login(&self, url: String) -> Fut<EpaState> {
        self.call(move |c| async move { c.complete_login(&url).await })
    }

    fn confirm_device(&self, code: String) -> Fut<EpaState> {
        self.call(move |c| async move { c.confirm_device(&code).await })
    }

    fn epa_logout(&self) -> Fut<EpaState> {
        self.call(|c| async move { c.epa_logout().await })
    }

    fn list_devices(&self) -> Fut<Vec<Device>> {
        self.call(|c| async move { c.list_devices().await })
    }

    fn list_documents(&self, query: DocumentQuery) -> Fut<DocumentList> {
        self.call(move |c| async move { c.list_documents(&query).await })
    }

    fn get_document(&self, id: String, progress: Progress) -> Fut<(DocumentSummary, Vec<u8>)> {
        self.call(move |c| async move {
            let (meta, dl) = c.get_document(&id).await?;
            let bytes = dl.collect(progress_fn(&progress)).await?;
            Ok((meta, bytes))
        })
    }

    fn add_document(
        &self,
        doc: NewDocument,
        content: Vec<u8>,
        progress: Progress,
    ) -> Fut<AddedDocument> {
        self.call(
            move |c| async move { c.add_document(&doc, content, progress_fn(&progress)).await },
        )
    }

    fn delete_document(&self, id: String) -> Fut<()> {
        self.call(move |c| async move { c.delete_document(&id, true).await })
    }

    fn set_hidden(&self, id: String, hidden: bool) -> Fut<()> {
        self.call(move |c| async move {
            if hidden {
                c.hide_document(&id).await
            } else {
                c.unhide_document(&id).await
            }
        })
    }

    fn export_pdf(&self, ids: Vec<String>, progress: Progress) -> Fut<Vec<u8>> {
        self.call(move |c| async move {
            let dl = c.export_pdf(&ids).await?;
            dl.collect(progress_fn(&progress)).await
        })
    }
}
