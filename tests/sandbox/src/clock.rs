//! The sandbox's clock: real time plus an offset that tests move forward (code expiry, sessions).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    offset_s: AtomicI64,
}

impl Clock {
    pub fn now_unix(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        real.saturating_add_signed(self.offset_s.load(Ordering::SeqCst))
    }

    /// Moves time forward (never backward: the rules only ever expire things).
    pub fn advance(&self, seconds: u64) {
        let s = i64::try_from(seconds).unwrap_or(i64::MAX);
        self.offset_s.fetch_add(s, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn advancing_moves_now() {
        let c = super::Clock::default();
        let before = c.now_unix();
        c.advance(6 * 3600);
        assert!(c.now_unix() >= before + 6 * 3600);
    }
}
