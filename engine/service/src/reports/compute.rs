//! The one function that computes a rate report's figures: [`compute`] folds the log up to a
//! position into a scratch SQLite projection and queries it with deadlines judged at a recorded
//! instant. Publishing and replaying both call it, so a replay at the recorded position and
//! instant yields the same canonical bytes as were sent.
//!
//! Figures hold integers, strings and `null` only (rates are fixed-point percent strings), so
//! their JSON bytes survive storage and decoding unchanged.

use std::collections::BTreeMap;

use chrono::{NaiveDate, SecondsFormat};
use engine_core::directory::Directory;
use projections::Projections;
use projections::fold::Summary;
use projections::query::{
    Counts, Dim, Filter, ListQuery, Period, RateRow, Rates, RequestList, StatsQuery, Weights,
};
use schemas::envelope::ID_NAMESPACE;
use schemas::event::{FigureChange, ReportLevel};
use schemas::{LoggedCommit, Timestamp};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::ReportError;
use crate::audit::replay::Scratch;
use engine_log::EventLog;

/// Version of the formulas and layout of the figures; recorded with every revision.
pub const FORMULA_VERSION: &str = "rate-report/1";
/// Commits folded per batch.
const FOLD_BATCH_LEN: usize = 512;
/// Hot categories listed.
const HOT_CATEGORIES: usize = 5;
/// Overdue cases listed individually (all are counted).
const OVERDUE_LISTED: usize = 100;
/// Rows per page while walking request lists.
const PAGE: u32 = 1000;

/// The period a report covers, in Asia/Shanghai days by received date (as the projections
/// cut them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportPeriod {
    /// A month, `YYYY-MM`.
    Month(String),
    /// An ISO week, `YYYY-Www`.
    Week(String),
    /// Days `from..=to`, written `YYYY-MM-DD..YYYY-MM-DD`.
    Range(NaiveDate, NaiveDate),
}

impl ReportPeriod {
    /// Parses `2026-10`, `2026-W43` or `2026-10-01..2026-10-15`.
    pub fn parse(s: &str) -> Result<ReportPeriod, ReportError> {
        let bad = |why: &str| {
            ReportError::invalid(
                "period",
                format!(
                    "period {s:?}: {why} (expected YYYY-MM, YYYY-Www or YYYY-MM-DD..YYYY-MM-DD)"
                ),
            )
        };
        if let Some((a, b)) = s.split_once("..") {
            let day =
                |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad("bad day"));
            let (from, to) = (day(a)?, day(b)?);
            if to < from {
                return Err(bad("range ends before it starts"));
            }
            return Ok(ReportPeriod::Range(from, to));
        }
        if let Some((y, w)) = s.split_once("-W") {
            let ok = y.len() == 4
                && y.chars().all(|c| c.is_ascii_digit())
                && w.len() == 2
                && w.parse::<u32>().is_ok_and(|w| (1..=53).contains(&w));
            return if ok {
                Ok(ReportPeriod::Week(s.to_string()))
            } else {
                Err(bad("bad week"))
            };
        }
        NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 7)
            .map(|_| ReportPeriod::Month(s.to_string()))
            .ok_or_else(|| bad("bad month"))
    }

    /// The canonical text of the period.
    pub fn key(&self) -> String {
        match self {
            ReportPeriod::Month(m) => m.clone(),
            ReportPeriod::Week(w) => w.clone(),
            ReportPeriod::Range(a, b) => format!("{a}..{b}"),
        }
    }

    fn grain_and_keys(&self) -> (Period, String, String) {
        match self {
            ReportPeriod::Month(m) => (Period::Month, m.clone(), m.clone()),
            ReportPeriod::Week(w) => (Period::Week, w.clone(), w.clone()),
            ReportPeriod::Range(a, b) => (Period::Day, a.to_string(), b.to_string()),
        }
    }
}

/// What a report is about: a unit at a level, over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// Level of the reporting unit.
    pub level: ReportLevel,
    /// The unit's code.
    pub unit: String,
    /// The period.
    pub period: ReportPeriod,
}

impl ReportSpec {
    /// Checks the unit against the directory: a street must be one of its streets, a district
    /// must be its district; a city code is free (the directory does not name the city) but must
    /// be a subject-safe token.
    pub fn validate(&self, directory: &Directory) -> Result<(), ReportError> {
        let token = !self.unit.is_empty()
            && self.unit.len() <= 64
            && self
                .unit
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !token {
            return Err(ReportError::invalid(
                "unit",
                format!(
                    "unit {:?}: 1-64 ASCII letters, digits, '-' or '_'",
                    self.unit
                ),
            ));
        }
        let known = match self.level {
            ReportLevel::Street => directory.grids().any(|g| g.street == self.unit),
            ReportLevel::District => directory.district() == self.unit,
            ReportLevel::City => true,
        };
        if !known {
            return Err(ReportError::invalid(
                "unit",
                format!(
                    "no {} {:?} in the directory (district {:?})",
                    self.level.as_str(),
                    self.unit,
                    directory.district()
                ),
            ));
        }
        Ok(())
    }

    /// The report's id (and stream id): UUIDv5 of level, unit and period.
    pub fn report_id(&self) -> Uuid {
        report_id(self.level, &self.unit, &self.period.key())
    }
}

/// The report id of a level, unit and period.
pub fn report_id(level: ReportLevel, unit: &str, period: &str) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!("rate-report:{}:{unit}:{period}", level.as_str()).as_bytes(),
    )
}

/// The NATS message id of one revision: UUIDv5 of level, unit, period and revision.
pub fn message_id(level: ReportLevel, unit: &str, period: &str, revision: u32) -> Uuid {
    Uuid::new_v5(
        &ID_NAMESPACE,
        format!(
            "rate-report-message:{}:{unit}:{period}:{revision}",
            level.as_str()
        )
        .as_bytes(),
    )
}

/// The streets of the directory, sorted.
pub fn streets(directory: &Directory) -> Vec<String> {
    let mut out: Vec<String> = directory.grids().map(|g| g.street).collect();
    out.sort();
    out.dedup();
    out
}

/// Canonical JSON bytes of figures: keys sorted, no whitespace.
pub fn canonical_bytes(figures: &Value) -> Vec<u8> {
    serde_json::to_vec(figures).expect("JSON values always serialise")
}

/// SHA-256 (hex) of the canonical bytes of figures.
pub fn figures_sha256(figures: &Value) -> String {
    hex::encode(Sha256::digest(canonical_bytes(figures)))
}

/// Computes the figures of `spec` from the log up to `position`, deadlines judged at `as_of`.
pub async fn compute(
    log: &EventLog,
    position: u64,
    spec: &ReportSpec,
    as_of: Timestamp,
) -> Result<Value, ReportError> {
    let mut all = compute_many(log, position, &[(spec, as_of)]).await?;
    Ok(all.pop().expect("one figure set per spec"))
}

/// [`compute`] for several (spec, instant) pairs over one fold of the log: the same figures,
/// byte for byte, as computing each alone (the fold is the same; the queries only read it).
pub async fn compute_many(
    log: &EventLog,
    position: u64,
    items: &[(&ReportSpec, Timestamp)],
) -> Result<Vec<Value>, ReportError> {
    let scratch = Scratch::create(None).await?;
    let outcome = async {
        fold_up_to(log, &scratch.projections, position).await?;
        let mut out = Vec::with_capacity(items.len());
        for (spec, as_of) in items {
            out.push(figures(&scratch.projections, spec, *as_of).await?);
        }
        Ok(out)
    }
    .await;
    scratch.close().await;
    outcome
}

/// Applies every commit at or below `position` to `target`, through every projector.
async fn fold_up_to(
    log: &EventLog,
    target: &Projections,
    position: u64,
) -> Result<(), ReportError> {
    let mut next = 1u64;
    while next <= position {
        let batch = log.read_from(next, FOLD_BATCH_LEN).await?;
        let Some(last) = batch.last().map(|c| c.position) else {
            break;
        };
        let chosen: Vec<LoggedCommit> = batch
            .into_iter()
            .filter(|c| c.position <= position)
            .collect();
        for projector in Projections::projector_names() {
            target.apply(projector, &chosen).await?;
        }
        next = last + 1;
    }
    Ok(())
}

/// A rate as a percent string with two decimals (`null` when its denominator is 0).
fn pct(rate: Option<f64>) -> Value {
    rate.map_or(Value::Null, |r| Value::String(format!("{:.2}", r * 100.0)))
}

fn rates_value(r: &Rates) -> Value {
    json!({
        "response_rate": pct(r.response_rate),
        "on_time_completion_rate": pct(r.on_time_completion_rate),
        "resolution_rate": pct(r.resolution_rate),
        "satisfaction_rate": pct(r.satisfaction_rate),
        "strict_satisfaction_rate": pct(r.strict_satisfaction_rate),
        "satisfaction_score": r.satisfaction_score.map_or(Value::Null, |s| Value::String(format!("{s:.2}"))),
        "reopen_rate": pct(r.reopen_rate),
        "referral_return_rate": pct(r.referral_return_rate),
        "handling_p50_seconds": r.handling_p50_seconds,
        "handling_p90_seconds": r.handling_p90_seconds,
    })
}

fn counts_value(c: &Counts) -> Value {
    serde_json::to_value(c).expect("counts serialise")
}

/// Sums counts over rows; a single row keeps its rates (with percentiles), several rows get
/// rates recomputed from the summed counts (percentiles cannot be summed: `null`).
fn merge(rows: &[&RateRow]) -> (Counts, Rates) {
    if let [one] = rows {
        return (one.counts.clone(), one.rates.clone());
    }
    let mut c = Counts::default();
    for r in rows {
        let x = &r.counts;
        c.received += x.received;
        c.accepted += x.accepted;
        c.response_due += x.response_due;
        c.responded_on_time += x.responded_on_time;
        c.due += x.due;
        c.completed += x.completed;
        c.completed_on_time += x.completed_on_time;
        c.rated += x.rated;
        c.resolved += x.resolved;
        c.satisfaction_rated += x.satisfaction_rated;
        c.satisfied += x.satisfied;
        c.basically_satisfied += x.basically_satisfied;
        c.dissatisfied += x.dissatisfied;
        c.reopened += x.reopened;
        c.referred += x.referred;
        c.returned += x.returned;
    }
    let rates = c.rates();
    (c, rates)
}

fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The rate rows of `spec`'s unit and period, grouped by `group_by`.
async fn rows(
    p: &Projections,
    spec: &ReportSpec,
    group_by: Vec<Dim>,
    as_of: Timestamp,
) -> Result<Vec<RateRow>, ReportError> {
    let (period, from, to) = spec.period.grain_and_keys();
    Ok(p.stats(&StatsQuery {
        period,
        group_by,
        filter: Filter {
            dims: unit_filter(spec),
            from: Some(from),
            to: Some(to),
            dispatched_only: false,
        },
        now: as_of,
    })
    .await?)
}

fn unit_filter(spec: &ReportSpec) -> Vec<(Dim, String)> {
    match spec.level {
        ReportLevel::Street => vec![(Dim::Street, spec.unit.clone())],
        // The engine serves one district: its whole log is the district (and, at city level,
        // the district's share of the city).
        ReportLevel::District | ReportLevel::City => vec![],
    }
}

fn sub_dim(level: ReportLevel) -> Dim {
    match level {
        ReportLevel::Street => Dim::Community,
        ReportLevel::District | ReportLevel::City => Dim::Street,
    }
}

/// Walks a list page by page and counts the rows `matches` accepts; with `keep_rows` it also
/// returns them (otherwise only counted, so a long list is never held in memory).
async fn walk(
    p: &Projections,
    list: RequestList,
    spec: &ReportSpec,
    as_of: Timestamp,
    matches: impl Fn(&Summary) -> bool,
    keep_rows: bool,
) -> Result<(usize, Vec<Summary>), ReportError> {
    let mut counted = 0;
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = p
            .requests(&ListQuery {
                list: list.clone(),
                filter: Filter {
                    dims: unit_filter(spec),
                    ..Filter::default()
                },
                since_position: None,
                limit: PAGE,
                cursor: cursor.take(),
                now: as_of,
            })
            .await?;
        for row in page.items.into_iter().filter(&matches) {
            counted += 1;
            if keep_rows {
                out.push(row);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok((counted, out)),
        }
    }
}

/// The figures of `spec` as the projections in `p` stand, judged at `as_of`.
async fn figures(
    p: &Projections,
    spec: &ReportSpec,
    as_of: Timestamp,
) -> Result<Value, ReportError> {
    let weights = Weights::default();
    // Totals.
    let all = rows(p, spec, vec![], as_of).await?;
    let (counts, rates) = merge(&all.iter().collect::<Vec<_>>());
    let composite = weights.composite(&rates);

    // Sub-units, ranked by composite (descending, then code).
    let dim = sub_dim(spec.level);
    let by_sub = rows(p, spec, vec![dim], as_of).await?;
    let mut groups: BTreeMap<String, Vec<&RateRow>> = BTreeMap::new();
    for r in &by_sub {
        let code = r
            .dims
            .get(dim.name())
            .cloned()
            .flatten()
            .unwrap_or_else(|| "-".into());
        groups.entry(code).or_default().push(r);
    }
    let mut ranked: Vec<(String, Counts, Rates, Option<f64>)> = groups
        .into_iter()
        .map(|(code, rs)| {
            let (c, r) = merge(&rs);
            let comp = weights.composite(&r);
            (code, c, r, comp)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.3.unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.3.unwrap_or(f64::NEG_INFINITY))
            .then_with(|| a.0.cmp(&b.0))
    });
    let mut subunits = Map::new();
    for (i, (code, c, r, comp)) in ranked.iter().enumerate() {
        subunits.insert(
            code.clone(),
            json!({
                "rank": i + 1,
                "counts": counts_value(c),
                "rates": rates_value(r),
                "composite": comp.map(|s| format!("{s:.2}")),
            }),
        );
    }

    // Hot categories: most received in the period.
    let by_cat = rows(p, spec, vec![Dim::Category], as_of).await?;
    let mut cats: BTreeMap<String, i64> = BTreeMap::new();
    for r in &by_cat {
        let code = r
            .dims
            .get("category")
            .cloned()
            .flatten()
            .unwrap_or_else(|| "unclassified".into());
        *cats.entry(code).or_default() += r.counts.received;
    }
    let mut cats: Vec<(String, i64)> = cats.into_iter().collect();
    cats.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut hot = Map::new();
    for (i, (code, n)) in cats.iter().take(HOT_CATEGORIES).enumerate() {
        hot.insert(code.clone(), json!({"rank": i + 1, "received": n}));
    }

    // Backlog and overdue cases at `as_of`, whatever their period.
    let (open, _) = walk(p, RequestList::All, spec, as_of, |s| s.open, false).await?;
    let (_, overdue) = walk(p, RequestList::Overdue, spec, as_of, |_| true, true).await?;
    let mut listed: Vec<&Summary> = overdue.iter().collect();
    listed.sort_by(|a, b| {
        a.due_at
            .cmp(&b.due_at)
            .then_with(|| a.request_id.cmp(&b.request_id))
    });
    let mut cases = Map::new();
    for s in listed.iter().take(OVERDUE_LISTED) {
        cases.insert(
            s.request_id.clone(),
            json!({
                "street": s.street,
                "community": s.community,
                "category": s.category,
                "lead_department": s.lead_department,
                "stage": s.stage,
                "received_at": ts(s.received_at),
                "due_at": ts(s.due_at),
                "escalation_level": s.escalation_level,
            }),
        );
    }

    Ok(json!({
        "level": spec.level.as_str(),
        "unit": spec.unit,
        "period": spec.period.key(),
        "totals": {
            "counts": counts_value(&counts),
            "rates": rates_value(&rates),
            "composite": composite.map(|s| format!("{s:.2}")),
        },
        "ranking": {"by": dim.name(), "weights": format!("{}/{}/{}", weights.response, weights.resolution, weights.satisfaction), "units": subunits},
        "hot_categories": hot,
        "backlog": {"open": open, "overdue": overdue.len()},
        "overdue_cases": {"total": overdue.len(), "listed": cases},
    }))
}

/// Figures that differ between `old` and `new`, as JSON Pointers with both values, in
/// pointer order.
pub fn diff(old: &Value, new: &Value) -> Vec<FigureChange> {
    let mut out = Vec::new();
    diff_at(String::new(), old, new, &mut out);
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn diff_at(path: String, old: &Value, new: &Value, out: &mut Vec<FigureChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{path}/{}", escape(k));
                diff_at(
                    p,
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(FigureChange {
            path,
            from: a.clone(),
            to: b.clone(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_refuse_nonsense() {
        assert_eq!(
            ReportPeriod::parse("2026-10").unwrap(),
            ReportPeriod::Month("2026-10".into())
        );
        assert_eq!(
            ReportPeriod::parse("2026-W43").unwrap(),
            ReportPeriod::Week("2026-W43".into())
        );
        let r = ReportPeriod::parse("2026-10-01..2026-10-15").unwrap();
        assert_eq!(r.key(), "2026-10-01..2026-10-15");
        for bad in [
            "2026-13",
            "2026-W54",
            "2026-W4",
            "26-10",
            "2026-10-15..2026-10-01",
            "",
        ] {
            let e = ReportPeriod::parse(bad).unwrap_err();
            assert_eq!(e.body().field.as_deref(), Some("period"), "{bad}");
        }
    }

    #[test]
    fn diff_names_each_changed_leaf() {
        let a = json!({"totals": {"rated": 3, "rate": "50.00"}, "cases": {"x": {"s": 1}}});
        let b = json!({"totals": {"rated": 4, "rate": "50.00"}, "cases": {"y": {"s": 1}}});
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/cases/x", "/cases/y", "/totals/rated"]);
        assert_eq!(d[2].from, json!(3));
        assert_eq!(d[2].to, json!(4));
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = report_id(ReportLevel::Street, "jd-01", "2026-10");
        assert_eq!(a, report_id(ReportLevel::Street, "jd-01", "2026-10"));
        assert_ne!(a, report_id(ReportLevel::Street, "jd-01", "2026-11"));
        assert_ne!(
            message_id(ReportLevel::Street, "jd-01", "2026-10", 1),
            message_id(ReportLevel::Street, "jd-01", "2026-10", 2)
        );
    }
}
