// The verifier benchmark (clients/VERIFIER-CONFORMANCE.md, "The verifier benchmark"):
// memory of a verifier holding the seeded revocations, checks per second of one token with
// jose's jwtVerify ("bare") and with the verifier (with its signature cache, and again
// without: signatureCacheSize 0), and the latency from a revocation to its first refusal.
// One JSON line on stdout. Run by bench/verify.sh, or by hand with SESSIOND_URL,
// SESSIOND_ADMIN_KEY and SESSIOND_VERIFIER_KEY set.
import { randomBytes } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { createLocalJWKSet, jwtVerify } from "jose";

import { createVerifier } from "../dist/index.js";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const URL_ = env("SESSIOND_URL").replace(/\/+$/, "");
const ADMIN_KEY = env("SESSIOND_ADMIN_KEY");
const VERIFIER_KEY = env("SESSIOND_VERIFIER_KEY");
const SECONDS = Number(env("BENCH_SECONDS", "5"));
const REVOCATIONS = Number(env("BENCH_REVOCATIONS", "200"));
const ISSUER = env("SESSIOND_ISSUER", "sessiond");
const AUDIENCE = env("SESSIOND_AUDIENCE", ISSUER);

// A full collection before each heap reading, without needing `node --expose-gc`.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc");
function heapUsed() {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

async function call(method, path, body, key = ADMIN_KEY) {
  const res = await fetch(URL_ + path, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** As many awaited calls of `check` as fit in SECONDS; checks per second. */
async function throughput(check) {
  const until = performance.now() + SECONDS * 1000;
  let n = 0;
  let now;
  do {
    // batches of 256 between clock reads keep the clock out of the figure
    for (let i = 0; i < 256; i++) await check();
    n += 256;
    now = performance.now();
  } while (now < until);
  return n / ((now - until + SECONDS * 1000) / 1000);
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const round = (v, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

// 1. memory: the verifier and its snapshot of the seeded revocations (fetch warmed up
// first, so Node's HTTP client loading is not counted as the verifier's)
await (await fetch(`${URL_}/.well-known/jwks.json`)).text();
const heapBefore = heapUsed();
const verifier = await createVerifier({ url: URL_, apiKey: VERIFIER_KEY, issuer: ISSUER, audience: AUDIENCE });
const heapBytes = heapUsed() - heapBefore;
const rssBytes = process.memoryUsage().rss;
const deniedSessions = verifier.deniedCount().sessions;

// 2. one access token
const password = randomBytes(16).toString("hex");
const registered = await call("POST", "/v1/users", { email: `bench-${Date.now()}-${process.pid}@example.com`, password });
const userId = registered.user.id;
const { access_token: token } = await call("POST", "/v1/admin/sessions", { user_id: userId });

// 3. bare: jose with the same key, checking iss, aud, exp, typ (and the algorithm)
const jwks = createLocalJWKSet(await (await fetch(`${URL_}/.well-known/jwks.json`)).json());
const joseOptions = { issuer: ISSUER, audience: AUDIENCE, typ: "at+jwt", algorithms: ["EdDSA"], clockTolerance: 0 };
await jwtVerify(token, jwks, joseOptions);
const bare = await throughput(() => jwtVerify(token, jwks, joseOptions));

// 4. the verifier, the same token. With its default signature cache it checks this one
// token's signature once and then only its claims, expiry and the deny-set; a second
// verifier with `signatureCacheSize: 0` pays the Ed25519 check on every call, as the other
// libraries do (like for like with the bare figure). It is made after the heap reading and
// closed before the revocation runs.
await verifier.verify(token);
const verified = await throughput(() => verifier.verify(token));
const uncachedVerifier = await createVerifier({
  url: URL_,
  apiKey: VERIFIER_KEY,
  issuer: ISSUER,
  audience: AUDIENCE,
  signatureCacheSize: 0,
});
await uncachedVerifier.verify(token);
const verifiedUncached = await throughput(() => uncachedVerifier.verify(token));
await uncachedVerifier.close();

// 5. revocation latency
const latencies = [];
const tick = () => new Promise((r) => setTimeout(r, 1));
for (let i = 0; i < REVOCATIONS; i++) {
  const made = await call("POST", "/v1/admin/sessions", { user_id: userId });
  await verifier.verify(made.access_token);
  const started = performance.now();
  const revoking = call("DELETE", `/v1/admin/sessions/${made.session.id}`);
  let refusedAt = 0;
  while (refusedAt === 0) {
    try {
      await verifier.verify(made.access_token);
      await tick();
    } catch (e) {
      if (e.code !== "SESSION_REVOKED") throw e;
      refusedAt = performance.now();
    }
    if (performance.now() - started > 30000) throw new Error("a revocation was not refused within 30 s");
  }
  await revoking;
  latencies.push(refusedAt - started);
}
latencies.sort((a, b) => a - b);
await verifier.close();

console.log(
  JSON.stringify({
    language: "typescript",
    bare_per_s: Math.round(bare),
    verifier_per_s: Math.round(verified),
    ratio: round(verified / bare),
    // TypeScript only: the same with signatureCacheSize 0 (every call checks the signature)
    verifier_uncached_per_s: Math.round(verifiedUncached),
    ratio_uncached: round(verifiedUncached / bare),
    heap_bytes: heapBytes,
    rss_bytes: rssBytes,
    denied_sessions: deniedSessions,
    revocation_p50_ms: round(percentile(latencies, 50)),
    revocation_p99_ms: round(percentile(latencies, 99)),
    revocations: latencies.length,
  }),
);
