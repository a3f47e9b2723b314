// Each framework integration over real HTTP, against the real binary: the same answers
// (status, problem+json body, WWW-Authenticate) from Express, Fastify and Hono, through the
// synchronous path and the ones that wait (an unknown kid, introspection while stale).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { serve } from "@hono/node-server";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";

import { createVerifier, sessiondExpress, sessiondFastify, sessiondFastifyHook, sessiondHono } from "../dist/index.js";
import { logout, newSession, newUser, startProxy, startServer, until } from "./harness.mjs";

const BOUND_MS = 6000;

async function expressApp(verifier) {
  const app = express();
  app.get("/protected", sessiondExpress(verifier), (req, res) => res.json({ sid: req.sessiond.sid, sub: req.sessiond.sub ?? null }));
  app.get("/open", (_req, res) => res.json({ open: true }));
  const server = await new Promise((r) => {
    const s = app.listen(0, "127.0.0.1", () => r(s));
  });
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => (server.closeAllConnections(), new Promise((r) => server.close(r))) };
}

async function fastifyApp(verifier) {
  const app = Fastify();
  // the plugin on one scope, the hook alone on a route elsewhere: both protect
  await app.register(async (scope) => {
    await scope.register(sessiondFastify(verifier));
    scope.get("/protected", async (request) => ({ sid: request.sessiond.sid, sub: request.sessiond.sub ?? null }));
  });
  app.get("/hooked", { onRequest: sessiondFastifyHook(verifier) }, async (request) => ({ sid: request.sessiond.sid }));
  app.get("/open", async () => ({ open: true }));
  await app.listen({ port: 0, host: "127.0.0.1" });
  return { url: `http://127.0.0.1:${app.server.address().port}`, close: () => app.close() };
}

async function honoApp(verifier) {
  const app = new Hono();
  app.use("/protected", sessiondHono(verifier));
  app.get("/protected", (c) => c.json({ sid: c.get("sessiond").sid, sub: c.get("sessiond").sub ?? null }));
  app.get("/open", (c) => c.json({ open: true }));
  const server = await new Promise((r) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => r(s));
  });
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => (server.closeAllConnections?.(), new Promise((r) => server.close(r))) };
}

const FRAMEWORKS = { express: expressApp, fastify: fastifyApp, hono: honoApp };

async function get(url, token) {
  const res = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, type: res.headers.get("content-type"), wwwAuthenticate: res.headers.get("www-authenticate"), body: await res.json() };
}

function assertRefused(answer, status, code, what) {
  assert.equal(answer.status, status, what);
  assert.match(answer.type, /^application\/problem\+json/, what);
  assert.equal(answer.body.code, code, what);
  assert.equal(answer.body.status, status, what);
  assert.equal(answer.body.type, `urn:sessiond:problem:${code.toLowerCase()}`, what);
  assert.equal(typeof answer.body.title, "string", what);
  assert.equal(answer.wwwAuthenticate, status === 401 ? "Bearer" : null, what);
}

let server, proxy, fresh, stale, staleWithFallback;
const apps = {};
before(async () => {
  server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  proxy = await startProxy(server);
  const options = { apiKey: server.verifierKey, issuer: "sessiond", audience: "sessiond", stalenessBoundMs: BOUND_MS };
  fresh = await createVerifier({ ...options, url: server.url });
  stale = await createVerifier({ ...options, url: proxy.url });
  staleWithFallback = await createVerifier({ ...options, url: proxy.url, fallback: "introspect" });
  proxy.cutStream();
  for (const [name, make] of Object.entries(FRAMEWORKS))
    apps[name] = { fresh: await make(fresh), stale: await make(stale), fallback: await make(staleWithFallback) };
});
after(async () => {
  for (const set of Object.values(apps)) for (const app of Object.values(set)) await app.close();
  for (const v of [fresh, stale, staleWithFallback]) await v?.close();
  await proxy?.close();
  await server?.stop();
});

for (const name of Object.keys(FRAMEWORKS)) {
  test(`${name}: accepted, not provided, invalid, revoked`, async () => {
    const { url } = apps[name].fresh;
    const user = await newUser(server);
    const ok = await get(`${url}/protected`, user.token);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { sid: user.sid, sub: user.userId });
    assert.equal((await get(`${url}/open`)).status, 200, "an unprotected route stays open");

    assertRefused(await get(`${url}/protected`), 401, "TOKEN_NOT_PROVIDED", "no header");
    const basic = await fetch(`${url}/protected`, { headers: { authorization: "Basic dXNlcjpwYXNz" } });
    assert.equal(basic.status, 401, "another scheme");
    assert.equal((await basic.json()).code, "TOKEN_NOT_PROVIDED");
    assertRefused(await get(`${url}/protected`, "garbage"), 401, "TOKEN_INVALID", "garbage");

    const other = await newSession(server, user.userId);
    await logout(server, other.token);
    const revoked = await until(async () => {
      const a = await get(`${url}/protected`, other.token);
      return a.status === 401 ? a : null;
    }, 1000, "the logout");
    assertRefused(revoked, 401, "SESSION_REVOKED", "revoked");
    assert.equal(revoked.body.revoked_reason, "logout");
    if (name === "fastify") assert.equal((await get(`${url}/hooked`, user.token)).body.sid, user.sid);
  });
}

test("stale feed: 503 REVOCATION_FEED_STALE from every integration; with the fallback, introspection answers", async () => {
  const user = await newUser(server);
  const revoked = await newSession(server, user.userId);
  await logout(server, revoked.token);
  await until(() => stale.isStale() && staleWithFallback.isStale(), BOUND_MS + 6000, "stale");
  for (const name of Object.keys(FRAMEWORKS)) {
    const refused = await get(`${apps[name].stale.url}/protected`, user.token);
    assertRefused(refused, 503, "REVOCATION_FEED_STALE", `${name} stale`);
    const answered = await get(`${apps[name].fallback.url}/protected`, user.token);
    assert.equal(answered.status, 200, `${name} with the fallback`);
    assert.equal(answered.body.sid, user.sid);
    const introspectedRevoked = await get(`${apps[name].fallback.url}/protected`, revoked.token);
    assertRefused(introspectedRevoked, 401, "SESSION_REVOKED", `${name} revoked, by introspection`);
    assert.equal(introspectedRevoked.body.revoked_reason, "logout");
  }
});
