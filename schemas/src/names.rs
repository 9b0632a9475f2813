//! Every NATS name an engine instance uses — subjects, streams, consumers, queue groups —
//! derived from the instance's two configured names: its subject prefix (`nats.subject_prefix`)
//! and its event stream (`nats.stream`).
//!
//! This module is the only place such names are spelled. Two jurisdictions on one NATS server
//! (prefixes `yc` and `sz`) therefore never share a stream, a durable consumer or a subject:
//! streams are the prefix upper-cased (`YC_INBOX`), consumers and queue groups start with the
//! prefix (`yc-engine`), and subjects start with the prefix token (`yc.intake.hotline`). With
//! the default prefix `bianmin` every name is the one earlier releases used
//! (`BIANMIN_INBOX`, `bianmin-engine`, …), so existing deployments keep their streams.
//!
//! The prefix is one subject token: ASCII letters, digits, `-` and `_`. Stream names may not
//! contain `.`, `*`, `>`, whitespace or path separators; [`Names::new`] refuses them.

use std::fmt;

/// The names of one engine instance. Cheap to clone; build it once from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
    stream_prefix: String,
    events_stream: String,
}

/// Why a configured prefix or stream name cannot name NATS subjects and streams.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The subject prefix is empty or not a single subject token of `[A-Za-z0-9_-]`.
    #[error("subject prefix `{0}` must be one token of ASCII letters, digits, `-` or `_`")]
    Prefix(String),
    /// The stream name is empty or holds a character JetStream refuses in stream names.
    #[error("stream name `{0}` must be non-empty ASCII without `.`, `*`, `>`, `/`, `\\` or spaces")]
    Stream(String),
}

impl NameError {
    /// The configuration key the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            NameError::Prefix(_) => "nats.subject_prefix",
            NameError::Stream(_) => "nats.stream",
        }
    }
}

impl Default for Names {
    /// The default instance: prefix `bianmin`, event stream `BIANMIN_EVENTS`.
    fn default() -> Names {
        Names::new(DEFAULT_PREFIX, DEFAULT_EVENTS_STREAM).expect("the defaults are valid names")
    }
}

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "bianmin";
/// The default event stream.
pub const DEFAULT_EVENTS_STREAM: &str = "BIANMIN_EVENTS";

impl Names {
    /// The names of the instance with subject prefix `prefix` and event stream `events_stream`.
    pub fn new(prefix: &str, events_stream: &str) -> Result<Names, NameError> {
        let token_ok = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !token_ok {
            return Err(NameError::Prefix(prefix.to_string()));
        }
        if !valid_stream(events_stream) {
            return Err(NameError::Stream(events_stream.to_string()));
        }
        let stream_prefix = prefix
            .chars()
            .map(|c| match c {
                c if c.is_ascii_alphanumeric() => c.to_ascii_uppercase(),
                _ => '_',
            })
            .collect();
        Ok(Names {
            prefix: prefix.to_string(),
            stream_prefix,
            events_stream: events_stream.to_string(),
        })
    }

    /// The default names with another subject prefix and the event stream `<PREFIX>_EVENTS`
    /// (tests isolate themselves this way).
    pub fn for_prefix(prefix: &str) -> Result<Names, NameError> {
        let upper: String = prefix
            .chars()
            .map(|c| match c {
                c if c.is_ascii_alphanumeric() => c.to_ascii_uppercase(),
                _ => '_',
            })
            .collect();
        Names::new(prefix, &format!("{upper}_EVENTS"))
    }

    /// The subject prefix, the first token of every subject.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn stream(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.stream_prefix)
    }

    // --- the event log -------------------------------------------------------------------

    /// The event stream (`nats.stream`).
    pub fn events_stream(&self) -> &str {
        &self.events_stream
    }

    /// `<prefix>.events`: a request's commits go to `<prefix>.events.<request id>`.
    pub fn events_subject_prefix(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// `<prefix>.events.<request id>`.
    pub fn event_subject(&self, request: impl fmt::Display) -> String {
        format!("{}.events.{request}", self.prefix)
    }

    /// `<prefix>.events.>`, what the event stream captures.
    pub fn events_wildcard(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `<PREFIX>_COMMANDS`: the key-value bucket binding each command id to its request and
    /// command for good (its stream is [`Names::commands_bucket_stream`]).
    pub fn commands_bucket(&self) -> String {
        self.stream("COMMANDS")
    }

    /// `KV_<PREFIX>_COMMANDS`, the stream holding [`Names::commands_bucket`].
    pub fn commands_bucket_stream(&self) -> String {
        format!("KV_{}", self.commands_bucket())
    }

    /// `$KV.<PREFIX>_COMMANDS.>`, the subjects of [`Names::commands_bucket`]'s keys (the
    /// layout NATS gives every key-value bucket).
    pub fn commands_bucket_subjects(&self) -> String {
        format!("$KV.{}.>", self.commands_bucket())
    }

    /// `<PREFIX>_LEASES`: the key-value bucket of worker leases, one key per worker that must
    /// run once per instance (`supervisor`, `projector-<name>`, …), value = the holder, each
    /// entry expiring after the lease TTL unless renewed (its stream is
    /// [`Names::leases_bucket_stream`]).
    pub fn leases_bucket(&self) -> String {
        self.stream("LEASES")
    }

    /// `KV_<PREFIX>_LEASES`, the stream holding [`Names::leases_bucket`].
    pub fn leases_bucket_stream(&self) -> String {
        format!("KV_{}", self.leases_bucket())
    }

    /// `$KV.<PREFIX>_LEASES.>`, the subjects of [`Names::leases_bucket`]'s keys.
    pub fn leases_bucket_subjects(&self) -> String {
        format!("$KV.{}.>", self.leases_bucket())
    }

    /// `<PREFIX>_MEDIA`: the object-store bucket of stored attachments, one object per
    /// request and content hash (`<request id>.<sha256>`; its stream is
    /// [`Names::media_bucket_stream`]).
    pub fn media_bucket(&self) -> String {
        self.stream("MEDIA")
    }

    /// `OBJ_<PREFIX>_MEDIA`, the stream holding [`Names::media_bucket`] (the layout NATS
    /// gives every object store).
    pub fn media_bucket_stream(&self) -> String {
        format!("OBJ_{}", self.media_bucket())
    }

    // --- the NATS edge -------------------------------------------------------------------

    /// `<prefix>.intake.<channel>` (request-reply intake).
    pub fn intake_subject(&self, channel: &str) -> String {
        format!("{}.intake.{channel}", self.prefix)
    }

    /// `<prefix>.cmd.<action>` (request-reply commands).
    pub fn cmd_subject(&self, action: &str) -> String {
        format!("{}.cmd.{action}", self.prefix)
    }

    /// Queue group of the request-reply subscriptions: `<prefix>`.
    pub fn edge_queue_group(&self) -> String {
        self.prefix.clone()
    }

    /// `<prefix>.inbox.<channel>` (the durable inbox).
    pub fn inbox_subject(&self, channel: &str) -> String {
        format!("{}.inbox.{channel}", self.prefix)
    }

    /// `<PREFIX>_INBOX`, capturing `<prefix>.inbox.>`.
    pub fn inbox_stream(&self) -> String {
        self.stream("INBOX")
    }

    /// `<prefix>-engine`, the durable inbox consumer every replica of this instance shares.
    pub fn inbox_consumer(&self) -> String {
        format!("{}-engine", self.prefix)
    }

    /// `<prefix>.inbox_rejects.<channel>`.
    pub fn rejects_subject(&self, channel: &str) -> String {
        format!("{}.inbox_rejects.{channel}", self.prefix)
    }

    /// `<PREFIX>_INBOX_REJECTS`, capturing `<prefix>.inbox_rejects.>`.
    pub fn rejects_stream(&self) -> String {
        self.stream("INBOX_REJECTS")
    }

    // --- reports upward about single requests ---------------------------------------------

    /// `<prefix>.upward.reports.<level>`.
    pub fn upward_reports_subject(&self, level: &str) -> String {
        format!("{}.upward.reports.{level}", self.prefix)
    }

    /// `<prefix>.upward.feedback_log.<level>` (recorded feedback, outbound).
    pub fn upward_feedback_log_subject(&self, level: &str) -> String {
        format!("{}.upward.feedback_log.{level}", self.prefix)
    }

    /// `<prefix>.upward.feedback` (inbound feedback, request-reply).
    pub fn upward_feedback_subject(&self) -> String {
        format!("{}.upward.feedback", self.prefix)
    }

    /// `<prefix>.upward.ack` (the higher level acknowledging a report).
    pub fn upward_ack_subject(&self) -> String {
        format!("{}.upward.ack", self.prefix)
    }

    /// What the upward stream captures: `<prefix>.upward.reports.>` and the feedback log.
    pub fn upward_stream_subjects(&self) -> Vec<String> {
        vec![
            format!("{}.upward.reports.>", self.prefix),
            format!("{}.upward.feedback_log.>", self.prefix),
        ]
    }

    /// `<PREFIX>_UPWARD`.
    pub fn upward_stream(&self) -> String {
        self.stream("UPWARD")
    }

    /// `<prefix>-upward`, the queue group of the inbound upward subscriptions.
    pub fn upward_queue_group(&self) -> String {
        format!("{}-upward", self.prefix)
    }

    // --- periodic rate reports ------------------------------------------------------------

    /// `<prefix>.reports.<level>.<unit>`.
    pub fn report_subject(&self, level: &str, unit: &str) -> String {
        format!("{}.reports.{level}.{unit}", self.prefix)
    }

    /// `<prefix>.reports.<level>.>`, one of the report stream's subjects.
    pub fn report_level_wildcard(&self, level: &str) -> String {
        format!("{}.reports.{level}.>", self.prefix)
    }

    /// `<prefix>.reports.feedback_log.<level>.<unit>`.
    pub fn report_feedback_log_subject(&self, level: &str, unit: &str) -> String {
        format!("{}.reports.feedback_log.{level}.{unit}", self.prefix)
    }

    /// `<prefix>.reports.feedback_log.>`.
    pub fn report_feedback_log_wildcard(&self) -> String {
        format!("{}.reports.feedback_log.>", self.prefix)
    }

    /// `<prefix>.reports.feedback` (inbound, request-reply; not captured by the stream).
    pub fn report_feedback_subject(&self) -> String {
        format!("{}.reports.feedback", self.prefix)
    }

    /// `<PREFIX>_REPORTS`.
    pub fn reports_stream(&self) -> String {
        self.stream("REPORTS")
    }

    /// `<prefix>-reports`, the queue group of the report feedback subscription.
    pub fn reports_queue_group(&self) -> String {
        format!("{}-reports", self.prefix)
    }

    // --- resident notifications and audit -------------------------------------------------

    /// `<prefix>.notify.<kind>`.
    pub fn notify_subject(&self, kind: &str) -> String {
        format!("{}.notify.{kind}", self.prefix)
    }

    /// `<prefix>.notify.>`.
    pub fn notify_wildcard(&self) -> String {
        format!("{}.notify.>", self.prefix)
    }

    /// `<PREFIX>_NOTIFY`.
    pub fn notify_stream(&self) -> String {
        self.stream("NOTIFY")
    }

    // --- unit notifications (dispatch, supervision) -----------------------------------------

    /// `<prefix>.units.<unit_kind>.<code>.<kind>`: a notification addressed to one unit
    /// (`unit_kind` is `department`, `station` or `level`).
    pub fn unit_subject(&self, unit_kind: &str, code: &str, kind: &str) -> String {
        format!("{}.units.{unit_kind}.{code}.{kind}", self.prefix)
    }

    /// `<prefix>.units.<unit_kind>.<code>.>`: everything addressed to one unit (what its
    /// NATS user may read).
    pub fn unit_wildcard(&self, unit_kind: &str, code: &str) -> String {
        format!("{}.units.{unit_kind}.{code}.>", self.prefix)
    }

    /// `<prefix>.units.>`.
    pub fn units_wildcard(&self) -> String {
        format!("{}.units.>", self.prefix)
    }

    /// `<PREFIX>_UNITS`, the stream of unit notifications (created only where unit channels
    /// are configured, so not among [`Names::all_streams`]).
    pub fn units_stream(&self) -> String {
        self.stream("UNITS")
    }

    /// `<prefix>.audit.digest.<day>` (daily Merkle digests).
    pub fn digest_subject(&self, day: &str) -> String {
        format!("{}.audit.digest.{day}", self.prefix)
    }

    /// Every stream this instance creates, for operators and isolation tests.
    pub fn all_streams(&self) -> Vec<String> {
        vec![
            self.events_stream.clone(),
            self.inbox_stream(),
            self.rejects_stream(),
            self.upward_stream(),
            self.reports_stream(),
            self.notify_stream(),
            self.commands_bucket_stream(),
            self.leases_bucket_stream(),
            self.media_bucket_stream(),
        ]
    }
}

fn valid_stream(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_instance_keeps_the_names_of_earlier_releases() {
        let n = Names::default();
        assert_eq!(n.events_stream(), "BIANMIN_EVENTS");
        assert_eq!(n.inbox_stream(), "BIANMIN_INBOX");
        assert_eq!(n.rejects_stream(), "BIANMIN_INBOX_REJECTS");
        assert_eq!(n.upward_stream(), "BIANMIN_UPWARD");
        assert_eq!(n.reports_stream(), "BIANMIN_REPORTS");
        assert_eq!(n.notify_stream(), "BIANMIN_NOTIFY");
        assert_eq!(n.units_stream(), "BIANMIN_UNITS");
        assert_eq!(
            n.unit_subject("department", "hrss", "dispatch"),
            "bianmin.units.department.hrss.dispatch"
        );
        assert_eq!(n.commands_bucket(), "BIANMIN_COMMANDS");
        assert_eq!(n.commands_bucket_stream(), "KV_BIANMIN_COMMANDS");
        assert_eq!(n.leases_bucket(), "BIANMIN_LEASES");
        assert_eq!(n.leases_bucket_stream(), "KV_BIANMIN_LEASES");
        assert_eq!(n.media_bucket(), "BIANMIN_MEDIA");
        assert_eq!(n.media_bucket_stream(), "OBJ_BIANMIN_MEDIA");
        assert_eq!(n.inbox_consumer(), "bianmin-engine");
        assert_eq!(n.edge_queue_group(), "bianmin");
        assert_eq!(n.upward_queue_group(), "bianmin-upward");
        assert_eq!(n.reports_queue_group(), "bianmin-reports");
        assert_eq!(n.intake_subject("hotline"), "bianmin.intake.hotline");
        assert_eq!(n.event_subject("r1"), "bianmin.events.r1");
        assert_eq!(
            n.digest_subject("2026-10-01"),
            "bianmin.audit.digest.2026-10-01"
        );
    }

    #[test]
    fn two_instances_share_no_stream_consumer_or_group() {
        let yc = Names::new("yc", "YC_EVENTS").unwrap();
        let sz = Names::new("sz", "SZ_EVENTS").unwrap();
        let mut all = yc.all_streams();
        all.extend(sz.all_streams());
        all.extend([yc.inbox_consumer(), sz.inbox_consumer()]);
        all.extend([yc.upward_queue_group(), sz.upward_queue_group()]);
        all.extend([yc.reports_queue_group(), sz.reports_queue_group()]);
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:?}");
    }

    #[test]
    fn bad_prefixes_and_streams_are_refused_naming_the_key() {
        for prefix in ["", "a.b", "a b", "a*", ">", "城市"] {
            let error = Names::new(prefix, "S").unwrap_err();
            assert_eq!(error.field(), "nats.subject_prefix", "{prefix}");
        }
        for stream in ["", "A.B", "A B", "A*", "A/B"] {
            let error = Names::new("p", stream).unwrap_err();
            assert_eq!(error.field(), "nats.stream", "{stream}");
        }
        assert_eq!(
            Names::for_prefix("yc-1").unwrap().inbox_stream(),
            "YC_1_INBOX"
        );
    }
}
