//! Routing end to end, on both log stores: a classification records the proposal of the most
//! specific routing rule (visible in the request and in its replayed history), a referral that
//! departs from it without a reason is refused and records nothing, one that follows it is
//! delivered to the lead's and the assisting unit's webhooks once each, a rule's
//! `auto_dispatch` refers at classification, and a redispatch after a return records the
//! supervisor's override reason.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tests::app::{Store, TestApp, actors, external_id, intake_document, spawn_app_with};

use crate::e2e_supervision::{events, get_json, ok, refused, wait_caught_up};
use crate::unit_delivery::{Hook, unit_messages, wait_until};

const RULES: &str = r#"
[[routing]]
id = "um-sq-0101"
category = "urban-management"
area = "sq-0101"
lead = "urban-management"
assisting = ["sanitation"]

[[routing]]
id = "vending-wg-010103"
item = "um-street-vending"
area = "wg-010103"
lead = "urban-management"
assisting = ["water"]
auto_dispatch = true
"#;

const SANITATION: &str = "handler-wu;department_handler;sanitation";

/// The built-in catalogue with [`RULES`], and webhooks for the two departments.
fn reference_files(
    dir: &std::path::Path,
    lead: &Hook,
    assisting: &Hook,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let catalogue = dir.join("catalogue.toml");
    let text = engine_core::catalogue::BUILTIN_CATALOGUE
        .replace("version = \"2026.4\"", "version = \"2026.4-routing\"");
    std::fs::write(&catalogue, format!("{text}\n{RULES}")).unwrap();
    let hook = |unit: &str, name: &str, url: &str| {
        format!(
            "[[units]]\nunit = \"{unit}\"\n[[units.webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret = \"units\"\n"
        )
    };
    let channels = dir.join("channels.toml");
    let text = format!(
        "version = \"routing-1\"\nnats_all = true\n{}{}",
        hook("department:urban-management", "um", &lead.url),
        hook("department:sanitation", "sanitation", &assisting.url),
    );
    std::fs::write(&channels, text).unwrap();
    (catalogue, channels)
}

/// A request received in `grid` of community sq-0101, accepted and classified as street vending.
async fn classified_in(app: &TestApp, grid: &str) -> (String, Value) {
    let mut document = intake_document(&external_id());
    document["location"]["grid"] = json!(grid);
    let (status, created) = app.intake(&document).await;
    assert_eq!(status, 201, "{created}");
    let id = created["request_id"].as_str().expect("id").to_string();
    ok(app, &id, "accept", actors::STATION, json!({})).await;
    let answer = ok(
        app,
        &id,
        "classify",
        actors::STATION,
        json!({"catalogue_item": "um-street-vending", "request_type": "complaint"}),
    )
    .await;
    (id, answer)
}

fn routing_of(events: &[Value]) -> Value {
    events.last().expect("an event")["data"]["routing"].clone()
}

async fn routing_rules_choose_record_and_deliver(store: Store) {
    let (lead, assisting) = (Hook::start(false).await, Hook::start(false).await);
    let dir = tempfile::tempdir().unwrap();
    let (catalogue, channels) = reference_files(dir.path(), &lead, &assisting);
    let app = spawn_app_with(store, |config| {
        config.projections.enabled = true;
        config.policy.catalogue_file = Some(catalogue);
        config.notify.poll_interval_ms = 50;
        config.notify.channels_file = Some(channels);
        config.notify.channel_secrets = BTreeMap::from([("units".into(), "unit-s3cret".into())]);
    })
    .await;

    // The classification records the community's rule as a binding proposal.
    let (id, _) = classified_in(&app, "wg-010102").await;
    let proposal = json!({"rule": "um-sq-0101", "lead": "urban-management", "assisting": ["sanitation"], "binding": true});
    assert_eq!(
        routing_of(&events(&app, &id, "request_classified").await),
        proposal
    );
    let (status, request) =
        get_json(&app, &format!("/api/v1/requests/{id}"), actors::STATION).await;
    assert_eq!(status, 200, "{request}");
    assert_eq!(
        request["state"]["classification"]["routing"], proposal,
        "{request}"
    );

    // Other units without a reason: refused, nothing recorded.
    let answer = refused(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management"}),
        (422, "override_reason_required"),
    )
    .await;
    assert_eq!(answer["field"], "override_reason", "{answer}");
    // Following the rule: recorded with it, and delivered to both units once.
    ok(
        &app,
        &id,
        "refer",
        actors::STATION,
        json!({"lead_department": "urban-management", "assisting_departments": ["sanitation"]}),
    )
    .await;
    let referrals = events(&app, &id, "referred_to_department").await;
    assert_eq!(
        routing_of(&referrals),
        json!({"rule": "um-sq-0101", "overridden": false})
    );
    let once = BTreeMap::from([("dispatch".to_string(), 1)]);
    wait_until("the lead's dispatch", || async { lead.kinds() == once }).await;
    wait_until("the assisting unit's dispatch", || async {
        assisting.kinds() == once
    })
    .await;
    let doc = assisting.accepted.lock().unwrap()[0].clone();
    assert_eq!(
        (doc["unit"].as_str(), doc["request_id"].as_str()),
        (Some("department:sanitation"), Some(id.as_str())),
        "{doc}"
    );

    // The lead returns it; the supervisor's redispatch departs from the rule: a reason is due.
    ok(
        &app,
        &id,
        "return_referral",
        actors::URBAN,
        json!({"reason": "a market matter"}),
    )
    .await;
    refused(
        &app,
        &id,
        "refer",
        actors::SUPERVISOR,
        json!({"lead_department": "market-regulation"}),
        (422, "override_reason_required"),
    )
    .await;
    let reason = "returned by urban management: the stalls sit inside the market";
    ok(
        &app,
        &id,
        "refer",
        actors::SUPERVISOR,
        json!({"lead_department": "market-regulation", "override_reason": reason}),
    )
    .await;
    let referrals = events(&app, &id, "referred_to_department").await;
    assert_eq!(
        routing_of(&referrals),
        json!({"rule": "um-sq-0101", "overridden": true, "override_reason": reason})
    );

    // The new lead's worklist says which rule was overridden.
    wait_caught_up(&app).await;
    let market = "handler-ma;department_handler;market-regulation";
    let (status, list) = get_json(
        &app,
        "/api/v1/worklists/departments/market-regulation",
        market,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let row = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|r| r["request_id"] == id.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("listed for market regulation: {list}"));
    assert_eq!(
        (
            row["routing_rule"].as_str(),
            row["routing_overridden"].as_bool()
        ),
        (Some("um-sq-0101"), Some(true)),
        "{row}"
    );

    // Auto-dispatch: classified in the rule's grid, the request is dispatched in the same commit.
    let (auto, _) = classified_in(&app, "wg-010103").await;
    let (_, request) = get_json(
        &app,
        &format!("/api/v1/requests/{auto}"),
        actors::SUPERVISOR,
    )
    .await;
    assert_eq!(request["stage"], "dispatched", "{request}");
    let history = app.history(&auto).await;
    let classified = history
        .iter()
        .position(|e| e["type"] == "request_classified")
        .unwrap();
    let referral = &history[classified + 1];
    assert_eq!(referral["type"], "referred_to_department", "{history:?}");
    assert_eq!(
        referral["position"], history[classified]["position"],
        "one commit"
    );
    assert_eq!(
        referral["data"]["routing"],
        json!({"rule": "vending-wg-010103", "overridden": false, "automatic": true})
    );
    assert_eq!(referral["data"]["assisting_departments"], json!(["water"]));
    let twice = BTreeMap::from([("dispatch".to_string(), 2)]);
    wait_until("the automatic dispatch delivered", || async {
        lead.kinds() == twice
    })
    .await;

    if store == Store::Nats {
        let prefix = app.config.nats.subject_prefix.clone();
        let water = format!("{prefix}.units.department.water.dispatch");
        wait_until("the assisting unit's subject", || async {
            unit_messages(&app)
                .await
                .iter()
                .any(|(s, d)| *s == water && d["request_id"] == auto.as_str())
        })
        .await;
        let js =
            async_nats::jetstream::new(async_nats::connect(tests::app::NATS_URL).await.unwrap());
        let _ = js.delete_stream(app.names().units_stream()).await;
    }
    // The redispatch named no assisting unit: sanitation's part ended with the first referral.
    refused(
        &app,
        &id,
        "sign_assistance",
        SANITATION,
        json!({}),
        (403, "not_addressed_to_you"),
    )
    .await;
    app.teardown().await;
}

tests::on_both_stores!(routing_rules_choose_record_and_deliver);
