#!/usr/bin/env python3
"""A native client written from RFC 8628 (the device authorization grant) and RFC 6749 (the
token endpoint, refresh tokens), not from Keycard's code: the standard library only.

Against the server `cargo leptos build` made (started here on a free port, with a temporary data
folder), it plays a terminal and, beside it, a guest checked in in a browser, and checks that:

- the device authorization answer has every member of RFC 8628 section 3.2, with a user code of
  the section 6.1 alphabet;
- polling says `authorization_pending`, then `slow_down` when sooner than the interval (and
  the client waits 5 s more from then on, as section 3.5 says), then, once the guest approved
  the code, hands out tokens once: `Cache-Control: no-store`, no cookie;
- every wrong request gets the RFC's error: an unknown client, a grant type not served, a
  missing or repeated parameter, a made-up or spent device code, a denied request;
- the access token opens the doors; the refresh token rotates at the token endpoint and not at
  the browser's front desk; an old refresh token shown after a rotation cancels the whole
  booking (`invalid_grant` for the current one too).

Usage: python3 scripts/device-client.py (scripts/test runs it).
"""

import re
import sys
import tempfile
import time
from pathlib import Path

from outside_client import PASSWORD, Answer, Checks, send, start_server, stop_server

CLIENT = "keycard-cli"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628, section 6.1: eight of twenty consonants, shown as XXXX-XXXX.
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


def main() -> int:
    check = Checks()

    def oauth_error(res: Answer, expected: str, what: str) -> None:
        """RFC 6749, section 5.2: 400, JSON with `error`, never cached."""
        body = res.json() if res.body.startswith(b"{") else {}
        check(res.status == 400 and body.get("error") == expected,
              f"{what}: expected 400 {expected}, got {res.status} {res.body!r}")
        check("no-store" in res.all("Cache-Control"), f"{what}: Cache-Control {res.all('Cache-Control')}")
        check(not res.all("Set-Cookie"), f"{what}: a cookie was set")

    with tempfile.TemporaryDirectory(prefix="keycard-device-") as tmp:
        log_path = Path(tmp) / "server.log"
        server, base = start_server(Path(tmp), log_path)
        token_url, device_url = f"{base}/oauth/token", f"{base}/oauth/device_authorization"
        agent = [("User-Agent", "rfc8628-client/1.0 (python)")]
        try:
            # The guest, checked in in a browser beside the terminal.
            res = send("POST", f"{base}/api/auth/register", [],
                       {"username": f"dev{int(time.time())}", "password": PASSWORD})
            check(res.status == 201, f"the guest checks in: {res.status}")
            browser = [("Authorization", f"Bearer {res.json()['access_token']}")]

            def decide(user_code: str, decision: str) -> Answer:
                return send("POST", f"{base}/api/device/approve", browser,
                            {"user_code": user_code, "decision": decision})

            # Section 3.1 and 3.2.
            res = send("POST", device_url, agent, {"client_id": CLIENT})
            check(res.status == 200, f"device authorization: {res.status} {res.body!r}")
            grant = res.json()
            members = {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                       "expires_in", "interval"}
            check(members <= grant.keys(), f"section 3.2's members: {sorted(grant)}")
            check(bool(USER_CODE.match(grant["user_code"])), f"user code: {grant['user_code']}")
            check(grant["verification_uri"] == f"{base}/device", f"verification_uri: {grant['verification_uri']}")
            check(grant["user_code"] in grant["verification_uri_complete"], "verification_uri_complete")
            check(grant["interval"] == 5 and grant["expires_in"] > 0, f"interval {grant['interval']}")
            interval = grant["interval"]
            poll = {"grant_type": DEVICE_GRANT, "device_code": grant["device_code"], "client_id": CLIENT}

            # Section 3.4 and 3.5: pending, then too fast.
            oauth_error(send("POST", token_url, agent, poll), "authorization_pending", "the first poll")
            oauth_error(send("POST", token_url, agent, poll), "slow_down", "a poll at once")
            interval += 5

            # Every wrong step, as RFC 6749 section 5.2 names it.
            wrong = [
                ("an unknown client", device_url, {"client_id": "not-registered"}, "invalid_client"),
                ("no client", device_url, {}, "invalid_request"),
                ("a grant type not served", token_url, {"grant_type": "password", "client_id": CLIENT},
                 "unsupported_grant_type"),
                ("no device code", token_url, {"grant_type": DEVICE_GRANT, "client_id": CLIENT},
                 "invalid_request"),
                ("a made-up device code", token_url, dict(poll, device_code="made-up"), "invalid_grant"),
            ]
            for what, url, form, expected in wrong:
                oauth_error(send("POST", url, agent, form), expected, what)
            # A parameter sent twice (section 3.2).
            twice = [("client_id", CLIENT), ("client_id", CLIENT)]
            oauth_error(send("POST", device_url, agent, twice), "invalid_request", "a parameter twice")

            # The guest approves, typing the code as people do.
            res = decide(grant["user_code"].replace("-", "").lower(), "approve")
            check(res.status == 200 and res.json()["state"] == "approved", f"approval: {res.status} {res.body!r}")
            time.sleep(interval)
            res = send("POST", token_url, agent, poll)
            check(res.status == 200, f"the poll after approval: {res.status} {res.body!r}")
            check("no-store" in res.all("Cache-Control") and not res.all("Set-Cookie"), "token answer headers")
            tokens = res.json()
            check({"access_token", "token_type", "expires_in", "refresh_token"} <= tokens.keys(),
                  f"section 5.1's members: {sorted(tokens)}")
            check(tokens.get("token_type") == "Bearer", f"token_type {tokens.get('token_type')}")
            time.sleep(interval)
            oauth_error(send("POST", token_url, agent, poll), "invalid_grant", "the code used again")

            # The access token opens the doors.
            access = tokens["access_token"]
            res = send("GET", f"{base}/amenities/gym", [("Authorization", f"Bearer {access}")])
            check(res.status == 200, f"the gym: {res.status}")
            res = send("POST", f"{base}/api/me", [("Authorization", f"Bearer {access}")], {})
            check(res.status == 200, f"/api/me: {res.status}")

            # Section 6: refresh, rotated.
            first = tokens["refresh_token"]
            refresh = {"grant_type": "refresh_token", "refresh_token": first, "client_id": CLIENT}
            res = send("POST", token_url, agent, refresh)
            check(res.status == 200, f"refresh: {res.status} {res.body!r}")
            second = res.json()
            check(second["refresh_token"] != first, "the refresh token rotates")
            # Not at the browser's front desk, in its cookie.
            res = send("POST", f"{base}/api/auth/refresh", [("Cookie", f"__Secure-confirmation={first}")])
            check(res.status == 401, f"the browser's desk refuses it: {res.status}")
            res = send("POST", token_url, agent, dict(refresh, refresh_token=second["refresh_token"]))
            check(res.status == 200, f"the second refresh: {res.status}")
            third = res.json()
            # The first again, two rotations later: a copy. The whole booking is cancelled.
            oauth_error(send("POST", token_url, agent, refresh), "invalid_grant", "an old refresh token")
            oauth_error(send("POST", token_url, agent, dict(refresh, refresh_token=third["refresh_token"])),
                        "invalid_grant", "the current one after the replay")
            res = send("POST", f"{base}/api/me", [("Authorization", f"Bearer {third['access_token']}")], {})
            check(res.status == 401, f"the booking's key card after the replay: {res.status}")

            # A request the guest denies.
            res = send("POST", device_url, agent, {"client_id": CLIENT})
            denied = res.json()
            check(decide(denied["user_code"], "deny").status == 200, "the guest denies")
            oauth_error(send("POST", token_url, agent, dict(poll, device_code=denied["device_code"])),
                        "access_denied", "a denied request")
        finally:
            panics = stop_server(server, log_path)
            check(not panics, f"the server panicked: {panics}")

    return check.report("device client (RFC 8628 + RFC 6749, standard library)")


if __name__ == "__main__":
    sys.exit(main())
