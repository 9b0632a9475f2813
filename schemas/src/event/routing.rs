//! How a request's units are chosen (派单): the routing proposal recorded at classification and
//! the routing decision recorded on every referral, so that replay shows why a unit got it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The units a routing rule (or, without one, the catalogue item) proposes for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingProposal {
    /// The rule's id; `catalogue:<item id>` when no routing rule matched and the catalogue
    /// item's lead department is suggested.
    pub rule: String,
    /// The proposed lead department (主办).
    pub lead: String,
    /// The proposed assisting departments (协办).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assisting: Vec<String>,
    /// True for a routing rule's proposal: choosing other units is an override that needs a
    /// reason. False for the catalogue's suggestion.
    pub binding: bool,
    /// The rule refers the request at classification, without a dispatcher (自动派单).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_dispatch: bool,
}

/// Why a referral went to its units: the proposal it followed or overrode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingDecision {
    /// The proposing rule's id (as in [`RoutingProposal::rule`]).
    pub rule: String,
    /// The units differ from the proposal.
    pub overridden: bool,
    /// The dispatcher's reason for choosing other units (required to override a binding rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// The engine referred at classification under the rule's `auto_dispatch`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub automatic: bool,
}
