//! Latency samples and throughput figures, and the percentiles reported from them.

use std::time::Duration;

use serde::Serialize;

/// Latency samples of one operation, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    micros: Vec<u64>,
}

impl Samples {
    /// An empty set with room for `capacity` samples.
    pub fn with_capacity(capacity: usize) -> Samples {
        Samples {
            micros: Vec::with_capacity(capacity),
        }
    }

    /// Records one sample.
    pub fn push(&mut self, elapsed: Duration) {
        self.micros
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    /// How many samples were recorded.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// The p50 / p99 / max summary (`None` without samples).
    pub fn summary(&self) -> Option<Latency> {
        if self.micros.is_empty() {
            return None;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Latency {
            samples: sorted.len(),
            p50_ms: ms(percentile(&sorted, 50.0)),
            p99_ms: ms(percentile(&sorted, 99.0)),
            max_ms: ms(*sorted.last().unwrap_or(&0)),
        })
    }
}

/// The nearest-rank percentile `p` (0..=100) of ascending `sorted` values (0 when empty).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A latency distribution summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Number of samples.
    pub samples: usize,
    /// Median, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Largest sample, in milliseconds.
    pub max_ms: f64,
}

/// A count of operations done in a measured time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Throughput {
    /// Operations done.
    pub ops: u64,
    /// Wall-clock seconds they took.
    pub seconds: f64,
    /// `ops / seconds`.
    pub per_second: f64,
}

impl Throughput {
    /// `ops` done in `elapsed`.
    pub fn new(ops: u64, elapsed: Duration) -> Throughput {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Throughput {
            ops,
            seconds,
            per_second: ops as f64 / seconds,
        }
    }

    /// This rate as a fraction of `limit`'s rate (0 when the limit is 0).
    pub fn ratio_to(&self, limit: &Throughput) -> f64 {
        if limit.per_second > 0.0 {
            self.per_second / limit.per_second
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_pick_stored_values() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn summary_reports_milliseconds_from_unordered_samples() {
        let mut samples = Samples::default();
        for micros in [3000, 1000, 2000, 10_000] {
            samples.push(Duration::from_micros(micros));
        }
        let summary = samples.summary().expect("has samples");
        assert_eq!(summary.samples, 4);
        assert_eq!(summary.p50_ms, 2.0);
        assert_eq!(summary.p99_ms, 10.0);
        assert_eq!(summary.max_ms, 10.0);
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn ratio_compares_rates_not_counts() {
        let engine = Throughput::new(100, Duration::from_secs(1));
        let limit = Throughput::new(1000, Duration::from_secs(2));
        assert!((engine.ratio_to(&limit) - 0.2).abs() < 1e-9);
        assert_eq!(
            engine.ratio_to(&Throughput {
                ops: 0,
                seconds: 1.0,
                per_second: 0.0
            }),
            0.0
        );
    }
}
