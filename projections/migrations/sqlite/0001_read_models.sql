-- Read models of Bianmin (SQLite; timestamps are fixed-width RFC 3339 UTC text). Documented in docs/metrics.md.

CREATE TABLE projection_checkpoints (
    projector        TEXT PRIMARY KEY,
    position         INTEGER NOT NULL DEFAULT 0,
    last_recorded_at TEXT,
    updated_at       TEXT
);

-- Projector `requests`: the folded state of each request (internal), its summary (the fact
-- table of the rates), and one row per referral to a department.
CREATE TABLE request_state (
    request_id    TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    last_position INTEGER NOT NULL
);

CREATE TABLE request_summary (
    request_id        TEXT PRIMARY KEY,
    stage             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    channel           TEXT NOT NULL,
    street            TEXT NOT NULL,
    community         TEXT NOT NULL,
    grid              TEXT NOT NULL,
    category          TEXT,
    catalogue_item    TEXT,
    request_type      TEXT,
    urgency           TEXT,
    lead_department   TEXT,
    owner             TEXT,
    anonymous         BOOLEAN NOT NULL,
    received_at       TEXT NOT NULL,
    received_day      TEXT NOT NULL,
    received_week     TEXT NOT NULL,
    received_month    TEXT NOT NULL,
    accepted_at       TEXT,
    declined_at       TEXT,
    classified_at     TEXT,
    referred_at       TEXT,
    signed_at         TEXT,
    first_contact_at  TEXT,
    responded_at      TEXT,
    replied_at        TEXT,
    reply_outcome     TEXT,
    rated_at          TEXT,
    archived_at       TEXT,
    response_due_at   TEXT NOT NULL,
    completion_due_at TEXT,
    due_at            TEXT NOT NULL,
    response_on_time  BOOLEAN,
    completed_on_time BOOLEAN,
    handling_seconds  INTEGER,
    overdue           BOOLEAN NOT NULL,
    is_open           BOOLEAN NOT NULL,
    dispatched        BOOLEAN NOT NULL,
    satisfaction      TEXT,
    resolution        TEXT,
    rating_excluded   BOOLEAN NOT NULL,
    reopen_count      INTEGER NOT NULL,
    referral_returns  INTEGER NOT NULL,
    escalation_level  TEXT,
    last_position     INTEGER NOT NULL
);
CREATE INDEX request_summary_month_idx ON request_summary (received_month, community);
CREATE INDEX request_summary_open_idx ON request_summary (is_open, due_at);
CREATE INDEX request_summary_owner_idx ON request_summary (owner, is_open);
CREATE INDEX request_summary_dept_idx ON request_summary (lead_department, is_open);
CREATE INDEX request_summary_position_idx ON request_summary (last_position);

CREATE TABLE department_referrals (
    request_id      TEXT NOT NULL,
    referral_number INTEGER NOT NULL,
    department      TEXT NOT NULL,
    referred_at     TEXT NOT NULL,
    referred_month  TEXT NOT NULL,
    sign_off_due_at TEXT NOT NULL,
    signed_at       TEXT,
    returned_at     TEXT,
    last_position   INTEGER NOT NULL,
    PRIMARY KEY (request_id, referral_number)
);
CREATE INDEX department_referrals_dept_idx ON department_referrals (department, referred_month);

-- Projector `assessment`: bottom-up ratings, whistles, the report-upward ledger.
CREATE TABLE assessment_units (
    request_id      TEXT PRIMARY KEY,
    street          TEXT NOT NULL,
    community       TEXT NOT NULL,
    lead_department TEXT
);

CREATE TABLE department_ratings (
    event_id      TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL,
    department    TEXT NOT NULL,
    community     TEXT,
    score         INTEGER NOT NULL,
    rated_at      TEXT NOT NULL,
    rated_month   TEXT NOT NULL,
    last_position INTEGER NOT NULL
);
CREATE INDEX department_ratings_dept_idx ON department_ratings (department, rated_month);

CREATE TABLE whistle_reports (
    whistle_id    TEXT NOT NULL,
    department    TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    community     TEXT,
    blown_at      TEXT NOT NULL,
    blown_month   TEXT NOT NULL,
    report_due_at TEXT NOT NULL,
    reported_at   TEXT,
    on_time       BOOLEAN,
    released_at   TEXT,
    last_position INTEGER NOT NULL,
    PRIMARY KEY (whistle_id, department)
);
CREATE INDEX whistle_reports_dept_idx ON whistle_reports (department, blown_month);

CREATE TABLE upward_reports (
    report_id         TEXT PRIMARY KEY,
    request_id        TEXT NOT NULL,
    level             TEXT NOT NULL,
    street            TEXT,
    community         TEXT,
    lead_department   TEXT,
    sent_at           TEXT NOT NULL,
    acknowledged_at   TEXT,
    first_feedback_at TEXT,
    feedback_kind     TEXT,
    last_feedback_at  TEXT,
    is_open           BOOLEAN NOT NULL,
    last_position     INTEGER NOT NULL
);
CREATE INDEX upward_reports_position_idx ON upward_reports (last_position);
