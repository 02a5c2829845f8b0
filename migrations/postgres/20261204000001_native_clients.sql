-- Native clients: the OAuth 2.0 device authorization grant (RFC 8628) and refresh tokens in a
-- request body (RFC 6749, section 6).

-- The client a booking was made for: NULL for the browser (KEYCARD_CLIENT_ID), else a native
-- client's id (KEYCARD_NATIVE_CLIENTS). A booking's confirmations work only for its client, at
-- its client's front desk.
ALTER TABLE sessions ADD COLUMN client_id TEXT;

-- A device's request to check in, from its device authorization until a guest approves or
-- denies it (or it expires), then until the device fetches its tokens, once. The device code is
-- kept as its SHA-256 only; the user code is what the guest types. Housekeeping deletes a
-- request an hour after it expired.
CREATE TABLE device_grants (
    device_code_hash TEXT PRIMARY KEY,
    user_code        TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    requested_from   TEXT,
    user_agent       TEXT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    -- Whether the last poll came sooner than the interval (it was answered slow_down).
    polled_too_fast  BOOLEAN NOT NULL DEFAULT false,
    -- pending, approved, denied or used
    state            TEXT NOT NULL,
    guest_id         TEXT REFERENCES guests (id) ON DELETE CASCADE,
    decided_at       BIGINT
);
CREATE INDEX device_grants_expires_at ON device_grants (expires_at);
