//! The departments answering for their part: the whistle (吹哨报到: `blow_whistle`,
//! `report_to_whistle`, `release_from_whistle`), the station's `rate_department` of those
//! who reported, and the lead department's appeal of a rating (`appeal_rating`,
//! `decide_appeal`).

use schemas::command::{
    AppealRating, BlowWhistle, DecideAppeal, RateDepartment, ReleaseFromWhistle, ReportToWhistle,
};

use super::super::authorize::not_addressed;
use super::super::{AppealState, Summoned};
use super::*;

impl Request {
    /// `blow_whistle`: the station summons known departments, each once, to report by the
    /// policy's report deadline; one whistle outstanding at a time.
    pub(super) fn blow_whistle(
        &self,
        c: &BlowWhistle,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::BlowWhistle;
        self.check_community(ctx.actor, kind)?;
        if self.whistle().is_some_and(|w| !w.awaited().is_empty()) {
            return Err(Refusal::AlreadyPending { what: "whistle" });
        }
        if c.departments.is_empty() {
            return Err(Refusal::MissingField {
                field: "departments",
            });
        }
        for (i, d) in c.departments.iter().enumerate() {
            if !ctx.policy.knows_department(d) {
                return Err(Refusal::UnknownReference {
                    field: "departments",
                    value: d.clone(),
                });
            }
            if c.departments[..i].contains(d) {
                return Err(Refusal::InvalidField {
                    field: "departments",
                    reason: "names a department twice",
                });
            }
        }
        required(&c.summary, "summary")?;
        Ok(vec![Event::WhistleBlown(WhistleBlown {
            departments: c.departments.clone(),
            summary: c.summary.clone(),
            report_due_at: ctx.policy.whistle_report_due(ctx.now),
        })])
    }

    /// `report_to_whistle`: a summoned department reports, once, on time or not.
    pub(super) fn report_to_whistle(
        &self,
        c: &ReportToWhistle,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::ReportToWhistle;
        if ctx.actor.unit.as_deref() != Some(c.department.as_str()) {
            return Err(not_addressed(ctx.actor, kind));
        }
        let whistle = self
            .whistle()
            .ok_or(Refusal::NothingPending { what: "whistle" })?;
        let summoned = whistle
            .departments
            .get(&c.department)
            .ok_or_else(|| not_addressed(ctx.actor, kind))?;
        if !summoned.awaited() {
            return Err(Refusal::AlreadyRecorded {
                what: "whistle_report",
            });
        }
        required(&c.note, "note")?;
        Ok(vec![Event::DepartmentReported(DepartmentReported {
            department: c.department.clone(),
            note: c.note.clone(),
            on_time: ctx.now <= whistle.report_due_at,
        })])
    }

    /// `release_from_whistle`: the station releases a summoned department from reporting, with
    /// a reason.
    pub(super) fn release_from_whistle(
        &self,
        c: &ReleaseFromWhistle,
    ) -> Result<Vec<Event>, Refusal> {
        let summoned = self.summoned_to_whistle(&c.department)?;
        if !summoned.awaited() {
            return Err(Refusal::AlreadyRecorded {
                what: "whistle_report",
            });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::DepartmentReleased(DepartmentReleased {
            department: c.department.clone(),
            reason: c.reason.clone(),
        })])
    }

    /// `rate_department`: the station rates, once and from 1 to 5, a department that reported.
    pub(super) fn rate_department(
        &self,
        c: &RateDepartment,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::RateDepartment;
        self.check_community(ctx.actor, kind)?;
        let summoned = self.summoned_to_whistle(&c.department)?;
        if summoned.reported.is_none() {
            return Err(Refusal::InvalidField {
                field: "department",
                reason: "has not reported",
            });
        }
        if !(1..=5).contains(&c.score) {
            return Err(Refusal::InvalidField {
                field: "score",
                reason: "must be 1 to 5",
            });
        }
        if summoned.rating_event.is_some() {
            return Err(Refusal::AlreadyRecorded {
                what: "department_rating",
            });
        }
        Ok(vec![Event::DepartmentRated(DepartmentRated {
            department: c.department.clone(),
            score: c.score,
            comment: c.comment.clone(),
        })])
    }

    /// `appeal_rating`: the lead department appeals the resident's rating once, within
    /// `appeal_window_hours` of it, with a reason.
    pub(super) fn appeal_rating(
        &self,
        c: &AppealRating,
        ctx: &Context,
    ) -> Result<Vec<Event>, Refusal> {
        let kind = CommandKind::AppealRating;
        self.check_lead(ctx.actor, kind)?;
        let Some(rating) = self.rating.as_ref().filter(|r| !r.corrected) else {
            return Err(Refusal::NothingPending { what: "rating" });
        };
        if rating.appeal.is_some() {
            return Err(Refusal::AlreadyRecorded { what: "appeal" });
        }
        let closes = rating.rated_at
            + chrono::Duration::hours(i64::from(ctx.policy.limits().appeal_window_hours));
        if ctx.now > closes {
            return Err(Refusal::WindowClosed {
                window: "appeal_window",
                closed_at: closes,
            });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::RatingAppealed(RatingAppealed {
            department: self.lead_department().unwrap_or_default().to_string(),
            reason: c.reason.clone(),
            evidence: c.evidence.clone(),
        })])
    }

    /// `decide_appeal`: the centre upholds or rejects the pending appeal, with a reason.
    pub(super) fn decide_appeal(&self, c: &DecideAppeal) -> Result<Vec<Event>, Refusal> {
        if self.rating.as_ref().and_then(|r| r.appeal) != Some(AppealState::Pending) {
            return Err(Refusal::NothingPending { what: "appeal" });
        }
        required(&c.reason, "reason")?;
        Ok(vec![Event::AppealDecided(AppealDecided {
            upheld: c.upheld,
            reason: c.reason.clone(),
        })])
    }

    /// The department's summons on the latest whistle: `nothing_pending` without a whistle,
    /// `unknown_reference` (`department`) when the whistle did not summon it.
    fn summoned_to_whistle(&self, department: &str) -> Result<&Summoned, Refusal> {
        let whistle = self
            .whistle()
            .ok_or(Refusal::NothingPending { what: "whistle" })?;
        whistle
            .departments
            .get(department)
            .ok_or_else(|| Refusal::UnknownReference {
                field: "department",
                value: department.to_string(),
            })
    }
}
