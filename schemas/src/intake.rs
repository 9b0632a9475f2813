//! The intake document upstream systems (hotline platforms, windows, apps, grid patrols) submit.
//!
//! Unlike [`crate::command::Receive`], it carries the resident's contact data. The engine stores
//! that in the separate contact store and puts only a reference into the event log.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::*;

/// A resident's contact data (personal information under PIPL). Never enters an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResidentContact {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Phone number.
    #[serde(default)]
    pub phone: Option<String>,
    /// ID number (collect only where the catalogue item requires it).
    #[serde(default)]
    pub id_number: Option<String>,
    /// Exact address.
    #[serde(default)]
    pub address_detail: Option<String>,
}

/// A new request as submitted by an upstream system (`POST /api/v1/requests`,
/// `bianmin.intake.<channel>`, `bianmin.inbox.<channel>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeDocument {
    /// Intake channel (over NATS it must match the subject's channel).
    pub channel: Channel,
    /// The upstream ticket id (1..=128 chars). With the channel, the idempotency key:
    /// the same pair always yields the same request.
    pub external_id: String,
    /// Contact data; required unless `anonymous`.
    #[serde(default)]
    pub contact: Option<ResidentContact>,
    /// Anonymous: never contacted by handling units.
    #[serde(default)]
    pub anonymous: bool,
    /// Confidential handling requested.
    #[serde(default)]
    pub confidential: bool,
    /// No reply / callback requested.
    #[serde(default)]
    pub no_reply_requested: bool,
    /// Location in the grid tree.
    pub location: GridPath,
    /// The matter in the resident's words (1..=10000 chars).
    pub text: String,
    /// Attachments by reference.
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
    /// Priority lanes.
    #[serde(default)]
    pub priority_lanes: Vec<PriorityLane>,
    /// Service flow or dispute mediation.
    #[serde(default)]
    pub kind: RequestKind,
    /// When the resident raised it; defaults to the time of receipt.
    #[serde(default)]
    pub raised_at: Option<Timestamp>,
}
