//! The sets of stages in which command families apply: the stage half of the decide table.

use super::Stage;
use super::Stage::*;

/// Stages where the handling unit works on the request.
pub(super) const WORKING: &[Stage] = &[
    DirectHandling,
    ProxyHandling,
    SignedFor,
    Contacted,
    InProgress,
];
/// Accepted and not yet replied.
pub(super) const BEFORE_REPLY: &[Stage] = &[
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Where a request may be linked to or merged into an original: live and not yet replied.
pub(super) const LINKABLE: &[Stage] = &[
    Received,
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Accepted and not archived (nor declined).
pub(super) const OPEN: &[Stage] = &[
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
/// Classified and not yet replied: a whistle may be blown and answered.
pub(super) const WHISTLE: &[Stage] = &[
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
];
/// Where a department that reported on a whistle may be rated.
pub(super) const RATE_DEPARTMENT: &[Stage] = &[
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
/// Where supervision commands apply.
pub(super) const SUPERVISED: &[Stage] = &[
    Received,
    Accepted,
    Classified,
    DirectHandling,
    ProxyHandling,
    Dispatched,
    ReturnRequested,
    SignedFor,
    Contacted,
    InProgress,
    TerminationPending,
    Replied,
    AwaitingCallback,
    Rated,
];
