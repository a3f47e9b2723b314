"""Seeds revoked-but-alive sessions for a benchmark run by hand (bench/verify.sh does its
own): N admin-made sessions of one user, each ended with DELETE.

    SESSIOND_URL=… SESSIOND_ADMIN_KEY=… python clients/python/bench/seed.py 2000"""

from __future__ import annotations

import os
import sys
import uuid

import httpx


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    http = httpx.Client(base_url=os.environ["SESSIOND_URL"].rstrip("/"), timeout=60)
    admin = {"Authorization": f"Bearer {os.environ['SESSIOND_ADMIN_KEY']}"}
    email = f"seed-{uuid.uuid4().hex[:12]}@example.com"
    r = http.post("/v1/users", json={"email": email, "password": "correct horse battery staple"})
    r.raise_for_status()
    user_id = r.json()["user"]["id"]
    for _ in range(count):
        r = http.post("/v1/admin/sessions", json={"user_id": user_id}, headers=admin)
        r.raise_for_status()
        http.delete(f"/v1/admin/sessions/{r.json()['session']['id']}", headers=admin)
    print(f"seeded {count} revoked sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
