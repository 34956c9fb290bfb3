//! The event bus behind `Events.Watch`: one current state, numbered changes, and per-subscriber
//! bounded buffers. A subscriber that falls behind gets a fresh snapshot, never a backlog.

use std::sync::{Arc, Mutex};

use epa_ipc::types::{Change, DaemonState, Event};
use futures_util::Stream;
use tokio::sync::broadcast;

/// Changes a subscriber may be behind before it is resynchronised with a snapshot.
pub const SUBSCRIBER_BUFFER: usize = 256;

pub struct EventBus {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<(u64, Change)>,
}

struct Inner {
    seq: u64,
    state: DaemonState,
}

impl EventBus {
    pub fn new(state: DaemonState, buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(1));
        Self {
            inner: Mutex::new(Inner { seq: 0, state }),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a consistent state (apply is infallible).
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Derives a change from the current state, applies it and sends it, all under one lock so
    /// that numbering, state and the order subscribers see are the same thing.
    pub fn publish_with(&self, make: impl FnOnce(&DaemonState) -> Change) -> u64 {
        let mut inner = self.lock();
        let change = make(&inner.state);
        inner.seq += 1;
        inner.state.apply(&change);
        // No subscribers is fine.
        let _ = self.tx.send((inner.seq, change));
        inner.seq
    }

    pub fn publish(&self, change: Change) -> u64 {
        self.publish_with(|_| change)
    }

    /// Replaces the state without a change (start-up, before anyone subscribed).
    pub fn reset_state(&self, state: DaemonState) {
        self.lock().state = state;
    }

    pub fn state(&self) -> DaemonState {
        self.lock().state.clone()
    }

    /// A snapshot and a receiver that yields exactly the changes after it.
    fn subscribe(&self) -> (Event, broadcast::Receiver<(u64, Change)>) {
        let inner = self.lock();
        let snapshot = Event::Snapshot {
            seq: inner.seq,
            state: inner.state.clone(),
        };
        (snapshot, self.tx.subscribe())
    }

    /// The `Watch` stream: snapshot, deltas, a fresh snapshot after lagging; it ends after the
    /// daemon announced its shutdown.
    pub fn watch(self: &Arc<Self>) -> impl Stream<Item = Event> + Send + 'static {
        let (snapshot, rx) = self.subscribe();
        let start = WatchState {
            bus: Arc::clone(self),
            rx,
            pending: Some(snapshot),
            done: false,
        };
        futures_util::stream::unfold(start, |mut st| async move {
            if st.done {
                return None;
            }
            let event = match st.pending.take() {
                Some(ev) => ev,
                None => match st.rx.recv().await {
                    Ok((seq, change)) => Event::Delta { seq, change },
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "watch subscriber lagged; resending snapshot");
                        let (snapshot, rx) = st.bus.subscribe();
                        st.rx = rx;
                        snapshot
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            st.done = matches!(
                &event,
                Event::Delta {
                    change: Change::ShuttingDown,
                    ..
                } | Event::Snapshot {
                    state: DaemonState {
                        shutting_down: true,
                        ..
                    },
                    ..
                }
            );
            Some((event, st))
        })
    }
}

struct WatchState {
    bus: Arc<EventBus>,
    rx: broadcast::Receiver<(u64, Change)>,
    pending: Option<Event>,
    done: bool,
}

/// Counts a client connection for as long as it lives.
pub struct ClientGuard {
    bus: Arc<EventBus>,
}

impl ClientGuard {
    pub fn new(bus: Arc<EventBus>) -> Self {
        bus.publish_with(|s| Change::ClientsChanged {
            connected_clients: s.connected_clients.saturating_add(1),
        });
        Self { bus }
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.bus.publish_with(|s| Change::ClientsChanged {
            connected_clients: s.connected_clients.saturating_sub(1),
        });
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn bus(buffer: usize) -> Arc<EventBus> {
        Arc::new(EventBus::new(
            DaemonState {
                environment: "demo".into(),
                ..DaemonState::default()
            },
            buffer,
        ))
    }

    fn clients(n: u32) -> Change {
        Change::ClientsChanged {
            connected_clients: n,
        }
    }

    #[tokio::test]
    async fn snapshot_first_then_numbered_deltas() {
        let bus = bus(16);
        bus.publish(clients(1));
        let mut w = Box::pin(bus.watch());
        bus.publish(clients(2));
        bus.publish(clients(3));
        assert!(
            matches!(w.next().await, Some(Event::Snapshot { seq: 1, ref state }) if state.connected_clients == 1)
        );
        assert_eq!(
            w.next().await,
            Some(Event::Delta {
                seq: 2,
                change: clients(2)
            })
        );
        assert_eq!(
            w.next().await,
            Some(Event::Delta {
                seq: 3,
                change: clients(3)
            })
        );
    }

    #[tokio::test]
    async fn a_lagging_subscriber_gets_a_fresh_snapshot_not_a_backlog() {
        let bus = bus(4);
        let mut w = Box::pin(bus.watch());
        assert!(matches!(
            w.next().await,
            Some(Event::Snapshot { seq: 0, .. })
        ));
        for n in 1..=100 {
            bus.publish(clients(n));
        }
        match w.next().await {
            Some(Event::Snapshot { seq, state }) => {
                assert_eq!(seq, 100);
                assert_eq!(state.connected_clients, 100);
            }
            other => panic!("expected a fresh snapshot, got {other:?}"),
        }
        bus.publish(clients(101));
        assert_eq!(
            w.next().await,
            Some(Event::Delta {
                seq: 101,
                change: clients(101)
            })
        );
    }

    #[tokio::test]
    async fn the_stream_ends_after_shutdown_was_announced() {
        let bus = bus(16);
        let mut w = Box::pin(bus.watch());
        assert!(matches!(w.next().await, Some(Event::Snapshot { .. })));
        bus.publish(Change::ShuttingDown);
        assert_eq!(
            w.next().await,
            Some(Event::Delta {
                seq: 1,
                change: Change::ShuttingDown
            })
        );
        assert_eq!(w.next().await, None);
        // A late subscriber sees the shutdown in its snapshot and nothing else.
        let mut late = Box::pin(bus.watch());
        assert!(
            matches!(late.next().await, Some(Event::Snapshot { ref state, .. }) if state.shutting_down)
        );
        assert_eq!(late.next().await, None);
    }

    #[test]
    fn client_guards_count_connections() {
        let bus = bus(16);
        let a = ClientGuard::new(Arc::clone(&bus));
        let b = ClientGuard::new(Arc::clone(&bus));
        assert_eq!(bus.state().connected_clients, 2);
        drop(a);
        drop(b);
        assert_eq!(bus.state().connected_clients, 0);
    }
}
