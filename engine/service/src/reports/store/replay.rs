//! Replaying a report: every revision recomputed from the log at its recorded position and
//! instant, and compared with what was published.

use super::*;

/// One revision recomputed from the log at its recorded position and instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisionReplay {
    /// The revision.
    pub revision: u32,
    /// Log position it was computed at.
    pub log_position: u64,
    /// SHA-256 recorded.
    pub recorded_sha256: String,
    /// SHA-256 of the recomputed figures.
    pub recomputed_sha256: String,
    /// Recomputed bytes equal the recorded bytes.
    pub identical: bool,
    /// Where they differ (empty when identical).
    pub differences: Vec<FigureChange>,
    /// What the events recorded since would change, recomputed at the log's end and judged at
    /// the same instant (empty: nothing recorded since changes a figure).
    pub later_changes: Vec<FigureChange>,
}

/// The outcome of replaying a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The report.
    pub report_id: Uuid,
    /// Level, unit, period.
    pub level: ReportLevel,
    /// Unit.
    pub unit: String,
    /// Period.
    pub period: String,
    /// The log's end when replayed.
    pub log_head: u64,
    /// Every revision (or the one asked for).
    pub revisions: Vec<RevisionReplay>,
}

impl ReplayReport {
    /// Every revision replayed identical to what was sent.
    pub fn identical(&self) -> bool {
        self.revisions.iter().all(|r| r.identical)
    }
}

/// Recomputes each revision (or `only`) from the log up to its recorded position, judged at
/// its recorded instant, and compares the canonical bytes with what was recorded; also lists
/// what the events recorded since would change.
pub async fn replay(
    log: &EventLog,
    report_id: Uuid,
    only: Option<u32>,
) -> Result<ReplayReport, ReportError> {
    let record = load(log, report_id)
        .await?
        .ok_or_else(|| ReportError::NotFound(format!("report {report_id} not found")))?;
    let spec = ReportSpec {
        level: record.level,
        unit: record.unit.clone(),
        period: ReportPeriod::parse(&record.period)?,
    };
    let head = log.last_position().await?;
    let chosen: Vec<&Revision> = record
        .revisions
        .iter()
        .filter(|r| only.is_none_or(|n| n == r.published.revision))
        .collect();
    // What every revision would be now: one fold at the head for all of them.
    let at_head: Vec<(&ReportSpec, Timestamp)> =
        chosen.iter().map(|r| (&spec, r.published.as_of)).collect();
    let now_figures = compute_many(log, head, &at_head).await?;
    let mut out = Vec::new();
    for (rev, now) in chosen.into_iter().zip(now_figures) {
        let p = &rev.published;
        let recomputed = compute(log, p.log_position, &spec, p.as_of).await?;
        let identical = canonical_bytes(&recomputed) == canonical_bytes(&p.figures)
            && figures_sha256(&recomputed) == p.figures_sha256;
        out.push(RevisionReplay {
            revision: p.revision,
            log_position: p.log_position,
            recorded_sha256: p.figures_sha256.clone(),
            recomputed_sha256: figures_sha256(&recomputed),
            identical,
            differences: diff(&p.figures, &recomputed),
            later_changes: diff(&p.figures, &now),
        });
    }
    if let Some(n) = only
        && out.is_empty()
    {
        return Err(ReportError::invalid(
            "revision",
            format!("report {report_id} has no revision {n}"),
        ));
    }
    Ok(ReplayReport {
        report_id,
        level: record.level,
        unit: record.unit,
        period: record.period,
        log_head: head,
        revisions: out,
    })
}
