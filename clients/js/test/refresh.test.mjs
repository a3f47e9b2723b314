// getAccessToken(), the fetch wrapper and the axios interceptor against the real server
// (4 s access tokens: 2 s left too little margin on a loaded machine, where one
// refresh could take longer than the fresh token's margin) through the controllable proxy.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PASSWORD, api, email, nodeClient, sleep, startProxy, startServer, until } from "./harness.mjs";

let server;
let proxy;
before(async () => {
  server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "4s" });
  proxy = await startProxy(server.url);
});
after(async () => {
  await proxy?.close();
  await server?.stop();
});

async function loggedIn(options) {
  const c = await nodeClient(proxy.url, options);
  await c.client.register({ email: email(), password: PASSWORD });
  return c;
}

describe("single-flight refresh", () => {
  for (const n of [20, 100]) {
    test(`${n} concurrent callers with an expired token cause exactly one refresh`, async () => {
      const { client, events } = await loggedIn();
      await sleep(4100); // the access token has expired
      proxy.reset();
      const tokens = await Promise.all(Array.from({ length: n }, () => client.getAccessToken()));
      assert.equal(proxy.refreshes(), 1);
      assert.equal(new Set(tokens).size, 1);
      // and through the fetch wrapper, after the next expiry
      await sleep(4100);
      proxy.reset();
      const answers = await Promise.all(Array.from({ length: n }, () => client.fetch(proxy.url + "/v1/session")));
      assert.deepEqual(new Set(answers.map((r) => r.status)), new Set([200]));
      assert.equal(proxy.refreshes(), 1);
      assert.equal(proxy.unauthorized(), 0);
      assert.equal(events.sessionEnded.length, 0);
      client.dispose();
    });
  }

  test("a late 401 (token changed since the request was sent) is retried without a second refresh", async () => {
    const { client } = await loggedIn();
    const first = await client.getAccessToken();
    proxy.reset();
    // The whoami sent now with the first token reaches the server after that token expired.
    proxy.rule({ method: "GET", path: "/v1/session", delay: 4600, times: 1 });
    const late = client.whoami();
    await sleep(4200);
    const second = await client.getAccessToken(); // refreshes: the first token is stale locally
    assert.notEqual(second, first);
    const who = await late;
    assert.ok(who.session.id);
    assert.equal(proxy.count("GET", "/v1/session", 401), 1, "the late request was answered 401");
    assert.equal(proxy.count("GET", "/v1/session", 200), 1, "and retried once with the new token");
    assert.equal(proxy.refreshes(), 1, "without a second refresh");
    client.dispose();
  });

  test("a refresh whose response was lost is recovered within the grace window", async () => {
    const { client, events } = await loggedIn();
    await sleep(4100);
    proxy.reset();
    proxy.rule({ method: "POST", path: "/v1/token/refresh", dropResponse: true, times: 1 });
    const token = await client.getAccessToken();
    assert.ok(token);
    assert.equal(proxy.refreshes(), 2, "the lost refresh and its retry");
    assert.equal(proxy.successors.size, 1, "both answered with the same successor refresh token");
    assert.equal((await client.whoami()).session.id, client.state.sessionId);
    // the successor is the live token: the next rotation works
    await sleep(4100);
    await client.getAccessToken();
    assert.equal(proxy.refreshes(), 3);
    assert.equal(events.sessionEnded.length, 0);
    client.dispose();
  });
});

describe("401 handling", () => {
  test("the wrapper refreshes once and retries once on TOKEN_EXPIRED, never loops", async () => {
    const { client, events } = await loggedIn();
    proxy.reset();
    proxy.rule({
      method: "GET",
      path: "/v1/session",
      respond: { status: 401, body: { status: 401, code: "TOKEN_EXPIRED", detail: "forced" } },
    });
    const res = await client.fetch(proxy.url + "/v1/session");
    assert.equal(res.status, 401);
    assert.equal(proxy.count("GET", "/v1/session"), 2);
    assert.equal(proxy.refreshes(), 1);
    await assert.rejects(client.whoami(), { code: "TOKEN_EXPIRED" });
    assert.equal(proxy.count("GET", "/v1/session"), 4);
    assert.equal(proxy.refreshes(), 2);
    proxy.clearRules();
    assert.ok((await client.whoami()).session.id, "the session was kept");
    assert.equal(events.sessionEnded.length, 0);
    client.dispose();
  });

  test("the wrapper retries a Request with its body after one 401", async () => {
    const { client } = await loggedIn();
    proxy.reset();
    proxy.rule({
      method: "PUT",
      path: "/v1/session/data",
      times: 1,
      respond: { status: 401, body: { status: 401, code: "TOKEN_EXPIRED" } },
    });
    const req = new Request(proxy.url + "/v1/session/data", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ theme: "dark" }),
    });
    const res = await client.fetch(req);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { theme: "dark" });
    assert.equal(proxy.refreshes(), 1);
    assert.deepEqual(await client.getSessionData(), { theme: "dark" });
    client.dispose();
  });

  test("axios interceptor: token attached, one refresh and one retry on 401, then gives up", async () => {
    const { axiosInterceptor } = await import("../dist/index.js");
    const { client } = await loggedIn();
    const axios = miniAxios();
    const detach = axiosInterceptor(client, axios);
    proxy.reset();
    assert.equal((await axios.request({ url: proxy.url + "/v1/session" })).status, 200);
    proxy.rule({ method: "GET", path: "/v1/session", times: 1, respond: { status: 401, body: { code: "TOKEN_EXPIRED" } } });
    assert.equal((await axios.request({ url: proxy.url + "/v1/session" })).status, 200);
    assert.equal(proxy.refreshes(), 1);
    proxy.rule({ method: "GET", path: "/v1/session", respond: { status: 401, body: { code: "TOKEN_EXPIRED" } } });
    proxy.reset();
    await assert.rejects(axios.request({ url: proxy.url + "/v1/session" }), (e) => e.response.status === 401);
    assert.equal(proxy.count("GET", "/v1/session"), 2);
    proxy.clearRules();
    detach();
    client.dispose();
  });
});

describe("clocks and events", () => {
  for (const [label, offset] of [
    ["-1 h", -3600_000],
    ["+2 h", 7200_000],
  ]) {
    test(`a clock skew of ${label} gives no refresh loop and no 401`, async () => {
      const realNow = Date.now;
      Date.now = () => realNow() + offset;
      try {
        const { client, events } = await loggedIn({ autoRefresh: true });
        proxy.reset();
        const started = realNow();
        let calls = 0;
        while (realNow() - started < 5000) {
          await client.whoami();
          calls++;
          await sleep(100);
        }
        const refreshes = proxy.refreshes();
        // 5 s of 2 s tokens (1 s of sure life: whole-second exp) refreshed 1/4 before expiry:
        // about 6 rotations; a refresh loop would be one per call (~50).
        assert.ok(refreshes >= 2 && refreshes <= 10, `${refreshes} refreshes in 5 s (${calls} calls)`);
        assert.equal(proxy.unauthorized(), 0);
        assert.equal(events.sessionEnded.length, 0);
        client.dispose();
      } finally {
        Date.now = realNow;
      }
    });
  }

  test("listeners may call the SDK (no deadlock)", async () => {
    const { client } = await loggedIn();
    const seen = [];
    client.on("refreshed", async () => {
      seen.push("refreshed:" + (await client.getAccessToken()).length);
      seen.push("whoami:" + Boolean((await client.whoami()).session));
    });
    client.on("sessionEnded", async (e) => {
      await client.restore();
      await client.getAccessToken().catch((err) => seen.push("ended:" + err.code));
      seen.push("reason:" + e.reason);
    });
    await client.refresh();
    await until(() => seen.length >= 2, 5000, "the refreshed listener");
    await client.logout();
    await until(() => seen.length >= 4, 5000, "the sessionEnded listener");
    assert.deepEqual(seen.slice(1), ["whoami:true", "ended:NO_SESSION", "reason:LOGOUT"]);
    assert.match(seen[0], /^refreshed:\d+$/);
    client.dispose();
  });

  test("logout during a refresh never resurrects the session", async () => {
    const { client, events } = await loggedIn();
    const sid = client.state.sessionId;
    const before = client.tokens.refresh_token;
    let release;
    proxy.rule({ method: "POST", path: "/v1/token/refresh", times: 1, hold: new Promise((r) => (release = r)) });
    const refreshing = client.refresh().then(
      () => "resolved",
      (e) => e.code,
    );
    await until(() => proxy.count("POST", "/v1/token/refresh") > 0, 5000, "the refresh to go out");
    await client.logout();
    release();
    // the refresh reached the server after the logout (SESSION_REVOKED) or its answer was dropped
    assert.ok(["NO_SESSION", "SESSION_REVOKED"].includes(await refreshing));
    assert.equal(client.state, null);
    assert.equal(client.tokens, null);
    assert.equal(events.sessionEnded.length, 1);
    const v = await api(server.url, "POST", "/v1/token/validate", { body: { token: before } });
    assert.equal(v.body.valid, false);
    assert.equal(v.body.reason, "SESSION_REVOKED");
    await assert.rejects(client.whoami(), { code: "NO_SESSION" });
    await sleep(100);
    assert.equal(events.sessionEnded.length, 1);
    assert.deepEqual(
      events.sessionChanged.map((s) => s && s.sessionId),
      [sid, null],
    );
    client.dispose();
  });
});

/** The part of axios the interceptor uses, over fetch. */
function miniAxios() {
  const req = [];
  const res = [];
  const inst = {
    interceptors: {
      request: { use: (f) => req.push(f) - 1, eject: (i) => (req[i] = null) },
      response: { use: (_ok, f) => res.push(f) - 1, eject: (i) => (res[i] = null) },
    },
    async request(config) {
      for (const f of req) if (f) config = await f(config);
      const r = await fetch(config.url, { method: config.method ?? "GET", headers: config.headers });
      const data = await r.json().catch(() => null);
      if (r.status < 400) return { status: r.status, data };
      let error = Object.assign(new Error("status " + r.status), { config, response: { status: r.status, data } });
      for (const f of res) {
        if (!f) continue;
        try {
          return await f(error);
        } catch (e) {
          error = e;
        }
      }
      throw error;
    },
  };
  return inst;
}
