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
}

impl From<pb::GetInfoResponse> for DaemonInfo {
    fn from(r: pb::GetInfoResponse) -> Self {
        Self {
            daemon_version: r.daemon_version,
            protocol_version: r.protocol_version,
            environment: r.environment,
            uptime_ms: r.uptime_ms,
            pid: r.pid,
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
    ClientsChanged { connected_clients: u32 },
    ShuttingDown,
    UserUnlocked { username: String },
    UserLocked { username: String, cause: LockCause },
    UsersChanged { users: Vec<LocalUser> },
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
