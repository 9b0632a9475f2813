//! `POST /api/v1/policy/whatif` on both log stores: a crafted month of four requests, all
//! classified `complex` (the profile's tier applies) and replied 10 minutes or 3 hours after
//! receipt. Recorded (community-station, 15 working days) every reply is on time; under a
//! proposed profile whose complex tier completes in 2 hours, the two slow replies are late:
//! the on-time rate falls from 100 % to 50 % (Δ −0.5), for the month and for the lead
//! department, while the response rate stays. The live read models, the projections'
//! checkpoints and the log are the same before and after. A bad profile answers 400 with
//! the offending field; other roles get 403.

use engine_core::Clock;
use serde_json::{Value, json};
use tests::app::{
    Store, TestApp, actors, external_id, intake_document, spawn_app_with_projections,
};
use tests::pg::TestDb;

use crate::e2e_supervision::{get_json, ok, wait_caught_up};

/// The built-in profile's complex tier, and the proposed shorter one.
const COMPLEX_RECORDED: &str = "completion = { amount = 15, unit = \"working_days\" }";
const COMPLEX_PROPOSED: &str = "completion = { amount = 120, unit = \"natural_minutes\" }";

/// March 2026 in Beijing.
const FROM: &str = "2026-02-28T16:00:00Z";
const TO: &str = "2026-03-31T16:00:00Z";

/// The proposed profile: community-station with a 2-hour complex tier.
fn shorter_profile() -> String {
    let base = engine_core::policy::BUILTIN_COMMUNITY_STATION;
    assert_eq!(
        base.matches(COMPLEX_RECORDED).count(),
        1,
        "one complex tier line"
    );
    base.replace(COMPLEX_RECORDED, COMPLEX_PROPOSED)
        .replace("version = \"2026.1\"", "version = \"whatif-1\"")
}

/// Intake → accept → classify (complex) → refer → sign → contact → handle, then a reply
/// `reply_after` after receipt.
async fn replied_after(app: &TestApp, reply_after: chrono::Duration) -> String {
    let received = app.clock.now();
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let steps = [
        ("accept", actors::STATION, json!({})),
        (
            "classify",
            actors::STATION,
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint", "urgency": "complex"}),
        ),
        (
            "refer",
            actors::STATION,
            json!({"lead_department": "urban-management"}),
        ),
        ("sign_for", actors::URBAN, json!({})),
        (
            "contact_resident",
            actors::URBAN,
            json!({"method": "phone"}),
        ),
        ("start_handling", actors::URBAN, json!({})),
    ];
    for (action, actor, body) in steps {
        app.clock.advance(chrono::Duration::minutes(1));
        ok(app, &id, action, actor, body).await;
    }
    app.clock.set(received + reply_after);
    ok(
        app,
        &id,
        "reply",
        actors::URBAN,
        json!({"outcome": "resolved", "content": "Vendors moved to the night market lot."}),
    )
    .await;
    app.clock.advance(chrono::Duration::minutes(30));
    id
}

/// What the live read models show: the month's rates, the department ranking, the lists'
/// rows, and each projector's checkpoint.
async fn live_snapshot(app: &TestApp) -> Value {
    let now = TO.replace('+', "%2B");
    let mut snapshot = serde_json::Map::new();
    for path in [
        format!("/api/v1/stats?period=month&now={now}"),
        format!("/api/v1/rankings/departments?month=2026-03&now={now}"),
        "/api/v1/requests?limit=100".to_string(),
    ] {
        let (status, body) = get_json(app, &path, actors::SUPERVISOR).await;
        assert_eq!(status, 200, "{path}: {body}");
        snapshot.insert(path, body);
    }
    let (status, mut health) = get_json(app, "/api/v1/health/projections", actors::AUDITOR).await;
    assert_eq!(status, 200, "{health}");
    for p in health["projectors"].as_array_mut().expect("projectors") {
        let p = p.as_object_mut().expect("projector");
        p.retain(|k, _| k == "projector" || k == "checkpoint");
    }
    snapshot.insert("checkpoints".into(), health["projectors"].take());
    Value::Object(snapshot)
}

async fn whatif(app: &TestApp, actor: &str, body: &Value) -> (u16, Value) {
    let response = app.post("/api/v1/policy/whatif", actor, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn close_to(value: &Value, expected: f64) -> bool {
    value.as_f64().is_some_and(|v| (v - expected).abs() < 1e-9)
}

async fn a_shorter_limit_halves_the_on_time_rate(store: Store, pg: bool) {
    let db = if pg {
        Some(TestDb::create().await.expect("test database"))
    } else {
        None
    };
    let app = spawn_app_with_projections(store, db.as_ref().map(|d| d.url.clone())).await;
    for minutes in [10, 180, 10, 180] {
        replied_after(&app, chrono::Duration::minutes(minutes)).await;
    }
    wait_caught_up(&app).await;
    let before = live_snapshot(&app).await;
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");

    let body = json!({"profile": shorter_profile(), "from": FROM, "to": TO});
    let (status, report) = whatif(&app, actors::SUPERVISOR, &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["recorded_profile"], "community-station@2026.1");
    assert_eq!(report["proposed_profile"], "community-station@whatif-1");
    assert_eq!(report["requests"], 4, "{report}");
    let rates = report["rates"].as_array().expect("rates");
    assert_eq!(rates.len(), 1, "one month, no grouping: {report}");
    let month = &rates[0];
    assert_eq!(month["period"], "2026-03");
    assert!(
        close_to(&month["recorded"]["on_time_completion_rate"], 1.0),
        "{month}"
    );
    assert!(
        close_to(&month["whatif"]["on_time_completion_rate"], 0.5),
        "{month}"
    );
    assert!(
        close_to(&month["delta"]["on_time_completion_rate"], -0.5),
        "{month}"
    );
    assert_eq!(month["recorded_counts"]["completed_on_time"], 4, "{month}");
    assert_eq!(month["whatif_counts"]["completed_on_time"], 2, "{month}");
    assert!(close_to(&month["delta"]["response_rate"], 0.0), "{month}");
    // The recorded side is what the live read model shows for the month.
    assert_eq!(
        month["recorded"],
        before[&format!("/api/v1/stats?period=month&now={TO}")]["items"][0]["rates"],
        "{month}"
    );
    let urban = report["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .find(|d| d["unit"] == "urban-management")
        .expect("urban management ranked")
        .clone();
    assert!(close_to(&urban["recorded_on_time"], 1.0), "{urban}");
    assert!(close_to(&urban["whatif_on_time"], 0.5), "{urban}");

    // Nothing live moved.
    assert_eq!(live_snapshot(&app).await, before);
    assert_eq!(
        app.command_service
            .log()
            .last_position()
            .await
            .expect("head"),
        head
    );

    // The same profile by name of the deployment's own: every delta is zero.
    let same = json!({"profile_name": "community-station", "from": FROM, "to": TO});
    let (status, report) = whatif(&app, actors::AUDITOR, &same).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events_restamped"], 0, "{report}");
    assert!(close_to(
        &report["rates"][0]["delta"]["on_time_completion_rate"],
        0.0
    ));

    bad_input(&app).await;
    if store == Store::Sqlite {
        cli_on_the_data_dir(&app).await;
    }
    app.teardown().await;
    if let Some(db) = db {
        db.drop_db().await;
    }
}

/// A bad profile, a missing one, a reversed period, an unknown name: 400 naming the field;
/// a station worker: 403.
async fn bad_input(app: &TestApp) {
    let zero = shorter_profile().replace(
        COMPLEX_PROPOSED,
        "completion = { amount = 0, unit = \"natural_hours\" }",
    );
    let cases = [
        (
            json!({"profile": zero, "from": FROM, "to": TO}),
            "profile.tiers.complex.completion.amount",
        ),
        (
            json!({"profile": "id = ", "from": FROM, "to": TO}),
            "profile",
        ),
        (json!({"from": FROM, "to": TO}), "profile"),
        (
            json!({"profile_name": "community-station", "from": TO, "to": FROM}),
            "to",
        ),
        (
            json!({"profile_name": "mars", "from": FROM, "to": TO}),
            "profile_name",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = whatif(app, actors::SUPERVISOR, &body).await;
        assert_eq!(status, 400, "{field}: {error}");
        assert_eq!(error["code"], "invalid", "{error}");
        assert_eq!(error["field"], field, "{error}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{error}"
        );
    }
    let body = json!({"profile_name": "community-station", "from": FROM, "to": TO});
    let (status, error) = whatif(app, actors::STATION, &body).await;
    assert_eq!(status, 403, "{error}");
}

/// `bianmin policy whatif` on the app's embedded log: the same delta as JSON on stdout; a
/// bad profile file exits non-zero naming the field on stderr.
async fn cli_on_the_data_dir(app: &TestApp) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let run = |profile: String| {
        let path = dir.path().join("proposed.toml");
        std::fs::write(&path, profile).expect("profile written");
        std::process::Command::new(tests::faults::bianmin_binary())
            .args(["policy", "whatif", "--profile"])
            .arg(&path)
            .args([
                "--from",
                "2026-03-01",
                "--to",
                "2026-04-01",
                "--json",
                "--data-dir",
            ])
            .arg(&app.config.data_dir)
            .env_remove("BIANMIN_NATS_URL")
            .env_remove("DATABASE_URL")
            .output()
            .expect("bianmin runs")
    };
    let output = run(shorter_profile());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report["requests"], 4, "{report}");
    let delta = &report["rates"][0]["delta"]["on_time_completion_rate"];
    assert!(close_to(delta, -0.5), "{report}");

    let zero = shorter_profile().replace(
        COMPLEX_PROPOSED,
        "completion = { amount = 0, unit = \"natural_hours\" }",
    );
    let output = run(zero);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("tiers.complex.completion.amount"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing on stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_limit_halves_the_on_time_rate_on_sqlite() {
    a_shorter_limit_halves_the_on_time_rate(Store::Sqlite, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_limit_halves_the_on_time_rate_on_nats() {
    a_shorter_limit_halves_the_on_time_rate(Store::Nats, true).await;
}
