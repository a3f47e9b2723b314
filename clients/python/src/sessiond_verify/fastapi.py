"""FastAPI: `Depends(require_token(verifier))` gives a handler the token's Claims; a refused
request answers sessiond's problem+json (with `WWW-Authenticate: Bearer`).

    app = FastAPI()
    install_problem_handler(app)
    auth = require_token(verifier)

    @app.get("/orders")
    def orders(claims: Claims = Depends(auth)) -> ...: ...

Without `install_problem_handler`, refusals still fail closed with the right status (the
problem then sits under FastAPI's usual `detail`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import Response

from ._bearer import PROBLEM_CONTENT_TYPE, bearer_token, problem_body, www_authenticate
from .claims import Claims
from .errors import VerifyError, not_provided
from .verifier import Verifier


class Refused(HTTPException):
    """A refused request; carries the VerifyError."""

    def __init__(self, error: VerifyError) -> None:
        super().__init__(
            status_code=error.status,
            detail=error.problem(),
            headers={"WWW-Authenticate": www_authenticate(error)},
        )
        self.error = error


def require_token(verifier: Verifier) -> Callable[[Request], Claims]:
    """A dependency answering the request's verified Claims or refusing it. It is a plain
    `def`, so FastAPI runs it in its thread pool: the rare blocking paths (a JWKS fetch
    for a new kid, the introspection fallback) never stall the event loop."""

    def sessiond_token(request: Request) -> Claims:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Refused(not_provided())
        try:
            return verifier.verify(token)
        except VerifyError as e:
            raise Refused(e) from None

    return sessiond_token


def problem_response(error: VerifyError) -> Response:
    return Response(
        content=problem_body(error),
        status_code=error.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers={"WWW-Authenticate": www_authenticate(error)},
    )


def install_problem_handler(app: FastAPI) -> None:
    """Makes refusals answer sessiond's application/problem+json body."""

    async def on_refused(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return problem_response(exc.error)

    app.add_exception_handler(Refused, on_refused)
