//! What-if policies: `bianmin policy whatif` and `POST /api/v1/policy/whatif`.
//!
//! The period's slice of the log (as `bianmin replay` cuts it: requests received in
//! `[from, to)`, their events before `to`) is read once and folded into two scratch SQLite
//! projections by the same `projections` code the live read models run: one with the events as
//! recorded, one with the events re-stamped under the proposed profile
//! ([`engine_core::whatif::Restamper`]). Both are queried with deadlines judged at `to`, and
//! every rate and ranking figure is reported next to its recorded value with the delta. The
//! live read models and the log are only read. What is re-derived and what is taken as
//! recorded: docs/whatif.md.

pub mod cli;
pub mod http;
mod render;

use std::collections::BTreeMap;

use engine_core::Policy;
use engine_core::policy::{
    BUILTIN_CITY_HOTLINE_12345, BUILTIN_COMMUNITY_STATION, LoadError, Profile,
};
use engine_core::whatif::Restamper;
use indicatif::ProgressBar;
use projections::Projections;
use projections::query::{
    Assessment, Counts, Dim, Filter, Period, RateRow, Rates, StatsQuery, UnitLevel, Weights,
};
use schemas::{LoggedCommit, Timestamp};
use serde::Serialize;

pub use render::render;

use crate::audit::replay::{self, ReplaySpec, Scratch, SliceTarget};
use crate::reports::ReportError;
use engine_log::EventLog;

/// The built-in profiles a what-if may name instead of sending a file.
pub const NAMED_PROFILES: [(&str, &str); 2] = [
    ("community-station", BUILTIN_COMMUNITY_STATION),
    ("city-hotline-12345", BUILTIN_CITY_HOTLINE_12345),
];

/// What to compare: a proposed profile over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatIfSpec {
    /// The profile's label in error messages (its file name, or `profile`).
    pub profile_name: String,
    /// The proposed profile, TOML as in `deploy/policy/profiles/`.
    pub profile_text: String,
    /// Start of the period (inclusive).
    pub from: Timestamp,
    /// End of the period (exclusive); deadlines are judged at this instant.
    pub to: Timestamp,
    /// Period grain of the rates.
    pub period: Period,
    /// Dimensions to group the rates by besides the period.
    pub group_by: Vec<Dim>,
    /// Proposed composite weights; the deployment's when absent.
    pub weights: Option<Weights>,
}

/// The text of a built-in profile by name.
pub fn named_profile(name: &str) -> Result<&'static str, ReportError> {
    NAMED_PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| {
            let names: Vec<&str> = NAMED_PROFILES.iter().map(|(n, _)| *n).collect();
            ReportError::invalid(
                "profile_name",
                format!("no built-in profile {name:?} (known: {})", names.join(", ")),
            )
        })
}

/// Every figure of a what-if next to the recorded one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WhatIfReport {
    /// Start of the period.
    pub from: Timestamp,
    /// End of the period; deadlines judged at this instant.
    pub to: Timestamp,
    /// The deployment's profile (`id@version`).
    pub recorded_profile: String,
    /// The proposed profile (`id@version`).
    pub proposed_profile: String,
    /// Commits of the period folded (into each scratch projection).
    pub commits_applied: u64,
    /// Requests received in the period.
    pub requests: u64,
    /// Events whose profile-decided figures the proposed profile changed.
    pub events_restamped: u64,
    /// The composite weights of the recorded figures, and of the proposed ones.
    pub recorded_weights: Weights,
    /// The proposed weights.
    pub proposed_weights: Weights,
    /// Rates per period (and group).
    pub rates: Vec<RateComparison>,
    /// The monthly department assessment.
    pub departments: Vec<RankComparison>,
    /// The monthly street ranking.
    pub streets: Vec<RankComparison>,
}

/// One period's (and group's) rates, recorded and proposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateComparison {
    /// Period key.
    pub period: String,
    /// Group (dimension → value).
    pub dims: BTreeMap<String, Option<String>>,
    /// Counts as recorded.
    pub recorded_counts: Counts,
    /// Counts under the proposed profile.
    pub whatif_counts: Counts,
    /// Rates as recorded.
    pub recorded: Rates,
    /// Rates under the proposed profile.
    pub whatif: Rates,
    /// `whatif − recorded` per rate; `null` when either is.
    pub delta: BTreeMap<String, Option<f64>>,
}

/// One unit's monthly ranking figures, recorded and proposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankComparison {
    /// Month (`YYYY-MM`).
    pub month: String,
    /// The department or street.
    pub unit: String,
    /// On-time completion rate as recorded, and proposed, and the delta.
    pub recorded_on_time: Option<f64>,
    /// On-time completion rate under the proposed profile.
    pub whatif_on_time: Option<f64>,
    /// Composite score as recorded.
    pub recorded_composite: Option<f64>,
    /// Composite score under the proposed profile and weights.
    pub whatif_composite: Option<f64>,
    /// `whatif_composite − recorded_composite`.
    pub composite_delta: Option<f64>,
    /// Rank as recorded (absent when the unit is ranked on one side only).
    pub recorded_rank: Option<u32>,
    /// Rank under the proposed profile.
    pub whatif_rank: Option<u32>,
    /// `whatif_rank − recorded_rank` (negative: moves up).
    pub rank_delta: Option<i64>,
}

/// Parses the proposed profile; its errors name the field (`profile.<field>`).
pub fn parse_profile(name: &str, text: &str) -> Result<Profile, ReportError> {
    Profile::parse(name, text).map_err(|error| match &error {
        LoadError::Invalid { field, .. } => {
            ReportError::invalid(&format!("profile.{field}"), error.to_string())
        }
        LoadError::Syntax { .. } => ReportError::invalid("profile", error.to_string()),
    })
}

/// Folds the period under the recorded and the proposed profile into two scratch
/// projections and compares every figure. `live` is the deployment's policy (its catalogue,
/// calendar and directory are kept), `assessment` its weights and department tiers.
pub async fn whatif(
    log: &EventLog,
    live: &Policy,
    assessment: &Assessment,
    spec: &WhatIfSpec,
    progress: Option<&ProgressBar>,
) -> Result<WhatIfReport, ReportError> {
    if spec.to <= spec.from {
        return Err(ReportError::invalid("to", "`to` must be after `from`"));
    }
    let profile = parse_profile(&spec.profile_name, &spec.profile_text)?;
    let proposed = live.clone().with_profile(profile);
    let recorded_db = Scratch::create(None).await?;
    let whatif_db = Scratch::create(None).await?;
    let sides = Sides {
        recorded: recorded_db
            .projections
            .clone()
            .with_assessment(assessment.clone()),
        whatif: whatif_db
            .projections
            .clone()
            .with_assessment(assessment.clone()),
    };
    let outcome = compare(log, &sides, live, &proposed, spec, progress).await;
    drop(sides);
    recorded_db.close().await;
    whatif_db.close().await;
    outcome
}

/// The two scratch projections.
struct Sides {
    recorded: Projections,
    whatif: Projections,
}

async fn compare(
    log: &EventLog,
    sides: &Sides,
    live: &Policy,
    proposed: &Policy,
    spec: &WhatIfSpec,
    progress: Option<&ProgressBar>,
) -> Result<WhatIfReport, ReportError> {
    let mut restamper = Restamper::new(proposed);
    let mut rewrite = |c: &mut LoggedCommit| restamper.rewrite(&mut c.commit.events);
    let mut targets = [
        SliceTarget {
            projections: &sides.recorded,
            rewrite: None,
        },
        SliceTarget {
            projections: &sides.whatif,
            rewrite: Some(&mut rewrite),
        },
    ];
    let (commits_applied, requests) =
        replay::apply_slice_to(log, &mut targets, spec.from, spec.to, progress).await?;
    let recorded_weights = sides.recorded.assessment().weights;
    let proposed_weights = spec.weights.unwrap_or(recorded_weights);
    let rates = compare_rates(sides, spec).await?;
    let mut departments = Vec::new();
    let mut streets = Vec::new();
    for month in months(&sides.recorded, spec).await? {
        let weights = (recorded_weights, proposed_weights);
        departments.extend(compare_departments(sides, &month, weights, spec.to).await?);
        streets.extend(compare_streets(sides, &month, weights, spec.to).await?);
    }
    Ok(WhatIfReport {
        from: spec.from,
        to: spec.to,
        recorded_profile: live.name(),
        proposed_profile: proposed.name(),
        commits_applied,
        requests,
        events_restamped: restamper.changed(),
        recorded_weights,
        proposed_weights,
        rates,
        departments,
        streets,
    })
}

async fn compare_rates(
    sides: &Sides,
    spec: &WhatIfSpec,
) -> Result<Vec<RateComparison>, ReportError> {
    let query = replay::stats_query(&ReplaySpec {
        from: spec.from,
        to: spec.to,
        filter: Vec::new(),
        period: spec.period,
        group_by: spec.group_by.clone(),
    });
    let recorded = sides.recorded.stats(&query).await?;
    let mut whatif: BTreeMap<_, RateRow> = sides
        .whatif
        .stats(&query)
        .await?
        .into_iter()
        .map(|row| ((row.period.clone(), row.dims.clone()), row))
        .collect();
    Ok(recorded
        .into_iter()
        .map(|row| {
            let other = whatif
                .remove(&(row.period.clone(), row.dims.clone()))
                .unwrap_or_else(|| RateRow {
                    counts: Counts::default(),
                    rates: Counts::default().rates(),
                    ..row.clone()
                });
            RateComparison {
                delta: rate_delta(&row.rates, &other.rates),
                period: row.period,
                dims: row.dims,
                recorded_counts: row.counts,
                whatif_counts: other.counts,
                recorded: row.rates,
                whatif: other.rates,
            }
        })
        .collect())
}

/// `whatif − recorded` for every rate field (both sides have the same fields).
fn rate_delta(recorded: &Rates, whatif: &Rates) -> BTreeMap<String, Option<f64>> {
    let as_map = |r: &Rates| match serde_json::to_value(r) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (a, b) = (as_map(recorded), as_map(whatif));
    a.into_iter()
        .map(|(key, before)| {
            let after = b.get(&key).and_then(serde_json::Value::as_f64);
            let delta = before.as_f64().zip(after).map(|(x, y)| y - x);
            (key, delta)
        })
        .collect()
}

/// The months of the period that received requests.
async fn months(recorded: &Projections, spec: &WhatIfSpec) -> Result<Vec<String>, ReportError> {
    let last = spec.to - chrono::Duration::nanoseconds(1);
    let rows = recorded
        .stats(&StatsQuery {
            period: Period::Month,
            group_by: Vec::new(),
            filter: Filter {
                from: Some(replay::period_key(spec.from, Period::Month)),
                to: Some(replay::period_key(last.max(spec.from), Period::Month)),
                ..Filter::default()
            },
            now: spec.to,
        })
        .await?;
    Ok(rows.into_iter().map(|r| r.period).collect())
}

/// One unit's figures on one side: (on-time rate, composite, rank).
type Figures = (Option<f64>, Option<f64>, u32);

async fn compare_departments(
    sides: &Sides,
    month: &str,
    (recorded_w, proposed_w): (Weights, Weights),
    now: Timestamp,
) -> Result<Vec<RankComparison>, ReportError> {
    let side = |rows: Vec<projections::query::DepartmentRank>| {
        rows.into_iter()
            .map(|r| {
                (
                    r.department,
                    (r.rates.on_time_completion_rate, r.composite, r.rank),
                )
            })
            .collect::<BTreeMap<String, Figures>>()
    };
    let recorded = side(
        sides
            .recorded
            .department_ranking(month, recorded_w, now)
            .await?,
    );
    let whatif = side(
        sides
            .whatif
            .department_ranking(month, proposed_w, now)
            .await?,
    );
    Ok(join(month, recorded, whatif))
}

async fn compare_streets(
    sides: &Sides,
    month: &str,
    (recorded_w, proposed_w): (Weights, Weights),
    now: Timestamp,
) -> Result<Vec<RankComparison>, ReportError> {
    let side = |rows: Vec<projections::query::UnitRank>| {
        rows.into_iter()
            .map(|r| {
                (
                    r.unit,
                    (r.rates.on_time_completion_rate, r.composite, r.rank),
                )
            })
            .collect::<BTreeMap<String, Figures>>()
    };
    let level = UnitLevel::Street;
    let recorded = side(
        sides
            .recorded
            .unit_ranking(level, month, None, recorded_w, now)
            .await?,
    );
    let whatif = side(
        sides
            .whatif
            .unit_ranking(level, month, None, proposed_w, now)
            .await?,
    );
    Ok(join(month, recorded, whatif))
}

/// Units ranked on either side, each with both sides' figures.
fn join(
    month: &str,
    recorded: BTreeMap<String, Figures>,
    mut whatif: BTreeMap<String, Figures>,
) -> Vec<RankComparison> {
    let mut units: Vec<String> = recorded.keys().chain(whatif.keys()).cloned().collect();
    units.sort();
    units.dedup();
    units
        .into_iter()
        .map(|unit| {
            let a = recorded.get(&unit).copied();
            let b = whatif.remove(&unit);
            let composite = |f: Option<Figures>| f.and_then(|f| f.1);
            let rank = |f: Option<Figures>| f.map(|f| f.2);
            RankComparison {
                month: month.to_owned(),
                recorded_on_time: a.and_then(|f| f.0),
                whatif_on_time: b.and_then(|f| f.0),
                recorded_composite: composite(a),
                whatif_composite: composite(b),
                composite_delta: composite(a).zip(composite(b)).map(|(x, y)| y - x),
                recorded_rank: rank(a),
                whatif_rank: rank(b),
                rank_delta: rank(a)
                    .zip(rank(b))
                    .map(|(x, y)| i64::from(y) - i64::from(x)),
                unit,
            }
        })
        .collect()
}
