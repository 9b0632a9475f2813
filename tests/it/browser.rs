//! The dashboard in a real browser: a street's month of requests is run through full
//! lifecycles on the engine, the page is loaded in headless Chromium (Debian's `chromium`,
//! installed by `scripts/services`), and every figure the page shows — headline rates and their
//! counts, the weekly trend, the rates by community, the department ranking, the overdue list,
//! a request's timeline — is read out of the rendered DOM and compared with the JSON API's
//! answer. A screenshot is saved to `target/screenshots/dashboard.png`. A wall screen's kiosk
//! address (a `dashboard`-role bearer token in the fragment) shows the same aggregates and no
//! request list.
//!
//! The page is driven with Chromium's own command line (`--dump-dom`, `--screenshot`) and a
//! virtual-time budget: no WebDriver, no extra crate. The identity and the period come from the
//! URL fragment the page documents (`#date=…&actor=…`), which is never sent to the server.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine_service::auth::{TokenConfig, hash_token};
use schemas::Role;
use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, spawn_app_with};

/// The day the page is pointed at (its month and the eight weeks before it are shown).
const PAGE_DATE: &str = "2026-03-27";
/// The bearer token of a wall screen (role `dashboard`: aggregates only).
const SCREEN_TOKEN: &str = "wall-screen-token-5d1c";
/// The month of the seeded requests.
const MONTH: &str = "2026-03";

/// One seeded request: where it comes from, what it is about, how it ends.
struct Seed {
    community: &'static str,
    grid: &'static str,
    item: &'static str,
    department: &'static str,
    /// `None`: left open after referral (it becomes overdue).
    rating: Option<(&'static str, &'static str)>,
}

/// The mix each week repeats: two communities, two departments, satisfied, basically
/// satisfied and dissatisfied residents, and one request left open.
const WEEK: [Seed; 5] = [
    Seed {
        community: "sq-0101",
        grid: "wg-010102",
        item: "um-street-vending",
        department: "urban-management",
        rating: Some(("satisfied", "resolved")),
    },
    Seed {
        community: "sq-0101",
        grid: "wg-010101",
        item: "es-garbage-collection",
        department: "sanitation",
        rating: Some(("dissatisfied", "unresolved")),
    },
    Seed {
        community: "sq-0102",
        grid: "wg-010201",
        item: "es-garbage-collection",
        department: "sanitation",
        rating: Some(("basically_satisfied", "resolved")),
    },
    Seed {
        community: "sq-0102",
        grid: "wg-010202",
        item: "um-street-vending",
        department: "urban-management",
        rating: Some(("satisfied", "partially_resolved")),
    },
    Seed {
        community: "sq-0102",
        grid: "wg-010203",
        item: "um-street-vending",
        department: "urban-management",
        rating: None,
    },
];

fn station(community: &str) -> String {
    format!("worker-{community};station_worker;{community}")
}

fn handler(department: &str) -> String {
    format!("handler-{department};department_handler;{department}")
}

/// Runs one seeded request through its lifecycle; returns its id.
async fn run_seed(app: &TestApp, seed: &Seed, n: usize) -> String {
    let document = json!({
        "channel": if n.is_multiple_of(2) { "hotline" } else { "grid_patrol" },
        "external_id": external_id(),
        "contact": { "name": "Zhang Wei", "phone": "13900002222" },
        "location": { "street": "jd-01", "community": seed.community, "grid": seed.grid },
        "text": "楼下垃圾两天没有清运 / vendors block the pavement",
    });
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    let station = station(seed.community);
    let handler = handler(seed.department);
    let mut steps: Vec<(&str, String, Value)> = vec![
        ("accept", station.clone(), json!({})),
        (
            "classify",
            station.clone(),
            json!({"catalogue_item": seed.item, "request_type": "complaint"}),
        ),
        (
            "refer",
            station.clone(),
            json!({"lead_department": seed.department}),
        ),
    ];
    if let Some((satisfaction, resolution)) = seed.rating {
        steps.extend([
            ("sign_for", handler.clone(), json!({})),
            (
                "contact_resident",
                handler.clone(),
                json!({"method": "phone"}),
            ),
            ("start_handling", handler.clone(), json!({})),
            (
                "reply",
                handler.clone(),
                json!({"outcome": "resolved", "content": "已处理 Handled."}),
            ),
            (
                "review_reply",
                actors::SUPERVISOR.to_string(),
                json!({"approved": true}),
            ),
            (
                "rate",
                station.clone(),
                json!({"satisfaction": satisfaction, "resolution": resolution}),
            ),
            ("archive", station.clone(), json!({})),
        ]);
    }
    for (action, actor, body) in steps {
        app.clock.advance(chrono::Duration::minutes(20));
        let (status, answer) = app.command(&id, action, &actor, &body).await;
        assert_eq!(status, 200, "{action} as {actor}: {answer}");
    }
    id
}

/// Seeds four weeks (2026-W10 .. W13) of the street's requests; returns the ids in order.
pub(crate) async fn seed_street_month(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for week in 0..4 {
        for (n, seed) in WEEK.iter().enumerate() {
            // Weekly variation: fewer requests in the first week, so the trend moves.
            if week == 0 && n == 3 {
                continue;
            }
            ids.push(run_seed(app, seed, n + week).await);
        }
        app.clock
            .advance(chrono::Duration::days(7) - chrono::Duration::hours(2));
    }
    ids
}

/// Polls the projection health until every projector has applied the log head.
pub(crate) async fn wait_caught_up(app: &TestApp) {
    let head = app
        .command_service
        .log()
        .last_position()
        .await
        .expect("head");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get(app, "/api/v1/health/projections").await;
        let done = status == 200
            && body["projectors"]
                .as_array()
                .is_some_and(|ps| ps.iter().all(|p| p["checkpoint"] == head));
        if done {
            return;
        }
        assert!(Instant::now() < deadline, "projectors behind: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` as the centre's supervisor (the identity the page signs in with).
async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.get(path, actors::SUPERVISOR).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn api(app: &TestApp, path: &str) -> Value {
    let (status, body) = get(app, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The Chromium binary: `BIANMIN_CHROMIUM`, else the first of the usual names on `PATH`.
/// Panics with instructions when there is none: CI installs it through `scripts/services`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("BIANMIN_CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "Chromium is not installed: the dashboard browser test needs it. Run scripts/services \
         (installs Debian's `chromium` and `fonts-wqy-zenhei`) or set BIANMIN_CHROMIUM to a \
         Chromium or Chrome binary."
    );
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its standard output.
pub(crate) async fn run_chromium(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().expect("profile directory");
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--lang=zh-CN",
            // Virtual time runs ahead while the page is idle and waits for its fetches; the
            // page's 30 s auto-refresh lies beyond the budget.
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("Chromium finishes within 120 s")
        .expect("Chromium starts");
    assert!(
        output.status.success(),
        "Chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The part of `dom` from the element with `id` to the end of its table or list.
fn region<'a>(dom: &'a str, id: &str, end: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("the page has #{id}"));
    let rest = &dom[start..];
    let stop = rest.find(end).unwrap_or(rest.len());
    &rest[..stop]
}

/// The text of the element carrying `attr="value"` (up to the next tag), for each occurrence.
fn texts<'a>(html: &'a str, attr: &str) -> Vec<(&'a str, &'a str)> {
    let needle = format!("{attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        let quote = after.find('"').expect("attribute closes");
        let value = &after[..quote];
        let open_end = after.find('>').expect("tag closes") + 1;
        let text_end = after[open_end..].find('<').expect("text ends") + open_end;
        out.push((value, after[open_end..text_end].trim()));
        rest = &after[quote..];
    }
    out
}

/// The value of `attr` on the element shown for `key` under `attr`, e.g. the text of
/// `data-metric="response_rate"`; panics when absent.
fn shown<'a>(html: &'a str, attr: &str, key: &str) -> &'a str {
    texts(html, attr)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, text)| text)
        .unwrap_or_else(|| panic!("the page shows {attr}={key} in {html}"))
}

/// Rows (`<tr …>` … `</tr>`) carrying `attr`, keyed by its value.
fn rows<'a>(html: &'a str, attr: &str) -> Vec<(&'a str, &'a str)> {
    html.split("<tr ")
        .skip(1)
        .filter_map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            let needle = format!("{attr}=\"");
            let at = row.find(&needle)?;
            let value = &row[at + needle.len()..];
            Some((&value[..value.find('"')?], row))
        })
        .collect()
}

/// Checks a shown percentage (`"66.7%"`, or `"—"` for no rate) against the API's rate.
fn assert_percent(shown: &str, rate: &Value, what: &str) {
    match rate.as_f64() {
        None => assert_eq!(shown, "—", "{what}: no rate, shown {shown}"),
        Some(rate) => {
            let value: f64 = shown
                .strip_suffix('%')
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what}: {shown} is a percentage"));
            assert!(
                (value - rate * 100.0).abs() <= 0.05 + 1e-9,
                "{what}: shown {shown}, API {rate}"
            );
        }
    }
}

/// The headline cards' rates and their numerator / denominator, as the page's RATES table.
const HEADLINE: [(&str, &[&str], &[&str]); 7] = [
    ("response_rate", &["responded_on_time"], &["response_due"]),
    ("on_time_completion_rate", &["completed_on_time"], &["due"]),
    ("resolution_rate", &["resolved"], &["rated"]),
    (
        "satisfaction_rate",
        &["satisfied", "basically_satisfied"],
        &["satisfaction_rated"],
    ),
    (
        "strict_satisfaction_rate",
        &["satisfied"],
        &["satisfaction_rated"],
    ),
    ("reopen_rate", &["reopened"], &["completed"]),
    ("referral_return_rate", &["returned"], &["referred"]),
];

const TREND: [&str; 4] = [
    "satisfaction_rate",
    "on_time_completion_rate",
    "response_rate",
    "resolution_rate",
];

fn sum(counts: &Value, keys: &[&str]) -> u64 {
    keys.iter().map(|k| counts[*k].as_u64().unwrap_or(0)).sum()
}

/// Checks a PNG file: signature, IHDR size as requested, and enough bytes to hold a page.
fn assert_png(path: &Path, width: u32, height: u32) {
    let bytes = std::fs::read(path).expect("the screenshot was written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().expect("4 bytes"));
    let h = u32::from_be_bytes(bytes[20..24].try_into().expect("4 bytes"));
    assert_eq!((w, h), (width, height), "the screenshot's size");
    assert!(
        bytes.len() > 40_000,
        "a rendered page, not a blank image: {} bytes",
        bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium_shows_the_apis_figures() {
    tokio::time::timeout(Duration::from_secs(300), scenario())
        .await
        .expect("test timed out");
}

async fn scenario() {
    let browser = chromium();
    eprintln!("browser: {}", browser.display());
    let app = spawn_app_with(Store::Sqlite, |config| {
        config.projections.enabled = true;
        config.auth.tokens = vec![TokenConfig {
            id: "wall-screen-1".into(),
            role: Role::Dashboard,
            unit: None,
            token_sha256: hash_token(SCREEN_TOKEN),
        }];
    })
    .await;
    let ids = seed_street_month(&app).await;
    wait_caught_up(&app).await;
    let audited = ids[1].clone();

    let fragment = format!(
        "date={PAGE_DATE}&grain=month&trend=week&group=community&request={audited}&actor={}",
        actors::SUPERVISOR
    );
    let url = format!("{}/dashboard#{fragment}", app.address);
    let dom = run_chromium(&url, &["--dump-dom".to_string()]).await;
    assert!(
        dom.contains("data-state=\"ready\""),
        "the page finished loading its data: {dom}"
    );
    assert!(
        dom.contains("centre-sun"),
        "signed in from the URL fragment"
    );
    assert!(
        !dom.contains("id=\"board\" hidden"),
        "the board is shown, not the sign-in form"
    );

    // Headline: March's rates and counts.
    let stats = api(
        &app,
        &format!("/api/v1/stats?period=month&from={MONTH}&to={MONTH}"),
    )
    .await;
    let row = &stats["items"][0];
    assert_eq!(row["period"], MONTH, "{stats}");
    assert_eq!(row["counts"]["received"], ids.len() as u64);
    let headline = region(&dom, "headline", "</dl>");
    assert_eq!(
        shown(headline, "data-metric", "received"),
        row["counts"]["received"].to_string()
    );
    assert_eq!(
        shown(headline, "data-metric", "completed"),
        row["counts"]["completed"].to_string()
    );
    let mut some_rate = false;
    for (key, num, den) in HEADLINE {
        assert_percent(
            shown(headline, "data-metric", key),
            &row["rates"][key],
            &format!("headline {key}"),
        );
        some_rate |= row["rates"][key].is_number();
        assert_eq!(
            shown(headline, "data-count", key),
            format!(
                "{} / {}",
                sum(&row["counts"], num),
                sum(&row["counts"], den)
            ),
            "headline {key} counts"
        );
    }
    assert!(some_rate, "the seeded month has rates: {row}");

    // The weekly trend: one row per week with requests, the same figures as the API.
    let trend = api(&app, "/api/v1/stats?period=week&from=2026-W06&to=2026-W13").await;
    let weeks = trend["items"].as_array().expect("items");
    assert_eq!(weeks.len(), 4, "four seeded weeks: {trend}");
    let table = region(&dom, "trend-table", "</table>");
    let shown_weeks = rows(table, "data-period");
    assert_eq!(
        shown_weeks.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        weeks
            .iter()
            .map(|w| w["period"].as_str().expect("period"))
            .collect::<Vec<_>>()
    );
    for ((period, shown_row), api_row) in shown_weeks.iter().zip(weeks) {
        assert_eq!(
            shown(shown_row, "data-metric", "received"),
            api_row["counts"]["received"].to_string(),
            "{period}"
        );
        for key in TREND {
            assert_percent(
                shown(shown_row, "data-metric", key),
                &api_row["rates"][key],
                &format!("trend {period} {key}"),
            );
        }
    }
    let chart = region(&dom, "trend-chart", "</figure>");
    assert!(
        chart.matches("<path").count() >= 2,
        "the trend chart draws rate lines"
    );
    assert_eq!(
        chart.matches("<rect").count(),
        8 + TREND.len(),
        "eight weekly bars and the legend's swatches"
    );

    // Rates by community.
    let groups = api(
        &app,
        &format!("/api/v1/stats?period=month&from={MONTH}&to={MONTH}&group_by=community"),
    )
    .await;
    let groups = groups["items"].as_array().expect("items");
    assert_eq!(groups.len(), 2, "two communities");
    let table = region(&dom, "groups", "</table>");
    let shown_groups = rows(table, "data-group");
    assert_eq!(shown_groups.len(), groups.len());
    for api_row in groups {
        let community = api_row["dims"]["community"].as_str().expect("community");
        let (_, shown_row) = shown_groups
            .iter()
            .find(|(c, _)| *c == community)
            .unwrap_or_else(|| panic!("the page shows community {community}"));
        assert_eq!(
            shown(shown_row, "data-metric", "received"),
            api_row["counts"]["received"].to_string()
        );
        for (key, _, _) in HEADLINE {
            assert_percent(
                shown(shown_row, "data-metric", key),
                &api_row["rates"][key],
                &format!("{community} {key}"),
            );
        }
    }

    // The department ranking.
    let ranking = api(
        &app,
        &format!("/api/v1/rankings/departments?month={MONTH}&w1=10&w2=45&w3=45&limit=20"),
    )
    .await;
    let departments = ranking["items"].as_array().expect("items");
    assert_eq!(departments.len(), 2, "{ranking}");
    let table = region(&dom, "ranking", "</table>");
    let shown_departments = rows(table, "data-department");
    assert_eq!(
        shown_departments
            .iter()
            .map(|(d, _)| *d)
            .collect::<Vec<_>>(),
        departments
            .iter()
            .map(|d| d["department"].as_str().expect("department"))
            .collect::<Vec<_>>(),
        "the ranking's order"
    );
    for ((department, shown_row), api_row) in shown_departments.iter().zip(departments) {
        assert_eq!(
            shown(shown_row, "data-metric", "rank"),
            api_row["rank"].to_string()
        );
        let composite: f64 = shown(shown_row, "data-metric", "composite")
            .parse()
            .expect("a score");
        let expected = api_row["composite"].as_f64().expect("composite");
        assert!(
            (composite - expected).abs() <= 0.05 + 1e-9,
            "{department}: shown {composite}, API {expected}"
        );
    }

    // The overdue list: the requests left open (the page reads it without `now`, as here).
    let overdue = api(&app, "/api/v1/overdue?limit=20").await;
    let mut expected: Vec<&str> = overdue["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["request_id"].as_str().expect("id"))
        .collect();
    assert_eq!(expected.len(), 4, "one open request per week: {overdue}");
    let table = region(&dom, "overdue", "</table>");
    let mut shown_overdue: Vec<&str> = rows(table, "data-request-id")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    expected.sort_unstable();
    shown_overdue.sort_unstable();
    assert_eq!(shown_overdue, expected);

    // The timeline of one request, for the auditor view, without resident data.
    let steps = api(&app, &format!("/api/v1/audit/requests/{audited}/timeline")).await;
    let steps = steps.as_array().expect("steps");
    let list = region(&dom, "timeline", "</ol>");
    let shown_types: Vec<&str> = texts(list, "data-type")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        shown_types,
        steps
            .iter()
            .map(|s| s["envelope"]["type"].as_str().expect("type"))
            .collect::<Vec<_>>()
    );
    assert_eq!(shown_types.last(), Some(&"archived"));
    for secret in ["Zhang Wei", "13900002222"] {
        assert!(
            !dom.contains(secret),
            "no resident contact data on the page"
        );
    }

    // Screenshot of the whole board.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let png = dir.join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    run_chromium(
        &url,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,3200".to_string(),
        ],
    )
    .await;
    assert_png(&png, 1280, 3200);
    eprintln!("screenshot: {}", png.display());

    // A wall screen's kiosk address: a `dashboard`-role bearer token in the fragment. The
    // screen shows the same aggregates and is told it may not read request lists.
    let kiosk = format!(
        "{}/dashboard#date={PAGE_DATE}&token={SCREEN_TOKEN}",
        app.address
    );
    let dom = run_chromium(&kiosk, &["--dump-dom".to_string()]).await;
    assert!(dom.contains("data-state=\"ready\""), "{dom}");
    assert!(dom.contains("wall-screen-1"), "signed in with the token");
    assert!(
        !dom.contains(SCREEN_TOKEN),
        "the token is not shown in the page"
    );
    let headline = region(&dom, "headline", "</dl>");
    assert_eq!(
        shown(headline, "data-metric", "received"),
        row["counts"]["received"].to_string()
    );
    assert_percent(
        shown(headline, "data-metric", "satisfaction_rate"),
        &row["rates"]["satisfaction_rate"],
        "kiosk satisfaction",
    );
    let overdue = region(&dom, "overdue-msg", "</p>");
    assert!(
        overdue.contains("aggregates only"),
        "lists are refused to the screen role: {overdue}"
    );
    assert!(rows(region(&dom, "overdue", "</table>"), "data-request-id").is_empty());

    app.teardown().await;
}
