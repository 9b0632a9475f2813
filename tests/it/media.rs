//! Stored media on both stores: an upload (raw body or multipart) is checked by its magic
//! bytes, hashed, stored (files under the data dir / the NATS object store) and recorded as
//! `media_attached`; the download answers the bytes to those who may read the request and
//! the same 403 to an outsider as for an unknown request; oversized, mistyped and
//! mis-declared files are refused with 413 / 415 `{code, message, field}` and nothing stored
//! or recorded; erasure deletes the personal files, and their bytes are then found in no
//! file of the data dir and no message of the object store's stream.

use engine_core::Clock;
use engine_service::media::files::FileMedia;
use engine_service::media::object::ObjectMedia;
use engine_service::media::{MediaStore, erase_request};
use engine_service::privacy::{self, PrivacyLedger};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tests::app::{NATS_URL, Store, TestApp, actors, external_id, intake_document, spawn_app_with};

/// The smallest file `infer` takes for a PNG, followed by `marker` so its bytes can be
/// searched for.
fn png(marker: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
    bytes.extend_from_slice(marker.as_bytes());
    bytes
}

fn pdf(marker: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% {marker}\n%%EOF\n").into_bytes()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The largest file the tests' engines accept.
const MAX_BYTES: u64 = 4096;

async fn app(store: Store) -> TestApp {
    spawn_app_with(store, |config| config.media.max_bytes = MAX_BYTES).await
}

async fn received(app: &TestApp) -> String {
    let (status, body) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{body}");
    body["request_id"].as_str().expect("an id").to_string()
}

/// `POST /api/v1/requests/{id}/attachments?{query}` with a raw body; (status, body).
async fn upload(
    app: &TestApp,
    id: &str,
    actor: &str,
    query: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let response = app
        .client
        .post(format!(
            "{}/api/v1/requests/{id}/attachments?{query}",
            app.address
        ))
        .header("X-Bianmin-Actor", actor)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The same upload as `multipart/form-data`, the file in a part named `file`.
async fn upload_multipart(
    app: &TestApp,
    id: &str,
    actor: &str,
    query: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let boundary = "bianmin-test-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nsite photo\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\
         Content-Type: {content_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    upload(
        app,
        id,
        actor,
        query,
        &format!("multipart/form-data; boundary={boundary}"),
        body,
    )
    .await
}

async fn download(app: &TestApp, id: &str, hash: &str, actor: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/requests/{id}/attachments/{hash}"), actor)
        .await
}

fn attached(history: &[Value]) -> Vec<&Value> {
    history
        .iter()
        .filter(|e| e["type"] == "media_attached")
        .map(|e| &e["data"])
        .collect()
}

/// The engine's media store, opened as a second process would.
async fn media_store(app: &TestApp) -> MediaStore {
    match app.store {
        Store::Sqlite => MediaStore::Files(FileMedia::in_data_dir(&app.config.data_dir)),
        Store::Nats => {
            let client = async_nats::connect(NATS_URL).await.expect("nats");
            MediaStore::Object(Box::new(
                ObjectMedia::open(client, &app.names(), 1, false, std::time::Duration::ZERO)
                    .await
                    .expect("the media bucket"),
            ))
        }
    }
}

/// Every byte the store holds: each file under the data dir, or each message of the
/// object store's stream.
async fn stored_bytes(app: &TestApp) -> Vec<Vec<u8>> {
    match app.store {
        Store::Sqlite => files_under(&app.config.data_dir)
            .iter()
            .map(|f| std::fs::read(f).expect("read a file"))
            .collect(),
        Store::Nats => {
            let client = async_nats::connect(NATS_URL).await.expect("nats");
            let js = async_nats::jetstream::new(client);
            let mut stream = js
                .get_stream(app.names().media_bucket_stream())
                .await
                .expect("the media stream");
            let state = stream.info().await.expect("stream info").state.clone();
            let mut messages = Vec::new();
            for seq in state.first_sequence..=state.last_sequence {
                if let Ok(message) = stream.get_raw_message(seq).await {
                    messages.push(message.payload.to_vec());
                }
            }
            messages
        }
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn holds(haystacks: &[Vec<u8>], needle: &[u8]) -> bool {
    haystacks
        .iter()
        .any(|h| h.windows(needle.len()).any(|w| w == needle))
}

async fn upload_and_download(store: Store) {
    // Arrange
    let app = app(store).await;
    let id = received(&app).await;
    let photo = png(&format!("photo-{}", external_id()));

    // Act: the resident's photo at intake, as the station of the community.
    let (status, body) = upload(&app, &id, actors::STATION, "", "image/png", photo.clone()).await;

    // Assert: recorded by its hash, personal by default, readable back byte for byte.
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sha256"], sha256(&photo));
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["size_bytes"], photo.len());
    assert_eq!(body["purpose"], "intake");
    assert_eq!(body["personal"], true);
    let history = app.history(&id).await;
    let events = attached(&history);
    assert_eq!(events.len(), 1, "{history:?}");
    assert_eq!(events[0]["sha256"], sha256(&photo));
    assert_eq!(events[0]["personal"], true);
    let response = download(&app, &id, &sha256(&photo), actors::STATION).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), photo);

    // A progress document by multipart: not personal unless said so.
    let report = pdf("inspection report");
    let (status, body) = upload_multipart(
        &app,
        &id,
        actors::SUPERVISOR,
        "purpose=progress",
        "application/pdf",
        &report,
    )
    .await;
    assert_eq!(
        status, 422,
        "not accepted yet: progress files need an open request {body}"
    );
    assert_eq!(body["code"], "wrong_stage");
    let (status, body) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload_multipart(
        &app,
        &id,
        actors::SUPERVISOR,
        "purpose=progress",
        "application/pdf",
        &report,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["personal"], false);
    assert_eq!(body["content_type"], "application/pdf");

    // The same bytes again: the recorded attachment, nothing new.
    let before = app.history(&id).await.len();
    let (status, body) = upload(&app, &id, actors::STATION, "", "image/png", photo.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["created"], false);
    assert_eq!(app.history(&id).await.len(), before);

    // The generic command route does not take `attach_media`: the hash must name stored bytes.
    let forged = json!({"sha256": "0".repeat(64), "content_type": "image/png",
        "size_bytes": 1, "purpose": "intake"});
    let (status, body) = app
        .command(&id, "attach_media", actors::STATION, &forged)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "unknown_action");
    app.teardown().await;
}

async fn outsiders_learn_nothing(store: Store) {
    // Arrange
    let app = app(store).await;
    let id = received(&app).await;
    let photo = png("outsider");
    let (status, body) = upload(&app, &id, actors::STATION, "", "image/png", photo.clone()).await;
    assert_eq!(status, 201, "{body}");
    let unknown = uuid::Uuid::now_v7().to_string();
    let hash = sha256(&photo);

    // Act + Assert: an unrelated department, on the request and on an unknown one.
    for target in [&id, &unknown] {
        let response = download(&app, target, &hash, actors::WATER).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "not_addressed_to_you");
        let (status, body) = upload(&app, target, actors::WATER, "", "image/png", png("x")).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "not_addressed_to_you");
    }
    // Nothing of the outsider's file was stored.
    assert!(!holds(
        &stored_bytes(&app).await,
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0x"
    ));
    // A hash the request does not hold is 404 to who may read it.
    let response = download(&app, &id, &sha256(b"other"), actors::STATION).await;
    assert_eq!(response.status().as_u16(), 404);
    app.teardown().await;
}

async fn refused_files_leave_nothing(store: Store) {
    // Arrange
    let app = app(store).await;
    let id = received(&app).await;
    let before = app.history(&id).await.len();
    let marker = format!("refused-{}", external_id());
    let oversized = png(&format!("{marker}{}", "x".repeat(MAX_BYTES as usize)));
    let script = format!("#!/bin/sh\necho {marker}\n").into_bytes();

    // Act + Assert: too large (raw and multipart), not an accepted type, declared as
    // something it is not.
    let (status, body) = upload(
        &app,
        &id,
        actors::STATION,
        "",
        "image/png",
        oversized.clone(),
    )
    .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (413, &json!("payload_too_large"), &json!("file")),
        "{body}"
    );
    let (status, body) =
        upload_multipart(&app, &id, actors::STATION, "", "image/png", &oversized).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    let (status, body) = upload(&app, &id, actors::STATION, "", "image/png", script).await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (415, &json!("unsupported_media_type"), &json!("file")),
        "{body}"
    );
    let (status, body) = upload(&app, &id, actors::STATION, "", "image/jpeg", png(&marker)).await;
    assert_eq!(
        (status, &body["field"]),
        (415, &json!("content_type")),
        "{body}"
    );
    let (status, body) = upload(
        &app,
        &id,
        actors::STATION,
        "purpose=someday",
        "image/png",
        png(&marker),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "purpose");

    // Nothing recorded, nothing stored.
    assert_eq!(app.history(&id).await.len(), before);
    assert!(!holds(&stored_bytes(&app).await, marker.as_bytes()));
    app.teardown().await;
}

async fn erasure_deletes_personal_files(store: Store) {
    // Arrange: a personal intake photo and a unit's progress photo.
    let app = app(store).await;
    let id = received(&app).await;
    let personal = png(&format!("face-{}", external_id()));
    let handling = png(&format!("site-{}", external_id()));
    let (status, body) = upload(
        &app,
        &id,
        actors::STATION,
        "",
        "image/png",
        personal.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .command(&id, "accept", actors::STATION, &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = upload(
        &app,
        &id,
        actors::STATION,
        "purpose=progress",
        "image/png",
        handling.clone(),
    )
    .await;
    assert_eq!((status, &body["personal"]), (201, &json!(false)), "{body}");
    assert!(
        holds(&stored_bytes(&app).await, &personal),
        "stored before erasure"
    );

    // Act: erase the request's personal data through the stores the engine uses.
    let media = media_store(&app).await;
    let ledger = PrivacyLedger::open(&app.config.stores_location())
        .await
        .expect("ledger");
    let outcome = privacy::erase_with_media(
        app.command_service.log(),
        app.command_service.contacts(),
        &ledger,
        &media,
        id.parse().expect("uuid"),
        "dpo",
        "resident_request",
        app.clock.now(),
    )
    .await
    .expect("erased");

    // Assert: the personal bytes are nowhere; the unit's file stays; the download says so.
    assert!(outcome.key_destroyed);
    assert_eq!(outcome.media_deleted, 1);
    let stored = stored_bytes(&app).await;
    assert!(
        !holds(&stored, &personal),
        "personal bytes left in the store"
    );
    assert!(holds(&stored, &handling), "the unit's file is kept");
    let response = download(&app, &id, &sha256(&personal), actors::STATION).await;
    assert_eq!(response.status().as_u16(), 410);
    let response = download(&app, &id, &sha256(&handling), actors::STATION).await;
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), handling);
    // Erasing again deletes nothing more.
    let again = erase_request(app.command_service.log(), &media, id.parse().expect("uuid"))
        .await
        .expect("idempotent");
    assert_eq!(again, 0);
    app.teardown().await;
}

tests::on_both_stores!(upload_and_download);

tests::on_both_stores!(outsiders_learn_nothing);

tests::on_both_stores!(refused_files_leave_nothing);

tests::on_both_stores!(erasure_deletes_personal_files);
