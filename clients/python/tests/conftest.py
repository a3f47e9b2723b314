"""Shared fixtures: one sessiond (3 s access tokens) and one verifier following it, for the
tests that do not stop, restart or rewire the server; those make their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sessiond_verify import Verifier

from harness import Sessiond


@pytest.fixture(scope="session")
def server() -> Iterator[Sessiond]:
    s = Sessiond({"SESSIOND_ACCESS_TOKEN_TTL": "3s"})
    yield s
    s.close()


@pytest.fixture(scope="session")
def user(server: Sessiond) -> dict[str, Any]:
    """One registered user; its sessions are made with the admin key."""
    return server.register()


@pytest.fixture(scope="session")
def verifier(server: Sessiond) -> Iterator[Verifier]:
    v = Verifier(server.url, server.verifier_key, "sessiond", "sessiond").start()
    yield v
    v.close()
