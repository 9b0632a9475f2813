//! The stages of a request's life (HOTLINE_PRACTICE §2.1, adapted): the state machine's
//! states, their wire names and the groups the rules ask about.

/// Where a request is in its life (HOTLINE_PRACTICE §2.1, adapted; see `docs/state-machine.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Nothing recorded yet: the request does not exist.
    New,
    /// Received from a channel (已接收).
    Received,
    /// Accepted by the first-contact worker, who owns it (已受理).
    Accepted,
    /// Not accepted, with a disposition (不予受理); only archiving follows.
    NotAccepted,
    /// Transferred to an emergency line (转紧急热线); only archiving follows.
    TransferredEmergency,
    /// Linked to its original as a duplicate (重复诉求); only archiving follows.
    LinkedDuplicate,
    /// Merged into a live original (并案): it follows the original; only archiving and
    /// corrections follow.
    Merged,
    /// Registered and classified, deadlines stamped (登记分类).
    Classified,
    /// Handled by the station itself (直接办理; for a dispute: mediation).
    DirectHandling,
    /// Proxy-handled by the station with a department (代办).
    ProxyHandling,
    /// Referred to a lead department, awaiting sign-off (已派单).
    Dispatched,
    /// The lead department returned the referral (退单申请).
    ReturnRequested,
    /// The lead department signed for it (已签收).
    SignedFor,
    /// The handling unit contacted the resident (已响应).
    Contacted,
    /// Handling (办理中).
    InProgress,
    /// Termination requested, awaiting the centre (终止办理申请).
    TerminationPending,
    /// The result was replied, awaiting the centre's review (已反馈, 审核).
    Replied,
    /// Review passed, awaiting the callback and rating (待回访).
    AwaitingCallback,
    /// The resident rated the handling (已评价).
    Rated,
    /// Archived (归档): terminal; only corrections are recorded.
    Archived,
}

impl Stage {
    /// Every stage, in lifecycle order.
    pub const ALL: [Stage; 20] = [
        Stage::New,
        Stage::Received,
        Stage::Accepted,
        Stage::NotAccepted,
        Stage::TransferredEmergency,
        Stage::LinkedDuplicate,
        Stage::Merged,
        Stage::Classified,
        Stage::DirectHandling,
        Stage::ProxyHandling,
        Stage::Dispatched,
        Stage::ReturnRequested,
        Stage::SignedFor,
        Stage::Contacted,
        Stage::InProgress,
        Stage::TerminationPending,
        Stage::Replied,
        Stage::AwaitingCallback,
        Stage::Rated,
        Stage::Archived,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Received => "received",
            Stage::Accepted => "accepted",
            Stage::NotAccepted => "not_accepted",
            Stage::TransferredEmergency => "transferred_emergency",
            Stage::LinkedDuplicate => "linked_duplicate",
            Stage::Merged => "merged",
            Stage::Classified => "classified",
            Stage::DirectHandling => "direct_handling",
            Stage::ProxyHandling => "proxy_handling",
            Stage::Dispatched => "dispatched",
            Stage::ReturnRequested => "return_requested",
            Stage::SignedFor => "signed_for",
            Stage::Contacted => "contacted",
            Stage::InProgress => "in_progress",
            Stage::TerminationPending => "termination_pending",
            Stage::Replied => "replied",
            Stage::AwaitingCallback => "awaiting_callback",
            Stage::Rated => "rated",
            Stage::Archived => "archived",
        }
    }

    /// Whether the request was replied (or went further) in this stage.
    pub fn is_replied(self) -> bool {
        matches!(
            self,
            Stage::Replied | Stage::AwaitingCallback | Stage::Rated | Stage::Archived
        )
    }
}
