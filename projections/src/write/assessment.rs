//! The `assessment` projector: the units of each request (street, community, lead
//! department) and the monthly facts the department assessment ranks them by.

use std::collections::{HashMap, HashSet};

use schemas::{Event, EventKind, LoggedCommit};

use super::{OnConflict, SQLITE_ROWS, insert_rows};
use crate::db::{Backend, Tx, Val};
use crate::fold::periods;

/// Assessment units (request → street, community, lead department) gathered over a run of
/// a batch and written with one multi-row insert and one multi-row update.
#[derive(Default)]
struct PendingUnits {
    /// New units in order (the first receipt of a request wins, like `ON CONFLICT DO NOTHING`).
    inserts: Vec<Vec<Val>>,
    inserted: HashSet<String>,
    /// Latest lead department per request, in first-seen order.
    leads: Vec<(String, String)>,
    lead_index: HashMap<String, usize>,
}

impl PendingUnits {
    fn received(&mut self, rid: String, street: &str, community: &str) {
        if self.inserted.insert(rid.clone()) {
            self.inserts
                .push(vec![rid.into(), street.into(), community.into()]);
        }
    }

    fn lead(&mut self, rid: String, department: &str) {
        match self.lead_index.get(&rid) {
            Some(&i) => self.leads[i].1 = department.to_owned(),
            None => {
                self.lead_index.insert(rid.clone(), self.leads.len());
                self.leads.push((rid, department.to_owned()));
            }
        }
    }

    /// Writes what is pending (inserts first, then lead departments) and empties it.
    async fn flush(&mut self, tx: &mut Tx, sfx: &str) -> Result<(), sqlx::Error> {
        let table = format!("assessment_units{sfx}");
        insert_rows(
            tx,
            &table,
            &["request_id", "street", "community"],
            1,
            &self.inserts,
            OnConflict::Nothing,
        )
        .await?;
        if !self.leads.is_empty() {
            match tx.backend() {
                Backend::Postgres => {
                    let (ids, depts): (Vec<_>, Vec<_>) = self
                        .leads
                        .iter()
                        .map(|(r, d)| (Some(r.clone()), Some(d.clone())))
                        .unzip();
                    tx.exec(
                        &format!(
                            "UPDATE {table} AS u SET lead_department = v.lead_department \
                             FROM UNNEST($1::text[], $2::text[]) AS v(request_id, lead_department) \
                             WHERE u.request_id = v.request_id"
                        ),
                        &[Val::TextArr(ids), Val::TextArr(depts)],
                    )
                    .await?;
                }
                Backend::Sqlite => {
                    for chunk in self.leads.chunks(SQLITE_ROWS) {
                        let mut args = Vec::with_capacity(chunk.len() * 2);
                        let mut tuples = Vec::with_capacity(chunk.len());
                        for (r, d) in chunk {
                            args.push(r.clone().into());
                            args.push(d.clone().into());
                            tuples.push(format!("(${}, ${})", args.len() - 1, args.len()));
                        }
                        tx.exec(
                            &format!(
                                "UPDATE {table} SET lead_department = v.column2 \
                                 FROM (VALUES {}) AS v WHERE {table}.request_id = v.column1",
                                tuples.join(", ")
                            ),
                            &args,
                        )
                        .await?;
                    }
                }
            }
        }
        *self = PendingUnits::default();
        Ok(())
    }
}

/// The `assessment` projector over a batch. Receipts and referrals (nearly every row it
/// writes) are gathered and written set-wise; the rare events that read or write the other
/// tables first flush what is gathered, then run in log order.
pub(super) async fn apply_assessment(
    tx: &mut Tx,
    sfx: &str,
    commits: &[&LoggedCommit],
) -> Result<(), sqlx::Error> {
    let mut units = PendingUnits::default();
    for lc in commits {
        let pos = lc.position as i64;
        for env in &lc.commit.events {
            let rid = env.request_id.to_string();
            let at = env.occurred_at;
            let eid = env.event_id.to_string();
            match &env.event {
                Event::RequestReceived(e) => {
                    units.received(rid, &e.location.street, &e.location.community);
                    continue;
                }
                Event::ReferredToDepartment(e) => {
                    units.lead(rid, &e.lead_department);
                    continue;
                }
                Event::DepartmentRated(_)
                | Event::EventCorrected(_)
                | Event::WhistleBlown(_)
                | Event::DepartmentReported(_)
                | Event::DepartmentReleased(_)
                | Event::ReportedUpward(_)
                | Event::UpwardAcknowledged(_)
                | Event::UpwardFeedbackReceived(_) => units.flush(tx, sfx).await?,
                _ => continue,
            }
            match &env.event {
                Event::DepartmentRated(e) => {
                    tx.exec(
                        &format!(
                            "INSERT INTO department_ratings{sfx} (event_id, request_id, department, community, score, \
                             rated_at, rated_month, last_position) VALUES ($1, $2, $3, \
                             (SELECT community FROM assessment_units{sfx} WHERE request_id = $2), $4, $5, $6, $7) \
                             ON CONFLICT (event_id) DO NOTHING"
                        ),
                        &[
                            eid.into(),
                            rid.into(),
                            e.department.clone().into(),
                            i64::from(e.score).into(),
                            at.into(),
                            periods(at).2.into(),
                            pos.into(),
                        ],
                    )
                    .await?;
                }
                Event::EventCorrected(e) if e.corrected_type == EventKind::DepartmentRated => {
                    tx.exec(
                        &format!("DELETE FROM department_ratings{sfx} WHERE event_id = $1"),
                        &[e.event_id.to_string().into()],
                    )
                    .await?;
                }
                Event::WhistleBlown(e) => {
                    for d in &e.departments {
                        tx.exec(
                            &format!(
                                "INSERT INTO whistle_reports{sfx} (whistle_id, department, request_id, community, \
                                 blown_at, blown_month, report_due_at, last_position) VALUES ($1, $2, $3, \
                                 (SELECT community FROM assessment_units{sfx} WHERE request_id = $3), $4, $5, $6, $7) \
                                 ON CONFLICT (whistle_id, department) DO NOTHING"
                            ),
                            &[
                                eid.clone().into(),
                                d.clone().into(),
                                rid.clone().into(),
                                at.into(),
                                periods(at).2.into(),
                                e.report_due_at.into(),
                                pos.into(),
                            ],
                        )
                        .await?;
                    }
                }
                Event::DepartmentReported(e) => {
                    tx.exec(
                        &format!(
                            "UPDATE whistle_reports{sfx} SET reported_at = $3, on_time = $4, last_position = $5 \
                             WHERE request_id = $1 AND department = $2 AND reported_at IS NULL AND released_at IS NULL"
                        ),
                        &[rid.into(), e.department.clone().into(), at.into(), e.on_time.into(), pos.into()],
                    )
                    .await?;
                }
                Event::DepartmentReleased(e) => {
                    tx.exec(
                        &format!(
                            "UPDATE whistle_reports{sfx} SET released_at = $3, last_position = $4 \
                             WHERE request_id = $1 AND department = $2 AND reported_at IS NULL AND released_at IS NULL"
                        ),
                        &[rid.into(), e.department.clone().into(), at.into(), pos.into()],
                    )
                    .await?;
                }
                Event::ReportedUpward(e) => {
                    tx.exec(
                        &format!(
                            "INSERT INTO upward_reports{sfx} (report_id, request_id, level, street, community, \
                             lead_department, sent_at, is_open, last_position) \
                             SELECT $1, $2, $3, u.street, u.community, u.lead_department, $4, TRUE, $5 \
                             FROM (SELECT 1 AS one) AS o LEFT JOIN assessment_units{sfx} AS u ON u.request_id = $2 WHERE TRUE \
                             ON CONFLICT (report_id) DO NOTHING"
                        ),
                        &[
                            e.report_id.to_string().into(),
                            rid.into(),
                            e.level.as_str().into(),
                            at.into(),
                            pos.into(),
                        ],
                    )
                    .await?;
                }
                Event::UpwardAcknowledged(e) => {
                    tx.exec(
                        &format!(
                            "UPDATE upward_reports{sfx} SET acknowledged_at = COALESCE(acknowledged_at, $2), \
                             last_position = $3 WHERE report_id = $1"
                        ),
                        &[e.report_id.to_string().into(), at.into(), pos.into()],
                    )
                    .await?;
                }
                Event::UpwardFeedbackReceived(e) => {
                    let kind = match serde_json::to_value(e.kind) {
                        Ok(serde_json::Value::String(s)) => s,
                        _ => String::new(),
                    };
                    if e.kind == schemas::FeedbackKind::Acknowledged {
                        tx.exec(
                            &format!(
                                "UPDATE upward_reports{sfx} SET acknowledged_at = COALESCE(acknowledged_at, $2), \
                                 last_position = $3 WHERE report_id = $1"
                            ),
                            &[e.report_id.to_string().into(), at.into(), pos.into()],
                        )
                        .await?;
                    } else {
                        tx.exec(
                            &format!(
                                "UPDATE upward_reports{sfx} SET first_feedback_at = COALESCE(first_feedback_at, $2), \
                                 feedback_kind = $3, last_feedback_at = $2, is_open = FALSE, last_position = $4 \
                                 WHERE report_id = $1"
                            ),
                            &[e.report_id.to_string().into(), at.into(), kind.into(), pos.into()],
                        )
                        .await?;
                    }
                }
                _ => {}
            }
        }
    }
    units.flush(tx, sfx).await?;
    Ok(())
}
