//! The workflow stage as Open311 sees it: `open` or `closed`, plus `status_notes`.
//!
//! A request is `closed` once the resident has been given a result (replied, awaiting the
//! centre's callback, rated, archived) or the matter ended without handling (not accepted,
//! transferred to an emergency line, linked to an earlier duplicate). Every other stage is
//! `open`. A reply the centre's review rejects, or a reopened request, is `open` again. The
//! table is in `docs/open311.md`.

use engine_core::{Request, Stage};
use schemas::ReplyOutcome;

/// `open` or `closed` for a stage.
pub fn status(stage: Stage) -> &'static str {
    if is_closed(stage) { "closed" } else { "open" }
}

/// Whether Open311 calls the stage `closed`.
pub fn is_closed(stage: Stage) -> bool {
    matches!(
        stage,
        Stage::Replied
            | Stage::AwaitingCallback
            | Stage::Rated
            | Stage::Archived
            | Stage::NotAccepted
            | Stage::TransferredEmergency
            | Stage::LinkedDuplicate
            | Stage::Merged
    )
}

/// The stage in words (English, with the Chinese term).
pub fn stage_note(stage: Stage) -> &'static str {
    match stage {
        Stage::New => "Not received",
        Stage::Received => "Received, awaiting acceptance (已接收)",
        Stage::Accepted => "Accepted by the service station (已受理)",
        Stage::NotAccepted => "Not accepted (不予受理)",
        Stage::TransferredEmergency => "Transferred to an emergency line (转紧急热线)",
        Stage::LinkedDuplicate => "Duplicate of an earlier request (重复诉求)",
        Stage::Merged => "Merged into another request, which it follows (并案)",
        Stage::Classified => "Registered and classified (登记分类)",
        Stage::DirectHandling => "Being handled by the service station (直接办理)",
        Stage::ProxyHandling => "Being handled by the station with a department (代办)",
        Stage::Dispatched => "Referred to a department (已派单)",
        Stage::ReturnRequested => "Referral under review (退单申请)",
        Stage::SignedFor => "Signed for by the department (已签收)",
        Stage::Contacted => "The handling unit contacted the resident (已响应)",
        Stage::InProgress => "In progress (办理中)",
        Stage::TerminationPending => "Termination requested, under review (终止办理申请)",
        Stage::Replied => "Result replied (已反馈)",
        Stage::AwaitingCallback => "Result replied, awaiting the callback (待回访)",
        Stage::Rated => "Rated by the resident (已评价)",
        Stage::Archived => "Closed and archived (归档)",
    }
}

/// The reply outcome in words.
pub fn outcome_note(outcome: ReplyOutcome) -> &'static str {
    match outcome {
        ReplyOutcome::Resolved => "resolved (已解决)",
        ReplyOutcome::PartiallyResolved => "partially resolved (部分解决)",
        ReplyOutcome::ExplainedCannotSolveNow => "cannot be solved now, explained (暂不能解决)",
        ReplyOutcome::NotOursExplained => "not within our remit, explained (非职责范围)",
        ReplyOutcome::Terminated => "handling terminated (终止办理)",
    }
}

/// `status_notes`: the stage in words; with the reply's outcome once replied, the
/// disposition when not accepted, and the supervision level while supervised.
pub fn notes(request: &Request) -> String {
    let stage = request.stage();
    let mut note = stage_note(stage).to_string();
    if stage.is_replied()
        && let Some(reply) = request.reply()
    {
        note.push_str(": ");
        note.push_str(outcome_note(reply.outcome));
    }
    if stage == Stage::NotAccepted
        && let Some(disposition) = request.disposition()
    {
        let code = serde_json::to_value(disposition)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        note.push_str(": ");
        note.push_str(&code);
    }
    if !is_closed(stage)
        && let Some(level) = request.supervision_level()
    {
        let level = match level {
            schemas::SupervisionLevel::Daily => "daily",
            schemas::SupervisionLevel::Listed => "listed",
            schemas::SupervisionLevel::Interview => "interview",
        };
        note.push_str(&format!("; under {level} supervision (督办)"));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_maps_to_open_or_closed_and_has_a_note() {
        let closed: Vec<&str> = Stage::ALL
            .into_iter()
            .filter(|s| is_closed(*s))
            .map(Stage::as_str)
            .collect();
        assert_eq!(
            closed,
            [
                "not_accepted",
                "transferred_emergency",
                "linked_duplicate",
                "merged",
                "replied",
                "awaiting_callback",
                "rated",
                "archived"
            ]
        );
        for stage in Stage::ALL {
            assert!(!stage_note(stage).is_empty());
            assert_eq!(status(stage) == "closed", is_closed(stage));
            // Every replied stage is closed.
            if stage.is_replied() {
                assert!(is_closed(stage), "{stage:?}");
            }
        }
    }
}
