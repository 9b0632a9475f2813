//! Two jurisdictions (two engine instances with their own prefix and event stream) on one
//! NATS server: each runs full lifecycles, request-reply and inbox intake, upward reports,
//! scheduled rate reports and notifications, and afterwards every stream, consumer and read
//! model of one holds nothing of the other.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use schemas::event::ReportLevel;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};
use uuid::Uuid;

use crate::e2e_supervision::{in_progress, ok};

/// An engine for jurisdiction `tag` on the shared server: prefix `<tag><unique>`, stream
/// `<TAG><UNIQUE>_EVENTS`, projections on SQLite, a monthly street report schedule.
async fn jurisdiction(tag: &str) -> TestApp {
    let unique = Uuid::now_v7().simple().to_string();
    spawn_app_with(Store::Nats, |c| {
        c.nats.subject_prefix = format!("{tag}{unique}");
        c.nats.stream = format!("{}{}_EVENTS", tag.to_uppercase(), unique.to_uppercase());
        c.projections.enabled = true;
        c.reports.poll_secs = 1;
        c.reports.schedules = vec![engine_service::reports::schedule::Schedule {
            level: ReportLevel::Street,
            units: vec![],
            every: engine_service::reports::schedule::Every::Month,
            day: 1,
            at: "09:00".into(),
        }];
    })
    .await
}

/// An engine for jurisdiction `tag` in the NATS account of user `tag` (password
/// `<tag>-pw`) on `server`, with the default prefix and stream names.
async fn jurisdiction_in_account(server: &tests::nats::NatsServer, tag: &str) -> TestApp {
    let (url, user, password) = (server.url(), tag.to_string(), format!("{tag}-pw"));
    spawn_app_with(Store::Nats, move |c| {
        c.nats.url = Some(url);
        c.nats.user = Some(user);
        c.nats.password = Some(password.as_str().into());
        c.nats.subject_prefix = schemas::names::DEFAULT_PREFIX.into();
        c.nats.stream = schemas::names::DEFAULT_EVENTS_STREAM.into();
        c.projections.enabled = true;
    })
    .await
}

/// Drives one jurisdiction: a lifecycle over HTTP reported upward, an intake over NATS
/// request-reply and one through the durable inbox. Returns the request ids it created.
async fn drive(app: &TestApp, client: &async_nats::Client) -> BTreeSet<String> {
    let names = app.names();
    let mut ids = BTreeSet::new();
    let lifecycle = in_progress(app).await;
    ok(
        app,
        &lifecycle,
        "report_upward",
        actors::URBAN,
        json!({"level": "district", "summary": "需区级协调"}),
    )
    .await;
    ids.insert(lifecycle);

    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Bianmin-Actor", actors::INTAKE);
    let document = intake_document(&external_id()).to_string();
    let reply = client
        .request_with_headers(names.intake_subject("hotline"), headers, document.into())
        .await
        .expect("a request-reply answer");
    let body: Value = serde_json::from_slice(&reply.payload).expect("a JSON reply");
    ids.insert(
        body["request_id"]
            .as_str()
            .expect("a request id")
            .to_string(),
    );

    let js = jetstream::new(client.clone());
    let inboxed = intake_document(&external_id());
    js.publish(names.inbox_subject("hotline"), inboxed.to_string().into())
        .await
        .expect("inbox publish")
        .await
        .expect("inbox ack");
    ids
}

/// Every request id in the app's event log (the engine's own streams excluded).
async fn logged_requests(app: &TestApp) -> BTreeSet<String> {
    let log = app.command_service.log();
    let (mut ids, mut from) = (BTreeSet::new(), 1);
    loop {
        let batch = log.read_from(from, 500).await.expect("the log reads");
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        ids.extend(
            batch
                .iter()
                .filter(|c| !c.commit.command.is_internal())
                .map(|c| c.commit.request_id.to_string()),
        );
    }
    ids
}

/// The subjects of every message in `stream` (empty when the stream does not exist).
async fn stream_subjects(js: &jetstream::Context, stream: &str) -> Vec<String> {
    let Ok(mut stream) = js.get_stream(stream).await else {
        return Vec::new();
    };
    let info = stream.info().await.expect("stream info").clone();
    let mut subjects = Vec::new();
    for seq in info.state.first_sequence.max(1)..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(seq).await {
            subjects.push(message.subject.to_string());
        }
    }
    subjects
}

/// Asserts that `app`'s API answers 404 for every request of `foreign`.
async fn blind_to(app: &TestApp, foreign: &BTreeSet<String>) {
    for id in foreign {
        let answer = app
            .get(&format!("/api/v1/requests/{id}"), actors::AUDITOR)
            .await;
        assert_eq!(
            answer.status(),
            404,
            "{id} is visible to another jurisdiction"
        );
    }
}

/// Waits up to 20 s for `check`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} within 20 s");
}

#[tokio::test]
async fn two_jurisdictions_on_one_nats_server_keep_to_their_own_streams() {
    let client = async_nats::connect(tests::app::NATS_URL)
        .await
        .expect("nats");
    let js = jetstream::new(client.clone());
    let (yc, sz) = (jurisdiction("yc").await, jurisdiction("sz").await);
    let yc_ids = drive(&yc, &client).await;
    let sz_ids = drive(&sz, &client).await;
    let yc_inbox = yc_ids.len() + 1;
    let sz_inbox = sz_ids.len() + 1;

    // Each inbox document is recorded by its own jurisdiction, none by the other.
    eventually("each log holds its inbox request", || async {
        logged_requests(&yc).await.len() == yc_inbox && logged_requests(&sz).await.len() == sz_inbox
    })
    .await;
    let (yc_log, sz_log) = (logged_requests(&yc).await, logged_requests(&sz).await);
    assert!(yc_log.is_superset(&yc_ids), "{yc_log:?} ⊉ {yc_ids:?}");
    assert!(sz_log.is_superset(&sz_ids), "{sz_log:?} ⊉ {sz_ids:?}");
    assert!(yc_log.is_disjoint(&sz_log), "{yc_log:?} ∩ {sz_log:?}");

    for (app, other) in [(&yc, &sz), (&sz, &yc)] {
        let (names, other_names) = (app.names(), other.names());
        let own = format!("{}.", names.prefix());
        // The command bindings bucket's keys are spelled by NATS: `$KV.<bucket>.<id>`.
        let own_bucket = format!("$KV.{}.", names.commands_bucket());
        let own_leases = format!("$KV.{}.", names.leases_bucket());
        // Upward reports and scheduled rate reports are stored in its own streams only.
        eventually("the upward report is stored", || async {
            !stream_subjects(&js, &names.upward_stream())
                .await
                .is_empty()
        })
        .await;
        eventually("the scheduled rate reports are stored", || async {
            !stream_subjects(&js, &names.reports_stream())
                .await
                .is_empty()
        })
        .await;
        for stream in names.all_streams() {
            let subjects = stream_subjects(&js, &stream).await;
            assert!(
                subjects.iter().all(|s| {
                    s.starts_with(&own) || s.starts_with(&own_bucket) || s.starts_with(&own_leases)
                }),
                "{stream} holds another instance's subjects: {subjects:?}"
            );
            assert!(
                !other_names.all_streams().contains(&stream),
                "{stream} is shared"
            );
        }
        // The inbox stream has exactly one durable consumer: this instance's.
        let inbox = js.get_stream(names.inbox_stream()).await.expect("inbox");
        let consumers: Vec<String> = inbox
            .consumer_names()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .map(|c| c.expect("consumer name"))
            .collect();
        assert_eq!(consumers, [names.inbox_consumer()]);
    }

    // The API of one jurisdiction knows nothing of the other's requests.
    blind_to(&yc, &sz_ids).await;
    blind_to(&sz, &yc_ids).await;
    yc.teardown().await;
    sz.teardown().await;
}

/// Two accounts, one per jurisdiction, each with JetStream.
const ACCOUNTS: &str = "accounts {
  YC { jetstream: enabled, users: [ { user: yc, password: yc-pw } ] }
  SZ { jetstream: enabled, users: [ { user: sz, password: sz-pw } ] }
}
";

#[tokio::test]
async fn two_jurisdictions_in_their_own_accounts_keep_apart_under_the_same_names() {
    let server = tests::nats::NatsServer::start_with_config(ACCOUNTS).await;
    let login = |user: &str| {
        async_nats::ConnectOptions::with_user_and_password(user.into(), format!("{user}-pw"))
            .connect(server.url())
    };
    let (yc_client, sz_client) = (
        login("yc").await.expect("yc"),
        login("sz").await.expect("sz"),
    );
    let (yc, sz) = (
        jurisdiction_in_account(&server, "yc").await,
        jurisdiction_in_account(&server, "sz").await,
    );
    assert_eq!(yc.names(), sz.names(), "both use the default names");
    let yc_ids = drive(&yc, &yc_client).await;
    let sz_ids = drive(&sz, &sz_client).await;
    let (yc_total, sz_total) = (yc_ids.len() + 1, sz_ids.len() + 1);
    eventually("each log holds its inbox request", || async {
        logged_requests(&yc).await.len() == yc_total && logged_requests(&sz).await.len() == sz_total
    })
    .await;
    let (yc_log, sz_log) = (logged_requests(&yc).await, logged_requests(&sz).await);
    assert!(yc_log.is_superset(&yc_ids) && sz_log.is_superset(&sz_ids));
    assert!(yc_log.is_disjoint(&sz_log), "{yc_log:?} ∩ {sz_log:?}");
    for (client, app) in [(&yc_client, &yc), (&sz_client, &sz)] {
        let js = jetstream::new(client.clone());
        eventually("the upward report is stored", || async {
            stream_subjects(&js, &app.names().upward_stream())
                .await
                .len()
                == 1
        })
        .await;
        let events = stream_subjects(&js, app.names().events_stream()).await;
        assert!(!events.is_empty());
    }
    blind_to(&yc, &sz_ids).await;
    blind_to(&sz, &yc_ids).await;
    yc.teardown_keep_store().await;
    sz.teardown_keep_store().await;
}
