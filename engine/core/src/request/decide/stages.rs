//! The stage half of the decide table: [`allowed`] names, for every command kind, the stages
//! in which it applies, from the stage sets of the command families below. `decide` checks it
//! once, after the actor's rights, the request's existence and the archived and merged rules;
//! a command whose rule also asks about a sub-state (a pending extension or appeal, a
//! corrected rating, an attachment's purpose) keeps that part in its own function.

use schemas::CommandKind;

use super::Stage;
use super::Stage::*;
use crate::request::participants::ASSISTING;

/// The stages in which a command of `kind` applies; any other stage refuses `wrong_stage`.
/// `receive` is answered before the table (an existing request refuses `already_exists`);
/// the engine's internal writers never reach a request.
pub(super) fn allowed(kind: CommandKind) -> &'static [Stage] {
    use CommandKind as K;
    match kind {
        K::Receive => &[New],
        K::Accept | K::Decline => &[Received],
        K::Classify | K::ReportUpward | K::RestampDeadlines => BEFORE_REPLY,
        K::Assign | K::Reassign | K::Claim => BEFORE_REPLY,
        K::HandleDirectly | K::StartProxy => &[Classified],
        K::Refer => &[Classified, Dispatched, ReturnRequested],
        K::SignFor => &[Dispatched],
        K::ReturnReferral => &[Dispatched, SignedFor],
        K::RejectReturn => &[ReturnRequested],
        K::ContactResident => &[DirectHandling, ProxyHandling, SignedFor],
        K::StartHandling => &[DirectHandling, ProxyHandling, SignedFor, Contacted],
        K::NoteProgress | K::RecordUpwardFeedback | K::AcknowledgeUpward => OPEN,
        K::ReportAssistance => &[SignedFor, Contacted, InProgress, TerminationPending],
        K::SignAssistance | K::ReturnAssistance => ASSISTING,
        K::RequestExtension | K::GrantExtension | K::DenyExtension => WORKING,
        K::PauseClock | K::ResumeClock | K::RequestTermination => WORKING,
        K::DecideTermination => &[TerminationPending],
        K::Reply => &[DirectHandling, ProxyHandling, InProgress],
        K::ReviewReply => &[Replied],
        K::RecordCallback => &[AwaitingCallback],
        // `rated` only for a re-rating after the rating was corrected (`rate`'s own rule).
        K::Rate => &[AwaitingCallback, Rated],
        K::Reopen | K::AppealRating | K::DecideAppeal => &[Rated],
        K::Archive => &[
            Rated,
            AwaitingCallback,
            NotAccepted,
            TransferredEmergency,
            LinkedDuplicate,
            Merged,
        ],
        K::Remind | K::Warn | K::MarkOverdue | K::Escalate => SUPERVISED,
        K::BlowWhistle | K::ReportToWhistle | K::ReleaseFromWhistle => WHISTLE,
        K::RateDepartment => RATE_DEPARTMENT,
        // Intake files while received or open; other purposes only while open
        // (`attach_media`'s own rule).
        K::AttachMedia => SUPERVISED,
        K::LinkDuplicate | K::MergeInto => LINKABLE,
        // Corrections of the record, of the contact data, moderation and the back-reference
        // of a duplicate: every stage, archived included.
        K::Correct | K::CorrectContact | K::ModeratePublicText | K::RecordDuplicate => &Stage::ALL,
        K::RecordReferenceData
        | K::RecordDigest
        | K::PublishRateReport
        | K::RecordRateReportFeedback => &[],
    }
}

/// Stages where the handling unit works on the request.
pub(super) const WORKING: &[Stage] = &[
    DirectHandling,
    ProxyHandling,
    SignedFor,
    Contacted,
    InProgress,
];
/// Accepted and not yet replied.
pub(super) const BEFORE_REPLY: &[Stage] = &[
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Where a request may be linked to or merged into an original: live and not yet replied.
pub(super) const LINKABLE: &[Stage] = &[
    Received,
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Accepted and not archived (nor declined).
pub(super) const OPEN: &[Stage] = &[
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
/// Classified and not yet replied: a whistle may be blown and answered.
pub(super) const WHISTLE: &[Stage] = &[
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Where a department that reported on a whistle may be rated.
pub(super) const RATE_DEPARTMENT: &[Stage] = &[
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
/// Where supervision commands apply.
pub(super) const SUPERVISED: &[Stage] = &[
    Received,
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The exhaustive stage × command table of `tests/state_machine.rs` (never edited here).
    const STATE_TABLE: &[(&str, [&str; 20])] = &include!("../../../tests/state_machine_table.in");

    /// Refusals that come before the stage check (rights, existence, the merged rule).
    const BEFORE_STAGE: &[&str] = &[
        "not_permitted",
        "not_addressed_to_you",
        "does_not_exist",
        "already_exists",
        "merged_into",
    ];

    /// Cells the table admits but a command's own rule narrows to `wrong_stage` for the
    /// state table's sample: a rating that was not corrected is not rated again.
    const NARROWED: &[(CommandKind, Stage)] = &[(CommandKind::Rate, Rated)];

    #[test]
    fn the_table_admits_exactly_the_stages_the_state_table_reaches_the_rule_in() {
        for (name, cells) in STATE_TABLE {
            let kind = CommandKind::parse(name).expect("a workflow command kind");
            for (stage, cell) in Stage::ALL.iter().zip(cells) {
                let admitted = allowed(kind).contains(stage);
                if *cell == "-" {
                    let narrowed = NARROWED.contains(&(kind, *stage));
                    assert!(!admitted || narrowed, "`{name}` admitted in {stage:?}");
                } else if !BEFORE_STAGE.contains(cell) {
                    assert!(
                        admitted,
                        "`{name}` answers `{cell}` in {stage:?}, not admitted"
                    );
                }
            }
        }
    }

    #[test]
    fn internal_writers_never_reach_a_request() {
        for kind in CommandKind::INTERNAL {
            assert!(allowed(*kind).is_empty(), "{kind:?}");
        }
    }
}
