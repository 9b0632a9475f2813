//! The local time of the jurisdictions the engine serves: China Standard Time (Asia/Shanghai,
//! UTC+8, no daylight saving). Reporting periods (days, ISO weeks, months), daily digests,
//! report schedules, imported timestamps without an offset, and the dates residents are told
//! are all cut and shown in it. This is the only place it is defined.

use chrono::{FixedOffset, NaiveDate};

use crate::Timestamp;

/// The offset from UTC, in seconds.
pub const UTC_OFFSET_SECS: i32 = 8 * 3600;

/// The local offset.
pub fn offset() -> FixedOffset {
    FixedOffset::east_opt(UTC_OFFSET_SECS).expect("UTC+8 is a valid offset")
}

/// The local calendar day of an instant.
pub fn day_of(at: Timestamp) -> NaiveDate {
    at.with_timezone(&offset()).date_naive()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_day_ends_at_local_midnight() {
        let before: crate::Timestamp = "2026-10-01T15:59:59Z".parse().unwrap();
        let after: crate::Timestamp = "2026-10-01T16:00:00Z".parse().unwrap();
        assert_eq!(super::day_of(before).to_string(), "2026-10-01");
        assert_eq!(super::day_of(after).to_string(), "2026-10-02");
    }
}
