"""Verify sessiond access tokens in your own backend, at memory speed, and still refuse a
revoked session at once.

    from sessiond_verify import Verifier, VerifyError

    verifier = Verifier("http://127.0.0.1:8420", "the-verifier-key", "sessiond", "sessiond").start()
    try:
        claims = verifier.verify(token)
    except VerifyError as e:
        return e.status, e.problem()
"""

from .claims import Claims
from .errors import (
    REVOCATION_FEED_STALE,
    SESSION_REVOKED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_NOT_PROVIDED,
    StartError,
    VerifyError,
)
from .verifier import Verifier

__all__ = [
    "REVOCATION_FEED_STALE",
    "SESSION_REVOKED",
    "TOKEN_EXPIRED",
    "TOKEN_INVALID",
    "TOKEN_NOT_PROVIDED",
    "Claims",
    "StartError",
    "Verifier",
    "VerifyError",
]
