"""The FastAPI dependency over real HTTP: uvicorn on a free port in front of the verifier."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI

from sessiond_verify import Claims, Verifier
from sessiond_verify.fastapi import install_problem_handler, require_token

from harness import Sessiond, wait_for


@pytest.fixture(scope="module")
def app_url(verifier: Verifier) -> Iterator[str]:
    app = FastAPI()
    install_problem_handler(app)
    auth = require_token(verifier)

    @app.get("/orders")
    def orders(claims: Claims = Depends(auth)) -> dict[str, Any]:  # noqa: B008
        return {"sid": claims.sid, "sub": claims.sub, "amr": list(claims.amr)}

    @app.get("/public")
    def public() -> dict[str, str]:
        return {"hello": "world"}

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


def test_a_good_token_reaches_the_handler(
    app_url: str, server: Sessiond, user: dict[str, Any]
) -> None:
    issued = server.session(user["user"]["id"])
    r = httpx.get(
        f"{app_url}/orders", headers={"Authorization": f"Bearer {issued['access_token']}"}
    )
    assert r.status_code == 200
    assert r.json() == {"sid": issued["session"]["id"], "sub": user["user"]["id"], "amr": ["admin"]}
    assert httpx.get(f"{app_url}/public").status_code == 200


def test_refusals_are_sessionds_problems(
    app_url: str, server: Sessiond, user: dict[str, Any]
) -> None:
    missing = httpx.get(f"{app_url}/orders")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["code"] == "TOKEN_NOT_PROVIDED"
    basic = httpx.get(f"{app_url}/orders", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.json()["code"] == "TOKEN_NOT_PROVIDED"

    bad = httpx.get(f"{app_url}/orders", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"].startswith("Bearer")
    assert bad.json()["code"] == "TOKEN_INVALID"

    issued = server.session(user["user"]["id"])
    server.revoke(issued["session"]["id"])
    headers = {"Authorization": f"Bearer {issued['access_token']}"}
    wait_for(lambda: httpx.get(f"{app_url}/orders", headers=headers).status_code == 401, 2)
    revoked = httpx.get(f"{app_url}/orders", headers=headers)
    body = revoked.json()
    assert (body["code"], body["revoked_reason"], body["status"]) == (
        "SESSION_REVOKED",
        "admin",
        401,
    )
    assert body["type"] == "urn:sessiond:problem:session_revoked"
    assert revoked.headers["www-authenticate"].startswith("Bearer")
