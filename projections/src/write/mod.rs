//! Applying commits to the tables of a projector, live (`""`) or shadow (`"_rebuild"`).
//!
//! Every function here runs inside a caller's transaction; the caller advances the checkpoint
//! in the same transaction, which is what makes application exactly once.

use std::collections::{HashMap, HashSet};

use schemas::LoggedCommit;
use uuid::Uuid;

use crate::db::{Backend, Tx, Val};
use crate::fold::{Part, RequestState, Summary, periods};

mod assessment;

use assessment::apply_assessment;

/// The `requests` projector: request state, summary and referrals.
pub const REQUESTS: &str = "requests";
/// The `assessment` projector: bottom-up ratings, whistles, report-upward ledger.
pub const ASSESSMENT: &str = "assessment";
/// Every projector, in the order the service should run them.
pub const PROJECTORS: &[&str] = &[REQUESTS, ASSESSMENT];

/// The tables a projector owns (rebuilt and swapped together).
pub(crate) fn tables(projector: &str) -> Option<&'static [&'static str]> {
    match projector {
        REQUESTS => Some(&[
            "request_state",
            "request_summary",
            "department_referrals",
            "unit_parts",
        ]),
        ASSESSMENT => Some(&[
            "assessment_units",
            "department_ratings",
            "whistle_reports",
            "upward_reports",
        ]),
        _ => None,
    }
}

/// Applies commits (already filtered to those above the checkpoint) to the tables with suffix `sfx`.
pub(crate) async fn apply_commits(
    tx: &mut Tx,
    projector: &str,
    sfx: &str,
    commits: &[&LoggedCommit],
) -> Result<(), sqlx::Error> {
    match projector {
        REQUESTS => apply_requests(tx, sfx, commits).await,
        _ => apply_assessment(tx, sfx, commits).await,
    }
}

/// Most rows bound in one SQLite statement (its limit is 32,766 parameters).
const SQLITE_PARAMS: usize = 32_000;
/// Most rows in one SQLite multi-row statement.
const SQLITE_ROWS: usize = 500;

/// The PostgreSQL array type of a column whose first value is `v`.
fn pg_array_type(v: &Val) -> &'static str {
    match v {
        Val::Int(_) | Val::IntArr(_) => "bigint[]",
        Val::Bool(_) | Val::BoolArr(_) => "boolean[]",
        Val::Ts(_) | Val::TsArr(_) => "timestamptz[]",
        Val::Float(_) | Val::FloatArr(_) => "double precision[]",
        Val::Text(_) | Val::TextArr(_) => "text[]",
    }
}

/// Column `i` of `rows` as one PostgreSQL array value.
fn pg_column(rows: &[Vec<Val>], i: usize) -> Result<Val, sqlx::Error> {
    let mismatch = || sqlx::Error::Protocol(format!("column {i} mixes value types"));
    Ok(match rows.first().map(|r| &r[i]) {
        Some(Val::Int(_)) => Val::IntArr(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Int(v) => Ok(*v),
                    _ => Err(mismatch()),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(Val::Bool(_)) => Val::BoolArr(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Bool(v) => Ok(*v),
                    _ => Err(mismatch()),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(Val::Ts(_)) => Val::TsArr(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Ts(v) => Ok(*v),
                    _ => Err(mismatch()),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(Val::Float(_)) => Val::FloatArr(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Float(v) => Ok(*v),
                    _ => Err(mismatch()),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => Val::TextArr(
            rows.iter()
                .map(|r| match &r[i] {
                    Val::Text(v) => Ok(v.clone()),
                    _ => Err(mismatch()),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// What a multi-row insert does with rows whose key already exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    /// Overwrite every non-key column.
    Update,
    /// Keep the existing row.
    Nothing,
}

/// Inserts `rows` (values in `names` order; the first `key` columns are the conflict key; no
/// key twice) into `table` with one statement on PostgreSQL (`INSERT .. SELECT FROM UNNEST`)
/// and multi-row `VALUES` chunks on SQLite.
async fn insert_rows(
    tx: &mut Tx,
    table: &str,
    names: &[&str],
    key: usize,
    rows: &[Vec<Val>],
    on_conflict: OnConflict,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let conflict = match on_conflict {
        OnConflict::Nothing => format!("ON CONFLICT ({}) DO NOTHING", names[..key].join(", ")),
        OnConflict::Update => format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            names[..key].join(", "),
            names[key..]
                .iter()
                .map(|n| format!("{n} = excluded.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    match tx.backend() {
        Backend::Postgres => {
            let mut arrays = Vec::with_capacity(names.len());
            let mut casts = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                casts.push(format!("${}::{}", i + 1, pg_array_type(&rows[0][i])));
                arrays.push(pg_column(rows, i)?);
            }
            let sql = format!(
                "INSERT INTO {table} ({}) SELECT * FROM UNNEST({}) {conflict}",
                names.join(", "),
                casts.join(", ")
            );
            tx.exec(&sql, &arrays).await?;
        }
        Backend::Sqlite => {
            let per = (SQLITE_PARAMS / names.len()).clamp(1, SQLITE_ROWS);
            for chunk in rows.chunks(per) {
                let mut args = Vec::with_capacity(chunk.len() * names.len());
                let mut tuples = Vec::with_capacity(chunk.len());
                for row in chunk {
                    let start = args.len();
                    args.extend(row.iter().cloned());
                    let params: Vec<String> =
                        (start + 1..=args.len()).map(|i| format!("${i}")).collect();
                    tuples.push(format!("({})", params.join(", ")));
                }
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES {} {conflict}",
                    names.join(", "),
                    tuples.join(", ")
                );
                tx.exec(&sql, &args).await?;
            }
        }
    }
    Ok(())
}

/// The stored states of `ids` (missing ones are absent), one query per batch on PostgreSQL
/// (`= ANY`), `IN` chunks on SQLite.
async fn load_states(
    tx: &mut Tx,
    sfx: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, RequestState>, sqlx::Error> {
    let mut out = HashMap::with_capacity(ids.len());
    let mut rows = Vec::new();
    match tx.backend() {
        Backend::Postgres => {
            let arr = Val::TextArr(ids.iter().map(|id| Some(id.to_string())).collect());
            rows = tx
                .fetch(
                    &format!("SELECT state FROM request_state{sfx} WHERE request_id = ANY($1)"),
                    &[arr],
                )
                .await?;
        }
        Backend::Sqlite => {
            for chunk in ids.chunks(SQLITE_ROWS) {
                let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                let args: Vec<Val> = chunk.iter().map(|id| id.to_string().into()).collect();
                rows.extend(
                    tx.fetch(
                        &format!(
                            "SELECT state FROM request_state{sfx} WHERE request_id IN ({})",
                            params.join(", ")
                        ),
                        &args,
                    )
                    .await?,
                );
            }
        }
    }
    for row in rows {
        if let Some(text) = row.text(0)? {
            let state: RequestState =
                serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            out.insert(state.request_id, state);
        }
    }
    Ok(out)
}

/// The `requests` projector over a batch: the touched states are read in one query, folded in
/// memory, and written back once each with multi-row upserts (state, summary, the referrals
/// changed by this batch).
async fn apply_requests(
    tx: &mut Tx,
    sfx: &str,
    commits: &[&LoggedCommit],
) -> Result<(), sqlx::Error> {
    let Some(first) = commits.first().map(|c| c.position) else {
        return Ok(());
    };
    let mut order: Vec<Uuid> = Vec::new();
    let mut seen: HashSet<Uuid> = HashSet::new();
    for lc in commits {
        if seen.insert(lc.commit.request_id) {
            order.push(lc.commit.request_id);
        }
    }
    let mut states = load_states(tx, sfx, &order).await?;
    for lc in commits {
        let id = lc.commit.request_id;
        for env in &lc.commit.events {
            // The engine's own streams (reference data, digests) are not requests.
            if !env.event.kind().is_request_event() {
                continue;
            }
            match states.get_mut(&id) {
                Some(state) => state.apply(env, lc.position),
                None => match RequestState::start(env, lc.position) {
                    Some(state) => {
                        states.insert(id, state);
                    }
                    None => {
                        tracing::warn!(request = %id, kind = env.event.kind().as_str(), "event before request_received; skipped");
                    }
                },
            }
        }
    }
    let mut state_rows = Vec::with_capacity(order.len());
    let mut summary_rows = Vec::with_capacity(order.len());
    let mut referral_rows = Vec::new();
    let mut part_rows = Vec::new();
    for id in &order {
        let Some(state) = states.get(id) else {
            continue;
        };
        // Only states this batch touched (a state loaded but left alone keeps its position).
        if state.last_position < first {
            continue;
        }
        let json = serde_json::to_string(state).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let rid = state.request_id.to_string();
        state_rows.push(vec![
            rid.clone().into(),
            json.into(),
            (state.last_position as i64).into(),
        ]);
        summary_rows.push(summary_values(state.summary()));
        // A refolded state may have lost referrals or parts: its rows are written whole.
        let since = if state.refolded {
            clear_unit_rows(tx, sfx, &rid).await?;
            0
        } else {
            first
        };
        for r in state.referrals.iter().filter(|r| r.last_position >= since) {
            referral_rows.push(vec![
                rid.clone().into(),
                i64::from(r.number).into(),
                r.department.clone().into(),
                r.referred_at.into(),
                periods(r.referred_at).2.into(),
                r.sign_off_due_at.into(),
                r.signed_at.into(),
                r.returned_at.into(),
                (r.last_position as i64).into(),
            ]);
        }
        for p in state.parts.iter().filter(|p| p.last_position >= since) {
            part_rows.push(part_values(&rid, p));
        }
    }
    insert_rows(
        tx,
        &format!("request_state{sfx}"),
        &["request_id", "state", "last_position"],
        1,
        &state_rows,
        OnConflict::Update,
    )
    .await?;
    insert_rows(
        tx,
        &format!("request_summary{sfx}"),
        SUMMARY_NAMES,
        1,
        &summary_rows,
        OnConflict::Update,
    )
    .await?;
    insert_rows(
        tx,
        &format!("department_referrals{sfx}"),
        &[
            "request_id",
            "referral_number",
            "department",
            "referred_at",
            "referred_month",
            "sign_off_due_at",
            "signed_at",
            "returned_at",
            "last_position",
        ],
        2,
        &referral_rows,
        OnConflict::Update,
    )
    .await?;
    insert_rows(
        tx,
        &format!("unit_parts{sfx}"),
        PART_NAMES,
        4,
        &part_rows,
        OnConflict::Update,
    )
    .await?;
    Ok(())
}

/// Deletes the referral and part rows of request `rid`, which its refolded state rewrites.
async fn clear_unit_rows(tx: &mut Tx, sfx: &str, rid: &str) -> Result<(), sqlx::Error> {
    for table in ["department_referrals", "unit_parts"] {
        tx.exec(
            &format!("DELETE FROM {table}{sfx} WHERE request_id = $1"),
            &[rid.to_owned().into()],
        )
        .await?;
    }
    Ok(())
}

/// The columns of `unit_parts` in [`part_values`] order (the first four are the key).
const PART_NAMES: &[&str] = &[
    "request_id",
    "kind",
    "number",
    "department",
    "status",
    "due_at",
    "signed_at",
    "reported_at",
    "closed_at",
    "is_open",
    "last_position",
];

/// One `unit_parts` row of request `rid` in [`PART_NAMES`] order.
fn part_values(rid: &str, p: &Part) -> Vec<Val> {
    vec![
        rid.to_owned().into(),
        p.kind.clone().into(),
        i64::from(p.number).into(),
        p.department.clone().into(),
        p.status().to_owned().into(),
        p.due_at.into(),
        p.signed_at.into(),
        p.reported_at.into(),
        p.closed_at.into(),
        p.open().into(),
        (p.last_position as i64).into(),
    ]
}

/// The columns of `request_summary` in [`summary_values`] order.
const SUMMARY_NAMES: &[&str] = &[
    "request_id",
    "stage",
    "kind",
    "channel",
    "street",
    "community",
    "grid",
    "category",
    "catalogue_item",
    "request_type",
    "urgency",
    "lead_department",
    "owner",
    "assignee",
    "assignee_unit",
    "anonymous",
    "received_at",
    "received_day",
    "received_week",
    "received_month",
    "accepted_at",
    "declined_at",
    "classified_at",
    "referred_at",
    "signed_at",
    "first_contact_at",
    "responded_at",
    "replied_at",
    "reply_outcome",
    "rated_at",
    "archived_at",
    "response_due_at",
    "completion_due_at",
    "due_at",
    "response_on_time",
    "completed_on_time",
    "handling_seconds",
    "overdue",
    "is_open",
    "dispatched",
    "satisfaction",
    "resolution",
    "rating_excluded",
    "reopen_count",
    "referral_returns",
    "escalation_level",
    "last_position",
    "paused_since",
    "satisfaction_excluded",
    "reminded_at",
    "warned_at",
    "marked_overdue_at",
    "escalated_at",
    "lat",
    "lon",
    "requested_item",
    "answers",
    "callback_attempts",
    "callback_at",
    "callback_on_time",
    "merged_into",
    "micro_grid",
    "routing_rule",
    "routing_overridden",
];

/// One `request_summary` row in [`SUMMARY_NAMES`] order.
fn summary_values(s: Summary) -> Vec<Val> {
    vec![
        s.request_id.into(),
        s.stage.into(),
        s.kind.into(),
        s.channel.into(),
        s.street.into(),
        s.community.into(),
        s.grid.into(),
        s.category.into(),
        s.catalogue_item.into(),
        s.request_type.into(),
        s.urgency.into(),
        s.lead_department.into(),
        s.owner.into(),
        s.assignee.into(),
        s.assignee_unit.into(),
        s.anonymous.into(),
        s.received_at.into(),
        s.received_day.into(),
        s.received_week.into(),
        s.received_month.into(),
        s.accepted_at.into(),
        s.declined_at.into(),
        s.classified_at.into(),
        s.referred_at.into(),
        s.signed_at.into(),
        s.first_contact_at.into(),
        s.responded_at.into(),
        s.replied_at.into(),
        s.reply_outcome.into(),
        s.rated_at.into(),
        s.archived_at.into(),
        s.response_due_at.into(),
        s.completion_due_at.into(),
        s.due_at.into(),
        s.response_on_time.into(),
        s.completed_on_time.into(),
        s.handling_seconds.into(),
        s.overdue.into(),
        s.open.into(),
        s.dispatched.into(),
        s.satisfaction.into(),
        s.resolution.into(),
        s.rating_excluded.into(),
        s.reopen_count.into(),
        s.referral_returns.into(),
        s.escalation_level.into(),
        s.last_position.into(),
        s.paused_since.into(),
        s.satisfaction_excluded.into(),
        s.reminded_at.into(),
        s.warned_at.into(),
        s.marked_overdue_at.into(),
        s.escalated_at.into(),
        s.lat.into(),
        s.lon.into(),
        s.requested_item.into(),
        s.answers.into(),
        s.callback_attempts.into(),
        s.callback_at.into(),
        s.callback_on_time.into(),
        s.merged_into.into(),
        s.micro_grid.into(),
        s.routing_rule.into(),
        s.routing_overridden.into(),
    ]
}
