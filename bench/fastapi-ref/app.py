"""What a Python team would write instead: FastAPI + PyJWT verifying an HS256 access token
on every request and answering a session JSON of the same size as sessiond's whoami.

Run by bench/run.sh as `uvicorn app:app --workers 2` (one worker per core). Settings:
REF_JWT_SECRET (HMAC key, shared with mint.py), REF_BODY_BYTES (answer size).
"""

import json
import os

import jwt
from fastapi import FastAPI, Header, HTTPException

SECRET = os.environ["REF_JWT_SECRET"]
BODY_BYTES = int(os.environ.get("REF_BODY_BYTES", "510"))
AUDIENCE = "sessiond-bench"

app = FastAPI()


def answer(claims: dict, padding: str) -> dict:
    return {
        "session": {
            "id": claims["sid"],
            "user_id": claims["sub"],
            "auth_method": "admin",
            "created_at": "2026-12-02T00:00:00.000Z",
            "last_active_at": "2026-12-02T00:00:00.000Z",
            "expires_at": "2026-12-09T00:00:00.000Z",
            "idle_expires_at": "2026-12-02T02:00:00.000Z",
            "device": {"device_id": None, "user_agent": None, "ip": None, "label": padding},
        },
        "user": {"id": claims["sub"], "email": None, "name": None, "active": True},
    }


def padding_for(claims: dict) -> str:
    """Pads the device label so that the JSON answer is BODY_BYTES long."""
    size = len(json.dumps(answer(claims, ""), separators=(",", ":")))
    return "x" * max(0, BODY_BYTES - size)


PADDING = None


@app.get("/v1/session")
async def whoami(authorization: str | None = Header(default=None)):
    global PADDING
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(status_code=401, detail="TOKEN_NOT_PROVIDED")
    try:
        claims = jwt.decode(
            authorization[7:], SECRET, algorithms=["HS256"], audience=AUDIENCE
        )
    except jwt.PyJWTError:
        raise HTTPException(status_code=401, detail="TOKEN_INVALID")
    if PADDING is None:
        PADDING = padding_for(claims)
    return answer(claims, PADDING)
