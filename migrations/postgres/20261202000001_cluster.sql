-- What several Keycard instances on one database must agree on.

-- The per-account check-in throttle, shared by every instance: one GCRA "theoretical arrival
-- time" per account name (Unix milliseconds). A row whose time has passed is a full budget and
-- is deleted by housekeeping.
CREATE TABLE login_throttle (
    account TEXT PRIMARY KEY,
    tat     BIGINT NOT NULL
);

-- The instances serving this database and the issuer each signs with, refreshed by a heartbeat,
-- so an instance that would issue key cards the others refuse is stopped at start-up.
CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    issuer     TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    seen_at    BIGINT NOT NULL
);

-- Demo controls only: the booking confirmation a "thief" copied, kept so that any instance can
-- show it again. Not the token: the inputs it is derived from (as for the current one in
-- sessions), useless without the signing keys and the confirmation secret, which live outside
-- the database.
CREATE TABLE demo_stolen (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    salt       TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
