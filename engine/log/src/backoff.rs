//! The one retry policy of the engine: capped exponential backoff. Every loop that waits
//! for a server to come back (NATS at start-up, the read-model database, a failing
//! projector) sleeps the delays this hands out, and [`Backoff::patiently`] is the one loop
//! that declares or reads a JetStream resource while a cluster elects its leaders.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// What one attempt of a patient operation came to ([`Backoff::patiently`]).
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// It worked.
    Done(T),
    /// Worth trying again (a timeout, no responders, a "not now" answer while a leader is
    /// elected): the error as it is reported if the patience runs out.
    Transient(E),
    /// Trying again will not help: returned at once.
    Failed(E),
}

/// How a patient operation reports its retries: start-up waits warn (an operator should see
/// a server that is not there yet); reads riding out an election log at debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// Each retry is a warning.
    Warn,
    /// Each retry is a debug line.
    Quiet,
}

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

    /// Runs `attempt` until it is done or fails for good, sleeping this policy's delays
    /// between transient failures for up to `patience` (a retry whose delay would end past
    /// it is not made: the last transient error is returned; `Duration::MAX` never gives
    /// up). `what` names the operation
    /// in the log lines. To stop early on shutdown, race the returned future against the
    /// shutdown signal: dropping it between attempts is safe.
    pub async fn patiently<T, E, F, Fut>(
        mut self,
        what: &str,
        patience: Duration,
        retries: Retries,
        mut attempt: F,
    ) -> Result<T, E>
    where
        E: Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T, E>>,
    {
        let give_up_at = tokio::time::Instant::now().checked_add(patience);
        loop {
            let error = match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Failed(error) => return Err(error),
                Attempt::Transient(error) => error,
            };
            let delay = self.next_delay();
            if give_up_at.is_some_and(|at| tokio::time::Instant::now() + delay > at) {
                return Err(error);
            }
            let retry_in_ms = delay.as_millis() as u64;
            match retries {
                Retries::Warn => {
                    tracing::warn!(%error, retry_in_ms, "{what}: not available yet; retrying")
                }
                Retries::Quiet => tracing::debug!(%error, retry_in_ms, "{what}: trying again"),
            }
            tokio::time::sleep(delay).await;
        }
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

    fn quick() -> Backoff {
        Backoff::new(Duration::from_millis(10), Duration::from_secs(1))
    }

    #[tokio::test]
    async fn patiently_retries_transient_failures_until_done_and_stops_at_a_final_one() {
        let mut calls = 0;
        let done: Result<u32, String> = quick()
            .patiently("test", Duration::from_secs(10), Retries::Quiet, || {
                calls += 1;
                let n = calls;
                async move {
                    match n {
                        1 | 2 => Attempt::Transient(format!("not yet {n}")),
                        _ => Attempt::Done(n),
                    }
                }
            })
            .await;
        assert_eq!(done, Ok(3));
        let failed: Result<(), String> = quick()
            .patiently("test", Duration::from_secs(10), Retries::Quiet, || async {
                Attempt::Failed("refused".to_string())
            })
            .await;
        assert_eq!(failed, Err("refused".into()));
    }

    #[tokio::test]
    async fn patiently_gives_up_with_the_last_transient_error_before_its_patience_is_spent() {
        let started = tokio::time::Instant::now();
        let mut calls = 0u32;
        let gave_up: Result<(), String> = quick()
            .patiently("test", Duration::from_millis(100), Retries::Quiet, || {
                calls += 1;
                let n = calls;
                async move { Attempt::Transient(format!("try {n}")) }
            })
            .await;
        // Sleeps of 10, 20, 40 ms fit in 100 ms; the next 80 ms would end past it.
        assert!(calls >= 2, "retried");
        assert_eq!(gave_up, Err(format!("try {calls}")), "the last error");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "never sleeps past it"
        );
    }
}
