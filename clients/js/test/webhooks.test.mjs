// Webhook signatures (Standard Webhooks): the spec's published vector, every refusal by its
// reason, rotated secrets, the tolerance both ways, header forms and a real HTTP receiver.
// Needs no sessiond: imported through the package's own exports map, as an app would.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { createRequire } from "node:module";
import { describe, test } from "node:test";
import { signWebhook, verifyWebhook, WebhookVerificationError } from "@sessiond/client/webhooks";

// The vector of the Standard Webhooks reference libraries' tests.
const VECTOR = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const vectorHeaders = (over = {}) => ({
  "webhook-id": VECTOR.id,
  "webhook-timestamp": String(VECTOR.timestamp),
  "webhook-signature": VECTOR.signature,
  ...over,
});
const atVector = { now: VECTOR.timestamp };

const newSecret = () => "whsec_" + randomBytes(32).toString("base64");
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Asserts that `promise` rejects with a WebhookVerificationError of `reason`. */
async function refused(promise, reason) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof WebhookVerificationError, `not a WebhookVerificationError: ${e}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, "WebhookVerificationError");
    assert.equal(e.reason, reason, e.message);
    return true;
  });
}

/** A fresh event signed now: [secret, headers, body]. */
async function signed({ secret = newSecret(), id = "evt_" + randomBytes(8).toString("hex"), ts = nowSeconds() } = {}) {
  const body = JSON.stringify({ type: "test.event", timestamp: new Date(ts * 1000).toISOString(), data: { id } });
  const headers = {
    "webhook-id": id,
    "webhook-timestamp": String(ts),
    "webhook-signature": await signWebhook(secret, id, ts, body),
  };
  return { secret, headers, body, id, ts };
}

describe("the Standard Webhooks vector", () => {
  test("signWebhook gives the published signature (with and without whsec_, number or Date)", async () => {
    assert.equal(await signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body), VECTOR.signature);
    const bare = VECTOR.secret.slice("whsec_".length);
    assert.equal(await signWebhook(bare, VECTOR.id, VECTOR.timestamp, VECTOR.body), VECTOR.signature);
    const date = new Date(VECTOR.timestamp * 1000 + 999);
    assert.equal(await signWebhook(VECTOR.secret, VECTOR.id, date, VECTOR.body), VECTOR.signature);
    const bytes = new TextEncoder().encode(VECTOR.body);
    assert.equal(await signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, bytes), VECTOR.signature);
  });

  test("verifyWebhook accepts it and answers the parsed event", async () => {
    assert.deepEqual(await verifyWebhook(VECTOR.secret, vectorHeaders(), VECTOR.body, atVector), { test: 2432232314 });
    const bare = VECTOR.secret.slice("whsec_".length);
    assert.deepEqual(await verifyWebhook(bare, vectorHeaders(), VECTOR.body, atVector), { test: 2432232314 });
  });

  test("the spec's invalid signatures are refused", async () => {
    for (const sig of [
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", // last byte off
      "v1,dawfeoifkpqwoekfpqoekf", // not a MAC
      VECTOR.signature.slice(0, 8), // cut short
      "v1,",
      "v1",
    ])
      await refused(verifyWebhook(VECTOR.secret, vectorHeaders({ "webhook-signature": sig }), VECTOR.body, atVector), "no_matching_signature");
  });

  test("the spec's list of several signatures, one good, is accepted", async () => {
    const sigs = [
      "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
      "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
      VECTOR.signature,
      "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ].join(" ");
    const event = await verifyWebhook(VECTOR.secret, vectorHeaders({ "webhook-signature": sigs }), VECTOR.body, atVector);
    assert.equal(event.test, 2432232314);
  });
});

describe("tampering", () => {
  test("an altered body, id or timestamp matches no signature", async () => {
    const { secret, headers, body } = await signed();
    await verifyWebhook(secret, headers, body); // the original is good
    await refused(verifyWebhook(secret, headers, body.replace("test.event", "test.evenT")), "no_matching_signature");
    await refused(verifyWebhook(secret, headers, body + " "), "no_matching_signature");
    // re-serialised JSON (a common receiver mistake): same data, other bytes
    await refused(verifyWebhook(secret, headers, JSON.stringify(JSON.parse(body), null, 2)), "no_matching_signature");
    await refused(verifyWebhook(secret, { ...headers, "webhook-id": headers["webhook-id"] + "x" }, body), "no_matching_signature");
    const ts = String(Number(headers["webhook-timestamp"]) - 1); // still within the tolerance
    await refused(verifyWebhook(secret, { ...headers, "webhook-timestamp": ts }, body), "no_matching_signature");
  });

  test("another secret matches no signature", async () => {
    const { headers, body } = await signed();
    await refused(verifyWebhook(newSecret(), headers, body), "no_matching_signature");
  });

  test("only v1 entries count: the right MAC under another version is ignored", async () => {
    const { secret, headers, body } = await signed();
    const mac = headers["webhook-signature"].slice(3);
    for (const sig of [`v2,${mac}`, `v1a,${mac}`, `V1,${mac}`, mac, `v1;${mac}`])
      await refused(verifyWebhook(secret, { ...headers, "webhook-signature": sig }, body), "no_matching_signature");
  });

  test("a dot in the timestamp cannot move the boundary between id and timestamp", async () => {
    // A signature made for id "a.1" at 2 must not pass as id "a" at "1.2": same signed string.
    const secret = newSecret();
    const sig = await signWebhook(secret, "a.1", 2, "{}");
    await refused(
      verifyWebhook(secret, { "webhook-id": "a", "webhook-timestamp": "1.2", "webhook-signature": sig }, "{}", { now: 2 }),
      "bad_timestamp",
    );
  });
});

describe("rotated secrets", () => {
  test("two signatures, one per secret: each secret alone verifies; a third does not", async () => {
    const oldSecret = newSecret();
    const currentSecret = newSecret();
    const id = "evt_rotation";
    const ts = nowSeconds();
    const body = '{"type":"test.event","data":{}}';
    const header = [await signWebhook(oldSecret, id, ts, body), await signWebhook(currentSecret, id, ts, body)].join(" ");
    const headers = { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": header };
    assert.equal((await verifyWebhook(oldSecret, headers, body)).type, "test.event");
    assert.equal((await verifyWebhook(currentSecret, headers, body)).type, "test.event");
    await refused(verifyWebhook(newSecret(), headers, body), "no_matching_signature");
    // in either order, and with extra spaces
    const reordered = { ...headers, "webhook-signature": "  " + header.split(" ").reverse().join("   ") + " " };
    assert.equal((await verifyWebhook(oldSecret, reordered, body)).type, "test.event");
  });
});

describe("the timestamp", () => {
  test("tolerance (default 300 s) both ways, inclusive", async () => {
    const { secret, headers, body, ts } = await signed({ ts: 1_700_000_000 });
    await verifyWebhook(secret, headers, body, { now: ts });
    await verifyWebhook(secret, headers, body, { now: ts + 300 });
    await verifyWebhook(secret, headers, body, { now: ts - 300 });
    await verifyWebhook(secret, headers, body, { now: new Date((ts + 300) * 1000 + 999) }); // whole seconds
    await refused(verifyWebhook(secret, headers, body, { now: ts + 301 }), "too_old");
    await refused(verifyWebhook(secret, headers, body, { now: ts - 301 }), "too_new");
    await refused(verifyWebhook(secret, headers, body, { now: new Date((ts + 301) * 1000) }), "too_old");
  });

  test("toleranceSeconds", async () => {
    const { secret, headers, body, ts } = await signed({ ts: 1_700_000_000 });
    await verifyWebhook(secret, headers, body, { now: ts + 10, toleranceSeconds: 10 });
    await refused(verifyWebhook(secret, headers, body, { now: ts + 11, toleranceSeconds: 10 }), "too_old");
    await refused(verifyWebhook(secret, headers, body, { now: ts - 11, toleranceSeconds: 10 }), "too_new");
    await verifyWebhook(secret, headers, body, { now: ts, toleranceSeconds: 0 });
    await refused(verifyWebhook(secret, headers, body, { now: ts + 1, toleranceSeconds: 0 }), "too_old");
    await verifyWebhook(secret, headers, body, { now: ts + 86_400, toleranceSeconds: 86_400 });
    for (const toleranceSeconds of [-1, Number.NaN, Infinity, "300"])
      await assert.rejects(verifyWebhook(secret, headers, body, { now: ts, toleranceSeconds }), RangeError);
  });

  test("the real clock by default: fresh passes, six minutes either way does not", async () => {
    const fresh = await signed();
    await verifyWebhook(fresh.secret, fresh.headers, fresh.body);
    const old = await signed({ ts: nowSeconds() - 360 });
    await refused(verifyWebhook(old.secret, old.headers, old.body), "too_old");
    const future = await signed({ ts: nowSeconds() + 360 });
    await refused(verifyWebhook(future.secret, future.headers, future.body), "too_new");
  });

  test("anything but an integer of seconds is bad_timestamp, even when signed", async () => {
    const secret = newSecret();
    for (const ts of ["hello", "1614265330.5", "-1614265330", "+1614265330", "1e9", "0x60379", "1614265330s", "1 614 265 330", "9".repeat(16), "١٦١٤٢٦٥٣٣٠"]) {
      const headers = { "webhook-id": "evt", "webhook-timestamp": ts, "webhook-signature": await signWebhook(secret, "evt", 1, "{}") };
      await refused(verifyWebhook(secret, headers, "{}"), "bad_timestamp");
    }
  });

  test("the timestamp's form is checked before the signature, the signature after the tolerance", async () => {
    // A forged request with a stale timestamp is told too_old (never which signature would do).
    const { secret, headers, body, ts } = await signed({ ts: 1_700_000_000 });
    const forged = { ...headers, "webhook-signature": "v1,AAAA" };
    await refused(verifyWebhook(secret, forged, body, { now: ts + 1000 }), "too_old");
    await refused(verifyWebhook(secret, forged, body, { now: ts }), "no_matching_signature");
  });
});

describe("headers", () => {
  test("names in any case, in a plain object", async () => {
    const { secret, headers, body } = await signed();
    const upper = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v]));
    const title = {
      "Webhook-Id": headers["webhook-id"],
      "Webhook-Timestamp": headers["webhook-timestamp"],
      "Webhook-Signature": headers["webhook-signature"],
      "Content-Type": "application/json",
    };
    assert.equal((await verifyWebhook(secret, upper, body)).type, "test.event");
    assert.equal((await verifyWebhook(secret, title, body)).type, "test.event");
  });

  test("a Fetch Headers", async () => {
    const { secret, headers, body } = await signed();
    const h = new Headers();
    h.set("Webhook-ID", headers["webhook-id"]);
    h.set("WEBHOOK-TIMESTAMP", headers["webhook-timestamp"]);
    h.set("webhook-signature", headers["webhook-signature"]);
    assert.equal((await verifyWebhook(secret, h, body)).type, "test.event");
    // two signature lines, folded by Headers with ", ", still find their good entry
    const folded = new Headers(h);
    folded.set("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=");
    folded.append("webhook-signature", headers["webhook-signature"]);
    assert.equal((await verifyWebhook(secret, folded, body)).type, "test.event");
    const goodFirst = new Headers(h);
    goodFirst.append("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="); // "good, bad"
    assert.match(goodFirst.get("webhook-signature"), /=, v1,/);
    assert.equal((await verifyWebhook(secret, goodFirst, body)).type, "test.event");
    h.delete("webhook-signature");
    await refused(verifyWebhook(secret, h, body), "missing_headers");
  });

  test("array values (Node's header arrays)", async () => {
    const { secret, headers, body } = await signed();
    const arrays = { ...headers, "webhook-signature": ["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", headers["webhook-signature"]] };
    assert.equal((await verifyWebhook(secret, arrays, body)).type, "test.event");
  });

  test("each of the three missing or empty is missing_headers", async () => {
    const { secret, headers, body } = await signed();
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      const { [name]: _gone, ...rest } = headers;
      await refused(verifyWebhook(secret, rest, body), "missing_headers");
      await refused(verifyWebhook(secret, { ...headers, [name]: "" }, body), "missing_headers");
      await refused(verifyWebhook(secret, { ...headers, [name]: "   " }, body), "missing_headers");
      await refused(verifyWebhook(secret, { ...headers, [name]: undefined }, body), "missing_headers");
      await refused(verifyWebhook(secret, { ...headers, [name]: [] }, body), "missing_headers");
    }
    await refused(verifyWebhook(secret, {}, body), "missing_headers");
  });
});

describe("the secret", () => {
  test("anything but whsec_ + base64 (or plain base64) of a key is bad_secret, before the request is looked at", async () => {
    const { headers, body } = await signed();
    for (const secret of ["", "whsec_", "whsec_not base64!", "whsec_a", "whsec_YWJjZ", "whsec_YWJj===", "whsec_YWI==", "whsec_ab=c", "whsec_a===", "whsec_YWJj-_8", "whsec_YWJj\n", undefined, null, 42])
      await refused(verifyWebhook(secret, headers, body), "bad_secret");
    await refused(verifyWebhook("", {}, body), "bad_secret");
    await refused(signWebhook("whsec_", "evt", 1, "{}"), "bad_secret");
  });

  test("base64 with or without padding", async () => {
    const key = randomBytes(31); // base64 ends in one "="
    const padded = "whsec_" + key.toString("base64");
    const unpadded = padded.replace(/=+$/, "");
    assert.notEqual(padded, unpadded);
    const { headers, body } = await signed({ secret: padded });
    assert.equal((await verifyWebhook(unpadded, headers, body)).type, "test.event");
  });
});

describe("the body", () => {
  test("bytes (Uint8Array, Buffer) and the string verify alike, non-ASCII included", async () => {
    const secret = newSecret();
    const ts = nowSeconds();
    const body = '{"type":"test.event","data":{"name":"Zoë 👋","note":"naïve"}}';
    const bytes = new TextEncoder().encode(body);
    const headers = { "webhook-id": "evt_utf8", "webhook-timestamp": String(ts), "webhook-signature": await signWebhook(secret, "evt_utf8", ts, bytes) };
    assert.equal(headers["webhook-signature"], await signWebhook(secret, "evt_utf8", ts, body));
    assert.equal((await verifyWebhook(secret, headers, bytes)).data.name, "Zoë 👋");
    assert.equal((await verifyWebhook(secret, headers, Buffer.from(body))).data.name, "Zoë 👋");
    assert.equal((await verifyWebhook(secret, headers, body)).data.note, "naïve");
    const altered = Uint8Array.from(bytes);
    altered[altered.length - 3] ^= 1;
    await refused(verifyWebhook(secret, headers, altered), "no_matching_signature");
    // a view into a larger buffer: only the view's bytes are the body
    const big = new Uint8Array(bytes.length + 8);
    big.set(bytes, 4);
    assert.equal((await verifyWebhook(secret, headers, big.subarray(4, 4 + bytes.length))).type, "test.event");
  });

  test("a body that is signed but not a JSON object is a SyntaxError, not a verification error", async () => {
    const secret = newSecret();
    const ts = nowSeconds();
    for (const body of ["not json", "[1,2]", "null", '"str"']) {
      const headers = { "webhook-id": "evt", "webhook-timestamp": String(ts), "webhook-signature": await signWebhook(secret, "evt", ts, body) };
      await assert.rejects(verifyWebhook(secret, headers, body), SyntaxError);
    }
  });

  test("a body of another type is a TypeError", async () => {
    const { secret, headers, body } = await signed();
    await assert.rejects(verifyWebhook(secret, headers, JSON.parse(body)), TypeError);
  });
});

test("CommonJS: require('@sessiond/client/webhooks') works the same", async () => {
  const cjs = createRequire(import.meta.url)("@sessiond/client/webhooks");
  assert.equal(await cjs.signWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body), VECTOR.signature);
  await assert.rejects(cjs.verifyWebhook(VECTOR.secret, {}, VECTOR.body), cjs.WebhookVerificationError);
});

test("a real HTTP receiver (node:http) verifies the raw body of a signed POST", async () => {
  const secret = newSecret();
  const seen = new Set();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    try {
      const event = await verifyWebhook(secret, req.headers, Buffer.concat(chunks));
      const id = req.headers["webhook-id"];
      const duplicate = seen.has(id);
      seen.add(id);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ type: event.type, duplicate }));
    } catch (e) {
      const reason = e instanceof WebhookVerificationError ? e.reason : "error";
      res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ reason }));
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/webhooks/sessiond`;
  try {
    const send = async (headers, body) => {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
      return { status: res.status, json: await res.json() };
    };
    const id = "evt_http_1";
    const body = JSON.stringify({ type: "test.event", data: { text: "héllo" } }, null, 1); // whitespace kept as sent
    const ts = nowSeconds();
    const headers = { "Webhook-Id": id, "Webhook-Timestamp": String(ts), "Webhook-Signature": await signWebhook(secret, id, ts, body) };
    assert.deepEqual(await send(headers, body), { status: 200, json: { type: "test.event", duplicate: false } });
    // a retry: a new attempt timestamp and signature, the same id (the receiver dedupes on it)
    const ts2 = ts + 1;
    const retry = { ...headers, "Webhook-Timestamp": String(ts2), "Webhook-Signature": await signWebhook(secret, id, ts2, body) };
    assert.deepEqual(await send(retry, body), { status: 200, json: { type: "test.event", duplicate: true } });
    assert.deepEqual(await send(headers, body.replace("héllo", "hello")), { status: 400, json: { reason: "no_matching_signature" } });
    assert.deepEqual(await send({ "Webhook-Id": id }, body), { status: 400, json: { reason: "missing_headers" } });
    const stale = nowSeconds() - 600;
    const replay = { ...headers, "Webhook-Timestamp": String(stale), "Webhook-Signature": await signWebhook(secret, id, stale, body) };
    assert.deepEqual(await send(replay, body), { status: 400, json: { reason: "too_old" } });
  } finally {
    await new Promise((r) => server.close(r));
  }
});
