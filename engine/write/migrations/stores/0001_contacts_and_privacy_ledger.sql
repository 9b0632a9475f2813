-- The shared stores of the production deployment: the contact store (data keys wrapped by
-- numbered key-encryption keys kept outside the database) and the privacy ledger.

-- One row per key-encryption-key epoch. `check_value` is a known value sealed under the KEK,
-- so a process holding a different file for the same epoch refuses to start instead of
-- wrapping keys nobody else can unwrap. `retired_at`: the epoch's file was destroyed.
CREATE TABLE contact_kek_epochs (
    epoch INTEGER PRIMARY KEY,
    check_value BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);

-- The epoch new keys are wrapped under. Puts hold it FOR SHARE, a rotation FOR UPDATE, so no
-- key is ever wrapped under an epoch a concurrent rotation is retiring.
CREATE TABLE contact_kek_current (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL REFERENCES contact_kek_epochs (epoch)
);

-- Per-resident data keys, only ever stored wrapped. Erasure sets both to NULL and keeps the
-- row as a tombstone (erasure is final).
CREATE TABLE contact_keys (
    key_id UUID PRIMARY KEY,
    wrapped_key BYTEA,
    kek_epoch INTEGER REFERENCES contact_kek_epochs (epoch),
    created_at TIMESTAMPTZ NOT NULL,
    erased_at TIMESTAMPTZ,
    CHECK ((wrapped_key IS NULL) = (kek_epoch IS NULL))
);
CREATE INDEX contact_keys_epoch ON contact_keys (kek_epoch) WHERE wrapped_key IS NOT NULL;

CREATE TABLE resident_contacts (
    contact_ref UUID PRIMARY KEY REFERENCES contact_keys (key_id),
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- The privacy ledger. Ids and times are text in RFC 3339, as in the embedded ledger, so one
-- set of statements serves both backends.
CREATE TABLE contact_erasures (
    id BIGSERIAL PRIMARY KEY,
    contact_ref TEXT NOT NULL,
    request_id TEXT,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    key_destroyed BOOLEAN NOT NULL
);

CREATE TABLE contact_access (
    id BIGSERIAL PRIMARY KEY,
    contact_ref TEXT NOT NULL,
    request_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    purpose TEXT NOT NULL,
    accessed_at TEXT NOT NULL
);
