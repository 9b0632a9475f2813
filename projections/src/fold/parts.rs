//! The people and units acting on a request besides the lead department: the assignee
//! (指派 / 改派 / 认领, kept apart from the first-contact owner 首问负责) and the departments'
//! own parts — an assisting part of a referral (协办) and a whistle summons (吹哨报到) — each
//! with its deadline and status, for the worklists and overdue lists of those departments.
//!
//! As in the core (`engine/core/src/request/participants.rs`), a new referral clears the
//! assignee and starts fresh assisting parts; the parts of the earlier referral are kept,
//! closed as `superseded`, so their rows tell what happened.

use schemas::{Event, EventEnvelope};
use serde::{Deserialize, Serialize};

use super::{RequestState, Ts};

/// An assisting part of a referral (协办).
pub const ASSISTING: &str = "assisting";
/// A whistle summons (吹哨报到).
pub const WHISTLE: &str = "whistle";

/// One department's part of a request besides the lead (a `unit_parts` row).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// [`ASSISTING`] or [`WHISTLE`].
    pub kind: String,
    /// The referral number of an assisting part; the whistle's ordinal (1, 2, …) of a summons.
    pub number: u32,
    /// The department.
    pub department: String,
    /// Due (the referral's `assistance_due_at`, the whistle's `report_due_at`); none for
    /// assisting parts of referrals written before assisting deadlines.
    pub due_at: Option<Ts>,
    /// Signed for (assisting parts only).
    pub signed_at: Option<Ts>,
    /// Reported (协办反馈 / 报到).
    pub reported_at: Option<Ts>,
    /// Returned, released, recorded absent at the lead's reply, or superseded by a new referral.
    pub closed_at: Option<Ts>,
    /// Why it closed without a report: `returned`, `released`, `absent` or `superseded`.
    pub closed_as: Option<String>,
    /// Log position of the last change.
    pub last_position: u64,
}

impl Part {
    fn new(kind: &str, number: u32, department: &str, due_at: Option<Ts>, pos: u64) -> Part {
        Part {
            kind: kind.to_owned(),
            number,
            department: department.to_owned(),
            due_at,
            signed_at: None,
            reported_at: None,
            closed_at: None,
            closed_as: None,
            last_position: pos,
        }
    }

    /// Neither reported nor closed: the department still owes it.
    pub fn open(&self) -> bool {
        self.reported_at.is_none() && self.closed_at.is_none()
    }

    /// `awaiting_sign_off`, `signed_for`, `summoned` (a whistle not yet reported), `reported`,
    /// or how it closed.
    pub fn status(&self) -> &str {
        if let Some(how) = &self.closed_as {
            return how;
        }
        match (self.reported_at, self.signed_at, self.kind.as_str()) {
            (Some(_), _, _) => "reported",
            (None, _, WHISTLE) => "summoned",
            (None, Some(_), _) => "signed_for",
            (None, None, _) => "awaiting_sign_off",
        }
    }

    fn close(&mut self, at: Ts, how: &str, pos: u64) {
        if self.open() {
            self.closed_at = Some(at);
            self.closed_as = Some(how.to_owned());
            self.last_position = pos;
        }
    }
}

impl RequestState {
    /// Folds the events that concern the assignee and the departments' parts; others are
    /// ignored. Called for every event before the stage fold.
    pub(super) fn apply_participants(&mut self, env: &EventEnvelope, pos: u64) {
        let at = env.occurred_at;
        match &env.event {
            Event::ReferredToDepartment(e) => {
                self.assignee = None;
                self.assignee_unit = None;
                self.parts_of(ASSISTING, None)
                    .for_each(|p| p.close(at, "superseded", pos));
                for d in &e.assisting_departments {
                    let part = Part::new(ASSISTING, e.referral_number, d, e.assistance_due_at, pos);
                    self.parts.push(part);
                }
            }
            Event::RequestAssigned(e) => {
                self.assignee = Some(e.assignee.clone());
                self.assignee_unit = Some(e.unit.clone());
            }
            Event::AssistanceSignedFor(e) => {
                self.parts_of(ASSISTING, Some(&e.department)).for_each(|p| {
                    p.signed_at.get_or_insert(at);
                    p.last_position = pos;
                });
            }
            Event::AssistanceReported(e) => {
                self.parts_of(ASSISTING, Some(&e.department)).for_each(|p| {
                    p.signed_at.get_or_insert(at);
                    p.reported_at = Some(at);
                    p.last_position = pos;
                });
            }
            Event::AssistanceReturned(e) => self
                .parts_of(ASSISTING, Some(&e.department))
                .for_each(|p| p.close(at, "returned", pos)),
            Event::AssistanceAbsenceRecorded(e) => {
                for d in &e.departments {
                    self.parts_of(ASSISTING, Some(d))
                        .for_each(|p| p.close(at, "absent", pos));
                }
            }
            Event::WhistleBlown(e) => {
                let number = 1 + self
                    .parts
                    .iter()
                    .filter(|p| p.kind == WHISTLE)
                    .map(|p| p.number)
                    .max()
                    .unwrap_or(0);
                for d in &e.departments {
                    let part = Part::new(WHISTLE, number, d, Some(e.report_due_at), pos);
                    self.parts.push(part);
                }
            }
            Event::DepartmentReported(e) => {
                self.parts_of(WHISTLE, Some(&e.department)).for_each(|p| {
                    p.reported_at = Some(at);
                    p.last_position = pos;
                });
            }
            Event::DepartmentReleased(e) => self
                .parts_of(WHISTLE, Some(&e.department))
                .for_each(|p| p.close(at, "released", pos)),
            _ => {}
        }
    }

    /// The open parts of `kind` (of `department`, when given).
    fn parts_of<'a>(
        &'a mut self,
        kind: &'a str,
        department: Option<&'a str>,
    ) -> impl Iterator<Item = &'a mut Part> + 'a {
        self.parts.iter_mut().filter(move |p| {
            p.kind == kind && p.open() && department.is_none_or(|d| p.department == d)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ts(h: u32) -> Ts {
        chrono::Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap()
    }

    #[test]
    fn statuses_follow_the_part_through_its_events() {
        let mut p = Part::new(ASSISTING, 1, "water", Some(ts(9)), 1);
        assert_eq!(p.status(), "awaiting_sign_off");
        p.signed_at = Some(ts(2));
        assert_eq!(p.status(), "signed_for");
        p.reported_at = Some(ts(3));
        assert_eq!(p.status(), "reported");
        assert!(!p.open());
        // A reported part is not closed again.
        p.close(ts(4), "absent", 9);
        assert_eq!(p.status(), "reported");
        assert_eq!(p.last_position, 1);
        let mut w = Part::new(WHISTLE, 1, "police", Some(ts(9)), 1);
        assert_eq!(w.status(), "summoned");
        w.close(ts(5), "released", 2);
        assert_eq!((w.status(), w.open()), ("released", false));
    }
}
