"""Following the feed through faults: sessiond stopped and restarted, a stream held silent,
the introspection fallback, key rotation, and cursors sessiond can no longer continue."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sessiond_verify import Verifier, VerifyError

from forge import parts, sign_ed25519
from harness import Sessiond, wait_for
from proxy import Proxy

HEARTBEAT = 5.0  # sessiond's heartbeat interval


def code_of(verifier: Verifier, token: str) -> str:
    try:
        verifier.verify(token)
    except VerifyError as e:
        return e.code if e.code != "SESSION_REVOKED" else f"SESSION_REVOKED/{e.revoked_reason}"
    return "OK"


@pytest.fixture()
def own_server() -> Iterator[Sessiond]:
    s = Sessiond({"SESSIOND_ACCESS_TOKEN_TTL": "120s"})
    yield s
    s.close()


@pytest.fixture()
def proxy(own_server: Sessiond) -> Iterator[Proxy]:
    p = Proxy(own_server.port)
    yield p
    p.close()


def tokens(server: Sessiond, user_id: str, n: int) -> list[dict[str, Any]]:
    return [server.session(user_id) for _ in range(n)]


def test_a_stopped_server_makes_checks_fail_closed_and_a_restart_misses_nothing(
    own_server: Sessiond,
) -> None:
    bound = 6.0
    uid = own_server.register()["user"]["id"]
    a, b = tokens(own_server, uid, 2)
    v = Verifier(own_server.url, own_server.verifier_key, staleness_bound=bound).start()
    try:
        assert code_of(v, a["access_token"]) == "OK"
        own_server.stop()
        took = wait_for(
            lambda: code_of(v, a["access_token"]) == "REVOCATION_FEED_STALE", timeout=30
        )
        assert took <= bound + HEARTBEAT + 2
        with pytest.raises(VerifyError) as stale:
            v.verify(b["access_token"])
        assert (stale.value.status, stale.value.code) == (503, "REVOCATION_FEED_STALE")
        assert stale.value.problem()["status"] == 503

        own_server.start()  # same port, same data
        own_server.revoke(b["session"]["id"])  # most likely before the verifier is back
        wait_for(lambda: not v.is_stale(), timeout=15)
        assert code_of(v, b["access_token"]) == "SESSION_REVOKED/admin"
        assert code_of(v, a["access_token"]) == "OK"
        assert v.snapshots_taken == 1, "resumed from its cursor, no snapshot needed"
    finally:
        v.close()


def test_revocations_made_while_the_stream_was_cut_arrive_on_resume(
    own_server: Sessiond, proxy: Proxy
) -> None:
    uid = own_server.register()["user"]["id"]
    a, b, c = tokens(own_server, uid, 3)
    v = Verifier(proxy.url, own_server.verifier_key, staleness_bound=60).start()
    try:
        proxy.set_mode(Proxy.REFUSE)
        own_server.revoke(b["session"]["id"])
        own_server.logout(c["access_token"])
        time.sleep(0.5)
        # Cut off, the verifier cannot know yet (and is not stale: 60 s bound).
        assert code_of(v, b["access_token"]) == "OK"
        proxy.set_mode(Proxy.PASS)
        wait_for(lambda: code_of(v, b["access_token"]) != "OK", timeout=10)
        assert code_of(v, b["access_token"]) == "SESSION_REVOKED/admin"
        assert code_of(v, c["access_token"]) == "SESSION_REVOKED/logout"
        assert code_of(v, a["access_token"]) == "OK"
        assert v.snapshots_taken == 1
        assert proxy.count("/v1/revocations/stream") >= 2
    finally:
        v.close()


def test_a_silent_stream_is_noticed_and_reconnected(own_server: Sessiond, proxy: Proxy) -> None:
    uid = own_server.register()["user"]["id"]
    (a,) = tokens(own_server, uid, 1)
    v = Verifier(proxy.url, own_server.verifier_key, staleness_bound=60, read_timeout=2).start()
    try:
        wait_for(lambda: proxy.count("/v1/revocations/stream") >= 1, timeout=5)
        proxy.set_mode(Proxy.SILENT)  # open connections answer nothing, ever
        n = proxy.count("/v1/revocations/stream")
        # The read timeout (2 s) gives up on the silent connection and dials again.
        wait_for(lambda: proxy.count("/v1/revocations/stream") >= n + 2, timeout=15)
        proxy.set_mode(Proxy.PASS)
        own_server.revoke(a["session"]["id"])
        wait_for(lambda: code_of(v, a["access_token"]) != "OK", timeout=10)
        assert code_of(v, a["access_token"]) == "SESSION_REVOKED/admin"
    finally:
        v.close()


def test_the_introspection_fallback_while_the_feed_is_stale(
    own_server: Sessiond, proxy: Proxy
) -> None:
    uid = own_server.register()["user"]["id"]
    a, b, c = tokens(own_server, uid, 3)
    v = Verifier(
        proxy.url, own_server.verifier_key, staleness_bound=6, fallback="introspect"
    ).start()
    plain = Verifier(proxy.url, own_server.verifier_key, staleness_bound=6).start()
    try:
        own_server.revoke(c["session"]["id"])
        wait_for(lambda: code_of(v, c["access_token"]) != "OK", timeout=2)
        assert proxy.count("/v1/introspect") == 0, "no introspection while the feed is fresh"

        proxy.set_mode(Proxy.SILENT)
        wait_for(v.is_stale, timeout=6 + HEARTBEAT + 3, interval=0.1)
        assert code_of(plain, a["access_token"]) == "REVOCATION_FEED_STALE"

        # sessiond answers for the feed: good tokens pass...
        assert code_of(v, a["access_token"]) == "OK"
        assert proxy.count("/v1/introspect") == 1
        # ...a token revoked since (the feed is silent; only introspection can know) is refused...
        own_server.revoke(b["session"]["id"])
        assert code_of(v, b["access_token"]).startswith("SESSION_REVOKED")
        # ...and one the deny-set already holds is refused without asking.
        before = proxy.count("/v1/introspect")
        assert code_of(v, c["access_token"]) == "SESSION_REVOKED/admin"
        assert proxy.count("/v1/introspect") == before

        # sessiond unreachable as well: still closed.
        proxy.set_mode(Proxy.DOWN)
        with pytest.raises(VerifyError) as e:
            v.verify(a["access_token"])
        assert (e.value.code, e.value.status) == ("REVOCATION_FEED_STALE", 503)
    finally:
        v.close()
        plain.close()


def test_key_rotation_refetches_once_per_cooldown_and_old_tokens_still_verify(
    own_server: Sessiond, proxy: Proxy
) -> None:
    jwks = "/.well-known/jwks.json"
    uid = own_server.register()["user"]["id"]
    (old,) = tokens(own_server, uid, 1)
    v = Verifier(
        proxy.url, own_server.verifier_key, staleness_bound=120, jwks_cooldown=1.0, read_timeout=120
    ).start()
    try:
        assert code_of(v, old["access_token"]) == "OK"
        assert proxy.count(jwks) == 1
        # Hold the feed silent so `keys_changed` cannot tell the verifier: only the unknown
        # kid can.
        proxy.set_mode(Proxy.SILENT)
        own_server.stop()
        own_server.rotate_keys()
        own_server.start()
        (new,) = tokens(own_server, uid, 1)
        assert parts(new["access_token"])[0]["kid"] != parts(old["access_token"])[0]["kid"]

        assert code_of(v, new["access_token"]) == "OK"
        assert proxy.count(jwks) == 2, "one refetch for the new kid"
        assert code_of(v, old["access_token"]) == "OK", "the old key still verifies"

        header, payload = parts(new["access_token"])
        attacker = Ed25519PrivateKey.generate()
        forged = [
            sign_ed25519(attacker, {**header, "kid": f"unknown-{i}"}, payload) for i in range(20)
        ]
        assert {code_of(v, t) for t in forged} == {"TOKEN_INVALID"}
        assert proxy.count(jwks) == 2, "no fetch within the cooldown"
        time.sleep(1.1)
        assert code_of(v, forged[0]) == "TOKEN_INVALID"
        assert proxy.count(jwks) == 3, "one fetch once the cooldown passed"

        # The feed back: its keys_changed fact makes the verifier refetch too.
        proxy.set_mode(Proxy.PASS)
        wait_for(lambda: proxy.count(jwks) >= 4, timeout=10)
        assert code_of(v, new["access_token"]) == "OK"
    finally:
        v.close()


def test_a_cursor_whose_facts_were_purged_means_a_fresh_snapshot() -> None:
    # Facts are purged a minute after their max_exp (no setting), by the cleanup task
    # (cleanup_interval): 3 s tokens and a 1 s cleanup make that ~64 s.
    server = Sessiond({"SESSIOND_ACCESS_TOKEN_TTL": "3s", "SESSIOND_CLEANUP_INTERVAL": "1s"})
    proxy = Proxy(server.port)
    try:
        uid = server.register()["user"]["id"]
        (first,) = tokens(server, uid, 1)
        v = Verifier(proxy.url, server.verifier_key, staleness_bound=300).start()
        try:
            server.revoke(first["session"]["id"])
            wait_for(lambda: code_of(v, first["access_token"]) != "OK", timeout=2)
            cursor = server.call("GET", "/v1/revocations/snapshot", key=server.verifier_key)
            at = cursor.json()["next_cursor"]
            proxy.set_mode(Proxy.REFUSE)  # the verifier cannot follow from here
            for s in tokens(server, uid, 2):
                server.revoke(s["session"]["id"])

            def purged() -> bool:
                r = server.call("GET", f"/v1/revocations?after={at}", key=server.verifier_key)
                return r.status_code == 409

            wait_for(purged, timeout=120, interval=1.0)
            assert v.snapshots_taken == 1
            proxy.set_mode(Proxy.PASS)
            wait_for(lambda: v.snapshots_taken == 2, timeout=15)
            wait_for(lambda: not v.is_stale(), timeout=10)
            # Following again, from the snapshot's cursor.
            (late,) = tokens(server, uid, 1)
            assert code_of(v, late["access_token"]) == "OK"
            server.revoke(late["session"]["id"])
            wait_for(lambda: code_of(v, late["access_token"]) != "OK", timeout=1.5)
            assert code_of(v, late["access_token"]) == "SESSION_REVOKED/admin"
        finally:
            v.close()
    finally:
        proxy.close()
        server.close()


def test_a_restored_database_means_a_fresh_snapshot(own_server: Sessiond) -> None:
    uid = own_server.register()["user"]["id"]
    a, b = tokens(own_server, uid, 2)
    own_server.stop()
    backup = own_server.data_dir + "-backup"
    shutil.copytree(own_server.data_dir, backup)
    own_server.start()
    v = Verifier(own_server.url, own_server.verifier_key, staleness_bound=30).start()
    try:
        own_server.revoke(a["session"]["id"])
        wait_for(lambda: code_of(v, a["access_token"]) != "OK", timeout=2)
        own_server.stop()
        shutil.rmtree(own_server.data_dir)
        shutil.copytree(backup, own_server.data_dir)
        own_server.start()
        # Its cursor is past anything this database handed out: 409, then a snapshot of
        # what the restored database knows (it never heard of a's revocation).
        wait_for(lambda: v.snapshots_taken == 2, timeout=15)
        assert code_of(v, a["access_token"]) == "OK"
        own_server.revoke(b["session"]["id"])
        wait_for(lambda: code_of(v, b["access_token"]) != "OK", timeout=2)
        assert code_of(v, b["access_token"]) == "SESSION_REVOKED/admin"
    finally:
        v.close()
        shutil.rmtree(backup, ignore_errors=True)
