"""Why a token was refused, with the codes and statuses sessiond itself answers."""

from __future__ import annotations

from typing import Any, Final

TOKEN_NOT_PROVIDED: Final = "TOKEN_NOT_PROVIDED"
TOKEN_INVALID: Final = "TOKEN_INVALID"
TOKEN_EXPIRED: Final = "TOKEN_EXPIRED"
SESSION_REVOKED: Final = "SESSION_REVOKED"
REVOCATION_FEED_STALE: Final = "REVOCATION_FEED_STALE"

# sessiond's fixed title per code (crates/sessiond-core/src/code.rs); the feed's own code
# is the verifier's and has no server-side twin.
_TITLES: Final[dict[str, str]] = {
    TOKEN_NOT_PROVIDED: "No token was provided",
    TOKEN_INVALID: "The token is invalid",
    TOKEN_EXPIRED: "The token has expired",
    SESSION_REVOKED: "The session was revoked",
    REVOCATION_FEED_STALE: "The revocation feed is stale",
}


class VerifyError(Exception):
    """A refused token. Branch on `code`; `status` is the HTTP status to answer."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        revoked_reason: str | None = None,
        expired_at: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.revoked_reason = revoked_reason
        self.expired_at = expired_at

    @property
    def status(self) -> int:
        # A stale feed is our fault, not the client's: 503, so it retries rather than
        # logging the user out.
        return 503 if self.code == REVOCATION_FEED_STALE else 401

    @property
    def title(self) -> str:
        return _TITLES.get(self.code, self.detail)

    def problem(self) -> dict[str, Any]:
        """The application/problem+json body sessiond answers for this refusal."""
        body: dict[str, Any] = {
            "type": f"urn:sessiond:problem:{self.code.lower()}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "revoked_reason": self.revoked_reason,
        }
        if self.expired_at is not None:
            body["expired_at"] = self.expired_at
        return body

    def __repr__(self) -> str:
        return (
            f"VerifyError({self.code!r}, {self.detail!r}, revoked_reason={self.revoked_reason!r})"
        )


def not_provided() -> VerifyError:
    """The refusal of a request without a bearer token (the framework integrations')."""
    return VerifyError(TOKEN_NOT_PROVIDED, "no bearer token")


class StartError(Exception):
    """The verifier could not load sessiond's JWKS or revocation snapshot."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
