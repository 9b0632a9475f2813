//! A paused completion clock in the `requests` read model, on PostgreSQL and SQLite: a paused
//! request is neither overdue, due soon nor due in the rates until `clock_resumed`, whose new
//! deadline then applies; a reply during a pause is judged with the paused time added; a
//! rebuild reproduces the live tables, `paused_since` included.

use chrono::{DateTime, Duration, TimeZone, Utc};
use projections::Projections;
use projections::query::{Filter, ListQuery, Period, RequestList, StatsQuery};
use schemas::event::*;
use schemas::*;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

type Ts = DateTime<Utc>;

const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

fn t0() -> Ts {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0)
        .single()
        .expect("valid instant")
}

/// Completion deadline stamped on every request of the scenario.
fn due() -> Ts {
    t0() + Duration::days(5)
}

/// A database of one kind for one test.
enum Db {
    Pg(String),
    Lite(tempfile::TempDir),
}

async fn open(pg: bool) -> (Projections, Db) {
    if pg {
        let name = format!("bianmin_pause_{}", Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&format!("{PG_SERVER}/postgres"))
            .await
            .expect("connect postgres server");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        admin.close().await.expect("close admin connection");
        let p = Projections::connect(&format!("{PG_SERVER}/{name}"))
            .await
            .expect("connect projections");
        (p, Db::Pg(name))
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        let p = Projections::connect(&url).await.expect("connect sqlite");
        (p, Db::Lite(dir))
    }
}

async fn close(p: Projections, db: Db) {
    drop(p);
    match db {
        Db::Lite(dir) => drop(dir),
        Db::Pg(name) => {
            if let Ok(mut admin) = PgConnection::connect(&format!("{PG_SERVER}/postgres")).await {
                let _ = sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
                let _ = admin.close().await;
            }
        }
    }
}

/// The commit log of the scenario, built by hand.
#[derive(Default)]
struct Log {
    commits: Vec<LoggedCommit>,
    seq: u128,
}

struct Req {
    id: Uuid,
    version: u64,
    prev: String,
}

impl Log {
    fn emit(&mut self, r: &mut Req, at: Ts, command: CommandKind, event: Event) {
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
        let position = self.commits.len() as u64 + 1;
        self.commits.push(LoggedCommit {
            position,
            commit: Commit {
                commit_id: Uuid::from_u128((1 << 120) | u128::from(position)),
                request_id: r.id,
                command,
                events: vec![env],
                signature: None,
            },
        });
    }

    /// A request received at `t0`, accepted, classified (completion due at [`due`]),
    /// contacted and in progress.
    fn in_progress(&mut self, n: u128) -> Req {
        let t = t0();
        let mut r = Req {
            id: Uuid::from_u128(0x7000_0000 + n),
            version: 0,
            prev: schemas::envelope::GENESIS_HASH.into(),
        };
        self.emit(
            &mut r,
            t,
            CommandKind::Receive,
            Event::RequestReceived(RequestReceived {
                channel: Channel::ALL[0],
                external_id: format!("pause-{n}"),
                contact_ref: None,
                anonymous: false,
                confidential: false,
                no_reply_requested: false,
                location: GridPath {
                    street: "jd-01".into(),
                    community: "sq-01".into(),
                    grid: "sq-01-g1".into(),
                    micro_grid: None,
                },
                place: None,
                text: "路灯不亮".into(),
                attachments: vec![],
                priority_lanes: vec![],
                kind: RequestKind::Service,
                raised_at: t,
                accept_due_at: t + Duration::hours(24),
                service_code: None,
                answers: Default::default(),
            }),
        );
        self.emit(
            &mut r,
            t + Duration::minutes(10),
            CommandKind::Accept,
            Event::RequestAccepted(RequestAccepted {
                owner: "worker-1".into(),
                within_limit: true,
                note: None,
            }),
        );
        self.emit(
            &mut r,
            t + Duration::minutes(20),
            CommandKind::Classify,
            Event::RequestClassified(RequestClassified {
                catalogue_item: "um-streetlight".into(),
                category: "urban_management".into(),
                request_type: RequestType::Help,
                urgency: Urgency::General,
                handling_mode: HandlingMode::Direct,
                departments: vec![],
                escalation_chain: vec![],
                deadlines: Deadlines {
                    response_due_at: t + Duration::hours(24),
                    completion_due_at: due(),
                    remind_at: due() - Duration::days(1),
                    warn_at: due() - Duration::hours(12),
                    policy: "community-station@2026.1".into(),
                    catalogue_version: "2026.1".into(),
                    provisional: false,
                },
                excluded_from_satisfaction: false,
                reclassified: false,
                reason: None,
                routing: None,
            }),
        );
        self.emit(
            &mut r,
            t + Duration::hours(1),
            CommandKind::ContactResident,
            Event::ResidentContacted(ResidentContacted {
                method: "phone".into(),
                note: None,
                within_limit: true,
            }),
        );
        self.emit(
            &mut r,
            t + Duration::hours(2),
            CommandKind::StartHandling,
            Event::HandlingStarted(HandlingStarted { note: None }),
        );
        r
    }

    fn pause(&mut self, r: &mut Req, at: Ts) {
        self.emit(
            r,
            at,
            CommandKind::PauseClock,
            Event::ClockPaused(ClockPaused {
                reason: "Waiting for the resident".into(),
            }),
        );
    }

    fn resume(&mut self, r: &mut Req, since: Ts, at: Ts) {
        let paused = at - since;
        self.emit(
            r,
            at,
            CommandKind::ResumeClock,
            Event::ClockResumed(ClockResumed {
                paused_seconds: paused.num_seconds(),
                new_due_at: due() + paused,
                remind_at: due() - Duration::days(1) + paused,
                warn_at: due() - Duration::hours(12) + paused,
            }),
        );
    }

    fn reply(&mut self, r: &mut Req, at: Ts, on_time: bool) {
        self.emit(
            r,
            at,
            CommandKind::Reply,
            Event::ResultReplied(ResultReplied {
                outcome: ReplyOutcome::Resolved,
                content: "fixed".into(),
                plan: None,
                on_time,
            }),
        );
    }
}

async fn list(p: &Projections, list: RequestList, now: Ts) -> Vec<Uuid> {
    let page = p
        .requests(&ListQuery {
            list,
            filter: Filter::default(),
            since_position: None,
            limit: 100,
            cursor: None,
            now,
        })
        .await
        .expect("list query");
    let mut ids: Vec<Uuid> = page
        .items
        .iter()
        .map(|s| s.request_id.parse().expect("request id"))
        .collect();
    ids.sort();
    ids
}

/// (due, completed, completed_on_time) over every request.
async fn due_counts(p: &Projections, now: Ts) -> (i64, i64, i64) {
    let rows = p
        .stats(&StatsQuery {
            period: Period::Month,
            group_by: vec![],
            filter: Filter::default(),
            now,
        })
        .await
        .expect("stats");
    let c = &rows.first().expect("one period").counts;
    (c.due, c.completed, c.completed_on_time)
}

async fn paused_request_is_neither_due_nor_overdue(pg: bool) {
    let (p, db) = open(pg).await;
    let mut log = Log::default();
    // `running` keeps its clock; `paused` pauses a day before the deadline and resumes 36 h
    // later; `replied` pauses before the deadline and replies during the pause, after it.
    let mut running = log.in_progress(1);
    let mut paused = log.in_progress(2);
    let mut replied = log.in_progress(3);
    let since = due() - Duration::days(1);
    log.pause(&mut paused, since);
    log.pause(&mut replied, since);
    log.reply(&mut replied, due() + Duration::hours(3), true);
    let first = log.commits.len();
    p.apply(projections::REQUESTS, &log.commits)
        .await
        .expect("apply while paused");

    // While paused: past the stamped deadline only the running request is overdue.
    let late = due() + Duration::hours(6);
    assert_eq!(list(&p, RequestList::Overdue, late).await, vec![running.id]);
    assert_eq!(p.backlog(late).await.expect("backlog"), (2, 1));
    // Before it, only the running request is due soon.
    let before = due() - Duration::hours(12);
    assert_eq!(
        list(&p, RequestList::DueSoon(Duration::hours(24)), before).await,
        vec![running.id]
    );
    // Due: the running request (deadline passed) and the replied one; not the paused one.
    // The reply during the pause is on time: the deadline moved by the time it stood still.
    assert_eq!(due_counts(&p, late).await, (2, 1, 1));

    // Resumed 36 h after the pause: the deadline moves to due + 36 h and runs again.
    let resumed = since + Duration::hours(36);
    log.resume(&mut paused, since, resumed);
    p.apply(projections::REQUESTS, &log.commits[first..])
        .await
        .expect("apply the resume");
    let new_due = due() + Duration::hours(36);
    assert_eq!(
        list(
            &p,
            RequestList::DueSoon(Duration::hours(24)),
            new_due - Duration::hours(1)
        )
        .await,
        vec![paused.id]
    );
    let after = new_due + Duration::hours(1);
    let mut both = vec![running.id, paused.id];
    both.sort();
    assert_eq!(list(&p, RequestList::Overdue, after).await, both);
    assert_eq!(p.backlog(after).await.expect("backlog"), (2, 2));
    assert_eq!(due_counts(&p, after).await, (3, 1, 1));
    // Just before the new deadline the resumed request is not overdue yet.
    assert_eq!(
        list(&p, RequestList::Overdue, new_due - Duration::minutes(1)).await,
        vec![running.id]
    );

    // A rebuild from the log reproduces the live tables, the pause column included.
    let live = p.snapshot(projections::REQUESTS).await.expect("snapshot");
    let commits = log.commits.clone();
    let head = commits.len() as u64;
    p.rebuild(
        projections::REQUESTS,
        head,
        |from| {
            let batch: Vec<LoggedCommit> = commits
                .iter()
                .filter(|c| c.position >= from)
                .cloned()
                .collect();
            async move { Ok::<_, std::convert::Infallible>(batch) }
        },
        |_, _| {},
    )
    .await
    .expect("rebuild");
    let rebuilt = p.snapshot(projections::REQUESTS).await.expect("snapshot");
    assert_eq!(live, rebuilt);
    assert_eq!(list(&p, RequestList::Overdue, after).await, both);
    // Paused again after the rebuild: the swapped-in table still has the column.
    log.pause(&mut running, after);
    let last = log.commits.len() - 1;
    p.apply(projections::REQUESTS, &log.commits[last..])
        .await
        .expect("apply a pause after the rebuild");
    assert_eq!(
        list(&p, RequestList::Overdue, after + Duration::hours(1)).await,
        vec![paused.id]
    );
    close(p, db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_request_postgres() {
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        paused_request_is_neither_due_nor_overdue(true),
    )
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_request_sqlite() {
    tokio::time::timeout(
        std::time::Duration::from_secs(120),
        paused_request_is_neither_due_nor_overdue(false),
    )
    .await
    .expect("test timed out");
}
