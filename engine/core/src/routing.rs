//! Routing rules (派单规则): which unit leads a request of a category or item in an area of
//! the grid tree, and which units assist. Reference data, written in the catalogue file
//! (`[[routing]]`) and versioned with it.
//!
//! A rule names a subject (`item`, or `category`, or neither for every matter) and an area
//! (a street, community, grid or micro-grid code of the directory, or none for the whole
//! jurisdiction). For a request the most specific matching rule proposes the units: the
//! deeper area first (micro-grid > grid > community > street > jurisdiction), then the
//! narrower subject (item > category > every matter). Two rules with the same subject and
//! area are refused when the catalogue is loaded, so the choice is never ambiguous. Without a
//! matching rule the catalogue item's lead department is proposed as a suggestion only
//! (`catalogue:<item>`): a dispatcher may choose other units without giving a reason. A rule's
//! proposal binds: another choice is an override and needs a reason (`override_reason`).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use schemas::GridPath;
use schemas::event::RoutingProposal;
use serde::{Deserialize, Serialize};

use crate::catalogue::Item;
use crate::directory::Directory;

/// A routing rule as written in the catalogue file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRuleFile {
    /// Stable rule id, recorded on every referral it proposes (e.g. `r-um-street-010102`).
    pub id: String,
    /// A catalogue item id; with `category` absent. Neither: every matter.
    #[serde(default)]
    pub item: Option<String>,
    /// A category id; with `item` absent.
    #[serde(default)]
    pub category: Option<String>,
    /// A street, community, grid or micro-grid code of the directory; absent: everywhere.
    #[serde(default)]
    pub area: Option<String>,
    /// The lead department (主办), a directory code.
    pub lead: String,
    /// Assisting departments (协办), directory codes.
    #[serde(default)]
    pub assisting: Vec<String>,
    /// Refer at classification without a dispatcher (自动派单).
    #[serde(default)]
    pub auto_dispatch: bool,
}

/// What a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject {
    Everything,
    Category(String),
    Item(String),
}

/// A validated routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingRule {
    id: String,
    subject: Subject,
    /// The area's code and its depth in the grid tree (1 street … 4 micro-grid), resolved
    /// once at load.
    area: Option<(String, u8)>,
    lead: String,
    assisting: Vec<String>,
    auto_dispatch: bool,
}

/// The validated routing rules of a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingTable {
    rules: Vec<RoutingRule>,
}

/// Why a routing rule was refused at load: the field and the reason.
pub type RuleError = (String, &'static str, String);

impl RoutingTable {
    /// Validates `rules` against the directory and the catalogue's categories and items.
    pub fn validate(
        rules: &[RoutingRuleFile],
        directory: &Directory,
        knows_item: impl Fn(&str) -> bool,
        knows_category: impl Fn(&str) -> bool,
    ) -> Result<RoutingTable, RuleError> {
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let mut table = RoutingTable::default();
        for raw in rules {
            let fail = |field: &'static str, reason: String| Err((raw.id.clone(), field, reason));
            if raw.id.trim().is_empty() {
                return fail("id", "must not be empty".into());
            }
            if !ids.insert(raw.id.clone()) {
                return fail("id", "duplicate rule id".into());
            }
            let subject = match (&raw.item, &raw.category) {
                (Some(_), Some(_)) => {
                    return fail("item", "give item or category, not both".into());
                }
                (Some(item), None) if !knows_item(item) => {
                    return fail("item", format!("unknown catalogue item {item:?}"));
                }
                (None, Some(c)) if !knows_category(c) => {
                    return fail("category", format!("unknown category {c:?}"));
                }
                (Some(item), None) => Subject::Item(item.clone()),
                (None, Some(c)) => Subject::Category(c.clone()),
                (None, None) => Subject::Everything,
            };
            let area = match &raw.area {
                None => None,
                Some(code) => match directory.area_depth(code) {
                    Some(depth) => Some((code.clone(), depth)),
                    None => return fail("area", format!("unknown grid-tree code {code:?}")),
                },
            };
            if !directory.knows_department(&raw.lead) {
                return fail("lead", format!("unknown department {:?}", raw.lead));
            }
            let mut seen = BTreeSet::from([raw.lead.as_str()]);
            for a in &raw.assisting {
                if !directory.knows_department(a) {
                    return fail("assisting", format!("unknown department {a:?}"));
                }
                if !seen.insert(a) {
                    return fail("assisting", format!("names {a:?} twice or as the lead"));
                }
            }
            if !keys.insert((subject.clone(), raw.area.clone())) {
                return fail("area", "another rule has the same subject and area".into());
            }
            table.rules.push(RoutingRule {
                id: raw.id.clone(),
                subject,
                area,
                lead: raw.lead.clone(),
                assisting: raw.assisting.clone(),
                auto_dispatch: raw.auto_dispatch,
            });
        }
        Ok(table)
    }

    /// How many rules the table holds.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether the table holds no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The proposal for a request under `item` located at `location`: the most specific
    /// matching rule's, else the item's lead department as a non-binding suggestion.
    pub fn propose(&self, item: &Item, location: &GridPath) -> RoutingProposal {
        let matched = self
            .rules
            .iter()
            .filter(|r| r.subject_matches(item))
            .filter_map(|r| r.area_depth(location).map(|depth| (depth, r)))
            .max_by_key(|(depth, r)| (*depth, r.subject.clone()));
        match matched {
            Some((_, rule)) => RoutingProposal {
                rule: rule.id.clone(),
                lead: rule.lead.clone(),
                assisting: rule.assisting.clone(),
                binding: true,
                auto_dispatch: rule.auto_dispatch,
            },
            None => RoutingProposal {
                rule: format!("catalogue:{}", item.id),
                lead: item.departments[0].clone(),
                assisting: Vec::new(),
                binding: false,
                auto_dispatch: false,
            },
        }
    }
}

impl RoutingRule {
    fn subject_matches(&self, item: &Item) -> bool {
        match &self.subject {
            Subject::Everything => true,
            Subject::Category(c) => *c == item.category,
            Subject::Item(i) => *i == item.id,
        }
    }

    /// How deep the rule's area is when it contains `location` (0: everywhere), else `None`.
    fn area_depth(&self, location: &GridPath) -> Option<u8> {
        let Some((code, depth)) = &self.area else {
            return Some(0);
        };
        [
            Some(&location.street),
            Some(&location.community),
            Some(&location.grid),
            location.micro_grid.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|c| c == code)
        .then_some(*depth)
    }
}

#[cfg(test)]
mod tests;
