//! `bianmin import` of the typed questions' answers: `answer.<code>` columns, one per
//! question of the row's `catalogue_item`. A good file's answers are recorded typed in the
//! `request_received` event; a bad file's rows are refused with the line and the answer's
//! column named (a required answer missing, a choice the question does not offer, a question
//! the item does not ask, answers without an item) and leave nothing in the log.

use engine_service::import::ImportOptions;
use serde_json::json;
use tests::app::Store;

use crate::import::{Stores, bad_rows, request_id};

const HEADER: &str = "external_id,channel,received_at,street,community,grid,text,accepted_at,\
catalogue_item,classified_at,answer.pole_number,answer.lamp_state";

fn row(ticket: &str, item: &str, pole: &str, state: &str) -> String {
    format!(
        "{ticket},hotline,2026-02-02 09:12,jd-01,sq-0101,wg-010101,北门路灯不亮,\
         2026-02-02 09:20,{item},2026-02-02 09:35,{pole},{state}"
    )
}

async fn import(
    stores: &Stores,
    name: &str,
    lines: &[String],
) -> engine_service::import::ImportReport {
    let path = stores.dir.path().join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the file");
    let mut options = ImportOptions::new(&path);
    options.concurrency = 2;
    stores
        .importer()
        .run(&options, None)
        .await
        .expect("the import runs")
}

async fn received_data(stores: &Stores, ticket: &str) -> serde_json::Value {
    let history = stores.log.load(request_id(ticket)).await.expect("load");
    let event = serde_json::to_value(&history[0].commit.events[0]).expect("json");
    assert_eq!(event["type"], "request_received", "{event}");
    event["data"].clone()
}

async fn answer_columns_are_recorded_typed_and_checked_as_at_intake(store: Store) {
    // Arrange
    let stores = Stores::open(store).await;
    let prefix = format!("ANS-{}", uuid::Uuid::now_v7().simple());
    let good = format!("{prefix}-good");
    let no_answers = format!("{prefix}-none");
    let good_file = [
        HEADER.to_string(),
        row(&good, "um-streetlight", "LD-0417", "flickering"),
        row(&no_answers, "um-streetlight", "", ""),
    ];
    let bad_file = [
        format!("{HEADER},answer.colour"),
        // 2: the required pole number missing
        row(&format!("{prefix}-b1"), "um-streetlight", "", "off") + ",",
        // 3: a choice the question does not offer
        row(&format!("{prefix}-b2"), "um-streetlight", "LD-1", "dark") + ",",
        // 4: a question the item does not ask
        row(&format!("{prefix}-b3"), "um-streetlight", "LD-1", "off") + ",red",
        // 5: answers without an item
        format!(
            "{prefix}-b4,hotline,2026-02-02 09:12,jd-01,sq-0101,wg-010101,北门路灯不亮,,,,LD-1,off,"
        ),
    ];

    // Act
    let first = import(&stores, "good.csv", &good_file).await;
    let second = import(&stores, "bad.csv", &bad_file).await;

    // Assert: the good rows are in, the answers typed in the intake event.
    assert_eq!((first.imported, first.bad), (2, 0), "{first:#?}");
    let data = received_data(&stores, &good).await;
    assert_eq!(data["service_code"], "um-streetlight", "{data}");
    assert_eq!(
        data["answers"],
        json!({"pole_number": "LD-0417", "lamp_state": "flickering"})
    );
    // A row without answer columns records none, as before.
    let data = received_data(&stores, &no_answers).await;
    assert!(
        data.get("answers").is_none() && data.get("service_code").is_none(),
        "{data}"
    );
    // The bad rows: line and column named, nothing recorded.
    assert_eq!(second.imported, 0, "{second:#?}");
    assert_eq!(
        bad_rows(&second),
        vec![
            (2, Some("answer.pole_number"), "answer_required"),
            (3, Some("answer.lamp_state"), "answer_invalid"),
            (4, Some("answer.colour"), "unknown_question"),
            (5, Some("catalogue_item"), "required"),
        ]
    );
    for n in 1..=4 {
        let history = stores
            .log
            .load(request_id(&format!("{prefix}-b{n}")))
            .await
            .expect("load");
        assert!(history.is_empty(), "b{n} left nothing");
    }
    stores.close().await;
}

#[tokio::test]
async fn answer_columns_on_sqlite() {
    answer_columns_are_recorded_typed_and_checked_as_at_intake(Store::Sqlite).await;
}

#[tokio::test]
async fn answer_columns_on_jetstream_and_postgres() {
    answer_columns_are_recorded_typed_and_checked_as_at_intake(Store::Nats).await;
}
