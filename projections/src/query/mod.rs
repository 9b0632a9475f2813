//! The read side: rates, overdue and due-soon lists, department rankings, worklists, the
//! request list and the report-upward ledger. Every time-dependent answer takes `now`.
//!
//! Formulas are those of docs/metrics.md; each function computing one names it.
//! Lists page with a cursor (`<key>.<id>` of the last row: its log position or due instant in
//! microseconds, and its UUID; see [`encode_cursor`]) and accept
//! `since_position` (rows whose `last_position` is greater).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::db::{Row, Val};
use crate::fold::Summary;
use crate::{ProjectionError, Projections};

mod assessment;
mod callbacks;
mod lists;
mod map;
mod neighbours;
pub use neighbours::NEIGHBOURS_MAX;
mod parts;
mod rates;

pub use assessment::{Assessment, TIERS, UnitLevel, UnitRank, Weights};
pub use callbacks::Callbacks;
pub use lists::UpwardReport;
pub use map::{MAP_POINTS_MAX, MapPoint};
pub use rates::DepartmentRank;

/// The columns of `request_summary`, in [`summary_from_row`] order.
pub const SUMMARY_COLS: &str = "request_id, stage, kind, channel, street, community, grid, category, \
catalogue_item, request_type, urgency, lead_department, owner, anonymous, received_at, received_day, \
received_week, received_month, accepted_at, declined_at, classified_at, referred_at, signed_at, \
first_contact_at, responded_at, replied_at, reply_outcome, rated_at, archived_at, response_due_at, \
completion_due_at, due_at, response_on_time, completed_on_time, handling_seconds, overdue, is_open, \
dispatched, satisfaction, resolution, rating_excluded, reopen_count, referral_returns, escalation_level, \
last_position, paused_since, satisfaction_excluded, reminded_at, warned_at, marked_overdue_at, \
escalated_at, lat, lon, requested_item, answers, assignee, assignee_unit, callback_attempts, callback_at, callback_on_time, merged_into, micro_grid, routing_rule, routing_overridden";

fn req<T>(v: Option<T>, col: &str) -> Result<T, sqlx::Error> {
    v.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: col.to_owned(),
        source: "unexpected NULL".into(),
    })
}

fn summary_from_row(r: &Row) -> Result<Summary, sqlx::Error> {
    Ok(Summary {
        request_id: req(r.text(0)?, "request_id")?,
        stage: req(r.text(1)?, "stage")?,
        kind: req(r.text(2)?, "kind")?,
        channel: req(r.text(3)?, "channel")?,
        street: req(r.text(4)?, "street")?,
        community: req(r.text(5)?, "community")?,
        grid: req(r.text(6)?, "grid")?,
        category: r.text(7)?,
        catalogue_item: r.text(8)?,
        request_type: r.text(9)?,
        urgency: r.text(10)?,
        lead_department: r.text(11)?,
        owner: r.text(12)?,
        anonymous: req(r.bool(13)?, "anonymous")?,
        received_at: req(r.ts(14)?, "received_at")?,
        received_day: req(r.text(15)?, "received_day")?,
        received_week: req(r.text(16)?, "received_week")?,
        received_month: req(r.text(17)?, "received_month")?,
        accepted_at: r.ts(18)?,
        declined_at: r.ts(19)?,
        classified_at: r.ts(20)?,
        referred_at: r.ts(21)?,
        signed_at: r.ts(22)?,
        first_contact_at: r.ts(23)?,
        responded_at: r.ts(24)?,
        replied_at: r.ts(25)?,
        reply_outcome: r.text(26)?,
        rated_at: r.ts(27)?,
        archived_at: r.ts(28)?,
        response_due_at: req(r.ts(29)?, "response_due_at")?,
        completion_due_at: r.ts(30)?,
        due_at: req(r.ts(31)?, "due_at")?,
        response_on_time: r.bool(32)?,
        completed_on_time: r.bool(33)?,
        handling_seconds: r.int(34)?,
        overdue: req(r.bool(35)?, "overdue")?,
        open: req(r.bool(36)?, "is_open")?,
        dispatched: req(r.bool(37)?, "dispatched")?,
        satisfaction: r.text(38)?,
        resolution: r.text(39)?,
        rating_excluded: req(r.bool(40)?, "rating_excluded")?,
        reopen_count: req(r.int(41)?, "reopen_count")?,
        referral_returns: req(r.int(42)?, "referral_returns")?,
        escalation_level: r.text(43)?,
        last_position: req(r.int(44)?, "last_position")?,
        paused_since: r.ts(45)?,
        satisfaction_excluded: req(r.bool(46)?, "satisfaction_excluded")?,
        reminded_at: r.ts(47)?,
        warned_at: r.ts(48)?,
        marked_overdue_at: r.ts(49)?,
        escalated_at: r.ts(50)?,
        lat: r.float(51)?,
        lon: r.float(52)?,
        requested_item: r.text(53)?,
        answers: r.text(54)?,
        assignee: r.text(55)?,
        assignee_unit: r.text(56)?,
        callback_attempts: req(r.int(57)?, "callback_attempts")?,
        callback_at: r.ts(58)?,
        callback_on_time: r.bool(59)?,
        merged_into: r.text(60)?,
        micro_grid: r.text(61)?,
        routing_rule: r.text(62)?,
        routing_overridden: r.bool(63)?,
        part: None,
    })
}

/// Period grain of the rates, cut in Asia/Shanghai (UTC+8) by received date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// `YYYY-MM-DD`.
    Day,
    /// ISO week, `YYYY-Www`.
    Week,
    /// `YYYY-MM`.
    #[default]
    Month,
}

impl Period {
    fn column(self) -> &'static str {
        match self {
            Period::Day => "received_day",
            Period::Week => "received_week",
            Period::Month => "received_month",
        }
    }

    /// Parses `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }
}

/// A dimension rates can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// Street (街道).
    Street,
    /// Community (社区).
    Community,
    /// Grid (网格).
    Grid,
    /// Micro-grid (微网格); rows located in no micro-grid group under null.
    MicroGrid,
    /// Lead department.
    Department,
    /// Catalogue category.
    Category,
    /// Intake channel.
    Channel,
    /// Current stage of the lifecycle (`received`, `in_progress`, `archived`, …), as of the
    /// read models' position — a snapshot, not the stage in the period.
    Stage,
}

impl Dim {
    /// Every dimension.
    pub const ALL: [Dim; 8] = [
        Dim::Street,
        Dim::Community,
        Dim::Grid,
        Dim::MicroGrid,
        Dim::Department,
        Dim::Category,
        Dim::Channel,
        Dim::Stage,
    ];

    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Street => "street",
            Dim::Community => "community",
            Dim::Grid => "grid",
            Dim::MicroGrid => "micro_grid",
            Dim::Department => "department",
            Dim::Category => "category",
            Dim::Channel => "channel",
            Dim::Stage => "stage",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Dim::Department => "lead_department",
            other => other.name(),
        }
    }

    /// Every wire name, comma-separated (for messages and documentation).
    pub fn names() -> String {
        Dim::ALL.map(Dim::name).join(", ")
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// Filters over `request_summary`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Equality filters per dimension.
    pub dims: Vec<(Dim, String)>,
    /// First period key included (same grain as the query's period).
    pub from: Option<String>,
    /// Last period key included.
    pub to: Option<String>,
    /// Only requests referred to a department at least once (unit assessment scope).
    pub dispatched_only: bool,
}

impl Filter {
    fn sql(&self, period: Period, args: &mut Vec<Val>) -> String {
        let mut clauses = vec!["1 = 1".to_owned()];
        for (d, v) in &self.dims {
            args.push(v.clone().into());
            clauses.push(format!("{} = ${}", d.column(), args.len()));
        }
        if let Some(f) = &self.from {
            args.push(f.clone().into());
            clauses.push(format!("{} >= ${}", period.column(), args.len()));
        }
        if let Some(t) = &self.to {
            args.push(t.clone().into());
            clauses.push(format!("{} <= ${}", period.column(), args.len()));
        }
        if self.dispatched_only {
            clauses.push("dispatched".to_owned());
        }
        clauses.join(" AND ")
    }
}

/// The counts behind every rate of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Requests received.
    pub received: i64,
    /// Requests accepted.
    pub accepted: i64,
    /// Accepted requests whose response is due: responded, or response deadline ≤ now.
    pub response_due: i64,
    /// Accepted requests responded at or before the response deadline.
    pub responded_on_time: i64,
    /// Accepted requests whose completion is due: replied, or completion clock running (not
    /// paused) and completion deadline ≤ now.
    pub due: i64,
    /// Requests replied (办结).
    pub completed: i64,
    /// Requests replied at or before the completion deadline in force.
    pub completed_on_time: i64,
    /// Requests with a counting rating (not corrected away, not excluded by appeal).
    pub rated: i64,
    /// Rated requests rated `resolved`.
    pub resolved: i64,
    /// Rated service requests (dispute mediation excluded): the satisfaction denominator.
    pub satisfaction_rated: i64,
    /// Of those, `satisfied`.
    pub satisfied: i64,
    /// Of those, `basically_satisfied`.
    pub basically_satisfied: i64,
    /// Of those, `dissatisfied`.
    pub dissatisfied: i64,
    /// Requests reopened at least once.
    pub reopened: i64,
    /// Requests referred to a department at least once.
    pub referred: i64,
    /// Referred requests returned (退单) at least once.
    pub returned: i64,
}

/// Rates of one group (None when the denominator is 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// 响应率 = responded_on_time ÷ response_due.
    pub response_rate: Option<f64>,
    /// 按时办结率 = completed_on_time ÷ due.
    pub on_time_completion_rate: Option<f64>,
    /// 解决率 = resolved ÷ rated.
    pub resolution_rate: Option<f64>,
    /// 满意率 = (satisfied + basically_satisfied) ÷ satisfaction_rated.
    pub satisfaction_rate: Option<f64>,
    /// Strict 满意率 = satisfied ÷ satisfaction_rated.
    pub strict_satisfaction_rate: Option<f64>,
    /// Score form = (100·satisfied + 80·basically_satisfied + 0·dissatisfied) ÷ satisfaction_rated.
    pub satisfaction_score: Option<f64>,
    /// 重办率 = reopened ÷ completed.
    pub reopen_rate: Option<f64>,
    /// 回退率 = returned ÷ referred.
    pub referral_return_rate: Option<f64>,
    /// Handling time p50 in seconds (nearest rank over replied_at − received_at).
    pub handling_p50_seconds: Option<i64>,
    /// Handling time p90 in seconds.
    pub handling_p90_seconds: Option<i64>,
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

impl Counts {
    /// The rates of these counts (formulas in docs/metrics.md §Rates).
    pub fn rates(&self) -> Rates {
        Rates {
            response_rate: ratio(self.responded_on_time, self.response_due),
            on_time_completion_rate: ratio(self.completed_on_time, self.due),
            resolution_rate: ratio(self.resolved, self.rated),
            satisfaction_rate: ratio(
                self.satisfied + self.basically_satisfied,
                self.satisfaction_rated,
            ),
            strict_satisfaction_rate: ratio(self.satisfied, self.satisfaction_rated),
            satisfaction_score: ratio(
                100 * self.satisfied + 80 * self.basically_satisfied,
                self.satisfaction_rated,
            ),
            reopen_rate: ratio(self.reopened, self.completed),
            referral_return_rate: ratio(self.returned, self.referred),
            handling_p50_seconds: None,
            handling_p90_seconds: None,
        }
    }
}

/// Nearest-rank percentile of sorted values: `v[ceil(p·n) − 1]`.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// One group of the rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateRow {
    /// Period key.
    pub period: String,
    /// Grouping dimension values (dimension name → value).
    pub dims: BTreeMap<String, Option<String>>,
    /// Counts.
    pub counts: Counts,
    /// Rates.
    pub rates: Rates,
    /// Callback (回访) counts and rates.
    #[serde(default)]
    pub callbacks: Callbacks,
}

/// A rates query.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsQuery {
    /// Period grain.
    pub period: Period,
    /// Dimensions to group by (besides the period).
    pub group_by: Vec<Dim>,
    /// Filters.
    pub filter: Filter,
    /// The instant deadlines are judged against.
    pub now: DateTime<Utc>,
}

/// The deadline of a summary row is running: its completion clock is not paused. A paused
/// request is neither due nor overdue until `clock_resumed` moves its deadline (docs/metrics.md).
const RUNNING: &str = "paused_since IS NULL";

/// Columns of [`COUNTS_SQL`].
const COUNTS: usize = 16;

/// SQL of the counts; `$1` is `now`.
const COUNTS_SQL: &str = "COUNT(*), \
SUM(CASE WHEN accepted_at IS NOT NULL THEN 1 ELSE 0 END), \
SUM(CASE WHEN accepted_at IS NOT NULL AND merged_into IS NULL AND (responded_at IS NOT NULL OR response_due_at <= $1) THEN 1 ELSE 0 END), \
SUM(CASE WHEN accepted_at IS NOT NULL AND merged_into IS NULL AND response_on_time THEN 1 ELSE 0 END), \
SUM(CASE WHEN accepted_at IS NOT NULL AND merged_into IS NULL AND (replied_at IS NOT NULL OR (paused_since IS NULL AND completion_due_at <= $1)) THEN 1 ELSE 0 END), \
SUM(CASE WHEN replied_at IS NOT NULL AND merged_into IS NULL THEN 1 ELSE 0 END), \
SUM(CASE WHEN completed_on_time AND merged_into IS NULL THEN 1 ELSE 0 END), \
SUM(CASE WHEN satisfaction IS NOT NULL AND NOT rating_excluded AND merged_into IS NULL THEN 1 ELSE 0 END), \
SUM(CASE WHEN satisfaction IS NOT NULL AND NOT rating_excluded AND merged_into IS NULL AND resolution = 'resolved' THEN 1 ELSE 0 END), \
SUM(CASE WHEN satisfaction IS NOT NULL AND NOT rating_excluded AND merged_into IS NULL AND kind = 'service' AND NOT satisfaction_excluded THEN 1 ELSE 0 END), \
SUM(CASE WHEN satisfaction = 'satisfied' AND NOT rating_excluded AND merged_into IS NULL AND kind = 'service' AND NOT satisfaction_excluded THEN 1 ELSE 0 END), \
SUM(CASE WHEN satisfaction = 'basically_satisfied' AND NOT rating_excluded AND merged_into IS NULL AND kind = 'service' AND NOT satisfaction_excluded THEN 1 ELSE 0 END), \
SUM(CASE WHEN satisfaction = 'dissatisfied' AND NOT rating_excluded AND merged_into IS NULL AND kind = 'service' AND NOT satisfaction_excluded THEN 1 ELSE 0 END), \
SUM(CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END), \
SUM(CASE WHEN dispatched THEN 1 ELSE 0 END), \
SUM(CASE WHEN dispatched AND referral_returns > 0 THEN 1 ELSE 0 END)";

fn counts_from(r: &Row, start: usize) -> Result<Counts, sqlx::Error> {
    let g = |i: usize| -> Result<i64, sqlx::Error> { Ok(r.int(start + i)?.unwrap_or(0)) };
    Ok(Counts {
        received: g(0)?,
        accepted: g(1)?,
        response_due: g(2)?,
        responded_on_time: g(3)?,
        due: g(4)?,
        completed: g(5)?,
        completed_on_time: g(6)?,
        rated: g(7)?,
        resolved: g(8)?,
        satisfaction_rated: g(9)?,
        satisfied: g(10)?,
        basically_satisfied: g(11)?,
        dissatisfied: g(12)?,
        reopened: g(13)?,
        referred: g(14)?,
        returned: g(15)?,
    })
}

/// The cursor after a row: `<key>.<id>`, the row's sort key (a log position, or an instant in
/// microseconds since the epoch) and its UUID. [`CURSOR_PATTERN`] states the form.
pub fn encode_cursor(key: i64, id: &str) -> String {
    format!("{key}.{id}")
}

/// The form of [`encode_cursor`]'s cursors, as the OpenAPI document states it.
pub const CURSOR_PATTERN: &str =
    "^-?[0-9]{1,18}\\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn bad_cursor() -> ProjectionError {
    ProjectionError::InvalidParam {
        field: "cursor".into(),
        reason: "not a cursor this list made".into(),
    }
}

/// Decodes a cursor made by [`encode_cursor`]: the key and the id (a UUID, as text).
pub fn decode_cursor(c: &str) -> Result<(i64, String), ProjectionError> {
    let (key, id) = c.split_once('.').ok_or_else(bad_cursor)?;
    let key_ok = !key.is_empty()
        && key.len() <= 19
        && key
            .strip_prefix('-')
            .unwrap_or(key)
            .bytes()
            .all(|b| b.is_ascii_digit());
    let key: i64 = key.parse().ok().filter(|_| key_ok).ok_or_else(bad_cursor)?;
    let id = uuid::Uuid::try_parse(id).map_err(|_| bad_cursor())?;
    Ok((key, id.to_string()))
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What list of requests to page through.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestList {
    /// Every request, in change order (`last_position`): the incremental feed.
    All,
    /// Open requests overdue at `now`: missed deadline recorded, or clock running (not paused)
    /// and deadline in force < now; or an assisting part or whistle report still owed past its
    /// own deadline. With `?department=`: that department's lead requests so overdue and its
    /// own parts so overdue (marked with the part).
    Overdue,
    /// Open requests not overdue, clock running (not paused), whose deadline in force falls in
    /// `[now, now + window)`.
    DueSoon(Duration),
    /// A worker's inbox: open requests they own.
    Worker(String),
    /// A department's inbox: open requests it leads, and those where it owes an assisting part
    /// or a whistle report (marked with the part).
    Department(String),
    /// A person's worklist: open requests assigned to them (指派), within the unit when given.
    Person {
        /// The assignee's actor id.
        id: String,
        /// Only assignments for this unit (`assignee_unit`).
        unit: Option<String>,
    },
    /// A station's (community's) unassigned queue: received, not yet accepted or declined.
    Unassigned(String),
}

/// A list query over `request_summary`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Which list.
    pub list: RequestList,
    /// Extra equality filters.
    pub filter: Filter,
    /// Only rows changed after this log position.
    pub since_position: Option<u64>,
    /// Page size (capped at 1000).
    pub limit: u32,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// The instant deadlines are judged against.
    pub now: DateTime<Utc>,
}

impl Projections {
    /// Open requests (backlog) and, of those, overdue at `now` (a recorded miss, or a running
    /// clock past its deadline; paused requests are not).
    pub async fn backlog(&self, now: DateTime<Utc>) -> Result<(i64, i64), ProjectionError> {
        let rows = self
            .pool
            .fetch(
                &format!(
                    "SELECT COUNT(*), SUM(CASE WHEN overdue OR ({RUNNING} AND due_at < $1) THEN 1 ELSE 0 END) \
                     FROM request_summary WHERE is_open"
                ),
                &[now.into()],
            )
            .await?;
        let r = rows.first();
        Ok((
            r.map(|r| r.int(0)).transpose()?.flatten().unwrap_or(0),
            r.map(|r| r.int(1)).transpose()?.flatten().unwrap_or(0),
        ))
    }

    /// Every row of every table of `projector`, each column as text, sorted: for comparing a
    /// live projection with a rebuild.
    pub async fn snapshot(
        &self,
        projector: &str,
    ) -> Result<Vec<(String, Vec<Vec<Option<String>>>)>, ProjectionError> {
        let tables = Self::check_tables(projector)?;
        let mut out = Vec::new();
        for t in tables {
            let cols_sql = match self.backend() {
                crate::db::Backend::Postgres => {
                    "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 \
                     AND table_schema = current_schema() ORDER BY ordinal_position"
                }
                crate::db::Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
            };
            let cols: Vec<String> = self
                .pool
                .fetch(cols_sql, &[(*t).into()])
                .await?
                .iter()
                .map(|r| r.text(0).map(Option::unwrap_or_default))
                .collect::<Result<_, _>>()?;
            let select: Vec<String> = cols.iter().map(|c| format!("CAST({c} AS TEXT)")).collect();
            let order: Vec<String> = (1..=cols.len()).map(|i| i.to_string()).collect();
            let sql = format!(
                "SELECT {} FROM {t} ORDER BY {}",
                select.join(", "),
                order.join(", ")
            );
            let rows = self.pool.fetch(&sql, &[]).await?;
            let rows = rows
                .iter()
                .map(|r| {
                    (0..cols.len())
                        .map(|i| r.text(i))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push(((*t).to_owned(), rows));
        }
        Ok(out)
    }

    fn check_tables(projector: &str) -> Result<&'static [&'static str], ProjectionError> {
        crate::write::tables(projector)
            .ok_or_else(|| ProjectionError::UnknownProjector(projector.to_owned()))
    }
}
