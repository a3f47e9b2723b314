// Key rotation (`sessiond keys rotate --now`, server restarted): a new kid costs one JWKS
// refetch (and no more within the cooldown), old tokens keep verifying.
import assert from "node:assert/strict";
import { generateKeyPairSync, sign } from "node:crypto";
import { test } from "node:test";

import { createVerifier } from "../dist/index.js";
import { call, newSession, newUser, outcome, startProxy, startServer, until } from "./harness.mjs";

const COOLDOWN_MS = 1500;
const JWKS = "/.well-known/jwks.json";

/** A token like `token` but naming `kid` (signed by a stranger: never valid). */
function withKid(token, kid) {
  const [h, p] = token.split(".");
  const header = { ...JSON.parse(Buffer.from(h, "base64url").toString()), kid };
  const input = `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${p}`;
  return `${input}.${sign(null, Buffer.from(input), generateKeyPairSync("ed25519").privateKey).toString("base64url")}`;
}

test("rotation through an unknown kid: one JWKS refetch, the cooldown respected, old tokens still good", async () => {
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  const proxy = await startProxy(server);
  // The stream is cut at once, so `keys_changed` cannot arrive: only the unknown kid can
  // make the verifier refetch. A long bound keeps it from going stale meanwhile.
  const verifier = await createVerifier({
    url: proxy.url,
    apiKey: server.verifierKey,
    issuer: "sessiond",
    audience: "sessiond",
    stalenessBoundMs: 120000,
    jwksCooldownMs: COOLDOWN_MS,
  });
  try {
    proxy.cutStream();
    const user = await newUser(server);
    assert.equal(await outcome(verifier, user.token), "OK");
    assert.equal(proxy.count(JWKS), 1);

    await server.rotateKeys();
    const fresh = await newSession(server, user.userId);
    const oldKid = JSON.parse(Buffer.from(user.token.split(".")[0], "base64url")).kid;
    const newKid = JSON.parse(Buffer.from(fresh.token.split(".")[0], "base64url")).kid;
    assert.notEqual(newKid, oldKid, "the rotation changed the signing key");

    // many concurrent checks of the new token: one refetch between them
    const answers = await Promise.all(Array.from({ length: 20 }, () => outcome(verifier, fresh.token)));
    assert.deepEqual(new Set(answers), new Set(["OK"]));
    assert.equal(proxy.count(JWKS), 2, "one JWKS refetch for the new kid");
    // made-up kids within the cooldown: refused, and no more fetches
    for (let i = 0; i < 10; i++) assert.equal(await outcome(verifier, withKid(fresh.token, `made-up-${i}`)), "TOKEN_INVALID");
    assert.equal(proxy.count(JWKS), 2, "the cooldown held");
    // after the cooldown, one more made-up kid may cost one fetch, no more
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 100));
    assert.equal(await outcome(verifier, withKid(fresh.token, "made-up-late")), "TOKEN_INVALID");
    assert.equal(await outcome(verifier, withKid(fresh.token, "made-up-later")), "TOKEN_INVALID");
    assert.equal(proxy.count(JWKS), 3);
    // the old key is still published, and its tokens still verify
    const jwks = (await call(server.url, "GET", JWKS)).body;
    assert.ok(jwks.keys.some((k) => k.kid === oldKid));
    assert.equal(await outcome(verifier, user.token), "OK");
    assert.equal(await outcome(verifier, fresh.token), "OK");
  } finally {
    await verifier.close();
    await proxy.close();
    await server.stop();
  }
});

test("rotation through the feed: keys_changed refetches the JWKS before any new token arrives", async () => {
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  const proxy = await startProxy(server);
  const verifier = await createVerifier({ url: proxy.url, apiKey: server.verifierKey, issuer: "sessiond", audience: "sessiond" });
  try {
    const user = await newUser(server);
    assert.equal(proxy.count(JWKS), 1);
    await server.rotateKeys();
    await until(() => proxy.count(JWKS) === 2, 15000, "the JWKS refetch after keys_changed");
    const fresh = await newSession(server, user.userId);
    assert.equal(await outcome(verifier, fresh.token), "OK");
    assert.equal(await outcome(verifier, user.token), "OK");
    assert.equal(proxy.count(JWKS), 2, "no refetch for the new kid: it was known already");
  } finally {
    await verifier.close();
    await proxy.close();
    await server.stop();
  }
});
