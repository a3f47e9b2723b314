"""Django: a middleware that verifies the bearer token of every request (or of the path
prefixes you list) and sets `request.sessiond` to its Claims (None where nothing is
protected). Refusals answer sessiond's application/problem+json.

settings.py:

    MIDDLEWARE = [..., "sessiond_verify.django.SessiondMiddleware"]
    SESSIOND_VERIFY = {
        "URL": "http://127.0.0.1:8420",
        "API_KEY": os.environ["SESSIOND_VERIFIER_KEY"],
        "ISSUER": "sessiond",               # optional (default "sessiond")
        "AUDIENCE": "sessiond",             # optional (default: the issuer)
        "STALENESS_BOUND": 15.0,            # optional, seconds
        "JWKS_COOLDOWN": 10.0,              # optional, seconds
        "FALLBACK": None,                   # or "introspect"
        "PATHS": ["/api/"],                 # optional: protected prefixes (default: all)
    }

The verifier starts when Django builds its middleware (at the first request under
runserver, at worker start under gunicorn/uwsgi), once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from ._bearer import PROBLEM_CONTENT_TYPE, bearer_token, problem_body, www_authenticate
from .errors import VerifyError, not_provided
from .verifier import Verifier

_verifiers: dict[tuple[Any, ...], Verifier] = {}
_verifiers_lock = threading.Lock()


def verifier_from_settings() -> Verifier:
    """The process's one started Verifier for settings.SESSIOND_VERIFY."""
    conf: dict[str, Any] = getattr(settings, "SESSIOND_VERIFY", None) or {}
    given = conf.get("VERIFIER")
    if isinstance(given, Verifier):
        return given.start()
    if not conf.get("URL") or not conf.get("API_KEY"):
        raise ImproperlyConfigured("SESSIOND_VERIFY needs URL and API_KEY")
    issuer = str(conf.get("ISSUER", "sessiond"))
    key = (
        str(conf["URL"]),
        str(conf["API_KEY"]),
        issuer,
        str(conf.get("AUDIENCE") or issuer),
        float(conf.get("STALENESS_BOUND", 15.0)),
        float(conf.get("JWKS_COOLDOWN", 10.0)),
        conf.get("FALLBACK"),
    )
    with _verifiers_lock:
        verifier = _verifiers.get(key)
        if verifier is None:
            verifier = Verifier(
                key[0],
                key[1],
                key[2],
                key[3],
                staleness_bound=key[4],
                jwks_cooldown=key[5],
                fallback=key[6],
            ).start()
            _verifiers[key] = verifier
    return verifier


def problem_response(error: VerifyError) -> HttpResponse:
    response = HttpResponse(
        problem_body(error), status=error.status, content_type=PROBLEM_CONTENT_TYPE
    )
    response["WWW-Authenticate"] = www_authenticate(error)
    return response


class SessiondMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.verifier = verifier_from_settings()
        conf: dict[str, Any] = getattr(settings, "SESSIOND_VERIFY", None) or {}
        paths = conf.get("PATHS")
        self.prefixes: tuple[str, ...] | None = tuple(paths) if paths is not None else None

    def protects(self, path: str) -> bool:
        return self.prefixes is None or path.startswith(self.prefixes)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.sessiond = None  # type: ignore[attr-defined]
        if not self.protects(request.path):
            return self.get_response(request)
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return problem_response(not_provided())
        try:
            claims = self.verifier.verify(token)
        except VerifyError as e:
            return problem_response(e)
        request.sessiond = claims  # type: ignore[attr-defined]
        return self.get_response(request)
