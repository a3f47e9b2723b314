"""The deny-set's rules on their own (the feed tests show them end to end)."""

from __future__ import annotations

from sessiond_verify.claims import Claims
from sessiond_verify.denylist import DenyList, Fact

NOW = 1_800_000_000.0


def token(sid: str = "s1", sub: str | None = "u1", iat: int = int(NOW) - 10) -> Claims:
    return Claims(sid=sid, sub=sub, iat=iat, exp=int(NOW) + 600, amr=("pwd",), jti=None)


def test_a_session_is_refused_until_its_max_exp() -> None:
    d = DenyList()
    d.deny_session("s1", "logout", NOW + 5)
    assert d.refusal(token(), NOW) == "logout"
    assert d.refusal(token(sid="s2"), NOW) is None
    assert d.refusal(token(), NOW + 5) is None  # max_exp passed: no token of it is alive


def test_a_user_is_refused_for_tokens_issued_before_not_before() -> None:
    d = DenyList()
    d.deny_user("u1", "user_deactivated", not_before=int(NOW), max_exp=NOW + 60)
    assert d.refusal(token(iat=int(NOW) - 1), NOW) == "user_deactivated"
    # whole seconds: a token issued in the cut-off second itself is newer
    assert d.refusal(token(iat=int(NOW)), NOW) is None
    assert d.refusal(token(sub=None), NOW) is None
    assert d.refusal(token(sub="u2"), NOW) is None


def test_the_newest_user_cut_off_wins_and_lives_longest() -> None:
    d = DenyList()
    d.deny_user("u1", "first", not_before=100, max_exp=NOW + 60)
    d.deny_user("u1", "second", not_before=200, max_exp=NOW + 10)
    assert d.refusal(token(iat=150), NOW) == "second"
    assert d.refusal(token(iat=150), NOW + 30) == "second", "max_exp kept at the longest"
    d.deny_user("u1", "older", not_before=50, max_exp=NOW + 90)
    assert d.refusal(token(iat=150), NOW) == "second", "an older cut-off changes nothing"


def test_eviction_forgets_only_what_is_due() -> None:
    d = DenyList()
    d.deny_session("s1", "logout", NOW + 1)
    d.deny_session("s2", "logout", NOW + 100)
    d.deny_user("u1", "a", not_before=10, max_exp=NOW + 1)
    d.deny_user("u1", "b", not_before=20, max_exp=NOW + 50)  # raised: must survive
    d.deny_session("s1", "admin", NOW + 80)  # refreshed: must survive
    d.evict(NOW + 2)
    assert d.counts() == (2, 1)
    d.evict(NOW + 100)
    assert d.counts() == (0, 0)


def test_a_snapshot_replaces_everything_at_once() -> None:
    d = DenyList()
    d.deny_session("old", "logout", NOW + 100)
    d.replace(
        [
            Fact("session_revoked", NOW + 100, "admin", sid="s1"),
            Fact("user_revoked", NOW + 100, "user_deactivated", sub="u9", not_before=500),
            Fact("keys_changed", NOW + 100),
        ]
    )
    assert d.counts() == (1, 1)
    assert d.refusal(token(sid="old", sub=None), NOW) is None
    assert d.refusal(token(), NOW) == "admin"
    d.evict(NOW + 101)
    assert d.counts() == (0, 0)
