"""The verifier benchmark (clients/VERIFIER-CONFORMANCE.md, "The verifier benchmark"): bare
PyJWT checks against `Verifier.verify` of the same token with the same key, the memory the
revocation snapshot takes, and how fast a revocation reaches the verifier.

    SESSIOND_URL=… SESSIOND_ADMIN_KEY=… SESSIOND_VERIFIER_KEY=… [BENCH_SECONDS=5]
    [BENCH_REVOCATIONS=200] clients/python/.venv/bin/python clients/python/bench/bench.py

Prints one JSON line. Everything runs on the main thread except the verifier's own feed
follower."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import tracemalloc
import uuid
from typing import Any

import httpx
import jwt

from sessiond_verify import Verifier, VerifyError

ISSUER = AUDIENCE = "sessiond"


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def throughput(seconds: float, check: Any) -> float:
    """Calls check() for `seconds`; calls per second. The clock is read every 256 calls."""
    calls, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(256):
            check()
        calls += 256
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def main() -> int:
    url = os.environ["SESSIOND_URL"].rstrip("/")
    admin_key = os.environ["SESSIOND_ADMIN_KEY"]
    verifier_key = os.environ["SESSIOND_VERIFIER_KEY"]
    seconds = float(os.environ.get("BENCH_SECONDS", "5"))
    revocations = int(os.environ.get("BENCH_REVOCATIONS", "200"))
    http = httpx.Client(base_url=url, timeout=60)
    admin = {"Authorization": f"Bearer {admin_key}"}

    # 1. memory: what starting (JWKS + the snapshot) allocates, and the RSS after.
    tracemalloc.start()
    heap_before = tracemalloc.get_traced_memory()[0]
    verifier = Verifier(url, verifier_key, ISSUER, AUDIENCE).start()
    heap_bytes = tracemalloc.get_traced_memory()[0] - heap_before
    tracemalloc.stop()  # it slows every allocation: off before anything is timed
    rss = rss_bytes()
    denied_sessions = verifier.denied_count()[0]

    # 2. one access token, for a user of its own
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    r = http.post("/v1/users", json={"email": email, "password": "correct horse battery staple"})
    r.raise_for_status()
    user_id = r.json()["user"]["id"]

    def new_session() -> dict[str, Any]:
        r = http.post("/v1/admin/sessions", json={"user_id": user_id}, headers=admin)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    token = new_session()["access_token"]

    # 3. bare: PyJWT alone, the same key, iss/aud/exp checked and typ read from the header
    kid = jwt.get_unverified_header(token)["kid"]
    jwks = http.get("/.well-known/jwks.json").json()
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid)).key

    def bare() -> None:
        decoded = jwt.decode_complete(
            token, key, algorithms=["EdDSA"], issuer=ISSUER, audience=AUDIENCE, leeway=0
        )
        if decoded["header"].get("typ") != "at+jwt":
            raise ValueError("typ")

    bare()
    bare_per_s = throughput(seconds, bare)

    # 4. the verifier
    verifier.verify(token)
    verifier_per_s = throughput(seconds, lambda: verifier.verify(token))

    # 5. revocation latency: from before the DELETE to the first refusal
    latencies: list[float] = []
    for _ in range(revocations):
        issued = new_session()
        verifier.verify(issued["access_token"])
        started = time.perf_counter()
        http.delete(f"/v1/admin/sessions/{issued['session']['id']}", headers=admin)
        while True:
            try:
                verifier.verify(issued["access_token"])
            except VerifyError:
                break
            if time.perf_counter() - started > 10:
                print("bench: a revocation took over 10 s", file=sys.stderr)
                return 1
            time.sleep(0.001)
        latencies.append((time.perf_counter() - started) * 1000)

    verifier.close()
    print(
        json.dumps(
            {
                "language": "python",
                "bare_per_s": round(bare_per_s),
                "verifier_per_s": round(verifier_per_s),
                "ratio": round(verifier_per_s / bare_per_s, 3),
                "heap_bytes": heap_bytes,
                "rss_bytes": rss,
                "denied_sessions": denied_sessions,
                "revocation_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
                "revocation_p99_ms": round(percentile(latencies, 0.99), 2) if latencies else None,
                "revocations": len(latencies),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
