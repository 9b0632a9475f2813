//! The `[open311]` section of the configuration.

use chrono::FixedOffset;
use serde::{Deserialize, Serialize};

/// The `[open311]` section of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Open311Config {
    /// Serve the Open311 routes.
    pub enabled: bool,
    /// This deployment's jurisdiction; a call naming another `jurisdiction_id` gets 404.
    pub jurisdiction_id: String,
    /// Grid code used when a request names no `attribute[grid]` (the grid tree has no
    /// geometry, so coordinates cannot be mapped to a grid). `None`: the attribute is required.
    pub default_grid: Option<String>,
    /// UTC offset of the date-times answered, e.g. `+08:00`.
    pub utc_offset: String,
    /// Most requests one `GET requests.json` answers (newest first).
    pub list_limit: usize,
    /// Days back a `GET requests.json` without `start_date` looks.
    pub list_days: u32,
    /// The discovery document's `contact`: who to ask about the API.
    pub contact: String,
    /// The discovery document's `key_service`: how a client gets an `api_key`.
    pub key_service: String,
    /// The endpoint's public base URL in the discovery document (e.g.
    /// `https://311.example.gov.cn/open311/v2`); `None`: derived from the request's `Host`.
    pub base_url: Option<String>,
}

impl Default for Open311Config {
    fn default() -> Self {
        Open311Config {
            enabled: true,
            jurisdiction_id: "bianmin.local".into(),
            default_grid: None,
            utc_offset: "+08:00".into(),
            list_limit: 200,
            list_days: 90,
            contact: "Ask the operator of this deployment.".into(),
            key_service: "api_key is an API token with the intake_system role, issued by the operator of this deployment.".into(),
            base_url: None,
        }
    }
}

impl Open311Config {
    /// Checks ranges types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.jurisdiction_id.trim().is_empty() {
            return Err("open311.jurisdiction_id must not be empty".into());
        }
        if self.utc_offset.parse::<FixedOffset>().is_err() {
            return Err("open311.utc_offset must look like +08:00".into());
        }
        if self.list_limit == 0 || self.list_limit > 1000 {
            return Err("open311.list_limit must be between 1 and 1000".into());
        }
        if self.list_days == 0 {
            return Err("open311.list_days must be positive".into());
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("open311.base_url must be an http(s) URL".into());
        }
        Ok(())
    }
}
