//! Import under routing rules (docs/routing.md, docs/import.md): a historical referral that
//! departs from a binding rule needs the `override_reason` column, which the referral then
//! records; a row of an item whose rule dispatches at classification is referred by its
//! classification step alone, exactly once.

use std::collections::HashMap;

use engine_core::{Policy, Request};
use engine_service::import::plan::{decide_steps, plan_row};
use engine_service::import::row::{RawRow, parse_row};
use schemas::{Event, RequestId};
use tests::app::start_time;

/// One row, column → value; the shared columns of a referral in community sq-0101.
fn row(item: &str, department: &str, extra: &[(&str, &str)]) -> RawRow {
    let mut values: HashMap<String, String> = [
        ("external_id", format!("IMP-R-{item}-{department}")),
        ("channel", "hotline".into()),
        ("received_at", "2026-02-02 09:12".into()),
        ("street", "jd-01".into()),
        ("community", "sq-0101".into()),
        ("grid", "wg-010101".into()),
        ("text", "电梯困人".into()),
        ("accepted_at", "2026-02-02 09:20".into()),
        ("catalogue_item", item.into()),
        ("classified_at", "2026-02-02 09:35".into()),
        ("handling", "referral".into()),
        ("department", department.into()),
        ("referred_at", "2026-02-02 09:40".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        values.insert(k.to_string(), v.to_string());
    }
    RawRow { line: 2, values }
}

/// The events the row's steps record, or the row's error code and column.
fn decide(raw: RawRow) -> Result<Vec<Event>, (String, Option<String>)> {
    let policy = Policy::for_tests();
    let parsed = parse_row(&raw, &policy, start_time()).map_err(|e| (e.code, e.field))?;
    let plan = plan_row(parsed, "import", RequestId::from_u128(0x1A9));
    let decided = decide_steps(
        &plan,
        Request::new(plan.request_id),
        schemas::envelope::GENESIS_HASH.to_string(),
        &plan.steps,
        &policy,
        start_time(),
        &engine_log::clock::IdSource,
    )
    .map_err(|e| (e.code, e.field))?;
    Ok(decided
        .commits
        .into_iter()
        .flat_map(|c| c.events.into_iter().map(|e| e.event))
        .collect())
}

fn referrals(events: &[Event]) -> Vec<&schemas::event::ReferredToDepartment> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ReferredToDepartment(r) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn a_departure_from_a_binding_rule_needs_the_override_reason_column() {
    // The shipped rule: lift entrapment → market regulation with the property office assisting.
    let refused = decide(row("pm-lift-entrapment", "market-regulation", &[])).unwrap_err();
    assert_eq!(
        refused,
        (
            "override_reason_required".into(),
            Some("override_reason".into())
        )
    );
    let reason = "the 2025 system recorded no assisting unit";
    let events = decide(row(
        "pm-lift-entrapment",
        "market-regulation",
        &[("override_reason", reason)],
    ))
    .expect("imported");
    let routing = referrals(&events)[0]
        .routing
        .clone()
        .expect("a routing decision");
    assert_eq!(routing.rule, "r-lift-entrapment");
    assert!(routing.overridden);
    assert_eq!(routing.override_reason.as_deref(), Some(reason));
    // Following the rule needs no reason.
    let events = decide(row(
        "pm-lift-entrapment",
        "market-regulation",
        &[("assisting_departments", "property-office")],
    ))
    .expect("imported");
    assert!(!referrals(&events)[0].routing.as_ref().unwrap().overridden);
}

#[test]
fn an_auto_dispatched_item_is_referred_once_by_its_classification() {
    let events = decide(row("ut-gas-leak", "gas", &[])).expect("imported");
    let referred = referrals(&events);
    assert_eq!(referred.len(), 1, "{events:?}");
    assert!(referred[0].routing.as_ref().unwrap().automatic);
    let at = events
        .iter()
        .position(|e| matches!(e, Event::ReferredToDepartment(_)))
        .unwrap();
    assert!(matches!(events[at - 1], Event::RequestClassified(_)));
}
