//! Projections against real PostgreSQL and SQLite: exact known rates, randomized rates equal to
//! an independent computation, exactly-once under aborted and repeated batches, rebuild/swap
//! equality, and the read API over HTTP. Every test body runs on both databases.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use projections::Projections;
use projections::query::{Counts, Dim, Filter, Period, StatsQuery};
use schemas::event::*;
use schemas::*;
use uuid::Uuid;

type Ts = DateTime<Utc>;

pub(crate) fn base() -> Ts {
    Utc.with_ymd_and_hms(2026, 3, 1, 1, 0, 0)
        .single()
        .expect("valid instant")
}

/// A database of one kind for one test; dropped at the end.
pub(crate) enum Guard {
    Pg(tests::pg::TestDb),
    Lite(tempfile::TempDir),
}

pub(crate) async fn open_db(pg: bool) -> (Projections, Guard) {
    if pg {
        let db = tests::pg::TestDb::create()
            .await
            .expect("create test database");
        let p = Projections::connect(&db.url)
            .await
            .expect("connect postgres");
        (p, Guard::Pg(db))
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        let p = Projections::connect(&url).await.expect("connect sqlite");
        (p, Guard::Lite(dir))
    }
}

pub(crate) async fn close(g: Guard) {
    match g {
        Guard::Pg(db) => db.drop_db().await,
        Guard::Lite(dir) => drop(dir),
    }
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                tokio::time::timeout(std::time::Duration::from_secs(240), super::$name(true))
                    .await
                    .expect("test timed out");
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                tokio::time::timeout(std::time::Duration::from_secs(240), super::$name(false))
                    .await
                    .expect("test timed out");
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Commit builder

pub(crate) struct Req {
    pub(crate) id: Uuid,
    pub(crate) version: u64,
    pub(crate) prev: String,
}

#[derive(Default)]
pub(crate) struct Log {
    pub(crate) commits: Vec<LoggedCommit>,
    seq: u128,
}

impl Log {
    pub(crate) fn emit(
        &mut self,
        r: &mut Req,
        at: Ts,
        command: CommandKind,
        events: Vec<Event>,
    ) -> Vec<Uuid> {
        let mut envs = Vec::new();
        for event in events {
            self.seq += 1;
            r.version += 1;
            let env = EventEnvelope {
                event_id: Uuid::from_u128(self.seq),
                request_id: r.id,
                version: r.version,
                schema_version: 0,
                occurred_at: at,
                recorded_at: at,
                actor: Actor {
                    id: "worker-1".into(),
                    role: Role::StationWorker,
                    unit: None,
                },
                causation_id: Uuid::from_u128((1 << 100) | self.seq),
                correlation_id: r.id,
                prev_hash: r.prev.clone(),
                hash: String::new(),
                event,
            }
            .seal();
            r.prev = env.hash.clone();
            envs.push(env);
        }
        let ids = envs.iter().map(|e| e.event_id).collect();
        let position = self.commits.len() as u64 + 1;
        self.commits.push(LoggedCommit {
            position,
            commit: Commit {
                commit_id: Uuid::from_u128((1 << 120) | u128::from(position)),
                request_id: r.id,
                command,
                events: envs,
                signature: None,
            },
        });
        ids
    }
}

/// The choices of one request's path through the workflow.
#[derive(Clone, Default)]
struct Path {
    community: String,
    declined: bool,
    dispute: bool,
    /// Lead department and whether the first referral is returned (then re-referred to `dept-r`).
    referred: Option<(String, bool)>,
    contact_after_min: Option<i64>,
    extension: bool,
    reply_after_min: Option<i64>,
    rating: Option<(Satisfaction, Resolution)>,
    rating_corrected: bool,
    appeal_upheld: bool,
    rerate: Option<(Satisfaction, Resolution)>,
    missed: bool,
    upward: bool,
    whistle: bool,
    dept_rating: Option<u8>,
}

/// What the generator knows about a request, for the independent computation.
pub(crate) struct Facts {
    community: String,
    dispute: bool,
    accepted: bool,
    response_due: Ts,
    responded: Option<Ts>,
    completion_due: Option<Ts>,
    replied: Option<Ts>,
    rating: Option<(Satisfaction, Resolution)>,
    reopened: bool,
    referred: bool,
    returned: bool,
}

pub(crate) fn received(community: &str, dispute: bool, t0: Ts, i: usize) -> Event {
    Event::RequestReceived(RequestReceived {
        channel: Channel::ALL[i % 6],
        external_id: format!("ext-{i}"),
        contact_ref: Some(ContactRef(Uuid::from_u128(9_000_000 + i as u128))),
        anonymous: false,
        confidential: false,
        no_reply_requested: false,
        location: GridPath {
            street: "jd-01".into(),
            community: community.into(),
            grid: format!("{community}-g{}", i % 3),
            micro_grid: None,
        },
        place: None,
        text: "路灯不亮".into(),
        attachments: vec![],
        priority_lanes: vec![],
        kind: if dispute {
            RequestKind::Dispute
        } else {
            RequestKind::Service
        },
        raised_at: t0,
        accept_due_at: t0 + Duration::hours(24),
        service_code: None,
        answers: Default::default(),
    })
}

fn generate(log: &mut Log, i: usize, t0: Ts, p: &Path) -> Facts {
    let mut r = Req {
        id: Uuid::from_u128(0x5000_0000 + i as u128),
        version: 0,
        prev: schemas::envelope::GENESIS_HASH.into(),
    };
    log.emit(
        &mut r,
        t0,
        CommandKind::Receive,
        vec![received(&p.community, p.dispute, t0, i)],
    );
    let mut facts = Facts {
        community: p.community.clone(),
        dispute: p.dispute,
        accepted: false,
        response_due: t0 + Duration::hours(24),
        responded: None,
        completion_due: None,
        replied: None,
        rating: None,
        reopened: false,
        referred: false,
        returned: false,
    };
    if p.declined {
        log.emit(
            &mut r,
            t0 + Duration::minutes(5),
            CommandKind::Decline,
            vec![Event::RequestDeclined(RequestDeclined {
                disposition: Disposition::OutsidePublicRemit,
                explanation: "market matter".into(),
                emergency_line: None,
                legal_channel: None,
                duplicate_of: None,
            })],
        );
        return facts;
    }
    let t = t0 + Duration::minutes(10);
    log.emit(
        &mut r,
        t,
        CommandKind::Accept,
        vec![Event::RequestAccepted(RequestAccepted {
            owner: format!("worker-{}", i % 5),
            within_limit: true,
            note: None,
        })],
    );
    facts.accepted = true;
    let response_due = t0 + Duration::hours(24);
    let completion_due = t0 + Duration::days(5);
    log.emit(
        &mut r,
        t + Duration::minutes(5),
        CommandKind::Classify,
        vec![Event::RequestClassified(RequestClassified {
            catalogue_item: "um-streetlight".into(),
            category: if i.is_multiple_of(2) {
                "urban_management".into()
            } else {
                "social_security".into()
            },
            request_type: RequestType::Help,
            urgency: Urgency::General,
            handling_mode: HandlingMode::Referral,
            departments: vec!["dept-a".into()],
            escalation_chain: vec![],
            deadlines: Deadlines {
                response_due_at: response_due,
                completion_due_at: completion_due,
                remind_at: completion_due - Duration::days(1),
                warn_at: completion_due - Duration::hours(12),
                policy: "community-station@2026.1".into(),
                catalogue_version: "2026.1".into(),
                provisional: false,
            },
            excluded_from_satisfaction: false,
            reclassified: false,
            reason: None,
            routing: None,
        })],
    );
    facts.response_due = response_due;
    facts.completion_due = Some(completion_due);
    let mut lead = None;
    if let Some((dept, returned)) = &p.referred {
        facts.referred = true;
        let refer = |d: &str, n: u32| {
            Event::ReferredToDepartment(ReferredToDepartment {
                lead_department: d.into(),
                assisting_departments: vec![],
                note: None,
                sign_off_due_at: t0 + Duration::hours(2),
                return_window_ends_at: t0 + Duration::days(1),
                referral_number: n,
                provisional: false,
                assistance_due_at: None,
                routing: None,
            })
        };
        log.emit(
            &mut r,
            t + Duration::minutes(20),
            CommandKind::Refer,
            vec![refer(dept, 1)],
        );
        let mut d = dept.clone();
        if *returned {
            facts.returned = true;
            log.emit(
                &mut r,
                t + Duration::minutes(30),
                CommandKind::ReturnReferral,
                vec![Event::ReferralReturned(ReferralReturned {
                    department: dept.clone(),
                    reason: "not ours".into(),
                    legal_basis: None,
                })],
            );
            d = "dept-r".into();
            log.emit(
                &mut r,
                t + Duration::minutes(40),
                CommandKind::Refer,
                vec![refer(&d, 2)],
            );
        }
        log.emit(
            &mut r,
            t + Duration::minutes(50),
            CommandKind::SignFor,
            vec![Event::ReferralSignedFor(ReferralSignedFor {
                department: d.clone(),
                note: None,
            })],
        );
        lead = Some(d);
    }
    if p.whistle {
        log.emit(
            &mut r,
            t + Duration::minutes(55),
            CommandKind::BlowWhistle,
            vec![Event::WhistleBlown(WhistleBlown {
                departments: vec!["dept-a".into(), "dept-b".into()],
                summary: "joint enforcement".into(),
                report_due_at: t + Duration::hours(2),
            })],
        );
        log.emit(
            &mut r,
            t + Duration::minutes(85),
            CommandKind::ReportToWhistle,
            vec![Event::DepartmentReported(DepartmentReported {
                department: "dept-a".into(),
                note: "on site".into(),
                on_time: true,
            })],
        );
    }
    if let Some(m) = p.contact_after_min {
        let at = t0 + Duration::minutes(m);
        facts.responded = Some(at);
        log.emit(
            &mut r,
            at,
            CommandKind::ContactResident,
            vec![Event::ResidentContacted(ResidentContacted {
                method: "phone".into(),
                note: None,
                within_limit: at <= response_due,
            })],
        );
    }
    let mut due = completion_due;
    if p.extension {
        due = completion_due + Duration::days(3);
        facts.completion_due = Some(due);
        log.emit(
            &mut r,
            t0 + Duration::days(2),
            CommandKind::GrantExtension,
            vec![Event::ExtensionGranted(ExtensionGranted {
                previous_due_at: completion_due,
                new_due_at: due,
                remind_at: due - Duration::days(1),
                warn_at: due - Duration::hours(12),
                note: None,
            })],
        );
    }
    if p.upward {
        let report_id = Uuid::from_u128(0x7000_0000 + i as u128);
        log.emit(
            &mut r,
            t0 + Duration::hours(3),
            CommandKind::ReportUpward,
            vec![Event::ReportedUpward(ReportedUpward {
                report_id,
                level: UpwardLevel::Street,
                summary: "needs coordination".into(),
                attachments: vec![],
            })],
        );
        log.emit(
            &mut r,
            t0 + Duration::hours(4),
            CommandKind::AcknowledgeUpward,
            vec![Event::UpwardAcknowledged(UpwardAcknowledged { report_id })],
        );
        if i.is_multiple_of(2) {
            log.emit(
                &mut r,
                t0 + Duration::hours(10),
                CommandKind::RecordUpwardFeedback,
                vec![Event::UpwardFeedbackReceived(UpwardFeedbackReceived {
                    report_id,
                    level: UpwardLevel::Street,
                    kind: FeedbackKind::Instruction,
                    content: "coordinate with dept-a".into(),
                    department: None,
                })],
            );
        }
    }
    if p.missed {
        log.emit(
            &mut r,
            due,
            CommandKind::MarkOverdue,
            vec![Event::DeadlineMissed(DeadlineMissed {
                deadline: DeadlineKind::Completion,
                due_at: due,
            })],
        );
    }
    let Some(reply_min) = p.reply_after_min else {
        return facts;
    };
    let reply = |log: &mut Log, r: &mut Req, at: Ts| {
        log.emit(
            r,
            at,
            CommandKind::Reply,
            vec![Event::ResultReplied(ResultReplied {
                outcome: ReplyOutcome::Resolved,
                content: "fixed".into(),
                plan: None,
                on_time: at <= due,
            })],
        );
        log.emit(
            r,
            at + Duration::minutes(30),
            CommandKind::ReviewReply,
            vec![Event::ReplyReviewed(ReplyReviewed {
                approved: true,
                reason: None,
            })],
        );
    };
    let at = t0 + Duration::minutes(reply_min);
    reply(log, &mut r, at);
    facts.replied = Some(at);
    if facts.responded.is_none() {
        facts.responded = Some(at);
    }
    let rate = |log: &mut Log, r: &mut Req, at: Ts, (s, res): (Satisfaction, Resolution)| {
        log.emit(
            r,
            at,
            CommandKind::Rate,
            vec![Event::Rated(Rated {
                satisfaction: s,
                resolution: res,
                comment: None,
            })],
        )[0]
    };
    if let Some(rating) = p.rating {
        let rated_id = rate(log, &mut r, at + Duration::hours(2), rating);
        facts.rating = Some(rating);
        if p.rating_corrected {
            log.emit(
                &mut r,
                at + Duration::hours(3),
                CommandKind::Correct,
                vec![Event::EventCorrected(EventCorrected {
                    event_id: rated_id,
                    corrected_type: EventKind::Rated,
                    reason: "wrong ticket".into(),
                })],
            );
            facts.rating = None;
        } else if p.appeal_upheld {
            log.emit(
                &mut r,
                at + Duration::hours(3),
                CommandKind::DecideAppeal,
                vec![Event::AppealDecided(AppealDecided {
                    upheld: true,
                    reason: "evidence".into(),
                })],
            );
            facts.rating = None;
        }
        if let Some(rerate) = p.rerate {
            facts.reopened = true;
            log.emit(
                &mut r,
                at + Duration::hours(4),
                CommandKind::Reopen,
                vec![Event::Reopened(Reopened {
                    reason: "dissatisfied".into(),
                    reopen_count: 1,
                })],
            );
            reply(log, &mut r, at + Duration::hours(20));
            rate(log, &mut r, at + Duration::hours(22), rerate);
            facts.rating = Some(rerate);
        }
    }
    if let (Some(score), Some(d)) = (p.dept_rating, &lead) {
        log.emit(
            &mut r,
            at + Duration::hours(23),
            CommandKind::RateDepartment,
            vec![Event::DepartmentRated(DepartmentRated {
                department: d.clone(),
                score,
                comment: None,
            })],
        );
    }
    log.emit(
        &mut r,
        at + Duration::days(1),
        CommandKind::Archive,
        vec![Event::Archived(Archived { note: None })],
    );
    facts
}

/// Independent computation of the counts from the generator's facts (docs/metrics.md formulas).
fn expected(facts: &[Facts], now: Ts) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for f in facts {
        let c = out.entry(f.community.clone()).or_default();
        c.received += 1;
        if !f.accepted {
            continue;
        }
        c.accepted += 1;
        if f.responded.is_some() || f.response_due <= now {
            c.response_due += 1;
        }
        if f.responded.is_some_and(|r| r <= f.response_due) {
            c.responded_on_time += 1;
        }
        if f.replied.is_some() || f.completion_due.is_some_and(|d| d <= now) {
            c.due += 1;
        }
        if let Some(r) = f.replied {
            c.completed += 1;
            if f.completion_due.is_none_or(|d| r <= d) {
                c.completed_on_time += 1;
            }
        }
        if let Some((s, res)) = f.rating {
            c.rated += 1;
            if res == Resolution::Resolved {
                c.resolved += 1;
            }
            if !f.dispute {
                c.satisfaction_rated += 1;
                match s {
                    Satisfaction::Satisfied => c.satisfied += 1,
                    Satisfaction::BasicallySatisfied => c.basically_satisfied += 1,
                    Satisfaction::Dissatisfied => c.dissatisfied += 1,
                }
            }
        }
        c.reopened += i64::from(f.reopened);
        c.referred += i64::from(f.referred);
        c.returned += i64::from(f.returned);
    }
    out
}

pub(crate) async fn apply_all(p: &Projections, commits: &[LoggedCommit], batch: usize) {
    for name in Projections::projector_names() {
        for chunk in commits.chunks(batch) {
            p.apply(name, chunk).await.expect("apply");
        }
        assert_eq!(
            p.checkpoint(name).await.expect("checkpoint"),
            commits.len() as u64
        );
    }
}

async fn by_community(p: &Projections, now: Ts) -> BTreeMap<String, Counts> {
    let rows = p
        .stats(&StatsQuery {
            period: Period::Month,
            group_by: vec![Dim::Community],
            filter: Filter::default(),
            now,
        })
        .await
        .expect("stats");
    rows.into_iter()
        .map(|r| (r.dims["community"].clone().expect("community"), r.counts))
        .collect()
}

/// A small deterministic generator (xorshift64*), so runs are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

fn random_path(rng: &mut Rng) -> Path {
    let sat = [
        Satisfaction::Satisfied,
        Satisfaction::BasicallySatisfied,
        Satisfaction::Dissatisfied,
    ];
    let res = [
        Resolution::Resolved,
        Resolution::PartiallyResolved,
        Resolution::Unresolved,
    ];
    let pick = |rng: &mut Rng| (sat[rng.below(3) as usize], res[rng.below(3) as usize]);
    let replied = rng.chance(80);
    let rated = replied && rng.chance(85);
    Path {
        community: format!("sq-{:02}", rng.below(6)),
        declined: rng.chance(5),
        dispute: rng.chance(10),
        referred: rng.chance(60).then(|| {
            (
                ["dept-a", "dept-b", "dept-c", "dept-d"][rng.below(4) as usize].to_owned(),
                rng.chance(10),
            )
        }),
        contact_after_min: rng.chance(85).then(|| 60 + rng.below(40 * 60) as i64),
        extension: rng.chance(15),
        reply_after_min: replied.then(|| 60 * (2 + rng.below(8 * 24) as i64)),
        rating: rated.then(|| pick(rng)),
        rating_corrected: rng.chance(5),
        appeal_upheld: rng.chance(5),
        rerate: rng.chance(10).then(|| pick(rng)),
        missed: !replied && rng.chance(50),
        upward: rng.chance(5),
        whistle: rng.chance(5),
        dept_rating: rng.chance(30).then(|| 1 + rng.below(5) as u8),
    }
}

pub(crate) fn random_log(n: usize, seed: u64) -> (Log, Vec<Facts>) {
    let mut rng = Rng(seed);
    let mut log = Log::default();
    let mut facts = Vec::new();
    for i in 0..n {
        let path = random_path(&mut rng);
        facts.push(generate(
            &mut log,
            i,
            base() + Duration::minutes(5 * i as i64),
            &path,
        ));
    }
    // Interleave requests as a real log would: stable sort by the first event's time is already
    // the generation order; shuffle neighbouring commits of different requests a little.
    (log, facts)
}

// ---------------------------------------------------------------------------------------------
// Tests

both!(known_rates);
async fn known_rates(pg: bool) {
    let (p, g) = open_db(pg).await;
    let mut log = Log::default();
    let mut facts = Vec::new();
    // Community sq-res: 256 rated requests, 218 rated resolved.
    for i in 0..256 {
        let path = Path {
            community: "sq-res".into(),
            contact_after_min: Some(120),
            reply_after_min: Some(60 * 24),
            rating: Some((
                Satisfaction::Satisfied,
                if i < 218 {
                    Resolution::Resolved
                } else {
                    Resolution::Unresolved
                },
            )),
            ..Path::default()
        };
        facts.push(generate(
            &mut log,
            i,
            base() + Duration::minutes(i as i64),
            &path,
        ));
    }
    // Community sq-sat: 500 rated service requests: 400 satisfied, 83 basically, 17 dissatisfied;
    // plus 40 dispute-mediation ratings (all dissatisfied) that must not count.
    for i in 0..540 {
        let s = match i {
            0..400 => Satisfaction::Satisfied,
            400..483 => Satisfaction::BasicallySatisfied,
            _ => Satisfaction::Dissatisfied,
        };
        let path = Path {
            community: "sq-sat".into(),
            dispute: i >= 500,
            contact_after_min: Some(120),
            reply_after_min: Some(60 * 24),
            rating: Some((s, Resolution::Resolved)),
            ..Path::default()
        };
        facts.push(generate(
            &mut log,
            1000 + i,
            base() + Duration::minutes(i as i64),
            &path,
        ));
    }
    apply_all(&p, &log.commits, 300).await;
    let now = base() + Duration::days(20);
    let got = by_community(&p, now).await;
    let res = &got["sq-res"];
    assert_eq!((res.resolved, res.rated), (218, 256));
    assert_eq!(res.rates().resolution_rate, Some(0.8515625));
    let sat = &got["sq-sat"];
    assert_eq!(
        (
            sat.satisfied,
            sat.basically_satisfied,
            sat.satisfaction_rated
        ),
        (400, 83, 500)
    );
    assert_eq!(
        sat.rated, 540,
        "disputes count for resolution, not satisfaction"
    );
    assert_eq!(sat.rates().satisfaction_rate, Some(483.0 / 500.0));
    assert!((sat.rates().satisfaction_rate.expect("rate") - 0.966).abs() < 1e-12);
    assert_eq!(sat.rates().strict_satisfaction_rate, Some(0.8));
    assert_eq!(got, expected(&facts, now));
    close(g).await;
}

both!(randomized_rates_match_independent_computation);
async fn randomized_rates_match_independent_computation(pg: bool) {
    let (p, g) = open_db(pg).await;
    let (log, facts) = random_log(2000, 0x00C0_FFEE_1234_5678);
    apply_all(&p, &log.commits, 500).await;
    for days in [3, 6, 40] {
        let now = base() + Duration::days(days);
        let got = by_community(&p, now).await;
        assert_eq!(got, expected(&facts, now), "rates at now = base + {days} d");
    }
    // Percentiles: nearest rank over replied − received, whole population.
    let rows = p
        .stats(&StatsQuery {
            period: Period::Month,
            group_by: vec![],
            filter: Filter::default(),
            now: base(),
        })
        .await
        .expect("stats");
    let mut secs: Vec<i64> = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        if let Some(r) = f.replied {
            secs.push((r - (base() + Duration::minutes(5 * i as i64))).num_seconds());
        }
    }
    secs.sort_unstable();
    let p50 = secs[(secs.len() as f64 * 0.5).ceil() as usize - 1];
    let p90 = secs[(secs.len() as f64 * 0.9).ceil() as usize - 1];
    let total: i64 = rows.iter().map(|r| r.counts.completed).sum();
    assert_eq!(total as usize, secs.len());
    if rows.len() == 1 {
        assert_eq!(rows[0].rates.handling_p50_seconds, Some(p50));
        assert_eq!(rows[0].rates.handling_p90_seconds, Some(p90));
    }
    close(g).await;
}

both!(exactly_once_under_abort_and_replay);
async fn exactly_once_under_abort_and_replay(pg: bool) {
    let (log, _) = random_log(400, 42);
    let commits = log.commits;
    // Reference: a clean application.
    let (clean, g1) = open_db(pg).await;
    apply_all(&clean, &commits, 500).await;
    let reference_requests = clean.snapshot("requests").await.expect("snapshot");
    let reference_assessment = clean.snapshot("assessment").await.expect("snapshot");

    let (p, g2) = open_db(pg).await;
    p.apply("requests", &commits[..100])
        .await
        .expect("first batch");
    // A failing batch (out of order) changes nothing.
    let mut bad = commits[100..110].to_vec();
    bad.swap(0, 5);
    assert!(p.apply("requests", &bad).await.is_err());
    assert_eq!(p.checkpoint("requests").await.expect("cp"), 100);
    // A batch aborted mid-flight: its transaction is dropped (or it completed before the abort).
    for delay_ms in [0u64, 2, 5, 20] {
        let p2 = p.clone();
        let batch = commits[100..].to_vec();
        let task = tokio::spawn(async move { p2.apply("requests", &batch).await });
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        task.abort();
        let _ = task.await;
        let cp = p.checkpoint("requests").await.expect("cp");
        assert!(
            cp == 100 || cp == commits.len() as u64,
            "checkpoint {cp} is all or nothing"
        );
    }
    // Restart: resume from the checkpoint; re-sending everything applies each commit once.
    apply_all(&p, &commits, 128).await;
    let once = p.snapshot("requests").await.expect("snapshot");
    apply_all(&p, &commits, 77).await;
    assert_eq!(
        p.snapshot("requests").await.expect("snapshot"),
        once,
        "same batches twice change nothing"
    );
    assert_eq!(once, reference_requests);
    assert_eq!(
        p.snapshot("assessment").await.expect("snapshot"),
        reference_assessment
    );
    close(g1).await;
    close(g2).await;
}

both!(concurrent_appliers_do_not_double_apply);
async fn concurrent_appliers_do_not_double_apply(pg: bool) {
    let (log, _) = random_log(300, 7);
    let commits = log.commits;
    let (clean, g1) = open_db(pg).await;
    apply_all(&clean, &commits, 500).await;
    let (p, g2) = open_db(pg).await;
    let mut tasks = Vec::new();
    for w in 0..3usize {
        let p = p.clone();
        let commits = commits.clone();
        tasks.push(tokio::spawn(async move {
            let size = 40 + 17 * w;
            loop {
                let cp = p.checkpoint("requests").await.expect("cp") as usize;
                if cp >= commits.len() {
                    break;
                }
                let end = (cp + size).min(commits.len());
                p.apply("requests", &commits[cp..end]).await.expect("apply");
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    assert_eq!(
        p.snapshot("requests").await.expect("s"),
        clean.snapshot("requests").await.expect("s")
    );
    close(g1).await;
    close(g2).await;
}

both!(rebuild_into_shadow_and_swap_equals_live);
async fn rebuild_into_shadow_and_swap_equals_live(pg: bool) {
    let (log, _) = random_log(500, 99);
    let commits = log.commits;
    let (p, g) = open_db(pg).await;
    // Live is behind: half applied, the rest arrives while the rebuild runs.
    let half = commits.len() / 2;
    apply_all(&p, &commits[..half], 200).await;
    let (clean, g2) = open_db(pg).await;
    apply_all(&clean, &commits, 500).await;
    for name in Projections::projector_names() {
        let src = commits.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let d2 = done.clone();
        let p2 = p.clone();
        let n = *name;
        let live = commits.clone();
        // The live projector keeps applying during the rebuild.
        let applier = tokio::spawn(async move {
            for chunk in live[half..].chunks(50) {
                p2.apply(n, chunk).await.expect("live apply");
            }
        });
        let at = p
            .rebuild(
                name,
                commits.len() as u64,
                |from| {
                    let batch: Vec<LoggedCommit> = src
                        .iter()
                        .filter(|c| c.position >= from)
                        .take(97)
                        .cloned()
                        .collect();
                    async move { Ok::<_, std::convert::Infallible>(batch) }
                },
                move |done, _total| d2.store(done, std::sync::atomic::Ordering::SeqCst),
            )
            .await
            .expect("rebuild");
        applier.await.expect("applier");
        assert_eq!(
            done.load(std::sync::atomic::Ordering::SeqCst),
            commits.len() as u64
        );
        assert_eq!(at, commits.len() as u64);
        // Let the live loop finish whatever it had left after the swap.
        apply_all_one(&p, name, &commits).await;
        assert_eq!(
            p.snapshot(name).await.expect("s"),
            clean.snapshot(name).await.expect("s"),
            "{name}"
        );
    }
    // Rebuild again from an empty shadow: identical.
    let before = p.snapshot("requests").await.expect("s");
    p.rebuild(
        "requests",
        commits.len() as u64,
        |from| {
            let batch: Vec<LoggedCommit> = commits
                .iter()
                .filter(|c| c.position >= from)
                .take(500)
                .cloned()
                .collect();
            async move { Ok::<_, std::convert::Infallible>(batch) }
        },
        |_, _| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(p.snapshot("requests").await.expect("s"), before);
    // And the indexes are back (queries using them still answer).
    let page = p
        .requests(&projections::query::ListQuery {
            list: projections::query::RequestList::Overdue,
            filter: Filter::default(),
            since_position: None,
            limit: 10,
            cursor: None,
            now: base() + Duration::days(30),
        })
        .await
        .expect("overdue");
    assert!(!page.items.is_empty());
    close(g).await;
    close(g2).await;
}

async fn apply_all_one(p: &Projections, name: &str, commits: &[LoggedCommit]) {
    for chunk in commits.chunks(200) {
        p.apply(name, chunk).await.expect("apply");
    }
}

pub(crate) async fn get(base_url: &str, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{base_url}{path}"))
        .await
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

both!(read_api);
async fn read_api(pg: bool) {
    let (p, g) = open_db(pg).await;
    let (log, facts) = random_log(300, 1234);
    let commits = log.commits;
    apply_all(&p, &commits, 100).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = {
        let p = p.clone();
        tokio::spawn(async move { p.serve(listener).await })
    };
    let now = base() + Duration::days(6);
    let now_q = now.to_rfc3339().replace('+', "%2B");

    // Stats equal the independent computation.
    let (s, body) = get(
        &url,
        &format!("/api/v1/stats?period=month&group_by=community&now={now_q}"),
    )
    .await;
    assert_eq!(s, 200);
    let exp = expected(&facts, now);
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), exp.len());
    for it in items {
        let c: Counts = serde_json::from_value(it["counts"].clone()).expect("counts");
        assert_eq!(
            &c,
            &exp[it["dims"]["community"].as_str().expect("community")]
        );
    }

    // Overdue: open and (missed or due before now), paged with a cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let c = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (s, body) = get(&url, &format!("/api/v1/overdue?now={now_q}&limit=7{c}")).await;
        assert_eq!(s, 200);
        for it in body["items"].as_array().expect("items") {
            assert_eq!(it["open"], true);
            let due: Ts = it["due_at"].as_str().expect("due").parse().expect("ts");
            assert!(it["overdue"] == true || due < now);
            seen.push(it["request_id"].as_str().expect("id").to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected_overdue = facts
        .iter()
        .filter(|f| f.accepted && f.replied.is_none() && f.completion_due.is_some_and(|d| d < now))
        .count();
    assert!(
        seen.len() >= expected_overdue && expected_overdue > 0,
        "{} vs {}",
        seen.len(),
        expected_overdue
    );
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len(), "pages do not overlap");

    // Requests feed: since_position returns exactly the rows changed after N.
    let n = commits.len() as u64 - 40;
    let changed: std::collections::BTreeSet<String> = commits[n as usize..]
        .iter()
        .map(|c| c.commit.request_id.to_string())
        .collect();
    let (s, body) = get(
        &url,
        &format!("/api/v1/requests?since_position={n}&limit=1000"),
    )
    .await;
    assert_eq!(s, 200);
    let got: std::collections::BTreeSet<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["request_id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(got, changed);

    // Full feed paged by 50 covers every request once.
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let c = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let (_, body) = get(&url, &format!("/api/v1/requests?limit=50{c}")).await;
        all.extend(
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["request_id"].clone()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), facts.len());

    // Rankings: composite = 10·response + 45·resolution + 45·satisfaction by default.
    let (s, body) = get(
        &url,
        &format!("/api/v1/rankings/departments?month=2026-03&now={now_q}"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert!(!items.is_empty());
    for it in items {
        let r = &it["rates"];
        if let (Some(a), Some(b), Some(c)) = (
            r["response_rate"].as_f64(),
            r["resolution_rate"].as_f64(),
            r["satisfaction_rate"].as_f64(),
        ) {
            let comp = it["composite"].as_f64().expect("composite");
            assert!((comp - (10.0 * a + 45.0 * b + 45.0 * c)).abs() < 1e-9);
        }
    }
    let (_, body2) = get(
        &url,
        &format!("/api/v1/rankings/departments?month=2026-03&now={now_q}&w1=20&w2=40&w3=40"),
    )
    .await;
    assert_eq!(body2["weights"]["response"], 20.0);

    // Worklists and the upward ledger answer; a bad cursor is a 400.
    let (s, body) = get(
        &url,
        &format!("/api/v1/worklists/workers/worker-1?now={now_q}"),
    )
    .await;
    assert_eq!(s, 200);
    for it in body["items"].as_array().expect("items") {
        assert_eq!(it["owner"], "worker-1");
        assert_eq!(it["open"], true);
    }
    let (s, _) = get(&url, "/api/v1/upward?limit=5").await;
    assert_eq!(s, 200);
    let (s, body) = get(&url, "/api/v1/requests?cursor=zz").await;
    assert_eq!((s, body["code"].as_str()), (400, Some("malformed")));
    server.abort();
    close(g).await;
}

/// Serves `p` on a free loopback port; the server task and its base URL.
pub(crate) async fn serve(
    p: &Projections,
) -> (tokio::task::JoinHandle<std::io::Result<()>>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let p = p.clone();
    (tokio::spawn(async move { p.serve(listener).await }), url)
}

/// The composite the assessment publishes for one ranking row under 10/40/40/10
/// (docs/metrics.md, "Assessment"), recomputed from the row's own rates.
fn composite_10_40_40_10(row: &serde_json::Value) -> Option<f64> {
    let r = &row["rates"];
    let base = 10.0 * r["response_rate"].as_f64()?
        + 40.0 * r["resolution_rate"].as_f64()?
        + 40.0 * r["satisfaction_rate"].as_f64()?;
    Some(match row["bottom_up_avg"].as_f64() {
        Some(avg) => base + 10.0 * avg / 5.0,
        None => base * 100.0 / 90.0,
    })
}

/// Rankings: departments within their tiers with bottom-up ratings weighted, streets and
/// communities by the rates of the requests located in them.
async fn rankings_by_tier_street_and_community(pg: bool) {
    use projections::query::{Assessment, Weights};
    let (p, g) = open_db(pg).await;
    let (log, facts) = random_log(300, 4321);
    apply_all(&p, &log.commits, 100).await;
    let now = base() + Duration::days(6);
    let departments: Vec<String> = p
        .department_ranking("2026-03", Weights::default(), now)
        .await
        .expect("ranking")
        .into_iter()
        .map(|d| d.department)
        .collect();
    assert!(departments.len() >= 2, "{departments:?}");
    let tiers = departments
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let tier = if i % 2 == 0 {
                "district_department"
            } else {
                "public_service"
            };
            (d.clone(), tier.to_owned())
        })
        .collect();
    let weights = Weights {
        response: 10.0,
        resolution: 40.0,
        satisfaction: 40.0,
        bottom_up: 10.0,
    };
    let p = p.with_assessment(Assessment { weights, tiers });
    let (server, url) = serve(&p).await;
    let now_q = now.to_rfc3339().replace('+', "%2B");
    let q = format!("month=2026-03&now={now_q}&limit=1000");

    // Departments: the deployment's weights, bottom-up ratings counted, ranks within tiers.
    let (s, body) = get(&url, &format!("/api/v1/rankings/departments?{q}")).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["weights"]["bottom_up"], 10.0);
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), departments.len());
    assert!(
        items.iter().any(|d| d["bottom_up_avg"].is_f64()),
        "no ratings: {body}"
    );
    let mut next_in_tier: BTreeMap<String, u64> = BTreeMap::new();
    for (i, d) in items.iter().enumerate() {
        assert_eq!(d["rank"].as_u64(), Some(i as u64 + 1));
        if let (Some(shown), Some(expected)) = (d["composite"].as_f64(), composite_10_40_40_10(d)) {
            assert!((shown - expected).abs() < 1e-9, "{d}");
        }
        let tier = d["tier"]
            .as_str()
            .expect("every department has a tier")
            .to_owned();
        let n = next_in_tier.entry(tier).or_default();
        *n += 1;
        assert_eq!(d["tier_rank"].as_u64(), Some(*n), "{d}");
    }
    let (s, body) = get(
        &url,
        &format!("/api/v1/rankings/departments?{q}&tier=public_service"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let tier: Vec<_> = body["items"].as_array().expect("items").to_vec();
    assert_eq!(tier.len() as u64, next_in_tier["public_service"]);
    for (i, d) in tier.iter().enumerate() {
        assert_eq!(d["tier"], "public_service");
        assert_eq!(d["tier_rank"].as_u64(), Some(i as u64 + 1));
    }

    // Communities: counts equal the independent computation; nobody rates them bottom-up, so
    // the three rates carry the whole weight (scaled from 90 to 100).
    let exp = expected(&facts, now);
    let (s, body) = get(
        &url,
        &format!("/api/v1/rankings/communities?{q}&street=jd-01"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), exp.len());
    let mut previous = f64::INFINITY;
    for (i, c) in items.iter().enumerate() {
        let counts: Counts = serde_json::from_value(c["counts"].clone()).expect("counts");
        assert_eq!(&counts, &exp[c["unit"].as_str().expect("unit")]);
        assert_eq!(
            (c["street"].as_str(), c["rank"].as_u64()),
            (Some("jd-01"), Some(i as u64 + 1))
        );
        let r = &c["rates"];
        if let (Some(a), Some(b), Some(s)) = (
            r["response_rate"].as_f64(),
            r["resolution_rate"].as_f64(),
            r["satisfaction_rate"].as_f64(),
        ) {
            let composite = c["composite"].as_f64().expect("composite");
            assert!((composite - (10.0 * a + 40.0 * b + 40.0 * s) * 100.0 / 90.0).abs() < 1e-9);
            assert!(composite <= previous, "ranked by composite, descending");
            previous = composite;
        }
    }

    // Streets: the one street holds every request.
    let (s, body) = get(&url, &format!("/api/v1/rankings/streets?{q}")).await;
    assert_eq!(s, 200, "{body}");
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["unit"], "jd-01");
    assert_eq!(
        items[0]["counts"]["received"].as_u64(),
        Some(facts.len() as u64)
    );

    // Bad parameters are refused with the field named.
    for (path, field) in [
        ("/api/v1/rankings/streets?w4=101", "w4"),
        ("/api/v1/rankings/streets?tier=public_service", "tier"),
        ("/api/v1/rankings/departments?tier=null", "tier"),
        ("/api/v1/rankings/communities?month=2026-3", "month"),
    ] {
        let (s, body) = get(&url, path).await;
        assert_eq!(
            (s, body["field"].as_str()),
            (400, Some(field)),
            "{path}: {body}"
        );
    }
    let (_, body) = get(
        &url,
        &format!("/api/v1/rankings/communities?{q}&street=nowhere"),
    )
    .await;
    assert_eq!(body["items"], serde_json::json!([]));
    server.abort();
    close(g).await;
}
both!(rankings_by_tier_street_and_community);
