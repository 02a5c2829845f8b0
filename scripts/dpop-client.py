#!/usr/bin/env python3
"""A DPoP client written from RFC 9449 (and RFC 7638), not from Keycard's code.

It holds an ES256 key (the `cryptography` package) and makes its proofs with PyJWT, as any
standard client would: a JWT with `typ: dpop+jwt` and the public key in `jwk`, claims `jti`,
`htm`, `htu`, `iat` and, beside an access token, `ath`. Against the server `cargo leptos build`
made (started here on a free port, with a temporary data folder), it checks that:

- a check-in with a proof gets `token_type: DPoP` and an access token whose `cnf.jkt` is this
  key's RFC 7638 thumbprint, computed here by the RFC's recipe;
- both doors (the amenity: stateless; `/api/me`: the booking must be active) open with
  `Authorization: DPoP` and a proof, and the front desk rotates the refresh token with one;
- every forgery of section 4.3, and a replayed proof, is refused with 401 and a
  `WWW-Authenticate: DPoP error="invalid_dpop_proof"` challenge;
- a thief holding both tokens and a key of its own can neither rotate nor open a door, and the
  booking lives on.

Usage: run with the tools' virtual environment's python, which has PyJWT and cryptography
(scripts/test does: $KEYCARD_TOOLS/venv/bin/python scripts/dpop-client.py).
"""

import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from outside_client import PASSWORD, Answer, Checks, send, start_server, stop_server


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """An ES256 key pair and its public JWK (RFC 7518, section 6.2)."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(32, "big")),
            "y": b64url(numbers.y.to_bytes(32, "big")),
        }

    def thumbprint(self) -> str:
        """RFC 7638: the required members, in lexicographic order, no whitespace, SHA-256."""
        required = {name: self.jwk[name] for name in ("crv", "kty", "x", "y")}
        canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
        return b64url(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str, url: str, access_token: str | None = None, **changes) -> str:
        """RFC 9449, section 4.2. `changes` replace (or with None, remove) claims and headers."""
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
        headers = {"typ": "dpop+jwt", "jwk": self.jwk}
        for name, value in changes.items():
            target = headers if name in ("typ", "jwk", "alg") else claims
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
        algorithm = headers.pop("alg", "ES256")
        if algorithm != "ES256":
            # A forged header over a genuine signature: PyJWT would refuse to sign it.
            genuine = jwt.encode(claims, self.private, algorithm="ES256", headers=headers)
            _, payload, signature = genuine.split(".")
            head = dict(headers, alg=algorithm)
            return f"{b64url(json.dumps(head).encode())}.{payload}.{signature}"
        return jwt.encode(claims, self.private, algorithm="ES256", headers=headers)


def main() -> int:
    check = Checks()

    with tempfile.TemporaryDirectory(prefix="keycard-dpop-") as tmp:
        log_path = Path(tmp) / "server.log"
        server, base = start_server(Path(tmp), log_path)
        try:
            key = Key()
            register = f"{base}/api/auth/register"
            res = send("POST", register, [("DPoP", key.proof("POST", register))],
                       {"username": f"rfc{int(time.time())}", "password": PASSWORD})
            check(res.status == 201, f"check-in with a proof: {res.status} {res.body!r}")
            issued = res.json()
            access = issued["access_token"]
            cookies = [c.split(";")[0] for c in res.all("Set-Cookie")]
            confirmation = next((c.split("=", 1)[1] for c in cookies if c.startswith("__Secure-confirmation=")), "")
            check(issued["token_type"] == "DPoP", f"token_type: {issued['token_type']}")
            payload = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
            check(payload.get("cnf", {}).get("jkt") == key.thumbprint(), f"cnf.jkt: {payload.get('cnf')}")

            gym, me, refresh = f"{base}/amenities/gym", f"{base}/api/me", f"{base}/api/auth/refresh"

            def door(url: str, method: str, proofs: list[str], token: str = access, scheme: str = "DPoP") -> Answer:
                return send(method, url, [("Authorization", f"{scheme} {token}")] + [("DPoP", p) for p in proofs])

            for url, method in ((gym, "GET"), (me, "POST")):
                used = key.proof(method, url, access)
                res = door(url, method, [used])
                check(res.status == 200, f"{method} {url} with a proof: {res.status} {res.body!r}")
                other = "POST" if method == "GET" else "GET"
                forgeries = {
                    "the same proof again": [used],
                    "no proof": [],
                    "two proofs": [key.proof(method, url, access), key.proof(method, url, access)],
                    "typ JWT": [key.proof(method, url, access, typ="JWT")],
                    "alg none": [key.proof(method, url, access, alg="none")],
                    "alg HS256": [key.proof(method, url, access, alg="HS256")],
                    "a private key in jwk": [key.proof(method, url, access, jwk=dict(key.jwk, d=b64url(os.urandom(32))))],
                    "another key's jwk": [key.proof(method, url, access, jwk=Key().jwk)],
                    "another method": [key.proof(other, url, access)],
                    "another URL": [key.proof(method, f"{base}/amenities/pool", access)],
                    "made five minutes ago": [key.proof(method, url, access, iat=int(time.time()) - 300)],
                    "no ath": [key.proof(method, url, None)],
                    "another token's ath": [key.proof(method, url, "another token")],
                    "no jti": [key.proof(method, url, access, jti=None)],
                    "signed by another key": [Key().proof(method, url, access)],
                }
                for what, proofs in forgeries.items():
                    res = door(url, method, proofs)
                    challenge = ", ".join(res.all("WWW-Authenticate"))
                    check(res.status == 401 and challenge.startswith('DPoP error="invalid_dpop_proof"'),
                          f"{method} {url}, {what}: {res.status} {challenge!r}")
                res = door(url, method, [], scheme="Bearer")
                check(res.status == 401, f"{method} {url} as a bearer token: {res.status}")

            # The front desk rotates a bound refresh token only with a proof of the same key.
            cookie = ("Cookie", f"__Secure-confirmation={confirmation}")
            thief = Key()
            res = send("POST", refresh, [cookie, ("DPoP", thief.proof("POST", refresh))])
            check(res.status == 401, f"the thief at the front desk: {res.status}")
            res = send("POST", refresh, [cookie])
            check(res.status == 401, f"the front desk without a proof: {res.status}")
            res = send("POST", refresh, [cookie, ("DPoP", key.proof("POST", refresh))])
            check(res.status == 200 and res.json()["token_type"] == "DPoP", f"the front desk with the key: {res.status} {res.body!r}")
            # (door()'s default token is the first access token: pass the new one.)
            access = res.json().get("access_token", access)
            res = door(me, "POST", [thief.proof("POST", me, access)], token=access)
            check(res.status == 401, f"the thief with the new access token: {res.status}")
            res = door(me, "POST", [key.proof("POST", me, access)], token=access)
            check(res.status == 200, f"the guest goes on: {res.status}")
        finally:
            panics = stop_server(server, log_path)
            check(not panics, f"the server panicked: {panics}")

    return check.report("dpop client (RFC 9449, PyJWT + cryptography)")


if __name__ == "__main__":
    sys.exit(main())
