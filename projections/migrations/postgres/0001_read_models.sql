-- Read models of Bianmin (PostgreSQL). Documented in docs/metrics.md.

CREATE TABLE projection_checkpoints (
    projector        TEXT PRIMARY KEY,
    position         BIGINT NOT NULL DEFAULT 0,
    last_recorded_at TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ
);

-- Projector `requests`: the folded state of each request (internal), its summary (the fact
-- table of the rates), and one row per referral to a department.
CREATE TABLE request_state (
    request_id    TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    last_position BIGINT NOT NULL
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
    received_at       TIMESTAMPTZ NOT NULL,
    received_day      TEXT NOT NULL,
    received_week     TEXT NOT NULL,
    received_month    TEXT NOT NULL,
    accepted_at       TIMESTAMPTZ,
    declined_at       TIMESTAMPTZ,
    classified_at     TIMESTAMPTZ,
    referred_at       TIMESTAMPTZ,
    signed_at         TIMESTAMPTZ,
    first_contact_at  TIMESTAMPTZ,
    responded_at      TIMESTAMPTZ,
    replied_at        TIMESTAMPTZ,
    reply_outcome     TEXT,
    rated_at          TIMESTAMPTZ,
    archived_at       TIMESTAMPTZ,
    response_due_at   TIMESTAMPTZ NOT NULL,
    completion_due_at TIMESTAMPTZ,
    due_at            TIMESTAMPTZ NOT NULL,
    response_on_time  BOOLEAN,
    completed_on_time BOOLEAN,
    handling_seconds  BIGINT,
    overdue           BOOLEAN NOT NULL,
    is_open           BOOLEAN NOT NULL,
    dispatched        BOOLEAN NOT NULL,
    satisfaction      TEXT,
    resolution        TEXT,
    rating_excluded   BOOLEAN NOT NULL,
    reopen_count      BIGINT NOT NULL,
    referral_returns  BIGINT NOT NULL,
    escalation_level  TEXT,
    last_position     BIGINT NOT NULL
);
CREATE INDEX request_summary_month_idx ON request_summary (received_month, community);
CREATE INDEX request_summary_open_idx ON request_summary (is_open, due_at);
CREATE INDEX request_summary_owner_idx ON request_summary (owner, is_open);
CREATE INDEX request_summary_dept_idx ON request_summary (lead_department, is_open);
CREATE INDEX request_summary_position_idx ON request_summary (last_position);

CREATE TABLE department_referrals (
    request_id      TEXT NOT NULL,
    referral_number BIGINT NOT NULL,
    department      TEXT NOT NULL,
    referred_at     TIMESTAMPTZ NOT NULL,
    referred_month  TEXT NOT NULL,
    sign_off_due_at TIMESTAMPTZ NOT NULL,
    signed_at       TIMESTAMPTZ,
    returned_at     TIMESTAMPTZ,
    last_position   BIGINT NOT NULL,
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
    score         BIGINT NOT NULL,
    rated_at      TIMESTAMPTZ NOT NULL,
    rated_month   TEXT NOT NULL,
    last_position BIGINT NOT NULL
);
CREATE INDEX department_ratings_dept_idx ON department_ratings (department, rated_month);

CREATE TABLE whistle_reports (
    whistle_id    TEXT NOT NULL,
    department    TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    community     TEXT,
    blown_at      TIMESTAMPTZ NOT NULL,
    blown_month   TEXT NOT NULL,
    report_due_at TIMESTAMPTZ NOT NULL,
    reported_at   TIMESTAMPTZ,
    on_time       BOOLEAN,
    released_at   TIMESTAMPTZ,
    last_position BIGINT NOT NULL,
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
    sent_at           TIMESTAMPTZ NOT NULL,
    acknowledged_at   TIMESTAMPTZ,
    first_feedback_at TIMESTAMPTZ,
    feedback_kind     TEXT,
    last_feedback_at  TIMESTAMPTZ,
    is_open           BOOLEAN NOT NULL,
    last_position     BIGINT NOT NULL
);
CREATE INDEX upward_reports_position_idx ON upward_reports (last_position);
