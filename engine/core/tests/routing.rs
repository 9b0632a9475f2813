//! Routing through `decide`: a classification records the proposal of the most specific rule,
//! a referral that follows it records the rule, one that departs from a binding rule needs an
//! override reason, and a rule's `auto_dispatch` refers in the classification's own commit.

mod harness;

use engine_core::Stage;
use engine_core::calendar::BUILTIN_CN_2025_2026;
use engine_core::catalogue::BUILTIN_CATALOGUE;
use engine_core::directory::BUILTIN_DIRECTORY;
use engine_core::policy::{BUILTIN_COMMUNITY_STATION, Policy};
use harness::*;
use schemas::command::Refer;
use schemas::event::{RoutingDecision, RoutingProposal};
use schemas::{Command, Event};

/// The built-in catalogue with rules for the harness's item in its community and grid.
fn policy(extra_rules: &str) -> Policy {
    let catalogue = format!("{BUILTIN_CATALOGUE}\n{extra_rules}");
    Policy::from_files(
        ("profile.toml", BUILTIN_COMMUNITY_STATION),
        ("catalogue.toml", &catalogue),
        &[("cn.toml", BUILTIN_CN_2025_2026)],
        ("directory.toml", BUILTIN_DIRECTORY),
    )
    .expect("valid reference data")
}

const RULES: &str = r#"
[[routing]]
id = "um-sq-0101"
category = "urban-management"
area = "sq-0101"
lead = "urban-management"
assisting = ["community-station"]

[[routing]]
id = "vending-wg-010102"
item = "um-street-vending"
area = "wg-010102"
lead = "market-regulation"
auto_dispatch = true
"#;

fn classified(rules: &str) -> Harness {
    let mut h = Harness::new();
    h.policy = policy(rules);
    h.run(&intake(), receive_cmd(false));
    h.run(&station(), Command::Accept(Default::default()));
    h
}

fn refer(lead: &str, assisting: &[&str], reason: Option<&str>) -> Command {
    Command::Refer(Refer {
        lead_department: lead.into(),
        assisting_departments: assisting.iter().map(|s| s.to_string()).collect(),
        note: None,
        override_reason: reason.map(Into::into),
    })
}

fn decision(events: &[Event]) -> Option<RoutingDecision> {
    events.iter().find_map(|e| match e {
        Event::ReferredToDepartment(r) => r.routing.clone(),
        _ => None,
    })
}

#[test]
fn the_classification_records_the_proposal_and_a_referral_that_follows_it_names_the_rule() {
    let mut h = classified(RULES);
    let events = h.run(&station(), classify_cmd(None));
    let Event::RequestClassified(c) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        c.routing,
        Some(RoutingProposal {
            rule: "um-sq-0101".into(),
            lead: LEAD.into(),
            assisting: vec!["community-station".into()],
            binding: true,
            auto_dispatch: false,
        })
    );
    assert_eq!(events.len(), 1, "no automatic referral: {events:?}");
    let events = h.run(&station(), refer(LEAD, &["community-station"], None));
    assert_eq!(
        decision(&events),
        Some(RoutingDecision {
            rule: "um-sq-0101".into(),
            overridden: false,
            override_reason: None,
            automatic: false,
        })
    );
}

#[test]
fn departing_from_a_binding_rule_needs_a_reason_and_records_it() {
    let mut h = classified(RULES);
    h.run(&station(), classify_cmd(None));
    let refusal = h.refuse(
        &station(),
        refer(LEAD, &[], None),
        "override_reason_required",
    );
    assert_eq!(refusal.field(), Some("override_reason"));
    h.refuse(
        &station(),
        refer(OTHER, &["community-station"], Some("  ")),
        "override_reason_required",
    );
    // A reason while following the proposal overrides nothing.
    h.refuse(
        &station(),
        refer(LEAD, &["community-station"], Some("because")),
        "invalid_field",
    );
    let events = h.run(
        &station(),
        refer(
            LEAD,
            &[],
            Some("the community station is closed for renovation"),
        ),
    );
    assert_eq!(
        decision(&events),
        Some(RoutingDecision {
            rule: "um-sq-0101".into(),
            overridden: true,
            override_reason: Some("the community station is closed for renovation".into()),
            automatic: false,
        })
    );
}

#[test]
fn the_catalogue_suggestion_may_be_departed_from_without_a_reason() {
    let mut h = classified("");
    h.run(&station(), classify_cmd(None));
    let events = h.run(&station(), refer(OTHER, &[ASSISTING], None));
    assert_eq!(
        decision(&events),
        Some(RoutingDecision {
            rule: format!("catalogue:{ITEM}"),
            overridden: true,
            override_reason: None,
            automatic: false,
        })
    );
}

#[test]
fn an_auto_dispatch_rule_refers_in_the_classifications_commit_once() {
    let mut h = Harness::new();
    h.policy = policy(RULES);
    let Command::Receive(mut receive) = receive_cmd(false) else {
        unreachable!()
    };
    receive.location.grid = "wg-010102".into();
    h.run(&intake(), Command::Receive(receive));
    h.run(&station(), Command::Accept(Default::default()));
    let events = h.run(&station(), classify_cmd(None));
    assert_eq!(events.len(), 2, "{events:?}");
    let Event::ReferredToDepartment(r) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(r.lead_department, OTHER);
    assert_eq!(r.referral_number, 1);
    assert_eq!(
        r.routing,
        Some(RoutingDecision {
            rule: "vending-wg-010102".into(),
            overridden: false,
            override_reason: None,
            automatic: true,
        })
    );
    assert_eq!(h.stage(), Stage::Dispatched);
    // A reclassification later never refers again.
    h.run(&dept(OTHER), Command::SignFor(Default::default()));
    let events = h.run(&supervisor(), classify_cmd(Some("urgency was wrong")));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(h.stage(), Stage::SignedFor);
}
