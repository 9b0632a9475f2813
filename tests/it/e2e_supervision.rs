//! End to end through a running app, over HTTP and NATS: extensions move the completion
//! deadline by exactly the granted working days of the calendar (a denied one keeps it, the
//! fourth is refused), a paused clock adds the paused time, a whistle blocks the reply until
//! every summoned department reported and feeds the department ranking, the supervisor fires
//! each reminder, warning, overdue mark and escalation once and the overdue list shows the
//! request, an upheld appeal takes a rating out of the satisfaction rate, and upward reports
//! with their feedback appear in the upward ledger. Each on the SQLite store and on JetStream.

use std::time::Duration;

use chrono::{DateTime, Utc};
use engine_service::auth::Authenticator;
use engine_service::nats::{self, CancellationToken, NatsApiConfig};
use engine_service::supervisor::{self, SupervisorState};
use schemas::RequestId;
use serde_json::{Value, json};
use tests::app::{
    NATS_URL, Store, TestApp, actors, external_id, intake_document, spawn_app,
    spawn_app_with_projections, start_time,
};
use tokio::time::Instant;
use uuid::Uuid;

/// A handler of the sanitation department.
pub(crate) const SANITATION: &str = "handler-wu;department_handler;sanitation";
/// The district's higher-level office.
pub(crate) const HIGHER: &str = "district-office;higher_level";

/// Parses an RFC 3339 instant.
pub(crate) fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

/// Parses an instant out of a JSON value.
pub(crate) fn instant(v: &Value) -> DateTime<Utc> {
    at(v.as_str().unwrap_or_else(|| panic!("an instant: {v}")))
}

/// Issues a command that must succeed; returns the answer.
pub(crate) async fn ok(app: &TestApp, id: &str, action: &str, actor: &str, body: Value) -> Value {
    let (status, answer) = app.command(id, action, actor, &body).await;
    assert_eq!(status, 200, "{action} by {actor}: {answer}");
    answer
}

/// Issues a command that must be refused with `status` and `code`, recording nothing.
pub(crate) async fn refused(
    app: &TestApp,
    id: &str,
    action: &str,
    actor: &str,
    body: Value,
    (status, code): (u16, &str),
) -> Value {
    let before = app.log_length().await;
    let history_before = app.history(id).await.len();
    let (got, answer) = app.command(id, action, actor, &body).await;
    assert_eq!(got, status, "{action} by {actor}: {answer}");
    assert_eq!(answer["code"], code, "{action} by {actor}: {answer}");
    assert!(
        answer["message"].is_string(),
        "a structured error: {answer}"
    );
    assert_eq!(app.log_length().await, before, "{action} appended nothing");
    assert_eq!(app.history(id).await.len(), history_before);
    answer
}

/// The events of `kind` in the request's history.
pub(crate) async fn events(app: &TestApp, id: &str, kind: &str) -> Vec<Value> {
    app.history(id)
        .await
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// The completion deadline in force, read from the history: the last extension granted or
/// clock resumed after the last classification, else the classification's stamped one.
pub(crate) async fn completion_due(app: &TestApp, id: &str) -> DateTime<Utc> {
    let mut due = None;
    for e in app.history(id).await {
        match e["type"].as_str() {
            Some("request_classified") => {
                due = Some(instant(&e["data"]["deadlines"]["completion_due_at"]))
            }
            Some("extension_granted") | Some("clock_resumed") => {
                due = Some(instant(&e["data"]["new_due_at"]))
            }
            _ => {}
        }
    }
    due.expect("a classified request")
}

/// Intake, accept, classify as street vending and refer to urban management, a few minutes
/// apart; returns the request id.
pub(crate) async fn referred(app: &TestApp) -> String {
    referred_as(app, "um-street-vending").await
}

/// Like [`referred`] with another catalogue item.
pub(crate) async fn referred_as(app: &TestApp, item: &str) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    app.clock.advance(chrono::Duration::minutes(5));
    ok(app, &id, "accept", actors::STATION, json!({})).await;
    app.clock.advance(chrono::Duration::minutes(5));
    ok(
        app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": item, "request_type": "complaint"}),
    )
    .await;
    app.clock.advance(chrono::Duration::minutes(5));
    ok(
        app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
    )
    .await;
    id
}

/// [`referred`], then signed for, contacted and in handling by urban management.
pub(crate) async fn in_progress(app: &TestApp) -> String {
    let id = referred(app).await;
    for (action, body) in [
        ("sign_for", json!({})),
        ("contact_resident", json!({"method": "phone"})),
        ("start_handling", json!({})),
    ] {
        app.clock.advance(chrono::Duration::minutes(5));
        ok(app, &id, action, actors::URBAN, body).await;
    }
    id
}

/// Replied by urban management and approved by the centre: awaiting the callback.
pub(crate) async fn awaiting_callback(app: &TestApp, id: &str) {
    app.clock.advance(chrono::Duration::minutes(5));
    ok(
        app,
        id,
        "reply",
        actors::URBAN,
        json!({"outcome": "resolved", "content": "Vendors moved to the night market lot."}),
    )
    .await;
    app.clock.advance(chrono::Duration::minutes(5));
    ok(
        app,
        id,
        "review_reply",
        actors::SUPERVISOR,
        json!({"approved": true}),
    )
    .await;
}

/// `GET path` as `actor`; (status, JSON body or null).
pub(crate) async fn get_json(app: &TestApp, path: &str, actor: &str) -> (u16, Value) {
    let response = app.get(path, actor).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `/api/v1/health/projections` until every projector's checkpoint is the log head.
pub(crate) async fn wait_caught_up(app: &TestApp) {
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get_json(app, "/api/v1/health/projections", actors::AUDITOR).await;
        if status == 200
            && body["projectors"]
                .as_array()
                .is_some_and(|ps| !ps.is_empty() && ps.iter().all(|p| p["checkpoint"] == head))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "projectors did not reach head {head}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The one stats row of the app's requests (all received in March 2026), judged at `now`.
pub(crate) async fn stats_row(app: &TestApp, now: &str) -> Value {
    let (status, stats) = get_json(
        app,
        &format!("/api/v1/stats?period=month&now={now}"),
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{stats}");
    let items = stats["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one month, no grouping: {stats}");
    items[0].clone()
}

/// The NATS request-reply API of an app, on a subject prefix of its own.
pub(crate) struct NatsApi {
    client: async_nats::Client,
    cfg: NatsApiConfig,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl NatsApi {
    /// Serves the app's command service over NATS (as `bianmin serve` does on JetStream).
    pub(crate) async fn start(app: &TestApp) -> NatsApi {
        let client = async_nats::connect(NATS_URL)
            .await
            .expect("the shared nats-server runs");
        let cfg = NatsApiConfig::with_prefix(&format!("e2e{}", Uuid::now_v7().simple()));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (service, client, cfg, shutdown) = (
                app.command_service.clone(),
                client.clone(),
                cfg.clone(),
                shutdown.clone(),
            );
            async move {
                nats::run_intake(
                    service,
                    Authenticator::new(&[], true),
                    client,
                    cfg,
                    shutdown,
                )
                .await
                .expect("the NATS API ends cleanly");
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let probe = tokio::time::timeout(
                Duration::from_millis(500),
                client.request(cfg.names.intake_subject("probe"), "{}".into()),
            )
            .await;
            if matches!(probe, Ok(Ok(_))) {
                break;
            }
            assert!(Instant::now() < deadline, "the NATS API did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        NatsApi {
            client,
            cfg,
            shutdown,
            task,
        }
    }

    /// Sends `command` on `<prefix>.cmd.<action>` as `actor`; (error code header, body).
    pub(crate) async fn command(
        &self,
        actor: &str,
        request_id: &str,
        command: Value,
    ) -> (Option<String>, Value) {
        self.command_with_id(actor, request_id, Uuid::now_v7(), command)
            .await
    }

    /// Sends `command` with the idempotency key `command_id`; (error code header, body).
    pub(crate) async fn command_with_id(
        &self,
        actor: &str,
        request_id: &str,
        command_id: Uuid,
        command: Value,
    ) -> (Option<String>, Value) {
        let envelope =
            json!({"command_id": command_id, "request_id": request_id, "command": command});
        self.send_envelope(actor, envelope).await
    }

    /// Sends a whole command envelope on `<prefix>.cmd.<action>`; (error code header, body).
    pub(crate) async fn send_envelope(
        &self,
        actor: &str,
        envelope: Value,
    ) -> (Option<String>, Value) {
        let action = envelope["command"]["action"]
            .as_str()
            .expect("an action")
            .to_string();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("X-Bianmin-Actor", actor);
        let reply = tokio::time::timeout(
            Duration::from_secs(10),
            self.client.request_with_headers(
                self.cfg.names.cmd_subject(&action),
                headers,
                envelope.to_string().into(),
            ),
        )
        .await
        .expect("a reply within 10 s")
        .expect("a reply");
        let error = reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Bianmin-Error"))
            .map(|v| v.as_str().to_string());
        (
            error,
            serde_json::from_slice(&reply.payload).expect("JSON reply"),
        )
    }

    /// Stops serving.
    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the NATS API stops")
            .expect("no panic");
    }
}

// ---------------------------------------------------------------------------------------
// 1. Extensions

async fn extensions_move_the_deadline_by_working_days(store: Store) {
    let app = spawn_app(store).await;
    let calendar = engine_service::policy_files::load_policy(&app.config.policy)
        .expect("policy")
        .calendar()
        .clone();
    let id = in_progress(&app).await;

    // Received Monday 2 March 09:00 (Beijing): three working days (street vending) counted
    // from Tuesday end at Thursday's closing time, 17:30.
    let due = completion_due(&app, &id).await;
    assert_eq!(due, at("2026-03-05T09:30:00Z"));

    // Granted 3 working days: Friday, Monday, Tuesday (across the weekend).
    app.clock.advance(chrono::Duration::hours(1));
    ok(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "Waiting for the market lot permit", "working_days": 3}),
    )
    .await;
    refused(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "again", "working_days": 1}),
        (422, "already_pending"),
    )
    .await;
    refused(
        &app,
        &id,
        "grant_extension",
        actors::URBAN,
        json!({}),
        (403, "not_permitted"),
    )
    .await;
    let answer = ok(&app, &id, "grant_extension", actors::SUPERVISOR, json!({})).await;
    assert!(
        answer["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["type"] == "extension_granted"),
        "{answer}"
    );
    let granted = events(&app, &id, "extension_granted").await;
    assert_eq!(granted.len(), 1);
    assert_eq!(instant(&granted[0]["data"]["previous_due_at"]), due);
    let first = instant(&granted[0]["data"]["new_due_at"]);
    assert_eq!(first, at("2026-03-10T09:30:00Z"), "Tuesday 10 March 17:30");
    assert_eq!(first, calendar.add_working_days(due, 3));
    assert!(instant(&granted[0]["data"]["remind_at"]) < first);
    assert!(instant(&granted[0]["data"]["warn_at"]) < first);
    assert_eq!(completion_due(&app, &id).await, first);

    // A denied extension keeps the deadline.
    app.clock.advance(chrono::Duration::hours(1));
    ok(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "More time", "working_days": 2}),
    )
    .await;
    ok(
        &app,
        &id,
        "deny_extension",
        actors::SUPERVISOR,
        json!({"reason": "Not justified"}),
    )
    .await;
    assert_eq!(events(&app, &id, "extension_denied").await.len(), 1);
    assert_eq!(completion_due(&app, &id).await, first);
    refused(
        &app,
        &id,
        "grant_extension",
        actors::SUPERVISOR,
        json!({}),
        (422, "nothing_pending"),
    )
    .await;

    // Two more granted: 2 working days (Thursday 12), then 3 (Tuesday 17: Friday, Monday, Tuesday).
    let mut expected = first;
    for (days, date) in [(2, "2026-03-12T09:30:00Z"), (3, "2026-03-17T09:30:00Z")] {
        app.clock.advance(chrono::Duration::hours(1));
        ok(
            &app,
            &id,
            "request_extension",
            actors::URBAN,
            json!({"reason": "Vendors relocating in phases", "working_days": days}),
        )
        .await;
        ok(&app, &id, "grant_extension", actors::SUPERVISOR, json!({})).await;
        let moved = completion_due(&app, &id).await;
        assert_eq!(moved, at(date));
        assert_eq!(moved, calendar.add_working_days(expected, days));
        expected = moved;
    }

    // The fourth granted extension would exceed the limit of three.
    app.clock.advance(chrono::Duration::hours(1));
    let answer = refused(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "One more day", "working_days": 1}),
        (422, "limit_reached"),
    )
    .await;
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_extensions")),
        "{answer}"
    );
    assert_eq!(completion_due(&app, &id).await, expected);
    assert_eq!(events(&app, &id, "extension_granted").await.len(), 3);
    app.teardown().await;
}

tests::on_both_stores!(extensions_move_the_deadline_by_working_days);

async fn extensions_over_nats(store: Store) {
    let app = spawn_app(store).await;
    let api = NatsApi::start(&app).await;
    let id = in_progress(&app).await;
    let due = completion_due(&app, &id).await;

    app.clock.advance(chrono::Duration::hours(1));
    let (error, body) = api
        .command(
            actors::URBAN,
            &id,
            json!({"action": "request_extension", "reason": "Permit pending", "working_days": 3}),
        )
        .await;
    assert_eq!(error, None, "{body}");
    assert_eq!(body["events"][0]["type"], "extension_requested", "{body}");
    let (error, body) = api
        .command(
            actors::SUPERVISOR,
            &id,
            json!({"action": "grant_extension"}),
        )
        .await;
    assert_eq!(error, None, "{body}");
    assert_eq!(body["events"][0]["type"], "extension_granted", "{body}");
    assert_eq!(completion_due(&app, &id).await, at("2026-03-10T09:30:00Z"));
    assert!(due < at("2026-03-10T09:30:00Z"));

    // Over the per-extension limit: the error document, nothing appended.
    let before = app.log_length().await;
    let (error, body) = api
        .command(
            actors::URBAN,
            &id,
            json!({"action": "request_extension", "reason": "Long", "working_days": 4}),
        )
        .await;
    assert_eq!(error.as_deref(), Some("limit_reached"), "{body}");
    assert_eq!(body["error"]["code"], "limit_reached", "{body}");
    // Denying when nothing is pending, and a handler granting, are refused too.
    let (error, body) = api
        .command(
            actors::SUPERVISOR,
            &id,
            json!({"action": "deny_extension", "reason": "No"}),
        )
        .await;
    assert_eq!(error.as_deref(), Some("nothing_pending"), "{body}");
    let (error, _) = api
        .command(actors::URBAN, &id, json!({"action": "grant_extension"}))
        .await;
    assert_eq!(error.as_deref(), Some("not_permitted"));
    assert_eq!(app.log_length().await, before);
    assert_eq!(completion_due(&app, &id).await, at("2026-03-10T09:30:00Z"));
    api.stop().await;
    app.teardown().await;
}

tests::on_both_stores!(extensions_over_nats);

// ---------------------------------------------------------------------------------------
// 2. Clock pauses

async fn a_paused_clock_adds_the_paused_time(store: Store) {
    let app = spawn_app(store).await;
    let id = in_progress(&app).await;
    let due = completion_due(&app, &id).await;
    let classified = &events(&app, &id, "request_classified").await[0]["data"]["deadlines"];
    let (remind, warn) = (
        instant(&classified["remind_at"]),
        instant(&classified["warn_at"]),
    );

    refused(
        &app,
        &id,
        "resume_clock",
        actors::URBAN,
        json!({}),
        (422, "nothing_pending"),
    )
    .await;
    ok(
        &app,
        &id,
        "pause_clock",
        actors::URBAN,
        json!({"reason": "Waiting for the resident's photos"}),
    )
    .await;
    refused(
        &app,
        &id,
        "pause_clock",
        actors::URBAN,
        json!({"reason": "again"}),
        (422, "already_pending"),
    )
    .await;
    refused(
        &app,
        &id,
        "pause_clock",
        actors::WATER,
        json!({"reason": "not mine"}),
        (403, "not_addressed_to_you"),
    )
    .await;
    app.clock
        .advance(chrono::Duration::hours(5) + chrono::Duration::minutes(17));
    ok(&app, &id, "resume_clock", actors::URBAN, json!({})).await;

    let resumed = events(&app, &id, "clock_resumed").await;
    assert_eq!(resumed.len(), 1);
    let paused = 5 * 3600 + 17 * 60;
    assert_eq!(resumed[0]["data"]["paused_seconds"], paused);
    let moved = chrono::Duration::seconds(paused);
    assert_eq!(instant(&resumed[0]["data"]["new_due_at"]), due + moved);
    assert_eq!(instant(&resumed[0]["data"]["remind_at"]), remind + moved);
    assert_eq!(instant(&resumed[0]["data"]["warn_at"]), warn + moved);
    assert_eq!(completion_due(&app, &id).await, due + moved);

    // The supervisor honours the moved deadline: nothing is overdue at the old instant.
    app.clock.set(due + chrono::Duration::minutes(1));
    let mut state = SupervisorState::new();
    supervisor::tick(&app.command_service, &mut state, app.clock_now())
        .await
        .expect("tick");
    assert!(events(&app, &id, "deadline_missed").await.is_empty());
    app.clock.set(due + moved);
    supervisor::tick(&app.command_service, &mut state, due + moved)
        .await
        .expect("tick");
    let missed = events(&app, &id, "deadline_missed").await;
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(instant(&missed[0]["data"]["due_at"]), due + moved);
    app.teardown().await;
}

tests::on_both_stores!(a_paused_clock_adds_the_paused_time);

trait ClockNow {
    fn clock_now(&self) -> DateTime<Utc>;
}

impl ClockNow for TestApp {
    fn clock_now(&self) -> DateTime<Utc> {
        engine_core::Clock::now(&*self.clock)
    }
}

// ---------------------------------------------------------------------------------------
// 3. Whistles and bottom-up ratings

async fn a_whistle_blocks_the_reply_and_feeds_the_ranking(store: Store) {
    let app = spawn_app_with_projections(store, None).await;
    let id = in_progress(&app).await;

    let blown = ok(
        &app,
        &id,
        "blow_whistle",
        actors::STATION,
        json!({"departments": ["urban-management", "sanitation"], "summary": "Joint clean-up of the night market"}),
    )
    .await;
    assert_eq!(blown["events"][0]["type"], "whistle_blown", "{blown}");
    refused(
        &app,
        &id,
        "blow_whistle",
        actors::STATION,
        json!({"departments": ["water"], "summary": "again"}),
        (422, "already_pending"),
    )
    .await;

    app.clock.advance(chrono::Duration::hours(2));
    ok(
        &app,
        &id,
        "report_to_whistle",
        actors::URBAN,
        json!({"department": "urban-management", "note": "Two officers on site"}),
    )
    .await;
    let reply = json!({"outcome": "resolved", "content": "Cleared."});
    let answer = refused(
        &app,
        &id,
        "reply",
        actors::URBAN,
        reply.clone(),
        (422, "whistle_outstanding"),
    )
    .await;
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("sanitation")),
        "{answer}"
    );
    // A department that was not summoned may not report, for itself or for another.
    refused(
        &app,
        &id,
        "report_to_whistle",
        actors::WATER,
        json!({"department": "water", "note": "Here too"}),
        (403, "not_addressed_to_you"),
    )
    .await;
    refused(
        &app,
        &id,
        "report_to_whistle",
        actors::WATER,
        json!({"department": "sanitation", "note": "For them"}),
        (403, "not_addressed_to_you"),
    )
    .await;
    refused(
        &app,
        &id,
        "report_to_whistle",
        actors::URBAN,
        json!({"department": "urban-management", "note": "Twice"}),
        (422, "already_recorded"),
    )
    .await;
    // Rated only after reporting.
    refused(
        &app,
        &id,
        "rate_department",
        actors::STATION,
        json!({"department": "sanitation", "score": 3}),
        (422, "invalid_field"),
    )
    .await;

    app.clock.advance(chrono::Duration::hours(1));
    ok(
        &app,
        &id,
        "report_to_whistle",
        SANITATION,
        json!({"department": "sanitation", "note": "Truck sent"}),
    )
    .await;
    let reports = events(&app, &id, "department_reported").await;
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r["data"]["on_time"] == true));

    ok(
        &app,
        &id,
        "rate_department",
        actors::STATION,
        json!({"department": "urban-management", "score": 4}),
    )
    .await;
    ok(
        &app,
        &id,
        "rate_department",
        actors::STATION,
        json!({"department": "sanitation", "score": 2, "comment": "Late"}),
    )
    .await;
    refused(
        &app,
        &id,
        "rate_department",
        actors::STATION,
        json!({"department": "sanitation", "score": 5}),
        (422, "already_recorded"),
    )
    .await;
    refused(
        &app,
        &id,
        "rate_department",
        actors::STATION,
        json!({"department": "urban-management", "score": 6}),
        (422, "invalid_field"),
    )
    .await;
    ok(&app, &id, "reply", actors::URBAN, reply).await;

    // The ranking of March shows the bottom-up scores and the whistle response times.
    wait_caught_up(&app).await;
    let (status, ranking) = get_json(
        &app,
        "/api/v1/rankings/departments?month=2026-03&now=2026-03-03T00:00:00Z",
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{ranking}");
    let row = |d: &str| {
        ranking["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|r| r["department"] == d)
            .cloned()
            .unwrap_or_else(|| panic!("{d} ranked: {ranking}"))
    };
    let urban = row("urban-management");
    assert_eq!(urban["bottom_up_count"], 1, "{urban}");
    assert_eq!(urban["bottom_up_avg"], 4.0, "{urban}");
    assert_eq!(urban["whistles"], 1, "{urban}");
    assert_eq!(urban["whistles_reported"], 1, "{urban}");
    assert_eq!(urban["whistle_response_avg_seconds"], 7200.0, "{urban}");
    assert_eq!(urban["referrals"], 1, "{urban}");
    let sanitation = row("sanitation");
    assert_eq!(sanitation["bottom_up_count"], 1, "{sanitation}");
    assert_eq!(sanitation["bottom_up_avg"], 2.0, "{sanitation}");
    assert_eq!(sanitation["whistles_reported"], 1, "{sanitation}");
    assert_eq!(
        sanitation["whistle_response_avg_seconds"], 10800.0,
        "{sanitation}"
    );
    assert_eq!(sanitation["referrals"], 0, "{sanitation}");
    app.teardown().await;
}

tests::on_both_stores!(a_whistle_blocks_the_reply_and_feeds_the_ranking);

#[tokio::test]
async fn whistles_over_nats() {
    let app = spawn_app(Store::Nats).await;
    let api = NatsApi::start(&app).await;
    let id = in_progress(&app).await;
    let send = |actor: &'static str, command: Value| {
        let (api, id) = (&api, id.clone());
        async move { api.command(actor, &id, command).await }
    };
    let (error, body) = send(
        actors::STATION,
        json!({"action": "blow_whistle", "departments": ["sanitation"], "summary": "Clean-up"}),
    )
    .await;
    assert_eq!(error, None, "{body}");
    let (error, body) = send(
        actors::URBAN,
        json!({"action": "reply", "outcome": "resolved", "content": "Done"}),
    )
    .await;
    assert_eq!(error.as_deref(), Some("whistle_outstanding"), "{body}");
    let (error, body) = send(
        SANITATION,
        json!({"action": "report_to_whistle", "department": "sanitation", "note": "On site"}),
    )
    .await;
    assert_eq!(error, None, "{body}");
    let (error, body) = send(
        actors::STATION,
        json!({"action": "rate_department", "department": "sanitation", "score": 5}),
    )
    .await;
    assert_eq!(error, None, "{body}");
    assert_eq!(body["events"][0]["type"], "department_rated", "{body}");
    let (error, body) = send(
        actors::URBAN,
        json!({"action": "reply", "outcome": "resolved", "content": "Done"}),
    )
    .await;
    assert_eq!(error, None, "{body}");
    api.stop().await;
    app.teardown().await;
}

// ---------------------------------------------------------------------------------------
// 4. Supervision through the app

/// The supervision facts of a request: (type, deadline or level, due instant).
async fn supervision_facts(app: &TestApp, id: &str) -> Vec<(String, String, String)> {
    app.history(id)
        .await
        .iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("reminder_sent" | "pre_breach_warned" | "deadline_missed" | "escalated")
            )
        })
        .map(|e| {
            let d = &e["data"];
            (
                e["type"].as_str().unwrap_or_default().to_string(),
                d["deadline"]
                    .as_str()
                    .or(d["level"].as_str())
                    .unwrap_or_default()
                    .to_string(),
                d["due_at"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn the_supervisor_fires_each_instant_once_and_the_request_is_listed_overdue(store: Store) {
    let app = spawn_app_with_projections(store, None).await;
    let id = in_progress(&app).await;
    let deadlines = events(&app, &id, "request_classified").await[0]["data"]["deadlines"].clone();
    let (remind, warn, due) = (
        instant(&deadlines["remind_at"]),
        instant(&deadlines["warn_at"]),
        instant(&deadlines["completion_due_at"]),
    );
    assert!(remind < due && warn < due);
    let rid: RequestId = id.parse().expect("uuid");
    let mut state = SupervisorState::new();
    let overdue_at_start = format!(
        "/api/v1/overdue?now={}",
        start_time().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    // Nothing due yet; not on the overdue list.
    let report = supervisor::tick(&app.command_service, &mut state, app.clock_now())
        .await
        .expect("tick");
    assert!(report.fired.is_empty(), "{report:?}");
    wait_caught_up(&app).await;
    let (status, list) = get_json(&app, &overdue_at_start, actors::SUPERVISOR).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["items"].as_array().expect("items").is_empty(),
        "{list}"
    );

    // Each instant in turn, ticked three times, and once more by a fresh supervisor.
    let grace = chrono::Duration::hours(24);
    let mut instants = vec![remind, warn, due, due + grace];
    instants.sort();
    let mut fired_total = 0;
    for instant in instants {
        app.clock.set(instant);
        let report = supervisor::tick(&app.command_service, &mut state, instant)
            .await
            .expect("tick");
        assert!(
            !report.fired.is_empty(),
            "something fires at {instant}: {report:?}"
        );
        assert!(report.fired.iter().all(|(r, _)| *r == rid));
        fired_total += report.fired.len();
        for _ in 0..2 {
            let again = supervisor::tick(&app.command_service, &mut state, instant)
                .await
                .expect("tick");
            assert!(again.fired.is_empty(), "{again:?}");
        }
        let fresh = supervisor::tick(&app.command_service, &mut SupervisorState::new(), instant)
            .await
            .expect("tick");
        assert!(fresh.fired.is_empty(), "a restart fires nothing: {fresh:?}");
    }

    let facts = supervision_facts(&app, &id).await;
    let due_text = deadlines["completion_due_at"]
        .as_str()
        .expect("due")
        .to_string();
    let count = |kind: &str| facts.iter().filter(|f| f.0 == kind).count();
    assert_eq!(count("reminder_sent"), 1, "{facts:?}");
    assert_eq!(count("pre_breach_warned"), 1, "{facts:?}");
    assert_eq!(count("deadline_missed"), 1, "{facts:?}");
    assert_eq!(count("escalated"), 1, "{facts:?}");
    assert_eq!(facts.len(), fired_total, "{facts:?}");
    for kind in ["reminder_sent", "pre_breach_warned", "deadline_missed"] {
        let fact = facts.iter().find(|f| f.0 == kind).expect("fired");
        assert_eq!(fact.1, "completion", "{fact:?}");
        assert_eq!(instant(&json!(fact.2)), instant(&json!(due_text)));
    }
    let escalated = &events(&app, &id, "escalated").await[0];
    assert_eq!(escalated["data"]["level"], "daily", "{escalated}");
    assert_eq!(escalated["data"]["to"], "street", "{escalated}");

    // The overdue list shows it, from the recorded mark even at an instant before the due.
    wait_caught_up(&app).await;
    let (status, list) = get_json(&app, &overdue_at_start, actors::SUPERVISOR).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["request_id"], id.as_str(), "{list}");
    assert_eq!(items[0]["overdue"], true, "{list}");
    let (status, _) = get_json(&app, &overdue_at_start, actors::DASHBOARD).await;
    assert_eq!(status, 403, "dashboards read aggregates only");

    // The department's worklist row carries the latest marks, at their instants.
    let path = "/api/v1/worklists/departments/urban-management";
    let (status, list) = get_json(&app, path, actors::URBAN).await;
    assert_eq!(status, 200, "{list}");
    let row = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .expect("on the worklist")
        .clone();
    assert_eq!(instant(&row["reminded_at"]), remind, "{row}");
    assert_eq!(instant(&row["warned_at"]), warn, "{row}");
    assert_eq!(instant(&row["marked_overdue_at"]), due, "{row}");
    assert_eq!(instant(&row["escalated_at"]), due + grace, "{row}");
    assert_eq!(row["escalation_level"], "daily", "{row}");
    app.teardown().await;
}

tests::on_both_stores!(the_supervisor_fires_each_instant_once_and_the_request_is_listed_overdue);

// ---------------------------------------------------------------------------------------
// 5. Rating appeals

/// A request rated `satisfaction` by the station; returns its id.
async fn rated(app: &TestApp, satisfaction: &str) -> String {
    let id = in_progress(app).await;
    awaiting_callback(app, &id).await;
    app.clock.advance(chrono::Duration::minutes(5));
    ok(
        app,
        &id,
        "rate",
        actors::STATION,
        json!({"satisfaction": satisfaction, "resolution": "resolved"}),
    )
    .await;
    id
}

async fn an_upheld_appeal_takes_the_rating_out_of_the_satisfaction_rate(store: Store) {
    let app = spawn_app_with_projections(store, None).await;
    let appealed = rated(&app, "dissatisfied").await;
    let _satisfied = rated(&app, "satisfied").await;
    let late = rated(&app, "dissatisfied").await;
    let now = "2026-03-31T00:00:00Z";

    wait_caught_up(&app).await;
    let row = stats_row(&app, now).await;
    assert_eq!(row["counts"]["satisfaction_rated"], 3, "{row}");
    assert_eq!(row["counts"]["satisfied"], 1, "{row}");
    assert_eq!(row["counts"]["dissatisfied"], 2, "{row}");

    // Appeal inside the window (by the lead department only), upheld by the centre.
    app.clock.advance(chrono::Duration::hours(24));
    refused(
        &app,
        &appealed,
        "appeal_rating",
        actors::WATER,
        json!({"reason": "Not ours"}),
        (403, "not_addressed_to_you"),
    )
    .await;
    refused(
        &app,
        &appealed,
        "decide_appeal",
        actors::SUPERVISOR,
        json!({"upheld": true, "reason": "early"}),
        (422, "nothing_pending"),
    )
    .await;
    ok(
        &app,
        &appealed,
        "appeal_rating",
        actors::URBAN,
        json!({"reason": "The resident rated another matter", "evidence": []}),
    )
    .await;
    refused(
        &app,
        &appealed,
        "archive",
        actors::STATION,
        json!({}),
        (422, "already_pending"),
    )
    .await;
    refused(
        &app,
        &appealed,
        "decide_appeal",
        actors::URBAN,
        json!({"upheld": true, "reason": "self"}),
        (403, "not_permitted"),
    )
    .await;
    ok(
        &app,
        &appealed,
        "decide_appeal",
        actors::SUPERVISOR,
        json!({"upheld": true, "reason": "Call recording confirms the mix-up"}),
    )
    .await;

    // Past the 72-hour window: refused, nothing appended.
    app.clock.advance(chrono::Duration::hours(72));
    refused(
        &app,
        &late,
        "appeal_rating",
        actors::URBAN,
        json!({"reason": "Too late"}),
        (422, "window_closed"),
    )
    .await;

    wait_caught_up(&app).await;
    let row = stats_row(&app, now).await;
    assert_eq!(row["counts"]["received"], 3, "{row}");
    assert_eq!(row["counts"]["rated"], 2, "{row}");
    assert_eq!(row["counts"]["satisfaction_rated"], 2, "{row}");
    assert_eq!(row["counts"]["satisfied"], 1, "{row}");
    assert_eq!(row["counts"]["dissatisfied"], 1, "{row}");
    assert_eq!(row["rates"]["satisfaction_rate"], 0.5, "{row}");
    app.teardown().await;
}

tests::on_both_stores!(an_upheld_appeal_takes_the_rating_out_of_the_satisfaction_rate);

// ---------------------------------------------------------------------------------------
// 7. Upward reports and feedback

async fn upward_feedback_shows_in_the_ledger(store: Store) {
    let app = spawn_app_with_projections(store, None).await;
    let id = in_progress(&app).await;
    let answer = ok(
        &app,
        &id,
        "report_upward",
        actors::URBAN,
        json!({"level": "district", "summary": "Needs the district's market office"}),
    )
    .await;
    assert_eq!(answer["events"][0]["type"], "reported_upward", "{answer}");
    let report = &events(&app, &id, "reported_upward").await[0];
    let report_id = report["data"]["report_id"].as_str().expect("report id");
    let sent_at = instant(&report["occurred_at"]);

    // Only the higher level sends feedback.
    let document = json!({
        "request_id": id, "report_id": report_id, "kind": "decision",
        "content": "Market office will license a night market lot",
    });
    let response = app
        .post("/api/v1/upward/feedback", actors::URBAN, &document)
        .await;
    assert_eq!(response.status().as_u16(), 403);

    app.clock.advance(chrono::Duration::hours(3));
    let response = app.post("/api/v1/upward/feedback", HIGHER, &document).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    assert!((200..300).contains(&status), "{status}: {body}");
    assert_eq!(body["duplicate"], false, "{body}");
    let feedback = events(&app, &id, "upward_feedback_received").await;
    assert_eq!(feedback.len(), 1);
    assert_eq!(feedback[0]["data"]["kind"], "decision");

    // Feedback on an unknown report is refused and records nothing.
    let before = app.log_length().await;
    let unknown = json!({
        "request_id": id, "report_id": Uuid::now_v7(), "kind": "decision", "content": "?",
    });
    let response = app.post("/api/v1/upward/feedback", HIGHER, &unknown).await;
    assert_eq!(response.status().as_u16(), 422);
    assert_eq!(app.log_length().await, before);

    wait_caught_up(&app).await;
    let (status, ledger) = get_json(&app, "/api/v1/upward", actors::AUDITOR).await;
    assert_eq!(status, 200, "{ledger}");
    let items = ledger["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{ledger}");
    let row = &items[0];
    assert_eq!(row["report_id"], report_id, "{row}");
    assert_eq!(row["request_id"], id.as_str(), "{row}");
    assert_eq!(row["level"], "district", "{row}");
    assert_eq!(row["lead_department"], "urban-management", "{row}");
    assert_eq!(instant(&row["sent_at"]), sent_at, "{row}");
    assert_eq!(
        instant(&row["first_feedback_at"]),
        sent_at + chrono::Duration::hours(3),
        "{row}"
    );
    assert_eq!(row["feedback_kind"], "decision", "{row}");
    assert_eq!(row["time_to_feedback_seconds"], 3 * 3600, "{row}");
    assert_eq!(row["open"], false, "{row}");
    let (status, open) = get_json(&app, "/api/v1/upward?open=true", HIGHER).await;
    assert_eq!(status, 200, "{open}");
    assert!(
        open["items"].as_array().expect("items").is_empty(),
        "{open}"
    );
    app.teardown().await;
}

tests::on_both_stores!(upward_feedback_shows_in_the_ledger);

async fn deadlines_and_extensions_follow_the_holiday_calendar(store: Store) {
    let app = spawn_app(store).await;

    // Received Tuesday 31 March: Wednesday, Thursday, Friday 3 April → due Friday 17:30.
    app.clock.set(at("2026-03-31T01:00:00Z"));
    let id = in_progress(&app).await;
    assert_eq!(completion_due(&app, &id).await, at("2026-04-03T09:30:00Z"));
    // Two working days across Qingming (4–6 April off): Tuesday 7, Wednesday 8.
    ok(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "Holiday", "working_days": 2}),
    )
    .await;
    ok(&app, &id, "grant_extension", actors::SUPERVISOR, json!({})).await;
    assert_eq!(completion_due(&app, &id).await, at("2026-04-08T09:30:00Z"));

    // Received Thursday 30 April: Labour Day 1–5 May off → Wednesday 6, Thursday 7, Friday 8.
    app.clock.set(at("2026-04-30T01:00:00Z"));
    let id = in_progress(&app).await;
    assert_eq!(completion_due(&app, &id).await, at("2026-05-08T09:30:00Z"));
    // One working day: Saturday 9 May is a make-up working day (调休上班).
    ok(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "One more day", "working_days": 1}),
    )
    .await;
    ok(&app, &id, "grant_extension", actors::SUPERVISOR, json!({})).await;
    assert_eq!(completion_due(&app, &id).await, at("2026-05-09T09:30:00Z"));

    // Past the deadline in force, an extension can no longer be asked for.
    app.clock.set(at("2026-05-09T09:30:01Z"));
    refused(
        &app,
        &id,
        "request_extension",
        actors::URBAN,
        json!({"reason": "Too late", "working_days": 1}),
        (422, "window_closed"),
    )
    .await;
    app.teardown().await;
}

tests::on_both_stores!(deadlines_and_extensions_follow_the_holiday_calendar);

#[tokio::test]
async fn nothing_fires_while_the_clock_is_paused_and_a_late_whistle_report_is_marked() {
    let app = spawn_app_with_projections(Store::Sqlite, None).await;
    let id = in_progress(&app).await;
    let due = completion_due(&app, &id).await;
    let mut state = SupervisorState::new();

    // Paused a day before the deadline; the supervisor passes the old deadline: no firing
    // for the completion deadline while paused.
    app.clock.set(due - chrono::Duration::days(1));
    ok(
        &app,
        &id,
        "pause_clock",
        actors::URBAN,
        json!({"reason": "Waiting for the resident"}),
    )
    .await;
    let whistle_at = app.clock_now();
    ok(
        &app,
        &id,
        "blow_whistle",
        actors::STATION,
        json!({"departments": ["sanitation"], "summary": "Joint visit"}),
    )
    .await;
    let report_due = instant(&events(&app, &id, "whistle_blown").await[0]["data"]["report_due_at"]);
    assert_eq!(report_due, whistle_at + chrono::Duration::hours(24));
    let late = due + chrono::Duration::hours(6);
    app.clock.set(late);
    supervisor::tick(&app.command_service, &mut state, late)
        .await
        .expect("tick");
    let facts = supervision_facts(&app, &id).await;
    assert!(
        !facts.iter().any(|f| f.1 == "completion"),
        "the completion deadline is not in force while paused: {facts:?}"
    );
    let whistle_missed: Vec<_> = facts
        .iter()
        .filter(|f| f.0 == "deadline_missed" && f.1 == "whistle_report")
        .collect();
    assert_eq!(whistle_missed.len(), 1, "{facts:?}");

    // The department reports late; resuming moves the completion deadline by the pause.
    ok(
        &app,
        &id,
        "report_to_whistle",
        SANITATION,
        json!({"department": "sanitation", "note": "Came late"}),
    )
    .await;
    let reported = &events(&app, &id, "department_reported").await[0];
    assert_eq!(reported["data"]["on_time"], false, "{reported}");
    ok(&app, &id, "resume_clock", actors::URBAN, json!({})).await;
    assert_eq!(
        completion_due(&app, &id).await,
        due + chrono::Duration::days(1) + chrono::Duration::hours(6)
    );
    supervisor::tick(&app.command_service, &mut state, late)
        .await
        .expect("tick");
    let facts = supervision_facts(&app, &id).await;
    assert!(
        !facts
            .iter()
            .any(|f| f.0 == "deadline_missed" && f.1 == "completion"),
        "{facts:?}"
    );

    wait_caught_up(&app).await;
    let (status, ranking) = get_json(
        &app,
        "/api/v1/rankings/departments?month=2026-03&now=2026-03-31T00:00:00Z",
        actors::DASHBOARD,
    )
    .await;
    assert_eq!(status, 200, "{ranking}");
    let sanitation = ranking["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["department"] == "sanitation")
        .cloned()
        .unwrap_or_else(|| panic!("{ranking}"));
    assert_eq!(sanitation["whistles_reported"], 1, "{sanitation}");
    let expected = (late - whistle_at).num_seconds() as f64;
    assert_eq!(
        sanitation["whistle_response_avg_seconds"], expected,
        "{sanitation}"
    );
    app.teardown().await;
}

/// While a request's completion clock is paused, the `requests` read model does not list it
/// overdue once the stamped deadline passes (the engine's supervisor rightly fires nothing).
#[tokio::test]
async fn a_paused_request_is_not_listed_overdue() {
    let app = spawn_app_with_projections(Store::Sqlite, None).await;
    let id = in_progress(&app).await;
    let due = completion_due(&app, &id).await;
    app.clock.set(due - chrono::Duration::days(1));
    ok(
        &app,
        &id,
        "pause_clock",
        actors::URBAN,
        json!({"reason": "Waiting for the resident"}),
    )
    .await;
    let late = due + chrono::Duration::hours(6);
    // While paused, the request is not on the overdue list (its completion clock stands).
    wait_caught_up(&app).await;
    let (status, list) = get_json(
        &app,
        &format!(
            "/api/v1/overdue?now={}",
            late.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        actors::SUPERVISOR,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let listed: Vec<_> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["request_id"].clone())
        .collect();
    assert!(
        listed.is_empty(),
        "a paused request is not overdue on its completion deadline: {list}"
    );

    app.teardown().await;
}
