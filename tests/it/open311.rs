//! Open311 GeoReport v2: a FixMyStreet-style client lists the services, reads a service
//! definition, submits a request form-encoded with an `api_key`, follows it while staff move
//! it through the workflow, and lists requests (read models on PostgreSQL and SQLite). Every
//! answer is checked against the spec's example documents (`tests/fixtures/open311/`): same
//! keys, same value types. Errors come as the spec's array and record nothing.

use std::time::{Duration, Instant};

use engine_service::auth::{TokenConfig, hash_token};
use engine_service::contacts::StoredContact;
use schemas::{ContactRef, Role};
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};
use tests::pg::TestDb;

pub(crate) const API_KEY: &str = "fms-secret-key";
const AUDITOR_KEY: &str = "auditor-secret-key";
pub(crate) const JURISDICTION: &str = "yicheng.example";
pub(crate) const SERVICE: &str = "um-street-vending";

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/open311/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("fixture is JSON")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts `ours` has the shape of `example`: the same keys in every object, the same value
/// types (a `null` on either side matches any type); arrays are compared element-wise against
/// the example's first element.
pub(crate) fn assert_same_shape(ours: &Value, example: &Value, at: &str) {
    match (ours, example) {
        (_, Value::Null) | (Value::Null, _) => {}
        (Value::Object(a), Value::Object(b)) => {
            let keys_a: Vec<&String> = a.keys().collect();
            let keys_b: Vec<&String> = b.keys().collect();
            assert_eq!(keys_a, keys_b, "keys at {at}");
            for (key, value) in b {
                assert_same_shape(&a[key], value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let Some(first) = b.first() {
                for (i, item) in a.iter().enumerate() {
                    assert_same_shape(item, first, &format!("{at}[{i}]"));
                }
            }
        }
        (a, b) => assert_eq!(kind(a), kind(b), "type at {at}: ours {a}, example {b}"),
    }
}

pub(crate) async fn spawn(
    store: Store,
    database_url: Option<String>,
    projections: bool,
) -> TestApp {
    spawn_app_with(store, move |config| {
        config.open311.jurisdiction_id = JURISDICTION.into();
        config.projections.enabled = projections;
        config.database_url = database_url;
        config.auth.tokens = vec![
            TokenConfig {
                id: "fixmystreet".into(),
                role: Role::IntakeSystem,
                unit: None,
                token_sha256: hash_token(API_KEY),
            },
            TokenConfig {
                id: "audit-bot".into(),
                role: Role::Auditor,
                unit: None,
                token_sha256: hash_token(AUDITOR_KEY),
            },
        ];
    })
    .await
}

pub(crate) async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

pub(crate) async fn post_form(app: &TestApp, body: String) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/open311/v2/requests.json", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// The spec's example create-request parameters with our api_key, jurisdiction, a service
/// code of our catalogue and the grid attribute our service definition asks for.
fn spec_example_form(description: &str) -> String {
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(fixture("create_request.form").trim()).expect("form");
    for (key, value) in &mut pairs {
        match key.as_str() {
            "api_key" => *value = API_KEY.into(),
            "jurisdiction_id" => *value = JURISDICTION.into(),
            "service_code" => *value = SERVICE.into(),
            "description" => *value = description.into(),
            // Inside grid wg-010102: a point outside the jurisdiction is refused.
            "lat" => *value = "34.755".into(),
            "long" => *value = "117.53".into(),
            _ => {}
        }
    }
    pairs.push(("attribute[grid]".into(), "wg-010102".into()));
    serde_urlencoded::to_string(&pairs).expect("form")
}

tests::on_both_stores!(submit_and_follow);

async fn submit_and_follow(store: Store) {
    let app = spawn(store, None, false).await;

    // The service list has the spec's shape and is the catalogue.
    let (status, services) = get(&app, "/open311/v2/services.json").await;
    assert_eq!(status, 200, "{services}");
    assert_same_shape(&services, &fixture_json("services.json"), "services");
    let vending = services
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["service_code"] == SERVICE)
        .expect("the catalogue item is a service");
    assert!(vending["group"].as_str().is_some_and(|g| !g.is_empty()));
    assert_eq!(vending["type"], "realtime");
    let (status, _) = get(
        &app,
        &format!("/open311/v2/services.json?jurisdiction_id={JURISDICTION}"),
    )
    .await;
    assert_eq!(status, 200);

    // The service definition asks for the grid, optional since lat/long place a request.
    let (status, definition) = get(&app, &format!("/open311/v2/services/{SERVICE}.json")).await;
    assert_eq!(status, 200, "{definition}");
    assert_same_shape(
        &definition,
        &fixture_json("service_definition.json"),
        "definition",
    );
    let grid = &definition["attributes"][0];
    assert_eq!(grid["code"], "grid");
    assert_eq!(grid["required"], false);
    assert!(
        grid["values"]
            .as_array()
            .expect("values")
            .iter()
            .any(|v| v["key"] == "wg-010102"),
        "{grid}"
    );

    // Submit with the spec's example parameters, form-encoded.
    let description = "小区北门占道经营 vendors block the north gate";
    let (status, created) = post_form(&app, spec_example_form(description)).await;
    assert_eq!(status, 201, "{created}");
    assert_same_shape(&created, &fixture_json("create_request.json"), "created");
    let id = created[0]["service_request_id"]
        .as_str()
        .expect("id")
        .to_string();
    uuid::Uuid::parse_str(&id).expect("the id is our request id");
    assert_eq!(created[0]["account_id"], "123456");
    assert!(
        created[0]["service_notice"]
            .as_str()
            .is_some_and(|n| n.contains("completion within")),
        "{created}"
    );

    // A retry of the same call is the same request.
    let (status, again) = post_form(&app, spec_example_form(description)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again[0]["service_request_id"], id.as_str());
    assert_eq!(app.log_length().await, 1);

    // Follow it: open, received, the submitted location and description; no contact data.
    let (status, one) = get(&app, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(status, 200, "{one}");
    assert_same_shape(&one, &fixture_json("requests.json"), "request");
    let request = &one[0];
    assert_eq!(request["status"], "open");
    assert!(
        request["status_notes"]
            .as_str()
            .is_some_and(|n| n.contains("Received")),
        "{request}"
    );
    assert_eq!(request["service_code"], SERVICE);
    assert_eq!(request["description"], description);
    assert_eq!(request["address"], "1234 5th street");
    assert_eq!(request["lat"], 34.755);
    assert_eq!(request["long"], 117.53);
    assert_eq!(request["media_url"], "http://www.city.gov/media/12345.jpg");
    assert_eq!(request["expected_datetime"], Value::Null);
    assert!(
        request["requested_datetime"]
            .as_str()
            .is_some_and(|t| t.ends_with("+08:00")),
        "{request}"
    );
    let text = one.to_string();
    for secret in ["smit333", "111111111", "john", "smith", "tt222111"] {
        assert!(!text.contains(secret), "{secret} is not shown: {text}");
    }

    // The contact is in the contact store; no event carries it.
    let history = app.history(&id).await;
    let serialized = serde_json::to_string(&history).expect("json");
    for secret in ["smit333", "111111111", "john smith", "tt222111"] {
        assert!(
            !serialized.contains(secret),
            "{secret} never enters an event"
        );
    }
    assert_eq!(history[0]["data"]["channel"], "online");
    assert!(
        history[0]["data"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("ASSET=2")),
        "other attributes are kept in the text: {}",
        history[0]["data"]["text"]
    );
    let contact_ref: ContactRef = serde_json::from_value(history[0]["data"]["contact_ref"].clone())
        .expect("a contact reference");
    match app
        .command_service
        .contacts()
        .get(&contact_ref)
        .await
        .expect("store answers")
    {
        Some(StoredContact::Present(contact)) => {
            assert_eq!(contact.name.as_deref(), Some("john smith"));
            assert_eq!(contact.phone.as_deref(), Some("111111111"));
            assert_eq!(
                contact.address_detail.as_deref(),
                Some("email: smit333@sfgov.edu")
            );
        }
        other => panic!("contact stored: {other:?}"),
    }

    // Staff move it on; the client sees the department, the deadline and finally `closed`.
    let steps: Vec<(&str, &str, Value)> = vec![
        ("accept", actors::STATION, json!({})),
        (
            "classify",
            actors::STATION,
            json!({"catalogue_item": SERVICE, "request_type": "complaint"}),
        ),
        (
            "refer",
            actors::STATION,
            json!({"lead_department": "urban-management"}),
        ),
        ("sign_for", actors::URBAN, json!({})),
    ];
    for (action, actor, body) in steps {
        app.clock.advance(chrono::Duration::minutes(20));
        let (status, answer) = app.command(&id, action, actor, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    let (_, one) = get(&app, &format!("/open311/v2/requests/{id}.json")).await;
    let request = &one[0];
    assert_eq!(request["status"], "open");
    assert!(
        request["agency_responsible"]
            .as_str()
            .is_some_and(|a| a.contains("Urban Management")),
        "{request}"
    );
    let expected = request["expected_datetime"]
        .as_str()
        .expect("the completion deadline");
    assert!(expected.ends_with("+08:00"), "{expected}");
    assert_ne!(request["updated_datetime"], request["requested_datetime"]);
    let auditor = app
        .get(&format!("/api/v1/requests/{id}"), actors::AUDITOR)
        .await
        .json::<Value>()
        .await
        .expect("json");
    let due = chrono::DateTime::parse_from_rfc3339(
        auditor["state"]["deadlines"]["completion_due_at"]
            .as_str()
            .expect("deadline in the state"),
    )
    .expect("rfc3339");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(expected).expect("rfc3339"),
        due,
        "expected_datetime is the completion deadline"
    );

    for (action, body) in [
        ("contact_resident", json!({"method": "phone"})),
        ("start_handling", json!({})),
        (
            "reply",
            json!({"outcome": "resolved", "content": "Vendors moved to the market lot."}),
        ),
    ] {
        app.clock.advance(chrono::Duration::minutes(20));
        let (status, answer) = app.command(&id, action, actors::URBAN, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    let (_, one) = get(&app, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(one[0]["status"], "closed", "{one}");
    assert!(
        one[0]["status_notes"]
            .as_str()
            .is_some_and(|n| n.contains("resolved")),
        "{one}"
    );

    // A second request (JSON body), then both by id.
    let response = app
        .client
        .post(format!("{}/open311/v2/requests.json", app.address))
        .json(&json!({
            "api_key": API_KEY, "service_code": SERVICE, "lat": 34.77, "long": 117.59,
            "description": "again at the south gate", "attribute": {"grid": "wg-010101"}
        }))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 201);
    let second: Value = response.json().await.expect("json");
    let second = second[0]["service_request_id"].as_str().expect("id");
    let (status, both) = get(
        &app,
        &format!("/open311/v2/requests.json?service_request_id={id},{second}"),
    )
    .await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(both.as_array().map(Vec::len), Some(2), "{both}");
    assert_eq!(both[0]["status"], "closed");
    assert_eq!(both[1]["status"], "open");
    let (_, open_only) = get(
        &app,
        &format!("/open311/v2/requests.json?service_request_id={id},{second}&status=open"),
    )
    .await;
    assert_eq!(open_only.as_array().map(Vec::len), Some(1), "{open_only}");
    assert_eq!(open_only[0]["service_request_id"], second);

    app.teardown().await;
}

#[tokio::test]
async fn bad_calls_get_the_spec_error_array_and_record_nothing() {
    let app = spawn(Store::Sqlite, None, false).await;
    let example_error = fixture_json("error.json");
    let base = |extra: &str| {
        format!(
            "api_key={API_KEY}&service_code={SERVICE}&lat=34.755&long=117.53&attribute%5Bgrid%5D=wg-010102&description=x{extra}"
        )
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("service_code={SERVICE}&lat=34.755&long=117.53&attribute%5Bgrid%5D=wg-010102"),
            403,
            "api_key",
        ),
        (base("").replace(API_KEY, "wrong-key"), 403, "api_key"),
        (base("").replace(API_KEY, AUDITOR_KEY), 403, "auditor"),
        (base("&jurisdiction_id=elsewhere.gov"), 404, "jurisdiction"),
        (
            base("").replace(SERVICE, "no-such-item"),
            404,
            "service_code",
        ),
        (
            base("")
                .replace("&attribute%5Bgrid%5D=wg-010102", "")
                .replace("lat=34.755", "lat=34.7"),
            400,
            "outside every grid",
        ),
        (
            base("").replace("wg-010102", "wg-999999"),
            400,
            "unknown grid",
        ),
        (base("").replace("lat=34.755", "lat=north"), 400, "lat"),
        (
            base("").replace("&lat=34.755&long=117.53", ""),
            400,
            "location",
        ),
        (
            base("&attribute%5Bpriority_lane%5D=vip"),
            400,
            "priority_lane",
        ),
        (
            base(&format!("&description={}", "d".repeat(4001))).replace("&description=x", ""),
            400,
            "description",
        ),
    ];
    for (body, expected, needle) in cases {
        let (status, error) = post_form(&app, body.clone()).await;
        assert_eq!(status, expected, "{body}: {error}");
        assert_same_shape(&error, &example_error, "error");
        assert_eq!(error[0]["code"], expected);
        assert!(
            error[0]["description"]
                .as_str()
                .is_some_and(|d| d.contains(needle)),
            "{needle}: {error}"
        );
    }
    // A malformed JSON body.
    let response = app
        .client
        .post(format!("{}/open311/v2/requests.json", app.address))
        .header("content-type", "application/json")
        .body("{\"api_key\":")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(app.log_length().await, 0, "nothing was recorded");

    // Reads: other jurisdictions, unknown services and requests, other formats.
    for (path, expected) in [
        (
            "/open311/v2/services.json?jurisdiction_id=elsewhere.gov",
            404,
        ),
        ("/open311/v2/services/no-such-item.json", 404),
        ("/open311/v2/services/um-street-vending.csv", 400),
        (
            "/open311/v2/requests/0190b5b4-0000-7000-8000-000000000000.json",
            404,
        ),
        ("/open311/v2/requests/not-a-uuid.json", 400),
        ("/open311/v2/requests.json?status=pending", 400),
        ("/open311/v2/requests.json?start_date=yesterday", 400),
    ] {
        let (status, error) = get(&app, path).await;
        assert_eq!(status, expected, "{path}: {error}");
        assert_same_shape(&error, &example_error, path);
    }
    // Listing without ids needs the read models, which this app does not run.
    let (status, error) = get(&app, "/open311/v2/requests.json").await;
    assert_eq!(status, 503, "{error}");

    // A request that did not come in over Open311 is not shown.
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    let hotline = created["request_id"].as_str().expect("id");
    let (status, _) = get(&app, &format!("/open311/v2/requests/{hotline}.json")).await;
    assert_eq!(status, 404);
    let (status, list) = get(
        &app,
        &format!("/open311/v2/requests.json?service_request_id={hotline}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([]));
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_from_the_read_models_on_postgres() {
    let db = TestDb::create().await.expect("a test database");
    list_from_read_models(Store::Nats, Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_listed_from_the_read_models_on_sqlite() {
    list_from_read_models(Store::Sqlite, None).await;
}

async fn list_from_read_models(store: Store, database_url: Option<String>) {
    let app = spawn(store, database_url, true).await;
    let mut ids = Vec::new();
    for (i, grid) in ["wg-010101", "wg-010102"].into_iter().enumerate() {
        app.clock.advance(chrono::Duration::minutes(5));
        let body = format!(
            "api_key={API_KEY}&jurisdiction_id={JURISDICTION}&service_code={SERVICE}&address_string=Wenhua+Road+{i}&attribute%5Bgrid%5D={grid}&description=request+{i}"
        );
        let (status, created) = post_form(&app, body).await;
        assert_eq!(status, 201, "{created}");
        ids.push(
            created[0]["service_request_id"]
                .as_str()
                .expect("id")
                .to_string(),
        );
    }
    // A hotline request, which Open311 does not list.
    let (status, _) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201);
    wait_caught_up(&app).await;

    let (status, list) = get(&app, "/open311/v2/requests.json").await;
    assert_eq!(status, 200, "{list}");
    assert_same_shape(&list, &fixture_json("requests.json"), "list");
    let listed: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["service_request_id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        listed,
        vec![ids[1].as_str(), ids[0].as_str()],
        "newest first"
    );
    assert_eq!(list[1]["address"], "Wenhua Road 0");

    for (query, expected) in [
        (format!("status=open&service_code={SERVICE}"), 2),
        ("status=closed".to_string(), 0),
        ("service_code=ss-pension-certification".to_string(), 0),
        ("start_date=2026-03-02T09:07:00%2B08:00".to_string(), 1),
        (
            "start_date=2026-03-03T00:00:00Z&end_date=2026-03-04T00:00:00Z".to_string(),
            0,
        ),
    ] {
        let (status, list) = get(&app, &format!("/open311/v2/requests.json?{query}")).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(
            list.as_array().map(Vec::len),
            Some(expected),
            "{query}: {list}"
        );
    }
    app.teardown().await;
}

/// Polls the projection health until every projector has applied the log head.
async fn wait_caught_up(app: &TestApp) {
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app
            .get("/api/v1/health/projections", actors::DASHBOARD)
            .await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        let done = status == 200
            && body["projectors"]
                .as_array()
                .is_some_and(|ps| ps.iter().all(|p| p["checkpoint"] == head));
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "projectors behind: {body}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn creates_are_rate_limited_per_api_key() {
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.http.intake_rate_limit.per_second = 0.001;
        config.http.intake_rate_limit.burst = 2;
        config.auth.tokens = vec![TokenConfig {
            id: "fixmystreet".into(),
            role: Role::IntakeSystem,
            unit: None,
            token_sha256: hash_token(API_KEY),
        }];
    })
    .await;
    let body = |n: usize| {
        format!(
            "api_key={API_KEY}&service_code={SERVICE}&address_string=Wenhua+Road&attribute%5Bgrid%5D=wg-010101&description=report+{n}"
        )
    };
    for n in 0..2 {
        let (status, created) = post_form(&app, body(n)).await;
        assert_eq!(status, 201, "{created}");
    }
    let response = app
        .client
        .post(format!("{}/open311/v2/requests.json", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body(2))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    let error: Value = response.json().await.expect("json");
    assert_same_shape(&error, &fixture_json("error.json"), "rate limited");
    assert_eq!(error[0]["code"], 429);
    assert_eq!(
        app.log_length().await,
        2,
        "the refused create recorded nothing"
    );
    app.teardown().await;
}

/// An XML element: name, child elements, text.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) children: Vec<Node>,
    pub(crate) text: String,
}

impl Node {
    pub(crate) fn child_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.children.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    pub(crate) fn child(&self, name: &str) -> &Node {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("<{name}> in <{}>", self.name))
    }
}

/// Parses a whole document (it must be well-formed).
fn parse_xml(text: &str) -> Node {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack = vec![Node::default()];
    let name = |qname: &str| qname.to_string();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(Node {
                name: name(e.name().as_ref()),
                ..Node::default()
            }),
            Event::Empty(e) => stack.last_mut().expect("open").children.push(Node {
                name: name(e.name().as_ref()),
                ..Node::default()
            }),
            Event::End(_) => {
                let done = stack.pop().expect("balanced");
                stack.last_mut().expect("parent").children.push(done);
            }
            Event::Text(t) => stack
                .last_mut()
                .expect("open")
                .text
                .push_str(AsRef::<str>::as_ref(&t)),
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().expect("document");
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.remove(0)
}

pub(crate) fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

pub(crate) async fn get_xml(app: &TestApp, path: &str) -> (u16, Node) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/xml"),
        "{path}: {content_type}"
    );
    (status, parse_xml(&response.text().await.expect("text")))
}

/// The XML format: the same documents, with the spec's element names, and the same keys as
/// the spec's examples.
#[tokio::test]
async fn the_xml_format_serves_the_same_documents() {
    let app = spawn(Store::Sqlite, None, false).await;
    let (status, services) = get_xml(&app, "/open311/v2/services.xml").await;
    assert_eq!(status, 200);
    assert_eq!(services.name, "services");
    let example = fixture_json("services.json");
    assert!(services.children.len() > 10);
    for service in &services.children {
        assert_eq!(service.name, "service");
        assert_eq!(service.child_names(), keys(&example[0]));
    }

    let (status, definition) = get_xml(&app, &format!("/open311/v2/services/{SERVICE}.xml")).await;
    assert_eq!(status, 200);
    assert_eq!(definition.name, "service_definition");
    let example = fixture_json("service_definition.json");
    assert_eq!(definition.child_names(), keys(&example));
    let attribute = &definition.child("attributes").children[0];
    assert_eq!(attribute.name, "attribute");
    assert_eq!(attribute.child_names(), keys(&example["attributes"][0]));
    assert!(
        attribute
            .child("values")
            .children
            .iter()
            .any(|v| v.child("key").text == "wg-010102")
    );

    let response = app
        .client
        .post(format!("{}/open311/v2/requests.xml", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(spec_example_form("路灯不亮 & 很暗 <北门>"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 201);
    let created = parse_xml(&response.text().await.expect("text"));
    assert_eq!(created.name, "service_requests");
    let request = &created.children[0];
    assert_eq!(request.name, "request");
    assert_eq!(
        request.child_names(),
        keys(&fixture_json("create_request.json")[0])
    );
    let id = request.child("service_request_id").text.clone();
    uuid::Uuid::parse_str(&id).expect("a request id");

    let (status, one) = get_xml(&app, &format!("/open311/v2/requests/{id}.xml")).await;
    assert_eq!(status, 200);
    assert_eq!(one.name, "service_requests");
    let request = &one.children[0];
    assert_eq!(
        request.child_names(),
        keys(&fixture_json("requests.json")[0])
    );
    assert_eq!(request.child("status").text, "open");
    assert_eq!(request.child("service_code").text, SERVICE);
    let (status, both) = get_xml(
        &app,
        &format!("/open311/v2/requests.xml?service_request_id={id}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(both.children.len(), 1);

    // Errors as <errors><error>.
    let response = app
        .client
        .post(format!("{}/open311/v2/requests.xml", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("service_code={SERVICE}&address_string=x"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 403);
    let errors = parse_xml(&response.text().await.expect("text"));
    assert_eq!(errors.name, "errors");
    let error = &errors.children[0];
    assert_eq!(error.name, "error");
    assert_eq!(error.child_names(), keys(&fixture_json("error.json")[0]));
    assert_eq!(error.child("code").text, "403");
    let (status, missing) = get_xml(&app, "/open311/v2/services/no-such-item.xml").await;
    assert_eq!(status, 404);
    assert_eq!(missing.name, "errors");
    assert_eq!(app.log_length().await, 1);
    app.teardown().await;
}

/// A confidential request on the online channel with an `o311:` ticket (as any intake system
/// may submit) is never shown by Open311's public reads; the same request without the flag is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_request_is_never_shown_publicly() {
    let app = spawn(Store::Sqlite, None, false).await;
    let mut ids = Vec::new();
    for confidential in [false, true] {
        let mut document =
            intake_document(&format!("o311:{SERVICE}:{}", uuid::Uuid::now_v7().simple()));
        document["channel"] = json!("online");
        document["confidential"] = json!(confidential);
        let response = app
            .post("/api/v1/requests", actors::INTAKE, &document)
            .await;
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = response.json().await.expect("a JSON body");
        ids.push(body["request_id"].as_str().expect("an id").to_string());
    }
    let (status, shown) = get(&app, &format!("/open311/v2/requests/{}.json", ids[0])).await;
    assert_eq!(status, 200, "the control request is public: {shown}");
    let (status, hidden) = get(&app, &format!("/open311/v2/requests/{}.json", ids[1])).await;
    assert_eq!(status, 404, "{hidden}");
    let (status, listed) = get(
        &app,
        &format!(
            "/open311/v2/requests.json?service_request_id={},{}",
            ids[0], ids[1]
        ),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    let listed: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|r| r["service_request_id"].as_str())
        .collect();
    assert_eq!(listed, vec![ids[0].as_str()]);
    app.teardown().await;
}
