"""What the outside clients in this folder share (dpop-client.py, device-client.py, and the
API fuzzer's start): the server `cargo leptos build` made, started on a free port with a
temporary data folder, requests sent exactly as written (each header line as given), and the
tally of checks; nothing of Keycard's own code.
"""

import json
import os
import re
import subprocess
import sys
import time
import http.client
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


def start_server(data_dir: Path, log_path: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """The built server on 127.0.0.1:0 with its data in `data_dir` and its output in `log_path`,
    `settings` (e.g. KEYCARD_KEY_CARD_TTL_SECS="3600") added to its environment: the process and
    the address it printed."""
    binary = ROOT / "target" / "debug" / "keycard-server"
    if not binary.exists():
        sys.exit(f"{binary} is missing: run `cargo leptos build` first (scripts/test does)")
    env = dict(
        os.environ,
        KEYCARD_ADDR="127.0.0.1:0",
        KEYCARD_DATA_DIR=str(data_dir),
        LEPTOS_SITE_ROOT=str(ROOT / "target" / "site"),
        KEYCARD_ENV="development",
        RUST_LOG="warn",
    )
    env.update(settings)
    log = open(log_path, "w")
    server = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"Keycard is open at (http://[0-9.:]+)", log_path.read_text())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            sys.exit(f"the server exited with {server.returncode}:\n{log_path.read_text()}")
        time.sleep(0.1)
    server.kill()
    sys.exit(f"the server did not start:\n{log_path.read_text()}")


def stop_server(server: subprocess.Popen, log_path: Path) -> list[str]:
    """Stops the server (SIGTERM): the lines of its log that say it panicked."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    return [line for line in log_path.read_text().splitlines() if "panicked" in line]


class Checks:
    """A tally: every check counted, every failure kept with what it was."""

    def __init__(self) -> None:
        self.count = 0
        self.failures: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        self.count += 1
        if not ok:
            self.failures.append(what)

    def report(self, title: str) -> int:
        """Prints the failures and the tally: the exit code."""
        for failure in self.failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        print(f"{title}: {self.count - len(self.failures)} of {self.count} checks passed")
        return 1 if self.failures else 0


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)


def send(method: str, url: str, headers: list[tuple[str, str]], form=None) -> Answer:
    """One request, each header line as given (two DPoP headers stay two); `form` is a dict or
    a list of pairs (a name may repeat)."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    body = urllib.parse.urlencode(form).encode() if form is not None else b""
    conn.putrequest(method, parsed.path)
    for name, value in headers:
        conn.putheader(name, value)
    if method == "POST":
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body if method == "POST" else None)
    res = conn.getresponse()
    answer = Answer(res.status, res.getheaders(), res.read())
    conn.close()
    return answer
