//! Candidate duplicates in the answers of native intake and of `accept`: the second of two
//! near-identical requests in one grid names the first, with its ticket, stage and score; an
//! intake system never sees the submissions of another; the profile's `[duplicates]
//! min_score` decides what is listed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, spawn_app_with};

const HERE: (&str, &str, &str) = ("jd-01", "sq-0101", "wg-010102");
const LAMP: &str = "小区门口路灯不亮已经一周了，晚上很危险。";
const LAMP_AGAIN: &str = "小区门口的路灯不亮已经一周，晚上很危险！";
/// Another intake system than [`actors::INTAKE`].
const APP_INTAKE: &str = "resident-app;intake_system";

fn document(text: &str) -> Value {
    json!({
        "channel": "hotline",
        "external_id": external_id(),
        "contact": { "name": "Wang Fang", "phone": "13800001111" },
        "location": { "street": HERE.0, "community": HERE.1, "grid": HERE.2 },
        "text": text,
    })
}

/// Submits `text` as `actor`; returns the answer, with the ticket under `"ticket"`.
async fn submit(app: &TestApp, actor: &str, text: &str) -> Value {
    let document = document(text);
    let response = app.post("/api/v1/requests", actor, &document).await;
    assert_eq!(response.status().as_u16(), 201);
    let mut answer: Value = response.json().await.unwrap();
    answer["ticket"] = document["external_id"].clone();
    answer
}

/// Waits until the read model lists every request of `ids`.
async fn projected(app: &TestApp, ids: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Value = app
            .get("/api/v1/requests?limit=1000", actors::SUPERVISOR)
            .await
            .json()
            .await
            .unwrap();
        let listed: Vec<&str> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|row| row["request_id"].as_str())
            .collect();
        if ids.iter().all(|id| listed.contains(id)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not projected: {ids:?} in {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn listed(answer: &Value) -> Vec<&str> {
    answer["duplicates"]
        .as_array()
        .unwrap_or_else(|| panic!("no duplicates in {answer}"))
        .iter()
        .filter_map(|c| c["request_id"].as_str())
        .collect()
}

async fn intake_and_accept_answers_name_the_candidates_the_caller_may_read(store: Store) {
    // Arrange
    let app = spawn_app_with(store, |config| config.projections.enabled = true).await;
    let first = submit(&app, actors::INTAKE, LAMP).await;
    let first_id = first["request_id"].as_str().unwrap().to_string();
    assert_eq!(first["duplicates"], json!([]), "nothing before it: {first}");
    projected(&app, &[&first_id]).await;

    // Act
    let second = submit(&app, actors::INTAKE, LAMP_AGAIN).await;
    let other_system = submit(&app, APP_INTAKE, LAMP).await;
    let second_id = second["request_id"].as_str().unwrap().to_string();
    let other_id = other_system["request_id"].as_str().unwrap().to_string();
    projected(&app, &[&second_id, &other_id]).await;
    let (status, accepted) = app
        .command(&second_id, "accept", actors::STATION, &json!({}))
        .await;

    // Assert: the intake names the first with its ticket, stage and score.
    let candidate = &second["duplicates"][0];
    assert_eq!(listed(&second), [first_id.as_str()], "{second}");
    assert_eq!(candidate["stage"], "received");
    assert_eq!(candidate["external_id"], first["ticket"]);
    let score = candidate["score"].as_f64().unwrap();
    assert!(score > 0.7 && score < 1.0, "{score}");
    // Rights first: another intake system's submission never names this one's.
    assert_eq!(other_system["duplicates"], json!([]), "{other_system}");
    // At acceptance the station worker sees both others in its community, best first.
    assert_eq!(status, 200, "{accepted}");
    let names = listed(&accepted);
    assert_eq!(names.len(), 2, "{accepted}");
    assert!(names.contains(&first_id.as_str()) && names.contains(&other_id.as_str()));
    let scores: Vec<f64> = accepted["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] >= scores[1], "best first: {scores:?}");
    app.teardown().await;
}

tests::on_both_stores!(intake_and_accept_answers_name_the_candidates_the_caller_may_read);

async fn the_profiles_min_score_decides_what_is_listed(store: Store) {
    // Arrange: a profile that lists only texts scoring 0.95 or more.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("strict.toml");
    let text = engine_core::policy::BUILTIN_COMMUNITY_STATION
        .replace("min_score = 0.3", "min_score = 0.95");
    assert_ne!(text, engine_core::policy::BUILTIN_COMMUNITY_STATION);
    std::fs::write(&profile, text).unwrap();
    let app = spawn_app_with(store, |config| {
        config.projections.enabled = true;
        config.policy.profile_file = Some(profile.clone());
    })
    .await;
    let first = submit(&app, actors::INTAKE, LAMP).await;
    let first_id = first["request_id"].as_str().unwrap().to_string();
    projected(&app, &[&first_id]).await;

    // Act
    let near = submit(&app, actors::INTAKE, LAMP_AGAIN).await;
    let same = submit(&app, actors::INTAKE, LAMP).await;

    // Assert: 0.88 is below the profile's threshold, the same text is not.
    assert_eq!(near["duplicates"], json!([]), "{near}");
    assert_eq!(listed(&same), [first_id.as_str()], "{same}");
    assert_eq!(same["duplicates"][0]["score"], 1.0);
    app.teardown().await;
}

tests::on_both_stores!(the_profiles_min_score_decides_what_is_listed);
