//! Prometheus metrics of the command path, in the service's own registry.
//!
//! Every label comes from a bounded set (command kinds, outcome names, refusal codes,
//! channels): never a request id, an actor or anything a resident wrote.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The service's metrics. Cheap to clone (handles share the underlying collectors).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    commands: IntCounterVec,
    append_duration: HistogramVec,
    conflicts: IntCounter,
    refusals: IntCounterVec,
    intake: IntCounterVec,
    quarantined: IntGauge,
    calendar_days_left: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every collector registered.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let commands = IntCounterVec::new(
            Opts::new(
                "bianmin_commands_total",
                "Commands handled, by kind and outcome.",
            ),
            &["command", "outcome"],
        )
        .expect("static metric definition");
        let append_duration = HistogramVec::new(
            HistogramOpts::new(
                "bianmin_append_duration_seconds",
                "Time to append one commit to the event log.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
            &[],
        )
        .expect("static metric definition");
        let conflicts = IntCounter::new(
            "bianmin_command_conflicts_total",
            "Appends that lost an optimistic-concurrency race and were retried.",
        )
        .expect("static metric definition");
        let refusals = IntCounterVec::new(
            Opts::new(
                "bianmin_refusals_total",
                "Commands refused by the domain, by code.",
            ),
            &["code"],
        )
        .expect("static metric definition");
        let intake = IntCounterVec::new(
            Opts::new(
                "bianmin_intake_total",
                "Intake documents, by channel and outcome.",
            ),
            &["channel", "outcome"],
        )
        .expect("static metric definition");
        let quarantined = IntGauge::new(
            "bianmin_log_quarantined_records",
            "Log records this process found undecodable, wrongly hashed or wrongly signed and \
             skipped (bianmin quarantine list).",
        )
        .expect("static metric definition");
        let calendar_days_left = IntGauge::new(
            "bianmin_calendar_coverage_days_left",
            "Days from today (Asia/Shanghai) to the last day the loaded working calendar covers; \
             negative once it has run out (bianmin calendar show).",
        )
        .expect("static metric definition");
        for collector in [
            Box::new(calendar_days_left.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(commands.clone()),
            Box::new(append_duration.clone()),
            Box::new(conflicts.clone()),
            Box::new(refusals.clone()),
            Box::new(intake.clone()),
            Box::new(quarantined.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            commands,
            append_duration,
            conflicts,
            refusals,
            intake,
            quarantined,
            calendar_days_left,
        }
    }

    /// The registry, for others to register their own collectors in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Counts one handled command. `outcome` is one of a fixed set (`applied`, `duplicate`,
    /// `refused`, `invalid`, `not_found`, `conflict`, `unavailable`, `internal`).
    pub fn command(&self, command: &str, outcome: &str) {
        self.commands.with_label_values(&[command, outcome]).inc();
    }

    /// Records how long one append took.
    pub fn append_duration(&self, seconds: f64) {
        self.append_duration
            .with_label_values(&[] as &[&str])
            .observe(seconds);
    }

    /// Counts one lost optimistic-concurrency race.
    pub fn conflict(&self) {
        self.conflicts.inc();
    }

    /// Counts one refusal by its stable code.
    pub fn refusal(&self, code: &str) {
        self.refusals.with_label_values(&[code]).inc();
    }

    /// Counts one intake document by channel and outcome (`created`, `existing`, `invalid`,
    /// `failed`).
    pub fn intake(&self, channel: &str, outcome: &str) {
        self.intake.with_label_values(&[channel, outcome]).inc();
    }

    /// Sets the number of log records this process has quarantined.
    pub fn set_quarantined(&self, records: usize) {
        self.quarantined
            .set(i64::try_from(records).unwrap_or(i64::MAX));
    }

    /// Sets the days left until the loaded calendar ends.
    pub fn set_calendar_days_left(&self, days: i64) {
        self.calendar_days_left.set(days);
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if encoder
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_text_names_every_family_once_used() {
        let metrics = Metrics::new();
        metrics.command("accept", "applied");
        metrics.append_duration(0.002);
        metrics.conflict();
        metrics.refusal("wrong_stage");
        metrics.intake("hotline", "created");
        let text = metrics.render();
        for name in [
            "bianmin_commands_total{command=\"accept\",outcome=\"applied\"} 1",
            "bianmin_append_duration_seconds_count 1",
            "bianmin_command_conflicts_total 1",
            "bianmin_refusals_total{code=\"wrong_stage\"} 1",
            "bianmin_intake_total{channel=\"hotline\",outcome=\"created\"} 1",
        ] {
            assert!(text.contains(name), "missing `{name}` in:\n{text}");
        }
    }
}
