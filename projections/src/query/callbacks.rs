//! The callback (回访) figures of a rates group: how many replied requests had a callback that
//! reached the resident, and how many of those were timely against the policy's `[callback]`
//! limit after the reply (formulas in docs/metrics.md §Callbacks).
//!
//! Kept beside [`super::Counts`] rather than in it: the counts are the published content of
//! the upward rate reports, and a published report recomputed on replay must read the same.

use serde::{Deserialize, Serialize};

use super::ratio;
use crate::db::Row;

/// SQL of the callback counts (appended to the rates' select list).
pub(super) const CALLBACK_SQL: &str = "\
SUM(CASE WHEN replied_at IS NOT NULL AND callback_at IS NOT NULL THEN 1 ELSE 0 END), \
SUM(CASE WHEN replied_at IS NOT NULL AND callback_on_time IS NOT NULL THEN 1 ELSE 0 END), \
SUM(CASE WHEN replied_at IS NOT NULL AND callback_on_time THEN 1 ELSE 0 END)";

/// The callback figures of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Callbacks {
    /// Replied requests whose callback reached the resident after the reply in force.
    pub reached: i64,
    /// Of those, the ones whose reaching attempt was judged against the limit (events written
    /// before the engine stamped `within_limit` are not).
    pub timed: i64,
    /// Of those, reached within the `[callback]` limit after the reply.
    pub on_time: i64,
    /// 回访率 = reached ÷ completed (replied requests).
    pub callback_rate: Option<f64>,
    /// 回访及时率 = on_time ÷ timed.
    pub callback_timeliness: Option<f64>,
}

impl Callbacks {
    /// The figures from the columns at `start` of `r`, with `completed` replied requests.
    pub(super) fn from_row(
        r: &Row,
        start: usize,
        completed: i64,
    ) -> Result<Callbacks, sqlx::Error> {
        let g = |i: usize| -> Result<i64, sqlx::Error> { Ok(r.int(start + i)?.unwrap_or(0)) };
        let (reached, timed, on_time) = (g(0)?, g(1)?, g(2)?);
        Ok(Callbacks {
            reached,
            timed,
            on_time,
            callback_rate: ratio(reached, completed),
            callback_timeliness: ratio(on_time, timed),
        })
    }
}
