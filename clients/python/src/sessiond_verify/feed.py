"""Following sessiond's revocation feed in a daemon thread: a snapshot to start from, then
the Server-Sent-Events stream, reconnecting from the last cursor (`Last-Event-ID`) with
backoff. A cursor sessiond can no longer continue (409 REVOCATION_CURSOR_EXPIRED, or a
`cursor_expired` event) means a fresh snapshot.

Only a heartbeat (or a snapshot) proves the verifier up to date: sessiond sends one after
every catch-up and every 5 s. Facts replayed during a catch-up do not, since a later fact
of the same catch-up may still be on its way."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import math
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ._http import USER_AGENT, request_json
from .denylist import DenyList, Fact
from .errors import StartError

log = logging.getLogger("sessiond_verify")

# Reconnect waits: doubled after each failed attempt, reset once a stream answered 200.
FIRST_BACKOFF = 0.25
MAX_BACKOFF = 2.0


class CursorExpired(Exception):
    pass


class Feed:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        denied: DenyList,
        *,
        on_keys_changed: Callable[[], None],
        read_timeout: float,
        timeout: float,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._denied = denied
        self._on_keys_changed = on_keys_changed
        self._read_timeout = read_timeout
        self._timeout = timeout
        self._cursor = "0"
        # monotonic time at which the feed last proved us up to date
        self.heard = time.monotonic()
        self._stop = threading.Event()
        self._conn: http.client.HTTPConnection | None = None
        self._conn_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.snapshots = 0
        """How many snapshots were taken (1 after start; more after expired cursors)."""

    # -- snapshot ---------------------------------------------------------------------

    def snapshot(self) -> None:
        """Replaces the deny-set with the live revocations; raises StartError."""
        page = request_json(
            "GET",
            f"{self._base_url}/v1/revocations/snapshot",
            api_key=self._api_key,
            timeout=self._timeout,
        )
        events, cursor = page.get("events"), page.get("next_cursor")
        if not isinstance(events, list) or not isinstance(cursor, (str, int)):
            raise StartError("a malformed revocation snapshot")
        facts = [f for f in (_fact(e) for e in events) if f is not None]
        self._denied.replace(facts)
        self._cursor = str(cursor)
        self.snapshots += 1
        self.heard = time.monotonic()

    # -- the follower thread ----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sessiond-feed", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with self._conn_lock:
            conn = self._conn
        if conn is not None and conn.sock is not None:
            # Wakes the thread out of a blocking read at once.
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stop.is_set():
            try:
                connected = self._stream_once()
                if connected:
                    backoff = FIRST_BACKOFF
                log.debug("revocation stream ended; reconnecting")
            except CursorExpired:
                log.info("revocation cursor %s expired; taking a snapshot", self._cursor)
                try:
                    self.snapshot()
                    # Keys may have changed while we could not follow.
                    self._on_keys_changed()
                    backoff = FIRST_BACKOFF
                    continue
                except StartError as e:
                    log.warning("revocation snapshot failed: %s", e)
            except Exception as e:
                if not self._stop.is_set():
                    log.debug("revocation stream lost: %s", e)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _stream_once(self) -> bool:
        """Follows one connection until it ends. True if sessiond answered 200."""
        url = urllib.parse.urlsplit(self._base_url)
        conn_class = (
            http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        )
        # The socket timeout bounds every read: a connection silent for two heartbeats is
        # dead whatever TCP says (a half-open socket after a network fault never errors).
        conn = conn_class(url.hostname or "127.0.0.1", url.port, timeout=self._read_timeout)
        with self._conn_lock:
            if self._stop.is_set():
                return False
            self._conn = conn
        try:
            conn.request(
                "GET",
                f"{url.path}/v1/revocations/stream",
                headers={
                    "Authorization": f"Bearer {self._api_key}",
                    "Accept": "text/event-stream",
                    "Last-Event-ID": self._cursor,
                    "User-Agent": USER_AGENT,
                },
            )
            resp = conn.getresponse()
            if resp.status == 409:
                raise CursorExpired()
            if resp.status != 200:
                raise OSError(f"stream answered {resp.status}: {resp.read(512)!r}")
            self._read_events(resp)
            return True
        finally:
            with self._conn_lock:
                self._conn = None
            conn.close()

    def _read_events(self, resp: http.client.HTTPResponse) -> None:
        name, event_id, data = "", None, []
        while not self._stop.is_set():
            raw = resp.readline(65536)
            if not raw:
                return  # the stream ended
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field == "event":
                    name = value
                elif field == "id":
                    event_id = value
                elif field == "data":
                    data.append(value)
                continue  # comments (":…") and unknown fields are ignored
            self._dispatch(name, event_id, "\n".join(data))
            name, event_id, data = "", None, []

    def _dispatch(self, name: str, event_id: str | None, data: str) -> None:
        if name == "heartbeat":
            self._denied.evict(time.time())
            self.heard = time.monotonic()
            return
        if name == "cursor_expired":
            raise CursorExpired()
        if not name:
            return
        try:
            payload = json.loads(data)
        except ValueError:
            payload = None
        fact = _fact(payload)
        if fact is not None:
            self._apply(fact)
        if event_id:
            self._cursor = event_id

    def _apply(self, fact: Fact) -> None:
        if fact.kind == "session_revoked" and fact.sid is not None:
            self._denied.deny_session(fact.sid, fact.reason, fact.max_exp)
        elif fact.kind == "user_revoked" and fact.sub is not None and fact.not_before is not None:
            self._denied.deny_user(fact.sub, fact.reason, fact.not_before, fact.max_exp)
        elif fact.kind == "keys_changed":
            self._on_keys_changed()


def _fact(event: Any) -> Fact | None:
    """A feed event as a Fact, or None when it is not one we understand."""
    if not isinstance(event, dict):
        return None
    kind, max_exp = event.get("type"), _timestamp(event.get("max_exp"))
    if not isinstance(kind, str) or max_exp is None:
        return None
    reason, sid, sub = event.get("reason"), event.get("sid"), event.get("sub")
    not_before = _timestamp(event.get("not_before"))
    return Fact(
        kind=kind,
        max_exp=max_exp,
        reason=reason if isinstance(reason, str) else "",
        sid=sid if isinstance(sid, str) else None,
        sub=sub if isinstance(sub, str) else None,
        # whole seconds, like `iat`
        not_before=math.floor(not_before) if not_before is not None else None,
    )


def _timestamp(value: Any) -> float | None:
    """An RFC 3339 timestamp as Unix seconds."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
