//! The view model: turns the daemon's state into the window's properties and the window's
//! callbacks into [`Backend`] calls. It decides nothing the daemon decides (phases, rules,
//! sorting, filtering); it only chooses what to show for the state the daemon reports.
//!
//! It lives on the UI thread. Daemon calls run elsewhere ([`Tasks`]); each finishes as a
//! [`Msg`] that comes back through [`Controller::update`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use epa_ipc::i18n::{Lang, UserMessage, describe};
use epa_ipc::types::{
    AddedDocument, DaemonInfo, DaemonState, Device, DocumentList, DocumentQuery, DocumentSummary,
    EpaPhase, EpaState, Insurer, LegalText, NewDocument, SortColumn, TermsState, Unlocked,
};
use epa_ipc::{ClientError, Password, Reason};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};

use crate::backend::{Backend, Progress};
use crate::chooser::{Ask, Choice, FileChooser};
use crate::connection::Status;
use crate::format::{self, KvnrProblem};
use crate::ui::{App, Article, DeviceRow, DocRow, MainWindow, Message, Rule, Screen};
use crate::{knowledge, view};

/// The local user's language choice, kept by the daemon.
const LANG_PREF: &str = "gui.lang";

/// The largest file "Dokument hinzufügen" reads (the record's limit; the daemon checks too).
const MAX_UPLOAD: u64 = 25 * 1024 * 1024;

pub type Job = Pin<Box<dyn Future<Output = Msg> + Send>>;

/// Runs daemon calls off the UI thread and brings their results back as messages.
pub trait Tasks {
    fn spawn(&self, job: Job);
    /// Posts a message to the controller from any thread (progress while a job runs).
    fn poster(&self) -> Arc<dyn Fn(Msg) + Send + Sync>;
}

/// What happened: a job finished, the connection changed, a second or a deep link arrived.
pub enum Msg {
    Status(Status),
    Legal(Result<(Vec<LegalText>, String), ClientError>, LegalIntent),
    Unlocked(String, Result<Unlocked, ClientError>),
    TermsAccepted(Result<TermsState, ClientError>),
    Locked,
    Epa(Result<EpaState, ClientError>, Intent),
    Insurers(Result<Vec<Insurer>, ClientError>),
    /// The language the local user chose last time (preference `gui.lang`).
    Language(Option<String>),
    Devices(Result<Vec<Device>, ClientError>),
    Docs(Result<DocumentList, ClientError>),
    Progress(u64, u64),
    Done(Result<Done, Failure>),
    /// The system's file dialog closed.
    Chosen(FileRequest, Choice),
    DeepLink(String),
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegalIntent {
    /// Show text `id`; back returns to the given screen.
    Show(String),
    /// The terms the user must accept before going on.
    Accept,
    /// Only learn the current version (for "Benutzer anlegen").
    Prefetch,
}

/// Why a new ePA state arrived: the person asked to go into the ePA, or it just changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Enter,
    Update,
}

/// A finished file action.
pub enum Done {
    Saved(PathBuf),
    Opened(PathBuf),
    Added(Box<AddedDocument>),
    Deleted(String),
    Hidden(String, bool),
}

/// A failed action: from the daemon, or local (file system).
pub enum Failure {
    Daemon(ClientError),
    Local(String),
    /// The chosen file exists; the file dialog stays open.
    Exists(PathBuf),
}

/// What a file dialog is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileAction {
    SaveDoc { id: String },
    Export { ids: Vec<String> },
    Add,
}

/// A file dialog on its way: what for, and what the in-app field shows if there is no dialog.
pub struct FileRequest {
    action: FileAction,
    suggested: PathBuf,
}

/// The extensions "Dokument hinzufügen" offers (the types the record takes); both cases, as
/// the portal's globs are case-sensitive.
const ADD_EXTENSIONS: [&str; 14] = [
    "pdf", "PDF", "jpg", "JPG", "jpeg", "JPEG", "png", "PNG", "tif", "TIF", "tiff", "TIFF", "txt",
    "TXT",
];

/// Opens a file or https URL with the system's handler.
pub type Opener = Box<dyn Fn(&str) -> std::io::Result<()>>;

/// The program's environment, replaceable in tests.
pub struct Env {
    pub now: Box<dyn Fn() -> u64>,
    /// Private directory for documents opened in the system viewer.
    pub open_dir: PathBuf,
    /// Where save dialogs start.
    pub save_dir: PathBuf,
    /// Opens a file or https URL with the system's handler.
    pub opener: Opener,
    /// The system's file dialogs; unavailable means the in-app path field.
    pub chooser: Arc<dyn FileChooser>,
}

pub struct Controller {
    window: slint::Weak<MainWindow>,
    backend: Arc<dyn Backend>,
    tasks: Rc<dyn Tasks>,
    env: Env,
    pub lang: Lang,
    screen: Screen,
    /// Where "Zurück" of a legal text goes.
    legal_back: Screen,
    status: Status,
    info: Option<DaemonInfo>,
    daemon: DaemonState,
    message: Option<(i32, UserMessage)>,
    busy: Option<String>,
    progress: Option<(u64, u64)>,
    /// The unlocked local user.
    user: Option<String>,
    terms_version: String,
    legal: Vec<LegalText>,
    legal_shown: Option<String>,
    epa: Option<EpaState>,
    /// The phase the Watch stream last reported for our user.
    watched_phase: Option<String>,
    /// The Watch stream has shown our user unlocked. Only a later "locked" ends the session:
    /// updates that were on their way before the unlock must not.
    watch_saw_unlocked: bool,
    /// A login was started for the current visit; not again until the phase moves on.
    login_started: bool,
    insurers: Vec<Insurer>,
    devices: Vec<Device>,
    devices_error: Option<String>,
    lockout_until: Option<u64>,
    query: DocumentQuery,
    docs: DocumentList,
    selected: BTreeSet<String>,
    docs_model: Rc<VecModel<DocRow>>,
    file: Option<FileAction>,
    file_error: String,
    /// A system file dialog is open; further clicks wait for it.
    choosing: bool,
    /// The in-app file dialog holds a path the system's dialog chose (only the title is
    /// asked), rather than standing in for a dialog that is not available.
    file_from_system: bool,
    confirm_delete: Option<String>,
    qr_for: String,
    qr: slint::Image,
    /// `--lang` was given: it wins over the user's stored choice.
    pub lang_from_args: bool,
}

fn ss(s: impl AsRef<str>) -> SharedString {
    SharedString::from(s.as_ref())
}

fn locked(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Rpc {
            reason: Reason::Locked,
            ..
        }
    )
}

fn reason_of(e: &ClientError) -> Option<&Reason> {
    match e {
        ClientError::Rpc { reason, .. } => Some(reason),
        _ => None,
    }
}

fn meta<'a>(e: &'a ClientError, key: &str) -> Option<&'a str> {
    match e {
        ClientError::Rpc { metadata, .. } => metadata.get(key).map(String::as_str),
        _ => None,
    }
}

impl Controller {
    pub fn new(
        window: &MainWindow,
        backend: Arc<dyn Backend>,
        tasks: Rc<dyn Tasks>,
        env: Env,
        lang: Lang,
    ) -> Rc<RefCell<Self>> {
        let docs_model = Rc::new(VecModel::default());
        window
            .global::<App>()
            .set_docs(ModelRc::from(docs_model.clone()));
        let this = Rc::new(RefCell::new(Self {
            window: window.as_weak(),
            backend,
            tasks,
            env,
            lang,
            screen: Screen::Login,
            legal_back: Screen::Login,
            status: Status::Connecting,
            info: None,
            daemon: DaemonState::default(),
            message: None,
            busy: None,
            progress: None,
            user: None,
            terms_version: String::new(),
            legal: Vec::new(),
            legal_shown: None,
            epa: None,
            watched_phase: None,
            watch_saw_unlocked: false,
            login_started: false,
            insurers: Vec::new(),
            devices: Vec::new(),
            devices_error: None,
            lockout_until: None,
            query: DocumentQuery::default(),
            docs: DocumentList::default(),
            selected: BTreeSet::new(),
            docs_model,
            file: None,
            file_error: String::new(),
            choosing: false,
            file_from_system: false,
            confirm_delete: None,
            qr_for: String::new(),
            qr: slint::Image::default(),
            lang_from_args: false,
        }));
        wire(window, &this);
        this.borrow_mut().set_language(lang);
        this
    }

    fn t(&self, de: &'static str, en: &'static str) -> &'static str {
        self.lang.pick(de, en)
    }

    fn spawn(&mut self, busy: Option<String>, job: Job) {
        if busy.is_some() {
            self.busy = busy;
            self.progress = None;
        }
        self.tasks.spawn(job);
    }

    fn progress_poster(&self) -> Progress {
        let post = self.tasks.poster();
        Arc::new(move |done, total| post(Msg::Progress(done, total)))
    }

    fn info_msg(&mut self, kind: i32, text: impl Into<String>) {
        self.message = Some((
            kind,
            UserMessage {
                text: text.into(),
                hint: String::new(),
            },
        ));
    }

    /// Shows a daemon error; a dead session sends the person back to "Anmelden".
    fn fail(&mut self, e: &ClientError) {
        self.busy = None;
        if locked(e) && self.user.is_some() {
            self.session_ended(self.t(
                "Ihre Sitzung ist abgelaufen. Bitte melden Sie sich erneut an.",
                "Your session has ended. Please log in again.",
            ));
            return;
        }
        self.message = Some((3, describe(e, self.lang)));
    }

    fn session_ended(&mut self, why: &str) {
        self.backend.forget_session();
        self.user = None;
        self.epa = None;
        self.watched_phase = None;
        self.watch_saw_unlocked = false;
        self.docs = DocumentList::default();
        self.selected.clear();
        self.devices.clear();
        self.busy = None;
        self.file = None;
        self.confirm_delete = None;
        self.screen = Screen::Login;
        self.info_msg(1, why);
    }

    // ---- messages ----

    pub fn update(&mut self, msg: Msg) {
        match msg {
            Msg::Status(status) => self.on_status(status),
            Msg::Legal(r, intent) => self.on_legal(r, intent),
            Msg::Unlocked(name, r) => self.on_unlocked(name, r),
            Msg::TermsAccepted(r) => {
                self.busy = None;
                match r {
                    Ok(_) => self.enter_overview(),
                    Err(e) => self.fail(&e),
                }
            }
            Msg::Locked => {}
            Msg::Epa(r, intent) => {
                self.busy = None;
                match r {
                    Ok(s) => self.route(s, intent),
                    Err(e) => self.epa_failed(&e),
                }
            }
            Msg::Language(Some(code)) => {
                if let Some(lang) = Lang::parse(&code)
                    && lang != self.lang
                {
                    self.set_language(lang);
                }
            }
            Msg::Language(None) => {}
            Msg::Insurers(r) => match r {
                Ok(list) => self.insurers = list,
                Err(e) => self.fail(&e),
            },
            Msg::Devices(r) => match r {
                Ok(list) => {
                    self.devices = list;
                    self.devices_error = None;
                }
                Err(e) => self.devices_error = Some(describe(&e, self.lang).text),
            },
            Msg::Docs(r) => {
                self.busy = None;
                match r {
                    Ok(list) => {
                        let ids: BTreeSet<&str> =
                            list.documents.iter().map(|d| d.id.as_str()).collect();
                        self.selected.retain(|id| ids.contains(id.as_str()));
                        self.docs = list;
                        self.fill_docs();
                    }
                    Err(e) => self.epa_failed(&e),
                }
            }
            Msg::Progress(done, total) => self.progress = Some((done, total)),
            Msg::Done(r) => self.on_done(r),
            Msg::Chosen(req, choice) => self.on_chosen(req, choice),
            Msg::DeepLink(url) => self.deep_link(url),
            Msg::Tick => {}
        }
        self.render();
    }

    fn on_status(&mut self, status: Status) {
        if let Status::Connected { info, state } = &status {
            self.info = Some((**info).clone());
            self.daemon = state.clone();
            if let Some(user) = self.user.clone() {
                let unlocked = state.users.iter().any(|u| u.username == user && u.unlocked);
                if unlocked {
                    self.watch_saw_unlocked = true;
                }
                if !unlocked && self.watch_saw_unlocked {
                    self.session_ended(self.t(
                        "Der lokale Benutzer wurde gesperrt. Bitte melden Sie sich erneut an.",
                        "The local user was locked. Please log in again.",
                    ));
                } else if unlocked {
                    let phase = state.epa_phases.get(&user).cloned();
                    if phase != self.watched_phase {
                        self.watched_phase = phase;
                        let job = self.backend.epa_state();
                        self.spawn(
                            None,
                            Box::pin(async move { Msg::Epa(job.await, Intent::Update) }),
                        );
                    }
                }
            }
            if self.terms_version.is_empty() && self.legal.is_empty() {
                self.load_legal(LegalIntent::Prefetch);
            }
            let app_users: Vec<String> = state.users.iter().map(|u| u.username.clone()).collect();
            if let Some(w) = self.window.upgrade() {
                let app = w.global::<App>();
                if app.get_login_user().is_empty() && app_users.len() == 1 {
                    app.set_login_user(ss(&app_users[0]));
                }
            }
        }
        self.status = status;
    }

    fn load_legal(&mut self, intent: LegalIntent) {
        let job = self.backend.legal_texts(self.lang);
        self.spawn(None, Box::pin(async move { Msg::Legal(job.await, intent) }));
    }

    fn on_legal(&mut self, r: Result<(Vec<LegalText>, String), ClientError>, intent: LegalIntent) {
        self.busy = None;
        let (texts, version) = match r {
            Ok(v) => v,
            Err(e) => {
                if intent != LegalIntent::Prefetch {
                    self.fail(&e);
                }
                return;
            }
        };
        self.legal = texts;
        self.terms_version = version;
        match intent {
            LegalIntent::Prefetch => {}
            LegalIntent::Accept => {
                self.legal_shown = Some("terms".into());
                self.screen = Screen::Terms;
            }
            LegalIntent::Show(id) => {
                self.legal_shown = Some(id);
                if self.screen != Screen::Legal {
                    self.legal_back = self.screen;
                }
                self.screen = Screen::Legal;
            }
        }
    }

    fn on_unlocked(&mut self, name: String, r: Result<Unlocked, ClientError>) {
        self.busy = None;
        match r {
            Ok(u) => {
                self.user = Some(name);
                self.message = None;
                self.watched_phase = None;
                self.watch_saw_unlocked = false;
                if let Some(w) = self.window.upgrade() {
                    let app = w.global::<App>();
                    app.set_login_password(ss(""));
                    app.set_new_password(ss(""));
                    app.set_new_password2(ss(""));
                }
                self.terms_version = u.terms.current_version.clone();
                if !self.lang_from_args {
                    let job = self.backend.get_preference(LANG_PREF.into());
                    self.spawn(
                        None,
                        Box::pin(async move { Msg::Language(job.await.ok().flatten()) }),
                    );
                }
                if u.terms.acceptance_required {
                    self.load_legal(LegalIntent::Accept);
                } else {
                    self.enter_overview();
                }
            }
            Err(e) => {
                // A wrong password does not stay in the field.
                if let Some(w) = self.window.upgrade() {
                    w.global::<App>().set_login_password(ss(""));
                }
                self.fail(&e);
            }
        }
    }

    fn enter_overview(&mut self) {
        self.screen = Screen::Overview;
        let job = self.backend.epa_state();
        self.spawn(
            None,
            Box::pin(async move { Msg::Epa(job.await, Intent::Update) }),
        );
    }

    /// Shows the screen the daemon's phase calls for (only while the person is in the ePA part,
    /// or wants to go there).
    fn route(&mut self, s: EpaState, intent: Intent) {
        let in_epa = matches!(
            self.screen,
            Screen::Connect | Screen::Ident | Screen::Device | Screen::Documents
        );
        let previous = self.epa.as_ref().map(|e| e.phase);
        if previous != Some(s.phase) {
            self.login_started = false;
            if s.phase != EpaPhase::DeviceCodeSent {
                self.lockout_until = None;
            }
        }
        self.epa = Some(s.clone());
        if !(in_epa || intent == Intent::Enter) {
            return;
        }
        let now = (self.env.now)();
        match s.phase {
            EpaPhase::NoProfile => {
                self.screen = Screen::Connect;
                if self.insurers.is_empty() {
                    let job = self.backend.list_insurers();
                    self.spawn(None, Box::pin(async move { Msg::Insurers(job.await) }));
                }
            }
            EpaPhase::LoggedOut => {
                if intent == Intent::Enter {
                    self.start_login();
                } else {
                    self.screen = Screen::Overview;
                    self.info_msg(
                        1,
                        self.t(
                            "Sie sind von der ePA abgemeldet.",
                            "You are logged out of the ePA.",
                        ),
                    );
                }
            }
            EpaPhase::AwaitingIdentApp | EpaPhase::ReloginRequired => {
                self.screen = Screen::Ident;
                let usable = s
                    .login
                    .as_ref()
                    .is_some_and(|l| l.expires_unix == 0 || l.expires_unix > now + 5);
                if !usable && !self.login_started {
                    self.start_login();
                }
            }
            EpaPhase::DeviceCodeSent => self.screen = Screen::Device,
            EpaPhase::LoggedIn => {
                if self.screen != Screen::Documents {
                    self.screen = Screen::Documents;
                    self.load_docs(false);
                }
            }
        }
    }

    fn start_login(&mut self) {
        self.login_started = true;
        self.screen = Screen::Ident;
        let job = self.backend.start_login();
        let busy = self.t("Anmeldung wird vorbereitet …", "Preparing the login …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Epa(job.await, Intent::Enter) }),
        );
    }

    fn epa_failed(&mut self, e: &ClientError) {
        match reason_of(e) {
            Some(Reason::DeviceRegistrationLocked) => {
                self.lockout_until = meta(e, "until_unix").and_then(|v| v.parse().ok());
                // The screen shows the lockout with its end and countdown; only without an
                // end time does the daemon's text stand in.
                self.message = if self.lockout_until.is_some() {
                    None
                } else {
                    Some((3, describe(e, self.lang)))
                };
            }
            Some(Reason::EpaNotLoggedIn | Reason::EpaWrongPhase) => {
                self.message = Some((3, describe(e, self.lang)));
                let job = self.backend.epa_state();
                self.spawn(
                    None,
                    Box::pin(async move { Msg::Epa(job.await, Intent::Update) }),
                );
            }
            Some(Reason::DeviceCodeWrong) => {
                self.message = Some((3, describe(e, self.lang)));
                if let Some(w) = self.window.upgrade() {
                    w.global::<App>().set_device_code(ss(""));
                }
                let job = self.backend.epa_state();
                self.spawn(
                    None,
                    Box::pin(async move { Msg::Epa(job.await, Intent::Update) }),
                );
            }
            _ => self.fail(e),
        }
    }

    fn on_done(&mut self, r: Result<Done, Failure>) {
        self.busy = None;
        self.progress = None;
        match r {
            Ok(Done::Saved(path)) => self.info_msg(
                2,
                match self.lang {
                    Lang::De => format!("Gespeichert: {}", path.display()),
                    Lang::En => format!("Saved: {}", path.display()),
                },
            ),
            Ok(Done::Opened(path)) => {
                if let Err(e) = (self.env.opener)(&path.to_string_lossy()) {
                    self.info_msg(
                        3,
                        match self.lang {
                            Lang::De => format!(
                                "Das Dokument liegt unter {}, konnte aber nicht geöffnet werden: {e}",
                                path.display()
                            ),
                            Lang::En => format!(
                                "The document is at {}, but could not be opened: {e}",
                                path.display()
                            ),
                        },
                    );
                }
            }
            Ok(Done::Added(added)) => {
                let mut text = self
                    .t("Das Dokument wurde hinzugefügt.", "The document was added.")
                    .to_owned();
                for h in &added.hints {
                    text.push(' ');
                    text.push_str(h);
                }
                self.info_msg(2, text);
                self.load_docs(false);
            }
            Ok(Done::Deleted(_)) => {
                self.info_msg(
                    2,
                    self.t("Das Dokument wurde gelöscht.", "The document was deleted."),
                );
                self.load_docs(false);
            }
            Ok(Done::Hidden(_, hidden)) => {
                self.info_msg(
                    2,
                    if hidden {
                        self.t(
                            "Das Dokument ist jetzt für Praxen verborgen.",
                            "The document is now hidden from practices.",
                        )
                    } else {
                        self.t(
                            "Das Dokument ist für Praxen wieder sichtbar.",
                            "The document is visible to practices again.",
                        )
                    },
                );
                self.load_docs(false);
            }
            Err(Failure::Daemon(e)) => self.epa_failed(&e),
            Err(Failure::Local(text)) => self.info_msg(3, text),
            Err(Failure::Exists(path)) => {
                let text = match self.lang {
                    Lang::De => format!(
                        "{} gibt es schon. Wählen Sie einen anderen Namen.",
                        path.display()
                    ),
                    Lang::En => format!("{} already exists. Choose another name.", path.display()),
                };
                // In the in-app field's dialog while it is open; otherwise (system dialog, or
                // the file appeared while the download ran) as a message.
                if self.file.is_some() {
                    self.file_error = text;
                } else {
                    self.info_msg(3, text);
                }
            }
        }
    }

    fn deep_link(&mut self, url: String) {
        if let Err(e) = epa_ipc::deeplink::parse_auth_callback(&url) {
            self.message = Some((3, view::deeplink_refused(&e, self.lang)));
            return;
        }
        if self.user.is_none() {
            self.info_msg(
                3,
                self.t(
                    "Der Anmelde-Link kam an, aber niemand ist angemeldet. Melden Sie sich an und starten Sie die Anmeldung mit der Ident-App erneut.",
                    "The login link arrived, but nobody is logged in. Log in and start the ident app login again.",
                ),
            );
            return;
        }
        let job = self.backend.complete_login(url);
        let busy = self.t("Anmeldung wird abgeschlossen …", "Completing the login …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Epa(job.await, Intent::Enter) }),
        );
    }

    // ---- what the person does ----

    pub fn login(&mut self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let app = w.global::<App>();
        let name = app.get_login_user().to_string();
        let pw = app.get_login_password().to_string();
        if name.trim().is_empty() || pw.is_empty() {
            self.info_msg(
                3,
                self.t(
                    "Bitte geben Sie Benutzername und Kennwort ein.",
                    "Please enter user name and password.",
                ),
            );
            return;
        }
        let job = self.backend.unlock(name.clone(), Password::new(pw));
        let busy = self.t("Anmelden …", "Logging in …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Unlocked(name, job.await) }),
        );
    }

    /// The rules of "Neuen lokalen Benutzer anlegen", checked as the person types. The daemon
    /// checks them again (and whether the password is too common).
    pub fn new_user_rules(
        &self,
        name: &str,
        pw: &str,
        pw2: &str,
        terms: bool,
    ) -> Vec<(String, bool)> {
        let chars = name.chars().count();
        let name_ok =
            chars > 0 && chars <= 64 && name.trim() == name && !name.chars().any(char::is_control);
        let pw_len = pw.chars().count() >= 10 && pw.len() <= 1024;
        let differs = !pw.is_empty() && pw.to_lowercase() != name.to_lowercase();
        let same = !pw.is_empty() && pw == pw2;
        vec![
            (
                self.t(
                    "Benutzername: 1 bis 64 Zeichen, ohne Leerzeichen am Anfang oder Ende",
                    "User name: 1 to 64 characters, no spaces at the start or end",
                )
                .into(),
                name_ok,
            ),
            (
                self.t(
                    "Kennwort: mindestens 10 Zeichen",
                    "Password: at least 10 characters",
                )
                .into(),
                pw_len,
            ),
            (
                self.t(
                    "Kennwort und Benutzername sind verschieden",
                    "Password and user name differ",
                )
                .into(),
                differs,
            ),
            (
                self.t("Beide Kennwörter stimmen überein", "Both passwords match")
                    .into(),
                same,
            ),
            (
                self.t("Nutzungsbedingungen akzeptiert", "Terms of use accepted")
                    .into(),
                terms,
            ),
        ]
    }

    pub fn create_user(&mut self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let app = w.global::<App>();
        let name = app.get_new_user().to_string();
        let pw = app.get_new_password().to_string();
        let rules = self.new_user_rules(&name, &pw, &app.get_new_password2(), app.get_new_terms());
        if rules.iter().any(|(_, ok)| !ok) {
            self.info_msg(
                3,
                self.t(
                    "Bitte erfüllen Sie alle Regeln unter den Eingabefeldern.",
                    "Please meet every rule below the fields.",
                ),
            );
            return;
        }
        let backend = self.backend.clone();
        let version = self.terms_version.clone();
        let lang = self.lang;
        let n = name.clone();
        let busy = self.t("Benutzer wird angelegt …", "Creating the user …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move {
                let r = async {
                    backend
                        .create_user(n.clone(), Password::new(pw.clone()))
                        .await?;
                    let unlocked = backend.unlock(n, Password::new(pw)).await?;
                    // The person accepted the terms on this screen: record it right away.
                    let version = if version.is_empty() {
                        backend.legal_texts(lang).await?.1
                    } else {
                        version
                    };
                    let terms = backend.accept_terms(version).await?;
                    Ok(Unlocked { terms, ..unlocked })
                }
                .await;
                Msg::Unlocked(name, r)
            }),
        );
    }

    pub fn lock(&mut self) {
        let job = self.backend.lock();
        self.spawn(
            None,
            Box::pin(async move {
                let _ = job.await;
                Msg::Locked
            }),
        );
        self.session_ended(self.t("Sie sind abgemeldet.", "You are logged out."));
    }

    pub fn open_epa(&mut self) {
        let job = self.backend.epa_state();
        let busy = self.t("ePA wird geöffnet …", "Opening the ePA …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Epa(job.await, Intent::Enter) }),
        );
    }

    pub fn open_profile(&mut self) {
        self.screen = Screen::Profile;
        self.message = None;
        self.devices_error = None;
        if self
            .epa
            .as_ref()
            .is_some_and(|e| e.phase == EpaPhase::LoggedIn)
        {
            let job = self.backend.list_devices();
            self.spawn(None, Box::pin(async move { Msg::Devices(job.await) }));
        }
    }

    pub fn show_legal(&mut self, id: &str) {
        if self.legal.iter().any(|t| t.id == id) {
            self.legal_shown = Some(id.to_owned());
            if self.screen != Screen::Legal {
                self.legal_back = self.screen;
            }
            self.screen = Screen::Legal;
        } else {
            self.load_legal(LegalIntent::Show(id.to_owned()));
        }
    }

    pub fn kvnr_state(&self, raw: &str) -> (i32, &'static str) {
        match format::check_kvnr(raw) {
            Ok(_) => (
                1,
                self.t("Versichertennummer ist gültig.", "The insurance number is valid."),
            ),
            Err(KvnrProblem::Empty) => (
                0,
                self.t(
                    "Ein Großbuchstabe und neun Ziffern, z. B. X110411675.",
                    "One capital letter and nine digits, e.g. X110411675.",
                ),
            ),
            Err(KvnrProblem::Letter) => (
                2,
                self.t(
                    "Die Versichertennummer beginnt mit einem Buchstaben.",
                    "The insurance number starts with a letter.",
                ),
            ),
            Err(KvnrProblem::Digits) => (
                2,
                self.t(
                    "Nach dem Buchstaben folgen nur Ziffern.",
                    "Only digits follow the letter.",
                ),
            ),
            Err(KvnrProblem::TooShort) => (
                0,
                self.t(
                    "Noch nicht vollständig: ein Buchstabe und neun Ziffern.",
                    "Not complete yet: one letter and nine digits.",
                ),
            ),
            Err(KvnrProblem::TooLong) => (
                2,
                self.t(
                    "Zu lang: ein Buchstabe und neun Ziffern.",
                    "Too long: one letter and nine digits.",
                ),
            ),
            Err(KvnrProblem::CheckDigit) => (
                2,
                self.t(
                    "Die Prüfziffer stimmt nicht. Bitte vergleichen Sie mit Ihrer Gesundheitskarte.",
                    "The check digit is wrong. Please compare with your health card.",
                ),
            ),
        }
    }

    pub fn connect_epa(&mut self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let app = w.global::<App>();
        let kvnr = match format::check_kvnr(&app.get_kvnr()) {
            Ok(k) => k,
            Err(_) => {
                self.info_msg(3, self.kvnr_state(&app.get_kvnr()).1);
                return;
            }
        };
        let index = usize::try_from(app.get_insurer_index()).ok();
        let Some(insurer) = index
            .and_then(|i| self.insurers.get(i))
            .map(|i| i.name.clone())
        else {
            self.info_msg(
                3,
                self.t(
                    "Bitte wählen Sie Ihre Krankenkasse.",
                    "Please choose your insurer.",
                ),
            );
            return;
        };
        let job = self.backend.set_record_profile(insurer, kvnr);
        let busy = self.t("ePA wird gesucht …", "Looking for the ePA …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Epa(job.await, Intent::Enter) }),
        );
    }

    pub fn open_browser(&mut self) {
        let url = self
            .epa
            .as_ref()
            .and_then(|e| e.login.as_ref())
            .map(|l| l.authorization_url.clone())
            .unwrap_or_default();
        // Only https links go to the browser; anything else would be a daemon bug.
        if !url.starts_with("https://") {
            self.info_msg(
                3,
                self.t(
                    "Der Anmelde-Link ist kein https-Link und wird nicht geöffnet.",
                    "The login link is not an https link and is not opened.",
                ),
            );
            return;
        }
        if let Err(e) = (self.env.opener)(&url) {
            self.info_msg(
                3,
                match self.lang {
                    Lang::De => format!("Der Browser konnte nicht geöffnet werden: {e}"),
                    Lang::En => format!("Could not open the browser: {e}"),
                },
            );
        }
    }

    pub fn confirm_code(&mut self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let code: String = w
            .global::<App>()
            .get_device_code()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            self.info_msg(
                3,
                self.t(
                    "Der Bestätigungscode hat 6 Ziffern.",
                    "The confirmation code has 6 digits.",
                ),
            );
            return;
        }
        let job = self.backend.confirm_device(code);
        let busy = self.t("Code wird geprüft …", "Checking the code …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Epa(job.await, Intent::Enter) }),
        );
    }

    pub fn epa_logout(&mut self) {
        let job = self.backend.epa_logout();
        let busy = self.t("Abmelden …", "Logging out …");
        self.docs = DocumentList::default();
        self.selected.clear();
        self.fill_docs();
        self.spawn(
            Some(busy.into()),
            Box::pin(async move { Msg::Epa(job.await, Intent::Update) }),
        );
        // The ePA screens are left at once; the state that comes back is only recorded.
        self.screen = Screen::Overview;
    }

    // ---- documents ----

    fn load_docs(&mut self, refresh: bool) {
        let mut q = self.query.clone();
        q.refresh = refresh;
        let job = self.backend.list_documents(q);
        let busy = refresh.then(|| {
            self.t("Dokumente werden geladen …", "Loading documents …")
                .to_owned()
        });
        self.spawn(busy, Box::pin(async move { Msg::Docs(job.await) }));
    }

    pub fn refresh_docs(&mut self) {
        self.load_docs(true);
    }

    pub fn search_edited(&mut self, text: &str) {
        self.query.query = text.trim().to_owned();
        self.load_docs(false);
    }

    /// Sorting by a column: first ascending (dates: newest first), again reverses.
    pub fn sort_by(&mut self, column: i32) {
        let col = match column {
            0 => SortColumn::Type,
            1 => SortColumn::Title,
            2 => SortColumn::Author,
            3 => SortColumn::Accesses,
            _ => SortColumn::Created,
        };
        if self.query.sort == col {
            self.query.descending = !self.query.descending;
        } else {
            self.query.sort = col;
            self.query.descending = col == SortColumn::Created;
        }
        self.load_docs(false);
    }

    fn sort_index(&self) -> i32 {
        match self.query.sort {
            SortColumn::Type => 0,
            SortColumn::Title => 1,
            SortColumn::Author => 2,
            SortColumn::Accesses => 3,
            SortColumn::Created => 4,
        }
    }

    pub fn toggle_doc(&mut self, index: i32) {
        let Some(d) = usize::try_from(index)
            .ok()
            .and_then(|i| self.docs.documents.get(i))
        else {
            return;
        };
        if !self.selected.remove(&d.id) {
            self.selected.insert(d.id.clone());
        }
        self.fill_docs();
    }

    pub fn toggle_all(&mut self) {
        if self.all_selected() {
            self.selected.clear();
        } else {
            self.selected = self.docs.documents.iter().map(|d| d.id.clone()).collect();
        }
        self.fill_docs();
    }

    fn all_selected(&self) -> bool {
        !self.docs.documents.is_empty()
            && self
                .docs
                .documents
                .iter()
                .all(|d| self.selected.contains(&d.id))
    }

    pub fn apply_filter(&mut self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let app = w.global::<App>();
        let mut mimes = Vec::new();
        if app.get_f_pdf() {
            mimes.push("application/pdf".to_owned());
        }
        if app.get_f_image() {
            mimes.extend(["image/jpeg", "image/png", "image/tiff"].map(String::from));
        }
        if app.get_f_text() {
            mimes.push("text/plain".to_owned());
        }
        let date = |s: SharedString| -> Result<Option<u64>, ()> {
            if s.trim().is_empty() {
                Ok(None)
            } else {
                format::parse_date(&s).map(Some).ok_or(())
            }
        };
        let (from, to) = match (date(app.get_f_from()), date(app.get_f_to())) {
            (Ok(f), Ok(t)) => (f, t),
            _ => {
                app.set_filter_error(ss(self.t(
                    "Bitte geben Sie Daten als TT.MM.JJJJ ein, z. B. 05.03.2025.",
                    "Please enter dates as DD.MM.YYYY, e.g. 05.03.2025.",
                )));
                return;
            }
        };
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            app.set_filter_error(ss(self.t(
                "Das Startdatum liegt nach dem Enddatum.",
                "The start date is after the end date.",
            )));
            return;
        }
        app.set_filter_error(ss(""));
        self.query.mime_types = mimes;
        let category = app.get_f_category().trim().to_owned();
        self.query.categories = if category.is_empty() {
            vec![]
        } else {
            vec![category]
        };
        self.query.created_from_unix = from;
        // "bis" includes the whole day.
        self.query.created_to_unix = to.map(|t| t + 86_399);
        self.load_docs(false);
    }

    pub fn reset_filter(&mut self) {
        if let Some(w) = self.window.upgrade() {
            let app = w.global::<App>();
            app.set_f_pdf(false);
            app.set_f_image(false);
            app.set_f_text(false);
            app.set_f_category(ss(""));
            app.set_f_from(ss(""));
            app.set_f_to(ss(""));
            app.set_filter_error(ss(""));
        }
        self.query.mime_types.clear();
        self.query.categories.clear();
        self.query.created_from_unix = None;
        self.query.created_to_unix = None;
        self.load_docs(false);
    }

    fn filter_active(&self) -> bool {
        !self.query.mime_types.is_empty()
            || !self.query.categories.is_empty()
            || self.query.created_from_unix.is_some()
            || self.query.created_to_unix.is_some()
    }

    fn doc(&self, index: i32) -> Option<DocumentSummary> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.docs.documents.get(i))
            .cloned()
    }

    fn open_file_dialog(&mut self, action: FileAction, path: PathBuf, title: &str) {
        if let Some(w) = self.window.upgrade() {
            let app = w.global::<App>();
            app.set_file_path(ss(path.to_string_lossy()));
            app.set_add_title(ss(title));
        }
        self.file_error.clear();
        self.file = Some(action);
    }

    /// Asks the system's file dialog (on the tokio side); its answer comes back as
    /// [`Msg::Chosen`]. Without one the in-app field opens with `suggested`.
    fn choose(&mut self, action: FileAction, ask: Ask, suggested: PathBuf) {
        if self.choosing || self.file.is_some() {
            return;
        }
        self.choosing = true;
        let job = self.env.chooser.choose(ask);
        let req = FileRequest { action, suggested };
        self.spawn(None, Box::pin(async move { Msg::Chosen(req, job.await) }));
    }

    fn on_chosen(&mut self, req: FileRequest, choice: Choice) {
        self.choosing = false;
        // The session ended or the person left the documents while the dialog was open.
        if self.user.is_none() || self.screen != Screen::Documents {
            return;
        }
        match choice {
            // A new document gets its title here (the file's name as a start), as in the
            // in-app dialog.
            Choice::Chosen(path) if req.action == FileAction::Add => {
                let stem = path
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.file_from_system = true;
                self.open_file_dialog(FileAction::Add, path, &stem);
            }
            Choice::Chosen(path) => {
                if let Err(text) = self.run_file_action(req.action, path, String::new()) {
                    self.info_msg(3, text);
                }
            }
            Choice::Cancelled => {}
            Choice::Unavailable(why) => {
                eprintln!("epa-desktop: no system file dialog ({why}); using the path field");
                self.file_from_system = false;
                self.open_file_dialog(req.action, req.suggested, "");
            }
        }
    }

    pub fn save_doc(&mut self, index: i32) {
        let Some(d) = self.doc(index) else { return };
        let name = format::safe_file_name(&d.title, format::extension(&d.mime_type));
        let path = self.env.save_dir.join(&name);
        let ask = Ask::Save {
            title: self.t("Dokument speichern", "Save document").into(),
            dir: self.env.save_dir.clone(),
            name,
        };
        self.choose(FileAction::SaveDoc { id: d.id }, ask, path);
    }

    pub fn export_pdf(&mut self) {
        let ids: Vec<String> = self
            .docs
            .documents
            .iter()
            .filter(|d| self.selected.contains(&d.id))
            .map(|d| d.id.clone())
            .collect();
        if ids.is_empty() {
            self.info_msg(
                3,
                self.t(
                    "Bitte wählen Sie zuerst Dokumente aus.",
                    "Please select documents first.",
                ),
            );
            return;
        }
        let name = format!(
            "ePA-Dokumente-{}.pdf",
            format::date((self.env.now)()).replace('.', "-")
        );
        let path = self.env.save_dir.join(&name);
        let ask = Ask::Save {
            title: self.t("Als PDF speichern", "Save as PDF").into(),
            dir: self.env.save_dir.clone(),
            name,
        };
        self.choose(FileAction::Export { ids }, ask, path);
    }

    pub fn add_document(&mut self) {
        let ask = Ask::Open {
            title: self.t("Dokument hinzufügen", "Add document").into(),
            dir: self.env.save_dir.clone(),
            filter: (
                self.t(
                    "Dokumente (PDF, JPEG, PNG, TIFF, Text)",
                    "Documents (PDF, JPEG, PNG, TIFF, text)",
                )
                .into(),
                ADD_EXTENSIONS.iter().map(|e| (*e).to_owned()).collect(),
            ),
        };
        // A trailing separator, so the person only types the file name.
        let dir = self.env.save_dir.join("");
        self.choose(FileAction::Add, ask, dir);
    }

    pub fn file_cancel(&mut self) {
        self.file = None;
        self.file_error.clear();
    }

    /// "Speichern" / "Hinzufügen" of the in-app path field.
    pub fn file_ok(&mut self) {
        let Some(action) = self.file.clone() else {
            return;
        };
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let app = w.global::<App>();
        let path = PathBuf::from(app.get_file_path().trim());
        if path.as_os_str().is_empty() {
            self.file_error = self
                .t(
                    "Bitte geben Sie einen Dateipfad an.",
                    "Please enter a file path.",
                )
                .into();
            return;
        }
        let title = app.get_add_title().trim().to_owned();
        if let Err(text) = self.run_file_action(action, path, title) {
            self.file_error = text;
        }
    }

    /// Checks the chosen path and starts the download, export or upload; whichever dialog
    /// chose it, the same rules apply (files are never overwritten). `Err` is a problem with
    /// the path, for the person to see; an empty `title` means the file's name.
    fn run_file_action(
        &mut self,
        action: FileAction,
        path: PathBuf,
        title: String,
    ) -> Result<(), String> {
        let lang = self.lang;
        let progress = self.progress_poster();
        match action {
            FileAction::SaveDoc { id } => {
                if path.exists() {
                    self.on_done(Err(Failure::Exists(path)));
                    return Ok(());
                }
                let job = self.backend.get_document(id, progress);
                self.file = None;
                let busy = self.t("Dokument wird gespeichert …", "Saving the document …");
                self.spawn(
                    Some(busy.into()),
                    Box::pin(async move {
                        Msg::Done(match job.await {
                            Ok((_, bytes)) => {
                                write_new(&path, &bytes, lang).map(|()| Done::Saved(path))
                            }
                            Err(e) => Err(Failure::Daemon(e)),
                        })
                    }),
                );
            }
            FileAction::Export { ids } => {
                if path.exists() {
                    self.on_done(Err(Failure::Exists(path)));
                    return Ok(());
                }
                let job = self.backend.export_pdf(ids, progress);
                self.file = None;
                let busy = self.t("PDF wird erstellt …", "Creating the PDF …");
                self.spawn(
                    Some(busy.into()),
                    Box::pin(async move {
                        Msg::Done(match job.await {
                            Ok(bytes) => write_new(&path, &bytes, lang).map(|()| Done::Saved(path)),
                            Err(e) => Err(Failure::Daemon(e)),
                        })
                    }),
                );
            }
            FileAction::Add => {
                let meta = match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() => m,
                    Ok(_) => {
                        return Err(self.t("Das ist keine Datei.", "That is not a file.").into());
                    }
                    Err(e) => {
                        return Err(match lang {
                            Lang::De => format!("Die Datei lässt sich nicht lesen: {e}"),
                            Lang::En => format!("Cannot read the file: {e}"),
                        });
                    }
                };
                if meta.len() > MAX_UPLOAD {
                    return Err(self
                        .t(
                            "Die Datei ist größer als 25 MB.",
                            "The file is larger than 25 MB.",
                        )
                        .into());
                }
                let file_name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let title = if title.is_empty() {
                    path.file_stem()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    title
                };
                let backend = self.backend.clone();
                self.file = None;
                let busy = self.t("Dokument wird hochgeladen …", "Uploading the document …");
                self.spawn(
                    Some(busy.into()),
                    Box::pin(async move {
                        let content = match std::fs::read(&path) {
                            Ok(c) => c,
                            Err(e) => {
                                return Msg::Done(Err(Failure::Local(match lang {
                                    Lang::De => format!("Die Datei lässt sich nicht lesen: {e}"),
                                    Lang::En => format!("Cannot read the file: {e}"),
                                })));
                            }
                        };
                        let doc = NewDocument {
                            title,
                            comment: String::new(),
                            created_unix: None,
                            file_name,
                        };
                        Msg::Done(
                            backend
                                .add_document(doc, content, progress)
                                .await
                                .map(|a| Done::Added(Box::new(a)))
                                .map_err(Failure::Daemon),
                        )
                    }),
                );
            }
        }
        Ok(())
    }

    pub fn open_doc(&mut self, index: i32) {
        let Some(d) = self.doc(index) else { return };
        let name = format::safe_file_name(&d.title, format::extension(&d.mime_type));
        let dir = self.env.open_dir.clone();
        let lang = self.lang;
        let job = self.backend.get_document(d.id, self.progress_poster());
        let busy = self.t("Dokument wird geladen …", "Loading the document …");
        self.spawn(
            Some(busy.into()),
            Box::pin(async move {
                Msg::Done(match job.await {
                    Ok((_, bytes)) => write_private(&dir, &name, &bytes, lang).map(Done::Opened),
                    Err(e) => Err(Failure::Daemon(e)),
                })
            }),
        );
    }

    pub fn toggle_hide(&mut self, index: i32) {
        let Some(d) = self.doc(index) else { return };
        let hide = !d.hidden;
        let job = self.backend.set_hidden(d.id.clone(), hide);
        let id = d.id;
        self.spawn(
            Some(self.t("Wird geändert …", "Changing …").into()),
            Box::pin(async move {
                Msg::Done(
                    job.await
                        .map(|()| Done::Hidden(id, hide))
                        .map_err(Failure::Daemon),
                )
            }),
        );
    }

    pub fn delete_doc(&mut self, index: i32) {
        if let Some(d) = self.doc(index) {
            self.confirm_delete = Some(d.id);
        }
    }

    pub fn confirm_yes(&mut self) {
        let Some(id) = self.confirm_delete.take() else {
            return;
        };
        let job = self.backend.delete_document(id.clone());
        self.spawn(
            Some(
                self.t("Dokument wird gelöscht …", "Deleting the document …")
                    .into(),
            ),
            Box::pin(async move {
                Msg::Done(
                    job.await
                        .map(|()| Done::Deleted(id))
                        .map_err(Failure::Daemon),
                )
            }),
        );
    }

    pub fn confirm_no(&mut self) {
        self.confirm_delete = None;
    }

    /// The person picked a language in "Profil": shown at once, and kept for next time.
    pub fn choose_language(&mut self, lang: Lang) {
        self.set_language(lang);
        if self.user.is_some() {
            let job = self
                .backend
                .set_preference(LANG_PREF.into(), lang.pick("de", "en").into());
            // Not being able to keep the choice is no reason to bother the person.
            self.spawn(
                None,
                Box::pin(async move {
                    let _ = job.await;
                    Msg::Tick
                }),
            );
        }
    }

    pub fn set_language(&mut self, lang: Lang) {
        self.lang = lang;
        // Without an English catalogue entry Slint falls back to the German source text.
        let _ = slint::select_bundled_translation(lang.pick("", "en"));
        if let Some(w) = self.window.upgrade() {
            let app = w.global::<App>();
            app.set_english(lang == Lang::En);
            let articles: Vec<Article> = knowledge::articles(lang)
                .iter()
                .map(|a| Article {
                    title: ss(a.title),
                    summary: ss(a.summary),
                    body: ss(a.body),
                })
                .collect();
            app.set_articles(ModelRc::new(VecModel::from(articles)));
        }
        if self.user.is_some() || !self.legal.is_empty() {
            self.load_legal(LegalIntent::Prefetch);
        }
        self.fill_docs();
    }

    pub fn go(&mut self, screen: Screen) {
        self.screen = screen;
        self.message = None;
    }

    pub fn legal_back(&mut self) {
        self.screen = self.legal_back;
    }

    /// A form field changed: the live checks are part of [`Self::render`], which follows.
    pub fn edited(&mut self) {}

    pub fn dismiss_message(&mut self) {
        self.message = None;
    }

    // ---- rendering ----

    fn fill_docs(&self) {
        let by_me = self.t("von mir", "by me");
        let rows: Vec<DocRow> = self
            .docs
            .documents
            .iter()
            .map(|d| DocRow {
                id: ss(&d.id),
                selected: self.selected.contains(&d.id),
                type_label: ss(format::type_label(&d.mime_type)),
                title: ss(&d.title),
                author: ss(if d.by_me { by_me } else { d.author.as_str() }),
                accesses: ss(d.accesses.to_string()),
                created: ss(format::date(d.created_unix)),
                hidden: d.hidden,
                category: ss(if d.class_display.is_empty() {
                    &d.category
                } else {
                    &d.class_display
                }),
            })
            .collect();
        self.docs_model.set_vec(rows);
    }

    /// The screen the window shows right now (for tests and the tray).
    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn epa_phase(&self) -> Option<EpaPhase> {
        self.epa.as_ref().map(|e| e.phase)
    }

    pub fn render(&mut self) {
        let Some(w) = self.window.upgrade() else {
            return;
        };
        let app = w.global::<App>();
        let now = (self.env.now)();
        let lang = self.lang;
        let t = |de: &'static str, en: &'static str| lang.pick(de, en);

        let (connected, banner, hint) = view::banner(&self.status, lang);
        app.set_connected(connected);
        app.set_banner(ss(banner));
        app.set_banner_hint(ss(hint));
        app.set_screen(self.screen);
        app.set_users(ModelRc::new(VecModel::from(
            self.daemon
                .users
                .iter()
                .map(|u| ss(&u.username))
                .collect::<Vec<_>>(),
        )));
        let (kind, msg) = match &self.message {
            Some((k, m)) => (*k, m.clone()),
            None => (
                0,
                UserMessage {
                    text: String::new(),
                    hint: String::new(),
                },
            ),
        };
        app.set_message(Message {
            kind,
            text: ss(msg.text),
            hint: ss(msg.hint),
        });
        app.set_busy(self.busy.is_some());
        app.set_busy_text(ss(self.busy.as_deref().unwrap_or_default()));
        #[allow(clippy::cast_precision_loss)] // a progress bar needs no 64-bit precision
        app.set_progress(match self.progress {
            Some((done, total)) if total > 0 => (done as f32 / total as f32).min(1.0),
            _ => -1.0,
        });

        // Neuen lokalen Benutzer anlegen
        let rules = self.new_user_rules(
            &app.get_new_user(),
            &app.get_new_password(),
            &app.get_new_password2(),
            app.get_new_terms(),
        );
        app.set_new_valid(rules.iter().all(|(_, ok)| *ok));
        app.set_new_rules(ModelRc::new(VecModel::from(
            rules
                .into_iter()
                .map(|(text, ok)| Rule { text: ss(text), ok })
                .collect::<Vec<_>>(),
        )));

        // legal texts
        if self.screen == Screen::Terms || self.screen == Screen::Legal {
            let id = self.legal_shown.clone().unwrap_or_default();
            match self.legal.iter().find(|l| l.id == id) {
                Some(l) => {
                    app.set_legal_title(ss(&l.title));
                    app.set_legal_body(ss(&l.body));
                    app.set_legal_version(ss(&l.version));
                }
                None => {
                    app.set_legal_title(ss(t("Rechtliche Hinweise", "Legal notices")));
                    app.set_legal_body(ss(t(
                        "Dieser Text ist im ePA-Dienst nicht vorhanden.",
                        "The ePA service has no such text.",
                    )));
                    app.set_legal_version(ss(""));
                }
            }
        }

        app.set_user_name(ss(self.user.as_deref().unwrap_or_default()));
        let gui_version = env!("CARGO_PKG_VERSION");
        app.set_gui_version(ss(gui_version));
        app.set_daemon_version(ss(self
            .info
            .as_ref()
            .map_or("–", |i| i.daemon_version.as_str())));
        app.set_environment(ss(self.info.as_ref().map_or_else(
            || "–".to_owned(),
            |i| {
                let kind = i
                    .environment_info
                    .as_ref()
                    .map(|e| e.kind.clone())
                    .unwrap_or_else(|| i.environment.clone());
                if kind == "demo" {
                    format!(
                        "{kind} – {}",
                        t(
                            "Testumgebung mit Testpersonen",
                            "test environment with test persons"
                        )
                    )
                } else {
                    kind
                }
            },
        )));
        let epa = self.epa.clone();
        app.set_epa_logged_in(epa.as_ref().is_some_and(|e| e.phase == EpaPhase::LoggedIn));
        app.set_epa_account(ss(match &epa {
            Some(EpaState {
                profile: Some(p),
                phase,
                display_name,
                ..
            }) => {
                let state = if *phase == EpaPhase::LoggedIn {
                    t("angemeldet", "logged in")
                } else {
                    t("nicht angemeldet", "not logged in")
                };
                match display_name {
                    Some(n) => format!("{n} · {} · {} ({state})", p.insurer, p.kvnr),
                    None => format!("{} · {} ({state})", p.insurer, p.kvnr),
                }
            }
            _ => t("noch nicht verbunden", "not connected yet").to_owned(),
        }));
        app.set_devices(ModelRc::new(VecModel::from(
            self.devices
                .iter()
                .map(|d| DeviceRow {
                    name: ss(&d.display_name),
                    status: ss(device_status(&d.status, lang)),
                    created: ss(format::date(d.created_unix)),
                    this_device: d.this_device,
                })
                .collect::<Vec<_>>(),
        )));
        app.set_devices_note(ss(
            match (&self.devices_error, epa.as_ref().map(|e| e.phase)) {
                (Some(e), _) => e.clone(),
                (None, Some(EpaPhase::LoggedIn)) if self.devices.is_empty() => {
                    t("Keine Geräte gefunden.", "No devices found.").to_owned()
                }
                (None, Some(EpaPhase::LoggedIn)) => String::new(),
                _ => t(
                    "Die Geräte Ihrer ePA sehen Sie, wenn Sie bei der ePA angemeldet sind.",
                    "The devices of your ePA show once you are logged in to the ePA.",
                )
                .to_owned(),
            },
        ));

        // ePA verbinden
        app.set_insurers(ModelRc::new(VecModel::from(
            self.insurers
                .iter()
                .map(|i| {
                    if i.available {
                        ss(&i.name)
                    } else {
                        ss(format!(
                            "{} ({})",
                            i.name,
                            t("hier nicht verfügbar", "not available here")
                        ))
                    }
                })
                .collect::<Vec<_>>(),
        )));
        let (kstate, ktext) = self.kvnr_state(&app.get_kvnr());
        app.set_kvnr_state(kstate);
        app.set_kvnr_check(ss(ktext));

        // Ident-App
        let login = epa.as_ref().and_then(|e| e.login.clone());
        app.set_relogin(
            epa.as_ref()
                .is_some_and(|e| e.phase == EpaPhase::ReloginRequired),
        );
        app.set_relogin_reason(ss(match &epa {
            Some(e) if e.phase == EpaPhase::ReloginRequired => t(
                "Dieser PC ist jetzt freigeschaltet. Melden Sie sich zum Abschluss noch einmal mit der Ident-App an.",
                "This PC is now activated. To finish, log in once more with the ident app.",
            )
            .to_owned(),
            Some(EpaState {
                login_required_reason: Some(r),
                ..
            }) => match lang {
                Lang::De => format!("Die ePA-Sitzung wurde beendet (Grund: {r}). Bitte melden Sie sich erneut an."),
                Lang::En => format!("The ePA session was ended (reason: {r}). Please log in again."),
            },
            _ => String::new(),
        }));
        match &login {
            Some(l) => {
                if self.qr_for != l.authorization_url {
                    self.qr = view::qr_image(&l.qr_png).unwrap_or_default();
                    self.qr_for = l.authorization_url.clone();
                }
                app.set_qr(self.qr.clone());
                app.set_login_url(ss(&l.authorization_url));
                let expired = l.expires_unix != 0 && l.expires_unix <= now;
                app.set_ident_status(ss(if expired {
                    t(
                        "Der QR-Code ist abgelaufen. Fordern Sie einen neuen an.",
                        "The QR code has expired. Request a new one.",
                    )
                } else if l.completes_without_browser {
                    t(
                        "Warte auf Ihre Bestätigung in der Ident-App …",
                        "Waiting for your confirmation in the ident app …",
                    )
                } else {
                    t(
                        "Warte auf die Anmeldung … Nach der Bestätigung öffnet Ihr Browser epa-desktop wieder.",
                        "Waiting for the login … After you confirm, your browser opens epa-desktop again.",
                    )
                }));
                app.set_login_expires(ss(if l.expires_unix > now {
                    match lang {
                        Lang::De => format!(
                            "QR-Code gültig noch {} Min.",
                            format::mm_ss(l.expires_unix - now)
                        ),
                        Lang::En => format!(
                            "QR code valid for {} min",
                            format::mm_ss(l.expires_unix - now)
                        ),
                    }
                } else {
                    String::new()
                }));
            }
            None => {
                app.set_login_url(ss(""));
                app.set_ident_status(ss(t(
                    "Anmeldung wird vorbereitet …",
                    "Preparing the login …",
                )));
                app.set_login_expires(ss(""));
            }
        }

        // Gerät freischalten
        let device = epa.as_ref().and_then(|e| e.device.clone());
        let code: String = app
            .get_device_code()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        app.set_code_complete(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()));
        app.set_device_name(ss(device
            .as_ref()
            .map(|d| d.device_name.as_str())
            .unwrap_or_default()));
        app.set_masked_addresses(ss(device
            .as_ref()
            .map(|d| d.masked_addresses.join(", "))
            .unwrap_or_default()));
        app.set_tries_left(ss(match device.as_ref().map(|d| d.tries_left) {
            Some(0) | None => String::new(),
            Some(1) => t("Noch 1 Versuch", "1 try left").to_owned(),
            Some(n) => match lang {
                Lang::De => format!("Noch {n} Versuche"),
                Lang::En => format!("{n} tries left"),
            },
        }));
        app.set_code_expires(ss(match device.as_ref().map(|d| d.code_valid_until_unix) {
            Some(0) | None => String::new(),
            Some(until) if until > now => match lang {
                Lang::De => format!("Code gültig noch {} Min.", format::mm_ss(until - now)),
                Lang::En => format!("Code valid for {} min", format::mm_ss(until - now)),
            },
            Some(_) => t(
                "Der Code ist abgelaufen. Melden Sie sich neu an, um einen neuen Code zu erhalten.",
                "The code has expired. Log in again to get a new code.",
            )
            .to_owned(),
        }));
        app.set_lockout(ss(match self.lockout_until {
            Some(until) if until > now => match lang {
                Lang::De => format!(
                    "Zu viele Fehlversuche. Eine neue Freischaltung ist ab {} (UTC) möglich – in {} Min.",
                    format::date_time(until),
                    format::mm_ss(until - now)
                ),
                Lang::En => format!(
                    "Too many failed attempts. A new activation is possible from {} (UTC) – in {} min.",
                    format::date_time(until),
                    format::mm_ss(until - now)
                ),
            },
            _ => String::new(),
        }));

        // Dokumente
        app.set_sort_column(self.sort_index());
        app.set_sort_desc(self.query.descending);
        app.set_selected_count(i32::try_from(self.selected.len()).unwrap_or(i32::MAX));
        app.set_all_selected(self.all_selected());
        app.set_filter_active(self.filter_active());
        let n = self.docs.documents.len();
        let mut status = match (lang, n) {
            (Lang::De, 1) => "1 Dokument".to_owned(),
            (Lang::De, n) => format!("{n} Dokumente"),
            (Lang::En, 1) => "1 document".to_owned(),
            (Lang::En, n) => format!("{n} documents"),
        };
        if !self.selected.is_empty() {
            status.push_str(&match lang {
                Lang::De => format!(", {} ausgewählt", self.selected.len()),
                Lang::En => format!(", {} selected", self.selected.len()),
            });
        }
        if let Some(s) = self.docs.synced_unix {
            status.push_str(&match lang {
                Lang::De => format!(" · Stand {} (UTC)", format::date_time(s)),
                Lang::En => format!(" · as of {} (UTC)", format::date_time(s)),
            });
        }
        if self.docs.offline {
            status.push_str(t(
                " · offline: gespeicherte Liste",
                " · offline: stored list",
            ));
        }
        app.set_docs_status(ss(status));

        // file dialog and confirmation
        app.set_file_dialog(match &self.file {
            None => 0,
            Some(FileAction::SaveDoc { .. }) => 1,
            Some(FileAction::Export { .. }) => 2,
            Some(FileAction::Add) => 3,
        });
        app.set_file_dialog_title(ss(match &self.file {
            Some(FileAction::SaveDoc { .. }) => t("Dokument speichern", "Save document"),
            Some(FileAction::Export { .. }) => t("Als PDF speichern", "Save as PDF"),
            Some(FileAction::Add) => t("Dokument hinzufügen", "Add document"),
            None => "",
        }));
        app.set_file_error(ss(&self.file_error));
        app.set_file_from_system(self.file_from_system);
        app.set_confirm_open(self.confirm_delete.is_some());
        let title = self
            .confirm_delete
            .as_ref()
            .and_then(|id| self.docs.documents.iter().find(|d| &d.id == id))
            .map(|d| d.title.clone())
            .unwrap_or_default();
        app.set_confirm_text(ss(match lang {
            Lang::De => format!(
                "„{title}“ endgültig aus Ihrer ePA löschen? Das lässt sich nicht rückgängig machen; auch Ihre Praxen sehen das Dokument dann nicht mehr."
            ),
            Lang::En => format!(
                "Delete \"{title}\" from your ePA for good? This cannot be undone; your practices will no longer see the document either."
            ),
        }));
    }
}

/// The daemon's device status in words; unknown ones as they come.
fn device_status(status: &str, lang: Lang) -> String {
    match status.to_ascii_lowercase().as_str() {
        "confirmed" | "verified" | "active" => lang.pick("freigeschaltet", "activated").to_owned(),
        "pending" | "unverified" => lang
            .pick("wartet auf Bestätigung", "awaiting confirmation")
            .to_owned(),
        "blocked" | "locked" => lang.pick("gesperrt", "blocked").to_owned(),
        _ => status.to_owned(),
    }
}

/// Writes a new file (never overwrites).
fn write_new(path: &Path, bytes: &[u8], lang: Lang) -> Result<(), Failure> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Failure::Exists(path.to_owned())
            } else {
                Failure::Local(match lang {
                    Lang::De => format!("{} lässt sich nicht schreiben: {e}", path.display()),
                    Lang::En => format!("Cannot write {}: {e}", path.display()),
                })
            }
        })?;
    f.write_all(bytes).map_err(|e| {
        Failure::Local(match lang {
            Lang::De => format!("{} lässt sich nicht schreiben: {e}", path.display()),
            Lang::En => format!("Cannot write {}: {e}", path.display()),
        })
    })
}

/// Writes a document for the system viewer into our private directory (0700, file 0600).
fn write_private(dir: &Path, name: &str, bytes: &[u8], lang: Lang) -> Result<PathBuf, Failure> {
    let fail = |e: std::io::Error| {
        Failure::Local(match lang {
            Lang::De => format!("Das Dokument lässt sich nicht zwischenspeichern: {e}"),
            Lang::En => format!("Cannot store the document for viewing: {e}"),
        })
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(fail)?;
    let path = dir.join(name);
    // A newer copy replaces an older one of the same name.
    let _ = std::fs::remove_file(&path);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(&path).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    Ok(path)
}

/// Connects every callback of the window to the controller.
fn wire(window: &MainWindow, ctrl: &Rc<RefCell<Controller>>) {
    let app = window.global::<App>();
    macro_rules! on {
        ($setter:ident, |$c:ident $(, $arg:ident)*| $body:expr) => {{
            let weak = Rc::downgrade(ctrl);
            app.$setter(move |$($arg),*| {
                // A callback fired while the controller is at work (a property it set) is
                // ignored rather than allowed to panic on the double borrow.
                if let Some(rc) = weak.upgrade()
                    && let Ok(mut guard) = rc.try_borrow_mut()
                {
                    let $c = &mut *guard;
                    $body;
                    $c.render();
                }
            });
        }};
    }
    on!(on_login, |c| c.login());
    on!(on_show_create_user, |c| c.go(Screen::CreateUser));
    on!(on_back_to_login, |c| c.go(Screen::Login));
    on!(on_show_legal, |c, id| c.show_legal(&id));
    on!(on_show_no_epa, |c| {
        c.info_msg(
        1,
        c.t(
            "Noch keine ePA? Die ePA richtet Ihre Krankenkasse ein. Für die Nutzung registrieren Sie sich in der ePA-App Ihrer Krankenkasse und erhalten dort Ihre GesundheitsID. Danach können Sie sich hier anmelden.",
            "No ePA yet? Your insurer sets up the ePA. Register in your insurer's ePA app to get your GesundheitsID; then you can log in here.",
        )
    )
    });
    on!(on_new_edited, |c| c.edited());
    on!(on_create_user, |c| c.create_user());
    on!(on_accept_terms, |c| {
        let job = c.backend.accept_terms(c.terms_version.clone());
        let busy = c.t("Wird gespeichert …", "Saving …").to_owned();
        c.spawn(
            Some(busy),
            Box::pin(async move { Msg::TermsAccepted(job.await) }),
        );
    });
    on!(on_decline_terms, |c| c.lock());
    on!(on_legal_back, |c| c.legal_back());
    on!(on_open_epa, |c| c.open_epa());
    on!(on_open_representation, |c| c.go(Screen::Representation));
    on!(on_open_knowledge, |c| c.go(Screen::Knowledge));
    on!(on_open_profile, |c| c.open_profile());
    on!(on_go_overview, |c| c.go(Screen::Overview));
    on!(on_lock, |c| c.lock());
    on!(on_epa_logout, |c| c.epa_logout());
    on!(on_logout_epa, |c| c.epa_logout());
    on!(on_set_english, |c, en| c.choose_language(if en {
        Lang::En
    } else {
        Lang::De
    }));
    on!(on_kvnr_edited, |c| c.edited());
    on!(on_connect_epa, |c| c.connect_epa());
    on!(on_open_browser, |c| c.open_browser());
    on!(on_restart_login, |c| c.start_login());
    on!(on_code_edited, |c| c.edited());
    on!(on_confirm_code, |c| c.confirm_code());
    on!(on_search_edited, |c| {
        let text = c
            .window
            .upgrade()
            .map(|w| w.global::<App>().get_search().to_string())
            .unwrap_or_default();
        c.search_edited(&text);
    });
    on!(on_sort_by, |c, col| c.sort_by(col));
    on!(on_toggle_doc, |c, i| c.toggle_doc(i));
    on!(on_toggle_all, |c| c.toggle_all());
    on!(on_refresh_docs, |c| c.refresh_docs());
    on!(on_apply_filter, |c| c.apply_filter());
    on!(on_reset_filter, |c| c.reset_filter());
    on!(on_export_pdf, |c| c.export_pdf());
    on!(on_add_document, |c| c.add_document());
    on!(on_open_doc, |c, i| c.open_doc(i));
    on!(on_save_doc, |c, i| c.save_doc(i));
    on!(on_toggle_hide, |c, i| c.toggle_hide(i));
    on!(on_delete_doc, |c, i| c.delete_doc(i));
    on!(on_file_ok, |c| c.file_ok());
    on!(on_file_cancel, |c| c.file_cancel());
    on!(on_confirm_yes, |c| c.confirm_yes());
    on!(on_confirm_no, |c| c.confirm_no());
    on!(on_dismiss_message, |c| c.dismiss_message());
}
