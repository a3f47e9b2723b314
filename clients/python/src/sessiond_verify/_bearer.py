"""Reading the bearer token out of an Authorization header, the same way for every
framework integration."""

from __future__ import annotations

import json

from .errors import VerifyError


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110), or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(error: VerifyError) -> bytes:
    return json.dumps(error.problem(), separators=(",", ":")).encode()


def www_authenticate(error: VerifyError) -> str:
    """sessiond's challenge: plain for a missing token, `invalid_token` for a bad one."""
    if error.status != 401 or error.code == "TOKEN_NOT_PROVIDED":
        return 'Bearer realm="sessiond"'
    return 'Bearer realm="sessiond", error="invalid_token"'
