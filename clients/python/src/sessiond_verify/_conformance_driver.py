"""The conformance driver (clients/VERIFIER-CONFORMANCE.md): a FastAPI app that protects
GET /protected with `require_token`, and answers the deny-set's size at GET /stats.

    SESSIOND_URL=… SESSIOND_VERIFIER_KEY=… SESSIOND_ISSUER=sessiond SESSIOND_AUDIENCE=sessiond \
    STALENESS_MS=3000 JWKS_COOLDOWN_MS=1000 python -m sessiond_verify._conformance_driver

Prints `listening <port>` once it accepts connections; exits on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI

from .claims import Claims
from .errors import StartError
from .fastapi import install_problem_handler, require_token
from .verifier import Verifier


def build_app(verifier: Verifier) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_problem_handler(app)
    auth = require_token(verifier)

    @app.get("/protected")
    def protected(claims: Claims = Depends(auth)) -> dict[str, Any]:  # noqa: B008
        return {"sub": claims.sub, "sid": claims.sid}

    @app.get("/stats")
    def stats() -> dict[str, int]:
        sessions, users = verifier.denied_count()
        return {"denied_sessions": sessions, "denied_users": users}

    return app


class _Server(uvicorn.Server):
    """Says `listening <port>` once uvicorn has started serving, not before."""

    port = 0

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"listening {self.port}", flush=True)


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        print(f"driver: {name} is not set", file=sys.stderr)
        sys.exit(2)
    return value


def _exit_cleanly(_signum: int, _frame: object) -> None:
    sys.exit(0)


def main() -> int:
    url = _env("SESSIOND_URL")
    issuer = _env("SESSIOND_ISSUER", "sessiond")
    try:
        verifier = Verifier(
            url,
            _env("SESSIOND_VERIFIER_KEY"),
            issuer,
            _env("SESSIOND_AUDIENCE", issuer),
            staleness_bound=float(_env("STALENESS_MS", "15000")) / 1000,
            jwks_cooldown=float(_env("JWKS_COOLDOWN_MS", "10000")) / 1000,
        ).start()
    except (StartError, ValueError) as e:
        print(f"driver: the verifier could not start: {e}", file=sys.stderr)
        return 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        build_app(verifier), log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    server = _Server(config)
    server.port = sock.getsockname()[1]
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it to the handler that
    # was there before: make that one a clean exit (status 0) rather than death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run(sockets=[sock])  # uvicorn ends on SIGTERM / SIGINT
    finally:
        verifier.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
