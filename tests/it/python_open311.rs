//! A stock Open311 client: `deploy/examples/python/open311_client.py` (Python standard
//! library only) reads the service list and the service definition of `um-streetlight`,
//! fills its typed attributes, posts a point and a `media_url`, and reads the request back.
//! The test checks what the engine recorded: the typed answers under the service code in
//! `request_received`, and the fetched photo as the intake attachment. Skipped, with a
//! printed reason, only when python3 is absent.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::app::Store;

use crate::media_url::{file_server, photo, spawn};
use crate::open311::{API_KEY, JURISDICTION};

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/python/open311_client.py")
}

#[tokio::test]
async fn a_stock_open311_client_creates_a_request_with_typed_attributes_and_a_media_url() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: python3 is not installed, the Python example cannot run");
        return;
    }
    // Arrange
    let files = file_server().await;
    let app = spawn(Store::Sqlite).await;
    let media_url = format!("{files}/photo.png");

    // Act
    let run = tokio::process::Command::new("python3")
        .arg(script())
        .args(["--base", &format!("{}/open311/v2", app.address)])
        .args(["--api-key", API_KEY, "--jurisdiction", JURISDICTION])
        .args(["--service-code", "um-streetlight"])
        .args(["--lat", "34.755", "--long", "117.53"])
        .args([
            "--description",
            "北门路灯闪烁 The lamp at the north gate flickers.",
        ])
        .args([
            "--set",
            "pole_number=LD-0417",
            "--set",
            "lamp_state=flickering",
        ])
        .args(["--media-url", &media_url])
        .output()
        .await
        .expect("python3 runs");

    // Assert: the script's own view.
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut lines = stdout.lines();
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("created "))
        .unwrap_or_else(|| panic!("no id in {stdout}"))
        .to_string();
    let published: Value = serde_json::from_str(lines.next().expect("the request")).unwrap();
    assert_eq!(published["service_request_id"], id.as_str());
    assert_eq!(published["service_code"], "um-streetlight");
    assert_eq!(published["media_url"], media_url.as_str());
    // What the engine recorded: the typed answers and the fetched photo.
    let history = app.history(&id).await;
    let received = &history[0]["data"];
    assert_eq!(received["service_code"], "um-streetlight", "{received}");
    assert_eq!(
        received["answers"],
        json!({"pole_number": "LD-0417", "lamp_state": "flickering"})
    );
    let attached: Vec<&Value> = history
        .iter()
        .filter(|e| e["type"] == "media_attached")
        .map(|e| &e["data"])
        .collect();
    assert_eq!(attached.len(), 1, "{history:?}");
    assert_eq!(attached[0]["sha256"], hex::encode(Sha256::digest(photo())));
    assert_eq!(attached[0]["purpose"], "intake");
    app.teardown().await;
}

#[tokio::test]
async fn the_stock_client_stops_on_an_attribute_the_definition_does_not_list() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: python3 is not installed, the Python example cannot run");
        return;
    }
    let app = spawn(Store::Sqlite).await;
    let run = tokio::process::Command::new("python3")
        .arg(script())
        .args(["--base", &format!("{}/open311/v2", app.address)])
        .args(["--api-key", API_KEY, "--jurisdiction", JURISDICTION])
        .args([
            "--service-code",
            "um-streetlight",
            "--lat",
            "34.755",
            "--long",
            "117.53",
        ])
        .args(["--set", "colour=red"])
        .output()
        .await
        .expect("python3 runs");
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    assert_eq!(app.log_length().await, 0, "nothing was posted");
    app.teardown().await;
}
