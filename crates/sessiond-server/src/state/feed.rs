//! Where this instance believes the revocation feed stands, for the streams it serves.
//!
//! One poller per instance (not one per stream) reads the feed's newest number, at once
//! when this instance has written a fact and every [`POLL_INTERVAL`] otherwise, since
//! other instances write facts too; streams wake when the number moves and read what is
//! new. Nothing is polled while no stream is open.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// How long a fact written by another instance may wait before streams here see it.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

pub struct FeedWatch {
    latest: watch::Sender<u64>,
    written: Notify,
}

impl Default for FeedWatch {
    fn default() -> Self {
        Self {
            latest: watch::Sender::new(0),
            written: Notify::new(),
        }
    }
}

impl FeedWatch {
    /// The newest number as it moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// This instance committed facts: look now rather than at the next poll.
    pub fn written(&self) {
        self.written.notify_one();
    }

    fn advance(&self, latest: u64) {
        self.latest.send_if_modified(|known| {
            let moved = latest > *known;
            if moved {
                *known = latest;
            }
            moved
        });
    }

    /// Runs forever, reading the newest number with `read` while anyone listens.
    pub async fn poll<F, Fut>(self: Arc<Self>, read: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Option<u64>>,
    {
        loop {
            tokio::select! {
                () = self.written.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            if self.latest.receiver_count() == 0 {
                continue;
            }
            if let Some(latest) = read().await {
                self.advance(latest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_see_the_number_move_forward_only() {
        let feed = FeedWatch::default();
        let mut rx = feed.subscribe();
        feed.advance(3);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), 3);
        feed.advance(2);
        assert!(!rx.has_changed().unwrap(), "never backwards");
    }
}
