//! The assessment (考核) side of the read models: the composite-score weights, the tiers that
//! departments are ranked within, and the monthly rankings of streets and communities.
//! Formulas are those of docs/metrics.md ("Assessment").
//!
//! The projections do not read the directory: the deployment hands them an [`Assessment`]
//! (its default weights and each department's tier) with [`Projections::with_assessment`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Counts, Dim, Filter, Period, Rates, StatsQuery};
use crate::{ProjectionError, Projections};

/// Composite-score weights; default 10/45/45/0 (configurable per deployment and per query).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Response rate weight (`w1`).
    pub response: f64,
    /// Resolution rate weight (`w2`).
    pub resolution: f64,
    /// Satisfaction rate weight (`w3`).
    pub satisfaction: f64,
    /// Bottom-up rating (以下评上) weight (`w4`); departments only.
    pub bottom_up: f64,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            response: 10.0,
            resolution: 45.0,
            satisfaction: 45.0,
            bottom_up: 0.0,
        }
    }
}

impl Weights {
    /// The composite of a unit that bottom-up ratings do not score (streets, communities,
    /// rate reports): [`Weights::composite_with`] without ratings, i.e. w1·响应率 + w2·解决率 +
    /// w3·满意率 scaled to the full total of the weights.
    pub fn composite(&self, r: &Rates) -> Option<f64> {
        self.composite_with(r, None)
    }

    /// w1·响应率 + w2·解决率 + w3·满意率 + w4·(mean bottom-up score ÷ 5), rates as fractions:
    /// 100 at best when the weights sum to 100. `None` when any of the three rates is `None`.
    ///
    /// A department nobody rated bottom-up in the month is scored on the three rates with
    /// their weights scaled up to the same total, so that the absence of ratings neither
    /// lowers nor raises its score.
    pub fn composite_with(&self, r: &Rates, bottom_up_avg: Option<f64>) -> Option<f64> {
        let base = self.response * r.response_rate?
            + self.resolution * r.resolution_rate?
            + self.satisfaction * r.satisfaction_rate?;
        if self.bottom_up <= 0.0 {
            return Some(base);
        }
        match bottom_up_avg {
            Some(avg) => Some(base + self.bottom_up * avg / 5.0),
            None => {
                let rest = self.response + self.resolution + self.satisfaction;
                (rest > 0.0).then(|| base * (rest + self.bottom_up) / rest)
            }
        }
    }
}

/// The tiers a department can be ranked within (`engine_core`'s
/// `DepartmentKind::assessment_tier` names each department's; the engine checks they agree).
pub const TIERS: [&str; 3] = ["district_department", "street_town", "public_service"];

/// What a deployment tells the read models about its assessment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// The weights a ranking uses when a query names none.
    pub weights: Weights,
    /// Each department's tier (department code → tier name), from the directory: units are
    /// ranked within their tier as well as overall.
    pub tiers: BTreeMap<String, String>,
}

/// A level of the grid tree ranked as a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitLevel {
    /// Streets (街道/乡镇).
    Street,
    /// Communities (社区/村).
    Community,
}

/// One street's or community's monthly assessment row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRank {
    /// The street or community code.
    pub unit: String,
    /// The street a community belongs to (the street itself for a street).
    pub street: String,
    /// Month (`YYYY-MM`).
    pub month: String,
    /// Counts over the requests located in the unit and received in the month.
    pub counts: Counts,
    /// Rates of those counts.
    pub rates: Rates,
    /// [`Weights::composite`] of those rates (bottom-up weight carried by the three rates).
    pub composite: Option<f64>,
    /// 1-based rank by composite (descending, then code) among the units listed.
    pub rank: u32,
}

impl Projections {
    /// This handle with the deployment's assessment settings.
    pub fn with_assessment(mut self, assessment: Assessment) -> Projections {
        self.assessment = std::sync::Arc::new(assessment);
        self
    }

    /// The deployment's assessment settings (defaults when none were given).
    pub fn assessment(&self) -> &Assessment {
        &self.assessment
    }

    /// The monthly ranking of streets, or of communities (of one street when `street` is
    /// given), by the composite of the rates of every request located in them and received
    /// in `month`.
    pub async fn unit_ranking(
        &self,
        level: UnitLevel,
        month: &str,
        street: Option<&str>,
        weights: Weights,
        now: DateTime<Utc>,
    ) -> Result<Vec<UnitRank>, ProjectionError> {
        let group_by = match level {
            UnitLevel::Street => vec![Dim::Street],
            UnitLevel::Community => vec![Dim::Street, Dim::Community],
        };
        let rows = self
            .stats(&StatsQuery {
                period: Period::Month,
                group_by,
                filter: Filter {
                    dims: street
                        .map(|s| vec![(Dim::Street, s.to_owned())])
                        .unwrap_or_default(),
                    from: Some(month.to_owned()),
                    to: Some(month.to_owned()),
                    dispatched_only: false,
                },
                now,
            })
            .await?;
        let dim = |row: &super::RateRow, d: Dim| row.dims.get(d.name()).cloned().flatten();
        let mut out: Vec<UnitRank> = rows
            .into_iter()
            .map(|row| {
                let street = dim(&row, Dim::Street).unwrap_or_default();
                let unit = match level {
                    UnitLevel::Street => street.clone(),
                    UnitLevel::Community => dim(&row, Dim::Community).unwrap_or_default(),
                };
                UnitRank {
                    composite: weights.composite(&row.rates),
                    unit,
                    street,
                    month: month.to_owned(),
                    counts: row.counts,
                    rates: row.rates,
                    rank: 0,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.composite
                .unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&a.composite.unwrap_or(f64::NEG_INFINITY))
                .then_with(|| (&a.street, &a.unit).cmp(&(&b.street, &b.unit)))
        });
        for (i, e) in out.iter_mut().enumerate() {
            e.rank = i as u32 + 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(response: f64, resolution: f64, satisfaction: f64) -> Rates {
        let mut r = Counts::default().rates();
        r.response_rate = Some(response);
        r.resolution_rate = Some(resolution);
        r.satisfaction_rate = Some(satisfaction);
        r
    }

    #[test]
    fn the_default_composite_ignores_bottom_up_ratings() {
        let w = Weights::default();
        let r = rates(1.0, 0.5, 0.8);
        let expected = 10.0 + 22.5 + 36.0;
        assert_eq!(w.composite(&r), Some(expected));
        assert_eq!(w.composite_with(&r, Some(1.0)), Some(expected));
    }

    #[test]
    fn bottom_up_ratings_count_as_a_fraction_of_full_marks() {
        let w = Weights {
            response: 10.0,
            resolution: 40.0,
            satisfaction: 40.0,
            bottom_up: 10.0,
        };
        let r = rates(1.0, 1.0, 1.0);
        assert_eq!(w.composite_with(&r, Some(5.0)), Some(100.0));
        assert_eq!(w.composite_with(&r, Some(2.5)), Some(95.0));
    }

    #[test]
    fn a_department_nobody_rated_is_scored_on_the_rates_scaled_to_the_same_total() {
        let w = Weights {
            response: 10.0,
            resolution: 40.0,
            satisfaction: 40.0,
            bottom_up: 10.0,
        };
        let r = rates(0.9, 0.9, 0.9);
        let scaled = w.composite_with(&r, None).expect("composite");
        assert!((scaled - 90.0).abs() < 1e-9, "{scaled}");
        let no_rates = Weights {
            response: 0.0,
            resolution: 0.0,
            satisfaction: 0.0,
            bottom_up: 10.0,
        };
        assert_eq!(no_rates.composite_with(&r, None), None);
    }

    #[test]
    fn a_missing_rate_leaves_the_composite_undefined() {
        let mut r = rates(1.0, 1.0, 1.0);
        r.satisfaction_rate = None;
        assert_eq!(Weights::default().composite_with(&r, Some(5.0)), None);
    }
}
