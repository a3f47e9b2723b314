"""Webhook signatures (Standard Webhooks): the spec's published vector, every refusal by its
reason, rotated secrets, the tolerance both ways, header forms, and real HTTP receivers
(FastAPI under uvicorn, the standard library's http.server). Needs no sessiond."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import uvicorn
from django.http.request import HttpHeaders
from fastapi import FastAPI, HTTPException, Request
from starlette.datastructures import Headers

from sessiond_verify.webhooks import (
    DEFAULT_TOLERANCE,
    Reason,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

from harness import wait_for

# The vector of the Standard Webhooks reference libraries' tests.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = '{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def vector_headers(**over: str) -> dict[str, str]:
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }
    headers.update({k.replace("_", "-"): v for k, v in over.items()})
    return headers


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def refused(reason: Reason, call: Callable[[], object]) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as info:
        call()
    assert info.value.reason == reason, info.value.detail
    return info.value


def refuses(reason: Reason, secret: str, headers: dict[str, str], body: str) -> None:
    refused(reason, lambda: verify_webhook(secret, headers, body))


class Signed:
    """A fresh event signed at `ts` (default now)."""

    def __init__(self, secret: str | None = None, ts: int | None = None) -> None:
        self.secret = secret or new_secret()
        self.id = "evt_" + secrets.token_hex(8)
        self.ts = int(time.time()) if ts is None else ts
        self.body = json.dumps(
            {"type": "test.event", "timestamp": self.ts, "data": {"id": self.id}},
            separators=(",", ":"),
        )
        self.headers = {
            "webhook-id": self.id,
            "webhook-timestamp": str(self.ts),
            "webhook-signature": sign_webhook(self.secret, self.id, self.ts, self.body),
        }

    def verify(self, **kw: Any) -> dict[str, Any]:
        return verify_webhook(self.secret, self.headers, self.body, **kw)


# --- the Standard Webhooks vector --------------------------------------------------------


def test_sign_gives_the_published_signature() -> None:
    assert sign_webhook(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == SIGNATURE
    assert sign_webhook(SECRET.removeprefix("whsec_"), MSG_ID, TIMESTAMP, PAYLOAD) == SIGNATURE
    assert sign_webhook(SECRET, MSG_ID, TIMESTAMP, PAYLOAD.encode()) == SIGNATURE
    at = datetime.fromtimestamp(TIMESTAMP, tz=timezone.utc) + timedelta(milliseconds=999)
    assert sign_webhook(SECRET, MSG_ID, at, PAYLOAD) == SIGNATURE


def test_verify_accepts_the_vector_and_returns_the_event() -> None:
    assert verify_webhook(SECRET, vector_headers(), PAYLOAD, now=TIMESTAMP) == {"test": 2432232314}
    bare = SECRET.removeprefix("whsec_")
    assert verify_webhook(bare, vector_headers(), PAYLOAD, now=TIMESTAMP) == {"test": 2432232314}


@pytest.mark.parametrize(
    "signature",
    [
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",  # last byte off
        "v1,dawfeoifkpqwoekfpqoekf",  # not a MAC
        SIGNATURE[:8],  # cut short
        "v1,",
        "v1",
    ],
)
def test_the_specs_invalid_signatures_are_refused(signature: str) -> None:
    headers = vector_headers(webhook_signature=signature)
    refused(
        "no_matching_signature", lambda: verify_webhook(SECRET, headers, PAYLOAD, now=TIMESTAMP)
    )


def test_the_specs_list_of_signatures_one_good_is_accepted() -> None:
    sigs = " ".join(
        [
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
            SIGNATURE,
            "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        ]
    )
    headers = vector_headers(webhook_signature=sigs)
    assert verify_webhook(SECRET, headers, PAYLOAD, now=TIMESTAMP)["test"] == 2432232314


# --- tampering ---------------------------------------------------------------------------


def test_an_altered_body_id_or_timestamp_matches_no_signature() -> None:
    s = Signed()
    s.verify()
    for body in [
        s.body.replace("test.event", "test.evenT"),
        s.body + " ",
        json.dumps(json.loads(s.body), indent=2),  # re-serialised: same data, other bytes
    ]:
        refuses("no_matching_signature", s.secret, s.headers, body)
    other_id = {**s.headers, "webhook-id": s.id + "x"}
    refused("no_matching_signature", lambda: verify_webhook(s.secret, other_id, s.body))
    earlier = {**s.headers, "webhook-timestamp": str(s.ts - 1)}  # within the tolerance
    refused("no_matching_signature", lambda: verify_webhook(s.secret, earlier, s.body))


def test_another_secret_matches_no_signature() -> None:
    s = Signed()
    refused("no_matching_signature", lambda: verify_webhook(new_secret(), s.headers, s.body))


def test_only_v1_entries_count() -> None:
    s = Signed()
    mac = s.headers["webhook-signature"][3:]
    for sig in [f"v2,{mac}", f"v1a,{mac}", f"V1,{mac}", mac, f"v1;{mac}"]:
        refuses("no_matching_signature", s.secret, {**s.headers, "webhook-signature": sig}, s.body)


def test_a_dot_in_the_timestamp_cannot_move_the_id_timestamp_boundary() -> None:
    secret = new_secret()
    sig = sign_webhook(secret, "a.1", 2, "{}")  # the same signed string as id "a" at "1.2"
    headers = {"webhook-id": "a", "webhook-timestamp": "1.2", "webhook-signature": sig}
    refused("bad_timestamp", lambda: verify_webhook(secret, headers, "{}", now=2))


# --- rotated secrets ---------------------------------------------------------------------


def test_rotation_two_signatures_each_secret_alone_verifies() -> None:
    old, current = new_secret(), new_secret()
    ts = int(time.time())
    body = '{"type":"test.event","data":{}}'
    both = f"{sign_webhook(old, 'evt_rot', ts, body)} {sign_webhook(current, 'evt_rot', ts, body)}"
    headers = {"webhook-id": "evt_rot", "webhook-timestamp": str(ts), "webhook-signature": both}
    assert verify_webhook(old, headers, body)["type"] == "test.event"
    assert verify_webhook(current, headers, body)["type"] == "test.event"
    refused("no_matching_signature", lambda: verify_webhook(new_secret(), headers, body))
    reordered = {**headers, "webhook-signature": "  " + "   ".join(reversed(both.split())) + " "}
    assert verify_webhook(old, reordered, body)["type"] == "test.event"


# --- the timestamp -----------------------------------------------------------------------


def test_tolerance_default_300_both_ways_inclusive() -> None:
    assert DEFAULT_TOLERANCE == 300
    s = Signed(ts=1_700_000_000)
    s.verify(now=s.ts)
    s.verify(now=s.ts + 300)
    s.verify(now=s.ts - 300)
    s.verify(now=s.ts + 300.999)  # whole seconds
    s.verify(now=datetime.fromtimestamp(s.ts + 300, tz=timezone.utc))
    refused("too_old", lambda: s.verify(now=s.ts + 301))
    refused("too_new", lambda: s.verify(now=s.ts - 301))
    refused("too_old", lambda: s.verify(now=datetime.fromtimestamp(s.ts + 301, tz=timezone.utc)))


def test_tolerance_option() -> None:
    s = Signed(ts=1_700_000_000)
    s.verify(now=s.ts + 10, tolerance=10)
    refused("too_old", lambda: s.verify(now=s.ts + 11, tolerance=10))
    refused("too_new", lambda: s.verify(now=s.ts - 11, tolerance=10))
    s.verify(now=s.ts, tolerance=0)
    refused("too_old", lambda: s.verify(now=s.ts + 1, tolerance=0))
    s.verify(now=s.ts + 86_400, tolerance=86_400)
    for bad in [-1, float("nan"), float("inf"), "300", True]:
        with pytest.raises(ValueError):
            s.verify(now=s.ts, tolerance=bad)


def test_the_real_clock_by_default() -> None:
    Signed().verify()
    old = Signed(ts=int(time.time()) - 360)
    refused("too_old", old.verify)
    future = Signed(ts=int(time.time()) + 360)
    refused("too_new", future.verify)


@pytest.mark.parametrize(
    "ts",
    [
        "hello",
        "1614265330.5",
        "-1614265330",
        "+1614265330",
        "1e9",
        "0x60379",
        "1614265330s",
        "1 614 265 330",
        "1_614_265_330",
        "9" * 16,
        "١٦١٤٢٦٥٣٣٠",  # Arabic-Indic digits: int() takes them, the header's form does not
    ],
)
def test_anything_but_an_integer_of_seconds_is_bad_timestamp(ts: str) -> None:
    secret = new_secret()
    headers = {
        "webhook-id": "evt",
        "webhook-timestamp": ts,
        "webhook-signature": sign_webhook(secret, "evt", 1, "{}"),
    }
    refused("bad_timestamp", lambda: verify_webhook(secret, headers, "{}"))


def test_the_tolerance_is_checked_before_the_signature() -> None:
    s = Signed(ts=1_700_000_000)
    forged = {**s.headers, "webhook-signature": "v1,AAAA"}
    refused("too_old", lambda: verify_webhook(s.secret, forged, s.body, now=s.ts + 1000))
    refused("no_matching_signature", lambda: verify_webhook(s.secret, forged, s.body, now=s.ts))


# --- headers -----------------------------------------------------------------------------


def test_header_names_in_any_case() -> None:
    s = Signed()
    upper = {k.upper(): v for k, v in s.headers.items()}
    title = {k.title(): v for k, v in s.headers.items()} | {"Content-Type": "application/json"}
    assert verify_webhook(s.secret, upper, s.body)["type"] == "test.event"
    assert verify_webhook(s.secret, title, s.body)["type"] == "test.event"


def test_starlette_and_django_headers() -> None:
    s = Signed()
    raw = [(k.title().encode(), v.encode()) for k, v in s.headers.items()]
    assert verify_webhook(s.secret, Headers(raw=raw), s.body)["type"] == "test.event"
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in s.headers.items()}
    assert verify_webhook(s.secret, HttpHeaders(meta), s.body)["type"] == "test.event"
    # two signature lines (Starlette keeps both): the good entry is still found
    bad = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    two = [(b"webhook-signature", bad.encode()), *raw]
    assert verify_webhook(s.secret, Headers(raw=two), s.body)["type"] == "test.event"
    good = s.headers["webhook-signature"]
    for folded in [f"{bad}, {good}", f"{good}, {bad}"]:  # "good," still counts
        headers = {**s.headers, "webhook-signature": folded}
        assert verify_webhook(s.secret, headers, s.body)["type"] == "test.event"


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_each_of_the_three_missing_or_empty_is_missing_headers(name: str) -> None:
    s = Signed()
    rest = {k: v for k, v in s.headers.items() if k != name}
    refused("missing_headers", lambda: verify_webhook(s.secret, rest, s.body))
    for empty in ["", "   "]:
        refuses("missing_headers", s.secret, {**s.headers, name: empty}, s.body)
    refused("missing_headers", lambda: verify_webhook(s.secret, {}, s.body))


# --- the secret --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "whsec_",
        "whsec_not base64!",
        "whsec_a",
        "whsec_YWJjZ",
        "whsec_YWJj===",
        "whsec_YWI==",
        "whsec_ab=c",
        "whsec_a===",
        "whsec_YWJj-_8",
        "whsec_YWJj\n",
        None,
        42,
    ],
)
def test_a_secret_that_is_not_base64_of_a_key_is_bad_secret(secret: Any) -> None:
    s = Signed()
    refused("bad_secret", lambda: verify_webhook(secret, s.headers, s.body))
    refused("bad_secret", lambda: verify_webhook(secret, {}, s.body))  # before the request
    refused("bad_secret", lambda: sign_webhook(secret, "evt", 1, "{}"))


def test_base64_with_or_without_padding() -> None:
    padded = "whsec_" + base64.b64encode(secrets.token_bytes(31)).decode()  # ends in "="
    unpadded = padded.rstrip("=")
    assert padded != unpadded
    s = Signed(secret=padded)
    assert verify_webhook(unpadded, s.headers, s.body)["type"] == "test.event"


# --- the body ----------------------------------------------------------------------------


def test_bytes_and_str_bodies_verify_alike_non_ascii_included() -> None:
    secret = new_secret()
    ts = int(time.time())
    body = '{"type":"test.event","data":{"name":"Zoë 👋","note":"naïve"}}'
    raw = body.encode()
    sig = sign_webhook(secret, "evt_utf8", ts, raw)
    assert sig == sign_webhook(secret, "evt_utf8", ts, body)
    headers = {"webhook-id": "evt_utf8", "webhook-timestamp": str(ts), "webhook-signature": sig}
    assert verify_webhook(secret, headers, raw)["data"]["name"] == "Zoë 👋"
    assert verify_webhook(secret, headers, body)["data"]["note"] == "naïve"
    assert verify_webhook(secret, headers, bytearray(raw))["type"] == "test.event"
    assert verify_webhook(secret, headers, memoryview(b"xx" + raw)[2:])["type"] == "test.event"
    altered = bytearray(raw)
    altered[-3] ^= 1
    refused("no_matching_signature", lambda: verify_webhook(secret, headers, bytes(altered)))


@pytest.mark.parametrize("body", ["not json", "[1,2]", "null", '"str"'])
def test_a_signed_body_that_is_not_a_json_object_is_a_value_error(body: str) -> None:
    secret = new_secret()
    ts = int(time.time())
    headers = {
        "webhook-id": "evt",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_webhook(secret, "evt", ts, body),
    }
    with pytest.raises(ValueError) as info:
        verify_webhook(secret, headers, body)
    assert not isinstance(info.value, WebhookVerificationError)


def test_a_body_of_another_type_is_a_type_error() -> None:
    s = Signed()
    with pytest.raises(TypeError):
        verify_webhook(s.secret, s.headers, json.loads(s.body))


def test_the_error() -> None:
    e = refused("missing_headers", lambda: verify_webhook(SECRET, {}, PAYLOAD))
    assert isinstance(e, Exception)
    assert "webhook-id" in str(e)
    assert repr(e).startswith("WebhookVerificationError('missing_headers'")
    assert WebhookVerificationError("too_old").detail == "too_old"


# --- real HTTP receivers -----------------------------------------------------------------


def serve_fastapi(app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


WEBHOOK_SECRET = new_secret()


@pytest.fixture(scope="module")
def fastapi_url() -> Iterator[str]:
    # The README's FastAPI receiver, answering what it saw so the test can tell.
    app = FastAPI()
    seen: set[str] = set()

    @app.post("/webhooks/sessiond")
    async def sessiond_webhook(request: Request) -> dict[str, Any]:
        body = await request.body()  # the raw bytes, not request.json()
        try:
            event = verify_webhook(WEBHOOK_SECRET, request.headers, body)
        except WebhookVerificationError as e:
            raise HTTPException(status_code=400, detail=e.reason) from None
        msg_id = request.headers["webhook-id"]
        duplicate = msg_id in seen
        seen.add(msg_id)
        return {"type": event["type"], "duplicate": duplicate}

    yield from serve_fastapi(app)


def signed_post(url: str, secret: str, msg_id: str, ts: int, body: str) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(ts),
        "Webhook-Signature": sign_webhook(secret, msg_id, ts, body),
    }
    return httpx.post(url, content=body.encode(), headers=headers)


def test_fastapi_receiver_over_http(fastapi_url: str) -> None:
    url = f"{fastapi_url}/webhooks/sessiond"
    body = json.dumps({"type": "test.event", "data": {"text": "héllo"}}, indent=1)
    ts = int(time.time())
    first = signed_post(url, WEBHOOK_SECRET, "evt_fastapi", ts, body)
    assert (first.status_code, first.json()) == (200, {"type": "test.event", "duplicate": False})
    # a retry: a new attempt timestamp and signature, the same id (deduplicated)
    retry = signed_post(url, WEBHOOK_SECRET, "evt_fastapi", ts + 1, body)
    assert (retry.status_code, retry.json()) == (200, {"type": "test.event", "duplicate": True})
    wrong = signed_post(url, new_secret(), "evt_fastapi_2", ts, body)
    assert (wrong.status_code, wrong.json()) == (400, {"detail": "no_matching_signature"})
    replay = signed_post(url, WEBHOOK_SECRET, "evt_fastapi_3", ts - 600, body)
    assert (replay.status_code, replay.json()) == (400, {"detail": "too_old"})
    bare = httpx.post(url, content=body.encode())
    assert (bare.status_code, bare.json()) == (400, {"detail": "missing_headers"})


def test_stdlib_http_server_receiver() -> None:
    secret = new_secret()
    results: list[dict[str, Any] | str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                results.append(verify_webhook(secret, self.headers, raw))
                self.send_response(204)
            except WebhookVerificationError as e:
                results.append(e.reason)
                self.send_response(400)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        body = '{"type":"test.event","data":{"n":1}}'
        ts = int(time.time())
        assert signed_post(url, secret, "evt_std", ts, body).status_code == 204
        tampered = httpx.post(
            url,
            content=body.replace("1", "2").encode(),
            headers={
                "webhook-id": "evt_std",
                "webhook-timestamp": str(ts),
                "webhook-signature": sign_webhook(secret, "evt_std", ts, body),
            },
        )
        assert tampered.status_code == 400
        assert results == [{"type": "test.event", "data": {"n": 1}}, "no_matching_signature"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
