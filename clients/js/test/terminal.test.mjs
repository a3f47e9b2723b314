// Terminal codes end the session exactly once (storage cleared, one sessionEnded with the
// server's reason); transient failures never do.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PASSWORD, api, email, nodeClient, sleep, startProxy, startServer } from "./harness.mjs";

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

/** A logged-in client on `base` with an inspectable memory store. */
async function loggedIn(base, options = {}) {
  const storage = memoryStore();
  const c = await nodeClient(base, { storage, ...options });
  const grant = await c.client.register({ email: email(), password: PASSWORD });
  return { ...c, storage, grant };
}

/** 20 concurrent callers all fail with `code`; one event, storage empty, no session. */
async function expectEnded({ client, events, storage }, code, revokedReason, call = () => client.getAccessToken()) {
  const results = await Promise.allSettled(Array.from({ length: 20 }, call));
  for (const r of results) assert.equal(r.status, "rejected");
  assert.ok(
    results.some((r) => r.reason.code === code),
    `some caller saw ${code}: ${results.map((r) => r.reason.code)}`,
  );
  await sleep(100); // any stray event would arrive by now
  assert.equal(events.sessionEnded.length, 1, JSON.stringify(events.sessionEnded));
  assert.equal(events.sessionEnded[0].reason, code);
  assert.equal(events.sessionEnded[0].revoked_reason, revokedReason);
  assert.equal(await storage.load(), null, "storage cleared");
  assert.equal(client.state, null);
  await assert.rejects(client.getAccessToken(), { code: "NO_SESSION" });
  assert.equal(events.sessionEnded.length, 1);
  client.dispose();
}

describe("terminal codes from the real server", () => {
  test("SESSION_REVOKED (revoked from another device) on a request", async () => {
    const c = await loggedIn(proxy.url);
    const other = await api(server.url, "POST", "/v1/auth/password", {
      body: { email: c.grant.user.email, password: PASSWORD },
    });
    const del = await api(server.url, "DELETE", "/v1/sessions/" + c.grant.session.id, { token: other.body.access_token });
    assert.equal(del.status, 204);
    await expectEnded(c, "SESSION_REVOKED", "revoked_by_user", () => c.client.whoami());
  });

  test("SESSION_REVOKED (admin) on refresh", async () => {
    const c = await loggedIn(proxy.url);
    assert.equal((await server.admin("DELETE", "/v1/admin/sessions/" + c.grant.session.id)).status, 204);
    await sleep(2100);
    await expectEnded(c, "SESSION_REVOKED", "admin");
  });

  test("SESSION_REVOKED (user deactivated)", async () => {
    const c = await loggedIn(proxy.url);
    assert.equal((await server.admin("PATCH", "/v1/admin/users/" + c.grant.user.id, { active: false })).status, 200);
    await expectEnded(c, "SESSION_REVOKED", "user_deactivated", () => c.client.whoami());
  });

  test("REFRESH_TOKEN_REUSED (the stored token was rotated twice elsewhere)", async () => {
    const c = await loggedIn(proxy.url);
    const r2 = await api(server.url, "POST", "/v1/token/refresh", { body: { refresh_token: c.grant.refresh_token } });
    const r3 = await api(server.url, "POST", "/v1/token/refresh", { body: { refresh_token: r2.body.refresh_token } });
    assert.equal(r3.status, 200);
    await sleep(2100);
    // (the problem carries no revoked_reason; the session records refresh_token_reused)
    await expectEnded(c, "REFRESH_TOKEN_REUSED", undefined);
  });

  test("REFRESH_TOKEN_INVALID (a refresh token the server never issued)", async () => {
    const storage = memoryStore();
    const c = await nodeClient(proxy.url, { storage });
    await c.client.useRefreshToken("not-a-real-refresh-token-" + "x".repeat(30));
    await expectEnded({ ...c, storage }, "REFRESH_TOKEN_INVALID", undefined);
  });

  for (const [code, env, revoked] of [
    ["SESSION_INACTIVE", { SESSIOND_IDLE_TIMEOUT: "3s", SESSIOND_ACTIVITY_RESOLUTION: "1s" }, "idle_timeout"],
    ["SESSION_EXPIRED", { SESSIOND_ABSOLUTE_LIFETIME: "3s" }, "absolute_lifetime"],
    ["REFRESH_TOKEN_EXPIRED", { SESSIOND_REFRESH_TOKEN_TTL: "3s" }, undefined],
  ]) {
    test(`${code} (server with ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")})`, async () => {
      const s = await startServer(env);
      try {
        const c = await loggedIn(s.url);
        await sleep(3600);
        await expectEnded(c, code, revoked);
      } finally {
        await s.stop();
      }
    });
  }
});

describe("classification (answers injected by the proxy)", () => {
  for (const code of [
    "SESSION_REVOKED",
    "SESSION_EXPIRED",
    "SESSION_INACTIVE",
    "REFRESH_TOKEN_REUSED",
    "REFRESH_TOKEN_EXPIRED",
    "REFRESH_TOKEN_INVALID",
    "USER_INACTIVE",
  ]) {
    test(`${code} on refresh ends the session once, with its reason`, async () => {
      const c = await loggedIn(proxy.url);
      proxy.rule({
        method: "POST",
        path: "/v1/token/refresh",
        times: 1,
        respond: { status: 401, body: { status: 401, code, revoked_reason: "why-" + code } },
      });
      await sleep(2100);
      await expectEnded(c, code, "why-" + code);
    });
  }

  for (const [label, respond] of [
    ["429 RATE_LIMITED", { status: 429, body: { code: "RATE_LIMITED" }, headers: { "retry-after": "0" } }],
    ["500 INTERNAL_ERROR", { status: 500, body: { code: "INTERNAL_ERROR" } }],
    ["502 (no problem body)", { status: 502 }],
    ["503 STORAGE_UNAVAILABLE", { status: 503, body: { code: "STORAGE_UNAVAILABLE" } }],
    ["504", { status: 504 }],
  ]) {
    test(`${label} on refresh keeps the session`, async () => {
      const c = await loggedIn(proxy.url, { refreshWaitMs: 200 });
      proxy.rule({ method: "POST", path: "/v1/token/refresh", respond });
      await sleep(2100);
      const e = await c.client.getAccessToken().catch((err) => err);
      assert.equal(e.transient, true, `${e.code} is transient`);
      assert.equal(e.status, respond.status);
      proxy.clearRules();
      assert.equal(c.events.sessionEnded.length, 0);
      assert.ok(await c.storage.load(), "the session is still stored");
      assert.equal((await c.client.whoami()).session.id, c.grant.session.id, "and works once the server is back");
      c.client.dispose();
    });
  }
});
