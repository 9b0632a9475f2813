//! Open311 `media_url` on both stores, with `media.fetch_media_urls` on: the engine fetches
//! the file from a real HTTP server on loopback, checks and stores it like an upload and
//! records it as the request's intake attachment; a file over the limit (413), of a type not
//! accepted (415), a missing one and one that takes longer than `media.fetch_timeout_ms`
//! (400) refuse the whole create, and nothing is recorded.

use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use engine_service::auth::{TokenConfig, hash_token};
use schemas::Role;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tests::app::{Store, TestApp, actors, external_id, spawn_app_with};

use crate::open311::{API_KEY, JURISDICTION, SERVICE, post_form};

const MAX_BYTES: u64 = 4096;

pub(crate) fn photo() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.extend_from_slice(b"pothole on jd-01");
    bytes
}

/// A file server on loopback: `/photo.png`, `/big.png` (over the limit), `/notes.txt`
/// (a text declared as a JPEG), `/slow.png` (answers after 5 s); the base URL.
pub(crate) async fn file_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let png = |bytes: Vec<u8>| ([(header::CONTENT_TYPE, "image/png")], bytes);
    let router = Router::new()
        .route("/photo.png", get(move || async move { png(photo()) }))
        .route(
            "/big.png",
            get(move || async move {
                let mut bytes = photo();
                bytes.resize(MAX_BYTES as usize * 4, b'x');
                png(bytes)
            }),
        )
        .route(
            "/notes.txt",
            get(|| async { ([(header::CONTENT_TYPE, "image/jpeg")], "just words") }),
        )
        .route(
            "/slow.png",
            get(move || async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                png(photo())
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

pub(crate) async fn spawn(store: Store) -> TestApp {
    spawn_app_with(store, |config| {
        config.open311.jurisdiction_id = JURISDICTION.into();
        config.media.max_bytes = MAX_BYTES;
        config.media.fetch_media_urls = true;
        config.media.fetch_timeout_ms = 500;
        config.auth.tokens = vec![TokenConfig {
            id: "fixmystreet".into(),
            role: Role::IntakeSystem,
            unit: None,
            token_sha256: hash_token(API_KEY),
        }];
    })
    .await
}

fn form(media_url: &str) -> String {
    serde_urlencoded::to_string([
        ("api_key", API_KEY),
        ("jurisdiction_id", JURISDICTION),
        ("service_code", SERVICE),
        ("lat", "34.755"),
        ("long", "117.53"),
        ("attribute[grid]", "wg-010102"),
        (
            "description",
            &format!("Vendors block the pavement ({})", external_id()),
        ),
        ("media_url", media_url),
    ])
    .expect("form")
}

async fn fetches_and_refuses(store: Store) {
    // Arrange
    let files = file_server().await;
    let app = spawn(store).await;

    // Act: a create whose media_url names a photo.
    let (status, body) = post_form(&app, form(&format!("{files}/photo.png"))).await;

    // Assert: the request holds the photo as its intake attachment, personal.
    assert_eq!(status, 201, "{body}");
    let id = body[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    let history = app.history(&id).await;
    let attached: Vec<&Value> = history
        .iter()
        .filter(|e| e["type"] == "media_attached")
        .map(|e| &e["data"])
        .collect();
    assert_eq!(attached.len(), 1, "{history:?}");
    let hash = hex::encode(Sha256::digest(photo()));
    assert_eq!(attached[0]["sha256"], hash);
    assert_eq!(attached[0]["purpose"], "intake");
    assert_eq!(attached[0]["personal"], true);
    let response = app
        .get(
            &format!("/api/v1/requests/{id}/attachments/{hash}"),
            actors::SUPERVISOR,
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), photo());

    // Refused files: the whole create is refused and nothing is recorded.
    let before = app.log_length().await;
    for (path, expected) in [
        ("/big.png", 413),
        ("/notes.txt", 415),
        ("/missing.png", 400),
        ("/slow.png", 400),
    ] {
        let (status, body) = post_form(&app, form(&format!("{files}{path}"))).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body[0]["description"].as_str().is_some(), "{body}");
    }
    assert_eq!(app.log_length().await, before);
    app.teardown().await;
}

tests::on_both_stores!(fetches_and_refuses);
