"""The Verifier: local JWT checks plus the deny-set the revocation feed fills."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Literal

from ._http import request_json
from .claims import Claims
from .denylist import DenyList
from .errors import (
    REVOCATION_FEED_STALE,
    SESSION_REVOKED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    StartError,
    VerifyError,
)
from .feed import Feed
from .keys import InvalidToken, KeySet, UnknownKid

log = logging.getLogger("sessiond_verify")

Fallback = Literal["introspect"] | None


class Verifier:
    """Checks sessiond access tokens in memory and refuses revoked sessions at once.

    Create it, call `start()` (JWKS + revocation snapshot, then a daemon thread follows
    the feed), then `verify(token)` from any thread. One per process is enough."""

    def __init__(
        self,
        url: str,
        api_key: str,
        issuer: str = "sessiond",
        audience: str | None = None,
        *,
        staleness_bound: float = 15.0,
        jwks_cooldown: float = 10.0,
        fallback: Fallback = None,
        read_timeout: float = 10.0,
        http_timeout: float = 10.0,
        introspect_timeout: float = 2.0,
    ) -> None:
        """
        url: sessiond's base URL (any instance). api_key: a verifier key
        (`verifier_api_keys`) or the admin key. audience: defaults to the issuer, as
        sessiond's does. staleness_bound: seconds the feed may be silent (no heartbeat,
        sent every 5 s) before checks fail closed. jwks_cooldown: least seconds between two
        JWKS fetches caused by unknown `kid`s. fallback="introspect": while the feed is
        stale, ask sessiond (POST /v1/introspect) instead of refusing; if sessiond cannot
        answer either, still refuse (REVOCATION_FEED_STALE). read_timeout: a stream silent
        this long is reconnected (two heartbeats).
        """
        if fallback not in (None, "introspect"):
            raise ValueError("fallback must be None or 'introspect'")
        if staleness_bound <= 0:
            raise ValueError("staleness_bound must be positive")
        self.url = url.rstrip("/")
        self._api_key = api_key
        self.staleness_bound = staleness_bound
        self.fallback = fallback
        self._introspect_timeout = introspect_timeout
        self._keys = KeySet(
            self.url, issuer, audience or issuer, cooldown=jwks_cooldown, timeout=http_timeout
        )
        self._denied = DenyList()
        self._feed = Feed(
            self.url,
            api_key,
            self._denied,
            on_keys_changed=self._refresh_keys,
            read_timeout=read_timeout,
            timeout=http_timeout,
        )
        self._started = False
        self._start_lock = threading.Lock()

    def start(self) -> Verifier:
        """Loads the JWKS and the revocation snapshot, then follows the feed in a daemon
        thread. Raises StartError when sessiond cannot be reached or refuses the key."""
        with self._start_lock:
            if self._started:
                return self
            self._keys.refresh()
            self._feed.snapshot()
            self._feed.start()
            self._started = True
        return self

    def close(self) -> None:
        """Stops following the feed (verify then fails closed once the bound passes)."""
        self._feed.close()

    def __enter__(self) -> Verifier:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- verify -------------------------------------------------------------------------

    def verify(self, token: str) -> Claims:
        """The token's claims, or VerifyError: signature and claims first, then expiry,
        then the feed's freshness, then the deny-set."""
        if not self._started:
            raise RuntimeError("Verifier.start() was not called")
        if not isinstance(token, str):
            raise VerifyError(TOKEN_INVALID, "the token is not a string")
        try:
            claims = self._checked(token)
        except InvalidToken:
            raise VerifyError(TOKEN_INVALID, "the token is invalid") from None
        now = time.time()
        if claims.exp <= now:
            expired_at = datetime.fromtimestamp(claims.exp, timezone.utc)
            raise VerifyError(
                TOKEN_EXPIRED,
                "the token expired",
                expired_at=expired_at.isoformat().replace("+00:00", "Z"),
            )
        reason = self._denied.refusal(claims, now)
        if time.monotonic() - self._feed.heard > self.staleness_bound:
            if self.fallback == "introspect":
                if reason is not None:  # known revoked stays revoked
                    raise _revoked(reason)
                return self._introspected(token, claims)
            raise VerifyError(REVOCATION_FEED_STALE, "the revocation feed is stale")
        if reason is not None:
            raise _revoked(reason)
        return claims

    def _checked(self, token: str) -> Claims:
        try:
            return self._keys.verify(token)
        except UnknownKid:
            # Maybe a key published since our last fetch: one fetch per cooldown.
            self._keys.refresh_on_unknown_kid()
            try:
                return self._keys.verify(token)
            except UnknownKid:
                raise InvalidToken("unknown kid") from None

    def _introspected(self, token: str, claims: Claims) -> Claims:
        """The stale-feed fallback: sessiond's own word on the token."""
        try:
            answer = request_json(
                "POST",
                f"{self.url}/v1/introspect",
                api_key=self._api_key,
                body={"token": token},
                timeout=self._introspect_timeout,
            )
        except StartError as e:
            log.warning("introspection fallback failed: %s", e)
            raise VerifyError(
                REVOCATION_FEED_STALE, "the revocation feed is stale and sessiond did not answer"
            ) from None
        if answer.get("active") is not True or answer.get("sid") != claims.sid:
            raise VerifyError(SESSION_REVOKED, "sessiond says the token is not active")
        return claims

    # -- state ----------------------------------------------------------------------------

    def denied_count(self) -> tuple[int, int]:
        """(sessions, users) in the deny-set."""
        return self._denied.counts()

    def is_stale(self) -> bool:
        return time.monotonic() - self._feed.heard > self.staleness_bound

    @property
    def snapshots_taken(self) -> int:
        """Snapshots taken so far: 1 after start, one more per expired cursor."""
        return self._feed.snapshots

    def key_ids(self) -> list[str]:
        """The `kid`s currently held."""
        return self._keys.kids()

    def _refresh_keys(self) -> None:
        try:
            self._keys.refresh()
        except StartError as e:
            log.warning("could not refresh sessiond's JWKS after keys_changed: %s", e)


def _revoked(reason: str) -> VerifyError:
    return VerifyError(
        SESSION_REVOKED, f"the session was revoked ({reason})", revoked_reason=reason
    )
