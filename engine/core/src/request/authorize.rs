//! Which roles may issue which commands, and whether a unit is addressed by a request.
//!
//! The role table is checked first in `decide` (refusal `not_permitted`), then whether the
//! request is visible to the actor at all (`access.rs`, `not_addressed_to_you`), both before
//! existence and stage; the finer unit checks (lead department, handling unit) follow once
//! the stage allows the command. The same table is written out in `docs/state-machine.md`.

use schemas::{Actor, CommandKind, Role};

use super::{Handling, Request};
use crate::refusal::Refusal;

/// The roles allowed to issue `kind`. Auditors and dashboards issue nothing.
pub fn roles_for(kind: CommandKind) -> &'static [Role] {
    use CommandKind as K;
    use Role::*;
    match kind {
        K::Receive => &[IntakeSystem],
        K::Accept
        | K::Decline
        | K::Classify
        | K::HandleDirectly
        | K::StartProxy
        | K::Refer
        | K::RejectReturn
        | K::RecordCallback
        | K::Archive
        | K::BlowWhistle
        | K::ReleaseFromWhistle
        | K::RateDepartment
        | K::CorrectContact
        | K::ModeratePublicText
        | K::LinkDuplicate
        | K::MergeInto
        | K::RecordDuplicate => &[StationWorker, Supervisor],
        K::Rate => &[StationWorker, Supervisor, IntakeSystem],
        K::SignFor
        | K::ReturnReferral
        | K::ReportAssistance
        | K::AppealRating
        | K::ReportToWhistle => &[DepartmentHandler],
        K::SignAssistance | K::ReturnAssistance => &[DepartmentHandler],
        K::Assign | K::Reassign => &[StationWorker, Supervisor, DepartmentHandler],
        K::Claim => &[StationWorker, DepartmentHandler],
        K::ContactResident
        | K::StartHandling
        | K::NoteProgress
        | K::RequestExtension
        | K::PauseClock
        | K::ResumeClock
        | K::RequestTermination
        | K::ReportUpward
        | K::Reply => &[StationWorker, Supervisor, DepartmentHandler],
        K::AttachMedia => &[IntakeSystem, StationWorker, Supervisor, DepartmentHandler],
        K::GrantExtension
        | K::DenyExtension
        | K::DecideTermination
        | K::ReviewReply
        | K::Reopen
        | K::DecideAppeal
        | K::Correct => &[Supervisor],
        K::RecordUpwardFeedback => &[HigherLevel],
        K::AcknowledgeUpward => &[HigherLevel, System],
        K::Remind | K::Warn | K::MarkOverdue | K::Escalate | K::RestampDeadlines => {
            &[System, Supervisor]
        }
        // The engine's own streams never pass through a request's state machine.
        K::RecordReferenceData
        | K::RecordDigest
        | K::PublishRateReport
        | K::RecordRateReportFeedback => &[],
    }
}

/// `not_permitted` unless the actor's role may issue `kind`.
pub(super) fn check_role(actor: &Actor, kind: CommandKind) -> Result<(), Refusal> {
    if roles_for(kind).contains(&actor.role) {
        Ok(())
    } else {
        Err(Refusal::NotPermitted {
            role: actor.role,
            command: kind,
        })
    }
}

pub(super) fn not_addressed(actor: &Actor, kind: CommandKind) -> Refusal {
    Refusal::NotAddressedToYou {
        unit: actor.unit.clone(),
        command: kind,
    }
}

impl Request {
    /// The handling unit acts: the lead department's handler for referrals, station staff
    /// (station worker or supervisor) for direct and proxy handling.
    pub(super) fn check_handling_unit(
        &self,
        actor: &Actor,
        kind: CommandKind,
    ) -> Result<(), Refusal> {
        match &self.handling {
            Some(Handling::Referral(r)) => {
                if actor.role == Role::DepartmentHandler
                    && actor.unit.as_deref() == Some(r.lead.as_str())
                {
                    Ok(())
                } else {
                    Err(not_addressed(actor, kind))
                }
            }
            Some(Handling::Direct | Handling::Proxy { .. }) => {
                if matches!(actor.role, Role::StationWorker | Role::Supervisor) {
                    Ok(())
                } else {
                    Err(not_addressed(actor, kind))
                }
            }
            None => Err(not_addressed(actor, kind)),
        }
    }

    /// The actor is the referral's lead department.
    pub(super) fn check_lead(&self, actor: &Actor, kind: CommandKind) -> Result<(), Refusal> {
        match self.referral() {
            Some(r) if actor.unit.as_deref() == Some(r.lead.as_str()) => Ok(()),
            _ => Err(not_addressed(actor, kind)),
        }
    }

    /// Department handlers act only on requests referred to their unit (lead or assisting).
    pub(super) fn check_involved(&self, actor: &Actor, kind: CommandKind) -> Result<(), Refusal> {
        if actor.role != Role::DepartmentHandler {
            return Ok(());
        }
        let involved = match (self.referral(), actor.unit.as_deref()) {
            (Some(r), Some(unit)) => r.lead == unit || r.assisting.iter().any(|a| a == unit),
            _ => false,
        };
        if involved {
            Ok(())
        } else {
            Err(not_addressed(actor, kind))
        }
    }

    /// Station workers act for the community where the request is located.
    pub(super) fn check_community(&self, actor: &Actor, kind: CommandKind) -> Result<(), Refusal> {
        if actor.role != Role::StationWorker {
            return Ok(());
        }
        match self.location() {
            Some(l) if actor.unit.as_deref() == Some(l.community.as_str()) => Ok(()),
            _ => Err(not_addressed(actor, kind)),
        }
    }
}
