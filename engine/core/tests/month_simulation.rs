//! A month of one street's requests under supervision, with the Mid-Autumn and National Day
//! holidays inside it, simulated with an injected clock in well under a second of real time,
//! under the community-station profile and under the 12345 city-hotline profile.
//!
//! Requests arrive at random instants (nights and weekends included), are accepted, classified,
//! referred, signed for and handled; some are replied before their deadline, some late, some
//! never within the month. The supervision loop works the way the service's supervisor does:
//! jump the clock to the earliest `next_wakeup`, submit whatever `due` returns.
//!
//! Every completion deadline, reminder, warning, overdue mark and escalation is then checked
//! against expectations computed here, independently of the engine: working days are counted
//! from this file's own copy of the 2026 holiday schedule, natural hours by plain addition,
//! escalations at one grace period apart after the miss.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use engine_core::policy::ClockStart;
use engine_core::supervision::{due, next_wakeup};
use engine_core::{Context, Policy, Request};
use schemas::command::*;
use schemas::{
    Actor, Channel, Command, ContactRef, DeadlineKind, Event, EventEnvelope, GridPath,
    ReplyOutcome, RequestKind, RequestType, Role, SupervisionLevel, Timestamp,
};
use uuid::Uuid;

/// Shanghai is UTC+8 all year.
const OFFSET_HOURS: i64 = 8;

/// 2026 holidays (whole 放假 blocks) and make-up working days (调休上班) around the simulated
/// month, copied from the State Council notice of 2025-11-04.
const HOLIDAYS: &[(u32, u32)] = &[
    (9, 25),
    (9, 26),
    (9, 27),
    (10, 1),
    (10, 2),
    (10, 3),
    (10, 4),
    (10, 5),
    (10, 6),
    (10, 7),
];
const MAKE_UP_DAYS: &[(u32, u32)] = &[(9, 20), (10, 10)];

/// (catalogue item, completion limit as the catalogue states it) used by the simulation.
const ITEMS: &[(&str, Limit)] = &[
    ("um-street-vending", Limit::WorkingDays(3)),
    ("es-public-toilet", Limit::WorkingDays(3)),
    ("fh-food-safety-complaint", Limit::WorkingDays(5)),
    ("ca-home-care", Limit::WorkingDays(10)),
    ("ut-water-outage", Limit::NaturalHours(24)),
    ("ut-power-outage", Limit::NaturalHours(24)),
];

#[derive(Clone, Copy)]
enum Limit {
    WorkingDays(u32),
    NaturalHours(i64),
}

fn is_working_day(date: NaiveDate) -> bool {
    let md = (date.month(), date.day());
    if MAKE_UP_DAYS.contains(&md) {
        return true;
    }
    if HOLIDAYS.contains(&md) {
        return false;
    }
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Independent deadline arithmetic: `n` working days after the local date of `from`, ending at
/// the office's closing time (17:30 local); natural hours by plain addition.
fn expected_due(limit: Limit, from: Timestamp) -> Timestamp {
    match limit {
        Limit::NaturalHours(hours) => from + Duration::hours(hours),
        Limit::WorkingDays(n) => {
            let mut date = (from + Duration::hours(OFFSET_HOURS)).date_naive();
            let mut counted = 0;
            while counted < n {
                date = date.succ_opt().unwrap();
                if is_working_day(date) {
                    counted += 1;
                }
            }
            let local = date.and_time(NaiveTime::from_hms_opt(17, 30, 0).unwrap());
            Utc.from_utc_datetime(&(local - Duration::hours(OFFSET_HOURS)))
        }
    }
}

/// A small deterministic generator (SplitMix64): the simulation is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the scenario does with one request's reply.
#[derive(Clone, Copy, Debug)]
enum ReplyPlan {
    /// Replied this long after handling starts (before or after the deadline).
    After(Duration),
    /// Never replied within the simulated month.
    Never,
}

struct Simulated {
    request: Request,
    events: Vec<EventEnvelope>,
    item: usize,
    community: String,
    grid: String,
    lead: String,
    reply: ReplyPlan,
    received_at: Option<Timestamp>,
    classified_at: Option<Timestamp>,
    handling_started_at: Option<Timestamp>,
    replied_at: Option<Timestamp>,
    /// Scripted steps still to run: (at, step index).
    next_step: Option<(Timestamp, usize)>,
}

struct World {
    policy: Policy,
    requests: Vec<Simulated>,
    counter: u128,
}

impl World {
    fn next_id(&mut self) -> Uuid {
        self.counter += 1;
        Uuid::from_u128(self.counter)
    }

    /// Decides and applies `command` on request `i` at `now`; panics on refusal, because every
    /// scripted step and every supervision firing must be accepted.
    fn run(&mut self, i: usize, actor: &Actor, command: Command, now: Timestamp) -> Vec<Event> {
        let command_id = self.next_id();
        let kind = command.kind();
        let ctx = Context {
            now,
            actor,
            command_id,
            policy: &self.policy,
            peer: None,
        };
        let events = match self.requests[i].request.decide(&command, &ctx) {
            Ok(events) => events,
            Err(refusal) => panic!("request {i}: {} refused at {now}: {refusal}", kind.as_str()),
        };
        for event in &events {
            let event_id = self.next_id();
            let sim = &mut self.requests[i];
            let envelope = EventEnvelope {
                event_id,
                request_id: sim.request.id(),
                version: sim.request.version() + 1,
                schema_version: event.kind().current_version(),
                occurred_at: now,
                recorded_at: now,
                actor: actor.clone(),
                causation_id: command_id,
                correlation_id: command_id,
                prev_hash: String::new(),
                hash: String::new(),
                event: event.clone(),
            };
            sim.request.apply(&envelope);
            sim.events.push(envelope);
        }
        events
    }

    /// Runs request `i`'s next scripted step at `now` and schedules the one after it.
    fn step(&mut self, i: usize, now: Timestamp) {
        let (_, step) = self.requests[i].next_step.take().expect("a scheduled step");
        let sim = &self.requests[i];
        let station = Actor {
            id: format!("worker-{}", sim.community),
            role: Role::StationWorker,
            unit: Some(sim.community.clone()),
        };
        let handler = Actor {
            id: format!("handler-{}", sim.lead),
            role: Role::DepartmentHandler,
            unit: Some(sim.lead.clone()),
        };
        let intake = Actor {
            id: "hotline".into(),
            role: Role::IntakeSystem,
            unit: None,
        };
        let minutes = |m| Duration::minutes(m);
        let (command, actor, then): (Command, Actor, Option<Duration>) = match step {
            0 => (
                Command::Receive(Receive {
                    channel: Channel::Hotline,
                    external_id: format!("sim-{i}"),
                    contact_ref: Some(ContactRef(Uuid::from_u128(0xC0_0000 + i as u128))),
                    anonymous: false,
                    confidential: false,
                    no_reply_requested: false,
                    location: GridPath {
                        street: "jd-01".into(),
                        community: sim.community.clone(),
                        grid: sim.grid.clone(),
                        micro_grid: None,
                    },
                    place: None,
                    text: "simulated request".into(),
                    attachments: vec![],
                    priority_lanes: vec![],
                    kind: RequestKind::Service,
                    raised_at: now,
                    service_code: None,
                    answers: Default::default(),
                }),
                intake,
                Some(minutes(10)),
            ),
            1 => (
                Command::Accept(Accept::default()),
                station,
                Some(minutes(10)),
            ),
            2 => (
                Command::Classify(Classify {
                    catalogue_item: ITEMS[sim.item].0.into(),
                    request_type: RequestType::Complaint,
                    urgency: None,
                    reason: None,
                }),
                station,
                Some(minutes(10)),
            ),
            3 => (
                Command::Refer(Refer {
                    lead_department: sim.lead.clone(),
                    assisting_departments: vec![],
                    note: None,
                    override_reason: None,
                }),
                station,
                Some(minutes(30)),
            ),
            4 => (
                Command::SignFor(SignFor::default()),
                handler,
                Some(minutes(30)),
            ),
            5 => (
                Command::ContactResident(ContactResident {
                    method: "phone".into(),
                    note: None,
                }),
                handler,
                Some(minutes(20)),
            ),
            6 => {
                let then = match sim.reply {
                    ReplyPlan::After(after) => Some(after),
                    ReplyPlan::Never => None,
                };
                (
                    Command::StartHandling(StartHandling::default()),
                    handler,
                    then,
                )
            }
            7 => (
                Command::Reply(Reply {
                    outcome: ReplyOutcome::Resolved,
                    content: "handled".into(),
                    plan: None,
                }),
                handler,
                None,
            ),
            _ => unreachable!("seven steps"),
        };
        self.run(i, &actor, command, now);
        let sim = &mut self.requests[i];
        match step {
            0 => sim.received_at = Some(now),
            2 => sim.classified_at = Some(now),
            6 => sim.handling_started_at = Some(now),
            7 => sim.replied_at = Some(now),
            _ => {}
        }
        sim.next_step = then.map(|after| (now + after, step + 1));
    }
}

fn supervisor() -> Actor {
    Actor {
        id: "supervisor".into(),
        role: Role::System,
        unit: None,
    }
}

#[test]
fn a_month_of_a_streets_requests_is_supervised_exactly_as_computed_independently() {
    simulate_a_month(Policy::for_tests());
}

/// The same month under the 12345 city-hotline profile: limits run from dispatch (the
/// classification that routes the ticket), escalation after its own grace period.
#[test]
fn a_month_under_the_city_hotline_profile_is_supervised_exactly_as_computed_independently() {
    let policy = Policy::builtin(engine_core::policy::BUILTIN_CITY_HOTLINE_12345)
        .expect("the built-in hotline profile");
    assert_eq!(policy.clock_start(), ClockStart::OnDispatch);
    assert_eq!(policy.escalation_grace(), Duration::hours(24));
    simulate_a_month(policy);
}

/// Runs the month under `policy` and checks every firing against the independent expectation.
fn simulate_a_month(policy: Policy) {
    // Arrange: 300 requests arriving over 30 days from Monday 2026-09-14, Shanghai time.
    let grace = policy.escalation_grace();
    let month_start = Utc.with_ymd_and_hms(2026, 9, 13, 16, 0, 0).unwrap();
    let horizon = month_start + Duration::days(48);
    let mut rng = Rng(0x5EED_2026);
    let communities = [
        ("sq-0101", ["wg-010101", "wg-010102", "wg-010103"]),
        ("sq-0102", ["wg-010201", "wg-010202", "wg-010203"]),
        ("sq-0103", ["wg-010301", "wg-010302", "wg-010303"]),
    ];
    let mut world = World {
        policy,
        requests: Vec::new(),
        counter: 0,
    };
    for i in 0..300u128 {
        let arrival = month_start + Duration::minutes(rng.below(30 * 24 * 60) as i64);
        let (community, grids) = communities[rng.below(3) as usize];
        let item = rng.below(ITEMS.len() as u64) as usize;
        let reply = match rng.below(10) {
            0..=4 => ReplyPlan::After(Duration::minutes(30 + rng.below(36 * 60) as i64)),
            5..=7 => ReplyPlan::After(Duration::hours(24 + rng.below(24 * 12) as i64)),
            _ => ReplyPlan::Never,
        };
        let lead = match ITEMS[item].0 {
            "um-street-vending" => "urban-management",
            "es-public-toilet" => "sanitation",
            "fh-food-safety-complaint" => "market-regulation",
            "ca-home-care" => "civil-affairs",
            "ut-water-outage" => "water",
            _ => "power",
        };
        world.requests.push(Simulated {
            request: Request::new(Uuid::from_u128(0xC17_0000 + i)),
            events: Vec::new(),
            item,
            community: community.into(),
            grid: grids[rng.below(3) as usize].into(),
            lead: lead.into(),
            reply,
            received_at: None,
            classified_at: None,
            handling_started_at: None,
            replied_at: None,
            next_step: Some((arrival, 0)),
        });
    }

    // Act: the event loop — scripted steps and supervision firings in time order.
    let mut firings = 0usize;
    loop {
        let scripted = world
            .requests
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.next_step.map(|(at, _)| (at, i)))
            .min();
        let wakeup = world
            .requests
            .iter()
            .enumerate()
            .filter_map(|(i, s)| next_wakeup(&s.request, &world.policy).map(|at| (at, i)))
            .min();
        let (now, i, is_step) = match (scripted, wakeup) {
            (Some((a, i)), Some((b, _))) if a <= b => (a, i, true),
            (_, Some((b, j))) => (b, j, false),
            (Some((a, i)), None) => (a, i, true),
            (None, None) => break,
        };
        if now > horizon {
            break;
        }
        if is_step {
            world.step(i, now);
        } else {
            let commands = due(&world.requests[i].request, now, &world.policy);
            assert!(
                !commands.is_empty(),
                "next_wakeup {now} promised work for request {i}"
            );
            for command in commands {
                world.run(i, &supervisor(), command, now);
                firings += 1;
            }
            // Due again at the same instant would be a double firing.
            assert!(due(&world.requests[i].request, now, &world.policy).is_empty());
        }
    }

    // Assert: every request's supervision equals the independent expectation.
    let mut n_missed = 0;
    let mut n_escalated = 0;
    for (i, sim) in world.requests.iter().enumerate() {
        let received_at = sim.received_at.expect("every request is received");
        let classified_at = sim
            .classified_at
            .unwrap_or_else(|| panic!("request {i} was never classified"));
        // Limits run from receipt (community stations) or from dispatch (12345 hotlines).
        let start = match world.policy.clock_start() {
            ClockStart::OnReceipt => received_at,
            ClockStart::OnDispatch => classified_at,
            ClockStart::NextWorkingDay => unreachable!("no simulated profile starts next day"),
        };
        let expected = expected_due(ITEMS[sim.item].1, start);
        let stamped = sim.request.deadlines().expect("classified").clone();
        assert_eq!(
            stamped.completion_due_at, expected,
            "request {i}: completion deadline"
        );

        let mut seen: BTreeMap<&'static str, Vec<Timestamp>> = BTreeMap::new();
        let mut levels = Vec::new();
        for envelope in &sim.events {
            let at = envelope.occurred_at;
            match &envelope.event {
                Event::ReminderSent(e) if e.deadline == DeadlineKind::Completion => {
                    seen.entry("remind").or_default().push(at)
                }
                Event::PreBreachWarned(e) if e.deadline == DeadlineKind::Completion => {
                    seen.entry("warn").or_default().push(at)
                }
                Event::DeadlineMissed(e) => {
                    assert_eq!(e.deadline, DeadlineKind::Completion, "request {i}: {e:?}");
                    seen.entry("missed").or_default().push(at)
                }
                Event::Escalated(e) => {
                    levels.push(e.level);
                    seen.entry("escalated").or_default().push(at)
                }
                Event::ReminderSent(_) | Event::PreBreachWarned(_) => {
                    panic!("request {i}: supervision of a deadline that was met: {envelope:?}")
                }
                _ => {}
            }
        }
        // A firing happens at its instant if the request is still open then (a reply at
        // the same instant wins only if it came first; scripted steps run first on ties).
        let open_at = |at: Timestamp| sim.replied_at.is_none_or(|r| r > at);
        let expect_once = |name: &str, at: Timestamp| {
            let want: Vec<Timestamp> = if open_at(at) && at <= horizon {
                vec![at]
            } else {
                vec![]
            };
            assert_eq!(
                seen.get(name).cloned().unwrap_or_default(),
                want,
                "request {i}: {name}"
            );
        };
        expect_once("remind", stamped.remind_at);
        expect_once("warn", stamped.warn_at);
        expect_once("missed", expected);

        let want_escalations: Vec<Timestamp> = (1..=3)
            .map(|k| expected + grace * k)
            .filter(|at| open_at(*at) && *at <= horizon)
            .collect();
        assert_eq!(
            seen.get("escalated").cloned().unwrap_or_default(),
            want_escalations,
            "request {i}: escalations"
        );
        let want_levels = [
            SupervisionLevel::Daily,
            SupervisionLevel::Listed,
            SupervisionLevel::Interview,
        ];
        assert_eq!(
            levels,
            want_levels[..want_escalations.len()],
            "request {i}: levels"
        );
        n_missed += usize::from(seen.contains_key("missed"));
        n_escalated += want_escalations.len();
    }
    // The scenario really exercises what it checks.
    assert!(n_missed > 50, "only {n_missed} missed deadlines");
    assert!(n_escalated > 100, "only {n_escalated} escalations");
    assert!(firings > 500, "only {firings} firings");
    let spans_holiday = world.requests.iter().filter(|s| {
        let c = s.classified_at.unwrap();
        let due = s.request.deadlines().unwrap().completion_due_at;
        c < Utc.with_ymd_and_hms(2026, 9, 30, 16, 0, 0).unwrap()
            && due > Utc.with_ymd_and_hms(2026, 10, 7, 16, 0, 0).unwrap()
    });
    assert!(
        spans_holiday.count() > 5,
        "few deadlines span the National Day week"
    );
}
