-- Guests, their bookings (sessions, one per check-in) and each booking's event log.
-- Times are Unix seconds, like JWT claims.

CREATE TABLE guests (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL,
    -- Lower-cased username: names are unique regardless of case.
    username_key        TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    guest_id            TEXT NOT NULL REFERENCES guests (id) ON DELETE CASCADE,
    -- Rotation state of the booking confirmation (refresh token family).
    generation          INTEGER NOT NULL,
    -- Random salt of the current confirmation's id; with the server's secret it re-derives the id.
    salt                TEXT NOT NULL,
    -- SHA-256 of the current and the immediately previous confirmation ids; never the ids.
    current_hash        TEXT NOT NULL,
    current_issued_at   INTEGER NOT NULL,
    current_expires_at  INTEGER NOT NULL,
    previous_hash       TEXT,
    rotated_at          INTEGER,
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at          INTEGER,
    revoked_reason      TEXT,
    user_agent          TEXT,
    client_address      TEXT
);
CREATE INDEX sessions_by_guest ON sessions (guest_id, created_at);

CREATE TABLE session_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    guest_id    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    generation  INTEGER,
    detail      TEXT
);
CREATE INDEX session_events_by_session ON session_events (session_id, id);
