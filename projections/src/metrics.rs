//! Prometheus gauges of the read models: backlog, overdue count, projection lag.

use chrono::{DateTime, Utc};
use prometheus::{GaugeVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::{ProjectionError, Projections};

/// The gauges, registered once and refreshed by [`Projections::update_gauges`].
#[derive(Debug, Clone)]
pub struct Gauges {
    backlog: IntGauge,
    overdue: IntGauge,
    lag_events: IntGaugeVec,
    lag_seconds: GaugeVec,
}

impl Gauges {
    /// Creates the gauges and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Gauges, prometheus::Error> {
        let backlog = IntGauge::new(
            "bianmin_backlog_requests",
            "Open requests (received, not replied, declined or archived)",
        )?;
        let overdue = IntGauge::new("bianmin_overdue_requests", "Open requests overdue now")?;
        let lag_events = IntGaugeVec::new(
            Opts::new(
                "bianmin_projection_lag_events",
                "Commits in the log not yet applied, per projector",
            ),
            &["projector"],
        )?;
        let lag_seconds = GaugeVec::new(
            Opts::new(
                "bianmin_projection_lag_seconds",
                "Age of the last applied commit when behind, per projector",
            ),
            &["projector"],
        )?;
        registry.register(Box::new(backlog.clone()))?;
        registry.register(Box::new(overdue.clone()))?;
        registry.register(Box::new(lag_events.clone()))?;
        registry.register(Box::new(lag_seconds.clone()))?;
        Ok(Gauges {
            backlog,
            overdue,
            lag_events,
            lag_seconds,
        })
    }
}

impl Projections {
    /// Refreshes `gauges` for log head `head` at `now`.
    pub async fn update_gauges(
        &self,
        gauges: &Gauges,
        head: u64,
        now: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let (open, overdue) = self.backlog(now).await?;
        gauges.backlog.set(open);
        gauges.overdue.set(overdue);
        for l in self.lag(head, now).await? {
            gauges
                .lag_events
                .with_label_values(&[l.projector.as_str()])
                .set(l.events as i64);
            gauges
                .lag_seconds
                .with_label_values(&[l.projector.as_str()])
                .set(l.seconds);
        }
        Ok(())
    }
}
