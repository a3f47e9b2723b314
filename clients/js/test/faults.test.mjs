// Transient failures (5xx, 429 with Retry-After, network down, timeouts) keep the session
// and back off; the session carries on when the server is back.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { PASSWORD, email, nodeClient, sleep, startProxy, startServer, until } from "./harness.mjs";

const { memoryStore } = await import("../dist/index.js");

let server;
let proxy;
before(async () => {
  server = await startServer();
  proxy = await startProxy(server.url);
});
after(async () => {
  await proxy?.close();
  await server?.stop();
});

async function loggedIn(options = {}) {
  const storage = memoryStore();
  const c = await nodeClient(proxy.url, { storage, ...options });
  const grant = await c.client.register({ email: email(), password: PASSWORD });
  return { ...c, storage, grant };
}

const refreshTimes = () => proxy.log.filter((e) => e.path === "/v1/token/refresh").map((e) => e.at);

test("503 on refresh three times: retried with back-off, then refreshed; session kept", async () => {
  const c = await loggedIn();
  await sleep(2100);
  proxy.reset();
  proxy.rule({ method: "POST", path: "/v1/token/refresh", times: 3, respond: { status: 503, body: { code: "STORAGE_UNAVAILABLE" } } });
  const token = await c.client.getAccessToken();
  assert.ok(token);
  assert.equal(proxy.refreshes(), 4);
  const t = refreshTimes();
  // exponential back-off: each wait at least half of 0.5 s, 1 s, 2 s (full jitter above half)
  for (const [i, min] of [250, 500, 1000].entries()) assert.ok(t[i + 1] - t[i] >= min - 20, `gap ${i}: ${t[i + 1] - t[i]} ms`);
  assert.equal(c.events.sessionEnded.length, 0);
  c.client.dispose();
});

test("429 on refresh honours Retry-After", async () => {
  const c = await loggedIn();
  await sleep(2100);
  proxy.reset();
  proxy.rule({
    method: "POST",
    path: "/v1/token/refresh",
    times: 2,
    respond: { status: 429, body: { code: "RATE_LIMITED", retry_after: 1 }, headers: { "retry-after": "1" } },
  });
  await c.client.getAccessToken();
  const t = refreshTimes();
  assert.equal(t.length, 3);
  assert.ok(t[1] - t[0] >= 980 && t[2] - t[1] >= 980, `gaps ${t[1] - t[0]}, ${t[2] - t[1]} ms`);
  assert.equal(c.events.sessionEnded.length, 0);
  c.client.dispose();
});

test("network down for 4 s: the session is kept, attempts are spaced, it carries on after", async () => {
  const c = await loggedIn({ autoRefresh: true, refreshWaitMs: 1000 });
  proxy.reset();
  proxy.rule({ reset: true }); // every request: connection closed
  const started = Date.now();
  const seen = [];
  while (Date.now() - started < 4000) {
    seen.push(await c.client.whoami().then(() => "ok", (e) => (e.transient ? "transient" : e.code)));
    await sleep(200);
  }
  const attempts = proxy.refreshes();
  proxy.clearRules();
  assert.ok(seen.includes("transient"), "callers saw transient errors");
  assert.ok(!seen.some((s) => s !== "ok" && s !== "transient"), seen.join(","));
  // 4 s of back-off from 0.5 s doubling: a handful of attempts, not one per call (~20)
  assert.ok(attempts >= 2 && attempts <= 8, `${attempts} refresh attempts`);
  assert.equal(c.events.sessionEnded.length, 0);
  assert.ok(await c.storage.load());
  await until(async () => (await c.client.whoami().catch(() => null))?.session, 15000, "the session back");
  c.client.dispose();
});

test("a refresh that times out is transient; the late rotation is picked up within grace", async () => {
  const first = await loggedIn();
  // A second client on the same session with a short request timeout.
  const c = await nodeClient(proxy.url, { timeoutMs: 1000, refreshWaitMs: 100 });
  await c.client.useRefreshToken(first.client.tokens.refresh_token);
  first.client.dispose();
  proxy.rule({ method: "POST", path: "/v1/token/refresh", times: 1, delay: 2500 });
  const e = await c.client.getAccessToken().catch((err) => err);
  assert.equal(e.code, "TIMEOUT");
  assert.equal(e.transient, true);
  await sleep(2000); // the delayed refresh reaches the server and rotates the token
  assert.ok(await c.client.getAccessToken(), "the same refresh token still works (grace window)");
  assert.equal(c.events.sessionEnded.length, 0);
  c.client.dispose();
});

test("a 500 on an API call is the caller's error; no refresh, session kept", async () => {
  const c = await loggedIn();
  proxy.reset();
  proxy.rule({ method: "GET", path: "/v1/sessions", times: 1, respond: { status: 500, body: { code: "INTERNAL_ERROR" } } });
  await assert.rejects(c.client.listSessions(), { status: 500, code: "INTERNAL_ERROR" });
  assert.equal(proxy.refreshes(), 0);
  assert.equal((await c.client.listSessions()).sessions.length, 1);
  assert.equal(c.events.sessionEnded.length, 0);
  c.client.dispose();
});
