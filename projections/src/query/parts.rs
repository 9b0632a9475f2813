//! The departments' own parts in the lists: a department's worklist and its overdue list name
//! the requests it assists (协办) or is summoned to (吹哨报到) beside those it leads, each marked
//! with that department's part (`part` of the summary); `/api/v1/overdue` names requests whose
//! assisting part or whistle report is overdue.

use chrono::{DateTime, Utc};

use super::{Dim, Filter, RUNNING, req};
use crate::db::Val;
use crate::fold::{Summary, UnitPart};
use crate::{ProjectionError, Projections};

/// `request_id IN (…)`: the requests with an open part (of `department`, when given) whose
/// deadline passed before `now` (when given); pushes the arguments.
pub(super) fn with_open_part(
    department: Option<&str>,
    now: Option<DateTime<Utc>>,
    args: &mut Vec<Val>,
) -> String {
    let mut sub = "SELECT request_id FROM unit_parts WHERE is_open".to_owned();
    if let Some(d) = department {
        args.push(d.to_owned().into());
        sub += &format!(" AND department = ${}", args.len());
    }
    if let Some(now) = now {
        args.push(now.into());
        sub += &format!(" AND due_at IS NOT NULL AND due_at < ${}", args.len());
    }
    format!("request_id IN ({sub})")
}

/// The overdue list's condition at `now`: a missed deadline recorded or the deadline in force
/// passed with the clock running, for the lead (restricted to `?department=` when given), or
/// an open part of another department past its own deadline (that department's, when given).
/// `filter` loses its department dimension, which this condition applies itself.
pub(super) fn overdue_condition(
    filter: &mut Filter,
    now: DateTime<Utc>,
    args: &mut Vec<Val>,
) -> String {
    let department = department_dim(filter);
    args.push(now.into());
    let mut lead = format!("(overdue OR ({RUNNING} AND due_at < ${}))", args.len());
    if let Some(d) = &department {
        args.push(d.clone().into());
        lead = format!("(lead_department = ${} AND {lead})", args.len());
    }
    let parts = with_open_part(department.as_deref(), Some(now), args);
    format!(" AND is_open AND ({lead} OR {parts})")
}

/// Removes and returns the department dimension of `filter`.
pub(super) fn department_dim(filter: &mut Filter) -> Option<String> {
    let at = filter
        .dims
        .iter()
        .position(|(d, _)| *d == Dim::Department)?;
    Some(filter.dims.remove(at).1)
}

impl Projections {
    /// Marks each of `items` that `department` does not lead with that department's latest
    /// part of it, judged overdue at `now`.
    pub(super) async fn attach_parts(
        &self,
        items: &mut [Summary],
        department: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let ids: Vec<Option<String>> = items
            .iter()
            .filter(|s| s.lead_department.as_deref() != Some(department))
            .map(|s| Some(s.request_id.clone()))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let marks: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT request_id, kind, number, status, due_at, signed_at, reported_at, is_open \
             FROM unit_parts WHERE department = $1 AND request_id IN ({}) \
             ORDER BY request_id, is_open, last_position",
            marks.join(", ")
        );
        let mut args: Vec<Val> = vec![department.to_owned().into()];
        args.extend(ids.into_iter().map(Val::Text));
        let rows = self.pool.fetch(&sql, &args).await?;
        for r in &rows {
            let id = req(r.text(0)?, "request_id")?;
            let due_at = r.ts(4)?;
            let open = req(r.bool(7)?, "is_open")?;
            let part = UnitPart {
                kind: req(r.text(1)?, "kind")?,
                number: req(r.int(2)?, "number")?,
                status: req(r.text(3)?, "status")?,
                due_at,
                signed_at: r.ts(5)?,
                reported_at: r.ts(6)?,
                overdue: open && due_at.is_some_and(|d| d < now),
            };
            // Ordered open last, then by position: the last row of a request wins.
            if let Some(s) = items.iter_mut().find(|s| s.request_id == id) {
                s.part = Some(part);
            }
        }
        Ok(())
    }
}
