//! The OpenAPI document (`schemas/openapi/bianmin.openapi.json`): committed as the code
//! generates it, naming every route the routers serve and nothing they do not, with every
//! `$ref` resolving and every path parameter declared.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::app::{Store, actors, spawn_app_with};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn the_committed_document_is_what_the_code_generates() {
    let committed =
        std::fs::read_to_string(workspace().join(engine_service::openapi::DOCUMENT_PATH))
            .expect("the document is committed");
    let generated = engine_service::openapi::document_text();
    assert!(
        committed == generated,
        "schemas/openapi/bianmin.openapi.json is stale: run `cargo run -p engine-service --bin gen-openapi`"
    );
}

#[test]
fn every_reference_resolves_and_every_path_parameter_is_declared() {
    let document = engine_service::openapi::document();
    assert_eq!(document["openapi"], "3.1.0");
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("component schemas");
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
        assert!(schemas.contains_key(name), "{reference} resolves");
    }
    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        let declared: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                ids.insert(op["operationId"].to_string()),
                "unique operationId"
            );
            let params: BTreeSet<String> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().expect("name").to_string())
                .collect();
            assert_eq!(params, declared, "{method} {path}: path parameters");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}: responses"
            );
        }
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    out.push(v.as_str().expect("string ref").to_string());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// `(method, path)` of every `.route(...)` in the routers' sources (test modules excluded).
fn routes_in_sources() -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    for dir in ["engine/service/src", "projections/src"] {
        walk(&workspace().join(dir), &mut files);
    }
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        let text = match text.find("#[cfg(test)]") {
            Some(at) => &text[..at],
            None => &text[..],
        };
        let mut rest = text;
        while let Some(at) = rest.find(".route(") {
            let call = &rest[at + ".route(".len()..];
            let end = closing_paren(call);
            let args = &call[..end];
            rest = &call[end..];
            let Some(path) = args
                .trim_start()
                .strip_prefix('"')
                .and_then(|s| s.split_once('"'))
                .map(|(path, _)| path.to_string())
            else {
                continue; // a route built from a constant: only in test code
            };
            let handler = &args[args.find(',').expect("two arguments")..];
            for method in ["get", "post", "put", "patch", "delete"] {
                let call = format!("{method}(");
                let mut search = handler;
                while let Some(i) = search.find(&call) {
                    let before = search[..i].chars().last();
                    if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                        routes.insert((method.to_string(), path.clone()));
                    }
                    search = &search[i + call.len()..];
                }
            }
        }
    }
    routes
}

fn closing_paren(text: &str) -> usize {
    let mut depth = 1;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    text.len()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn documented() -> BTreeSet<(String, String)> {
    let document = engine_service::openapi::document();
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("item")
                .keys()
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_route_of_the_routers_is_documented() {
    let routes = routes_in_sources();
    assert!(
        routes.contains(&("post".to_string(), "/api/v1/requests".to_string()))
            && routes.contains(&("get".to_string(), "/open311/v2/requests.json".to_string()))
            && routes.len() > 30,
        "the scan finds the routers: {routes:?}"
    );
    let documented = documented();
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let phantom: Vec<_> = documented.difference(&routes).collect();
    assert!(
        phantom.is_empty(),
        "documented routes no router has: {phantom:?}"
    );
}

/// Every documented operation, called on the running engine (JetStream, projections on), reaches a handler: the answer
/// is never the router's own "no such resource" or "method not allowed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_reaches_a_handler() {
    // On JetStream with projections every optional router is mounted (read models, the
    // notifier's routes need a channel: NATS).
    let app = spawn_app_with(Store::Nats, |config| {
        config.projections.enabled = true;
    })
    .await;
    let document = engine_service::openapi::document();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let mut url = path.clone();
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] != "path" {
                    continue;
                }
                let name = param["name"].as_str().expect("name");
                let value = if param["schema"]["format"] == "uuid" {
                    "0190b5b4-0000-7000-8000-000000000000".to_string()
                } else if name.ends_with("_file") {
                    "x.json".to_string()
                } else {
                    "x".to_string()
                };
                url = url.replace(&format!("{{{name}}}"), &value);
            }
            let request = match method.as_str() {
                "get" => client.get(format!("{}{url}", app.address)),
                "post" => client
                    .post(format!("{}{url}", app.address))
                    .header("content-type", "application/json")
                    .body("{}"),
                "put" => client
                    .put(format!("{}{url}", app.address))
                    .header("content-type", "application/json")
                    .body("{}"),
                other => panic!("undocumented method {other}"),
            };
            let response = request
                .header("X-Bianmin-Actor", actors::AUDITOR)
                .send()
                .await
                .expect("the server answers");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(
                !(status == 404 && body.contains("\"no such resource\"")),
                "{method} {path} reaches a handler: {status} {body}"
            );
            assert!(
                status < 500 || status == 503,
                "{method} {path}: {status} {body}"
            );
        }
    }
    app.teardown().await;
}

/// A small deterministic generator (xorshift64*), so failures replay from the seed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn string(&mut self) -> String {
        const POOL: &[&str] = &[
            "jd-01",
            "sq-0101",
            "wg-010101",
            "wg-010102",
            "um-street-vending",
            "urban-management",
            "hrss",
            "complaint",
            "general",
            "resolved",
            "phone",
            "satisfied",
            "小区北门路灯已坏三天",
            "",
            " ",
            "2026-03-02T09:00:00+08:00",
            "0190b5b4-0000-7000-8000-000000000000",
            "\u{0}\u{7}",
            "'; DROP TABLE request_summary; --",
        ];
        match self.below(4) {
            0 => "x".repeat(self.below(20_000)),
            1 => (0..self.below(40))
                .map(|_| char::from_u32(0x20 + self.below(0x3000) as u32).unwrap_or('?'))
                .collect(),
            _ => POOL[self.below(POOL.len())].to_string(),
        }
    }

    /// A value for `schema` (resolving `$ref`s in `components`); with `wild`, sometimes a
    /// value of the wrong type or shape.
    fn value(&mut self, schema: &Value, components: &Value, depth: usize) -> Value {
        if depth > 6 {
            return Value::Null;
        }
        if self.chance(3) {
            return match self.below(4) {
                0 => Value::Null,
                1 => serde_json::json!(-1),
                2 => serde_json::json!([]),
                _ => Value::String(self.string()),
            };
        }
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            return self.value(&components[name], components, depth + 1);
        }
        if let Some(value) = schema.get("const") {
            return value.clone();
        }
        if let Some(options) = schema["enum"].as_array() {
            return options[self.below(options.len())].clone();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array() {
                let pick = &options[self.below(options.len())];
                return self.value(pick, components, depth + 1);
            }
        }
        if let Some(all) = schema["allOf"].as_array()
            && let Some(first) = all.first()
        {
            return self.value(first, components, depth + 1);
        }
        let kind = match &schema["type"] {
            Value::String(t) => t.clone(),
            Value::Array(ts) => ts[self.below(ts.len())]
                .as_str()
                .unwrap_or("null")
                .to_string(),
            _ if schema.get("properties").is_some() => "object".into(),
            _ => "string".into(),
        };
        match kind.as_str() {
            "null" => Value::Null,
            "boolean" => Value::Bool(self.chance(50)),
            "integer" => serde_json::json!(match self.below(4) {
                0 => 0,
                1 => self.below(10) as i64,
                2 => i64::MAX,
                _ => -(self.below(5) as i64),
            }),
            "number" => serde_json::json!(self.below(200) as f64 - 100.5),
            "array" => {
                let n = self.below(4);
                Value::Array(
                    (0..n)
                        .map(|_| self.value(&schema["items"], components, depth + 1))
                        .collect(),
                )
            }
            "object" => {
                let mut object = serde_json::Map::new();
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                    let include = if required.contains(&name.as_str()) {
                        !self.chance(5)
                    } else {
                        self.chance(50)
                    };
                    if include {
                        object.insert(name.clone(), self.value(property, components, depth + 1));
                    }
                }
                if self.chance(3) {
                    object.insert("unexpected".into(), Value::String(self.string()));
                }
                Value::Object(object)
            }
            _ => match schema["format"].as_str() {
                Some("uuid") if self.chance(80) => {
                    Value::String("0190b5b4-0000-7000-8000-00000000000a".into())
                }
                Some("date-time") if self.chance(80) => {
                    Value::String("2026-03-02T09:00:00+08:00".into())
                }
                _ => Value::String(self.string()),
            },
        }
    }
}

/// Documents generated from the request schemas of the document (intake documents, every
/// command, Open311 creates), some valid, some broken, are sent to the running engine: no
/// answer is a 5xx, and the engine still serves afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_never_get_a_server_error() {
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.http.body_limit_bytes = 256 * 1024;
    })
    .await;
    let document = engine_service::openapi::document();
    let components = &document["components"]["schemas"];
    let (status, created) = app
        .intake(&tests::app::intake_document(&tests::app::external_id()))
        .await;
    assert_eq!(status, 201);
    let id = created["request_id"].as_str().expect("id").to_string();
    let mut generator = Gen(0x0005_EED0_FB1A_9311);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let actor_pool = [
        actors::INTAKE,
        actors::STATION,
        actors::URBAN,
        actors::SUPERVISOR,
        actors::AUDITOR,
    ];
    for round in 0..1200 {
        // Mostly the role each operation wants, sometimes any other.
        let actor = if round % 3 != 1 && generator.chance(80) {
            actors::INTAKE
        } else {
            actor_pool[generator.below(actor_pool.len())]
        };
        let (path, body, form) = match round % 3 {
            0 => {
                let schema = &document["paths"]["/api/v1/requests"]["post"]["requestBody"]["content"]
                    ["application/json"]["schema"];
                let mut doc = generator.value(schema, components, 0);
                if generator.chance(50)
                    && let Some(object) = doc.as_object_mut()
                {
                    object.insert(
                        "location".into(),
                        serde_json::json!({"street": "jd-01", "community": "sq-0101", "grid": "wg-010101"}),
                    );
                }
                ("/api/v1/requests".to_string(), doc, false)
            }
            1 => {
                let command = generator.value(&components["Command"], components, 0);
                let action = command["action"].as_str().unwrap_or("accept").to_string();
                let mut body = command.clone();
                if let Some(object) = body.as_object_mut() {
                    object.remove("action");
                }
                (format!("/api/v1/requests/{id}/{action}"), body, false)
            }
            _ => {
                let schema = &document["paths"]["/open311/v2/requests.json"]["post"]["requestBody"]
                    ["content"]["application/x-www-form-urlencoded"]["schema"];
                let mut params = generator.value(schema, components, 0);
                if let Some(object) = params.as_object_mut()
                    && generator.chance(50)
                {
                    object.insert("attribute[grid]".into(), "wg-010101".into());
                    object.insert("service_code".into(), "um-street-vending".into());
                    object.insert("address_string".into(), generator.string().into());
                    object.remove("api_key"); // the actor header identifies the caller
                    object.remove("jurisdiction_id");
                    object.remove("lat");
                    object.remove("long");
                }
                ("/open311/v2/requests.json".to_string(), params, true)
            }
        };
        let request = app.client.post(format!("{}{path}", app.address));
        let request = if form {
            let pairs: Vec<(String, String)> = body
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect();
            request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(&pairs).expect("form"))
        } else {
            request.json(&body)
        };
        let response = request
            .header("X-Bianmin-Actor", actor)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status < 500,
            "round {round}: POST {path} as {actor} with {body} answered {status}: {text}"
        );
        *statuses.entry(status).or_default() += 1;
    }
    assert!(
        statuses.get(&201).is_some_and(|n| *n > 0) && statuses.keys().any(|s| *s >= 400),
        "both accepted and refused documents were generated: {statuses:?}"
    );
    eprintln!("answers by status: {statuses:?}");
    let response = app.get("/healthz", actors::AUDITOR).await;
    assert_eq!(response.status().as_u16(), 200);
    app.teardown().await;
}
