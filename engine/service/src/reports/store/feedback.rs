//! Feedback from the higher level on a report revision (acknowledged, questioned,
//! returned), recorded in the report's stream.

use super::*;

/// A feedback document from the higher level (HTTP body or NATS request). Its schema is the
/// HTTP body's, where the report comes from the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "ReportFeedbackDocument",
    extend(
        "if" = { "properties": { "kind": { "enum": ["questioned", "returned"] } } },
        "then" = {
            "required": ["comments"],
            "properties": { "comments": { "pattern": "\\S" } }
        }
    )
)]
pub struct FeedbackDocument {
    /// The report (required on NATS; taken from the path over HTTP).
    #[serde(default)]
    #[schemars(skip)]
    pub report_id: Option<Uuid>,
    /// The revision answered; the latest when absent.
    #[serde(default, deserialize_with = "whole_revision")]
    #[schemars(range(max = 4_294_967_295u32))]
    pub revision: Option<u32>,
    /// received | questioned | returned | accepted.
    pub kind: ReportFeedbackKind,
    /// Comments (required, not blank, when questioned or returned); at most 4096 characters
    /// after trimming.
    #[serde(default)]
    pub comments: String,
    /// The sender's own message id (1..=200 characters); a resent document with the same id
    /// is recorded once.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    pub message_id: Option<String>,
}

/// A revision number: any JSON integer in range, `3.0` included (JSON Schema counts a number
/// without fraction as an integer).
fn whole_revision<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    number
        .as_u64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
                .map(|f| f as u64)
        })
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("revision must be a whole number 0..=4294967295"))
}

/// The answer to a feedback document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReportFeedbackReply")]
pub struct FeedbackReply {
    /// The report.
    pub report_id: Uuid,
    /// The revision answered.
    #[schemars(range(min = 1))]
    pub revision: u32,
    /// The feedback's event id.
    pub event_id: Uuid,
    /// It had been recorded before (same message id).
    pub duplicate: bool,
}

/// Records the higher level's feedback on a report; `fresh_id` names the commit when the
/// document carries no message id of its own.
pub async fn record_feedback(
    log: &EventLog,
    document: FeedbackDocument,
    from: &Actor,
    now: Timestamp,
    fresh_id: Uuid,
) -> Result<FeedbackReply, ReportError> {
    let report_id = document
        .report_id
        .ok_or_else(|| ReportError::invalid("report_id", "report_id is required"))?;
    let comments = document.comments.trim().to_string();
    if comments.chars().count() > COMMENTS_MAX {
        return Err(ReportError::invalid(
            "comments",
            format!("comments longer than {COMMENTS_MAX} characters"),
        ));
    }
    if matches!(
        document.kind,
        ReportFeedbackKind::Questioned | ReportFeedbackKind::Returned
    ) && comments.is_empty()
    {
        return Err(ReportError::invalid(
            "comments",
            format!(
                "feedback `{}` needs comments saying what to check or correct",
                document.kind.as_str()
            ),
        ));
    }
    if let Some(id) = &document.message_id
        && (id.is_empty() || id.chars().count() > 200)
    {
        return Err(ReportError::invalid(
            "message_id",
            "message_id must be 1-200 characters",
        ));
    }
    let commit_id = match &document.message_id {
        Some(id) => Uuid::new_v5(
            &ID_NAMESPACE,
            format!("rate-report-feedback:{report_id}:{id}").as_bytes(),
        ),
        None => fresh_id,
    };
    for _ in 0..APPEND_ATTEMPTS {
        let loaded = load_stream(log, report_id).await?;
        let record = loaded
            .record
            .as_ref()
            .ok_or_else(|| ReportError::NotFound(format!("report {report_id} not found")))?;
        if let Some(id) = &document.message_id
            && let Some(f) = record
                .feedback
                .iter()
                .find(|f| f.feedback.message_id.as_deref() == Some(id.as_str()))
        {
            return Ok(FeedbackReply {
                report_id,
                revision: f.feedback.revision,
                event_id: f.event_id,
                duplicate: true,
            });
        }
        let latest = record.latest().map_or(0, |r| r.published.revision);
        let revision = document.revision.unwrap_or(latest);
        if !record
            .revisions
            .iter()
            .any(|r| r.published.revision == revision)
        {
            return Err(ReportError::invalid(
                "revision",
                format!("report {report_id} has no revision {revision} (latest {latest})"),
            ));
        }
        let event = Event::RateReportFeedbackRecorded(RateReportFeedbackRecorded {
            report_id,
            revision,
            kind: document.kind,
            comments: comments.clone(),
            message_id: document.message_id.clone(),
        });
        match append(
            log,
            &loaded,
            report_id,
            commit_id,
            CommandKind::RecordRateReportFeedback,
            from,
            now,
            event,
        )
        .await
        {
            Ok(()) => {
                return Ok(FeedbackReply {
                    report_id,
                    revision,
                    event_id: Uuid::new_v5(&ID_NAMESPACE, format!("event:{commit_id}").as_bytes()),
                    duplicate: false,
                });
            }
            Err(ReportError::Log(LogError::Conflict { .. })) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ReportError::Conflict(format!(
        "report {report_id}: other writers kept appending"
    )))
}
