//! Value types shared by commands and events.
//!
//! Enums are closed sets with snake_case wire names; adding a variant is a schema change.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UTC instant; serialised as RFC 3339.
pub type Timestamp = DateTime<Utc>;

/// Identifies one resident request (one aggregate, one event stream).
pub type RequestId = Uuid;

/// Where a request came in (渠道).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The 12345 government service hotline system.
    Hotline,
    /// Walk-in at a service station window (窗口).
    Window,
    /// Web, app or WeChat (线上).
    Online,
    /// Found by a grid worker on patrol (网格员巡查发现).
    GridPatrol,
    /// Letters and visits (来信来访).
    LettersVisits,
    /// E-mail.
    Email,
}

impl Channel {
    /// Every channel, in wire order.
    pub const ALL: [Channel; 6] = [
        Channel::Hotline,
        Channel::Window,
        Channel::Online,
        Channel::GridPatrol,
        Channel::LettersVisits,
        Channel::Email,
    ];

    /// The snake_case wire name (also used in NATS subjects).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Hotline => "hotline",
            Channel::Window => "window",
            Channel::Online => "online",
            Channel::GridPatrol => "grid_patrol",
            Channel::LettersVisits => "letters_visits",
            Channel::Email => "email",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A place in the grid tree: street (街道) → community (社区) → grid (网格) → micro-grid (微网格).
///
/// Codes are the deployment's own identifiers (e.g. `"jd-01"`); rates roll up along this path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GridPath {
    /// Street (街道) code.
    pub street: String,
    /// Community (社区) code.
    pub community: String,
    /// Base grid (基础网格) code.
    pub grid: String,
    /// Micro-grid (微网格) code, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micro_grid: Option<String>,
}

/// The role an actor acts in. Every operation requires one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An upstream intake system (hotline platform, app backend).
    IntakeSystem,
    /// A service-station worker (incl. the first-contact worker, 首问责任人).
    StationWorker,
    /// A handler in a functional department (职能部门).
    DepartmentHandler,
    /// Supervision (督办) and the hotline centre's approvals.
    Supervisor,
    /// A higher level (street / district / city) answering upward reports.
    HigherLevel,
    /// Read-only access to full histories (审计/考核).
    Auditor,
    /// Aggregates only (dashboards, BI).
    Dashboard,
    /// The engine itself (timers, supervision loop).
    System,
}

impl Role {
    /// Every role, in wire order.
    pub const ALL: [Role; 8] = [
        Role::IntakeSystem,
        Role::StationWorker,
        Role::DepartmentHandler,
        Role::Supervisor,
        Role::HigherLevel,
        Role::Auditor,
        Role::Dashboard,
        Role::System,
    ];

    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::IntakeSystem => "intake_system",
            Role::StationWorker => "station_worker",
            Role::DepartmentHandler => "department_handler",
            Role::Supervisor => "supervisor",
            Role::HigherLevel => "higher_level",
            Role::Auditor => "auditor",
            Role::Dashboard => "dashboard",
            Role::System => "system",
        }
    }
}

/// Who did something: an identity, the role it acted in, and its unit (station, department).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Stable identity (staff id, system name).
    pub id: String,
    /// The role this action was taken in.
    pub role: Role,
    /// The unit acted for: a department code for handlers, a community code for station workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Priority lanes (绿色通道) that move a request forward and may shorten its limits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PriorityLane {
    /// Elderly residents (老年人).
    Elderly,
    /// Active or retired military (现役/退役军人).
    Military,
    /// Residents with disabilities (残疾人).
    Disabled,
}

/// The kind of process a request follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Public-service flow (公共服务).
    #[default]
    Service,
    /// Dispute mediation (矛盾纠纷调处): excluded from satisfaction scoring.
    Dispute,
}

/// The statutory request type (诉求类型), the first classification axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// 咨询.
    Consultation,
    /// 求助.
    Help,
    /// 投诉.
    Complaint,
    /// 举报.
    Report,
    /// 建议.
    Suggestion,
    /// 表扬/感谢.
    Praise,
    /// 其他.
    Other,
}

/// Urgency tier (third classification axis); drives the default limits.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// 紧急: possible loss of life or property.
    Emergency,
    /// 及时性: water, power, gas, heat and similar.
    TimeCritical,
    /// 一般.
    General,
    /// 复杂疑难: multi-department, long-cycle.
    Complex,
}

/// Why a request was not accepted (不予受理), HOTLINE_PRACTICE §6.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Disposition {
    /// Transferred to 110/119/120/122.
    EmergencyTransfer,
    /// Belongs to litigation, arbitration, review, petitions...: the channel must be named.
    LegalChannel,
    /// Same matter, no new facts: linked to its original.
    DuplicateNoNewFacts,
    /// Involves state or commercial secrets or personal privacy.
    SecretOrPrivacy,
    /// Outside public remit: market or social channels.
    OutsidePublicRemit,
    /// Unlawful or against public order.
    UnlawfulOrAgainstPublicOrder,
    /// Already lawfully decided by the competent unit.
    AlreadyLawfullyDecided,
    /// Not this jurisdiction.
    OutOfJurisdiction,
}

/// The emergency line a request was transferred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmergencyLine {
    /// Police, 110.
    Police110,
    /// Fire, 119.
    Fire119,
    /// Ambulance, 120.
    Ambulance120,
    /// Traffic police, 122.
    Traffic122,
}

/// How the station handles a classified request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandlingMode {
    /// Handled or answered by the station itself (直接办理).
    Direct,
    /// Proxy-handled by the station with a government department (代办).
    Proxy,
    /// Referred to a department (转办).
    Referral,
}

/// The result a reply reports to the resident (反馈办理结果).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyOutcome {
    /// Resolved.
    Resolved,
    /// Partially resolved.
    PartiallyResolved,
    /// Cannot be solved now; explained, with a plan where possible.
    ExplainedCannotSolveNow,
    /// Not within our remit; explained (still replied and archived).
    NotOursExplained,
    /// Handling terminated with the centre's approval.
    Terminated,
}

/// The resident's satisfaction (满意度).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意.
    Satisfied,
    /// 基本满意.
    BasicallySatisfied,
    /// 不满意.
    Dissatisfied,
}

/// Whether the resident considers the matter resolved (解决情况).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// 已解决.
    Resolved,
    /// 部分解决.
    PartiallyResolved,
    /// 未解决.
    Unresolved,
}

/// A level above the station that matters are reported to (上报).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UpwardLevel {
    /// 街道.
    Street,
    /// 区.
    District,
    /// 市.
    City,
}

impl UpwardLevel {
    /// The snake_case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpwardLevel::Street => "street",
            UpwardLevel::District => "district",
            UpwardLevel::City => "city",
        }
    }
}

/// What a higher level answered to an upward report (反馈/批示).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// An instruction (批示) on how to proceed.
    Instruction,
    /// A decision on the matter.
    Decision,
    /// Referred back down to a named unit.
    ReferralBack,
    /// Approval to close.
    ClosureApproval,
    /// Receipt acknowledged, no content yet.
    Acknowledged,
}

/// Which deadline of a request a supervision event concerns.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Accept / first response to the resident (响应).
    Response,
    /// Department sign-off of a referral (签收).
    SignOff,
    /// Completion with a reply (办结).
    Completion,
    /// A summoned department's report on a whistle (报到).
    WhistleReport,
    /// An assisting department's part of a referral (协办): sign-off and report.
    Assistance,
}

/// Supervision levels (督办), escalating: daily → listed → interview.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SupervisionLevel {
    /// 日常督办.
    Daily,
    /// 挂牌督办.
    Listed,
    /// 约谈督办.
    Interview,
}

/// A reference to a file held elsewhere (attachments are never inlined).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// Where the file lives (URI in the document store).
    pub uri: String,
    /// Media type, e.g. `image/jpeg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// SHA-256 of the content, hex, for integrity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Opaque reference to a resident's contact record in the separate, encrypted contact store.
///
/// Contact data itself (name, phone, ID number, address detail) never enters an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ContactRef(pub Uuid);

/// The deadlines stamped on a request when it is classified (or re-stamped on reclassification
/// or an extension). Once recorded they are facts; policy changes never rewrite them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// First response to the resident due (响应时限).
    pub response_due_at: Timestamp,
    /// Completion with a reply due (办结时限).
    pub completion_due_at: Timestamp,
    /// Reminder (催办) fires at this instant, before completion is due.
    pub remind_at: Timestamp,
    /// Pre-breach warning fires at this instant (a configured fraction of the limit).
    pub warn_at: Timestamp,
    /// Policy profile and version that computed these (e.g. `community-station@2026.1`).
    pub policy: String,
    /// Catalogue version the item came from.
    pub catalogue_version: String,
    /// The response or completion deadline was counted through days the loaded working
    /// calendar does not cover (treated by the weekend rule alone): it is re-stamped by a
    /// `deadlines_restamped` event once a calendar covering them is loaded. Absent (false)
    /// in events written before the mark.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}
