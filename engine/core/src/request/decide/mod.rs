//! `Request::decide`: every business rule of the request workflow.
//!
//! Checks run in a fixed order so that refusals are predictable and reveal nothing to whom
//! the request is not addressed: role (`not_permitted`) and the request's visibility to the
//! actor (`not_addressed_to_you`, [`Request::admit`]) first, then existence
//! (`does_not_exist`), the archived and merged rules (`wrong_stage`, `merged_into`), the stage
//! (`wrong_stage`, from the table in `stages.rs`), fields, and the rule itself. Rule numbers
//! refer to HOTLINE_PRACTICE §9.
//!
//! The rules are in one module per command family: `intake.rs`, `handling.rs`,
//! `participants.rs` (assignment, assisting parts), `clock.rs` (extensions, pauses,
//! termination), `upward.rs`, `closing.rs` (reply to archive), `supervision.rs`, `whistle.rs`
//! (whistle, department ratings, appeals), `restamp.rs`, `media.rs`, `links.rs`, `routing.rs`
//! (what `classify` and `refer` record of the routing rules), and the corrections `correct.rs`
//! and `contact.rs`. Each command is one line of `decide`'s match.

// The prelude of the family modules (`use super::*`): events, refusals, the request and
// its stages.
use schemas::event::*;
use schemas::{Command, CommandKind, Event};

use super::{Firing, Request, Stage};
use crate::context::Context;
use crate::refusal::Refusal;

use Stage::*;

mod clock;
mod closing;
mod contact;
mod correct;
mod handling;
mod intake;
mod links;
mod media;
mod participants;
mod restamp;
mod routing;
mod stages;
mod supervision;
mod upward;
mod whistle;

pub use contact::MAX_CONTACT_CORRECTION_REASON_CHARS;
pub(crate) use supervision::next_level;
pub(super) use upward::feedback_closes;

fn required(value: &str, field: &'static str) -> Result<(), Refusal> {
    if value.trim().is_empty() {
        Err(Refusal::MissingField { field })
    } else {
        Ok(())
    }
}

fn required_opt(value: &Option<String>, field: &'static str) -> Result<(), Refusal> {
    required(value.as_deref().unwrap_or(""), field)
}

impl Request {
    /// Every business rule lives here. Returns the facts to record, or why not. Never panics.
    pub fn decide(&self, command: &Command, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = command.kind();
        // Rights before facts: role and visibility (a station worker's community, a
        // department's referrals, an intake system's submissions) before existence or stage.
        self.admit(ctx.actor, kind)?;
        // `receive` answers existence itself (`already_exists`); every other command passes
        // the rules of existence and stage first.
        if kind != CommandKind::Receive {
            self.check_stage(kind)?;
        }
        match command {
            Command::Receive(c) => self.receive(c, ctx),
            Command::Accept(c) => self.accept(c, ctx),
            Command::Decline(c) => self.decline(c),
            Command::Classify(c) => self.classify(c, ctx),
            Command::HandleDirectly(c) => self.handle_directly(c),
            Command::StartProxy(c) => self.start_proxy(c, ctx),
            Command::Refer(c) => self.refer(c, ctx),
            Command::SignFor(c) => self.sign_for(c, ctx),
            Command::ReturnReferral(c) => self.return_referral(c, ctx),
            Command::RejectReturn(c) => self.reject_return(c),
            Command::ContactResident(c) => self.contact_resident(c, ctx),
            Command::StartHandling(c) => self.start_handling(c, ctx),
            Command::NoteProgress(c) => self.note_progress(c, ctx),
            Command::ReportAssistance(c) => self.report_assistance(c, ctx),
            Command::RequestExtension(c) => self.request_extension(c, ctx),
            Command::GrantExtension(c) => self.grant_extension(c, ctx),
            Command::DenyExtension(c) => self.deny_extension(c),
            Command::PauseClock(c) => self.pause_clock(c, ctx),
            Command::ResumeClock(_) => self.resume_clock(ctx),
            Command::RequestTermination(c) => self.request_termination(c, ctx),
            Command::DecideTermination(c) => self.decide_termination(c, ctx),
            Command::ReportUpward(c) => self.report_upward(c, ctx),
            Command::RecordUpwardFeedback(c) => self.record_upward_feedback(c, ctx),
            Command::AcknowledgeUpward(c) => self.acknowledge_upward(c),
            Command::Reply(c) => self.decide_reply(c, ctx),
            Command::ReviewReply(c) => self.review_reply(c),
            Command::RecordCallback(c) => self.record_callback(c, ctx),
            Command::Rate(c) => self.rate(c),
            Command::Reopen(c) => self.reopen(c, ctx),
            Command::Archive(c) => self.archive(c, ctx),
            Command::Remind(c) => self.supervise(kind, Firing::Remind, c.deadline, c.due_at, ctx),
            Command::Warn(c) => self.supervise(kind, Firing::Warn, c.deadline, c.due_at, ctx),
            Command::MarkOverdue(c) => {
                self.supervise(kind, Firing::Overdue, c.deadline, c.due_at, ctx)
            }
            Command::Escalate(c) => self.escalate(c),
            Command::BlowWhistle(c) => self.blow_whistle(c, ctx),
            Command::ReportToWhistle(c) => self.report_to_whistle(c, ctx),
            Command::ReleaseFromWhistle(c) => self.release_from_whistle(c),
            Command::RateDepartment(c) => self.rate_department(c, ctx),
            Command::AppealRating(c) => self.appeal_rating(c, ctx),
            Command::DecideAppeal(c) => self.decide_appeal(c),
            Command::RestampDeadlines(c) => self.restamp(c, ctx),
            Command::Assign(c) => self.assign(c, ctx),
            Command::Reassign(c) => self.reassign(c, ctx),
            Command::Claim(c) => self.claim(c, ctx),
            Command::SignAssistance(c) => self.sign_assistance(c, ctx),
            Command::ReturnAssistance(c) => self.return_assistance(c, ctx),
            Command::Correct(c) => self.correct(c),
            Command::CorrectContact(c) => self.correct_contact(c),
            Command::ModeratePublicText(c) => self.moderate(c),
            Command::AttachMedia(c) => self.attach_media(c, ctx),
            Command::LinkDuplicate(c) => self.link_duplicate(c, ctx),
            Command::MergeInto(c) => self.merge_into(c, ctx),
            Command::RecordDuplicate(c) => self.record_duplicate(c),
        }
    }

    /// The rules every command but `receive` passes before its own: the request exists, an
    /// archived request takes only corrections, a merged one only corrections and archiving,
    /// and the stage is one [`stages::allowed`] names for the command.
    fn check_stage(&self, kind: CommandKind) -> Result<(), Refusal> {
        if !self.exists() {
            return Err(Refusal::DoesNotExist);
        }
        // Corrections of the record stay possible after archiving: of an event, and of the
        // resident's contact data (it is kept, and notified, until retention erases it), and
        // the moderation of what is published of it.
        let corrects = matches!(
            kind,
            CommandKind::Correct
                | CommandKind::CorrectContact
                | CommandKind::ModeratePublicText
                | CommandKind::RecordDuplicate
        );
        if self.stage == Archived && !corrects {
            return Err(self.wrong_stage(kind));
        }
        // A merged request follows its original: the work goes on there.
        if let Some(original) = self.links.merged_into()
            && !corrects
            && kind != CommandKind::Archive
        {
            return Err(Refusal::MergedInto { original });
        }
        self.stage_in(kind, stages::allowed(kind))
    }

    /// The refusal of `command` in the request's current stage.
    fn wrong_stage(&self, command: CommandKind) -> Refusal {
        Refusal::WrongStage {
            stage: self.stage,
            command,
        }
    }

    /// Refuses `wrong_stage` unless the request stands in one of `allowed`: the table's
    /// check, and the narrower one of a command whose stages depend on more than the stage.
    fn stage_in(&self, command: CommandKind, allowed: &[Stage]) -> Result<(), Refusal> {
        if allowed.contains(&self.stage) {
            Ok(())
        } else {
            Err(self.wrong_stage(command))
        }
    }
}
