//! No plaintext contact outside the contact store that outlives delivery, on the production
//! shape (JetStream log, PostgreSQL projections and stores): after a resident's request is
//! received and notified, their name and phone are in none of the notification stream, the
//! event log, any table of PostgreSQL (read models, delivery table, the contact store's
//! ciphertexts and wrapped keys, the privacy ledger), the engine's files, `/metrics` or its
//! debug-level log output — before erasure and after it — and the notification stream has a
//! bounded `max_age`. The engine's data directory holds no contact store or ledger file.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use engine_core::Clock;
use engine_log::{EventLog, JetStreamConfig};
use engine_service::contacts::ContactStore;
use engine_service::privacy::{self, PrivacyLedger};
use sqlx::{Connection, PgConnection, Row};
use tests::faults::{Api, INTAKE, ServeOptions, ServeProcess};
use tests::nats::shared_nats_url;
use tests::pg::TestDb;
use uuid::Uuid;

const PHONE: &str = "13755554444";
const NAME: &str = "隐私测试居民";

fn leaks(text: &str) -> bool {
    text.contains(PHONE) || text.contains(NAME)
}

/// Every message of `stream`, as text.
async fn stream_text(js: &jetstream::Context, stream: &str) -> (usize, String) {
    let Ok(mut stream) = js.get_stream(stream).await else {
        return (0, String::new());
    };
    let last = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut out = String::new();
    let mut count = 0;
    for sequence in 1..=last {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            out.push_str(&String::from_utf8_lossy(&message.payload));
            out.push('\n');
            count += 1;
        }
    }
    (count, out)
}

/// Every row of every table of the projections database, as text.
async fn database_text(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    for table in [
        "notify_deliveries",
        "contact_keys",
        "resident_contacts",
        "contact_erasures",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} is among {tables:?}"
        );
    }
    let mut out = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t::text AS row FROM \"{table}\" t"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("rows");
        for row in rows {
            out.push_str(&row.get::<String, _>("row"));
            out.push('\n');
        }
    }
    out
}

/// Every place contact data must not be, as (what, text).
async fn everywhere(
    engine: &ServeProcess,
    api: &Api,
    js: &jetstream::Context,
    stream: &str,
    db: &str,
) -> Vec<(String, String)> {
    let mut out = vec![
        (
            "notification stream".to_string(),
            stream_text(js, &format!("{stream}_NOTIFY")).await.1,
        ),
        ("event stream".to_string(), stream_text(js, stream).await.1),
        ("PostgreSQL".to_string(), database_text(db).await),
        ("log output".to_string(), engine.output()),
        (
            "metrics".to_string(),
            api.text("/metrics", None).await.expect("metrics").1,
        ),
    ];
    for file in walk(&engine.data_dir()) {
        let bytes = std::fs::read(&file).expect("read a file");
        out.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_name_or_phone_outside_the_contact_store_before_or_after_erasure() {
    let db = TestDb::create().await.expect("a test database");
    let stream = format!("BIANMIN_P{}", Uuid::now_v7().simple()).to_uppercase();
    let engine = ServeProcess::start(ServeOptions {
        nats_url: Some(shared_nats_url()),
        database_url: Some(db.url.clone()),
        env: vec![
            ("BIANMIN_NATS__STREAM".into(), stream.clone()),
            ("BIANMIN_NATS__SUBJECT_PREFIX".into(), stream.to_lowercase()),
        ],
        extra_toml: "[projections]\nenabled = true\n[notify]\nmax_age_secs = 7200\n".into(),
    })
    .await;
    let api = Api::new(engine.url());
    let document = serde_json::json!({
        "channel": "hotline",
        "external_id": format!("PN-{}", Uuid::now_v7().simple()),
        "confidential": true,
        "contact": { "name": NAME, "phone": PHONE, "address_detail": "3-2-501" },
        "location": { "street": "jd-01", "community": "sq-0101", "grid": "wg-010102" },
        "text": "The stairwell light has been broken for a week.",
    });
    let reply = api
        .post("/api/v1/requests", Some(INTAKE), &document, None)
        .await
        .expect("intake answered");
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id: Uuid = serde_json::from_value(reply.body["request_id"].clone()).expect("an id");

    let js_client = async_nats::connect(shared_nats_url()).await.expect("nats");
    let js = jetstream::new(js_client.clone());
    let notify_stream = format!("{stream}_NOTIFY");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if stream_text(&js, &notify_stream).await.0 > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no notification was published");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let info = js
        .get_stream(&notify_stream)
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .config
        .clone();
    assert_eq!(info.max_age, Duration::from_secs(7200), "a bounded max_age");
    // Let the projector write the request and the delivery row settle.
    tokio::time::sleep(Duration::from_secs(2)).await;

    for (what, text) in everywhere(&engine, &api, &js, &stream, &db.url).await {
        assert!(
            !what.contains("contacts.db") && !what.contains("privacy.db"),
            "the contact store and the ledger are in PostgreSQL, not in {what}"
        );
        assert!(
            !leaks(&text),
            "{what} holds the name or phone before erasure"
        );
    }

    let clock: Arc<dyn Clock> = Arc::new(engine_log::clock::SystemClock);
    let names = schemas::Names::new(&stream.to_lowercase(), &stream).expect("valid names");
    let log = EventLog::connect_jetstream(
        js_client.clone(),
        JetStreamConfig {
            names,
            ..JetStreamConfig::default()
        },
    )
    .await
    .expect("the engine's log");
    let contacts =
        ContactStore::open_postgres(&db.url, &engine.data_dir().join("kek"), clock.clone())
            .await
            .expect("contacts");
    let ledger = PrivacyLedger::open_postgres(&db.url).await.expect("ledger");
    let outcome = privacy::erase(&log, &contacts, &ledger, id, "dpo", "test", clock.now())
        .await
        .expect("erase");
    assert!(outcome.key_destroyed);
    assert_eq!(ledger.erasures().await.expect("ledger").len(), 1);
    drop(contacts);
    for (what, text) in everywhere(&engine, &api, &js, &stream, &db.url).await {
        assert!(
            !leaks(&text),
            "{what} holds the name or phone after erasure"
        );
    }
    let _ = js.delete_stream(&notify_stream).await;
    let _ = js.delete_stream(&stream).await;
    db.drop_db().await;
}
