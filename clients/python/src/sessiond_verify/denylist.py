"""The revocations still worth knowing. Each is forgotten once its `max_exp` has passed,
since no token it is about can be alive then, so memory stays bounded by the revocations of
one access-token lifetime.

Reads take no lock: each lookup is one dict `get` (atomic in CPython), and a snapshot swaps
in whole new dicts. Writers (only the feed thread, and `replace`) hold `_lock`."""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass

from .claims import Claims


@dataclass(slots=True)
class Entry:
    reason: str
    max_exp: float
    not_before: int = 0
    """Users only: tokens issued before this second are dead."""


class DenyList:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Entry] = {}
        self._users: dict[str, Entry] = {}
        # (max_exp, kind, key) in expiry order, so eviction touches only what is due
        # instead of scanning 100 000 entries on every heartbeat. Entries whose max_exp
        # was raised since are skipped when popped.
        self._expiry: list[tuple[float, str, str]] = []

    def deny_session(self, sid: str, reason: str, max_exp: float) -> None:
        with self._lock:
            _deny_session(self._sessions, self._expiry, sid, reason, max_exp)

    def deny_user(self, sub: str, reason: str, not_before: int, max_exp: float) -> None:
        with self._lock:
            _deny_user(self._users, self._expiry, sub, reason, not_before, max_exp)

    def replace(self, facts: list[Fact]) -> None:
        """Swaps in the deny-set a snapshot describes, in one step: no moment without it."""
        sessions: dict[str, Entry] = {}
        users: dict[str, Entry] = {}
        expiry: list[tuple[float, str, str]] = []
        for fact in facts:
            if fact.kind == "session_revoked" and fact.sid is not None:
                _deny_session(sessions, expiry, fact.sid, fact.reason, fact.max_exp)
            elif (
                fact.kind == "user_revoked" and fact.sub is not None and fact.not_before is not None
            ):
                _deny_user(users, expiry, fact.sub, fact.reason, fact.not_before, fact.max_exp)
        with self._lock:
            self._sessions, self._users, self._expiry = sessions, users, expiry

    def refusal(self, claims: Claims, now: float) -> str | None:
        """The revocation reason if the token is denied."""
        entry = self._sessions.get(claims.sid)
        if entry is not None and entry.max_exp > now:
            return entry.reason
        if claims.sub is None:
            return None
        entry = self._users.get(claims.sub)
        if entry is not None and entry.max_exp > now and claims.iat < entry.not_before:
            return entry.reason
        return None

    def evict(self, now: float) -> None:
        """Forgets what can no longer matter."""
        with self._lock:
            expiry = self._expiry
            while expiry and expiry[0][0] <= now:
                _, kind, key = heapq.heappop(expiry)
                table = self._sessions if kind == "s" else self._users
                entry = table.get(key)
                if entry is not None and entry.max_exp <= now:
                    del table[key]

    def counts(self) -> tuple[int, int]:
        """(sessions, users) held."""
        return len(self._sessions), len(self._users)


@dataclass(slots=True)
class Fact:
    """One revocation fact of the feed, as the deny-set needs it."""

    kind: str
    max_exp: float
    reason: str = ""
    sid: str | None = None
    sub: str | None = None
    not_before: int | None = None


def _deny_session(
    sessions: dict[str, Entry],
    expiry: list[tuple[float, str, str]],
    sid: str,
    reason: str,
    max_exp: float,
) -> None:
    sessions[sid] = Entry(reason, max_exp)
    heapq.heappush(expiry, (max_exp, "s", sid))


def _deny_user(
    users: dict[str, Entry],
    expiry: list[tuple[float, str, str]],
    sub: str,
    reason: str,
    not_before: int,
    max_exp: float,
) -> None:
    # The newest cut-off wins and the entry lives as long as the longest-lived token any
    # of its facts is about (the same rule as the Rust verifier's denylist.rs).
    old = users.get(sub)
    if old is None:
        users[sub] = Entry(reason, max_exp, not_before)
    elif not_before >= old.not_before:
        users[sub] = Entry(reason, max(max_exp, old.max_exp), not_before)
    else:
        return
    heapq.heappush(expiry, (users[sub].max_exp, "u", sub))
