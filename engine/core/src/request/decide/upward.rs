//! Reports upward (上报) and what the higher level answers: `report_upward`,
//! `record_upward_feedback` and `acknowledge_upward`. Feedback from above is never the reply
//! to the resident.

use schemas::FeedbackKind;
use schemas::command::{AcknowledgeUpward, RecordUpwardFeedback, ReportUpward};
use uuid::Uuid;

use super::*;

/// Namespace for ids derived from command ids (upward report ids).
const REPORT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d1f_3c0e_5b7a_4e21_9a44_0c5e_b1a2_7f10);

/// Whether an upward feedback of this kind answers the report for good.
pub(crate) fn feedback_closes(kind: FeedbackKind) -> bool {
    matches!(
        kind,
        FeedbackKind::Decision | FeedbackKind::ReferralBack | FeedbackKind::ClosureApproval
    )
}

impl Request {
    /// `report_upward`: a unit involved reports the request to a higher level (上报); the
    /// report id is derived from the command id, so a retry records nothing new.
    pub(super) fn report_upward(
        &self,
        c: &ReportUpward,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ReportUpward;
        self.check_involved(ctx.actor, kind)?;
        required(&c.summary, "summary")?;
        let report_id = Uuid::new_v5(&REPORT_ID_NAMESPACE, ctx.command_id.as_bytes());
        if self.upward.iter().any(|r| r.report_id == report_id) {
            return Err(Refusal::AlreadyRecorded {
                what: "upward_report",
            });
        }
        Ok(vec![Event::ReportedUpward(ReportedUpward {
            report_id,
            level: c.level,
            summary: c.summary.clone(),
            attachments: c.attachments.clone(),
        })])
    }

    /// `record_upward_feedback`: the higher level's feedback on an open report; a referral
    /// back names a known department.
    pub(super) fn record_upward_feedback(
        &self,
        c: &RecordUpwardFeedback,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let Some(report) = self.upward.iter().find(|r| r.report_id == c.report_id) else {
            return Err(Refusal::UnknownReference {
                field: "report_id",
                value: c.report_id.to_string(),
            });
        };
        if !report.open {
            return Err(Refusal::AlreadyRecorded {
                what: "final_upward_feedback",
            });
        }
        required(&c.content, "content")?;
        if c.kind == FeedbackKind::ReferralBack {
            required_opt(&c.department, "department")?;
        }
        if let Some(d) = &c.department
            && !ctx.policy.knows_department(d)
        {
            return Err(Refusal::UnknownReference {
                field: "department",
                value: d.clone(),
            });
        }
        Ok(vec![Event::UpwardFeedbackReceived(
            UpwardFeedbackReceived {
                report_id: c.report_id,
                level: report.level,
                kind: c.kind,
                content: c.content.clone(),
                department: c.department.clone(),
            },
        )])
    }

    /// `acknowledge_upward`: the higher level acknowledged a report, once.
    pub(super) fn acknowledge_upward(&self, c: &AcknowledgeUpward) -> Result<Vec<Event>, Refusal> {
        let Some(report) = self.upward.iter().find(|r| r.report_id == c.report_id) else {
            return Err(Refusal::UnknownReference {
                field: "report_id",
                value: c.report_id.to_string(),
            });
        };
        if report.acknowledged {
            return Err(Refusal::AlreadyRecorded {
                what: "upward_acknowledgement",
            });
        }
        Ok(vec![Event::UpwardAcknowledged(UpwardAcknowledged {
            report_id: c.report_id,
        })])
    }
}
