//! View types: what clients render and what `epa --json` prints. Field names are a stable
//! contract (pinned by tests).

use serde::{Deserialize, Serialize};

use crate::{ClientError, pb};

/// `Daemon.GetInfo` as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub daemon_version: String,
    pub protocol_version: u32,
    pub environment: String,
    pub uptime_ms: u64,
    pub pid: u32,
    /// What the environment is; for the demo, the ident app, mailbox and test persons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_info: Option<EnvironmentInfo>,
}

impl From<pb::GetInfoResponse> for DaemonInfo {
    fn from(r: pb::GetInfoResponse) -> Self {
        Self {
            daemon_version: r.daemon_version,
            protocol_version: r.protocol_version,
            environment: r.environment,
            uptime_ms: r.uptime_ms,
            pid: r.pid,
            environment_info: r.environment_info.map(EnvironmentInfo::from),
        }
    }
}

/// The client's own identity, printed next to the daemon's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub version: String,
    pub protocol_version: u32,
}

impl ClientInfo {
    pub fn current() -> Self {
        Self {
            version: crate::CLIENT_VERSION.to_owned(),
            protocol_version: crate::PROTOCOL_VERSION,
        }
    }
}

/// The daemon's observable state, as carried by a snapshot and kept current by deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonState {
    pub environment: String,
    pub connected_clients: u32,
    pub shutting_down: bool,
    pub users: Vec<LocalUser>,
    /// Each local user's ePA phase (`LOGGED_IN`, …); no KVNR, no names (see `Epa.GetState`).
    #[serde(default)]
    pub epa_phases: std::collections::BTreeMap<String, String>,
}

/// A local user as every client may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUser {
    pub username: String,
    pub unlocked: bool,
}

impl DaemonState {
    pub fn apply(&mut self, change: &Change) {
        let set_unlocked = |users: &mut Vec<LocalUser>, name: &str, unlocked: bool| {
            for u in users.iter_mut().filter(|u| u.username == name) {
                u.unlocked = unlocked;
            }
        };
        match change {
            Change::ClientsChanged { connected_clients } => {
                self.connected_clients = *connected_clients;
            }
            Change::ShuttingDown => self.shutting_down = true,
            Change::UserUnlocked { username } => set_unlocked(&mut self.users, username, true),
            Change::UserLocked { username, .. } => set_unlocked(&mut self.users, username, false),
            Change::UsersChanged { users } => self.users.clone_from(users),
            Change::EpaPhaseChanged {
                username, phase, ..
            } => {
                self.epa_phases.insert(username.clone(), phase.clone());
            }
        }
    }
}

/// Why a vault was locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockCause {
    /// Asked for (`Lock`).
    Lock,
    /// The idle timeout passed.
    Idle,
    /// The password changed; other sessions must unlock again.
    PasswordChanged,
    /// The user was deleted.
    Deleted,
}

impl LockCause {
    pub fn as_str(self) -> &'static str {
        match self {
            LockCause::Lock => "lock",
            LockCause::Idle => "idle",
            LockCause::PasswordChanged => "password_changed",
            LockCause::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Lock, Self::Idle, Self::PasswordChanged, Self::Deleted]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    ClientsChanged {
        connected_clients: u32,
    },
    ShuttingDown,
    UserUnlocked {
        username: String,
    },
    UserLocked {
        username: String,
        cause: LockCause,
    },
    UsersChanged {
        users: Vec<LocalUser>,
    },
    /// A local user's ePA phase changed; `login_required_reason` is set when the session was
    /// lost and the user has to log in again.
    EpaPhaseChanged {
        username: String,
        phase: String,
        login_required_reason: Option<String>,
    },
}

/// One message of `Events.Watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Full state including every change up to and including `seq`.
    Snapshot { seq: u64, state: DaemonState },
    /// The change numbered `seq`; applies to a state at `seq - 1`.
    Delta { seq: u64, change: Change },
}

impl Event {
    pub fn seq(&self) -> u64 {
        match self {
            Event::Snapshot { seq, .. } | Event::Delta { seq, .. } => *seq,
        }
    }
}

impl From<pb::LocalUser> for LocalUser {
    fn from(u: pb::LocalUser) -> Self {
        Self {
            username: u.username,
            unlocked: u.unlocked,
        }
    }
}

impl From<&LocalUser> for pb::LocalUser {
    fn from(u: &LocalUser) -> Self {
        Self {
            username: u.username.clone(),
            unlocked: u.unlocked,
        }
    }
}

impl From<pb::Snapshot> for DaemonState {
    fn from(s: pb::Snapshot) -> Self {
        Self {
            environment: s.environment,
            connected_clients: s.connected_clients,
            shutting_down: s.shutting_down,
            users: s.users.into_iter().map(LocalUser::from).collect(),
            epa_phases: s.epa_phases.into_iter().collect(),
        }
    }
}

impl From<&DaemonState> for pb::Snapshot {
    fn from(s: &DaemonState) -> Self {
        Self {
            environment: s.environment.clone(),
            connected_clients: s.connected_clients,
            shutting_down: s.shutting_down,
            users: s.users.iter().map(pb::LocalUser::from).collect(),
            epa_phases: s
                .epa_phases
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

impl From<&Change> for pb::Delta {
    fn from(c: &Change) -> Self {
        use pb::delta::Change as P;
        let change = match c {
            Change::ClientsChanged { connected_clients } => P::ClientsChanged(pb::ClientsChanged {
                connected_clients: *connected_clients,
            }),
            Change::ShuttingDown => P::ShuttingDown(pb::ShuttingDown {}),
            Change::UserUnlocked { username } => P::UserUnlocked(pb::UserUnlocked {
                username: username.clone(),
            }),
            Change::UserLocked { username, cause } => P::UserLocked(pb::UserLocked {
                username: username.clone(),
                cause: cause.as_str().to_owned(),
            }),
            Change::UsersChanged { users } => P::UsersChanged(pb::UsersChanged {
                users: users.iter().map(pb::LocalUser::from).collect(),
            }),
            Change::EpaPhaseChanged {
                username,
                phase,
                login_required_reason,
            } => P::EpaPhaseChanged(pb::EpaPhaseChanged {
                username: username.clone(),
                phase: phase.clone(),
                login_required_reason: login_required_reason.clone().unwrap_or_default(),
            }),
        };
        Self {
            change: Some(change),
        }
    }
}

impl TryFrom<pb::WatchEvent> for Event {
    type Error = ClientError;

    fn try_from(e: pb::WatchEvent) -> Result<Self, Self::Error> {
        use pb::delta::Change as P;
        match e.kind {
            Some(pb::watch_event::Kind::Snapshot(s)) => Ok(Event::Snapshot {
                seq: e.seq,
                state: s.into(),
            }),
            Some(pb::watch_event::Kind::Delta(d)) => {
                let change = match d.change {
                    Some(P::ClientsChanged(c)) => Change::ClientsChanged {
                        connected_clients: c.connected_clients,
                    },
                    Some(P::ShuttingDown(_)) => Change::ShuttingDown,
                    Some(P::UserUnlocked(u)) => Change::UserUnlocked {
                        username: u.username,
                    },
                    Some(P::UserLocked(u)) => Change::UserLocked {
                        username: u.username,
                        cause: LockCause::parse(&u.cause).ok_or_else(|| {
                            ClientError::Malformed(format!("unknown lock cause {:?}", u.cause))
                        })?,
                    },
                    Some(P::UsersChanged(u)) => Change::UsersChanged {
                        users: u.users.into_iter().map(LocalUser::from).collect(),
                    },
                    Some(P::EpaPhaseChanged(c)) => Change::EpaPhaseChanged {
                        username: c.username,
                        phase: c.phase,
                        login_required_reason: Some(c.login_required_reason)
                            .filter(|r| !r.is_empty()),
                    },
                    None => return Err(ClientError::Malformed("delta without a change".into())),
                };
                Ok(Event::Delta { seq: e.seq, change })
            }
            None => Err(ClientError::Malformed("watch event without a kind".into())),
        }
    }
}

impl From<&Event> for pb::WatchEvent {
    fn from(e: &Event) -> Self {
        match e {
            Event::Snapshot { seq, state } => Self {
                seq: *seq,
                kind: Some(pb::watch_event::Kind::Snapshot(state.into())),
            },
            Event::Delta { seq, change } => Self {
                seq: *seq,
                kind: Some(pb::watch_event::Kind::Delta(change.into())),
            },
        }
    }
}

/// A local user as listed by `ListUsers` (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub username: String,
    pub created_unix: u64,
    /// Version of the terms of use accepted, if any.
    pub terms_accepted_version: Option<String>,
    pub unlocked: bool,
}

impl From<pb::UserSummary> for UserSummary {
    fn from(u: pb::UserSummary) -> Self {
        Self {
            username: u.username,
            created_unix: u.created_unix,
            terms_accepted_version: Some(u.terms_accepted_version).filter(|v| !v.is_empty()),
            unlocked: u.unlocked,
        }
    }
}

/// Whether the user still has to accept the current terms of use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermsState {
    pub accepted_version: Option<String>,
    pub current_version: String,
    pub acceptance_required: bool,
}

impl From<pb::TermsState> for TermsState {
    fn from(t: pb::TermsState) -> Self {
        Self {
            accepted_version: Some(t.accepted_version).filter(|v| !v.is_empty()),
            current_version: t.current_version,
            acceptance_required: t.acceptance_required,
        }
    }
}

/// What `Unlock` tells besides the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlocked {
    pub user: UserSummary,
    pub terms: TermsState,
    pub idle_timeout_s: u64,
}

/// The local users, plus how many directory entries could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserSummary>,
    pub damaged_entries: u32,
}

/// One of the legal texts shipped with the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalText {
    pub id: String,
    pub title: String,
    pub version: String,
    pub body: String,
}

impl From<pb::LegalText> for LegalText {
    fn from(t: pb::LegalText) -> Self {
        Self {
            id: t.id,
            title: t.title,
            version: t.version,
            body: t.body,
        }
    }
}

/// `Daemon.GetInfo`'s description of the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentInfo {
    /// `demo` or `custom`.
    pub kind: String,
    pub note: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ident_app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub demo_insurants: Vec<DemoInsurant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_outbox: Option<String>,
}

/// A test person of the demo environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoInsurant {
    pub kvnr: String,
    pub insurer: String,
    pub gesundheitsid_code: String,
    pub email: String,
    pub has_record: bool,
}

fn non_empty(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

impl From<pb::EnvironmentInfo> for EnvironmentInfo {
    fn from(e: pb::EnvironmentInfo) -> Self {
        Self {
            kind: e.kind,
            note: e.note,
            ident_app: non_empty(e.ident_app),
            mail_api: non_empty(e.mail_api),
            control_api: non_empty(e.control_api),
            ca_cert: non_empty(e.ca_cert),
            demo_insurants: e
                .demo_insurants
                .into_iter()
                .map(|i| DemoInsurant {
                    kvnr: i.kvnr,
                    insurer: i.insurer,
                    gesundheitsid_code: i.gesundheitsid_code,
                    email: i.email,
                    has_record: i.has_record,
                })
                .collect(),
            problem: non_empty(e.problem),
            mail_outbox: non_empty(e.mail_outbox),
        }
    }
}

impl From<&EnvironmentInfo> for pb::EnvironmentInfo {
    fn from(e: &EnvironmentInfo) -> Self {
        Self {
            kind: e.kind.clone(),
            note: e.note.clone(),
            ident_app: e.ident_app.clone().unwrap_or_default(),
            mail_api: e.mail_api.clone().unwrap_or_default(),
            control_api: e.control_api.clone().unwrap_or_default(),
            ca_cert: e.ca_cert.clone().unwrap_or_default(),
            demo_insurants: e
                .demo_insurants
                .iter()
                .map(|i| pb::DemoInsurant {
                    kvnr: i.kvnr.clone(),
                    insurer: i.insurer.clone(),
                    gesundheitsid_code: i.gesundheitsid_code.clone(),
                    email: i.email.clone(),
                    has_record: i.has_record,
                })
                .collect(),
            problem: e.problem.clone().unwrap_or_default(),
            mail_outbox: e.mail_outbox.clone().unwrap_or_default(),
        }
    }
}

/// Where a local user's ePA journey stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EpaPhase {
    NoProfile,
    LoggedOut,
    AwaitingIdentApp,
    DeviceCodeSent,
    ReloginRequired,
    LoggedIn,
}

impl EpaPhase {
    pub const ALL: [EpaPhase; 6] = [
        Self::NoProfile,
        Self::LoggedOut,
        Self::AwaitingIdentApp,
        Self::DeviceCodeSent,
        Self::ReloginRequired,
        Self::LoggedIn,
    ];

    /// The name used on `Events.Watch` and in `--json` (`LOGGED_IN`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoProfile => "NO_PROFILE",
            Self::LoggedOut => "LOGGED_OUT",
            Self::AwaitingIdentApp => "AWAITING_IDENT_APP",
            Self::DeviceCodeSent => "DEVICE_CODE_SENT",
            Self::ReloginRequired => "RELOGIN_REQUIRED",
            Self::LoggedIn => "LOGGED_IN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    fn from_pb(p: i32) -> Option<Self> {
        use pb::EpaPhase as P;
        Some(match P::try_from(p).ok()? {
            P::NoProfile => Self::NoProfile,
            P::LoggedOut => Self::LoggedOut,
            P::AwaitingIdentApp => Self::AwaitingIdentApp,
            P::DeviceCodeSent => Self::DeviceCodeSent,
            P::ReloginRequired => Self::ReloginRequired,
            P::LoggedIn => Self::LoggedIn,
            P::Unspecified => return None,
        })
    }

    pub fn to_pb(self) -> pb::EpaPhase {
        use pb::EpaPhase as P;
        match self {
            Self::NoProfile => P::NoProfile,
            Self::LoggedOut => P::LoggedOut,
            Self::AwaitingIdentApp => P::AwaitingIdentApp,
            Self::DeviceCodeSent => P::DeviceCodeSent,
            Self::ReloginRequired => P::ReloginRequired,
            Self::LoggedIn => P::LoggedIn,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordProfile {
    pub insurer: String,
    pub kvnr: String,
}

/// A login waiting for the ident app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub authorization_url: String,
    /// PNG of the QR code (for the GUI; not in `--json`).
    #[serde(skip)]
    pub qr_png: Vec<u8>,
    /// The QR code for terminals.
    pub qr_text: String,
    pub expires_unix: u64,
    pub completes_without_browser: bool,
}

/// This PC's registration, waiting for the e-mailed code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDevice {
    pub device_name: String,
    pub masked_addresses: Vec<String>,
    pub code_valid_until_unix: u64,
    pub tries_left: u32,
}

/// `Epa.GetState` and the answer of every journey call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpaState {
    pub phase: EpaPhase,
    pub profile: Option<RecordProfile>,
    pub aktensystem: Option<String>,
    pub login: Option<PendingLogin>,
    pub device: Option<PendingDevice>,
    pub display_name: Option<String>,
    pub login_required_reason: Option<String>,
    pub relogin_skipped: bool,
}

impl TryFrom<pb::EpaState> for EpaState {
    type Error = ClientError;

    fn try_from(s: pb::EpaState) -> Result<Self, ClientError> {
        Ok(Self {
            phase: EpaPhase::from_pb(s.phase)
                .ok_or_else(|| ClientError::Malformed(format!("unknown ePA phase {}", s.phase)))?,
            profile: s.profile.map(|p| RecordProfile {
                insurer: p.insurer,
                kvnr: p.kvnr,
            }),
            aktensystem: non_empty(s.aktensystem),
            login: s.login.map(|l| PendingLogin {
                authorization_url: l.authorization_url,
                qr_png: l.qr_png,
                qr_text: l.qr_text,
                expires_unix: l.expires_unix,
                completes_without_browser: l.completes_without_browser,
            }),
            device: s.device.map(|d| PendingDevice {
                device_name: d.device_name,
                masked_addresses: d.masked_addresses,
                code_valid_until_unix: d.code_valid_until_unix,
                tries_left: d.tries_left,
            }),
            display_name: non_empty(s.display_name),
            login_required_reason: non_empty(s.login_required_reason),
            relogin_skipped: s.relogin_skipped,
        })
    }
}

impl From<&EpaState> for pb::EpaState {
    fn from(s: &EpaState) -> Self {
        Self {
            phase: s.phase.to_pb().into(),
            profile: s.profile.as_ref().map(|p| pb::RecordProfile {
                insurer: p.insurer.clone(),
                kvnr: p.kvnr.clone(),
            }),
            aktensystem: s.aktensystem.clone().unwrap_or_default(),
            login: s.login.as_ref().map(|l| pb::PendingLogin {
                authorization_url: l.authorization_url.clone(),
                qr_png: l.qr_png.clone(),
                qr_text: l.qr_text.clone(),
                expires_unix: l.expires_unix,
                completes_without_browser: l.completes_without_browser,
            }),
            device: s.device.as_ref().map(|d| pb::PendingDevice {
                device_name: d.device_name.clone(),
                masked_addresses: d.masked_addresses.clone(),
                code_valid_until_unix: d.code_valid_until_unix,
                tries_left: d.tries_left,
            }),
            display_name: s.display_name.clone().unwrap_or_default(),
            login_required_reason: s.login_required_reason.clone().unwrap_or_default(),
            relogin_skipped: s.relogin_skipped,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insurer {
    pub name: String,
    pub available: bool,
}

/// A device registration of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub identifier: String,
    pub display_name: String,
    /// `pending` | `confirmed`
    pub status: String,
    pub created_unix: u64,
    pub last_used_unix: Option<u64>,
    pub this_device: bool,
}

impl From<pb::Device> for Device {
    fn from(d: pb::Device) -> Self {
        Self {
            identifier: d.identifier,
            display_name: d.display_name,
            status: d.status,
            created_unix: d.created_unix,
            last_used_unix: Some(d.last_used_unix).filter(|t| *t != 0),
            this_device: d.this_device,
        }
    }
}

impl From<&Device> for pb::Device {
    fn from(d: &Device) -> Self {
        Self {
            identifier: d.identifier.clone(),
            display_name: d.display_name.clone(),
            status: d.status.clone(),
            created_unix: d.created_unix,
            last_used_unix: d.last_used_unix.unwrap_or(0),
            this_device: d.this_device,
        }
    }
}

// ---- documents (service Documents) ----

/// A column of the documents table ("Typ, Titel, Autor, Zugriffe, Erstelldatum").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortColumn {
    #[default]
    Created,
    Title,
    Author,
    Type,
    Accesses,
}

impl SortColumn {
    pub const ALL: [SortColumn; 5] = [
        Self::Created,
        Self::Title,
        Self::Author,
        Self::Type,
        Self::Accesses,
    ];

    /// The name used by `--sort` and `--json` (`created`, `title`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Title => "title",
            Self::Author => "author",
            Self::Type => "type",
            Self::Accesses => "accesses",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Unknown numbers (a newer client) fall back to the default column.
    pub fn from_pb(v: i32) -> Self {
        use pb::DocumentSortColumn as P;
        match P::try_from(v).unwrap_or(P::Unspecified) {
            P::Unspecified | P::Created => Self::Created,
            P::Title => Self::Title,
            P::Author => Self::Author,
            P::Type => Self::Type,
            P::Accesses => Self::Accesses,
        }
    }

    pub fn to_pb(self) -> pb::DocumentSortColumn {
        use pb::DocumentSortColumn as P;
        match self {
            Self::Created => P::Created,
            Self::Title => P::Title,
            Self::Author => P::Author,
            Self::Type => P::Type,
            Self::Accesses => P::Accesses,
        }
    }
}

/// What `Documents.List` is asked: search, filters, sort, page. The default is the table's
/// initial view: everything, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentQuery {
    /// Case-insensitive substring of title or author.
    pub query: String,
    /// Case-insensitive substring of the author only.
    pub author: String,
    pub mime_types: Vec<String>,
    /// `patient` (uploaded by the insurant) or `reports` (by practices, hospitals, …).
    pub categories: Vec<String>,
    pub class_codes: Vec<String>,
    pub created_from_unix: Option<u64>,
    pub created_to_unix: Option<u64>,
    pub sort: SortColumn,
    pub descending: bool,
    pub offset: u32,
    /// `None` = all.
    pub limit: Option<u32>,
    /// Ask the Aktensystem before answering (else the cache answers; it refreshes by itself).
    pub refresh: bool,
}

impl Default for DocumentQuery {
    fn default() -> Self {
        Self {
            query: String::new(),
            author: String::new(),
            mime_types: Vec::new(),
            categories: Vec::new(),
            class_codes: Vec::new(),
            created_from_unix: None,
            created_to_unix: None,
            sort: SortColumn::Created,
            descending: true,
            offset: 0,
            limit: None,
            refresh: false,
        }
    }
}

impl From<&DocumentQuery> for pb::ListDocumentsRequest {
    fn from(q: &DocumentQuery) -> Self {
        Self {
            query: q.query.clone(),
            author: q.author.clone(),
            mime_types: q.mime_types.clone(),
            categories: q.categories.clone(),
            class_codes: q.class_codes.clone(),
            created_from_unix: q.created_from_unix.unwrap_or(0),
            created_to_unix: q.created_to_unix.unwrap_or(0),
            sort: q.sort.to_pb().into(),
            descending: q.descending,
            offset: q.offset,
            limit: q.limit.unwrap_or(0),
            refresh: q.refresh,
        }
    }
}

impl From<pb::ListDocumentsRequest> for DocumentQuery {
    fn from(r: pb::ListDocumentsRequest) -> Self {
        Self {
            query: r.query,
            author: r.author,
            mime_types: r.mime_types,
            categories: r.categories,
            class_codes: r.class_codes,
            created_from_unix: Some(r.created_from_unix).filter(|t| *t != 0),
            created_to_unix: Some(r.created_to_unix).filter(|t| *t != 0),
            sort: SortColumn::from_pb(r.sort),
            descending: r.descending,
            offset: r.offset,
            limit: Some(r.limit).filter(|l| *l != 0),
            refresh: r.refresh,
        }
    }
}

/// One row of the documents table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentSummary {
    /// The XDS uniqueId; the id for get/delete/hide.
    pub id: String,
    pub title: String,
    /// The author's name; for the insurant's own uploads see `by_me` ("von mir").
    pub author: String,
    pub by_me: bool,
    pub mime_type: String,
    pub category: String,
    pub class_code: String,
    pub class_display: String,
    pub created_unix: u64,
    pub size: u64,
    /// Reads by others (practices) from the audit log ("Zugriffe").
    pub accesses: u32,
    pub hidden: bool,
    pub comment: String,
    /// The content is on this PC (openable offline).
    pub cached: bool,
}

impl From<pb::DocumentSummary> for DocumentSummary {
    fn from(d: pb::DocumentSummary) -> Self {
        Self {
            id: d.id,
            title: d.title,
            author: d.author,
            by_me: d.by_me,
            mime_type: d.mime_type,
            category: d.category,
            class_code: d.class_code,
            class_display: d.class_display,
            created_unix: d.created_unix,
            size: d.size,
            accesses: d.accesses,
            hidden: d.hidden,
            comment: d.comment,
            cached: d.cached,
        }
    }
}

impl From<&DocumentSummary> for pb::DocumentSummary {
    fn from(d: &DocumentSummary) -> Self {
        Self {
            id: d.id.clone(),
            title: d.title.clone(),
            author: d.author.clone(),
            by_me: d.by_me,
            mime_type: d.mime_type.clone(),
            category: d.category.clone(),
            class_code: d.class_code.clone(),
            class_display: d.class_display.clone(),
            created_unix: d.created_unix,
            size: d.size,
            accesses: d.accesses,
            hidden: d.hidden,
            comment: d.comment.clone(),
            cached: d.cached,
        }
    }
}

/// The answer of `Documents.List`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentList {
    /// The requested page.
    pub documents: Vec<DocumentSummary>,
    /// Matches before paging.
    pub total_matching: u32,
    /// When the cache last matched the Aktensystem; `None` = never.
    pub synced_unix: Option<u64>,
    /// The Aktensystem could not be reached; this is the cache's view.
    pub offline: bool,
}

impl From<pb::ListDocumentsResponse> for DocumentList {
    fn from(r: pb::ListDocumentsResponse) -> Self {
        Self {
            documents: r.documents.into_iter().map(DocumentSummary::from).collect(),
            total_matching: r.total_matching,
            synced_unix: Some(r.synced_unix).filter(|t| *t != 0),
            offline: r.offline,
        }
    }
}

/// What `Documents.Add` needs besides the content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDocument {
    pub title: String,
    pub comment: String,
    /// `None` = now.
    pub created_unix: Option<u64>,
    /// The original file name, only as a hint (never used as a path by the daemon).
    pub file_name: String,
}

/// The answer of `Documents.Add`: the upload is queued durably.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedDocument {
    /// The upload's id, also the document's id once uploaded.
    pub upload_id: String,
    pub detected_mime_type: String,
    /// E.g. "PDF ist nicht PDF/A"; the upload goes ahead anyway.
    pub hints: Vec<String>,
    /// Set when the upload already completed within the call.
    pub document: Option<DocumentSummary>,
}

impl From<pb::AddDocumentResponse> for AddedDocument {
    fn from(r: pb::AddDocumentResponse) -> Self {
        Self {
            upload_id: r.upload_id,
            detected_mime_type: r.detected_mime_type,
            hints: r.hints,
            document: r.document.map(DocumentSummary::from),
        }
    }
}

/// Where a queued upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    Queued,
    Uploading,
    Failed,
    Done,
}

impl UploadStatus {
    pub const ALL: [UploadStatus; 4] = [Self::Queued, Self::Uploading, Self::Failed, Self::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Uploading => "uploading",
            Self::Failed => "failed",
            Self::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One entry of the upload queue (`Documents.ListUploads`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub upload_id: String,
    pub title: String,
    pub status: UploadStatus,
    /// A stable reason (e.g. `DOCUMENT_REJECTED`) when `status` is `failed`, or the last
    /// retryable problem while queued.
    pub error_reason: Option<String>,
    pub size: u64,
}

impl TryFrom<pb::Upload> for Upload {
    type Error = ClientError;

    fn try_from(u: pb::Upload) -> Result<Self, ClientError> {
        Ok(Self {
            status: UploadStatus::parse(&u.status).ok_or_else(|| {
                ClientError::Malformed(format!("unknown upload status {:?}", u.status))
            })?,
            upload_id: u.upload_id,
            title: u.title,
            error_reason: non_empty(u.error_reason),
            size: u.size,
        })
    }
}

impl From<&Upload> for pb::Upload {
    fn from(u: &Upload) -> Self {
        Self {
            upload_id: u.upload_id.clone(),
            title: u.title.clone(),
            status: u.status.as_str().to_owned(),
            error_reason: u.error_reason.clone().unwrap_or_default(),
            size: u.size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_protobuf() {
        let events = [
            Event::Snapshot {
                seq: 7,
                state: DaemonState {
                    environment: "demo".into(),
                    connected_clients: 2,
                    shutting_down: false,
                    users: vec![LocalUser {
                        username: "Anna".into(),
                        unlocked: false,
                    }],
                    epa_phases: [("Anna".to_owned(), "LOGGED_OUT".to_owned())].into(),
                },
            },
            Event::Delta {
                seq: 12,
                change: Change::EpaPhaseChanged {
                    username: "Anna".into(),
                    phase: "LOGGED_OUT".into(),
                    login_required_reason: Some("session_expired".into()),
                },
            },
            Event::Delta {
                seq: 8,
                change: Change::ClientsChanged {
                    connected_clients: 3,
                },
            },
            Event::Delta {
                seq: 9,
                change: Change::ShuttingDown,
            },
            Event::Delta {
                seq: 10,
                change: Change::UserLocked {
                    username: "Jürgen".into(),
                    cause: LockCause::Idle,
                },
            },
            Event::Delta {
                seq: 11,
                change: Change::UsersChanged {
                    users: vec![LocalUser {
                        username: "a".into(),
                        unlocked: true,
                    }],
                },
            },
        ];
        for e in events {
            let back = Event::try_from(pb::WatchEvent::from(&e));
            assert!(matches!(&back, Ok(b) if *b == e), "{e:?} -> {back:?}");
        }
    }

    #[test]
    fn epa_state_round_trips_and_phases_are_named() {
        let s = EpaState {
            phase: EpaPhase::DeviceCodeSent,
            profile: Some(RecordProfile {
                insurer: "AOK PLUS".into(),
                kvnr: "X110411675".into(),
            }),
            aktensystem: Some("epa-as-1".into()),
            login: None,
            device: Some(PendingDevice {
                device_name: "laptop".into(),
                masked_addresses: vec!["m***@example.invalid".into()],
                code_valid_until_unix: 99,
                tries_left: 4,
            }),
            display_name: None,
            login_required_reason: None,
            relogin_skipped: false,
        };
        assert_eq!(EpaState::try_from(pb::EpaState::from(&s)).ok(), Some(s));
        for p in EpaPhase::ALL {
            assert_eq!(EpaPhase::parse(p.as_str()), Some(p));
            assert_eq!(EpaPhase::from_pb(p.to_pb().into()), Some(p));
            assert_eq!(
                serde_json::to_value(p).ok(),
                Some(serde_json::Value::String(p.as_str().into()))
            );
        }
        let bad = pb::EpaState::default();
        assert!(matches!(
            EpaState::try_from(bad),
            Err(ClientError::Malformed(_))
        ));
    }

    #[test]
    fn empty_oneofs_are_malformed_not_panics() {
        let e = pb::WatchEvent { seq: 1, kind: None };
        assert!(matches!(Event::try_from(e), Err(ClientError::Malformed(_))));
        let e = pb::WatchEvent {
            seq: 1,
            kind: Some(pb::watch_event::Kind::Delta(pb::Delta { change: None })),
        };
        assert!(matches!(Event::try_from(e), Err(ClientError::Malformed(_))));
    }

    #[test]
    fn document_query_round_trips_and_defaults_to_newest_first() {
        let d = DocumentQuery::default();
        assert!(d.descending);
        assert_eq!(d.sort, SortColumn::Created);
        let q = DocumentQuery {
            query: "röntgen".into(),
            author: "Dr".into(),
            mime_types: vec!["image/jpeg".into()],
            categories: vec!["reports".into()],
            class_codes: vec!["BIL".into()],
            created_from_unix: Some(5),
            created_to_unix: Some(9),
            sort: SortColumn::Accesses,
            descending: false,
            offset: 2,
            limit: Some(3),
            refresh: true,
        };
        assert_eq!(DocumentQuery::from(pb::ListDocumentsRequest::from(&q)), q);
        for c in SortColumn::ALL {
            assert_eq!(SortColumn::parse(c.as_str()), Some(c));
            assert_eq!(SortColumn::from_pb(c.to_pb().into()), c);
        }
        assert_eq!(SortColumn::from_pb(99), SortColumn::Created);
        for s in UploadStatus::ALL {
            let u = Upload {
                upload_id: "2.25.1".into(),
                title: "t".into(),
                status: s,
                error_reason: None,
                size: 1,
            };
            assert_eq!(Upload::try_from(pb::Upload::from(&u)).ok(), Some(u));
        }
    }

    #[test]
    fn state_applies_changes() {
        let mut s = DaemonState::default();
        s.apply(&Change::ClientsChanged {
            connected_clients: 4,
        });
        s.apply(&Change::ShuttingDown);
        assert_eq!(s.connected_clients, 4);
        assert!(s.shutting_down);
        s.apply(&Change::UsersChanged {
            users: vec![LocalUser {
                username: "a".into(),
                unlocked: false,
            }],
        });
        s.apply(&Change::UserUnlocked {
            username: "a".into(),
        });
        assert!(s.users[0].unlocked);
        s.apply(&Change::UserLocked {
            username: "a".into(),
            cause: LockCause::Lock,
        });
        assert!(!s.users[0].unlocked);
    }
}
