"""Two sessiond instances sharing PostgreSQL and Redis: the verifier follows one of them and
hears what happens on the other."""

from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from sessiond_verify import Verifier, VerifyError

from harness import Sessiond, wait_for

PG = "postgres://postgres@127.0.0.1:5432"


def _postgres_ready() -> bool:
    try:
        done = subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture()
def pair() -> Iterator[tuple[Sessiond, Sessiond]]:
    if not _postgres_ready():
        if os.environ.get("CI") not in (None, "", "0", "false"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    db = f"pyverify_{uuid.uuid4().hex[:12]}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True, timeout=30)
    env = {
        "SESSIOND_DATABASE_URL": f"{PG}/{db}",
        "SESSIOND_REDIS_URL": "redis://127.0.0.1:6379",
        "SESSIOND_REDIS_PREFIX": f"{db}:",
    }
    keys = {"admin_key": secrets.token_hex(32), "verifier_key": secrets.token_hex(32)}
    a = Sessiond(env, **keys)
    b = Sessiond(env, **keys)
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        subprocess.run(
            ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", db], timeout=30
        )


def refused(verifier: Verifier, token: str) -> VerifyError | None:
    try:
        verifier.verify(token)
    except VerifyError as e:
        return e
    return None


def test_revocations_on_the_other_instance_arrive_within_a_second(
    pair: tuple[Sessiond, Sessiond],
) -> None:
    a, b = pair
    v = Verifier(a.url, a.verifier_key).start()
    try:
        registered = b.register()
        uid = registered["user"]["id"]
        on_b = b.session(uid)
        assert v.verify(on_b["access_token"]).sid == on_b["session"]["id"]

        b.logout(registered["access_token"])
        wait_for(lambda: refused(v, registered["access_token"]) is not None, timeout=1.0)
        error = refused(v, registered["access_token"])
        assert error is not None and error.revoked_reason == "logout"

        others = [a.session(uid), b.session(uid)]
        b.deactivate(uid)
        for t in [on_b, *others]:
            token = t["access_token"]
            wait_for(lambda token=token: refused(v, token) is not None, timeout=1.0)
            error = refused(v, token)
            assert error is not None and error.revoked_reason == "user_deactivated"
    finally:
        v.close()
