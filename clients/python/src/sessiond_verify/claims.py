"""The claims of an access token that passed every check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Claims:
    sid: str
    """The session."""
    sub: str | None
    """The user; None for anonymous sessions."""
    iat: int
    exp: int
    amr: tuple[str, ...]
    """How the session was authenticated: pwd, otp, exchange:<provider>, anon, admin."""
    jti: str | None

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Claims | None:
        """The claims, or None when a member has the wrong type (the token is invalid)."""
        sid, sub, iat, exp = (
            payload.get("sid"),
            payload.get("sub"),
            payload.get("iat"),
            payload.get("exp"),
        )
        amr, jti = payload.get("amr", []), payload.get("jti")
        if not isinstance(sid, str) or not sid:
            return None
        if sub is not None and not isinstance(sub, str):
            return None
        # bool is an int in Python; a JSON `true` is no timestamp.
        if not isinstance(iat, int) or isinstance(iat, bool):
            return None
        if not isinstance(exp, int) or isinstance(exp, bool):
            return None
        if not isinstance(amr, list) or not all(isinstance(a, str) for a in amr):
            return None
        if jti is not None and not isinstance(jti, str):
            return None
        return cls(sid=sid, sub=sub, iat=iat, exp=exp, amr=tuple(amr), jti=jti)
