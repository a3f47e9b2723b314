"""The real sessiond binary on a port of its choosing, with helpers to set scenarios up
through its HTTP API. Nothing here imitates sessiond."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx

BIN = os.environ.get("SESSIOND_BIN", "/tmp/sessiond-bin/sessiond")  # noqa: S108
PASSWORD = "correct horse battery staple"


class Sessiond:
    """One sessiond instance on SQLite in its own data folder. `stop()` + `start()` keep
    the port and the data (a restart); `rotate_keys()` runs `keys rotate --now`."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        admin_key: str | None = None,
        verifier_key: str | None = None,
    ) -> None:
        if not os.path.exists(BIN):
            raise RuntimeError(f"no sessiond binary at {BIN}: set SESSIOND_BIN")
        self.data_dir = tempfile.mkdtemp(prefix="sessiond-py-")
        # Instances sharing a database share their keys too.
        self.admin_key = admin_key or secrets.token_hex(32)
        self.verifier_key = verifier_key or secrets.token_hex(32)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
        self.env.update(
            {
                "SESSIOND_LOG_FORMAT": "json",
                "SESSIOND_ADMIN_API_KEY": self.admin_key,
                "SESSIOND_VERIFIER_API_KEYS": json.dumps([self.verifier_key]),
                "SESSIOND_RATE_LIMITS__ENABLED": "false",
                "SESSIOND_PASSWORD_HASH_WORKERS": "1",
                "SESSIOND_ACCESS_TOKEN_TTL": "60s",
                "SESSIOND_CLEANUP_INTERVAL": "0s",
            }
        )
        self.env.update(env or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[str] = []
        self.http = httpx.Client(timeout=30)
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        bind = f"127.0.0.1:{self.port}"
        args = [BIN, "--data-dir", self.data_dir, "serve", "--bind", bind]
        # The same port again may take a moment to be free after a stop.
        for _attempt in range(20):
            proc = subprocess.Popen(
                args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            addr = self._wait_listening(proc)
            if addr is not None:
                self.proc = proc
                self.port = int(addr.rsplit(":", 1)[1])
                return
            proc.wait()
            time.sleep(0.25)
        raise RuntimeError("sessiond did not start:\n" + "\n".join(self.logs[-20:]))

    def _wait_listening(self, proc: subprocess.Popen[bytes]) -> str | None:
        assert proc.stdout is not None
        found: list[str] = []
        ready = threading.Event()
        stream = proc.stdout

        def pump() -> None:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip()
                self.logs.append(line)
                if not found and "sessiond listening" in line:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    addr = event.get("addr") or event.get("fields", {}).get("addr")
                    if addr:
                        found.append(str(addr))
                        ready.set()
            ready.set()  # exited

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(30)
        return found[0] if found else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def rotate_keys(self) -> None:
        """`sessiond keys rotate --now` (the server must be stopped)."""
        subprocess.run(
            [BIN, "--data-dir", self.data_dir, "keys", "rotate", "--now"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def close(self) -> None:
        self.stop()
        self.http.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- the API ------------------------------------------------------------------------

    def call(
        self, method: str, path: str, *, key: str | None = None, body: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http.request(method, self.url + path, headers=headers, json=body)

    def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.call(method, path, key=self.admin_key, body=body)

    def register(self) -> dict[str, Any]:
        """A new user (one password hash: slow on a debug build, so tests make few)."""
        email = f"u-{uuid.uuid4().hex[:12]}@example.com"
        r = self.call("POST", "/v1/users", body={"email": email, "password": PASSWORD})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def session(self, user_id: str) -> dict[str, Any]:
        """Another session of the user, made with the admin key (no password hash)."""
        r = self.admin("POST", "/v1/admin/sessions", {"user_id": user_id})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def revoke(self, session_id: str) -> None:
        r = self.admin("DELETE", f"/v1/admin/sessions/{session_id}")
        assert r.status_code == 204, r.text

    def logout(self, access_token: str) -> None:
        r = self.call("POST", "/v1/logout", key=access_token)
        assert r.status_code == 204, r.text

    def deactivate(self, user_id: str) -> None:
        r = self.admin("PATCH", f"/v1/admin/users/{user_id}", {"active": False})
        assert r.status_code == 200, r.text

    def jwks(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get(self.url + "/.well-known/jwks.json").json()
        return body


def wait_for(condition: Any, timeout: float, interval: float = 0.02) -> float:
    """Polls until condition() is truthy; the seconds it took. Fails after timeout."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(interval)
