"""Receiving sessiond's webhooks: check the Standard Webhooks signature
(https://www.standardwebhooks.com) of a request before its event is trusted.

    from sessiond_verify.webhooks import WebhookVerificationError, verify_webhook

    try:
        event = verify_webhook(SECRET, request.headers, raw_body)
    except WebhookVerificationError as e:
        return 400, e.reason

sessiond sends, with each event's JSON body:

- ``webhook-id``: the event's id, the same on every retry (deduplicate on it);
- ``webhook-timestamp``: integer seconds since the epoch of this attempt;
- ``webhook-signature``: space-separated
  ``v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>``, several while a secret is
  being rotated.

The key is the base64 after ``whsec_`` in the endpoint's secret. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, Literal, Protocol

__all__ = [
    "DEFAULT_TOLERANCE",
    "Body",
    "HeadersLike",
    "Reason",
    "WebhookVerificationError",
    "sign_webhook",
    "verify_webhook",
]

Body = str | bytes | bytearray | memoryview
"""The raw body as received: text, or bytes."""

Reason = Literal[
    "missing_headers",
    "bad_timestamp",
    "too_old",
    "too_new",
    "no_matching_signature",
    "bad_secret",
]
"""Why a webhook was refused (see :func:`verify_webhook` for each)."""

DEFAULT_TOLERANCE: Final = 300
"""How far ``webhook-timestamp`` may be from now, either way, in seconds, by default."""


class HeadersLike(Protocol):
    """The request's headers: anything with ``items()`` giving ``(name, value)`` pairs, names in
    any case: a ``dict``, Starlette/FastAPI's and Django's ``request.headers``, an
    ``http.server`` handler's ``self.headers``."""

    def items(self) -> Iterable[tuple[str, str]]: ...


_SECRET_PREFIX: Final = "whsec_"
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*(={0,2})")
_TIMESTAMP: Final = re.compile(r"[0-9]{1,15}")


class WebhookVerificationError(Exception):
    """A refused webhook: answer it with a 4xx and do not act on it. Branch on ``reason``."""

    def __init__(self, reason: Reason, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason: Reason = reason
        self.detail: str = detail or reason

    def __repr__(self) -> str:
        return f"WebhookVerificationError({self.reason!r}, {self.detail!r})"


def verify_webhook(
    secret: str,
    headers: HeadersLike,
    body: Body,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | datetime | None = None,
) -> dict[str, Any]:
    """Verify a webhook and return its event, the body's JSON object.

    ``secret`` is ``whsec_`` followed by the base64 of the key (without the prefix it is
    taken as base64 as well). ``headers`` holds the request's headers, names in any case: a
    plain ``dict``, Starlette/FastAPI's or Django's ``request.headers``, an ``http.server``
    handler's ``self.headers``; several values of one header are joined with ``", "``. ``body``
    must be the raw body exactly as received (``await request.body()``,
    ``request.body``), never JSON parsed and serialised again.

    Checks, in this order, raising :class:`WebhookVerificationError` with the ``reason``:

    - ``bad_secret``: the secret is not base64 of a key (a setup error, whatever the request);
    - ``missing_headers``: ``webhook-id``, ``webhook-timestamp`` or ``webhook-signature`` is
      absent or empty;
    - ``bad_timestamp``: ``webhook-timestamp`` is not an integer number of seconds;
    - ``too_old`` / ``too_new``: it is more than ``tolerance`` seconds before / after ``now``
      (default: the clock; a ``datetime`` or seconds since the epoch): a replay, or a clock
      far off;
    - ``no_matching_signature``: no ``v1,`` entry matches (compared in constant time; other
      versions are ignored; one match is enough, so a rotated secret works).

    A body that verifies but is not a JSON object raises ``ValueError``.
    """
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise ValueError("tolerance must be a finite number of seconds, 0 or more")
    now_s = _now_seconds(now)
    key = _secret_key(secret)

    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError(
            "missing_headers",
            "webhook-id, webhook-timestamp and webhook-signature are all required",
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookVerificationError(
            "bad_timestamp", "webhook-timestamp is not an integer number of seconds"
        )
    age = now_s - int(timestamp)
    if age > tolerance:
        raise WebhookVerificationError(
            "too_old", f"webhook-timestamp is {age} s old (tolerance {tolerance} s)"
        )
    if age < -tolerance:
        raise WebhookVerificationError(
            "too_new", f"webhook-timestamp is {-age} s in the future (tolerance {tolerance} s)"
        )

    raw = _body_bytes(body)
    expected = _mac(key, msg_id, timestamp, raw)
    matched = False
    for token in signatures.split():
        entry = token.rstrip(",")  # a trailing comma: two header lines folded with ", "
        if not entry.startswith("v1,"):
            continue
        candidate = _from_base64(entry[3:])
        if candidate is not None and hmac.compare_digest(candidate, expected):
            matched = True
    if not matched:
        raise WebhookVerificationError(
            "no_matching_signature", "no v1 signature matches this secret and request"
        )

    event = json.loads(raw)
    if not isinstance(event, dict):
        raise ValueError("the webhook body is not a JSON object")
    return event


def sign_webhook(secret: str, msg_id: str, timestamp: int | datetime, body: Body) -> str:
    """Sign like sessiond does: return ``v1,<base64 signature>``, the value of a
    ``webhook-signature`` header (join several with a space). For a receiver's own tests.
    ``timestamp`` is seconds since the epoch, or a ``datetime`` (whole seconds taken)."""
    if isinstance(timestamp, datetime):
        seconds = math.floor(timestamp.timestamp())
    elif isinstance(timestamp, int) and not isinstance(timestamp, bool):
        seconds = timestamp
    else:
        raise TypeError("timestamp must be whole seconds since the epoch (int) or a datetime")
    if not 0 <= seconds < 10**15:
        raise ValueError("timestamp must be a whole number of seconds since the epoch")
    mac = _mac(_secret_key(secret), msg_id, str(seconds), _body_bytes(body))
    return "v1," + base64.b64encode(mac).decode("ascii")


def _now_seconds(now: float | datetime | None) -> int:
    if now is None:
        seconds = time.time()
    elif isinstance(now, datetime):
        seconds = now.timestamp()
    elif isinstance(now, int | float) and not isinstance(now, bool):
        seconds = float(now)
    else:
        raise TypeError("now must be a datetime or seconds since the epoch")
    if not math.isfinite(seconds):
        raise ValueError("now must be a finite number of seconds since the epoch")
    return math.floor(seconds)


def _secret_key(secret: str) -> bytes:
    if not isinstance(secret, str):
        raise WebhookVerificationError("bad_secret", "the webhook secret must be a string")
    encoded = secret[len(_SECRET_PREFIX) :] if secret.startswith(_SECRET_PREFIX) else secret
    key = _from_base64(encoded)
    if not key:
        raise WebhookVerificationError(
            "bad_secret", "the webhook secret is not whsec_ followed by base64"
        )
    return key


def _from_base64(s: str) -> bytes | None:
    """Standard base64 (``+/``), padding optional; None for anything else."""
    m = _BASE64.fullmatch(s)
    if m is None:
        return None
    padding = len(m.group(1))
    data = s[: len(s) - padding]
    if len(data) % 4 == 1 or (padding and len(s) % 4):
        return None
    return base64.b64decode(data + "=" * (-len(data) % 4))


def _header(headers: HeadersLike, name: str) -> str:
    values = [
        v.strip()
        for k, v in headers.items()
        if isinstance(k, str) and k.lower() == name and isinstance(v, str)
    ]
    return ", ".join(v for v in values if v)


def _body_bytes(body: Body) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError("the webhook body must be str or bytes")


def _mac(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()
