//! Rates per period and dimension, and the monthly department assessment (composite score,
//! rank overall and within the department's tier). Formulas are those of docs/metrics.md.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::assessment::Weights;
use super::callbacks::{CALLBACK_SQL, Callbacks};
use super::{
    COUNTS, COUNTS_SQL, Counts, Dim, Filter, Period, RateRow, Rates, StatsQuery, counts_from,
    percentile, ratio, req,
};
use crate::db::Val;
use crate::{ProjectionError, Projections};

/// One department's monthly assessment row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepartmentRank {
    /// Department.
    pub department: String,
    /// Month (`YYYY-MM`).
    pub month: String,
    /// Counts over the requests it led (received in the month, dispatched).
    pub counts: Counts,
    /// Rates of those counts.
    pub rates: Rates,
    /// Referrals to it in the month.
    pub referrals: i64,
    /// Of those, returned.
    pub referrals_returned: i64,
    /// 回退率 per department = referrals_returned ÷ referrals.
    pub return_rate: Option<f64>,
    /// Composite score ([`Weights::composite_with`]: response, resolution and satisfaction
    /// rates, and the bottom-up ratings when weighted).
    pub composite: Option<f64>,
    /// Bottom-up (以下评上) ratings in the month.
    pub bottom_up_count: i64,
    /// Their mean score (1..=5).
    pub bottom_up_avg: Option<f64>,
    /// Whistles the department was summoned to in the month.
    pub whistles: i64,
    /// Of those, reported (报到).
    pub whistles_reported: i64,
    /// Mean whistle response time (department_reported − whistle_blown), seconds.
    pub whistle_response_avg_seconds: Option<f64>,
    /// 1-based rank by composite (descending) among every department.
    pub rank: u32,
    /// The department's assessment tier (考核类别) from the directory, when known.
    pub tier: Option<String>,
    /// 1-based rank within its tier (every department without a tier forms one group).
    pub tier_rank: u32,
}

impl Projections {
    /// Rates per period × chosen dimensions (formulas in docs/metrics.md), computed with SQL
    /// GROUP BY over the `request_summary` fact table; handling-time percentiles by nearest rank.
    pub async fn stats(&self, q: &StatsQuery) -> Result<Vec<RateRow>, ProjectionError> {
        let mut args: Vec<Val> = vec![q.now.into()];
        let wher = q.filter.sql(q.period, &mut args);
        let mut keys = vec![q.period.column().to_owned()];
        keys.extend(q.group_by.iter().map(|d| d.column().to_owned()));
        let key_sql = keys.join(", ");
        // PostgreSQL computes the nearest-rank percentiles in the same pass (`percentile_disc`
        // is the nearest rank and skips NULLs); SQLite has no ordered-set aggregates, so the
        // samples are read in a second query.
        let in_db = self.backend() == crate::db::Backend::Postgres;
        let pct = if in_db {
            ", percentile_disc(0.5) WITHIN GROUP (ORDER BY handling_seconds), \
             percentile_disc(0.9) WITHIN GROUP (ORDER BY handling_seconds)"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {key_sql}, {COUNTS_SQL}{pct}, {CALLBACK_SQL} FROM request_summary WHERE {wher} GROUP BY {key_sql} ORDER BY {key_sql}"
        );
        let rows = self.pool.fetch(&sql, &args).await?;
        let mut out = Vec::new();
        let mut index: BTreeMap<Vec<Option<String>>, usize> = BTreeMap::new();
        for r in &rows {
            let key: Vec<Option<String>> = (0..keys.len())
                .map(|i| r.text(i))
                .collect::<Result<_, _>>()?;
            let counts = counts_from(r, keys.len())?;
            let dims = q
                .group_by
                .iter()
                .zip(key.iter().skip(1))
                .map(|(d, v)| (d.name().to_owned(), v.clone()))
                .collect();
            index.insert(key.clone(), out.len());
            let mut rates = counts.rates();
            if in_db {
                rates.handling_p50_seconds = r.int(keys.len() + COUNTS)?;
                rates.handling_p90_seconds = r.int(keys.len() + COUNTS + 1)?;
            }
            let at = keys.len() + COUNTS + if in_db { 2 } else { 0 };
            let callbacks = Callbacks::from_row(r, at, counts.completed)?;
            out.push(RateRow {
                period: key[0].clone().unwrap_or_default(),
                dims,
                rates,
                counts,
                callbacks,
            });
        }
        if in_db {
            return Ok(out);
        }
        let sql = format!(
            "SELECT {key_sql}, handling_seconds FROM request_summary WHERE {wher} AND handling_seconds IS NOT NULL \
             ORDER BY {key_sql}, handling_seconds"
        );
        let rows = self.pool.fetch(&sql, &args).await?;
        let mut samples: BTreeMap<Vec<Option<String>>, Vec<i64>> = BTreeMap::new();
        for r in &rows {
            let key: Vec<Option<String>> = (0..keys.len())
                .map(|i| r.text(i))
                .collect::<Result<_, _>>()?;
            samples
                .entry(key)
                .or_default()
                .push(r.int(keys.len())?.unwrap_or(0));
        }
        for (key, mut v) in samples {
            v.sort_unstable();
            if let Some(&i) = index.get(&key) {
                out[i].rates.handling_p50_seconds = percentile(&v, 0.5);
                out[i].rates.handling_p90_seconds = percentile(&v, 0.9);
            }
        }
        Ok(out)
    }

    /// The monthly department assessment: per lead department, the rates of the dispatched
    /// requests received in `month`, its referral return rate, the composite score, bottom-up
    /// ratings and whistle response time; ranked by composite (descending, then name).
    pub async fn department_ranking(
        &self,
        month: &str,
        weights: Weights,
        now: DateTime<Utc>,
    ) -> Result<Vec<DepartmentRank>, ProjectionError> {
        let stats = self
            .stats(&StatsQuery {
                period: Period::Month,
                group_by: vec![Dim::Department],
                filter: Filter {
                    from: Some(month.to_owned()),
                    to: Some(month.to_owned()),
                    dispatched_only: true,
                    ..Filter::default()
                },
                now,
            })
            .await?;
        let mut by: BTreeMap<String, DepartmentRank> = BTreeMap::new();
        let blank = |d: &str| DepartmentRank {
            department: d.to_owned(),
            month: month.to_owned(),
            counts: Counts::default(),
            rates: Counts::default().rates(),
            referrals: 0,
            referrals_returned: 0,
            return_rate: None,
            composite: None,
            bottom_up_count: 0,
            bottom_up_avg: None,
            whistles: 0,
            whistles_reported: 0,
            whistle_response_avg_seconds: None,
            rank: 0,
            tier: self.assessment.tiers.get(d).cloned(),
            tier_rank: 0,
        };
        for s in stats {
            let Some(Some(d)) = s.dims.get("department").cloned() else {
                continue;
            };
            let e = by.entry(d.clone()).or_insert_with(|| blank(&d));
            e.counts = s.counts;
            e.rates = s.rates;
        }
        let m: Val = month.into();
        for r in self
            .pool
            .fetch(
                "SELECT department, COUNT(*), SUM(CASE WHEN returned_at IS NOT NULL THEN 1 ELSE 0 END) \
                 FROM department_referrals WHERE referred_month = $1 GROUP BY department",
                std::slice::from_ref(&m),
            )
            .await?
        {
            let d = req(r.text(0)?, "department")?;
            let e = by.entry(d.clone()).or_insert_with(|| blank(&d));
            e.referrals = r.int(1)?.unwrap_or(0);
            e.referrals_returned = r.int(2)?.unwrap_or(0);
            e.return_rate = ratio(e.referrals_returned, e.referrals);
        }
        for r in self
            .pool
            .fetch(
                "SELECT department, COUNT(*), CAST(SUM(score) AS BIGINT) FROM department_ratings WHERE rated_month = $1 GROUP BY department",
                std::slice::from_ref(&m),
            )
            .await?
        {
            let d = req(r.text(0)?, "department")?;
            let e = by.entry(d.clone()).or_insert_with(|| blank(&d));
            e.bottom_up_count = r.int(1)?.unwrap_or(0);
            e.bottom_up_avg = ratio(r.int(2)?.unwrap_or(0), e.bottom_up_count);
        }
        // (summoned, reported, sum of reported_at − blown_at in microseconds, exact).
        let mut whistle: BTreeMap<String, (i64, i64, i128)> = BTreeMap::new();
        for r in self
            .pool
            .fetch(
                "SELECT department, blown_at, reported_at FROM whistle_reports WHERE blown_month = $1",
                std::slice::from_ref(&m),
            )
            .await?
        {
            let d = req(r.text(0)?, "department")?;
            let blown = req(r.ts(1)?, "blown_at")?;
            let w = whistle.entry(d).or_default();
            w.0 += 1;
            if let Some(rep) = r.ts(2)? {
                w.1 += 1;
                w.2 += i128::from((rep - blown).num_microseconds().unwrap_or(i64::MAX));
            }
        }
        for (d, (n, reported, micros)) in whistle {
            let e = by.entry(d.clone()).or_insert_with(|| blank(&d));
            e.whistles = n;
            e.whistles_reported = reported;
            e.whistle_response_avg_seconds = mean_seconds(micros, reported);
        }
        let mut out: Vec<DepartmentRank> = by.into_values().collect();
        for e in &mut out {
            e.composite = weights.composite_with(&e.rates, e.bottom_up_avg);
        }
        out.sort_by(|a, b| {
            b.composite
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.composite.unwrap_or(f64::NEG_INFINITY))
                .then_with(|| a.department.cmp(&b.department))
        });
        let mut in_tier: BTreeMap<Option<String>, u32> = BTreeMap::new();
        for (i, e) in out.iter_mut().enumerate() {
            e.rank = i as u32 + 1;
            let n = in_tier.entry(e.tier.clone()).or_default();
            *n += 1;
            e.tier_rank = *n;
        }
        Ok(out)
    }
}

/// The mean of intervals whose exact sum is `sum_micros` microseconds over `n` of them, in
/// seconds, rounded only here, when published: to the millisecond, half away from zero
/// (docs/metrics.md, "Means of intervals"). `None` when `n` is 0.
pub fn mean_seconds(sum_micros: i128, n: i64) -> Option<f64> {
    if n <= 0 {
        return None;
    }
    let n = i128::from(n);
    // Mean in microseconds, rounded half away from zero to whole milliseconds.
    let twice = 2 * sum_micros;
    let per = 2 * n * 1000;
    let millis = if twice >= 0 {
        (twice + n * 1000) / per
    } else {
        -((-twice + n * 1000) / per)
    };
    Some(millis as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::mean_seconds;

    #[test]
    fn means_average_exactly_and_round_to_the_millisecond_when_published() {
        // 3.700 s and 0.004 s: 1.852 s, not 1.5 from whole seconds.
        assert_eq!(mean_seconds(3_700_000 + 4_000, 2), Some(1.852));
        // 0.0005 s rounds half away from zero to 0.001 s.
        assert_eq!(mean_seconds(500, 1), Some(0.001));
        assert_eq!(mean_seconds(499, 1), Some(0.0));
        assert_eq!(mean_seconds(-1_500, 1), Some(-0.002));
        assert_eq!(mean_seconds(10, 0), None);
        // 7200 s and 10800 s averaged.
        assert_eq!(mean_seconds(18_000_000_000, 2), Some(9000.0));
    }
}
