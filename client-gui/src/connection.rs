//! The one task that owns the daemon connection: connects (starting `epad` if allowed),
//! follows `Events.Watch`, and reports every change as a [`Status`] to the UI. When the
//! daemon goes away it reconnects with [`Backoff`], showing the countdown.

use epa_ipc::autostart::{self, Autostart};
use epa_ipc::i18n::{Lang, UserMessage, describe};
use epa_ipc::types::{DaemonInfo, DaemonState, Event};
use epa_ipc::{ClientError, DaemonClient, Endpoint};
use futures_util::StreamExt;
use tokio::time::{Duration, Instant};

use crate::backoff::Backoff;

/// How the daemon's log names us.
const CLIENT_NAME: &str = concat!("epa-desktop ", env!("CARGO_PKG_VERSION"));

/// What the window shows about the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Connecting (and starting the daemon if needed); can take a while on the first start.
    Connecting,
    /// Connected and in sync with the daemon's state.
    Connected {
        // Boxed: the daemon's info (with the environment description) dwarfs the other variants.
        info: Box<DaemonInfo>,
        state: DaemonState,
    },
    /// Not connected; `retry_in_secs` counts down to the next attempt (`None`: no retry).
    Disconnected {
        message: UserMessage,
        retry_in_secs: Option<u64>,
    },
}

/// The window is gone; nobody is left to show anything to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UiClosed;

/// Where the connection task reports to.
pub trait Ui {
    fn show(&self, status: Status) -> Result<(), UiClosed>;
    /// The client of the current connection (`None` once it broke), for the calls the
    /// screens make.
    fn client(&self, _client: Option<DaemonClient>) {}
}

impl<T: Ui + ?Sized> Ui for &T {
    fn show(&self, status: Status) -> Result<(), UiClosed> {
        (**self).show(status)
    }

    fn client(&self, client: Option<DaemonClient>) {
        (**self).client(client);
    }
}

/// Runs until the UI is closed.
pub async fn run(endpoint: Endpoint, autostart: Option<Autostart>, lang: Lang, ui: impl Ui) {
    let _ = reconnect_loop(&endpoint, autostart.as_ref(), lang, &ui).await;
}

async fn reconnect_loop(
    endpoint: &Endpoint,
    autostart: Option<&Autostart>,
    lang: Lang,
    ui: &impl Ui,
) -> Result<(), UiClosed> {
    let mut backoff = Backoff::default();
    loop {
        ui.show(Status::Connecting)?;
        let end = match autostart::connect_or_start(endpoint, CLIENT_NAME, autostart).await {
            Ok(client) => {
                ui.client(Some(client.clone()));
                let followed = follow(&client, ui).await;
                ui.client(None);
                let (end, synced) = followed?;
                if synced && end.is_healthy() {
                    backoff.reset();
                }
                end
            }
            Err(e) => SessionEnd::Failed(e),
        };
        count_down(backoff.next_delay(), end.message(lang), ui).await?;
    }
}

/// Follows the daemon's state until the stream ends. Also says whether a snapshot arrived.
async fn follow(client: &DaemonClient, ui: &impl Ui) -> Result<(SessionEnd, bool), UiClosed> {
    let mut events = match client.watch().await {
        Ok(events) => events,
        Err(e) => return Ok((SessionEnd::Failed(e), false)),
    };
    let mut tracker = Tracker::default();
    let end = loop {
        match events.next().await {
            None => break SessionEnd::Stopped,
            Some(Err(e)) => break SessionEnd::Failed(e),
            Some(Ok(event)) => match tracker.apply(event) {
                Ok(state) => ui.show(Status::Connected {
                    info: Box::new(client.info().clone()),
                    state: state.clone(),
                })?,
                Err(gap) => break SessionEnd::OutOfSync(gap),
            },
        }
    };
    Ok((end, tracker.seq.is_some()))
}

/// Shows "disconnected, retrying in N s" and counts N down until `delay` is over.
async fn count_down(delay: Duration, message: UserMessage, ui: &impl Ui) -> Result<(), UiClosed> {
    let deadline = Instant::now() + delay;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let secs = whole_seconds_up(left);
        ui.show(Status::Disconnected {
            message: message.clone(),
            retry_in_secs: Some(secs),
        })?;
        // Sleep until the displayed number changes.
        tokio::time::sleep(left.saturating_sub(Duration::from_secs(secs - 1))).await;
    }
}

fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Why a connection ended.
#[derive(Debug)]
enum SessionEnd {
    /// The daemon closed the stream (it shut down).
    Stopped,
    Failed(ClientError),
    /// A delta was missed; only a fresh snapshot can fix our state.
    OutOfSync(Gap),
}

impl SessionEnd {
    /// False when the daemon misbehaved; then the backoff keeps growing even though the
    /// connection itself worked.
    fn is_healthy(&self) -> bool {
        !matches!(
            self,
            SessionEnd::OutOfSync(_) | SessionEnd::Failed(ClientError::Malformed(_))
        )
    }

    fn message(&self, lang: Lang) -> UserMessage {
        match self {
            SessionEnd::Failed(e) => describe(e, lang),
            SessionEnd::Stopped => UserMessage {
                text: lang
                    .pick(
                        "Der ePA-Dienst wurde beendet.",
                        "The ePA service has stopped.",
                    )
                    .to_owned(),
                hint: reconnect_hint(lang),
            },
            SessionEnd::OutOfSync(gap) => {
                let expected = gap
                    .expected
                    .map_or_else(|| "Snapshot".to_owned(), |n| n.to_string());
                UserMessage {
                    text: match lang {
                        Lang::De => format!(
                            "Eine Zustandsänderung des ePA-Dienstes fehlt (erwartet: {expected}, erhalten: {}).",
                            gap.got
                        ),
                        Lang::En => format!(
                            "An update from the ePA service went missing (expected: {expected}, got: {}).",
                            gap.got
                        ),
                    },
                    hint: reconnect_hint(lang),
                }
            }
        }
    }
}

fn reconnect_hint(lang: Lang) -> String {
    lang.pick(
        "Die Verbindung wird automatisch neu aufgebaut.",
        "The connection is re-established automatically.",
    )
    .to_owned()
}

/// A delta that does not follow the last applied event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Gap {
    /// The sequence number that should have come; `None` before the snapshot.
    expected: Option<u64>,
    got: u64,
}

/// The daemon's state as rebuilt from a snapshot and the deltas after it.
#[derive(Debug, Default)]
struct Tracker {
    seq: Option<u64>,
    state: DaemonState,
}

impl Tracker {
    fn apply(&mut self, event: Event) -> Result<&DaemonState, Gap> {
        match event {
            Event::Snapshot { seq, state } => {
                self.seq = Some(seq);
                self.state = state;
            }
            Event::Delta { seq, change } => {
                let expected = self.seq.map(|s| s + 1);
                if expected != Some(seq) {
                    return Err(Gap { expected, got: seq });
                }
                self.seq = Some(seq);
                self.state.apply(&change);
            }
        }
        Ok(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use epa_ipc::types::Change;

    fn snapshot(seq: u64, clients: u32) -> Event {
        Event::Snapshot {
            seq,
            state: DaemonState {
                environment: "demo".into(),
                connected_clients: clients,
                ..DaemonState::default()
            },
        }
    }

    fn clients(seq: u64, n: u32) -> Event {
        Event::Delta {
            seq,
            change: Change::ClientsChanged {
                connected_clients: n,
            },
        }
    }

    #[test]
    fn tracker_applies_snapshot_then_consecutive_deltas() {
        let mut t = Tracker::default();
        assert_eq!(t.apply(snapshot(7, 1)).map(|s| s.connected_clients), Ok(1));
        assert_eq!(t.apply(clients(8, 2)).map(|s| s.connected_clients), Ok(2));
        let shut = Event::Delta {
            seq: 9,
            change: Change::ShuttingDown,
        };
        assert_eq!(t.apply(shut).map(|s| s.shutting_down), Ok(true));
        assert_eq!(t.seq, Some(9));
    }

    #[test]
    fn tracker_reports_gaps() {
        let mut t = Tracker::default();
        assert_eq!(
            t.apply(clients(1, 2)).map(|_| ()),
            Err(Gap {
                expected: None,
                got: 1
            })
        );
        let _ = t.apply(snapshot(3, 1));
        assert_eq!(
            t.apply(clients(5, 2)).map(|_| ()),
            Err(Gap {
                expected: Some(4),
                got: 5
            })
        );
        assert_eq!(
            t.apply(clients(3, 2)).map(|_| ()),
            Err(Gap {
                expected: Some(4),
                got: 3
            })
        );
    }

    #[test]
    fn a_new_snapshot_resynchronises() {
        let mut t = Tracker::default();
        let _ = t.apply(snapshot(3, 1));
        assert_eq!(t.apply(snapshot(10, 4)).map(|s| s.connected_clients), Ok(4));
        assert_eq!(t.apply(clients(11, 5)).map(|s| s.connected_clients), Ok(5));
    }

    #[test]
    fn countdown_rounds_up() {
        assert_eq!(whole_seconds_up(Duration::from_millis(250)), 1);
        assert_eq!(whole_seconds_up(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds_up(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds_up(Duration::from_secs(5)), 5);
    }

    #[test]
    fn session_end_messages_in_both_languages() {
        let ends = [
            SessionEnd::Stopped,
            SessionEnd::Failed(ClientError::Transport("gone".into())),
            SessionEnd::OutOfSync(Gap {
                expected: Some(4),
                got: 6,
            }),
        ];
        for end in &ends {
            let de = end.message(Lang::De);
            let en = end.message(Lang::En);
            assert_ne!(de.text, en.text, "{end:?}");
            assert!(!de.hint.is_empty() && !en.hint.is_empty(), "{end:?}");
        }
        assert!(!ends[2].is_healthy());
        assert!(ends[0].is_healthy() && ends[1].is_healthy());
    }

    /// Records what would be shown; reports the window closed after `limit` updates.
    struct Recorder {
        seen: std::sync::Mutex<Vec<Status>>,
        limit: usize,
    }

    impl Ui for Recorder {
        fn show(&self, status: Status) -> Result<(), UiClosed> {
            let mut seen = self.seen.lock().map_err(|_| UiClosed)?;
            if seen.len() >= self.limit {
                return Err(UiClosed);
            }
            seen.push(status);
            Ok(())
        }
    }

    fn recorder(limit: usize) -> Recorder {
        Recorder {
            seen: std::sync::Mutex::new(Vec::new()),
            limit,
        }
    }

    fn seen(r: Recorder) -> Vec<Status> {
        r.seen.into_inner().unwrap_or_default()
    }

    #[tokio::test]
    async fn counts_down_by_whole_seconds() {
        let ui = recorder(usize::MAX);
        let message = SessionEnd::Stopped.message(Lang::De);
        let started = Instant::now();
        assert_eq!(
            count_down(Duration::from_millis(1500), message.clone(), &ui).await,
            Ok(())
        );
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let shown = |secs| Status::Disconnected {
            message: message.clone(),
            retry_in_secs: Some(secs),
        };
        assert_eq!(seen(ui), [shown(2), shown(1)]);
    }

    #[tokio::test]
    async fn without_a_daemon_it_keeps_retrying_until_the_window_closes() {
        let dir = std::env::temp_dir().join(format!("epa-gui-test-{}", std::process::id()));
        let endpoint = Endpoint::at(dir.join("missing").join("epad.sock"));
        let ui = recorder(4);
        run(endpoint, None, Lang::En, &ui).await;
        let seen = seen(ui);
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0], Status::Connecting);
        assert!(
            matches!(&seen[1], Status::Disconnected { message, retry_in_secs: Some(1) }
                if message.text.contains("not running")),
            "{:?}",
            seen[1]
        );
        assert_eq!(seen[2], Status::Connecting);
        assert!(matches!(seen[3], Status::Disconnected { .. }));
    }
}
