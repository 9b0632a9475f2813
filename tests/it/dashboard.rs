//! The dashboard page (`GET /dashboard`): it is served as HTML with its labels and same-origin
//! assets, `/` redirects to it, and every API call its script makes (the query templates read
//! out of the served script, filled as the page fills them) answers 200 for the identities it
//! is meant for, with the figures of the requests on record, and pages with its cursor.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use engine_service::auth::{TokenConfig, hash_token};
use schemas::Role;
use serde_json::{Value, json};
use tests::app::Store;
use tests::app::{TestApp, actors, external_id, intake_document, spawn_app_with};

/// A `now` at which every open request is overdue.
const LATER: &str = "2026-06-01T00:00:00Z";
/// The bearer token of the leadership screen configured for this test.
const SCREEN_TOKEN: &str = "screen-token-7f3a";

/// The API block of the served script: query templates, filter keys, page size.
struct PageApi {
    templates: BTreeMap<String, String>,
    filter_keys: Vec<String>,
    page_size: u32,
}

/// Reads the block between `// BEGIN API` and `// END API` of the page's script.
fn page_api(script: &str) -> PageApi {
    let start = script
        .find("// BEGIN API")
        .expect("the script marks its API block");
    let end = script.find("// END API").expect("the API block ends");
    let block = &script[start..end];
    let mut templates = BTreeMap::new();
    let mut filter_keys = Vec::new();
    let mut page_size = None;
    for line in block.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("const FILTER_KEYS = [") {
            filter_keys = rest
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
        } else if let Some(rest) = line.strip_prefix("const PAGE_SIZE = ") {
            page_size = rest.trim_end_matches(';').parse().ok();
        } else if let Some((name, rest)) = line.split_once(": \"") {
            let template = rest.strip_suffix("\",").expect("one template per line");
            templates.insert(name.to_string(), template.to_string());
        }
    }
    PageApi {
        templates,
        filter_keys,
        page_size: page_size.expect("PAGE_SIZE in the API block"),
    }
}

/// Fills `{name}` placeholders as the page does; every placeholder must have a value.
fn fill(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("placeholder closes") + open;
        let name = &rest[open + 1..close];
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("the test knows placeholder {{{name}}} of {template}"));
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "sample values need no escaping: {value}"
        );
        out.push_str(&rest[..open]);
        out.push_str(value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Appends `&key=value` pairs as the page's `withParams` does (empty values skipped).
fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_string();
    for (key, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&format!("{key}={value}"));
    }
    out
}

async fn get(app: &TestApp, path: &str, actor: &str) -> (u16, Value) {
    let response = app.get(path, actor).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get_bearer(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Intake, accept, classify, refer to urban-management; returns the request id.
async fn referred_request(app: &TestApp) -> String {
    let (status, created) = app.intake(&intake_document(&external_id())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    for (action, body) in [
        ("accept", json!({})),
        (
            "classify",
            json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
        ),
        ("refer", json!({"lead_department": "urban-management"})),
    ] {
        app.clock.advance(chrono::Duration::minutes(5));
        let (status, answer) = app.command(&id, action, actors::STATION, &body).await;
        assert_eq!(status, 200, "{action}: {answer}");
    }
    id
}

/// Polls the projection health until every projector has applied the log head.
async fn wait_caught_up(app: &TestApp) {
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(app, "/api/v1/health/projections", actors::DASHBOARD).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_page_is_served_and_its_api_calls_answer() {
    tokio::time::timeout(Duration::from_secs(60), scenario())
        .await
        .expect("test timed out");
}

async fn scenario() {
    // Arrange: projections on, one bearer token for a leadership screen, three requests.
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.projections.enabled = true;
        config.auth.tokens = vec![TokenConfig {
            id: "screen-1".into(),
            role: Role::Dashboard,
            unit: None,
            token_sha256: hash_token(SCREEN_TOKEN),
        }];
    })
    .await;
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // The page itself: no credentials needed, HTML, labels, same-origin assets only.
    let root = raw
        .get(format!("{}/", app.address))
        .send()
        .await
        .expect("answers");
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(root.headers()["location"], "/dashboard");
    let page = raw
        .get(format!("{}/dashboard", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(page.status().as_u16(), 200);
    let content_type = page.headers()["content-type"].to_str().expect("ascii");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("script-src 'self'")
    );
    let html = page.text().await.expect("body");
    for label in [
        "响应率",
        "按时办结率",
        "解决率",
        "满意率",
        "Satisfaction",
        "严格满意率",
        "重办率",
        "退单率",
        "考核排名",
        "考核类别",
        "超期工单",
        "即将到期",
        "投影延迟",
        "访问令牌",
        "<th scope=\"col\"",
        "<label for=\"grain\"",
    ] {
        assert!(html.contains(label), "the page shows {label}");
    }
    assert!(
        html.contains("data-dev-identity=\"true\""),
        "the page is told the server accepts the actor header"
    );
    let script = raw
        .get(format!("{}/dashboard/dashboard.js", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(script.status().as_u16(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    let script = script.text().await.expect("body");
    let css = raw
        .get(format!("{}/dashboard/dashboard.css", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(css.status().as_u16(), 200);
    let css = css.text().await.expect("body");
    for asset in [&html, &script, &css] {
        let asset = asset.replace(engine_service::http::dashboard::SVG_NAMESPACE, "");
        assert!(
            !asset.contains("http://") && !asset.contains("https://"),
            "no CDN, no external fonts"
        );
    }
    let api = page_api(&script);
    for path in [
        "/dashboard/session",
        "/api/v1/stats",
        "/api/v1/rankings/",
        "/api/v1/overdue",
        "/api/v1/due-soon",
        "/api/v1/health/projections",
    ] {
        assert!(
            api.templates.values().any(|t| t.starts_with(path)),
            "the page calls {path}"
        );
    }
    assert_eq!(
        api.filter_keys,
        ["street", "community", "department", "channel"]
    );

    let open = referred_request(&app).await;
    let other_open = referred_request(&app).await;
    let third = referred_request(&app).await;
    wait_caught_up(&app).await;

    // The page's query strings, filled as the page fills them for March 2026.
    let vars: BTreeMap<&str, String> = [
        ("period", "month".to_string()),
        ("key", "2026-03".to_string()),
        ("group", "community".to_string()),
        ("month", "2026-03".to_string()),
        ("w1", "10".to_string()),
        ("w2", "45".to_string()),
        ("w3", "45".to_string()),
        ("w4", "0".to_string()),
        ("unit", "departments".to_string()),
        ("limit", api.page_size.to_string()),
    ]
    .into_iter()
    .collect();
    let url = |name: &str| fill(&api.templates[name], &vars);
    let filters = [
        ("street", "jd-01"),
        ("community", "sq-0101"),
        ("department", "urban-management"),
        ("channel", "hotline"),
    ];

    // Signed in as the leadership screen (bearer token): aggregates, not lists.
    let (status, session) = get_bearer(&app, &url("session"), SCREEN_TOKEN).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["id"], "screen-1");
    assert_eq!(session["role"], "dashboard");
    assert!(session["list_filter"].is_null(), "{session}");
    let (status, headline) = get_bearer(&app, &url("headline"), SCREEN_TOKEN).await;
    assert_eq!(status, 200, "{headline}");
    let rows = headline["items"].as_array().expect("items");
    assert_eq!(rows.len(), 1, "one row for the chosen period: {headline}");
    assert_eq!(rows[0]["period"], "2026-03");
    assert_eq!(rows[0]["counts"]["received"], 3);
    assert_eq!(rows[0]["counts"]["referred"], 3);
    assert!(rows[0]["rates"].get("satisfaction_rate").is_some());
    let (status, filtered) =
        get_bearer(&app, &with_params(&url("headline"), &filters), SCREEN_TOKEN).await;
    assert_eq!(status, 200, "{filtered}");
    assert_eq!(filtered["items"][0]["counts"]["received"], 3);
    let (status, elsewhere) = get_bearer(
        &app,
        &with_params(&url("headline"), &[("community", "sq-0999")]),
        SCREEN_TOKEN,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(elsewhere["items"], json!([]), "the filter is applied");
    let (status, groups) = get_bearer(&app, &url("groups"), SCREEN_TOKEN).await;
    assert_eq!(status, 200, "{groups}");
    assert_eq!(groups["items"][0]["dims"]["community"], "sq-0101");
    let (status, ranking) = get_bearer(&app, &url("ranking"), SCREEN_TOKEN).await;
    assert_eq!(status, 200, "{ranking}");
    assert_eq!(ranking["month"], "2026-03");
    assert_eq!(ranking["items"][0]["department"], "urban-management");
    assert_eq!(ranking["items"][0]["rank"], 1);
    assert_eq!(ranking["items"][0]["tier"], "district_department");
    // The same template ranks streets and communities.
    for (unit, code) in [("streets", "jd-01"), ("communities", "sq-0101")] {
        let mut vars = vars.clone();
        vars.insert("unit", unit.to_string());
        let (status, ranking) =
            get_bearer(&app, &fill(&api.templates["ranking"], &vars), SCREEN_TOKEN).await;
        assert_eq!(status, 200, "{unit}: {ranking}");
        assert_eq!(ranking["items"][0]["unit"], code, "{unit}: {ranking}");
        assert_eq!(
            ranking["items"][0]["counts"]["received"], 3,
            "{unit}: {ranking}"
        );
    }
    let (status, health) = get_bearer(&app, &url("health"), SCREEN_TOKEN).await;
    assert_eq!(status, 200, "{health}");
    assert!(
        health["projectors"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    for list in ["overdue", "dueSoon"] {
        let (status, body) = get_bearer(&app, &url(list), SCREEN_TOKEN).await;
        assert_eq!(status, 403, "{list}: {body}");
    }

    // The same through the dev actor header.
    let (status, session) = get(&app, &url("session"), actors::DASHBOARD).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["role"], "dashboard");

    // A station head: the lists with the filter the session names, not without it.
    let (status, session) = get(&app, &url("session"), actors::STATION).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["list_filter"], json!({"community": "sq-0101"}));
    for list in ["overdue", "dueSoon"] {
        let scoped = with_params(&url(list), &[("community", "sq-0101")]);
        let (status, body) = get(&app, &scoped, actors::STATION).await;
        assert_eq!(status, 200, "{list}: {body}");
        let (status, _) = get(&app, &url(list), actors::STATION).await;
        assert_eq!(status, 403, "{list} without the community filter");
    }

    // A supervisor reads the lists unfiltered; "more" pages through them with the cursor.
    let (status, session) = get(&app, &url("session"), actors::SUPERVISOR).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["list_filter"], json!({}));
    let one_per_page: BTreeMap<&str, String> = vars
        .iter()
        .map(|(k, v)| (*k, if *k == "limit" { "1".into() } else { v.clone() }))
        .collect();
    let first = with_params(
        &fill(&api.templates["overdue"], &one_per_page),
        &[("now", LATER)],
    );
    let mut seen = BTreeSet::new();
    let mut next = first.clone();
    for _ in 0..10 {
        let (status, page) = get(&app, &next, actors::SUPERVISOR).await;
        assert_eq!(status, 200, "{next}: {page}");
        for item in page["items"].as_array().expect("items") {
            assert!(item.get("contact").is_none(), "no contact data");
            seen.insert(item["request_id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => next = with_params(&first, &[("cursor", cursor)]),
            None => break,
        }
    }
    assert_eq!(seen, BTreeSet::from([open, other_open, third]));

    // Without valid credentials every data call is 401 (the page then asks to sign in).
    for name in ["session", "headline", "ranking"] {
        let response = app
            .client
            .get(format!("{}{}", app.address, url(name)))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 401, "{name}");
        let (status, _) = get_bearer(&app, &url(name), "not-a-token").await;
        assert_eq!(status, 401, "{name} with an unknown token");
    }

    app.teardown().await;
}
