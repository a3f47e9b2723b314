"""The few HTTP calls the verifier makes to sessiond, with the standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .errors import StartError

USER_AGENT = "sessiond-verify-python/0.1"


def request_json(
    method: str,
    url: str,
    *,
    api_key: str | None = None,
    body: dict[str, Any] | None = None,
    timeout: float,
) -> dict[str, Any]:
    """Sends one request and reads a JSON object back. Any failure (no answer, a status
    other than 200, a body that is not a JSON object) raises StartError."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    data = None
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        text = e.read(2048).decode("utf-8", "replace")
        e.close()
        raise StartError(
            f"{method} {url}: sessiond answered {e.code}: {text}", status=e.code
        ) from None
    except (OSError, ValueError) as e:  # URLError, timeouts, resets, bad URLs
        raise StartError(f"{method} {url}: sessiond could not be reached: {e}") from None
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise StartError(f"{method} {url}: the answer is not JSON") from None
    if not isinstance(parsed, dict):
        raise StartError(f"{method} {url}: the answer is not a JSON object")
    return parsed
