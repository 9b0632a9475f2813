//! Role enforcement over HTTP against the real `bianmin serve`: each role does its job and is
//! refused (403, nothing appended) for everything else; department handlers see only requests
//! referred to their department, station workers act only in their community.

use serde_json::{Value, json};
use tests::faults::{
    Api, DEPARTMENT, HANDLER, INTAKE, ITEM, SUPERVISOR, ServeOptions, ServeProcess, WORKER,
    intake_document,
};
use uuid::Uuid;

const OTHER_WORKER: &str = "worker-9;station_worker;sq-0202";
const OTHER_HANDLER: &str = "handler-9;department_handler;hrss";
const HIGHER: &str = "district-1;higher_level";
const AUDITOR: &str = "audit-1;auditor";
const DASHBOARD: &str = "bi-1;dashboard";

struct Fixture {
    api: Api,
    _engine: ServeProcess,
}

impl Fixture {
    async fn start() -> Fixture {
        let engine = ServeProcess::start(ServeOptions::default()).await;
        Fixture {
            api: Api::new(engine.url()),
            _engine: engine,
        }
    }

    async fn intake(&self, ticket: &str) -> Uuid {
        let reply = self
            .api
            .post(
                "/api/v1/requests",
                Some(INTAKE),
                &intake_document(ticket, "13500000000"),
                None,
            )
            .await
            .expect("intake answered");
        assert_eq!(reply.status, 201, "{}", reply.body);
        serde_json::from_value(reply.body["request_id"].clone()).expect("a request id")
    }

    async fn version(&self, id: Uuid) -> u64 {
        let reply = self
            .api
            .get(&format!("/api/v1/requests/{id}"), Some(SUPERVISOR))
            .await
            .expect("read answered");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["version"].as_u64().expect("a version")
    }

    async fn command(&self, actor: &str, id: Uuid, action: &str, body: Value) -> (u16, Value) {
        let reply = self
            .api
            .post(
                &format!("/api/v1/requests/{id}/{action}"),
                Some(actor),
                &body,
                Some(Uuid::now_v7()),
            )
            .await
            .expect("command answered");
        (reply.status, reply.body)
    }

    async fn ok(&self, actor: &str, id: Uuid, action: &str, body: Value) {
        let (status, body) = self.command(actor, id, action, body).await;
        assert_eq!(status, 200, "{actor} {action}: {body}");
    }

    /// `actor` is refused `action` with 403 and the request's version does not move.
    async fn refused(&self, actor: &str, id: Uuid, action: &str, body: Value) {
        let before = self.version(id).await;
        let (status, reply) = self.command(actor, id, action, body).await;
        assert_eq!(status, 403, "{actor} {action} should be forbidden: {reply}");
        assert_eq!(
            self.version(id).await,
            before,
            "{actor} {action} appended something"
        );
    }

    async fn read_status(&self, actor: &str, path: &str) -> u16 {
        self.api
            .get(path, Some(actor))
            .await
            .expect("read answered")
            .status
    }
}

/// Commands each role may never send, whatever the request's state.
fn foreign_commands() -> Vec<(&'static str, Value)> {
    vec![
        ("accept", json!({})),
        (
            "classify",
            json!({"catalogue_item": ITEM, "request_type": "help"}),
        ),
        ("refer", json!({"lead_department": DEPARTMENT})),
        ("sign_for", json!({})),
        ("review_reply", json!({"approved": true})),
        ("archive", json!({})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_does_its_job_and_nothing_else() {
    let f = Fixture::start().await;
    let id = f.intake(&format!("ROLE-{}", Uuid::now_v7().simple())).await;

    // Intake system: intake (done above); no workflow command, no other role's work.
    for (action, body) in foreign_commands() {
        f.refused(INTAKE, id, action, body).await;
    }
    // Auditor and dashboard: read-only; no command at all.
    for actor in [AUDITOR, DASHBOARD, HIGHER] {
        for (action, body) in foreign_commands() {
            f.refused(actor, id, action, body).await;
        }
    }
    // Nobody but the intake system takes in requests.
    for actor in [WORKER, HANDLER, SUPERVISOR, AUDITOR, DASHBOARD, HIGHER] {
        let reply = f
            .api
            .post(
                "/api/v1/requests",
                Some(actor),
                &intake_document("ROLE-X", "1"),
                None,
            )
            .await
            .expect("answered");
        assert_eq!(reply.status, 403, "{actor} intake: {}", reply.body);
    }

    // Station worker: its own community's work (see the community test below).
    f.ok(WORKER, id, "accept", json!({})).await;
    f.ok(
        WORKER,
        id,
        "classify",
        json!({"catalogue_item": ITEM, "request_type": "help"}),
    )
    .await;
    f.refused(WORKER, id, "sign_for", json!({})).await;
    f.ok(WORKER, id, "refer", json!({"lead_department": DEPARTMENT}))
        .await;

    // Department handler: only what is referred to its department.
    f.refused(OTHER_HANDLER, id, "sign_for", json!({})).await;
    assert_eq!(
        f.read_status(OTHER_HANDLER, &format!("/api/v1/requests/{id}"))
            .await,
        403
    );
    assert_eq!(
        f.read_status(OTHER_HANDLER, &format!("/api/v1/requests/{id}/history"))
            .await,
        403
    );
    assert_eq!(
        f.read_status(HANDLER, &format!("/api/v1/requests/{id}"))
            .await,
        200
    );
    f.refused(HANDLER, id, "accept", json!({})).await;
    f.ok(HANDLER, id, "sign_for", json!({})).await;
    f.ok(HANDLER, id, "contact_resident", json!({"method": "phone"}))
        .await;
    f.ok(HANDLER, id, "start_handling", json!({})).await;
    f.ok(
        HANDLER,
        id,
        "reply",
        json!({"outcome": "resolved", "content": "已修复"}),
    )
    .await;
    f.refused(HANDLER, id, "review_reply", json!({"approved": true}))
        .await;
    f.refused(WORKER, id, "review_reply", json!({"approved": true}))
        .await;

    // Supervisor: reviews.
    f.ok(SUPERVISOR, id, "review_reply", json!({"approved": true}))
        .await;

    // Auditor: full history; dashboard: aggregates only.
    let history = f
        .api
        .get(&format!("/api/v1/requests/{id}/history"), Some(AUDITOR))
        .await
        .expect("answered");
    assert_eq!(history.status, 200);
    assert_eq!(
        history.body.as_array().map(Vec::len),
        Some(f.version(id).await as usize)
    );
    assert_eq!(
        f.read_status(DASHBOARD, &format!("/api/v1/requests/{id}"))
            .await,
        403
    );
    assert_eq!(
        f.read_status(DASHBOARD, &format!("/api/v1/requests/{id}/history"))
            .await,
        403
    );
    assert_eq!(f.read_status(DASHBOARD, "/metrics").await, 200);

    // No credentials at all: 401 on every operation.
    let anonymous = f
        .api
        .post(
            &format!("/api/v1/requests/{id}/archive"),
            None,
            &json!({}),
            None,
        )
        .await
        .expect("answered");
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        f.read_status("", &format!("/api/v1/requests/{id}")).await,
        401
    );
}

/// Station workers of another community may neither act on nor read a request
/// (`Request::visible_to`: a station worker sees its own community's requests only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn station_workers_act_only_in_their_community() {
    let f = Fixture::start().await;
    let id = f
        .intake(&format!("ROLE-C-{}", Uuid::now_v7().simple()))
        .await;
    for (action, body) in foreign_commands() {
        f.refused(OTHER_WORKER, id, action, body).await;
    }
    assert_eq!(
        f.read_status(OTHER_WORKER, &format!("/api/v1/requests/{id}"))
            .await,
        403
    );
    f.ok(WORKER, id, "accept", json!({})).await;
}
