//! The neighbours of a request in the request summary: the requests of the same base grid
//! (and category, when given) received within a window — the pool candidate duplicates are
//! scored from (the scoring itself is the engine's; projections only read the wire format).

use chrono::{DateTime, Utc};

use crate::db::Val;
use crate::{ProjectionError, Projections};

/// The most neighbours one query returns.
pub const NEIGHBOURS_MAX: u32 = 200;

impl Projections {
    /// Ids of the requests in `grid` (and `category`, when given) received in
    /// `[from, until]`, other than `except`, oldest first, at most `limit` (capped at
    /// [`NEIGHBOURS_MAX`]).
    pub async fn neighbours(
        &self,
        grid: &str,
        category: Option<&str>,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        except: &str,
        limit: u32,
    ) -> Result<Vec<String>, ProjectionError> {
        let mut args: Vec<Val> = vec![grid.into(), from.into(), until.into(), except.into()];
        let mut wher = "grid = $1 AND received_at >= $2 AND received_at <= $3 AND request_id <> $4"
            .to_string();
        if let Some(category) = category {
            args.push(category.into());
            wher += &format!(" AND category = ${}", args.len());
        }
        let sql = format!(
            "SELECT request_id FROM request_summary WHERE {wher} \
             ORDER BY received_at, request_id LIMIT {}",
            limit.clamp(1, NEIGHBOURS_MAX)
        );
        let rows = self.pool.fetch(&sql, &args).await?;
        rows.iter()
            .map(|r| Ok(r.text(0)?.unwrap_or_default()))
            .collect()
    }
}
