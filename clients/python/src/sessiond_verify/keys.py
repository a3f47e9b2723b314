"""sessiond's public keys, from its JWKS: fetched at start, again when the feed says
`keys_changed`, and when a token names a key not seen yet (at most once per cooldown, so
garbage tokens cannot turn into a load on sessiond). Nothing but sessiond's own JWKS URL is
ever fetched: a token's `jku`, `jwk`, `x5u` or `x5c` header refuses it outright."""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._http import request_json
from .claims import Claims

log = logging.getLogger("sessiond_verify")

TYP = "at+jwt"
# Longer than any token sessiond signs by far; refusing before parsing bounds the work.
MAX_TOKEN_LENGTH = 8192
# Three parts of strict base64url: no padding, no other alphabet (the stdlib decoder
# would skip stray characters, so they must be refused before it sees them).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Headers that point at keys elsewhere, or extensions we would have to understand.
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})
_ALGORITHMS = ["EdDSA"]
_MAX_GOOD_HEADERS = 64


class InvalidToken(Exception):
    """Anything wrong with the token itself (maps to TOKEN_INVALID)."""


class UnknownKid(Exception):
    """A well-formed token naming a key this verifier does not hold."""


class KeySet:
    def __init__(
        self, base_url: str, issuer: str, audience: str, cooldown: float, timeout: float
    ) -> None:
        self._jwks_url = f"{base_url}/.well-known/jwks.json"
        self._issuer = issuer
        self._audience = audience
        self._cooldown = cooldown
        self._timeout = timeout
        # Replaced whole on every fetch, so readers need no lock.
        self._by_kid: dict[str, Ed25519PublicKey] = {}
        self._fetch_lock = threading.Lock()
        self._last_unknown_fetch: float | None = None
        # header segment -> kid, for headers that passed every check. sessiond's tokens of
        # one key share one header, so this holds a handful; a flood of distinct headers
        # only earns a clear (each entry is a header that passed the checks anyway).
        self._good_headers: dict[str, str] = {}
        self._decode_options: Any = {
            # exp is checked by the verifier itself, exactly (it answers TOKEN_EXPIRED with
            # the time); iat is only type-checked: a token a second "from the future" on a
            # neighbour's clock is not invalid.
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": True,
            "require": ["exp", "iat", "iss", "aud", "sid"],
        }

    def kids(self) -> list[str]:
        return sorted(self._by_kid)

    def refresh(self) -> None:
        """Fetches the JWKS and replaces the key set; raises StartError on failure."""
        jwks = request_json("GET", self._jwks_url, timeout=self._timeout)
        keys = jwks.get("keys")
        by_kid: dict[str, Ed25519PublicKey] = {}
        for jwk in keys if isinstance(keys, list) else []:
            key = _ed25519(jwk)
            if key is not None:
                by_kid[jwk["kid"]] = key
        self._by_kid = by_kid
        log.debug("sessiond JWKS loaded: %s", sorted(by_kid))

    def refresh_on_unknown_kid(self) -> None:
        """One JWKS fetch per cooldown. Callers arriving while one is under way wait for
        it and then use its keys rather than fetch again."""
        with self._fetch_lock:
            now = time.monotonic()
            last = self._last_unknown_fetch
            if last is not None and now - last < self._cooldown:
                return
            self._last_unknown_fetch = now
            try:
                self.refresh()
            except Exception as e:
                log.warning("could not refresh sessiond's JWKS: %s", e)

    def _checked_header(self, token: str, header_segment: str) -> Ed25519PublicKey:
        """The key a header names, once the header passed every check; remembered, so the
        next token with the same header (every token of that key) skips them."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("unreadable header") from None
        # The algorithm is ours to choose, never the token's: EdDSA or nothing.
        if header.get("alg") != "EdDSA" or header.get("typ") != TYP:
            raise InvalidToken("wrong alg or typ")
        if not _FORBIDDEN_HEADERS.isdisjoint(header):
            raise InvalidToken("a key-pointing or critical header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no kid")
        key = self._by_kid.get(kid)
        if key is None:
            raise UnknownKid(kid)
        if len(self._good_headers) >= _MAX_GOOD_HEADERS:
            self._good_headers.clear()
        self._good_headers[header_segment] = kid
        return key

    def verify(self, token: str) -> Claims:
        """Signature and claims (not exp, which the caller checks). Raises InvalidToken or
        UnknownKid."""
        if len(token) > MAX_TOKEN_LENGTH or _COMPACT_JWS.fullmatch(token) is None:
            raise InvalidToken("not a compact JWS")
        header_segment = token[: token.index(".")]
        kid = self._good_headers.get(header_segment)
        key = self._by_kid.get(kid) if kid is not None else None
        if key is None:
            key = self._checked_header(token, header_segment)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=_ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                leeway=0,
                options=self._decode_options,
            )
        except jwt.InvalidTokenError as e:
            raise InvalidToken(str(e)) from None
        claims = Claims.from_payload(payload)
        if claims is None:
            raise InvalidToken("a claim of the wrong type")
        return claims


def _ed25519(jwk: object) -> Ed25519PublicKey | None:
    """The key of one JWKS entry, or None for anything but a well-formed Ed25519 key (an
    RSA or symmetric key in the set can never verify our tokens)."""
    if not isinstance(jwk, dict):
        return None
    kid, x = jwk.get("kid"), jwk.get("x")
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") != "EdDSA":
        return None
    if not isinstance(kid, str) or not kid or not isinstance(x, str):
        return None
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return None
