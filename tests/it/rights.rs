//! Rights before facts over HTTP against the real `bianmin serve`: a caller without rights on
//! a request gets the same answer (status, code, message) for it as for a random id, on every
//! read route and every command; confidential requests are visible exactly to the roles
//! `docs/security.md` names; an intake system reads only what it submitted.

use serde_json::{Value, json};
use tests::faults::{
    Api, DEPARTMENT, HANDLER, INTAKE, ITEM, SUPERVISOR, ServeOptions, ServeProcess, WORKER,
    intake_document,
};
use uuid::Uuid;

const OTHER_HANDLER: &str = "handler-9;department_handler;hrss";
const OTHER_WORKER: &str = "worker-9;station_worker;sq-0202";
const OTHER_INTAKE: &str = "window-gateway;intake_system";
const HIGHER: &str = "district-1;higher_level";
const AUDITOR: &str = "audit-1;auditor";
const DASHBOARD: &str = "bi-1;dashboard";

/// Every command action, each with a body its decoder accepts.
fn every_command() -> Vec<(&'static str, Value)> {
    vec![
        ("accept", json!({})),
        (
            "decline",
            json!({"disposition": "out_of_scope", "reason": "x"}),
        ),
        (
            "classify",
            json!({"catalogue_item": ITEM, "request_type": "help"}),
        ),
        ("handle_directly", json!({})),
        ("start_proxy", json!({"department": DEPARTMENT})),
        ("refer", json!({"lead_department": DEPARTMENT})),
        ("sign_for", json!({})),
        ("return_referral", json!({"reason": "not ours"})),
        ("contact_resident", json!({"method": "phone"})),
        ("start_handling", json!({})),
        ("note_progress", json!({"note": "x"})),
        ("reply", json!({"outcome": "resolved", "content": "fixed"})),
        ("report_assistance", json!({"content": "done"})),
        (
            "request_extension",
            json!({"working_days": 2, "reason": "parts"}),
        ),
        ("review_reply", json!({"approved": true})),
        ("archive", json!({})),
        (
            "rate",
            json!({"satisfaction": "satisfied", "resolution": "resolved"}),
        ),
    ]
}

/// An answer with the id the caller sent replaced by `<id>`: echoing the caller's own input
/// tells it nothing, every other byte must be the same for a real and a random request.
fn echoed((status, body): (u16, Value), id: Uuid) -> (u16, String) {
    (status, body.to_string().replace(&id.to_string(), "<id>"))
}

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

    /// A confidential request submitted by `INTAKE`, referred to `DEPARTMENT` and signed for.
    async fn confidential_signed_for(&self) -> Uuid {
        let mut document = intake_document(&format!("CONF-{}", Uuid::now_v7()), "13600001111");
        document["confidential"] = json!(true);
        let reply = self
            .api
            .post("/api/v1/requests", Some(INTAKE), &document, None)
            .await
            .expect("intake answered");
        assert_eq!(reply.status, 201, "{}", reply.body);
        let id: Uuid = serde_json::from_value(reply.body["request_id"].clone()).expect("an id");
        for (actor, action, body) in [
            (WORKER, "accept", json!({})),
            (
                WORKER,
                "classify",
                json!({"catalogue_item": ITEM, "request_type": "help"}),
            ),
            (WORKER, "refer", json!({"lead_department": DEPARTMENT})),
            (HANDLER, "sign_for", json!({})),
        ] {
            let (status, body) = self.command(actor, id, action, &body).await;
            assert_eq!(status, 200, "{actor} {action}: {body}");
        }
        let state = self
            .read(SUPERVISOR, &format!("/api/v1/requests/{id}"))
            .await;
        assert_eq!(state.1["stage"], "signed_for", "{}", state.1);
        id
    }

    async fn command(&self, actor: &str, id: Uuid, action: &str, body: &Value) -> (u16, Value) {
        let reply = self
            .api
            .post(
                &format!("/api/v1/requests/{id}/{action}"),
                Some(actor),
                body,
                Some(Uuid::now_v7()),
            )
            .await
            .expect("command answered");
        (reply.status, reply.body)
    }

    async fn read(&self, actor: &str, path: &str) -> (u16, Value) {
        let reply = self
            .api
            .get(path, Some(actor))
            .await
            .expect("read answered");
        (reply.status, reply.body)
    }

    async fn version(&self, id: Uuid) -> u64 {
        let (status, body) = self
            .read(SUPERVISOR, &format!("/api/v1/requests/{id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["version"].as_u64().expect("a version")
    }

    /// The GET routes of the OpenAPI document that address one request, with `{id}` (or
    /// Open311's `{request_file}`) left to fill in, and the query each needs.
    async fn single_request_read_routes(&self) -> Vec<String> {
        let (status, document) = self.read(AUDITOR, "/openapi.json").await;
        assert_eq!(status, 200);
        let paths = document["paths"].as_object().expect("paths");
        let routes: Vec<String> = paths
            .iter()
            .filter(|(path, item)| {
                item.get("get").is_some()
                    && (path.contains("/requests/{id}") || path.contains("{request_file}"))
            })
            .map(|(path, _)| {
                let path = path.replace("{request_file}", "{id}.json");
                match path.ends_with("/contact") {
                    true => format!("{path}?purpose=check"),
                    false => path,
                }
            })
            .collect();
        assert!(
            routes.len() >= 6,
            "the OpenAPI document lists the single-request reads: {routes:?}"
        );
        routes
    }

    /// Asserts `actor` gets the same non-success answer on every read route and every
    /// command for `id` as for a random id, and that nothing was appended.
    async fn blind(&self, actor: &str, id: Uuid, routes: &[String]) {
        let before = self.version(id).await;
        let random = Uuid::now_v7();
        for route in routes {
            for variant in [
                "",
                "?version=1",
                "?as_of=2030-01-01T00:00:00Z",
                "?with_state=true",
            ] {
                if !variant.is_empty() && (route.contains('?') || route.contains("open311")) {
                    continue;
                }
                let path = |request: Uuid| {
                    format!("{}{variant}", route.replace("{id}", &request.to_string()))
                };
                let real = self.read(actor, &path(id)).await;
                let unknown = self.read(actor, &path(random)).await;
                assert_ne!(real.0, 200, "{actor} read {}: {}", path(id), real.1);
                assert_eq!(
                    echoed(real, id),
                    echoed(unknown, random),
                    "{actor} learns something from {}",
                    path(id)
                );
            }
        }
        for (action, body) in every_command() {
            let real = self.command(actor, id, action, &body).await;
            let unknown = self.command(actor, random, action, &body).await;
            assert_ne!(real.0, 200, "{actor} {action}: {}", real.1);
            assert_eq!(
                echoed(real.clone(), id),
                echoed(unknown, random),
                "{actor} learns something from `{action}`"
            );
            assert!(
                !real.1.to_string().contains("signed_for"),
                "{actor} {action} names the stage: {}",
                real.1
            );
        }
        assert_eq!(self.version(id).await, before, "{actor} appended something");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uninvolved_department_is_refused_on_a_confidential_request_as_on_a_random_id() {
    let f = Fixture::start().await;
    let id = f.confidential_signed_for().await;

    // The exact case: a command the stage does not allow, from a department not involved.
    let real = f.command(OTHER_HANDLER, id, "sign_for", &json!({})).await;
    let unknown = f
        .command(OTHER_HANDLER, Uuid::now_v7(), "sign_for", &json!({}))
        .await;
    assert_eq!(real.0, 403, "{}", real.1);
    assert_eq!(real.1["code"], "not_addressed_to_you", "{}", real.1);
    assert_eq!(real, unknown);

    let routes = f.single_request_read_routes().await;
    f.blind(OTHER_HANDLER, id, &routes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_requests_are_visible_exactly_to_the_roles_the_table_names() {
    let f = Fixture::start().await;
    let id = f.confidential_signed_for().await;
    let routes = f.single_request_read_routes().await;

    // docs/security.md, "Roles": who reads this confidential request.
    for actor in [SUPERVISOR, AUDITOR, HIGHER, HANDLER, WORKER, INTAKE] {
        for path in [
            format!("/api/v1/requests/{id}"),
            format!("/api/v1/requests/{id}/history"),
        ] {
            let (status, body) = f.read(actor, &path).await;
            assert_eq!(status, 200, "{actor} reads {path}: {body}");
        }
    }
    // Everyone else learns nothing, not even that it exists.
    for actor in [OTHER_HANDLER, OTHER_WORKER, OTHER_INTAKE, DASHBOARD] {
        f.blind(actor, id, &routes).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intake_system_reads_only_what_it_submitted() {
    let f = Fixture::start().await;
    let routes = f.single_request_read_routes().await;
    let mut own = Vec::new();
    for actor in [INTAKE, OTHER_INTAKE] {
        let reply = f
            .api
            .post(
                "/api/v1/requests",
                Some(actor),
                &intake_document(&format!("OWN-{}", Uuid::now_v7()), "13600002222"),
                None,
            )
            .await
            .expect("intake answered");
        assert_eq!(reply.status, 201, "{}", reply.body);
        own.push(serde_json::from_value::<Uuid>(reply.body["request_id"].clone()).expect("id"));
    }
    for (actor, mine, theirs) in [(INTAKE, own[0], own[1]), (OTHER_INTAKE, own[1], own[0])] {
        for path in [
            format!("/api/v1/requests/{mine}"),
            format!("/api/v1/requests/{mine}/history"),
            format!("/api/v1/requests/{mine}/history?with_state=true"),
            format!("/api/v1/requests/{mine}?version=1"),
        ] {
            let (status, body) = f.read(actor, &path).await;
            assert_eq!(status, 200, "{actor} reads its own {path}: {body}");
        }
        f.blind(actor, theirs, &routes).await;
    }
}
