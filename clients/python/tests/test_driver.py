"""The conformance driver, run as the scenario runs it: a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from harness import Sessiond, wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_the_driver_speaks_the_conformance_contract(server: Sessiond, user: dict[str, Any]) -> None:
    env = {
        **os.environ,
        "SESSIOND_URL": server.url,
        "SESSIOND_VERIFIER_KEY": server.verifier_key,
        "SESSIOND_ISSUER": "sessiond",
        "SESSIOND_AUDIENCE": "sessiond",
        "STALENESS_MS": "15000",
        "JWKS_COOLDOWN_MS": "1000",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessiond_verify._conformance_driver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening "), line
        base = f"http://127.0.0.1:{int(line.split()[1])}"

        issued = server.session(user["user"]["id"])
        headers = {"Authorization": f"Bearer {issued['access_token']}"}
        ok = httpx.get(f"{base}/protected", headers=headers)
        assert ok.status_code == 200
        assert ok.headers["content-type"] == "application/json"
        assert ok.json() == {"sub": user["user"]["id"], "sid": issued["session"]["id"]}

        none = httpx.get(f"{base}/protected")
        assert (none.status_code, none.json()["code"]) == (401, "TOKEN_NOT_PROVIDED")
        assert none.headers["www-authenticate"].startswith("Bearer")
        assert none.headers["content-type"] == "application/problem+json"

        stats_before = httpx.get(f"{base}/stats").json()
        server.revoke(issued["session"]["id"])
        wait_for(lambda: httpx.get(f"{base}/protected", headers=headers).status_code == 401, 2)
        body = httpx.get(f"{base}/protected", headers=headers).json()
        assert (body["code"], body["revoked_reason"]) == ("SESSION_REVOKED", "admin")
        stats = httpx.get(f"{base}/stats").json()
        assert set(stats) == {"denied_sessions", "denied_users"}
        assert stats["denied_sessions"] == stats_before["denied_sessions"] + 1

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_driver_exits_non_zero_when_the_verifier_cannot_start() -> None:
    env = {
        **os.environ,
        "SESSIOND_URL": "http://127.0.0.1:9",
        "SESSIOND_VERIFIER_KEY": "k" * 40,
        "SESSIOND_ISSUER": "sessiond",
        "SESSIOND_AUDIENCE": "sessiond",
        "STALENESS_MS": "15000",
        "JWKS_COOLDOWN_MS": "1000",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sessiond_verify._conformance_driver"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    assert "could not start" in done.stderr
