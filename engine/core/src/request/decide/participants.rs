//! The rules of assignment to a person (指派 / 改派 / 认领: `assign`, `reassign`, `claim`)
//! and of the assisting departments' parts (协办签收, 协办退回, 协办反馈: `sign_assistance`,
//! `return_assistance`, `report_assistance`, and the lead's reply about parts not reported).
//!
//! Who may assign: the holding unit's own people. Once referred, a handler of the lead
//! department assigns among its colleagues; before that, the station of the request's
//! community (its workers, or the centre's supervisor) does. Claiming is for the acting
//! person themselves (station worker or department handler of the holding unit).

use schemas::Role;
use schemas::command::{Assign, Claim, Reassign, ReturnAssistance, SignAssistance};
use schemas::{Actor, AssignmentKind};

use super::super::authorize::not_addressed;
use super::*;
use crate::policy::AtReply;

impl Request {
    pub(super) fn assign(&self, c: &Assign, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Assign;
        let unit = self.check_holding_unit(ctx.actor, kind)?;
        required(&c.assignee, "assignee")?;
        if self.assignee().is_some() {
            return Err(Refusal::AlreadyRecorded { what: "assignment" });
        }
        Ok(vec![assigned(
            c.assignee.trim(),
            unit,
            AssignmentKind::Assign,
            None,
            c.reason.clone(),
        )])
    }

    pub(super) fn reassign(&self, c: &Reassign, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Reassign;
        let unit = self.check_holding_unit(ctx.actor, kind)?;
        required(&c.assignee, "assignee")?;
        required(&c.reason, "reason")?;
        let Some(previous) = self.assignee() else {
            return Err(Refusal::NothingPending { what: "assignment" });
        };
        if previous == c.assignee.trim() {
            return Err(Refusal::InvalidField {
                field: "assignee",
                reason: "is the current assignee",
            });
        }
        Ok(vec![assigned(
            c.assignee.trim(),
            unit,
            AssignmentKind::Reassign,
            Some(previous.to_string()),
            Some(c.reason.clone()),
        )])
    }

    pub(super) fn claim(&self, _c: &Claim, ctx: &Context) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::Claim;
        let unit = self.check_holding_unit(ctx.actor, kind)?;
        if self.assignee().is_some() {
            return Err(Refusal::AlreadyRecorded { what: "assignment" });
        }
        Ok(vec![assigned(
            &ctx.actor.id,
            unit,
            AssignmentKind::Claim,
            None,
            None,
        )])
    }

    /// The actor belongs to the unit that holds the request; returns that unit.
    fn check_holding_unit(&self, actor: &Actor, kind: CommandKind) -> Result<&str, Refusal> {
        let unit = self
            .holding_unit()
            .ok_or_else(|| not_addressed(actor, kind))?;
        let member = match (self.referral(), actor.role) {
            (Some(_), Role::DepartmentHandler) => actor.unit.as_deref() == Some(unit),
            (None, Role::StationWorker) => actor.unit.as_deref() == Some(unit),
            (None, Role::Supervisor) => kind != CommandKind::Claim,
            _ => false,
        };
        if member {
            Ok(unit)
        } else {
            Err(not_addressed(actor, kind))
        }
    }

    pub(super) fn sign_assistance(
        &self,
        c: &SignAssistance,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::SignAssistance;
        let (department, part) = self.assisting_part(ctx.actor, kind)?;
        if part.signed || !part.awaited() {
            return Err(Refusal::AlreadyRecorded {
                what: "assistance_sign_off",
            });
        }
        Ok(vec![Event::AssistanceSignedFor(AssistanceSignedFor {
            department,
            note: c.note.clone(),
        })])
    }

    pub(super) fn return_assistance(
        &self,
        c: &ReturnAssistance,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ReturnAssistance;
        let (department, part) = self.assisting_part(ctx.actor, kind)?;
        if !part.awaited() {
            return Err(Refusal::AlreadyRecorded {
                what: "assistance_part",
            });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::AssistanceReturned(AssistanceReturned {
            department,
            reason: c.reason.clone(),
        })])
    }

    pub(super) fn report_assistance(
        &self,
        c: &schemas::command::ReportAssistance,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ReportAssistance;
        let (department, part) = self.assisting_part(ctx.actor, kind)?;
        if part.returned {
            return Err(Refusal::AlreadyRecorded {
                what: "assistance_part",
            });
        }
        required(&c.note, "note")?;
        Ok(vec![Event::AssistanceReported(AssistanceReported {
            department,
            note: c.note.clone(),
        })])
    }

    /// The actor's unit is an assisting department of the referral in force.
    fn assisting_part(
        &self,
        actor: &Actor,
        kind: CommandKind,
    ) -> Result<(String, super::super::AssistingPart), Refusal> {
        let unit = actor.unit.as_deref().unwrap_or_default();
        self.participants()
            .assisting
            .get(unit)
            .map(|p| (unit.to_string(), *p))
            .ok_or_else(|| not_addressed(actor, kind))
    }

    /// What the lead's reply records, or refuses, about assisting parts still awaited.
    pub(super) fn assistance_at_reply(&self, ctx: &Context) -> Result<Option<Event>, Refusal> {
        let departments = self.participants().awaited();
        if departments.is_empty() {
            return Ok(None);
        }
        match ctx.policy.participation().at_reply {
            AtReply::Wait => Err(Refusal::AssistanceOutstanding { departments }),
            AtReply::RecordAbsence => Ok(Some(Event::AssistanceAbsenceRecorded(
                AssistanceAbsenceRecorded { departments },
            ))),
        }
    }
}

fn assigned(
    assignee: &str,
    unit: &str,
    how: AssignmentKind,
    previous_assignee: Option<String>,
    reason: Option<String>,
) -> Event {
    Event::RequestAssigned(RequestAssigned {
        assignee: assignee.to_string(),
        unit: unit.to_string(),
        how,
        previous_assignee,
        reason,
    })
}
