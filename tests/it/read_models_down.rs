//! Start-up never depends on the read models: `bianmin serve` started while its projections
//! database is down serves intake at once, `/readyz` names the missing parts, the read API
//! answers 503, and once the database is up the projectors catch up with the log.

use std::time::{Duration, Instant};

use tests::faults::{
    Api, INTAKE, PrivatePostgres, SUPERVISOR, ServeOptions, ServeProcess, intake_document,
    wait_projections_caught_up,
};

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn serve_starts_with_its_database_down_and_catches_up_when_it_comes_up() {
    let mut postgres = PrivatePostgres::start().await;
    let database_url = postgres.create_database("bianmin").await;
    postgres.stop().await;
    // The contact store, privacy ledger and deliveries are on the intake path: they live on
    // another server, which stays up, so that only the read models are down.
    let stores = tests::pg::TestDb::create().await.expect("stores database");
    let log = tests::nats::unique_log_config();
    let prefix = log.names.prefix().to_string();
    let serve = ServeProcess::start(ServeOptions {
        nats_url: Some(tests::nats::shared_nats_url()),
        database_url: Some(database_url),
        env: vec![
            (
                "BIANMIN_NATS__STREAM".into(),
                log.names.events_stream().to_string(),
            ),
            ("BIANMIN_NATS__SUBJECT_PREFIX".into(), prefix),
        ],
        extra_toml: format!("[stores]\nurl = \"{}\"\n", stores.url),
    })
    .await;
    let api = Api::new(serve.url());
    for n in 0..3 {
        let reply = api
            .post(
                "/api/v1/requests",
                Some(INTAKE),
                &intake_document(&format!("DOWN-{n}"), "13900000000"),
                None,
            )
            .await
            .expect("answered");
        assert!((200..300).contains(&reply.status), "intake: {reply:?}");
    }

    let ready = api.get("/readyz", None).await.expect("answered");
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["status"], "degraded", "{}", ready.body);
    assert_eq!(ready.body["parts"]["log"], "ok", "{}", ready.body);
    let projections = ready.body["parts"]["projections"].as_str().unwrap_or("");
    assert!(projections.starts_with("unreachable"), "{}", ready.body);
    assert!(
        ready.body["parts"]["notifications"]
            .as_str()
            .is_some_and(|s| s.starts_with("waiting")),
        "{}",
        ready.body
    );
    let read = api
        .get("/api/v1/health/projections", Some(SUPERVISOR))
        .await
        .expect("answered");
    assert_eq!(read.status, 503, "{:?}", read.body);
    assert_eq!(read.body["code"], "unavailable");
    assert!(
        read.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("projections")
    );

    postgres.restart().await;
    wait_projections_caught_up(&api, DEADLINE).await;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = api.get("/readyz", None).await.expect("answered");
        // Every part is back; the calendar part depends on today's date, not on the databases.
        let parts = ready.body["parts"].as_object().cloned().unwrap_or_default();
        if parts
            .iter()
            .all(|(part, state)| part == "calendar" || state == "ok")
        {
            assert_eq!(ready.body["parts"]["notifications"], "ok");
            break;
        }
        assert!(Instant::now() < deadline, "not ready again: {}", ready.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = api
        .get("/api/v1/notifications", Some(SUPERVISOR))
        .await
        .expect("answered");
    assert_ne!(listed.status, 503, "{:?}", listed.body);
    let client = tests::nats::shared_nats().await;
    tests::nats::delete_stream(&client, log.names.events_stream()).await;
    drop(serve);
    stores.drop_db().await;
}
