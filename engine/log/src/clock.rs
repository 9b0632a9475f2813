//! The shell's only wall-clock reader ([`SystemClock`]) and its only id minter ([`IdSource`]).
//!
//! The domain core takes time and ids as inputs; everything the service needs from the
//! outside world's clock or randomness goes through the two types here, so tests can swap
//! the clock for a `ManualClock` and every other site stays deterministic.

use engine_core::Clock;
use schemas::Timestamp;
use uuid::Uuid;

/// The real clock: reads the system time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the service reads the wall clock; everything else asks a `Clock`.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// Mints fresh ids: UUIDv7 (time-ordered) event ids and idempotency keys for commands that
/// arrive without one.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdSource;

impl IdSource {
    /// A fresh UUIDv7.
    pub fn mint(&self) -> Uuid {
        Uuid::now_v7()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_version_7_and_distinct() {
        let ids = IdSource;
        let a = ids.mint();
        let b = ids.mint();
        assert_eq!(a.get_version_num(), 7);
        assert_ne!(a, b);
    }
}
