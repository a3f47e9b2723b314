// Every login method and session call of the API, through the SDK, against the real server;
// and the wire types against the server's /openapi.json.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { generate } from "../scripts/gen-types.mjs";
import { PASSWORD, ROOT, api, email, nodeClient, startServer } from "./harness.mjs";

let server;
let partner;
before(async () => {
  // A partner identity API for the exchange login: accepts the token "good-<id>".
  partner = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const token = JSON.parse(body).token;
      res.writeHead(200, { "content-type": "application/json" });
      const ok = token.startsWith("good-");
      res.end(JSON.stringify({ data: { valid: ok, user: ok ? { id: token.slice(5), name: "Partner User" } : null } }));
    });
  });
  await new Promise((r) => partner.listen(0, "127.0.0.1", r));
  const config = join(mkdtempSync(join(tmpdir(), "sessiond-js-cfg-")), "config.toml");
  writeFileSync(
    config,
    `[exchange.providers.partner]\nurl = "http://127.0.0.1:${partner.address().port}/user"\ntimeout = "5s"\n` +
      `body = '{"token": "{token}"}'\n[exchange.providers.partner.response]\nvalid = "/data/valid"\nuser_id = "/data/user/id"\nname = "/data/user/name"\n`,
  );
  server = await startServer({ SESSIOND_CONFIG: config });
});
after(async () => {
  await server?.stop();
  partner?.close();
});

describe("logins", () => {
  test("register, then password login on another client; whoami, data, device list, revoke", async () => {
    const address = email("pw");
    const a = await nodeClient(server.url, { device: { label: "laptop", device_id: "dev-a" } });
    const reg = await a.client.register({ email: address, password: PASSWORD, name: "Ann" });
    assert.equal(reg.session.auth_method, "pwd");
    assert.equal(reg.session.device.label, "laptop");
    assert.equal(a.events.sessionChanged.at(-1).sessionId, reg.session.id);
    const b = await nodeClient(server.url, { device: { label: "phone" } });
    const login = await b.client.loginWithPassword({ email: address, password: PASSWORD });
    assert.equal(login.user.id, reg.user.id);
    const c = await nodeClient(server.url);
    await c.client.loginWithPassword({ email: address, password: PASSWORD });

    const who = await a.client.whoami();
    assert.equal(who.session.id, reg.session.id);
    assert.equal(who.user.name, "Ann");
    assert.deepEqual(await a.client.setSessionData({ cart: [1, 2] }), { cart: [1, 2] });
    assert.deepEqual(await a.client.getSessionData(), { cart: [1, 2] });

    const list = (await a.client.listSessions()).sessions;
    assert.equal(list.length, 3);
    assert.equal(list.filter((s) => s.current).length, 1);
    assert.equal(list.find((s) => s.current).id, reg.session.id);

    await a.client.revokeSession(login.session.id);
    await assert.rejects(b.client.whoami(), { code: "SESSION_REVOKED" });
    assert.deepEqual(b.events.sessionEnded, [{ reason: "SESSION_REVOKED", revoked_reason: "revoked_by_user", sessionId: login.session.id }]);

    assert.deepEqual(await a.client.revokeOtherSessions(), { revoked: 1 });
    await assert.rejects(c.client.whoami(), { code: "SESSION_REVOKED" });
    assert.equal(c.events.sessionEnded[0].revoked_reason, "revoked_others");
    assert.equal((await a.client.listSessions()).sessions.length, 1);

    await assert.rejects(a.client.loginWithPassword({ email: address, password: "wrong password!" }), {
      status: 401,
      code: "INVALID_CREDENTIALS",
    });
    assert.equal(a.client.state.sessionId, reg.session.id, "a failed login keeps the session");
    for (const x of [a, b, c]) x.client.dispose();
  });

  test("OTP: send a code, verify it (the code from the server's outbox)", async () => {
    const address = email("otp");
    const { client, events } = await nodeClient(server.url);
    const challenge = await client.sendOtp({ email: address });
    assert.ok(challenge.challenge_id && challenge.expires_in > 0);
    await assert.rejects(client.verifyOtp({ challenge_id: challenge.challenge_id, code: "000000" === server.otpCode(address) ? "111111" : "000000" }), {
      code: "OTP_INVALID",
    });
    const grant = await client.verifyOtp({ challenge_id: challenge.challenge_id, code: server.otpCode(address) });
    assert.equal(grant.session.auth_method, "otp");
    assert.equal(client.state.userId, grant.user.id);
    assert.equal(events.sessionChanged.length, 1);
    client.dispose();
  });

  test("anonymous session, upgraded in place by a later login (same session id and data)", async () => {
    const { client, events } = await nodeClient(server.url);
    const state = await client.ensureSession();
    assert.equal(state.anonymous, true);
    assert.equal(state.userId, null);
    assert.equal((await client.ensureSession()).sessionId, state.sessionId, "ensureSession keeps a session");
    await client.setSessionData({ onboarding: "done" });
    const grant = await client.register({ email: email("anon"), password: PASSWORD });
    assert.equal(grant.session.id, state.sessionId);
    assert.equal(client.state.anonymous, false);
    assert.equal(client.state.authMethod, "pwd");
    assert.deepEqual(await client.getSessionData(), { onboarding: "done" });
    assert.deepEqual(
      events.sessionChanged.map((s) => [s.sessionId, s.authMethod]),
      [
        [state.sessionId, "anon"],
        [state.sessionId, "pwd"],
      ],
    );
    client.dispose();
  });

  test("exchange: a partner token for a session; a rejected one is UPSTREAM_REJECTED", async () => {
    const { client } = await nodeClient(server.url);
    await assert.rejects(client.exchange({ provider: "partner", token: "bad" }), { status: 401, code: "UPSTREAM_REJECTED" });
    assert.equal(client.state, null);
    const grant = await client.exchange({ provider: "partner", token: "good-ext-42" });
    assert.equal(grant.session.auth_method, "exchange:partner");
    assert.equal((await client.whoami()).user.name, "Partner User");
    client.dispose();
  });

  test("logout: local state gone at once, tokens dead on the server; also with an expired access token", async () => {
    for (const wait of [0, 2100]) {
      const { client, events } = await nodeClient(server.url);
      const grant = await client.register({ email: email("out"), password: PASSWORD });
      if (wait) await new Promise((r) => setTimeout(r, wait));
      await client.logout();
      assert.equal(client.state, null);
      assert.deepEqual(events.sessionEnded, [{ reason: "LOGOUT", revoked_reason: "logout", sessionId: grant.session.id }]);
      const v = await client.validate(grant.refresh_token);
      assert.equal(v.valid, false);
      assert.equal(v.revoked_reason, "logout");
      await client.logout(); // no session: nothing to do
      client.dispose();
    }
  });

  test("validate answers the server's verdict", async () => {
    const { client } = await nodeClient(server.url);
    const grant = await client.createAnonymousSession();
    const v = await client.validate(grant.access_token);
    assert.equal(v.valid, true);
    assert.equal(v.token_type, "access");
    assert.equal(v.session_id, grant.session.id);
    client.dispose();
  });
});

describe("wire types", () => {
  test("src/api.ts is what /openapi.json generates (npm run gen-types to update)", async () => {
    const openapi = (await api(server.url, "GET", "/openapi.json")).body;
    assert.equal(generate(openapi), readFileSync(join(ROOT, "src", "api.ts"), "utf8"));
  });

  test("every route the SDK calls is in /openapi.json with that method", async () => {
    const openapi = (await api(server.url, "GET", "/openapi.json")).body;
    const source = readFileSync(join(ROOT, "src", "client.ts"), "utf8");
    const calls = [...source.matchAll(/this\.(?:call|authed)(?:<[^>]*>)?\("(GET|POST|PUT|DELETE|PATCH)", "([^"?]+)/g)].map((m) => [
      m[1].toLowerCase(),
      m[2].replace(/\/$/, "/{id}"),
    ]);
    for (const m of source.matchAll(/this\.login\("([^"]+)"/g)) calls.push(["post", m[1]]);
    assert.ok(calls.length >= 15, `${calls.length} calls found`);
    for (const [method, path] of calls) assert.ok(openapi.paths[path]?.[method], `${method} ${path} in /openapi.json`);
  });
});
