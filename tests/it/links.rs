//! Linking and merging live requests (`link_duplicate`, `merge_into`), on the SQLite store and
//! on JetStream: two ordered commits with back-references both ways, the merged request
//! refusing further work with an error naming its original, a retry with the same key
//! recording nothing twice, every bad merge a structured error that records nothing, and the
//! rates counting a merged duplicate as no separate request.

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};
use uuid::Uuid;

/// A station worker of another community than the test requests'.
const OTHER_STATION: &str = "worker-zhou;station_worker;sq-0102";

async fn intake(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    created["request_id"].as_str().expect("id").to_string()
}

async fn ok(app: &TestApp, id: &str, action: &str, body: Value) -> Value {
    let (status, answer) = app.command(id, action, actors::STATION, &body).await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

/// An accepted and classified request (deadlines stamped).
async fn live(app: &TestApp) -> String {
    let id = intake(app).await;
    ok(app, &id, "accept", json!({})).await;
    let classify = json!({"catalogue_item": "um-street-vending", "request_type": "complaint"});
    ok(app, &id, "classify", classify).await;
    id
}

/// `action` on `id` with an idempotency key; (status, body).
async fn keyed(app: &TestApp, id: &str, action: &str, key: Uuid, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/requests/{id}/{action}", app.address))
        .header("X-Bianmin-Actor", actors::STATION)
        .header("Idempotency-Key", key.to_string())
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

async fn state(app: &TestApp, id: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/requests/{id}"), actors::SUPERVISOR)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.expect("a JSON body")
}

fn types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Asserts `action` on `id` as `actor` is refused with `code` (and `field`) and records nothing.
async fn refused(app: &TestApp, id: &str, action: &str, actor: &str, body: Value, code: &str) {
    let before = app.log_length().await;
    let (status, answer) = app.command(id, action, actor, &body).await;
    assert!(
        (400..500).contains(&status),
        "{action} {body}: {status} {answer}"
    );
    assert_eq!(answer["code"], code, "{action} {body}: {answer}");
    assert!(answer["message"].is_string(), "{answer}");
    assert_eq!(app.log_length().await, before, "nothing recorded: {answer}");
}

async fn merge_and_link(store: Store) {
    // Arrange: an original and a duplicate, both live; a request in another community; an
    // archived one; a third live one to link.
    let app = spawn_app_with(store, |config| config.projections.enabled = true).await;
    let original = live(&app).await;
    let duplicate = live(&app).await;
    let related = intake(&app).await;
    let archived = intake(&app).await;
    let decline =
        json!({"disposition": "OUTSIDE_PUBLIC_REMIT", "explanation": "属于物业服务合同事项。"});
    ok(&app, &archived, "decline", decline).await;
    ok(&app, &archived, "archive", json!({})).await;
    let merge = |to: &str| json!({"original": to, "reason": "同一路灯，重复反映"});

    // Bad merges: structured errors, nothing recorded.
    refused(
        &app,
        &duplicate,
        "merge_into",
        actors::STATION,
        merge(&duplicate),
        "invalid_field",
    )
    .await;
    let unknown = Uuid::now_v7().to_string();
    refused(
        &app,
        &duplicate,
        "merge_into",
        actors::STATION,
        merge(&unknown),
        "unknown_reference",
    )
    .await;
    refused(
        &app,
        &duplicate,
        "merge_into",
        actors::STATION,
        merge(&archived),
        "invalid_field",
    )
    .await;
    refused(
        &app,
        &duplicate,
        "merge_into",
        actors::STATION,
        json!({"original": original, "reason": " "}),
        "missing_field",
    )
    .await;
    // Rights before facts: a worker of another community sees neither request.
    let (status, answer) = app
        .command(&duplicate, "merge_into", OTHER_STATION, &merge(&original))
        .await;
    assert!(matches!(status, 403 | 404), "{status} {answer}");
    // The back-reference is the engine's own: not accepted over the command route.
    let back = json!({"duplicate": duplicate, "relation": "merged"});
    refused(
        &app,
        &original,
        "record_duplicate",
        actors::STATION,
        back,
        "unknown_action",
    )
    .await;

    // Act: merge, then retry with the same key.
    let key = Uuid::now_v7();
    let (status, merged) = keyed(&app, &duplicate, "merge_into", key, &merge(&original)).await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(
        merged["events"][0]["type"], "linked_to_original",
        "{merged}"
    );
    let length = app.log_length().await;
    let (status, again) = keyed(&app, &duplicate, "merge_into", key, &merge(&original)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(app.log_length().await, length, "a retry records nothing");

    // Assert: events and back-references both ways.
    let link = &merged["events"][0]["data"];
    assert_eq!(link["original"], original.as_str());
    assert_eq!(link["relation"], "merged");
    let on_original = app.history(&original).await;
    let recorded: Vec<&Value> = on_original
        .iter()
        .filter(|e| e["type"] == "duplicate_recorded")
        .collect();
    assert_eq!(recorded.len(), 1, "{:?}", types(&on_original));
    assert_eq!(recorded[0]["data"]["duplicate"], duplicate.as_str());
    assert_eq!(
        recorded[0]["correlation_id"],
        merged["events"][0]["correlation_id"]
    );
    let got = state(&app, &original).await;
    assert_eq!(
        got["state"]["links"]["duplicates"][0]["request"],
        duplicate.as_str(),
        "{got}"
    );
    assert_eq!(got["state"]["links"]["duplicates"][0]["relation"], "merged");
    let got = state(&app, &duplicate).await;
    assert_eq!(got["stage"], "merged", "{got}");
    assert_eq!(
        got["state"]["links"]["originals"][0]["request"],
        original.as_str()
    );

    // The merged request follows its original: work on it is refused, naming the original.
    let before = app.log_length().await;
    let (status, answer) = app
        .command(
            &duplicate,
            "note_progress",
            actors::STATION,
            &json!({"note": "到场查看"}),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["code"], "merged_into", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains(&original),
        "{answer}"
    );
    assert_eq!(app.log_length().await, before);
    // Already merged, into a merged request, or a cycle: refused.
    refused(
        &app,
        &duplicate,
        "merge_into",
        actors::STATION,
        merge(&related),
        "merged_into",
    )
    .await;
    refused(
        &app,
        &related,
        "merge_into",
        actors::STATION,
        merge(&duplicate),
        "invalid_field",
    )
    .await;
    refused(
        &app,
        &original,
        "link_duplicate",
        actors::STATION,
        json!({"original": duplicate, "reason": "同一事项"}),
        "invalid_field",
    )
    .await;

    // A related link keeps both live; the original lists both of its duplicates.
    let linked = ok(
        &app,
        &related,
        "link_duplicate",
        json!({"original": original, "reason": "同一路段"}),
    )
    .await;
    assert_eq!(linked["events"][0]["data"]["relation"], "related");
    assert_eq!(state(&app, &related).await["stage"], "received");
    let got = state(&app, &original).await;
    assert_eq!(
        got["state"]["links"]["duplicates"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{got}"
    );
    // The original goes on being worked.
    ok(
        &app,
        &original,
        "note_progress",
        json!({"note": "已联系城管"}),
    )
    .await;

    // Rates: the merged duplicate counts as received and accepted, but is not due.
    let position = linked["position"].as_u64().unwrap();
    let path =
        format!("/api/v1/stats?period=month&now=2026-06-01T00:00:00Z&min_position={position}");
    let response = app.get(&path, actors::DASHBOARD).await;
    assert_eq!(response.status().as_u16(), 200);
    let stats: Value = response.json().await.unwrap();
    let counts = &stats["items"][0]["counts"];
    assert_eq!(counts["received"], 4, "{stats}");
    assert_eq!(counts["accepted"], 2, "{stats}");
    assert_eq!(counts["response_due"], 1, "only the original: {stats}");
    assert_eq!(counts["due"], 1, "only the original: {stats}");
    app.teardown().await;
}

#[tokio::test]
async fn merge_and_link_on_sqlite() {
    merge_and_link(Store::Sqlite).await;
}

#[tokio::test]
async fn merge_and_link_on_nats() {
    merge_and_link(Store::Nats).await;
}
