//! The people and units acting on a request besides the first-contact worker: the current
//! assignee (指派, a named person of the holding unit) and the assisting departments' parts
//! (协办) of the referral in force, with their stamped deadline.
//!
//! The first-contact responsibility (首问负责) stays with [`Request::owner`]: assignment never
//! changes it. A new referral moves the request to another unit, so it clears the assignee
//! and starts fresh assisting parts.

use std::collections::BTreeMap;

use schemas::{EventEnvelope, Timestamp};

use super::{Request, Stage};

/// The named person the request is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assignment {
    /// Actor id of the assignee.
    pub assignee: String,
    /// The holding unit the assignee acts for (department or community code).
    pub unit: String,
}

/// One assisting department's part of the referral in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AssistingPart {
    /// Signed for (协办签收); a report implies it.
    pub signed: bool,
    /// Reported its part (协办反馈).
    pub reported: bool,
    /// Returned its part with a reason (协办退回).
    pub returned: bool,
}

impl AssistingPart {
    /// Neither reported nor returned: the lead still waits for it.
    pub fn awaited(&self) -> bool {
        !self.reported && !self.returned
    }
}

/// Assignment and assisting parts, folded from events.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Participants {
    /// The current assignee, if any.
    pub assignment: Option<Assignment>,
    /// Each assisting department's part, by department code.
    pub assisting: BTreeMap<String, AssistingPart>,
    /// When the assisting parts are due (stamped on the referral).
    pub assistance_due_at: Option<Timestamp>,
}

/// Stages in which assisting departments work on their parts and their deadline runs.
pub(super) const ASSISTING: &[Stage] = &[
    Stage::Dispatched,
    Stage::ReturnRequested,
    Stage::SignedFor,
    Stage::Contacted,
    Stage::InProgress,
    Stage::TerminationPending,
];

impl Participants {
    /// Folds the events that concern participants; others are ignored.
    pub(super) fn apply(&mut self, envelope: &EventEnvelope) {
        use schemas::Event as E;
        match &envelope.event {
            E::ReferredToDepartment(e) => {
                self.assignment = None;
                self.assistance_due_at = e.assistance_due_at;
                self.assisting = e
                    .assisting_departments
                    .iter()
                    .map(|d| (d.clone(), AssistingPart::default()))
                    .collect();
            }
            E::RequestAssigned(e) => {
                self.assignment = Some(Assignment {
                    assignee: e.assignee.clone(),
                    unit: e.unit.clone(),
                });
            }
            E::AssistanceSignedFor(e) => self.part(&e.department, |p| p.signed = true),
            E::AssistanceReported(e) => self.part(&e.department, |p| {
                p.signed = true;
                p.reported = true;
            }),
            E::AssistanceReturned(e) => self.part(&e.department, |p| p.returned = true),
            _ => {}
        }
    }

    fn part(&mut self, department: &str, change: impl FnOnce(&mut AssistingPart)) {
        if let Some(p) = self.assisting.get_mut(department) {
            change(p);
        }
    }

    /// Assisting departments whose parts are neither reported nor returned.
    pub fn awaited(&self) -> Vec<String> {
        self.assisting
            .iter()
            .filter(|(_, p)| p.awaited())
            .map(|(d, _)| d.clone())
            .collect()
    }
}

impl Request {
    /// The current assignee (指派), distinct from the first-contact owner.
    pub fn assignee(&self) -> Option<&str> {
        self.participants
            .assignment
            .as_ref()
            .map(|a| a.assignee.as_str())
    }

    /// Assignment and assisting parts.
    pub fn participants(&self) -> &Participants {
        &self.participants
    }

    /// The unit that holds the request now and whose people it may be assigned to: the lead
    /// department once referred, otherwise the community (station) where it is located.
    pub fn holding_unit(&self) -> Option<&str> {
        match self.lead_department() {
            Some(lead) => Some(lead),
            None => self.location().map(|l| l.community.as_str()),
        }
    }

    /// The assisting parts' due instant while one is awaited in an assisting stage.
    pub(super) fn assistance_deadline(&self) -> Option<Timestamp> {
        if !ASSISTING.contains(&self.stage) || self.participants.awaited().is_empty() {
            return None;
        }
        self.participants.assistance_due_at
    }
}
