//! From a validated row to the commands of its lifecycle, decided by the domain core.
//!
//! Each step is a command with its own instant (the row's timestamp), actor and a
//! deterministic command id, so a re-run produces the same ids and the log recognises them.
//! [`decide_steps`] runs the steps against an in-memory request, exactly as the command
//! service would, and returns the sealed, hash-chained commits — or the first refusal, in
//! which case nothing of the row is recorded.

use engine_core::{Context, Policy, Request};
use schemas::command::{
    Accept, Archive, Classify, ContactResident, HandleDirectly, Rate, Receive, Refer, Reply,
    ReviewReply, SignFor, StartHandling, StartProxy,
};
use schemas::{
    Actor, Command, Commit, CommitHeader, ContactRef, HandlingMode, RequestId, Role, Timestamp,
};
use uuid::Uuid;

use super::row::{ImportRow, RowError};
use crate::commands::{CONTACT_NAMESPACE, RECEIVE_NAMESPACE};
use engine_log::clock::IdSource;

/// Namespace of the command ids of imported lifecycle steps (UUIDv5 of request id and step).
pub const IMPORT_NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_3c1e_8d2a_4f0b_9a57_2c44_1e0d_b010);

/// The correlation id every event of an imported request carries: it marks the request as
/// written by the import, so a later run may complete it.
pub fn import_correlation_id(request_id: RequestId) -> Uuid {
    Uuid::new_v5(&IMPORT_NAMESPACE, format!("{request_id}:import").as_bytes())
}

/// One command of a row's lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The column a refusal of this step is reported against (its timestamp column).
    pub column: &'static str,
    /// The step's instant (the decision's `now`).
    pub at: Timestamp,
    /// Who issues it.
    pub actor: Actor,
    /// The deterministic command id.
    pub command_id: Uuid,
    /// The command.
    pub command: Command,
}

/// A row turned into its steps, with what the contact store must hold first.
#[derive(Debug, Clone)]
pub struct RowPlan {
    /// Line of the row.
    pub line: u64,
    /// External ticket id.
    pub external_id: String,
    /// The request (the intake id of channel and external id, as live intake derives it).
    pub request_id: RequestId,
    /// The contact to store before the first commit.
    pub contact: Option<(ContactRef, schemas::intake::ResidentContact)>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The stage the row says the request ends in.
    pub status: Option<String>,
}

/// The actors a row's steps are issued by.
struct Actors {
    intake: Actor,
    worker: Actor,
    supervisor: Actor,
    /// The unit handling the request: the station's worker, or the lead department's handler
    /// once referred.
    handler: Actor,
}

/// The steps of one row, each with its deterministic command id.
struct Steps {
    request_id: RequestId,
    steps: Vec<Step>,
}

impl Steps {
    fn push(&mut self, column: &'static str, at: Timestamp, actor: &Actor, command: Command) {
        let key = command.kind().as_str();
        let command_id = Uuid::new_v5(
            &IMPORT_NAMESPACE,
            format!("{}:{key}", self.request_id).as_bytes(),
        );
        self.steps.push(Step {
            column,
            at,
            actor: actor.clone(),
            command_id,
            command,
        });
    }
}

/// The steps of a row recorded as `request_id` (the intake id of its channel and ticket).
/// `actor_id` names the import in every synthesised actor (the row's `owner` is used for the
/// station worker when given).
pub fn plan_row(row: ImportRow, actor_id: &str, request_id: RequestId) -> RowPlan {
    let worker = Actor {
        id: row.owner.clone().unwrap_or_else(|| actor_id.into()),
        role: Role::StationWorker,
        unit: Some(row.location.community.clone()),
    };
    let system = |role| Actor {
        id: actor_id.into(),
        role,
        unit: None,
    };
    let mut actors = Actors {
        intake: system(Role::IntakeSystem),
        supervisor: system(Role::Supervisor),
        handler: worker.clone(),
        worker,
    };
    let contact = match (&row.document.contact, row.document.anonymous) {
        (Some(contact), false) => Some((
            ContactRef(Uuid::new_v5(&CONTACT_NAMESPACE, request_id.as_bytes())),
            contact.clone(),
        )),
        _ => None,
    };
    let mut steps = Steps {
        request_id,
        steps: vec![Step {
            column: "received_at",
            at: row.received_at,
            actor: actors.intake.clone(),
            command_id: Uuid::new_v5(&RECEIVE_NAMESPACE, request_id.as_bytes()),
            command: receive(&row, contact.as_ref().map(|(r, _)| r.clone())),
        }],
    };
    registration_steps(&mut steps, &row, &actors);
    handling_steps(&mut steps, &row, &mut actors, actor_id);
    closing_steps(&mut steps, &row, &actors);
    RowPlan {
        line: row.line,
        external_id: row.document.external_id.clone(),
        request_id,
        contact,
        steps: steps.steps,
        status: row.status,
    }
}

/// The `receive` of a row's intake document.
fn receive(row: &ImportRow, contact_ref: Option<ContactRef>) -> Command {
    let doc = &row.document;
    Command::Receive(Receive {
        channel: doc.channel,
        external_id: doc.external_id.clone(),
        contact_ref,
        anonymous: doc.anonymous,
        confidential: doc.confidential,
        no_reply_requested: doc.no_reply_requested,
        location: row.location.clone(),
        place: row.place.clone().map(Box::new),
        text: doc.text.clone(),
        attachments: doc.attachments.clone(),
        priority_lanes: doc.priority_lanes.clone(),
        kind: doc.kind,
        raised_at: doc.raised_at.unwrap_or(row.received_at),
        service_code: doc.service_code.clone(),
        answers: Box::new(doc.answers.clone()),
    })
}

/// Acceptance and classification.
fn registration_steps(steps: &mut Steps, row: &ImportRow, actors: &Actors) {
    if let Some(at) = row.accepted_at {
        steps.push(
            "accepted_at",
            at,
            &actors.worker,
            Command::Accept(Accept::default()),
        );
    }
    if let Some(cl) = &row.classification {
        steps.push(
            "classified_at",
            cl.at,
            &actors.worker,
            Command::Classify(Classify {
                catalogue_item: cl.catalogue_item.clone(),
                request_type: cl.request_type,
                urgency: cl.urgency,
                reason: None,
            }),
        );
    }
}

/// Direct, proxy or referral handling, the lead's sign-off and the start of handling; a
/// referral makes the lead department's handler the handling actor.
fn handling_steps(steps: &mut Steps, row: &ImportRow, actors: &mut Actors, actor_id: &str) {
    let Some(h) = &row.handling else {
        return;
    };
    let command = match h.mode {
        HandlingMode::Direct => Command::HandleDirectly(HandleDirectly::default()),
        HandlingMode::Proxy => Command::StartProxy(StartProxy {
            department: h.department.clone(),
            note: None,
        }),
        HandlingMode::Referral => Command::Refer(Refer {
            lead_department: h.department.clone(),
            assisting_departments: h.assisting.clone(),
            note: None,
            override_reason: h.override_reason.clone(),
        }),
    };
    steps.push("referred_at", h.at, &actors.worker, command);
    if h.mode == HandlingMode::Referral {
        actors.handler = Actor {
            id: actor_id.into(),
            role: Role::DepartmentHandler,
            unit: Some(h.department.clone()),
        };
        let reply_at = row.reply.as_ref().map(|r| r.at);
        if let Some(at) = h.signed_for_at.or(row.contacted_at).or(reply_at) {
            steps.push(
                "signed_for_at",
                at,
                &actors.handler,
                Command::SignFor(SignFor::default()),
            );
        }
    }
    // Handling starts when the resident is contacted (or, for anonymous requests, at the
    // contact time given or the reply). An anonymous request cannot be contacted, so its
    // `contacted_at` is the start of handling (`start_handling`); direct and proxy
    // handling of an anonymous request without one reply without a separate start.
    let Some(at) = row.contacted_at.or(reply_at_of(row)) else {
        return;
    };
    if !row.document.anonymous {
        steps.push(
            "contacted_at",
            at,
            &actors.handler,
            Command::ContactResident(ContactResident {
                method: row.contact_method.clone(),
                note: None,
            }),
        );
    }
    if !row.document.anonymous || h.mode == HandlingMode::Referral || row.contacted_at.is_some() {
        steps.push(
            "contacted_at",
            at,
            &actors.handler,
            Command::StartHandling(StartHandling::default()),
        );
    }
}

/// The reply and its review, the rating and the archive.
fn closing_steps(steps: &mut Steps, row: &ImportRow, actors: &Actors) {
    if let Some(r) = &row.reply {
        steps.push(
            "replied_at",
            r.at,
            &actors.handler,
            Command::Reply(Reply {
                outcome: r.outcome,
                content: r.content.clone(),
                plan: r.plan.clone(),
            }),
        );
        steps.push(
            "reviewed_at",
            r.reviewed_at,
            &actors.supervisor,
            Command::ReviewReply(ReviewReply {
                approved: true,
                reason: None,
            }),
        );
    }
    if let Some(rating) = &row.rating {
        steps.push(
            "rated_at",
            rating.at,
            &actors.intake,
            Command::Rate(Rate {
                satisfaction: rating.satisfaction,
                resolution: rating.resolution,
                comment: rating.comment.clone(),
            }),
        );
    }
    if let Some(at) = row.archived_at {
        steps.push(
            "archived_at",
            at,
            &actors.worker,
            Command::Archive(Archive::default()),
        );
    }
}

fn reply_at_of(row: &ImportRow) -> Option<Timestamp> {
    row.reply.as_ref().map(|r| r.at)
}

/// The request's state, its last hash and the commits decided for it.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The state after every step.
    pub request: Request,
    /// The commits to append, in order.
    pub commits: Vec<Commit>,
}

/// Decides `steps` one after the other against `request` (whose last event hash is
/// `last_hash`), each at its own instant. `recorded_at` is the wall-clock time of the import.
pub fn decide_steps(
    plan: &RowPlan,
    mut request: Request,
    mut last_hash: String,
    steps: &[Step],
    policy: &Policy,
    recorded_at: Timestamp,
    ids: &IdSource,
) -> Result<Decided, RowError> {
    let correlation_id = import_correlation_id(plan.request_id);
    let mut commits = Vec::with_capacity(steps.len());
    for step in steps {
        if referred_by_classification(&request, &step.command) {
            // The item's routing rule dispatched at classification (docs/routing.md).
            continue;
        }
        let context = Context {
            now: step.at,
            actor: &step.actor,
            command_id: step.command_id,
            policy,
            peer: None,
        };
        let events = request.decide(&step.command, &context).map_err(|refusal| {
            let field = match refusal.field() {
                Some("lead_department") => "department",
                Some("location") => "grid",
                Some(f) if super::row::COLUMNS.contains(&f) => f,
                _ => step.column,
            };
            RowError {
                line: plan.line,
                external_id: Some(plan.external_id.clone()),
                code: refusal.code().to_string(),
                field: Some(field.to_string()),
                message: format!("{} refused: {refusal}", step.command.kind().as_str()),
            }
        })?;
        if events.is_empty() {
            continue;
        }
        let commit = CommitHeader {
            commit_id: step.command_id,
            stream: plan.request_id,
            command: step.command.kind(),
            actor: step.actor.clone(),
            occurred_at: step.at,
            recorded_at,
            correlation_id,
            after_version: request.version(),
            after_hash: last_hash,
        }
        .seal(events, |_| ids.mint());
        for envelope in &commit.events {
            request.apply(envelope);
        }
        last_hash = commit.last_hash().map(str::to_string).unwrap_or_default();
        commits.push(commit);
    }
    if let Some(status) = &plan.status
        && request.stage().as_str() != status
    {
        return Err(RowError {
            line: plan.line,
            external_id: Some(plan.external_id.clone()),
            code: "status_mismatch".into(),
            field: Some("status".into()),
            message: format!(
                "the row's lifecycle ends in `{}`, not `{status}`",
                request.stage().as_str()
            ),
        });
    }
    Ok(Decided { request, commits })
}

/// Whether `command` is a first referral to exactly the units the classification already
/// referred the request to under an `auto_dispatch` rule.
fn referred_by_classification(request: &Request, command: &Command) -> bool {
    let Command::Refer(refer) = command else {
        return false;
    };
    let Some(referral) = request.referral() else {
        return false;
    };
    let mut chosen = refer.assisting_departments.clone();
    let mut recorded = request.assisting_departments().to_vec();
    chosen.sort();
    recorded.sort();
    referral.number == 1
        && request.stage() == engine_core::Stage::Dispatched
        && request.lead_department() == Some(refer.lead_department.as_str())
        && chosen == recorded
}
