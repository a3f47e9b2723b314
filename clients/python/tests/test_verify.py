"""Verifying tokens and following revocations against the real sessiond."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sessiond_verify import Claims, Verifier, VerifyError

from harness import Sessiond, wait_for


def refusal(verifier: Verifier, token: str) -> VerifyError | None:
    try:
        verifier.verify(token)
    except VerifyError as e:
        return e
    return None


def test_a_fresh_token_verifies_with_its_claims(
    server: Sessiond, verifier: Verifier, user: dict[str, Any]
) -> None:
    issued = server.session(user["user"]["id"])
    claims = verifier.verify(issued["access_token"])
    assert isinstance(claims, Claims)
    assert claims.sid == issued["session"]["id"]
    assert claims.sub == user["user"]["id"]
    assert claims.amr == ("admin",)
    assert claims.exp > time.time() and claims.iat <= time.time() + 1
    assert claims.jti


def test_logout_is_refused_within_a_second(server: Sessiond, verifier: Verifier) -> None:
    registered = server.register()
    token = registered["access_token"]
    verifier.verify(token)
    server.logout(token)
    took = wait_for(lambda: refusal(verifier, token) is not None, timeout=1.0, interval=0.005)
    error = refusal(verifier, token)
    assert error is not None
    assert (error.code, error.status, error.revoked_reason) == ("SESSION_REVOKED", 401, "logout")
    problem = error.problem()
    assert problem["type"] == "urn:sessiond:problem:session_revoked"
    assert problem["status"] == 401 and problem["code"] == "SESSION_REVOKED"
    assert problem["revoked_reason"] == "logout"
    assert problem["title"] == "The session was revoked"
    assert took < 1.0


def test_an_admin_revocation_is_refused(
    server: Sessiond, verifier: Verifier, user: dict[str, Any]
) -> None:
    issued = server.session(user["user"]["id"])
    other = server.session(user["user"]["id"])
    server.revoke(issued["session"]["id"])
    wait_for(lambda: refusal(verifier, issued["access_token"]) is not None, timeout=1.0)
    error = refusal(verifier, issued["access_token"])
    assert error is not None and error.revoked_reason == "admin"
    # The same user's other session is untouched.
    assert verifier.verify(other["access_token"]).sid == other["session"]["id"]


def test_deactivating_a_user_refuses_all_its_tokens(
    server: Sessiond, verifier: Verifier, user: dict[str, Any]
) -> None:
    victim = server.register()
    uid = victim["user"]["id"]
    tokens = [victim["access_token"]] + [server.session(uid)["access_token"] for _ in range(3)]
    bystander = server.session(user["user"]["id"])["access_token"]
    for t in tokens:
        verifier.verify(t)
    server.deactivate(uid)
    for t in tokens:
        wait_for(lambda t=t: refusal(verifier, t) is not None, timeout=1.0)
        error = refusal(verifier, t)
        assert error is not None
        assert (error.code, error.revoked_reason) == ("SESSION_REVOKED", "user_deactivated")
    assert verifier.verify(bystander).sub == user["user"]["id"]


def test_a_verifier_started_later_learns_revocations_from_the_snapshot(
    server: Sessiond, user: dict[str, Any]
) -> None:
    uid = user["user"]["id"]
    revoked = server.session(uid)
    kept = server.session(uid)
    server.revoke(revoked["session"]["id"])
    late = Verifier(server.url, server.verifier_key, "sessiond", "sessiond").start()
    try:
        assert late.snapshots_taken == 1
        sessions, _users = late.denied_count()
        assert sessions >= 1
        error = refusal(late, revoked["access_token"])
        assert error is not None and error.revoked_reason == "admin"
        assert late.verify(kept["access_token"]).sid == kept["session"]["id"]
    finally:
        late.close()


def test_an_expired_token_is_token_expired(server: Sessiond, user: dict[str, Any]) -> None:
    # A verifier of its own: the shared one must not go stale while this test sleeps.
    v = Verifier(server.url, server.verifier_key, "sessiond", "sessiond").start()
    try:
        issued = server.session(user["user"]["id"])
        claims = v.verify(issued["access_token"])
        time.sleep(max(0.0, claims.exp - time.time()) + 0.05)
        error = refusal(v, issued["access_token"])
        assert error is not None
        assert (error.code, error.status) == ("TOKEN_EXPIRED", 401)
        assert error.problem()["expired_at"].endswith("Z")
    finally:
        v.close()


def test_revocations_are_forgotten_after_max_exp(server: Sessiond, user: dict[str, Any]) -> None:
    v = Verifier(server.url, server.verifier_key, "sessiond", "sessiond").start()
    try:
        before, _ = v.denied_count()
        issued = server.session(user["user"]["id"])
        server.revoke(issued["session"]["id"])
        wait_for(lambda: v.denied_count()[0] == before + 1, timeout=2.0)
        # 3 s tokens: the entry is gone at the first heartbeat (every 5 s) after max_exp.
        wait_for(lambda: v.denied_count()[0] < before + 1, timeout=15.0, interval=0.2)
    finally:
        v.close()


def test_verify_from_many_threads(
    server: Sessiond, verifier: Verifier, user: dict[str, Any]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    tokens = [server.session(user["user"]["id"]) for _ in range(4)]
    server.revoke(tokens[0]["session"]["id"])
    wait_for(lambda: refusal(verifier, tokens[0]["access_token"]) is not None, timeout=1.0)

    def check(i: int) -> str:
        issued = tokens[i % 4]
        e = refusal(verifier, issued["access_token"])
        return e.code if e else "OK"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(check, range(400)))
    assert results.count("SESSION_REVOKED") == 100
    assert results.count("OK") == 300


def test_start_fails_on_a_wrong_key_and_an_unreachable_server(server: Sessiond) -> None:
    from sessiond_verify import StartError

    with pytest.raises(StartError) as wrong_key:
        Verifier(server.url, "x" * 40, "sessiond", "sessiond").start()
    assert wrong_key.value.status in (401, 403)
    with pytest.raises(StartError):
        Verifier("http://127.0.0.1:9", server.verifier_key, http_timeout=2).start()
