"""Prints N HS256 access tokens for the FastAPI reference, one per line: mint.py N."""

import os
import sys
import time
import uuid

import jwt

SECRET = os.environ["REF_JWT_SECRET"]

now = int(time.time())
for _ in range(int(sys.argv[1])):
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "aud": "sessiond-bench",
        "iat": now,
        "exp": now + 7200,
    }
    print(jwt.encode(claims, SECRET, algorithm="HS256"))
