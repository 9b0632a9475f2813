//! Lists that name requests: overdue, due-soon, worklists, the request list and the
//! report-upward ledger, each a page of rows in a stable order with a cursor.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Dim, ListQuery, Page, Period, RUNNING, RequestList, SUMMARY_COLS, bad_cursor, decode_cursor,
    encode_cursor, parts, req, summary_from_row,
};
use crate::db::Val;
use crate::fold::Summary;
use crate::{ProjectionError, Projections};

/// An upward report in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpwardReport {
    /// Report id.
    pub report_id: String,
    /// Request.
    pub request_id: String,
    /// Level.
    pub level: String,
    /// Street of the request.
    pub street: Option<String>,
    /// Community of the request.
    pub community: Option<String>,
    /// Lead department when reported.
    pub lead_department: Option<String>,
    /// Sent at.
    pub sent_at: DateTime<Utc>,
    /// Acknowledged at.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// First substantive feedback at.
    pub first_feedback_at: Option<DateTime<Utc>>,
    /// Kind of the latest feedback.
    pub feedback_kind: Option<String>,
    /// first_feedback_at − sent_at, seconds.
    pub time_to_feedback_seconds: Option<i64>,
    /// No substantive feedback yet.
    pub open: bool,
    /// Log position of the last change.
    pub last_position: i64,
}

impl Projections {
    /// A page of request summaries (see [`RequestList`]).
    pub async fn requests(&self, q: &ListQuery) -> Result<Page<Summary>, ProjectionError> {
        let mut args: Vec<Val> = Vec::new();
        let mut filter = q.filter.clone();
        // The department whose own parts the items are marked with.
        let mut marked = None;
        let mut wher = match &q.list {
            RequestList::Overdue => {
                marked = filter
                    .dims
                    .iter()
                    .find(|(d, _)| *d == Dim::Department)
                    .map(|(_, v)| v.clone());
                let cond = parts::overdue_condition(&mut filter, q.now, &mut args);
                format!("{}{cond}", filter.sql(Period::Month, &mut args))
            }
            _ => filter.sql(Period::Month, &mut args),
        };
        let by_position = matches!(q.list, RequestList::All);
        match &q.list {
            RequestList::All | RequestList::Overdue => {}
            RequestList::DueSoon(window) => {
                let until = q.now.checked_add_signed(*window).ok_or_else(|| {
                    ProjectionError::InvalidParam {
                        field: "within_hours".into(),
                        reason: "the window ends beyond the representable time".into(),
                    }
                })?;
                args.push(q.now.into());
                args.push(until.into());
                wher += &format!(
                    " AND is_open AND NOT overdue AND {RUNNING} AND due_at >= ${} AND due_at < ${}",
                    args.len() - 1,
                    args.len()
                );
            }
            RequestList::Worker(w) => {
                args.push(w.clone().into());
                wher += &format!(" AND is_open AND owner = ${}", args.len());
            }
            RequestList::Department(d) => {
                marked = Some(d.clone());
                let parts = parts::with_open_part(Some(d), None, &mut args);
                args.push(d.clone().into());
                wher += &format!(
                    " AND is_open AND (lead_department = ${} OR {parts})",
                    args.len()
                );
            }
            RequestList::Person { id, unit } => {
                args.push(id.clone().into());
                wher += &format!(" AND is_open AND assignee = ${}", args.len());
                if let Some(u) = unit {
                    args.push(u.clone().into());
                    wher += &format!(" AND assignee_unit = ${}", args.len());
                }
            }
            RequestList::Unassigned(c) => {
                args.push(c.clone().into());
                wher += &format!(" AND stage = 'received' AND community = ${}", args.len());
            }
        }
        if let Some(p) = q.since_position {
            args.push((p as i64).into());
            wher += &format!(" AND last_position > ${}", args.len());
        }
        if let Some(c) = &q.cursor {
            let (k, id) = decode_cursor(c)?;
            if by_position {
                args.push(k.into());
            } else {
                let k = DateTime::<Utc>::from_timestamp_micros(k).ok_or_else(bad_cursor)?;
                args.push(k.into());
            }
            args.push(id.into());
            let (a, b) = (args.len() - 1, args.len());
            let col = if by_position {
                "last_position"
            } else {
                "due_at"
            };
            wher += &format!(" AND ({col} > ${a} OR ({col} = ${a} AND request_id > ${b}))");
        }
        let order = if by_position {
            "last_position, request_id"
        } else {
            "due_at, request_id"
        };
        let limit = q.limit.clamp(1, 1000) as usize;
        let sql = format!(
            "SELECT {SUMMARY_COLS} FROM request_summary WHERE {wher} ORDER BY {order} LIMIT {}",
            limit + 1
        );
        let rows = self.pool.fetch(&sql, &args).await?;
        let mut items: Vec<Summary> = rows
            .iter()
            .map(summary_from_row)
            .collect::<Result<_, _>>()?;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|s| {
                let k = if by_position {
                    s.last_position
                } else {
                    s.due_at.timestamp_micros()
                };
                encode_cursor(k, &s.request_id)
            })
        } else {
            None
        };
        if let Some(d) = &marked {
            self.attach_parts(&mut items, d, q.now).await?;
        }
        Ok(Page { items, next_cursor })
    }

    /// A page of the report-upward ledger in change order.
    pub async fn upward(
        &self,
        open_only: bool,
        since_position: Option<u64>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<UpwardReport>, ProjectionError> {
        let mut args: Vec<Val> = Vec::new();
        let mut wher = "1 = 1".to_owned();
        if open_only {
            wher += " AND is_open";
        }
        if let Some(p) = since_position {
            args.push((p as i64).into());
            wher += &format!(" AND last_position > ${}", args.len());
        }
        if let Some(c) = cursor {
            let (k, id) = decode_cursor(c)?;
            args.push(k.into());
            args.push(id.into());
            let (a, b) = (args.len() - 1, args.len());
            wher += &format!(
                " AND (last_position > ${a} OR (last_position = ${a} AND report_id > ${b}))"
            );
        }
        let limit = limit.clamp(1, 1000) as usize;
        let sql = format!(
            "SELECT report_id, request_id, level, street, community, lead_department, sent_at, acknowledged_at, \
             first_feedback_at, feedback_kind, is_open, last_position FROM upward_reports WHERE {wher} \
             ORDER BY last_position, report_id LIMIT {}",
            limit + 1
        );
        let rows = self.pool.fetch(&sql, &args).await?;
        let mut items = Vec::new();
        for r in &rows {
            let sent_at = req(r.ts(6)?, "sent_at")?;
            let first = r.ts(8)?;
            items.push(UpwardReport {
                report_id: req(r.text(0)?, "report_id")?,
                request_id: req(r.text(1)?, "request_id")?,
                level: req(r.text(2)?, "level")?,
                street: r.text(3)?,
                community: r.text(4)?,
                lead_department: r.text(5)?,
                sent_at,
                acknowledged_at: r.ts(7)?,
                first_feedback_at: first,
                feedback_kind: r.text(9)?,
                time_to_feedback_seconds: first.map(|f| (f - sent_at).num_seconds()),
                open: req(r.bool(10)?, "is_open")?,
                last_position: req(r.int(11)?, "last_position")?,
            });
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|u| encode_cursor(u.last_position, &u.report_id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}
