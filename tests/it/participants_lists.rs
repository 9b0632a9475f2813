//! The read models of assignment and of the departments' own parts, through a running app on
//! each log store (SQLite log with SQLite read models, JetStream with PostgreSQL): the
//! assignee beside the first-contact owner, the personal worklist and who may read it, the
//! assisting departments' worklists with their part's status and deadline, their overdue
//! lists when their part is late, and a missed whistle report in `/api/v1/overdue`.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, spawn_app_with_projections};
use tests::pg::TestDb;

use crate::e2e_supervision::{SANITATION, events, get_json, instant, ok, refused, wait_caught_up};

/// Another handler of urban management.
const URBAN_MA: &str = "handler-ma;department_handler;urban-management";

/// `?now=` of an instant.
fn now_q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The list's items (status 200 asserted).
async fn items(app: &TestApp, path: &str, actor: &str) -> Vec<Value> {
    let (status, body) = get_json(app, path, actor).await;
    assert_eq!(status, 200, "{path} as {actor}: {body}");
    body["items"].as_array().expect("items").clone()
}

/// The item of request `id` in `list`, if listed.
fn find<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|s| s["request_id"] == id)
}

/// Intake, accept, classify, refer to urban management with sanitation and water assisting,
/// then signed for, contacted and in handling by the lead.
async fn referred_with_assistance(app: &TestApp) -> String {
    let (status, created) = app
        .intake(&tests::app::intake_document(&tests::app::external_id()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let steps = [
        ("accept", actors::STATION, json!({})),
        (
            "classify",
            actors::STATION,
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
        ),
        (
            "refer",
            actors::STATION,
            json!({"lead_department": "urban-management", "assisting_departments": ["sanitation", "water"]}),
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
        app.clock.advance(Duration::minutes(5));
        ok(app, &id, action, actor, body).await;
    }
    id
}

async fn assignment_and_parts(store: Store) {
    let db = match store {
        Store::Nats => Some(TestDb::create().await.expect("a PostgreSQL database")),
        Store::Sqlite => None,
    };
    let app = spawn_app_with_projections(store, db.as_ref().map(|d| d.url.clone())).await;
    let id = referred_with_assistance(&app).await;
    let referral = events(&app, &id, "referred_to_department").await;
    let part_due = instant(&referral[0]["data"]["assistance_due_at"]);

    // Assigned by a colleague, then reassigned with a reason; the owner stays the station's.
    ok(
        &app,
        &id,
        "assign",
        actors::URBAN,
        json!({"assignee": "handler-ma"}),
    )
    .await;
    refused(
        &app,
        &id,
        "reassign",
        actors::URBAN,
        json!({"assignee": "handler-zhao", "reason": ""}),
        (422, "missing_field"),
    )
    .await;
    ok(
        &app,
        &id,
        "reassign",
        actors::URBAN,
        json!({"assignee": "handler-zhao", "reason": "Ma is on leave"}),
    )
    .await;
    // The assisting parts: sanitation signs, water returns its part.
    ok(&app, &id, "sign_assistance", SANITATION, json!({})).await;
    ok(
        &app,
        &id,
        "return_assistance",
        actors::WATER,
        json!({"reason": "Not a water matter"}),
    )
    .await;
    wait_caught_up(&app).await;

    let zhao = items(&app, "/api/v1/worklists/people/handler-zhao", actors::URBAN).await;
    let row = find(&zhao, &id).expect("listed for the assignee");
    assert_eq!(row["assignee"], "handler-zhao", "{row}");
    assert_eq!(row["assignee_unit"], "urban-management", "{row}");
    assert_eq!(row["owner"], "worker-li", "first-contact owner kept: {row}");
    let ma = items(&app, "/api/v1/worklists/people/handler-ma", URBAN_MA).await;
    assert!(find(&ma, &id).is_none(), "no longer Ma's: {ma:?}");
    // A colleague reads it within their unit; another unit's handler only their own.
    let path = "/api/v1/worklists/people/handler-zhao?unit=urban-management";
    assert!(find(&items(&app, path, URBAN_MA).await, &id).is_some());
    let (status, body) =
        get_json(&app, "/api/v1/worklists/people/handler-zhao", actors::WATER).await;
    assert_eq!(status, 403, "{body}");
    let path = "/api/v1/worklists/people/handler-zhao?unit=water";
    assert!(items(&app, path, actors::WATER).await.is_empty());
    let (status, body) = get_json(
        &app,
        "/api/v1/worklists/people/handler-zhao?unit=",
        actors::SUPERVISOR,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("unit")),
        "{body}"
    );

    // The lead's inbox has it unmarked; sanitation's marks its own part; water's has none.
    let lead = items(
        &app,
        "/api/v1/worklists/departments/urban-management",
        actors::URBAN,
    )
    .await;
    assert!(
        find(&lead, &id).is_some_and(|s| s.get("part").is_none()),
        "{lead:?}"
    );
    let san = items(&app, "/api/v1/worklists/departments/sanitation", SANITATION).await;
    let part = &find(&san, &id).expect("the assisting department sees it")["part"];
    assert_eq!(part["kind"], "assisting", "{part}");
    assert_eq!(part["status"], "signed_for", "{part}");
    assert_eq!(instant(&part["due_at"]), part_due, "{part}");
    let water = items(&app, "/api/v1/worklists/departments/water", actors::WATER).await;
    assert!(
        find(&water, &id).is_none(),
        "a returned part leaves the inbox: {water:?}"
    );

    // Sanitation's overdue list: empty before its part's deadline, the part after it.
    let overdue =
        |t: DateTime<Utc>| format!("/api/v1/overdue?department=sanitation&now={}", now_q(t));
    let before = items(&app, &overdue(part_due - Duration::minutes(1)), SANITATION).await;
    assert!(find(&before, &id).is_none(), "{before:?}");
    let after = items(&app, &overdue(part_due + Duration::minutes(1)), SANITATION).await;
    let late = &find(&after, &id).expect("listed overdue for its part")["part"];
    assert_eq!(
        (late["kind"].as_str(), late["overdue"].as_bool()),
        (Some("assisting"), Some(true))
    );
    ok(
        &app,
        &id,
        "report_assistance",
        SANITATION,
        json!({"note": "Street swept"}),
    )
    .await;
    wait_caught_up(&app).await;
    let reported = items(&app, &overdue(part_due + Duration::minutes(1)), SANITATION).await;
    assert!(
        find(&reported, &id).is_none(),
        "a reported part is not overdue: {reported:?}"
    );

    whistle_report_missed(&app, &id).await;
    app.teardown().await;
    if let Some(db) = db {
        db.drop_db().await;
    }
}

/// A summoned department's missed report (吹哨报到) lists the request in `/api/v1/overdue`
/// and in that department's overdue list, until it reports.
async fn whistle_report_missed(app: &TestApp, id: &str) {
    ok(
        app,
        id,
        "blow_whistle",
        actors::STATION,
        json!({"departments": ["water"], "summary": "Burst main under the stalls"}),
    )
    .await;
    let blown = events(app, id, "whistle_blown").await;
    let due = instant(&blown[0]["data"]["report_due_at"]);
    let completion = instant(
        &events(app, id, "request_classified").await[0]["data"]["deadlines"]["completion_due_at"],
    );
    assert!(due < completion, "the whistle falls due first");
    wait_caught_up(app).await;
    let all = |t: DateTime<Utc>| format!("/api/v1/overdue?now={}", now_q(t));
    let early = items(app, &all(due - Duration::minutes(1)), actors::SUPERVISOR).await;
    assert!(find(&early, id).is_none(), "{early:?}");
    let late = items(app, &all(due + Duration::minutes(1)), actors::SUPERVISOR).await;
    assert!(
        find(&late, id).is_some(),
        "a missed whistle report is overdue: {late:?}"
    );
    let path = format!(
        "/api/v1/overdue?department=water&now={}",
        now_q(due + Duration::minutes(1))
    );
    let water = items(app, &path, actors::WATER).await;
    let part = &find(&water, id).expect("in water's overdue list")["part"];
    assert_eq!(
        (part["kind"].as_str(), part["status"].as_str()),
        (Some("whistle"), Some("summoned"))
    );
    ok(
        app,
        id,
        "report_to_whistle",
        actors::WATER,
        json!({"department": "water", "note": "Valve closed"}),
    )
    .await;
    wait_caught_up(app).await;
    let after = items(app, &all(due + Duration::minutes(1)), actors::SUPERVISOR).await;
    assert!(find(&after, id).is_none(), "reported: {after:?}");
}

tests::on_both_stores!(assignment_and_parts);
