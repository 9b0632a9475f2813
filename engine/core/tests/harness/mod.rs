//! Test harness for the request state machine: runs commands through `decide`, wraps the
//! produced events in envelopes (versions and ids from a counter, never random) and applies
//! them. Shared by the state-machine, refusal, property and supervision tests.

#![allow(dead_code)]

use chrono::{Duration, TimeZone, Utc};
use engine_core::{Context, Policy, Refusal, Request, Stage};
use schemas::command::*;
use schemas::{
    Actor, Channel, Command, CommandKind, ContactRef, DeadlineKind, Disposition, EmergencyLine,
    Event, EventEnvelope, GridPath, ReplyOutcome, RequestKind, RequestType, Resolution, Role,
    Satisfaction, SupervisionLevel, Timestamp, UpwardLevel,
};
use uuid::Uuid;

/// The community the test request is located in.
pub const COMMUNITY: &str = "sq-0101";
/// A catalogue item routed by referral, 3 working days.
pub const ITEM: &str = "um-street-vending";
/// The lead department of the standard referral.
pub const LEAD: &str = "urban-management";
/// The assisting department of the standard referral.
pub const ASSISTING: &str = "sanitation";
/// A department not involved in the standard referral.
pub const OTHER: &str = "market-regulation";
/// The department the standard proxy handling works with.
pub const PROXY: &str = "hrss";

/// Monday 2 March 2026, 09:00 in Shanghai: a working day.
pub fn start() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

fn actor(id: &str, role: Role, unit: Option<&str>) -> Actor {
    Actor {
        id: id.into(),
        role,
        unit: unit.map(Into::into),
    }
}
pub fn intake() -> Actor {
    actor("hotline-platform", Role::IntakeSystem, None)
}
pub fn station() -> Actor {
    actor("worker-1", Role::StationWorker, Some(COMMUNITY))
}
pub fn supervisor() -> Actor {
    actor("centre-1", Role::Supervisor, None)
}
pub fn dept(unit: &str) -> Actor {
    actor(
        &format!("handler-{unit}"),
        Role::DepartmentHandler,
        Some(unit),
    )
}
pub fn higher() -> Actor {
    actor("district", Role::HigherLevel, None)
}
pub fn system() -> Actor {
    actor("engine", Role::System, None)
}
pub fn auditor() -> Actor {
    actor("audit-1", Role::Auditor, None)
}

/// A request driven through `decide` and `apply`, with its recorded envelopes.
#[derive(Clone)]
pub struct Harness {
    pub policy: Policy,
    pub request: Request,
    pub events: Vec<EventEnvelope>,
    pub now: Timestamp,
    counter: u128,
    /// The other request a link or merge names ([`PEER`], received in the same community).
    pub peer: Option<Request>,
}

/// The id of the harness's second request, the original of links and merges.
pub const PEER: Uuid = Uuid::from_u128(0xB2A0);

/// A second request, received in the same community: the original links and merges name.
pub fn peer_request() -> Request {
    let mut p = Harness {
        policy: Policy::for_tests(),
        request: Request::new(PEER),
        events: Vec::new(),
        now: start(),
        counter: 0x1000,
        peer: None,
    };
    p.run(&intake(), receive_cmd(false));
    p.request
}

/// `merge_into` the harness's peer.
pub fn merge_cmd() -> Command {
    Command::MergeInto(MergeInto {
        original: PEER,
        reason: "same streetlight, reported twice".into(),
    })
}

impl Harness {
    pub fn new() -> Harness {
        let id = Uuid::from_u128(0xB1A0);
        Harness {
            policy: Policy::for_tests(),
            request: Request::new(id),
            events: Vec::new(),
            now: start(),
            counter: 0,
            peer: Some(peer_request()),
        }
    }

    fn next_id(&mut self) -> Uuid {
        self.counter += 1;
        Uuid::from_u128(self.counter)
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// Decides at the current time; on success wraps, records and applies the events.
    pub fn try_run(&mut self, actor: &Actor, command: Command) -> Result<Vec<Event>, Refusal> {
        let command_id = self.next_id();
        let ctx = Context {
            now: self.now,
            actor,
            command_id,
            policy: &self.policy,
            peer: self.peer.as_ref(),
        };
        let events = self.request.decide(&command, &ctx)?;
        for event in &events {
            let envelope = EventEnvelope {
                event_id: self.next_id(),
                request_id: self.request.id(),
                version: self.request.version() + 1,
                schema_version: event.kind().current_version(),
                occurred_at: self.now,
                recorded_at: self.now,
                actor: actor.clone(),
                causation_id: command_id,
                correlation_id: command_id,
                prev_hash: String::new(),
                hash: String::new(),
                event: event.clone(),
            };
            self.request.apply(&envelope);
            self.events.push(envelope);
        }
        Ok(events)
    }

    /// Runs a command that must be accepted, one minute after the previous one.
    pub fn run(&mut self, actor: &Actor, command: Command) -> Vec<Event> {
        self.advance(Duration::minutes(1));
        let kind = command.kind();
        match self.try_run(actor, command) {
            Ok(events) => events,
            Err(refusal) => panic!(
                "{} refused in {:?}: {refusal:?}",
                kind.as_str(),
                self.request.stage()
            ),
        }
    }

    /// Asserts the command is refused with `code` and records nothing.
    pub fn refuse(&mut self, actor: &Actor, command: Command, code: &str) -> Refusal {
        let before = (self.request.clone(), self.events.len());
        let kind = command.kind();
        match self.try_run(actor, command) {
            Ok(events) => panic!("{} accepted, expected {code}: {events:?}", kind.as_str()),
            Err(refusal) => {
                assert_eq!(refusal.code(), code, "{refusal:?}");
                assert_eq!(
                    (self.request.clone(), self.events.len()),
                    before,
                    "a refusal changed state"
                );
                refusal
            }
        }
    }

    pub fn stage(&self) -> Stage {
        self.request.stage()
    }

    /// The id of the last recorded event of `kind`.
    pub fn last_event_id(&self, kind: schemas::EventKind) -> Option<Uuid> {
        self.events
            .iter()
            .rev()
            .find(|e| e.event.kind() == kind)
            .map(|e| e.event_id)
    }
}

pub fn receive_cmd(anonymous: bool) -> Command {
    Command::Receive(Receive {
        channel: Channel::Hotline,
        external_id: "T-1".into(),
        contact_ref: if anonymous {
            None
        } else {
            Some(ContactRef(Uuid::from_u128(77)))
        },
        anonymous,
        confidential: false,
        no_reply_requested: false,
        location: GridPath {
            street: "jd-01".into(),
            community: COMMUNITY.into(),
            grid: "wg-010101".into(),
            micro_grid: None,
        },
        place: None,
        text: "Stalls block the pavement on Xingguo Road".into(),
        attachments: vec![],
        priority_lanes: vec![],
        kind: RequestKind::Service,
        raised_at: start(),
        service_code: None,
        answers: Default::default(),
    })
}

pub fn classify_cmd(reason: Option<&str>) -> Command {
    Command::Classify(Classify {
        catalogue_item: ITEM.into(),
        request_type: RequestType::Complaint,
        urgency: None,
        reason: reason.map(Into::into),
    })
}

pub fn refer_cmd(lead: &str, assisting: &[&str]) -> Command {
    Command::Refer(Refer {
        lead_department: lead.into(),
        assisting_departments: assisting.iter().map(|s| s.to_string()).collect(),
        note: None,
        override_reason: None,
    })
}

pub fn reply_cmd(outcome: ReplyOutcome) -> Command {
    Command::Reply(Reply {
        outcome,
        content: "The stalls were moved".into(),
        plan: None,
    })
}

pub fn rate_cmd(satisfaction: Satisfaction, resolution: Resolution) -> Command {
    Command::Rate(Rate {
        satisfaction,
        resolution,
        comment: None,
    })
}

pub fn decline_cmd(disposition: Disposition) -> Command {
    Command::Decline(Decline {
        disposition,
        explanation: "explained to the resident".into(),
        emergency_line: Some(EmergencyLine::Police110),
        legal_channel: Some("administrative review".into()),
        duplicate_of: Some(Uuid::from_u128(0xD0)),
    })
}

/// A harness whose request stands in `stage`, reached by a fixed path: referral for every
/// stage from `Dispatched` on; an upward report is made right after acceptance.
pub fn at_stage(stage: Stage) -> Harness {
    at_stage_from(stage, start())
}

/// A request brought to `stage` by the standard path, starting at `now`.
pub fn at_stage_from(stage: Stage, now: Timestamp) -> Harness {
    let mut h = Harness::new();
    h.now = now;
    use Stage::*;
    if stage == New {
        return h;
    }
    h.run(&intake(), receive_cmd(false));
    match stage {
        Received => return h,
        NotAccepted => {
            h.run(&station(), decline_cmd(Disposition::OutsidePublicRemit));
            return h;
        }
        TransferredEmergency => {
            h.run(&station(), decline_cmd(Disposition::EmergencyTransfer));
            return h;
        }
        LinkedDuplicate => {
            h.run(&station(), decline_cmd(Disposition::DuplicateNoNewFacts));
            return h;
        }
        Merged => {
            h.run(&station(), merge_cmd());
            return h;
        }
        _ => {}
    }
    h.run(&station(), Command::Accept(Accept::default()));
    h.run(
        &station(),
        Command::ReportUpward(ReportUpward {
            level: UpwardLevel::Street,
            summary: "needs street coordination".into(),
            attachments: vec![],
        }),
    );
    if stage == Accepted {
        return h;
    }
    h.run(&station(), classify_cmd(None));
    match stage {
        Classified => return h,
        DirectHandling => {
            h.run(
                &station(),
                Command::HandleDirectly(HandleDirectly::default()),
            );
            return h;
        }
        ProxyHandling => {
            h.run(
                &station(),
                Command::StartProxy(StartProxy {
                    department: PROXY.into(),
                    note: None,
                }),
            );
            return h;
        }
        _ => {}
    }
    h.run(&station(), refer_cmd(LEAD, &[ASSISTING]));
    if stage == Dispatched {
        return h;
    }
    if stage == ReturnRequested {
        h.run(
            &dept(LEAD),
            Command::ReturnReferral(ReturnReferral {
                reason: "not ours".into(),
                legal_basis: None,
            }),
        );
        return h;
    }
    h.run(&dept(LEAD), Command::SignFor(SignFor::default()));
    if stage == SignedFor {
        return h;
    }
    h.run(
        &dept(LEAD),
        Command::ContactResident(ContactResident {
            method: "phone".into(),
            note: None,
        }),
    );
    if stage == Contacted {
        return h;
    }
    h.run(
        &dept(LEAD),
        Command::StartHandling(StartHandling::default()),
    );
    if stage == InProgress {
        return h;
    }
    if stage == TerminationPending {
        h.run(
            &dept(LEAD),
            Command::RequestTermination(RequestTermination {
                reason: "resident refuses".into(),
            }),
        );
        return h;
    }
    h.run(&dept(LEAD), reply_cmd(ReplyOutcome::Resolved));
    if stage == Replied {
        return h;
    }
    h.run(
        &supervisor(),
        Command::ReviewReply(ReviewReply {
            approved: true,
            reason: None,
        }),
    );
    if stage == AwaitingCallback {
        return h;
    }
    h.run(
        &station(),
        Command::RecordCallback(RecordCallback {
            outcome: Some(schemas::CallbackOutcome::Reached),
            reached: None,
            note: None,
        }),
    );
    h.run(
        &station(),
        rate_cmd(Satisfaction::Dissatisfied, Resolution::Unresolved),
    );
    if stage == Rated {
        return h;
    }
    h.run(&station(), Command::Archive(Archive::default()));
    assert_eq!(h.stage(), Archived);
    h
}

/// The actor of the handling unit: the lead department for referrals, else the station.
pub fn handling_actor(h: &Harness) -> Actor {
    match h.request.lead_department() {
        Some(lead) => dept(lead),
        None => station(),
    }
}

/// A valid sample command of `kind` for the request in `h`, with a suitable actor and the
/// instant to issue it at.
pub fn sample(kind: CommandKind, h: &Harness) -> (Actor, Command, Timestamp) {
    use CommandKind as K;
    let now = h.now + Duration::minutes(1);
    let report_id = h
        .request
        .upward_reports()
        .first()
        .map(|r| r.report_id)
        .unwrap_or(Uuid::from_u128(0xAB));
    let deadline = h
        .request
        .deadlines_in_force()
        .first()
        .copied()
        .unwrap_or((DeadlineKind::Completion, now));
    let unit = handling_actor(h);
    let (actor, command) = match kind {
        K::Receive => (intake(), receive_cmd(false)),
        K::Accept => (station(), Command::Accept(Accept::default())),
        K::Decline => (station(), decline_cmd(Disposition::OutsidePublicRemit)),
        K::Classify => (station(), classify_cmd(Some("wrong item"))),
        K::HandleDirectly => (
            station(),
            Command::HandleDirectly(HandleDirectly::default()),
        ),
        K::StartProxy => (
            station(),
            Command::StartProxy(StartProxy {
                department: PROXY.into(),
                note: None,
            }),
        ),
        K::Refer => (supervisor(), refer_cmd(OTHER, &[])),
        K::SignFor => (dept(LEAD), Command::SignFor(SignFor::default())),
        K::ReturnReferral => (
            dept(LEAD),
            Command::ReturnReferral(ReturnReferral {
                reason: "not ours".into(),
                legal_basis: None,
            }),
        ),
        K::RejectReturn => (
            supervisor(),
            Command::RejectReturn(RejectReturn {
                reason: "duty list".into(),
            }),
        ),
        K::ContactResident => (
            unit,
            Command::ContactResident(ContactResident {
                method: "phone".into(),
                note: None,
            }),
        ),
        K::StartHandling => (unit, Command::StartHandling(StartHandling::default())),
        K::NoteProgress => (
            station(),
            Command::NoteProgress(NoteProgress {
                note: "visited".into(),
            }),
        ),
        K::ReportAssistance => (
            dept(ASSISTING),
            Command::ReportAssistance(ReportAssistance {
                note: "cleaned".into(),
            }),
        ),
        K::RequestExtension => (
            unit,
            Command::RequestExtension(RequestExtension {
                reason: "waiting on permits".into(),
                working_days: 2,
            }),
        ),
        K::GrantExtension => (
            supervisor(),
            Command::GrantExtension(GrantExtension::default()),
        ),
        K::DenyExtension => (
            supervisor(),
            Command::DenyExtension(DenyExtension {
                reason: "no".into(),
            }),
        ),
        K::PauseClock => (
            unit,
            Command::PauseClock(PauseClock {
                reason: "waiting on resident".into(),
            }),
        ),
        K::ResumeClock => (unit, Command::ResumeClock(ResumeClock::default())),
        K::RequestTermination => (
            unit,
            Command::RequestTermination(RequestTermination {
                reason: "legal route".into(),
            }),
        ),
        K::DecideTermination => (
            supervisor(),
            Command::DecideTermination(DecideTermination {
                approved: true,
                reason: "legal route".into(),
            }),
        ),
        K::ReportUpward => (
            station(),
            Command::ReportUpward(ReportUpward {
                level: UpwardLevel::District,
                summary: "coordination".into(),
                attachments: vec![],
            }),
        ),
        K::RecordUpwardFeedback => (
            higher(),
            Command::RecordUpwardFeedback(RecordUpwardFeedback {
                report_id,
                kind: schemas::FeedbackKind::Instruction,
                content: "coordinate with sanitation".into(),
                department: None,
            }),
        ),
        K::AcknowledgeUpward => (
            higher(),
            Command::AcknowledgeUpward(AcknowledgeUpward { report_id }),
        ),
        K::Reply => (unit, reply_cmd(ReplyOutcome::Resolved)),
        K::ReviewReply => (
            supervisor(),
            Command::ReviewReply(ReviewReply {
                approved: true,
                reason: None,
            }),
        ),
        K::RecordCallback => (
            station(),
            Command::RecordCallback(RecordCallback {
                outcome: Some(schemas::CallbackOutcome::Reached),
                reached: None,
                note: None,
            }),
        ),
        K::Rate => (
            station(),
            rate_cmd(Satisfaction::Satisfied, Resolution::Resolved),
        ),
        K::Reopen => (
            supervisor(),
            Command::Reopen(Reopen {
                reason: "unresolved".into(),
            }),
        ),
        K::Archive => (station(), Command::Archive(Archive::default())),
        K::RestampDeadlines => (
            system(),
            Command::RestampDeadlines(RestampDeadlines {
                reason: "calendar now covers 2027".into(),
            }),
        ),
        K::Remind => (
            system(),
            Command::Remind(Remind {
                deadline: deadline.0,
                due_at: deadline.1,
            }),
        ),
        K::Warn => (
            system(),
            Command::Warn(Warn {
                deadline: deadline.0,
                due_at: deadline.1,
            }),
        ),
        K::MarkOverdue => {
            let cmd = Command::MarkOverdue(MarkOverdue {
                deadline: deadline.0,
                due_at: deadline.1,
            });
            return (system(), cmd, now.max(deadline.1));
        }
        K::Escalate => (
            system(),
            Command::Escalate(Escalate {
                level: SupervisionLevel::Daily,
                to: "street".into(),
                reason: "overdue".into(),
            }),
        ),
        K::BlowWhistle => (
            station(),
            Command::BlowWhistle(BlowWhistle {
                departments: vec![OTHER.into()],
                summary: "joint enforcement".into(),
            }),
        ),
        K::ReportToWhistle => (
            dept(OTHER),
            Command::ReportToWhistle(ReportToWhistle {
                department: OTHER.into(),
                note: "on site".into(),
            }),
        ),
        K::ReleaseFromWhistle => (
            station(),
            Command::ReleaseFromWhistle(ReleaseFromWhistle {
                department: OTHER.into(),
                reason: "not needed".into(),
            }),
        ),
        K::RateDepartment => (
            station(),
            Command::RateDepartment(RateDepartment {
                department: OTHER.into(),
                score: 4,
                comment: None,
            }),
        ),
        K::AppealRating => (
            dept(LEAD),
            Command::AppealRating(AppealRating {
                reason: "false rating".into(),
                evidence: vec![],
            }),
        ),
        K::DecideAppeal => (
            supervisor(),
            Command::DecideAppeal(DecideAppeal {
                upheld: true,
                reason: "evidence".into(),
            }),
        ),
        K::Correct => {
            let event_id = h
                .last_event_id(schemas::EventKind::RequestClassified)
                .or_else(|| h.events.first().map(|e| e.event_id))
                .unwrap_or(Uuid::from_u128(0xEE));
            (
                supervisor(),
                Command::Correct(Correct {
                    event_id,
                    reason: "entered in error".into(),
                }),
            )
        }
        K::CorrectContact => (
            station(),
            Command::CorrectContact(CorrectContact {
                reason: "the resident gave a new phone number".into(),
            }),
        ),
        K::AttachMedia => (
            supervisor(),
            Command::AttachMedia(schemas::command::AttachMedia {
                sha256: "ab".repeat(32),
                content_type: "image/jpeg".into(),
                size_bytes: 1024,
                purpose: schemas::command::AttachmentPurpose::Intake,
                personal: None,
            }),
        ),
        K::LinkDuplicate => (
            station(),
            Command::LinkDuplicate(LinkDuplicate {
                original: PEER,
                reason: "the same matter as the earlier request".into(),
            }),
        ),
        K::MergeInto => (station(), merge_cmd()),
        K::RecordDuplicate => (
            station(),
            Command::RecordDuplicate(RecordDuplicate {
                duplicate: Uuid::from_u128(0xB3A0),
                relation: schemas::LinkRelation::Related,
            }),
        ),
        K::ModeratePublicText => (
            supervisor(),
            Command::ModeratePublicText(ModeratePublicText {
                moderation: ModerationAction::Redact,
                redacted_text: Some("路灯不亮 (门牌号已隐去)".into()),
                reason: "the text names a neighbour's flat".into(),
            }),
        ),
        K::Assign => (
            unit,
            Command::Assign(Assign {
                assignee: "colleague-1".into(),
                reason: None,
            }),
        ),
        K::Reassign => (
            unit,
            Command::Reassign(Reassign {
                assignee: "colleague-2".into(),
                reason: "on leave".into(),
            }),
        ),
        K::Claim => (unit, Command::Claim(Claim::default())),
        K::SignAssistance => (
            dept(ASSISTING),
            Command::SignAssistance(SignAssistance::default()),
        ),
        K::ReturnAssistance => (
            dept(ASSISTING),
            Command::ReturnAssistance(ReturnAssistance {
                reason: "not our remit".into(),
            }),
        ),
        K::RecordReferenceData
        | K::RecordDigest
        | K::PublishRateReport
        | K::RecordRateReportFeedback => {
            panic!("internal writers have no workflow command")
        }
    };
    (actor, command, now)
}
