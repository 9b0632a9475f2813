//! `bianmin import` fidelity, on the embedded SQLite store and on JetStream + PostgreSQL: a
//! file with CRLF line endings (RFC 4180, Excel) reports every bad row on the same line as the
//! LF file, a reply's plan comes from the `reply_plan` column (required with
//! `explained_cannot_solve_now`), and `contacted_at` of an anonymous direct or proxy row
//! records the start of handling at that instant.

use engine_service::import::ImportOptions;
use serde_json::Value;
use tests::app::Store;

use crate::import::{EXPECTED_BAD, HEADER, Stores, bad_rows, file, request_id, row_direct};

async fn crlf_lines_are_reported_as_in_the_file(store: Store) {
    let stores = Stores::open(store).await;
    let prefix = format!("CRLF-{}", uuid::Uuid::now_v7().simple());
    let (text, _good) = file(&prefix);
    let path = stores.dir.path().join("excel.csv");
    // Excel writes a byte-order mark and CRLF.
    std::fs::write(&path, format!("\u{feff}{}", text.replace('\n', "\r\n"))).expect("write");
    let report = stores
        .importer()
        .run(&ImportOptions::new(&path), None)
        .await
        .expect("the import runs");
    assert_eq!(report.imported, 3, "{report:#?}");
    assert_eq!(bad_rows(&report), EXPECTED_BAD.to_vec());
    stores.close().await;
}

#[tokio::test]
async fn crlf_lines_are_reported_as_in_the_file_on_sqlite() {
    crlf_lines_are_reported_as_in_the_file(Store::Sqlite).await;
}

#[tokio::test]
async fn crlf_lines_are_reported_as_in_the_file_on_jetstream_and_postgres() {
    crlf_lines_are_reported_as_in_the_file(Store::Nats).await;
}

/// The events of `ticket` as JSON `(type, occurred_at, data)`.
async fn events(stores: &Stores, ticket: &str) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for logged in stores.log.load(request_id(ticket)).await.expect("load") {
        for event in &logged.commit.events {
            let json = serde_json::to_value(event).expect("json");
            out.push((
                json["type"].as_str().unwrap_or_default().to_string(),
                event.occurred_at.to_rfc3339(),
                json["data"].clone(),
            ));
        }
    }
    out
}

async fn plans_and_anonymous_contact_times_are_recorded(store: Store) {
    let stores = Stores::open(store).await;
    let p = format!("PLAN-{}", uuid::Uuid::now_v7().simple());
    let contacted = |row: String| {
        row.replace(
            ",,,,,,2026-02-03 08:30",
            ",,,,,2026-02-03 08:20,2026-02-03 08:30",
        )
    };
    let cannot = |row: String| row.replace("08:30,resolved,", "08:30,explained_cannot_solve_now,");
    let lines = [
        format!("{HEADER},reply_plan"),
        // 2: anonymous, direct, contacted at 08:20, cannot solve now with a plan
        format!(
            "{},下周一前补齐材料清单 / list by Monday",
            cannot(contacted(row_direct(&format!("{p}-direct"))))
        ),
        // 3: anonymous, proxy for civil affairs, contacted at 08:20
        format!(
            "{},",
            contacted(row_direct(&format!("{p}-proxy")))
                .replace("08:12,,,", "08:12,proxy,civil-affairs,")
        ),
        // 4: cannot solve now without a plan
        format!("{},", cannot(row_direct(&format!("{p}-no-plan")))),
        // 5: a plan without a reply
        format!(
            "{},a plan",
            row_direct(&format!("{p}-plan-only")).replace(
                "2026-02-03 08:30,resolved,,2026-02-03 09:00,basically_satisfied,resolved,2026-02-03 09:10",
                ",,,,,,"
            )
        ),
    ];
    let path = stores.dir.path().join("plans.csv");
    std::fs::write(&path, lines.join("\r\n") + "\r\n").expect("write");
    let report = stores
        .importer()
        .run(&ImportOptions::new(&path), None)
        .await
        .expect("the import runs");
    assert_eq!(report.imported, 2, "{report:#?}");
    assert_eq!(
        bad_rows(&report),
        vec![
            (4, Some("reply_plan"), "required"),
            (5, Some("reply_plan"), "lifecycle_order"),
        ]
    );
    for (ticket, started) in [
        ("direct", "direct_handling_started"),
        ("proxy", "proxy_handling_started"),
    ] {
        let history = events(&stores, &format!("{p}-{ticket}")).await;
        let kinds: Vec<&str> = history.iter().map(|(k, _, _)| k.as_str()).collect();
        assert!(kinds.contains(&started), "{ticket}: {kinds:?}");
        let handling = history
            .iter()
            .find(|(k, _, _)| k == "handling_started")
            .unwrap_or_else(|| panic!("{ticket}: handling started at contacted_at: {kinds:?}"));
        assert_eq!(handling.1, "2026-02-03T00:20:00+00:00", "{ticket}");
    }
    let history = events(&stores, &format!("{p}-direct")).await;
    let (_, _, reply) = history
        .iter()
        .find(|(k, _, _)| k == "result_replied")
        .expect("replied");
    assert_eq!(reply["outcome"], "explained_cannot_solve_now", "{reply}");
    assert_eq!(
        reply["plan"], "下周一前补齐材料清单 / list by Monday",
        "{reply}"
    );
    stores.close().await;
}

#[tokio::test]
async fn plans_and_anonymous_contact_times_are_recorded_on_sqlite() {
    plans_and_anonymous_contact_times_are_recorded(Store::Sqlite).await;
}

#[tokio::test]
async fn plans_and_anonymous_contact_times_are_recorded_on_jetstream_and_postgres() {
    plans_and_anonymous_contact_times_are_recorded(Store::Nats).await;
}
