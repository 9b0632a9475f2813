//! The what-if report as text tables: each figure recorded, proposed and the delta.

use std::fmt::Write as _;

use super::{RankComparison, WhatIfReport};

/// A rate as a percentage, `-` when absent.
fn pct(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_string(), |r| format!("{:.2}%", r * 100.0))
}

/// A delta of rates in percentage points, signed.
fn pts(delta: Option<f64>) -> String {
    delta.map_or_else(|| "-".to_string(), |d| format!("{:+.2}", d * 100.0))
}

/// A score, `-` when absent.
fn score(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

/// The rates compared, one line per rate and group.
const RATES: [(&str, &str); 8] = [
    ("response_rate", "response"),
    ("on_time_completion_rate", "on-time"),
    ("resolution_rate", "resolution"),
    ("satisfaction_rate", "satisfaction"),
    ("strict_satisfaction_rate", "strict sat."),
    ("reopen_rate", "reopen"),
    ("referral_return_rate", "return"),
    ("satisfaction_score", "sat. score"),
];

/// Renders the report: a header, the rates, then the department and street rankings.
pub fn render(report: &WhatIfReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "what-if {} (recorded: {}) over [{}, {}): {} requests, {} commits, {} events re-stamped",
        report.proposed_profile,
        report.recorded_profile,
        report.from.to_rfc3339(),
        report.to.to_rfc3339(),
        report.requests,
        report.commits_applied,
        report.events_restamped
    );
    let _ = writeln!(
        out,
        "\n{:<10} {:<24} {:<13} {:>9} {:>9} {:>8}",
        "period", "group", "rate", "recorded", "what-if", "Δ pts"
    );
    for row in &report.rates {
        let group = row
            .dims
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(",");
        let group = if group.is_empty() {
            "all".into()
        } else {
            group
        };
        let value = |rates: &projections::query::Rates, key: &str| {
            serde_json::to_value(rates)
                .ok()
                .and_then(|v| v.get(key).and_then(serde_json::Value::as_f64))
        };
        for (key, label) in RATES {
            let delta = row.delta.get(key).copied().flatten();
            let (a, b) = (value(&row.recorded, key), value(&row.whatif, key));
            let (a, b, d) = if key == "satisfaction_score" {
                (score(a), score(b), score(delta))
            } else {
                (pct(a), pct(b), pts(delta))
            };
            let _ = writeln!(
                out,
                "{:<10} {:<24} {:<13} {:>9} {:>9} {:>8}",
                row.period, group, label, a, b, d
            );
        }
    }
    ranking(&mut out, "department", &report.departments);
    ranking(&mut out, "street", &report.streets);
    out
}

fn ranking(out: &mut String, what: &str, rows: &[RankComparison]) {
    let _ = writeln!(
        out,
        "\n{:<8} {:<22} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5} {:>5} {:>5}",
        "month", what, "on-time", "what-if", "score", "what-if", "Δ score", "rank", "w-if", "Δ"
    );
    for r in rows {
        let rank = |v: Option<u32>| v.map_or_else(|| "-".into(), |v| v.to_string());
        let _ = writeln!(
            out,
            "{:<8} {:<22} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5} {:>5} {:>5}",
            r.month,
            r.unit,
            pct(r.recorded_on_time),
            pct(r.whatif_on_time),
            score(r.recorded_composite),
            score(r.whatif_composite),
            r.composite_delta
                .map_or_else(|| "-".into(), |d| format!("{d:+.2}")),
            rank(r.recorded_rank),
            rank(r.whatif_rank),
            r.rank_delta
                .map_or_else(|| "-".into(), |d| format!("{d:+}")),
        );
    }
}
