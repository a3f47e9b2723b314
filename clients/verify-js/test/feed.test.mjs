// Following the feed through failures: the followed server stops (fail closed within the
// bound, then resume from the cursor without missing a revocation), a cursor the server can
// no longer continue (re-snapshot), and the introspection fallback.
import assert from "node:assert/strict";
import { cpSync, rmSync } from "node:fs";
import { test } from "node:test";

import { createVerifier } from "../dist/index.js";
import { logout, newSession, newUser, outcome, startProxy, startServer, until } from "./harness.mjs";

// Above sessiond's 5 s heartbeat, or a quiet feed would count as stale between beats.
const BOUND_MS = 6000;
const options = (server, extra = {}) => ({
  url: server.url,
  apiKey: server.verifierKey,
  issuer: "sessiond",
  audience: "sessiond",
  stalenessBoundMs: BOUND_MS,
  ...extra,
});

test("a stopped server: REVOCATION_FEED_STALE within the bound, then resume after a restart without missing a revocation", async () => {
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  const verifier = await createVerifier(options(server));
  try {
    const user = await newUser(server);
    const doomed = await newSession(server, user.userId);
    assert.equal(await outcome(verifier, user.token), "OK");
    const stoppedAt = Date.now();
    await server.halt();
    // still trusted inside the bound…
    assert.equal(await outcome(verifier, user.token), "OK");
    // …and refused, 503, once it passes (plus a heartbeat's slack)
    await until(async () => (await outcome(verifier, user.token)) === "REVOCATION_FEED_STALE", BOUND_MS + 6000, "stale");
    const staleAfter = Date.now() - stoppedAt;
    assert.ok(staleAfter >= BOUND_MS - 5000 - 100, `stale after ${staleAfter} ms`); // the last heartbeat may be up to 5 s old
    await assert.rejects(verifier.verify(user.token), { code: "REVOCATION_FEED_STALE", status: 503 });
    assert.throws(() => verifier.verifySync(doomed.token), { code: "REVOCATION_FEED_STALE" });
    // the signature is checked first, as in the Rust verifier: a forged token stays TOKEN_INVALID
    assert.equal(await outcome(verifier, "garbage"), "TOKEN_INVALID");

    await server.start();
    // revoked before the verifier has (likely) reconnected: it must come from the cursor
    const connections = verifier.stats().streamConnections;
    const r = await server.admin("DELETE", `/v1/admin/sessions/${doomed.sid}`);
    assert.equal(r.status, 204);
    await until(async () => (await outcome(verifier, doomed.token)) === "SESSION_REVOKED", 15000, "the revocation after the restart");
    assert.ok(verifier.stats().streamConnections > connections, "the stream reconnected");
    assert.equal(await outcome(verifier, user.token), "OK");
    assert.equal(verifier.stats().snapshots, 1, "resumed from its cursor, no new snapshot");
    console.log(`# stale after ${staleAfter} ms`);
  } finally {
    await verifier.close();
    await server.stop();
  }
});

test("a cursor the server can no longer continue (409 REVOCATION_CURSOR_EXPIRED): the verifier re-snapshots", async () => {
  // A restored backup: the server's feed is behind the verifier's cursor, which it never
  // handed out (the same answer as for a purged cursor).
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  const backup = `${server.dataDir}-backup`;
  const verifier = await createVerifier(options(server));
  try {
    const kept = await newUser(server);
    await logout(server, (await newSession(server, kept.userId)).token);
    await server.halt();
    cpSync(server.dataDir, backup, { recursive: true });
    await server.start();
    // facts written after the backup: the verifier's cursor moves past what it will hold
    const lost = await newUser(server);
    await logout(server, lost.token);
    await until(async () => (await outcome(verifier, lost.token)) === "SESSION_REVOKED", 10000, "the logout");
    await server.halt();
    rmSync(server.dataDir, { recursive: true, force: true });
    cpSync(backup, server.dataDir, { recursive: true });
    await server.start();

    await until(() => verifier.stats().snapshots === 2, 15000, "a second snapshot");
    // the restored world: the logout after the backup never happened there
    assert.equal(await outcome(verifier, lost.token), "OK");
    // and the verifier follows the restored feed from the snapshot's cursor
    const after = await newSession(server, kept.userId);
    assert.equal(await outcome(verifier, after.token), "OK");
    await logout(server, after.token);
    await until(async () => (await outcome(verifier, after.token)) === "SESSION_REVOKED", 5000, "a logout after the re-snapshot");
    assert.equal(await outcome(verifier, kept.token), "OK");
  } finally {
    await verifier.close();
    await server.stop();
    rmSync(backup, { recursive: true, force: true });
  }
});

test("a cursor whose facts were purged (409 REVOCATION_CURSOR_EXPIRED): the verifier re-snapshots", async () => {
  // 1 s tokens and a cleanup every second: facts are purged a minute after their max_exp,
  // while the verifier is cut off from the stream behind the proxy.
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "1s", SESSIOND_CLEANUP_INTERVAL: "1s" });
  const proxy = await startProxy(server);
  const verifier = await createVerifier(options(proxy, { apiKey: server.verifierKey, stalenessBoundMs: 120000 }));
  try {
    await until(() => verifier.stats().streamConnections === 1, 5000, "the stream");
    proxy.cutStream();
    const user = await newUser(server);
    await logout(server, user.token);
    const purged = await until(
      async () => (await fetch(`${server.url}/v1/revocations?after=0`, { headers: { authorization: `Bearer ${server.verifierKey}` } })).status === 409,
      90000,
      "the purge of the logout's fact",
    );
    assert.ok(purged);
    assert.equal(verifier.stats().snapshots, 1);
    proxy.restoreStream();
    await until(() => verifier.stats().snapshots === 2, 15000, "a re-snapshot");
    // and it follows the feed from there: the next logout's fact arrives (its 1 s token may
    // expire before a check could tell revoked from expired, so the deny-set is asked)
    assert.equal(verifier.deniedCount().sessions, 0, "the fresh snapshot holds nothing: its only fact was purged");
    const later = await newUser(server);
    await logout(server, later.token);
    await until(() => verifier.deniedCount().sessions === 1, 3000, "a logout after the re-snapshot");
  } finally {
    await verifier.close();
    await proxy.close();
    await server.stop();
  }
});

test("introspection fallback: a stale feed asks sessiond; sessiond down fails closed", async () => {
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  const proxy = await startProxy(server);
  const withFallback = await createVerifier(options(proxy, { apiKey: server.verifierKey, fallback: "introspect" }));
  const without = await createVerifier(options(proxy, { apiKey: server.verifierKey }));
  try {
    const user = await newUser(server);
    const loggedOut = await newSession(server, user.userId);
    assert.equal(await outcome(withFallback, user.token), "OK");
    assert.equal(withFallback.stats().introspections, 0, "no introspection while the feed is fresh");

    proxy.cutStream();
    await logout(server, loggedOut.token); // the feed can no longer tell anyone
    await until(() => withFallback.isStale() && without.isStale(), BOUND_MS + 6000, "stale");
    assert.equal(await outcome(without, user.token), "REVOCATION_FEED_STALE");
    assert.equal(await outcome(withFallback, user.token), "OK");
    await assert.rejects(withFallback.verify(loggedOut.token), { code: "SESSION_REVOKED", revokedReason: "logout" });
    assert.ok(proxy.count("/v1/introspect") >= 2);
    // synchronous checks never wait on the network: stale
    assert.throws(() => withFallback.verifySync(user.token), { code: "REVOCATION_FEED_STALE" });

    await server.halt();
    assert.equal(await outcome(withFallback, user.token), "REVOCATION_FEED_STALE");
  } finally {
    await withFallback.close();
    await without.close();
    await proxy.close();
    await server.stop();
  }
});
