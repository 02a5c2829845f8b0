-- Sender-constrained key cards (DPoP, RFC 9449).

-- The key a booking is bound to: the RFC 7638 thumbprint of the DPoP key the client proved at
-- check-in. A bound booking's confirmation is exchanged only with a proof of that same key.
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;

-- Every DPoP proof seen lately, by a hash of its key and jti, so that a proof is accepted once
-- across every instance (RFC 9449, section 11.1). A row is kept as long as its proof could
-- still be accepted (its iat plus the window), then deleted by housekeeping.
CREATE TABLE dpop_proofs (
    proof_id   TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
