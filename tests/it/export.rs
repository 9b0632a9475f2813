//! `bianmin export`: the request summary and the rates as CSV, read through the projections'
//! query layer, on SQLite and on PostgreSQL; filters, the byte-order mark, the empty export's
//! header, and the binary end to end (import, rebuild, export).

use std::path::Path;
use std::process::Command;

use engine_core::Clock;
use engine_service::export::{export_rates, export_requests, summary_columns};
use engine_service::import::ImportOptions;
use projections::query::{Dim, Filter, Period, StatsQuery};
use tests::app::Store;
use tests::faults::bianmin_binary;

use crate::import::Stores;

const BOM: &str = "\u{feff}";

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/import")
        .join(name)
}

/// Parses CSV text into its header and rows.
fn parse(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = reader
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a record").iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

async fn exports(store: Store) {
    let stores = Stores::open(store).await;
    let report = stores
        .importer()
        .run(&ImportOptions::new(example("example.csv")), None)
        .await
        .expect("the import runs");
    assert_eq!(report.imported, 5, "{report:#?}");
    let projections = stores.project().await;
    let now = stores.clock.now();

    // Every request, with a byte-order mark.
    let mut out = Vec::new();
    let rows = export_requests(&projections, Filter::default(), now, &mut out, true)
        .await
        .expect("export");
    assert_eq!(rows, 5);
    let text = String::from_utf8(out).expect("UTF-8");
    let body = text.strip_prefix(BOM).expect("starts with a BOM");
    let (header, records) = parse(body);
    assert_eq!(header, summary_columns());
    assert_eq!(records.len(), 5);
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    let ticket = tests::test_intake_id(schemas::Channel::Hotline, "12345-2025-000101");
    let row = records
        .iter()
        .find(|r| r[column("request_id")] == ticket.to_string())
        .expect("the first example row");
    assert_eq!(row[column("stage")], "archived");
    assert_eq!(row[column("lead_department")], "urban-management");
    assert_eq!(row[column("satisfaction")], "satisfied");
    assert_eq!(row[column("received_at")], "2025-03-03T01:12:00Z");

    // A filter, no BOM.
    let mut out = Vec::new();
    let filter = Filter {
        dims: vec![(Dim::Community, "sq-0101".into())],
        ..Filter::default()
    };
    let rows = export_requests(&projections, filter, now, &mut out, false)
        .await
        .expect("export");
    let text = String::from_utf8(out).expect("UTF-8");
    assert!(!text.starts_with(BOM));
    assert_eq!(rows, 3);
    assert_eq!(parse(&text).1.len(), 3);

    // Nothing matches: the header alone.
    let mut out = Vec::new();
    let filter = Filter {
        dims: vec![(Dim::Community, "no-such-community".into())],
        ..Filter::default()
    };
    let rows = export_requests(&projections, filter, now, &mut out, false)
        .await
        .expect("export");
    assert_eq!(rows, 0);
    let (header, records) = parse(&String::from_utf8(out).expect("UTF-8"));
    assert_eq!(header, summary_columns());
    assert!(records.is_empty());

    // Rates per month and community, as GET /api/v1/stats computes them.
    let query = StatsQuery {
        period: Period::Month,
        group_by: vec![Dim::Community],
        filter: Filter::default(),
        now,
    };
    let expected = projections.stats(&query).await.expect("stats");
    let mut out = Vec::new();
    let rows = export_rates(&projections, &query, &mut out, false)
        .await
        .expect("export");
    assert_eq!(rows as usize, expected.len());
    let (header, records) = parse(&String::from_utf8(out).expect("UTF-8"));
    assert_eq!(
        &header[..4],
        ["period", "community", "received", "accepted"]
    );
    assert!(header.iter().any(|h| h == "satisfaction_rate"));
    assert_eq!(records.len(), 3, "three communities");
    let col = |name: &str| header.iter().position(|h| h == name).expect("column");
    for stat in &expected {
        let community = stat.dims["community"].clone().expect("grouped");
        let record = records
            .iter()
            .find(|r| r[1] == community)
            .expect("a row per community");
        assert_eq!(record[0], stat.period);
        assert_eq!(record[col("received")], stat.counts.received.to_string());
        let rate = &record[col("response_rate")];
        let rate = (!rate.is_empty()).then(|| rate.parse::<f64>().expect("a number"));
        assert_eq!(rate, stat.rates.response_rate);
    }
    let sq0101 = records.iter().find(|r| r[1] == "sq-0101").expect("sq-0101");
    assert_eq!(sq0101[col("received")], "3");
    stores.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_on_sqlite() {
    exports(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_on_postgres() {
    exports(Store::Nats).await;
}

fn bianmin(data: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(bianmin_binary())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("bianmin runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The binary: import the example, rebuild the read models, export both tables to files.
#[test]
fn the_cli_exports_csv_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let example = example("example.jsonl");
    let (code, out, err) = bianmin(&data, &["import", example.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = bianmin(&data, &["projections", "rebuild"]);
    assert_eq!(code, 0, "{out}{err}");
    let rates = dir.path().join("rates.csv");
    let (code, out, err) = bianmin(
        &data,
        &[
            "export",
            "rates",
            "--group-by",
            "community,channel",
            "--bom",
            "-o",
            rates.to_str().expect("path"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let text = std::fs::read_to_string(&rates).expect("rates file");
    let body = text.strip_prefix(BOM).expect("BOM");
    let (header, records) = parse(body);
    assert_eq!(&header[..3], ["period", "community", "channel"]);
    assert_eq!(records.len(), 4, "{body}");
    let (code, out, err) = bianmin(
        &data,
        &["export", "requests", "--filter", "community=sq-0103"],
    );
    assert_eq!(code, 0, "{err}");
    let (header, records) = parse(&out);
    assert_eq!(header, summary_columns());
    assert_eq!(records.len(), 1);
    let (code, _, err) = bianmin(&data, &["export", "requests", "--filter", "colour=red"]);
    assert_ne!(code, 0);
    assert!(err.contains("--filter"), "{err}");
}
