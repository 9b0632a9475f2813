-- The assignee of a request (指派 / 改派 / 认领; owner stays the first-contact worker 首问负责)
-- and the unit the assignee acts for, for the personal worklists. Rows written before these
-- columns existed read NULL until the `requests` projector is rebuilt
-- (`bianmin projections rebuild`).
ALTER TABLE request_summary ADD COLUMN assignee TEXT;
ALTER TABLE request_summary ADD COLUMN assignee_unit TEXT;
CREATE INDEX request_summary_assignee_idx ON request_summary (assignee, is_open);

-- Projector `requests`: each department's own part of a request besides the lead — an
-- assisting part of a referral (kind 'assisting', number = the referral number) or a whistle
-- summons (kind 'whistle', number = the whistle's ordinal) — with its deadline and status,
-- for the departments' worklists and overdue lists. is_open: neither reported nor closed.
CREATE TABLE unit_parts (
    request_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    number        INTEGER NOT NULL,
    department    TEXT NOT NULL,
    status        TEXT NOT NULL,
    due_at        TEXT,
    signed_at     TEXT,
    reported_at   TEXT,
    closed_at     TEXT,
    is_open       BOOLEAN NOT NULL,
    last_position INTEGER NOT NULL,
    PRIMARY KEY (request_id, kind, number, department)
);
CREATE INDEX unit_parts_dept_idx ON unit_parts (department, is_open, due_at);

-- The callback (回访) after the reply in force: attempts, when the resident was first reached
-- and whether within the policy's [callback] limit (callback_attempted.within_limit), for the
-- callback rate and timeliness.
ALTER TABLE request_summary ADD COLUMN callback_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE request_summary ADD COLUMN callback_at TEXT;
ALTER TABLE request_summary ADD COLUMN callback_on_time BOOLEAN;
