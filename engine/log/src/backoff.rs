//! The one retry policy of the engine: capped exponential backoff. Every loop that waits
//! for a server to come back (NATS at start-up, the read-model database, a failing
//! projector) sleeps the delays this hands out.

use std::time::Duration;

/// Capped exponential backoff: `min`, `2·min`, `4·min`, … up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// First delay of every waiting loop.
    pub const MIN: Duration = Duration::from_millis(100);
    /// Largest delay while waiting for a server at start-up: short, so start-up follows a
    /// server that comes back within a second or two.
    pub const STARTUP_MAX: Duration = Duration::from_secs(2);
    /// Largest delay of an outbound link between attempts to publish one message.
    pub const LINK_MAX: Duration = Duration::from_secs(10);
    /// Largest delay before a failed worker is started again.
    pub const WORKER_MAX: Duration = Duration::from_secs(30);

    /// Delays from `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The policy for waiting on a server at start-up ([`Backoff::MIN`] to
    /// [`Backoff::STARTUP_MAX`]).
    pub fn startup() -> Backoff {
        Backoff::new(Backoff::MIN, Backoff::STARTUP_MAX)
    }

    /// The policy of an outbound link re-publishing a message the server did not take
    /// (upward reports, rate reports): [`Backoff::MIN`] up to [`Backoff::LINK_MAX`].
    pub fn link() -> Backoff {
        Backoff::new(Backoff::MIN, Backoff::LINK_MAX)
    }

    /// The policy of a leased worker started again after it failed: [`Backoff::MIN`] up to
    /// [`Backoff::WORKER_MAX`].
    pub fn worker() -> Backoff {
        Backoff::new(Backoff::MIN, Backoff::WORKER_MAX)
    }

    /// The policy of a log read whose pull brought nothing (a new consumer on a clustered
    /// stream that does not answer yet): 10 ms doubling up to 500 ms.
    pub fn read() -> Backoff {
        Backoff::new(Duration::from_millis(10), Duration::from_millis(500))
    }

    /// Starts again at `min` (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// The delay to sleep now; the next one is twice as long, capped.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
