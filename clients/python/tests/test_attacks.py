"""The JWT attack set: every forgery is TOKEN_INVALID, and none makes the verifier fetch
anything but sessiond's own JWKS. Tokens wrong in one way only are signed with sessiond's
real key (read from its database), so each check is proven on its own."""

from __future__ import annotations

import base64
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sessiond_verify import Verifier, VerifyError

from forge import b64, b64json, parts, public_jwk, server_signing_key, sign_ed25519, sign_hs256
from harness import Sessiond


class KeyBait:
    """An HTTP server a `jku`/`x5u` header points at: it must never be asked anything."""

    def __init__(self) -> None:
        self.hits = 0
        bait = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                bait.hits += 1
                self.send_response(404)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def bait() -> Iterator[KeyBait]:
    b = KeyBait()
    yield b
    b.close()


@pytest.fixture()
def good(server: Sessiond, user: dict[str, Any]) -> str:
    token: str = server.session(user["user"]["id"])["access_token"]
    return token


def code_of(verifier: Verifier, token: str) -> str:
    try:
        verifier.verify(token)
    except VerifyError as e:
        return e.code
    return "ACCEPTED"


def attacks(
    good: str, kid: str, real: Ed25519PrivateKey, public_x: str, bait_url: str
) -> dict[str, str]:
    header, payload = parts(good)
    h64, p64, sig = good.split(".")
    attacker = Ed25519PrivateKey.generate()
    real_sign: Callable[..., str] = lambda h, p=payload: sign_ed25519(real, h, p)  # noqa: E731
    raw_public = base64.urlsafe_b64decode(public_x + "=" * (-len(public_x) % 4))
    return {
        "alg none": f"{b64json({**header, 'alg': 'none'})}.{p64}.",
        "alg none with a signature": f"{b64json({**header, 'alg': 'none'})}.{p64}.{sig}",
        "HS256 with the public key as secret": sign_hs256(
            raw_public, {**header, "alg": "HS256"}, payload
        ),
        "HS256 with the JWK x as secret": sign_hs256(
            public_x.encode(), {**header, "alg": "HS256"}, payload
        ),
        "attacker key, sessiond's kid": sign_ed25519(attacker, header, payload),
        "unknown kid": sign_ed25519(attacker, {**header, "kid": "no-such-key"}, payload),
        "path kid": sign_ed25519(attacker, {**header, "kid": "../../../etc/passwd"}, payload),
        "path kid, real signature": real_sign({**header, "kid": "../" + kid}),
        "jku, attacker key": sign_ed25519(
            attacker, {**header, "kid": "bait", "jku": bait_url}, payload
        ),
        "jku, real signature": real_sign({**header, "jku": bait_url}),
        "x5u, real signature": real_sign({**header, "x5u": bait_url}),
        "jwk, attacker key": sign_ed25519(
            attacker, {**header, "kid": "bait", "jwk": public_jwk(attacker, "bait")}, payload
        ),
        "jwk, real signature": real_sign({**header, "jwk": public_jwk(attacker, kid)}),
        "typ JWT": real_sign({**header, "typ": "JWT"}),
        "no typ": real_sign({k: v for k, v in header.items() if k != "typ"}),
        "no kid": real_sign({k: v for k, v in header.items() if k != "kid"}),
        "crit header": real_sign({**header, "crit": ["exp"]}),
        "wrong iss": real_sign(header, {**payload, "iss": "evil"}),
        "wrong aud": real_sign(header, {**payload, "aud": "other-app"}),
        "no sid": real_sign(header, {k: v for k, v in payload.items() if k != "sid"}),
        "sid not a string": real_sign(header, {**payload, "sid": 7}),
        "exp not a number": real_sign(header, {**payload, "exp": "tomorrow"}),
        "nbf in the future": real_sign(header, {**payload, "nbf": int(time.time()) + 3600}),
        "padded header": f"{h64}==.{p64}.{sig}",
        "padded signature": f"{h64}.{p64}.{sig}=",
        "standard base64 alphabet": f"{h64}.{p64}.{sig.replace('-', '+').replace('_', '/')}+/",
        "space inside": f"{h64}.{p64[:5]} {p64[5:]}.{sig}",
        "payload changed": f"{h64}.{b64json({**payload, 'sub': 'someone-else'})}.{sig}",
        "truncated signature": f"{h64}.{p64}.{sig[:-4]}",
        "no signature": f"{h64}.{p64}",
        "four parts": f"{h64}.{p64}.{sig}.{sig}",
        "empty": "",
        "garbage": "not a token at all",
        "dots": "..",
        "binary garbage": b64(bytes(range(256))) * 3,
        "huge": f"{h64}.{'A' * 20000}.{sig}",
    }


def test_every_forgery_is_token_invalid_and_fetches_nothing_else(
    server: Sessiond, verifier: Verifier, good: str, bait: KeyBait
) -> None:
    kid, real = server_signing_key(server.data_dir)
    jwk = next(k for k in server.jwks()["keys"] if k["kid"] == kid)
    forged = attacks(good, kid, real, jwk["x"], bait.url)
    # The real key re-signing the real header and payload is accepted: the forgeries
    # below fail for their one defect, not for the way they were made.
    header, payload = parts(good)
    assert code_of(verifier, sign_ed25519(real, header, payload)) == "ACCEPTED"
    results = {name: code_of(verifier, token) for name, token in forged.items()}
    wrong = {name: code for name, code in results.items() if code != "TOKEN_INVALID"}
    assert wrong == {}
    assert bait.hits == 0
    assert code_of(verifier, good) == "ACCEPTED"


def test_an_expired_token_signed_by_sessiond_is_token_expired(
    server: Sessiond, verifier: Verifier, good: str
) -> None:
    _kid, real = server_signing_key(server.data_dir)
    header, payload = parts(good)
    now = int(time.time())
    expired = sign_ed25519(real, header, {**payload, "iat": now - 60, "exp": now - 1})
    at_now = sign_ed25519(real, header, {**payload, "iat": now - 60, "exp": now})
    with pytest.raises(VerifyError) as e:
        verifier.verify(expired)
    assert (e.value.code, e.value.status) == ("TOKEN_EXPIRED", 401)
    # No leeway: exp == now is already expired.
    with pytest.raises(VerifyError) as e:
        verifier.verify(at_now)
    assert e.value.code == "TOKEN_EXPIRED"
    # An expired forgery is invalid first, not expired.
    attacker = Ed25519PrivateKey.generate()
    with pytest.raises(VerifyError) as e:
        verifier.verify(sign_ed25519(attacker, header, {**payload, "exp": now - 1}))
    assert e.value.code == "TOKEN_INVALID"
