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
}

impl DaemonState {
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::ClientsChanged { connected_clients } => {
                self.connected_clients = *connected_clients;
            }
            Change::ShuttingDown => self.shutting_down = true,
        }
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    ClientsChanged { connected_clients: u32 },
    ShuttingDown,
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

impl From<pb::Snapshot> for DaemonState {
    fn from(s: pb::Snapshot) -> Self {
        Self {
            environment: s.environment,
            connected_clients: s.connected_clients,
            shutting_down: s.shutting_down,
        }
    }
}

impl From<&DaemonState> for pb::Snapshot {
    fn from(s: &DaemonState) -> Self {
        Self {
            environment: s.environment.clone(),
            connected_clients: s.connected_clients,
            shutting_down: s.shutting_down,
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
    }
}
