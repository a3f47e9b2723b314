"""Tokens made by hand for the attack tests: with an attacker's key, or with sessiond's own
signing key read from the stopped-or-running server's SQLite database (so a token can be
correctly signed and wrong in exactly one other way)."""

from __future__ import annotations

import base64
import glob
import hashlib
import hmac
import json
import os
import sqlite3
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a token, unverified."""
    h, p, _ = token.split(".")
    return json.loads(base64.urlsafe_b64decode(_pad(h))), json.loads(
        base64.urlsafe_b64decode(_pad(p))
    )


def _pad(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)


def sign_ed25519(key: Ed25519PrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def sign_hs256(secret: bytes, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def server_signing_key(data_dir: str) -> tuple[str, Ed25519PrivateKey]:
    """The (kid, key) sessiond signs with now: its newest unretired key."""
    dbs = [p for p in glob.glob(os.path.join(data_dir, "*.db")) if os.path.isfile(p)]
    assert dbs, f"no SQLite database in {data_dir}"
    db = sqlite3.connect(f"file:{dbs[0]}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT kid, private_pkcs8 FROM signing_keys WHERE retired_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    finally:
        db.close()
    assert row is not None
    # ring writes PKCS#8 v2 (the seed, then the public key), which `cryptography` does not
    # parse: take the 32-byte seed after its OCTET STRING tags.
    der = bytes(row[1])
    at = der.index(b"\x04\x22\x04\x20") + 4
    return str(row[0]), Ed25519PrivateKey.from_private_bytes(der[at : at + 32])


def public_jwk(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), "kid": kid, "alg": "EdDSA"}
