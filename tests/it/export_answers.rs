//! The intake answers in the read model and the requests export, on PostgreSQL and SQLite:
//! `requested_item` and `answers` (a JSON object as text) from `request_received`, empty for
//! requests received without them.

use chrono::Duration;
use engine_service::export::{export_requests, summary_columns};
use projections::query::Filter;
use schemas::event::Event;
use schemas::{CommandKind, LoggedCommit};
use serde_json::json;
use uuid::Uuid;

use crate::projections::{Log, Req, apply_all, base, close, open_db, received};

fn commits() -> Vec<LoggedCommit> {
    let mut log = Log::default();
    for i in 0..2 {
        let mut r = Req {
            id: Uuid::from_u128(0x7000 + i as u128),
            version: 0,
            prev: schemas::envelope::GENESIS_HASH.into(),
        };
        let mut event = received("sq-0101", false, base() + Duration::minutes(i), i as usize);
        if i == 0
            && let Event::RequestReceived(e) = &mut event
        {
            e.service_code = Some("um-streetlight".into());
            e.answers =
                serde_json::from_value(json!({"pole_number": "JD-0117", "lamp_state": "off"}))
                    .expect("answers");
        }
        log.emit(&mut r, base(), CommandKind::Receive, vec![event]);
    }
    log.commits
}

async fn answers_are_exported(pg: bool) {
    let (p, g) = open_db(pg).await;
    apply_all(&p, &commits(), 10).await;
    let mut out = Vec::new();
    let rows = export_requests(
        &p,
        Filter::default(),
        base() + Duration::days(1),
        &mut out,
        false,
    )
    .await
    .expect("export");
    assert_eq!(rows, 2);
    let mut reader = csv::Reader::from_reader(out.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, summary_columns());
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let with = records
        .iter()
        .find(|r| r[col("request_id")] == Uuid::from_u128(0x7000).to_string())
        .expect("the answered request");
    assert_eq!(&with[col("requested_item")], "um-streetlight");
    let answers: serde_json::Value = serde_json::from_str(&with[col("answers")]).expect("JSON");
    assert_eq!(
        answers,
        json!({"pole_number": "JD-0117", "lamp_state": "off"})
    );
    let without = records
        .iter()
        .find(|r| r[col("request_id")] == Uuid::from_u128(0x7001).to_string())
        .expect("the other request");
    assert_eq!(
        (&without[col("requested_item")], &without[col("answers")]),
        ("", "")
    );
    close(g).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    answers_are_exported(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    answers_are_exported(false).await;
}
