//! Hostile and bad input against the real `bianmin serve`: oversized, deeply nested and
//! invalid-UTF-8 bodies, slowloris connections sending headers byte by byte, and references
//! to things that do not exist. Each is a clear 4xx with nothing appended, and the server
//! keeps serving a well-behaved client throughout.

use std::time::{Duration, Instant};

use serde_json::json;
use tests::faults::{Api, INTAKE, SUPERVISOR, ServeOptions, ServeProcess, WORKER, intake_document};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

async fn raw_post(api_url: &str, path: &str, body: Vec<u8>) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("{api_url}{path}"))
        .header("x-bianmin-actor", INTAKE)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    match response {
        Ok(r) => r.status().as_u16(),
        // The server may close the connection on an oversized body before reading it all.
        Err(_) => 413,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_4xx_and_nothing_is_appended() {
    let engine = ServeProcess::start(ServeOptions::default()).await;
    let api = Api::new(engine.url());
    let url = engine.url();

    let oversized = {
        let mut doc = intake_document("BIG", "1");
        doc["text"] = json!("x".repeat(2 * 1024 * 1024));
        serde_json::to_vec(&doc).expect("json")
    };
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000)).into_bytes();
    let mut invalid_utf8 = serde_json::to_vec(&intake_document("UTF", "1")).expect("json");
    let at = invalid_utf8.len() - 10;
    invalid_utf8.splice(at..at, [0xff, 0xfe, 0xc3]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized", oversized),
        ("deeply nested array", deep),
        ("deeply nested object", deep_object),
        ("invalid UTF-8", invalid_utf8),
        ("not JSON", b"<xml/>".to_vec()),
        ("empty", Vec::new()),
    ];
    for (name, body) in cases {
        let status = raw_post(&url, "/api/v1/requests", body).await;
        assert!((400..500).contains(&status), "{name}: {status}");
    }

    // Bad references: nothing appended, clear codes.
    let mut unknown_grid = intake_document("GRID", "1");
    unknown_grid["location"]["grid"] = json!("wg-nowhere");
    let reply = api
        .post("/api/v1/requests", Some(INTAKE), &unknown_grid, None)
        .await
        .expect("answered");
    assert!(
        (400..500).contains(&reply.status),
        "unknown grid: {}",
        reply.body
    );
    let missing = Uuid::now_v7();
    let reply = api
        .post(
            &format!("/api/v1/requests/{missing}/accept"),
            Some(SUPERVISOR),
            &json!({}),
            None,
        )
        .await
        .expect("answered");
    assert_eq!(reply.status, 404, "unknown request: {}", reply.body);
    assert_eq!(
        api.get(&format!("/api/v1/requests/{missing}"), Some(SUPERVISOR))
            .await
            .expect("answered")
            .status,
        404
    );

    let reply = api
        .post(
            "/api/v1/requests",
            Some(INTAKE),
            &intake_document("REF", "1"),
            None,
        )
        .await
        .expect("answered");
    assert_eq!(reply.status, 201);
    let id: Uuid = serde_json::from_value(reply.body["request_id"].clone()).expect("id");
    api.post(
        &format!("/api/v1/requests/{id}/accept"),
        Some(WORKER),
        &json!({}),
        None,
    )
    .await
    .expect("accept");
    let bad_refs = [
        (
            "classify",
            json!({"catalogue_item": "no-such-item", "request_type": "help"}),
        ),
        ("refer", json!({"lead_department": "no-such-department"})),
        ("teleport", json!({})),
    ];
    for (action, body) in bad_refs {
        let reply = api
            .post(
                &format!("/api/v1/requests/{id}/{action}"),
                Some(WORKER),
                &body,
                None,
            )
            .await
            .expect("answered");
        assert!(
            (400..500).contains(&reply.status),
            "{action}: {} {}",
            reply.status,
            reply.body
        );
        assert!(
            reply.body["code"].is_string(),
            "{action}: structured error {}",
            reply.body
        );
    }
    let state = api
        .get(&format!("/api/v1/requests/{id}"), Some(SUPERVISOR))
        .await
        .expect("read");
    assert_eq!(
        state.body["version"],
        json!(2),
        "only intake and accept were recorded"
    );
    let log = engine_log::EventLog::open_sqlite(&engine.data_dir().join("events.db"))
        .await
        .expect("log");
    assert_eq!(tests::app::request_commits(&log).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_starve_other_clients() {
    let engine = ServeProcess::start(ServeOptions::default()).await;
    let api = Api::new(engine.url());
    let port: u16 = engine
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");

    // 200 connections, each sending a request's headers one byte at a time, never finishing.
    let stop = stop_flag();
    let mut slow = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let stop = stop.clone();
        slow.spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                return;
            };
            let head = b"POST /api/v1/requests HTTP/1.1\r\nHost: x\r\nX-Bianmin-Actor: slow;intake_system\r\nContent-Length: 100000\r\nX-Pad: ";
            for byte in head.iter().chain(std::iter::repeat(&b'a')) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) || stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    // Meanwhile a normal client is served promptly, again and again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..20 {
        let started = Instant::now();
        let reply = api
            .post(
                "/api/v1/requests",
                Some(INTAKE),
                &intake_document(&format!("OK-{i}-{}", Uuid::now_v7().simple()), "1"),
                None,
            )
            .await
            .expect("a normal client is answered");
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "intake {i} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            api.get("/healthz", None).await.expect("healthz").status,
            200
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while slow.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        slow.abort_all();
    }
}

fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false))
}
