// The verifier against the real binary: good tokens, revocations through the feed, the
// snapshot, expiry, the attack set and the deny-set's eviction.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { createVerifier, VerifyError } from "../dist/index.js";
import { attackTokens } from "./attacks.mjs";
import { call, logout, newSession, newUser, outcome, sleep, startServer, until } from "./harness.mjs";

let server;
let verifier;
before(async () => {
  // 3 s tokens: expiry and eviction are seen within the test.
  server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "3s" });
  verifier = await createVerifier({ url: server.url, apiKey: server.verifierKey, issuer: "sessiond", audience: "sessiond" });
});
after(async () => {
  await verifier?.close();
  await server?.stop();
});

test("a fresh token verifies, with its claims", async () => {
  const user = await newUser(server);
  const claims = await verifier.verify(user.token);
  assert.equal(claims.sid, user.sid);
  assert.equal(claims.sub, user.userId);
  assert.deepEqual([...claims.amr], ["pwd"]);
  assert.equal(typeof claims.jti, "string");
  assert.ok(claims.exp > claims.iat);
  // the synchronous path agrees, and a second check answers the same
  assert.equal(verifier.verifySync(user.token).sid, user.sid);
  assert.equal((await verifier.verify(user.token)).sid, user.sid);
});

test("a logout is refused with SESSION_REVOKED/logout within 1 s", async () => {
  const user = await newUser(server);
  assert.equal(await outcome(verifier, user.token), "OK");
  const started = Date.now();
  await logout(server, user.token);
  const error = await until(
    async () => {
      try {
        await verifier.verify(user.token);
        return null;
      } catch (e) {
        return e;
      }
    },
    1000,
    "the logout to reach the verifier",
  );
  assert.ok(error instanceof VerifyError);
  assert.equal(error.code, "SESSION_REVOKED");
  assert.equal(error.revokedReason, "logout");
  assert.equal(error.status, 401);
  console.log(`# logout refused after ${Date.now() - started} ms`);
});

test("deactivating a user refuses all its tokens with user_deactivated", async () => {
  const user = await newUser(server);
  const other = await newSession(server, user.userId);
  const bystander = await newUser(server);
  assert.equal(await outcome(verifier, other.token), "OK");
  const r = await server.admin("PATCH", `/v1/admin/users/${user.userId}`, { active: false });
  assert.equal(r.status, 200);
  for (const token of [user.token, other.token]) {
    await until(async () => (await outcome(verifier, token)) === "SESSION_REVOKED", 1000, "deactivation");
    await assert.rejects(verifier.verify(token), { code: "SESSION_REVOKED", revokedReason: "user_deactivated" });
  }
  assert.equal(await outcome(verifier, bystander.token), "OK");
  assert.ok(verifier.deniedCount().users >= 1);
});

test("a verifier started after the revocations learns them from the snapshot", async () => {
  const loggedOut = await newUser(server);
  await logout(server, loggedOut.token);
  const deactivated = await newUser(server);
  await server.admin("PATCH", `/v1/admin/users/${deactivated.userId}`, { active: false });
  const alive = await newUser(server);
  const late = await createVerifier({ url: server.url, apiKey: server.verifierKey, issuer: "sessiond", audience: "sessiond" });
  try {
    await assert.rejects(late.verify(loggedOut.token), { code: "SESSION_REVOKED", revokedReason: "logout" });
    await assert.rejects(late.verify(deactivated.token), { code: "SESSION_REVOKED", revokedReason: "user_deactivated" });
    assert.equal(await outcome(late, alive.token), "OK");
    assert.equal(late.stats().snapshots, 1);
  } finally {
    await late.close();
  }
});

test("the JWT attack set is TOKEN_INVALID", async () => {
  const user = await newUser(server);
  const jwks = (await call(server.url, "GET", "/.well-known/jwks.json")).body;
  const attacks = attackTokens(user.token, jwks);
  assert.ok(Object.keys(attacks).length >= 20);
  for (const [name, token] of Object.entries(attacks)) {
    assert.equal(await outcome(verifier, token), "TOKEN_INVALID", name);
    assert.throws(() => verifier.verifySync(token), { code: "TOKEN_INVALID" }, name);
  }
  // the original still passes: the attacks were refused for what they changed
  assert.equal(await outcome(verifier, user.token), "OK");
});

test("a token of another issuer or audience is TOKEN_INVALID", async () => {
  const user = await newUser(server);
  for (const [issuer, audience] of [
    ["other", "sessiond"],
    ["sessiond", "other"],
  ]) {
    const v = await createVerifier({ url: server.url, apiKey: server.verifierKey, issuer, audience });
    try {
      assert.equal(await outcome(v, user.token), "TOKEN_INVALID", `${issuer}/${audience}`);
    } finally {
      await v.close();
    }
  }
});

test("an expired token is TOKEN_EXPIRED, exactly at exp", async () => {
  const user = await newUser(server);
  const { exp } = await verifier.verify(user.token);
  await sleep(exp * 1000 - Date.now() + 50);
  await assert.rejects(verifier.verify(user.token), (e) => e.code === "TOKEN_EXPIRED" && e.status === 401 && e.expiredAt === exp);
});

test("revocations are forgotten after their max_exp", async () => {
  const user = await newUser(server);
  await logout(server, user.token);
  await until(async () => (await outcome(verifier, user.token)) === "SESSION_REVOKED", 1000, "the logout");
  assert.ok(verifier.deniedCount().sessions >= 1);
  // max_exp is 3 s after the logout; eviction runs on the 5 s heartbeat
  await until(() => verifier.deniedCount().sessions === 0, 15000, "the deny-set to empty");
  assert.equal(verifier.deniedCount().users, 0);
  // the token is dead by expiry now, not by the deny-set
  assert.equal(await outcome(verifier, user.token), "TOKEN_EXPIRED");
});

test("createVerifier refuses a wrong verifier key", async () => {
  await assert.rejects(
    createVerifier({ url: server.url, apiKey: "x".repeat(40), issuer: "sessiond", audience: "sessiond" }),
    (e) => e.name === "StartError" && e.status === 403,
  );
});
