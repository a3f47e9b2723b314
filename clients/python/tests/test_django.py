"""The Django middleware over real HTTP: Django's WSGI app under wsgiref on a free port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest

from sessiond_verify import Verifier

from harness import Sessiond, wait_for


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


class _ThreadingWSGIServer(WSGIServer):
    """One thread per request, as a real deployment's workers would give."""

    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(target=self._handle, args=(request, client_address), daemon=True)
        t.start()

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


@pytest.fixture(scope="module")
def django_url(server: Sessiond) -> Iterator[str]:
    import django
    from django.conf import settings
    from django.http import HttpRequest, JsonResponse
    from django.urls import path

    def whoami(request: HttpRequest) -> JsonResponse:
        claims = request.sessiond  # type: ignore[attr-defined]
        return JsonResponse({"sid": claims.sid, "sub": claims.sub})

    def health(request: HttpRequest) -> JsonResponse:
        return JsonResponse({"ok": True, "claims": request.sessiond})  # type: ignore[attr-defined]

    urlpatterns = [path("api/whoami", whoami), path("health", health)]
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="test-only",
        MIDDLEWARE=["sessiond_verify.django.SessiondMiddleware"],
        INSTALLED_APPS=[],
        SESSIOND_VERIFY={
            "URL": server.url,
            "API_KEY": server.verifier_key,
            "ISSUER": "sessiond",
            "AUDIENCE": "sessiond",
            "PATHS": ["/api/"],
        },
    )
    globals()["urlpatterns"] = urlpatterns
    django.setup()
    from django.core.wsgi import get_wsgi_application

    httpd = make_server(
        "127.0.0.1",
        0,
        get_wsgi_application(),
        server_class=_ThreadingWSGIServer,
        handler_class=_Quiet,
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_the_middleware_sets_request_sessiond(
    django_url: str, server: Sessiond, user: dict[str, Any]
) -> None:
    issued = server.session(user["user"]["id"])
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    r = httpx.get(f"{django_url}/api/whoami", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"sid": issued["session"]["id"], "sub": user["user"]["id"]}
    # Outside the protected prefixes nothing is checked, and request.sessiond is None.
    open_ = httpx.get(f"{django_url}/health")
    assert open_.status_code == 200 and open_.json() == {"ok": True, "claims": None}


def test_the_middleware_refuses_with_problems(
    django_url: str, server: Sessiond, user: dict[str, Any]
) -> None:
    missing = httpx.get(f"{django_url}/api/whoami")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["code"] == "TOKEN_NOT_PROVIDED"

    garbage = httpx.get(f"{django_url}/api/whoami", headers={"Authorization": "Bearer x.y.z"})
    assert (garbage.status_code, garbage.json()["code"]) == (401, "TOKEN_INVALID")

    issued = server.session(user["user"]["id"])
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    assert httpx.get(f"{django_url}/api/whoami", headers=headers).status_code == 200
    server.logout(issued["access_token"])
    wait_for(lambda: httpx.get(f"{django_url}/api/whoami", headers=headers).status_code == 401, 2)
    body = httpx.get(f"{django_url}/api/whoami", headers=headers).json()
    assert (body["code"], body["revoked_reason"]) == ("SESSION_REVOKED", "logout")


def test_the_middleware_shares_one_verifier_per_process(django_url: str) -> None:
    from sessiond_verify.django import verifier_from_settings

    first = verifier_from_settings()
    assert isinstance(first, Verifier)
    assert verifier_from_settings() is first
