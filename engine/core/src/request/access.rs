//! Who may see a request at all: the rule every read and every command applies before any
//! fact of the request (its existence, stage or fields) is revealed.
//!
//! A role reads either every request ([`ReadScope::Any`]) or only the requests it has a part
//! in: the intake system that submitted it, the station workers of the community it is located
//! in, the departments it was ever referred to, proxy-handled with or summoned to. A caller
//! outside that circle gets the same refusal for a request that exists as for one that does
//! not ([`Request::admit`]). The table is written out in `docs/security.md` ("Roles").

use std::collections::BTreeSet;

use schemas::{Actor, CommandKind, Event, EventEnvelope, Role};

use super::Request;
use super::authorize::{check_role, not_addressed};
use crate::refusal::Refusal;

/// What a role may read of single requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope {
    /// Every request (auditor, supervisor, higher level, system).
    Any,
    /// Requests the actor's intake system submitted (the `request_received` event's actor).
    OwnSubmissions,
    /// Requests referred to, proxy-handled with or summoned to the actor's department.
    OwnUnit,
    /// Requests located in the actor's community (station workers).
    OwnCommunity,
    /// No single request (dashboards read aggregates only).
    None,
}

/// The read scope of `role`.
pub fn read_scope(role: Role) -> ReadScope {
    match role {
        Role::Auditor | Role::Supervisor | Role::HigherLevel | Role::System => ReadScope::Any,
        Role::IntakeSystem => ReadScope::OwnSubmissions,
        Role::DepartmentHandler => ReadScope::OwnUnit,
        Role::StationWorker => ReadScope::OwnCommunity,
        Role::Dashboard => ReadScope::None,
    }
}

/// The parties of a request, folded from its events: who submitted it and which departments
/// it ever addressed. Never serialised with the state; a correction does not remove a
/// department (it has seen the request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties {
    submitted_by: Option<String>,
    departments: BTreeSet<String>,
}

impl Parties {
    /// Folds the parties `envelope` adds.
    pub(super) fn apply(&mut self, envelope: &EventEnvelope) {
        match &envelope.event {
            Event::RequestReceived(_) => self.submitted_by = Some(envelope.actor.id.clone()),
            Event::ReferredToDepartment(e) => {
                self.departments.insert(e.lead_department.clone());
                self.departments
                    .extend(e.assisting_departments.iter().cloned());
            }
            Event::ProxyHandlingStarted(e) => {
                self.departments.insert(e.department.clone());
            }
            Event::WhistleBlown(e) => self.departments.extend(e.departments.iter().cloned()),
            _ => {}
        }
    }

    /// The actor id of the intake that created the request.
    pub fn submitted_by(&self) -> Option<&str> {
        self.submitted_by.as_deref()
    }

    /// Whether `department` was ever addressed by the request.
    pub fn involves(&self, department: &str) -> bool {
        self.departments.contains(department)
    }
}

impl Request {
    /// The request's parties (submitter, departments addressed).
    pub fn parties(&self) -> &Parties {
        &self.parties
    }

    /// Whether `actor` may see this request: it exists and lies within the actor's
    /// [`ReadScope`]. Confidential requests follow the same rule.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        if !self.exists() {
            return false;
        }
        let unit = actor.unit.as_deref().filter(|u| !u.is_empty());
        match read_scope(actor.role) {
            ReadScope::Any => true,
            ReadScope::OwnSubmissions => self.parties.submitted_by() == Some(actor.id.as_str()),
            ReadScope::OwnUnit => unit.is_some_and(|u| self.parties.involves(u)),
            ReadScope::OwnCommunity => {
                unit.is_some() && self.location().map(|l| l.community.as_str()) == unit
            }
            ReadScope::None => false,
        }
    }

    /// Rights before facts: whether `actor` may address `kind` to this request at all,
    /// checked before existence or stage. The role must issue `kind` (`not_permitted`); for
    /// every command but `receive` the request must be [visible](Request::visible_to) to the
    /// actor. An actor who reads every request learns that an unknown one does not exist
    /// (`does_not_exist`); any other actor gets `not_addressed_to_you`, the same for a
    /// request outside its scope as for one that does not exist.
    pub fn admit(&self, actor: &Actor, kind: CommandKind) -> Result<(), Refusal> {
        check_role(actor, kind)?;
        if kind == CommandKind::Receive || self.visible_to(actor) {
            return Ok(());
        }
        if !self.exists() && read_scope(actor.role) == ReadScope::Any {
            return Err(Refusal::DoesNotExist);
        }
        Err(not_addressed(actor, kind))
    }
}
