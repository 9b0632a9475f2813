//! The profile's rules for assisting units (协办) and the callback (回访): the limit each
//! assisting department has for its part, what the lead's reply does about parts not
//! reported, and the limit after the reply within which the callback counts as timely.
//!
//! Both sections are optional in a profile file; their defaults are written here and in the
//! built-in profiles (`deploy/policy/profiles/`), marked [U] (no verified source).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{LoadError, Policy};
use crate::catalogue::{Limit, LimitFile, LimitUnit};
use schemas::Timestamp;

/// What the lead's reply does while assisting parts are neither reported nor returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AtReply {
    /// The reply is refused until every assisting part is reported or returned.
    Wait,
    /// The reply goes ahead and records which assisting parts were absent.
    #[default]
    RecordAbsence,
}

/// `[assistance]` in a profile file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssistanceFile {
    /// Limit from the referral for each assisting department's sign-off and report.
    #[serde(default = "default_assistance_report")]
    pub report: LimitFile,
    /// What the lead's reply does about parts not reported.
    #[serde(default)]
    pub at_reply: AtReply,
}

impl Default for AssistanceFile {
    fn default() -> Self {
        AssistanceFile {
            report: default_assistance_report(),
            at_reply: AtReply::default(),
        }
    }
}

/// `[callback]` in a profile file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackFile {
    /// Limit after the reply within which a callback attempt counts as timely.
    #[serde(default = "default_callback_limit")]
    pub within: LimitFile,
}

impl Default for CallbackFile {
    fn default() -> Self {
        CallbackFile {
            within: default_callback_limit(),
        }
    }
}

fn default_assistance_report() -> LimitFile {
    LimitFile {
        amount: 3,
        unit: LimitUnit::WorkingDays,
    }
}

fn default_callback_limit() -> LimitFile {
    LimitFile {
        amount: 2,
        unit: LimitUnit::WorkingDays,
    }
}

/// The validated participation rules of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participation {
    /// Each assisting department's limit, from the referral.
    pub assistance_report: Limit,
    /// What the reply does about parts not reported.
    pub at_reply: AtReply,
    /// Timely-callback limit, from the reply.
    pub callback_within: Limit,
}

impl Participation {
    /// Validates the two sections; `invalid` labels errors with the profile.
    pub(super) fn parse(
        assistance: AssistanceFile,
        callback: CallbackFile,
        invalid: impl Fn(&str, String) -> LoadError,
    ) -> Result<Participation, LoadError> {
        Ok(Participation {
            assistance_report: Limit::from_file(assistance.report)
                .map_err(|r| invalid("assistance.report.amount", r))?,
            at_reply: assistance.at_reply,
            callback_within: Limit::from_file(callback.within)
                .map_err(|r| invalid("callback.within.amount", r))?,
        })
    }
}

impl Policy {
    /// The participation rules of the profile in force.
    pub fn participation(&self) -> &Participation {
        &self.profile.participation
    }

    /// When the assisting departments' parts of a referral made at `referred_at` are due.
    pub fn assistance_due(&self, referred_at: Timestamp) -> Timestamp {
        self.profile
            .participation
            .assistance_report
            .due(&self.calendar, referred_at)
    }

    /// Until when a callback after a reply made at `replied_at` counts as timely.
    pub fn callback_due(&self, replied_at: Timestamp) -> Timestamp {
        self.profile
            .participation
            .callback_within
            .due(&self.calendar, replied_at)
    }
}
