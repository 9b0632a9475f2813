//! The routing table: which rule is the most specific, and what a load refuses.

use schemas::GridPath;

use crate::catalogue::Catalogue;
use crate::directory::Directory;

const ITEMS: &str = r#"
version = "t.1"
[[categories]]
id = "urban"
name = "Urban"
[[categories.items]]
id = "vending"
name = "Vending"
departments = ["urban-management", "street-office"]
handling_mode = "referral"
default_urgency = "general"
escalation_chain = ["street"]
[[categories.items]]
id = "litter"
name = "Litter"
departments = ["sanitation"]
handling_mode = "referral"
default_urgency = "general"
escalation_chain = ["street"]
"#;

fn catalogue(rules: &str) -> Result<Catalogue, String> {
    let text = format!("{ITEMS}\n{rules}");
    Catalogue::parse("catalogue.toml", &text, &Directory::builtin()).map_err(|e| e.to_string())
}

fn at(street: &str, community: &str, grid: &str, micro: Option<&str>) -> GridPath {
    GridPath {
        street: street.into(),
        community: community.into(),
        grid: grid.into(),
        micro_grid: micro.map(Into::into),
    }
}

fn proposed(c: &Catalogue, item: &str, place: &GridPath) -> (String, String, Vec<String>, bool) {
    let p = c.routing().propose(c.item(item).expect("item"), place);
    (p.rule, p.lead, p.assisting, p.binding)
}

const RULES: &str = r#"
[[routing]]
id = "everything-jd-01"
area = "jd-01"
lead = "street-office"

[[routing]]
id = "urban-everywhere"
category = "urban"
lead = "urban-management"

[[routing]]
id = "urban-sq-0101"
category = "urban"
area = "sq-0101"
lead = "urban-management"
assisting = ["community-station"]

[[routing]]
id = "vending-sq-0101"
item = "vending"
area = "sq-0101"
lead = "market-regulation"

[[routing]]
id = "urban-wwg"
category = "urban"
area = "wwg-01010101"
lead = "property-office"
auto_dispatch = true
"#;

#[test]
fn the_deepest_area_wins_then_the_narrower_subject() {
    let c = catalogue(RULES).expect("valid");
    let micro = at("jd-01", "sq-0101", "wg-010101", Some("wwg-01010101"));
    assert_eq!(proposed(&c, "vending", &micro).0, "urban-wwg");
    // Same area: the item's rule beats the category's.
    let grid = at("jd-01", "sq-0101", "wg-010102", None);
    assert_eq!(proposed(&c, "vending", &grid).0, "vending-sq-0101");
    assert_eq!(
        proposed(&c, "litter", &grid),
        (
            "urban-sq-0101".into(),
            "urban-management".into(),
            vec!["community-station".into()],
            true
        )
    );
    // A street rule for every matter is deeper than a category rule for the jurisdiction.
    let street = at("jd-01", "sq-0102", "wg-010201", None);
    assert_eq!(proposed(&c, "litter", &street).0, "everything-jd-01");
    let elsewhere = at("jd-02", "sq-0201", "wg-020101", None);
    assert_eq!(proposed(&c, "litter", &elsewhere).0, "urban-everywhere");
}

#[test]
fn without_a_rule_the_catalogue_lead_is_a_suggestion() {
    let c = catalogue("").expect("valid");
    let place = at("jd-02", "sq-0201", "wg-020101", None);
    assert_eq!(
        proposed(&c, "vending", &place),
        (
            "catalogue:vending".into(),
            "urban-management".into(),
            vec![],
            false
        )
    );
    assert!(c.routing().is_empty());
}

#[test]
fn bad_rules_are_refused_with_the_rule_and_field_named() {
    let rule = |body: &str| format!("[[routing]]\nid = \"r\"\n{body}\n");
    for (body, field) in [
        ("lead = \"nobody\"", "lead"),
        ("item = \"nothing\"\nlead = \"water\"", "item"),
        ("category = \"nothing\"\nlead = \"water\"", "category"),
        (
            "item = \"vending\"\ncategory = \"urban\"\nlead = \"water\"",
            "item",
        ),
        ("area = \"nowhere\"\nlead = \"water\"", "area"),
        ("lead = \"water\"\nassisting = [\"water\"]", "assisting"),
        (
            "lead = \"water\"\nassisting = [\"gas\", \"gas\"]",
            "assisting",
        ),
        ("lead = \"water\"\nassisting = [\"nobody\"]", "assisting"),
    ] {
        let error = catalogue(&rule(body)).expect_err(body);
        assert!(
            error.contains("routing rule \"r\"") && error.contains(field),
            "{body}: {error}"
        );
    }
    let twice = format!(
        "{}{}",
        rule("category = \"urban\"\nlead = \"water\""),
        "[[routing]]\nid = \"s\"\ncategory = \"urban\"\nlead = \"gas\"\n"
    );
    assert!(
        catalogue(&twice)
            .expect_err("ambiguous")
            .contains("same subject and area")
    );
    let same_id = format!(
        "{}{}",
        rule("lead = \"water\""),
        rule("lead = \"gas\"\narea = \"jd-01\"")
    );
    assert!(
        catalogue(&same_id)
            .expect_err("same id")
            .contains("duplicate rule id")
    );
    let unknown = rule("lead = \"water\"\nteam = \"x\"");
    assert!(catalogue(&unknown).is_err());
}
