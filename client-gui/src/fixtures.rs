//! Realistic data and a fake daemon for the headless tests and the screenshot tool: the fake
//! answers like epad would (users, terms, the ePA phases, documents sorted and searched), and
//! [`QueueTasks`] runs its (always ready) futures when asked, so no event loop is needed.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use epa_ipc::i18n::Lang;
use epa_ipc::types::{
    AddedDocument, Device, DocumentList, DocumentQuery, DocumentSummary, EpaPhase, EpaState,
    Insurer, LegalText, NewDocument, PendingDevice, PendingLogin, RecordProfile, SortColumn,
    TermsState, Unlocked, UserSummary,
};
use epa_ipc::{ClientError, Password, Reason};
use futures_util::FutureExt;

use crate::backend::{Backend, Fut, Progress};
use crate::controller::{Controller, Env, Job, Msg, Tasks};

/// 1 June 2025, 10:00 UTC: the fixed "now" of tests and screenshots.
pub const NOW: u64 = 1_748_772_000;

pub const INSURERS: &[&str] = &[
    "AOK Baden-Württemberg",
    "AOK Bayern",
    "AOK Bremen/Bremerhaven",
    "AOK Hessen",
    "AOK Niedersachsen",
    "AOK Nordost",
    "AOK NordWest",
    "AOK PLUS",
    "AOK Rheinland-Pfalz/Saarland",
    "AOK Rheinland/Hamburg",
    "AOK Sachsen-Anhalt",
    "BARMER",
    "DAK-Gesundheit",
    "Techniker Krankenkasse",
];

pub fn rpc(reason: Reason, meta: &[(&str, &str)]) -> ClientError {
    ClientError::Rpc {
        code: epa_ipc::error::Code::FailedPrecondition,
        reason,
        message: String::new(),
        metadata: meta
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn doc(
    id: &str,
    title: &str,
    author: &str,
    mime: &str,
    class: &str,
    days_ago: u64,
    accesses: u32,
) -> DocumentSummary {
    DocumentSummary {
        id: id.into(),
        title: title.into(),
        author: author.into(),
        by_me: author.is_empty(),
        mime_type: mime.into(),
        category: String::new(),
        class_code: String::new(),
        class_display: class.into(),
        created_unix: NOW - days_ago * 86_400,
        size: 120_000,
        accesses,
        hidden: false,
        comment: String::new(),
        cached: true,
    }
}

pub fn sample_documents() -> Vec<DocumentSummary> {
    let mut hidden = doc(
        "d4",
        "Psychotherapeutischer Befundbericht",
        "Dipl.-Psych. Anna Keller",
        "application/pdf",
        "Befundbericht",
        120,
        1,
    );
    hidden.hidden = true;
    vec![
        doc("d1", "image001", "", "image/jpeg", "", 74, 0),
        doc("d2", "röntgenaufnahme", "", "image/png", "", 82, 0),
        doc("d3", "Demo PDF", "", "application/pdf", "", 88, 0),
        hidden,
        doc(
            "d5",
            "Arztbrief Kardiologie",
            "Dr. med. Jonas Weber",
            "application/pdf",
            "Arztbrief",
            31,
            3,
        ),
        doc(
            "d6",
            "Laborbefund Blutbild",
            "Labor Dr. Schmidt & Kollegen",
            "application/pdf",
            "Laborbefund",
            12,
            2,
        ),
        doc("d7", "Impfpass (Scan)", "", "image/tiff", "", 200, 0),
        doc(
            "d8",
            "Medikationsplan",
            "Hausarztpraxis Dr. Petra Lange",
            "text/plain",
            "Medikationsplan",
            5,
            4,
        ),
    ]
}

/// A QR code PNG as the daemon sends it.
pub fn qr_png(text: &str) -> Vec<u8> {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return Vec::new();
    };
    let img = code.render::<image::Luma<u8>>().quiet_zone(true).build();
    let mut out = std::io::Cursor::new(Vec::new());
    match img.write_to(&mut out, image::ImageFormat::Png) {
        Ok(()) => out.into_inner(),
        Err(_) => Vec::new(),
    }
}

pub fn pending_login() -> PendingLogin {
    let url = "https://idp.aok.example/auth?client_id=EPADESKTOPOPENSOURCE&state=Zk3q9&code_challenge=Hq2";
    PendingLogin {
        authorization_url: url.into(),
        qr_png: qr_png(url),
        qr_text: String::new(),
        expires_unix: NOW + 272,
        completes_without_browser: false,
    }
}

pub fn epa_state(phase: EpaPhase) -> EpaState {
    let profile = (phase != EpaPhase::NoProfile).then(|| RecordProfile {
        insurer: "AOK PLUS".into(),
        kvnr: "X110411675".into(),
    });
    EpaState {
        phase,
        profile,
        aktensystem: None,
        login: matches!(
            phase,
            EpaPhase::AwaitingIdentApp | EpaPhase::ReloginRequired
        )
        .then(pending_login),
        device: (phase == EpaPhase::DeviceCodeSent).then(|| PendingDevice {
            device_name: "epa-desktop auf laptop-maria".into(),
            masked_addresses: vec!["m***@e***.de".into()],
            code_valid_until_unix: NOW + 583,
            tries_left: 3,
        }),
        display_name: (phase == EpaPhase::LoggedIn).then(|| "Maria Muster".into()),
        login_required_reason: None,
        relogin_skipped: false,
    }
}

/// What the fake daemon knows.
pub struct FakeState {
    pub users: Vec<(String, String)>,
    pub terms_accepted: bool,
    pub epa: EpaState,
    pub documents: Vec<DocumentSummary>,
    pub queries: Vec<DocumentQuery>,
    pub calls: Vec<String>,
    pub unlocked: bool,
    pub preferences: BTreeMap<String, String>,
}

pub struct FakeBackend {
    pub state: Mutex<FakeState>,
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self {
            state: Mutex::new(FakeState {
                users: vec![("maria".into(), "sicheres-Kennwort-1".into())],
                terms_accepted: true,
                epa: epa_state(EpaPhase::NoProfile),
                documents: sample_documents(),
                queries: Vec::new(),
                calls: Vec::new(),
                unlocked: false,
                preferences: BTreeMap::new(),
            }),
        }
    }
}

fn ready<T: Send + 'static>(r: Result<T, ClientError>) -> Fut<T> {
    Box::pin(std::future::ready(r))
}

impl FakeBackend {
    pub fn with<R>(&self, f: impl FnOnce(&mut FakeState) -> R) -> R {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut s)
    }

    fn call<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&mut FakeState) -> Result<T, ClientError>,
    ) -> Fut<T> {
        ready(self.with(|s| {
            s.calls.push(name.to_owned());
            f(s)
        }))
    }

    fn session<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce(&mut FakeState) -> Result<T, ClientError>,
    ) -> Fut<T> {
        self.call(name, |s| {
            if s.unlocked {
                f(s)
            } else {
                Err(rpc(Reason::Locked, &[]))
            }
        })
    }
}

fn legal(lang: Lang) -> Vec<LegalText> {
    let t = |id: &str, de: &str, en: &str, body: &str| LegalText {
        id: id.into(),
        title: lang.pick(de, en).into(),
        version: "2025-01".into(),
        body: body.into(),
    };
    vec![
        t(
            "terms",
            "Nutzungsbedingungen",
            "Terms of use",
            "1. Geltungsbereich\nDiese Nutzungsbedingungen gelten für epa-desktop.\n\n2. Leistungen\nepa-desktop zeigt Ihre ePA an und überträgt Dokumente.",
        ),
        t(
            "privacy",
            "Datenschutzerklärung",
            "Privacy policy",
            "epa-desktop speichert Ihre Daten verschlüsselt auf diesem PC.",
        ),
        t(
            "imprint",
            "Impressum",
            "Imprint",
            "epa-desktop ist ein Open-Source-Projekt.",
        ),
    ]
}

impl Backend for FakeBackend {
    fn legal_texts(&self, lang: Lang) -> Fut<(Vec<LegalText>, String)> {
        self.call("legal_texts", |_| Ok((legal(lang), "2025-01".into())))
    }

    fn create_user(&self, name: String, password: Password) -> Fut<UserSummary> {
        self.call("create_user", |s| {
            if s.users.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(rpc(Reason::UsernameTaken, &[]));
            }
            s.users.push((name.clone(), password.expose().to_owned()));
            s.terms_accepted = false;
            Ok(UserSummary {
                username: name,
                created_unix: NOW,
                terms_accepted_version: None,
                unlocked: false,
            })
        })
    }

    fn unlock(&self, name: String, password: Password) -> Fut<Unlocked> {
        self.call("unlock", |s| {
            let Some((n, _)) = s
                .users
                .iter()
                .find(|(n, p)| *n == name && p == password.expose())
            else {
                return Err(rpc(
                    Reason::WrongPassword,
                    &[("failures_before_backoff", "4")],
                ));
            };
            let user = UserSummary {
                username: n.clone(),
                created_unix: NOW,
                terms_accepted_version: s.terms_accepted.then(|| "2025-01".into()),
                unlocked: true,
            };
            s.unlocked = true;
            Ok(Unlocked {
                user,
                terms: TermsState {
                    accepted_version: s.terms_accepted.then(|| "2025-01".into()),
                    current_version: "2025-01".into(),
                    acceptance_required: !s.terms_accepted,
                },
                idle_timeout_s: 900,
            })
        })
    }

    fn lock(&self) -> Fut<()> {
        self.call("lock", |s| {
            s.unlocked = false;
            Ok(())
        })
    }

    fn forget_session(&self) {
        self.with(|s| s.unlocked = false);
    }

    fn accept_terms(&self, version: String) -> Fut<TermsState> {
        self.session("accept_terms", |s| {
            s.terms_accepted = true;
            Ok(TermsState {
                accepted_version: Some(version.clone()),
                current_version: version,
                acceptance_required: false,
            })
        })
    }

    fn get_preference(&self, key: String) -> Fut<Option<String>> {
        self.session("get_preference", |s| Ok(s.preferences.get(&key).cloned()))
    }

    fn set_preference(&self, key: String, value: String) -> Fut<()> {
        self.session("set_preference", |s| {
            s.preferences.insert(key, value);
            Ok(())
        })
    }

    fn epa_state(&self) -> Fut<EpaState> {
        self.session("epa_state", |s| Ok(s.epa.clone()))
    }

    fn list_insurers(&self) -> Fut<Vec<Insurer>> {
        self.session("list_insurers", |_| {
            Ok(INSURERS
                .iter()
                .map(|n| Insurer {
                    name: (*n).into(),
                    available: n.starts_with("AOK"),
                })
                .collect())
        })
    }

    fn set_record_profile(&self, insurer: String, kvnr: String) -> Fut<EpaState> {
        self.session("set_record_profile", |s| {
            if crate::format::check_kvnr(&kvnr).is_err() {
                return Err(rpc(Reason::KvnrInvalid, &[]));
            }
            s.epa = epa_state(EpaPhase::LoggedOut);
            s.epa.profile = Some(RecordProfile { insurer, kvnr });
            Ok(s.epa.clone())
        })
    }

    fn start_login(&self) -> Fut<EpaState> {
        self.session("start_login", |s| {
            let relogin = s.epa.phase == EpaPhase::ReloginRequired;
            let profile = s.epa.profile.clone();
            s.epa = epa_state(if relogin {
                EpaPhase::ReloginRequired
            } else {
                EpaPhase::AwaitingIdentApp
            });
            s.epa.profile = profile;
            Ok(s.epa.clone())
        })
    }

    fn complete_login(&self, _url: String) -> Fut<EpaState> {
        self.session("complete_login", |s| {
            let next = if s.epa.phase == EpaPhase::ReloginRequired {
                EpaPhase::LoggedIn
            } else {
                EpaPhase::DeviceCodeSent
            };
            s.epa = epa_state(next);
            Ok(s.epa.clone())
        })
    }

    fn confirm_device(&self, code: String) -> Fut<EpaState> {
        self.session("confirm_device", |s| {
            if code == "123456" {
                s.epa = epa_state(EpaPhase::ReloginRequired);
                return Ok(s.epa.clone());
            }
            let Some(d) = s.epa.device.as_mut() else {
                return Err(rpc(
                    Reason::EpaWrongPhase,
                    &[("phase", s.epa.phase.as_str())],
                ));
            };
            d.tries_left = d.tries_left.saturating_sub(1);
            if d.tries_left == 0 {
                let until = (NOW + 900).to_string();
                return Err(rpc(
                    Reason::DeviceRegistrationLocked,
                    &[("until_unix", &until), ("until", "2025-06-01T10:15:00Z")],
                ));
            }
            let left = d.tries_left.to_string();
            Err(rpc(Reason::DeviceCodeWrong, &[("tries_left", &left)]))
        })
    }

    fn epa_logout(&self) -> Fut<EpaState> {
        self.session("epa_logout", |s| {
            s.epa = epa_state(EpaPhase::LoggedOut);
            Ok(s.epa.clone())
        })
    }

    fn list_devices(&self) -> Fut<Vec<Device>> {
        self.session("list_devices", |_| {
            Ok(vec![
                Device {
                    identifier: "dev-1".into(),
                    display_name: "epa-desktop auf laptop-maria".into(),
                    status: "confirmed".into(),
                    created_unix: NOW - 30 * 86_400,
                    last_used_unix: Some(NOW),
                    this_device: true,
                },
                Device {
                    identifier: "dev-2".into(),
                    display_name: "AOK Mein Leben (iPhone)".into(),
                    status: "confirmed".into(),
                    created_unix: NOW - 200 * 86_400,
                    last_used_unix: None,
                    this_device: false,
                },
            ])
        })
    }

    fn list_documents(&self, query: DocumentQuery) -> Fut<DocumentList> {
        self.session("list_documents", |s| {
            s.queries.push(query.clone());
            let q = query.query.to_lowercase();
            let mut docs: Vec<DocumentSummary> = s
                .documents
                .iter()
                .filter(|d| {
                    q.is_empty()
                        || d.title.to_lowercase().contains(&q)
                        || d.author.to_lowercase().contains(&q)
                })
                .filter(|d| query.mime_types.is_empty() || query.mime_types.contains(&d.mime_type))
                .filter(|d| query.created_from_unix.is_none_or(|f| d.created_unix >= f))
                .filter(|d| query.created_to_unix.is_none_or(|t| d.created_unix <= t))
                .cloned()
                .collect();
            docs.sort_by(|a, b| match query.sort {
                SortColumn::Created => a.created_unix.cmp(&b.created_unix),
                SortColumn::Title => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
                SortColumn::Author => a.author.cmp(&b.author),
                SortColumn::Type => a.mime_type.cmp(&b.mime_type),
                SortColumn::Accesses => a.accesses.cmp(&b.accesses),
            });
            if query.descending {
                docs.reverse();
            }
            Ok(DocumentList {
                total_matching: u32::try_from(docs.len()).unwrap_or(u32::MAX),
                documents: docs,
                synced_unix: Some(NOW - 120),
                offline: false,
            })
        })
    }

    fn get_document(&self, id: String, progress: Progress) -> Fut<(DocumentSummary, Vec<u8>)> {
        self.session("get_document", |s| {
            let d = s
                .documents
                .iter()
                .find(|d| d.id == id)
                .cloned()
                .ok_or_else(|| rpc(Reason::DocumentNotFound, &[]))?;
            progress(4, 4);
            Ok((d, b"%PDF".to_vec()))
        })
    }

    fn add_document(
        &self,
        doc: NewDocument,
        content: Vec<u8>,
        progress: Progress,
    ) -> Fut<AddedDocument> {
        self.session("add_document", |s| {
            progress(content.len() as u64, content.len() as u64);
            let added = DocumentSummary {
                id: format!("n{}", s.documents.len() + 1),
                title: doc.title,
                mime_type: "text/plain".into(),
                by_me: true,
                created_unix: NOW,
                ..DocumentSummary::default()
            };
            s.documents.push(added.clone());
            Ok(AddedDocument {
                upload_id: "u1".into(),
                detected_mime_type: "text/plain".into(),
                hints: vec![],
                document: Some(added),
            })
        })
    }

    fn delete_document(&self, id: String) -> Fut<()> {
        self.session("delete_document", |s| {
            s.documents.retain(|d| d.id != id);
            Ok(())
        })
    }

    fn set_hidden(&self, id: String, hidden: bool) -> Fut<()> {
        self.session("set_hidden", |s| {
            for d in s.documents.iter_mut().filter(|d| d.id == id) {
                d.hidden = hidden;
            }
            Ok(())
        })
    }

    fn export_pdf(&self, ids: Vec<String>, progress: Progress) -> Fut<Vec<u8>> {
        self.session("export_pdf", |_| {
            progress(1, 1);
            Ok(format!("%PDF {}", ids.join(",")).into_bytes())
        })
    }
}

/// Results waiting for the test thread (which plays the event loop).
pub type Posted = Arc<Mutex<Vec<Msg>>>;

/// A [`Tasks::poster`] that queues into `posted`.
pub fn poster(posted: &Posted) -> Arc<dyn Fn(Msg) + Send + Sync> {
    let posted = posted.clone();
    Arc::new(move |m| {
        posted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(m)
    })
}

/// Keeps jobs until [`settle`] runs them (the fake's futures are always ready).
#[derive(Default)]
pub struct QueueTasks {
    jobs: RefCell<VecDeque<Job>>,
    posted: Posted,
}

impl Tasks for QueueTasks {
    fn spawn(&self, job: Job) {
        self.jobs.borrow_mut().push_back(job);
    }

    fn poster(&self) -> Arc<dyn Fn(Msg) + Send + Sync> {
        poster(&self.posted)
    }
}

/// Runs every queued job (and what those queue in turn) and hands the results over.
pub fn settle(tasks: &QueueTasks, ctrl: &Rc<RefCell<Controller>>) {
    for _ in 0..100 {
        let posted: Vec<Msg> =
            std::mem::take(&mut *tasks.posted.lock().unwrap_or_else(PoisonError::into_inner));
        for m in posted {
            ctrl.borrow_mut().update(m);
        }
        let job = tasks.jobs.borrow_mut().pop_front();
        let Some(job) = job else { return };
        // The fake answers at once; a pending job would be a bug in the fake.
        if let Some(msg) = job.now_or_never() {
            ctrl.borrow_mut().update(msg);
        }
    }
}

/// An environment with a fixed clock and private temp directories.
pub fn test_env(
    tag: &str,
    opened: Rc<RefCell<Vec<String>>>,
    chooser: Arc<dyn crate::chooser::FileChooser>,
) -> Env {
    let base = std::env::temp_dir().join(format!("epa-gui-{tag}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&base);
    Env {
        now: Box::new(|| NOW),
        open_dir: base.join("open"),
        save_dir: base,
        opener: Box::new(move |t| {
            opened.borrow_mut().push(t.to_owned());
            Ok(())
        }),
        chooser,
    }
}

/// A window driven by the fake daemon, for tests and screenshots. Needs a Slint platform
/// (the testing backend, or the screenshot tool's software renderer).
pub struct Harness {
    pub window: crate::ui::MainWindow,
    pub ctrl: Rc<RefCell<Controller>>,
    pub tasks: Rc<QueueTasks>,
    pub backend: Arc<FakeBackend>,
    pub opened: Rc<RefCell<Vec<String>>>,
    /// Answers the file dialogs; unprepared it is "unavailable" (the in-app path field).
    pub chooser: Arc<crate::chooser::FakeChooser>,
}

impl Harness {
    pub fn new(tag: &str, lang: Lang) -> Result<Self, slint::PlatformError> {
        use slint::ComponentHandle;
        let window = crate::ui::MainWindow::new()?;
        let tasks = Rc::new(QueueTasks::default());
        let backend = Arc::new(FakeBackend::default());
        let opened = Rc::new(RefCell::new(Vec::new()));
        let chooser = Arc::new(crate::chooser::FakeChooser::default());
        let ctrl = Controller::new(
            &window,
            backend.clone(),
            tasks.clone(),
            test_env(tag, opened.clone(), chooser.clone()),
            lang,
        );
        window.show()?;
        let h = Self {
            window,
            ctrl,
            tasks,
            backend,
            opened,
            chooser,
        };
        h.connect();
        Ok(h)
    }

    pub fn app(&self) -> crate::ui::App<'_> {
        use slint::ComponentHandle;
        self.window.global::<crate::ui::App>()
    }

    pub fn settle(&self) {
        settle(&self.tasks, &self.ctrl);
        self.ctrl.borrow_mut().render();
    }

    pub fn update(&self, msg: Msg) {
        self.ctrl.borrow_mut().update(msg);
        self.settle();
    }

    /// The daemon's Watch snapshot as the connection task would deliver it.
    pub fn connect(&self) {
        use epa_ipc::types::{DaemonInfo, DaemonState, EnvironmentInfo, LocalUser};
        let state = self.backend.with(|s| DaemonState {
            environment: "demo".into(),
            connected_clients: 2,
            shutting_down: false,
            users: s
                .users
                .iter()
                .map(|(n, _)| LocalUser {
                    username: n.clone(),
                    unlocked: s.unlocked,
                })
                .collect(),
            epa_phases: BTreeMap::new(),
        });
        let info = DaemonInfo {
            daemon_version: "0.1.0".into(),
            protocol_version: 1,
            environment: "demo".into(),
            uptime_ms: 1000,
            pid: 4242,
            environment_info: Some(EnvironmentInfo {
                kind: "demo".into(),
                ..EnvironmentInfo::default()
            }),
        };
        self.update(Msg::Status(crate::connection::Status::Connected {
            info: Box::new(info),
            state,
        }));
    }

    /// Unlocks the sample user "maria".
    pub fn login(&self) {
        self.app().set_login_user("maria".into());
        self.app().set_login_password("sicheres-Kennwort-1".into());
        self.ctrl.borrow_mut().login();
        self.settle();
        // The Watch stream reports the unlock, as the daemon would.
        self.connect();
    }

    /// Puts the fake record into `phase` and enters the ePA part.
    pub fn enter_epa(&self, phase: EpaPhase) {
        self.backend.with(|s| s.epa = epa_state(phase));
        self.ctrl.borrow_mut().open_epa();
        self.settle();
    }
}
