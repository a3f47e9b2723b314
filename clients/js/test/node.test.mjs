// Node as a platform: dispose() lets a process exit, a process frozen past its token's
// expiry (SIGSTOP, as a laptop or phone asleep) sends no expired token when it wakes, and
// SSR renders refreshing the same token concurrently both succeed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PASSWORD, ROOT, api, email, nodeClient, sleep, startProxy, startServer, until } from "./harness.mjs";

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

const SDK = JSON.stringify(join(ROOT, "dist", "index.js"));

/** Runs a Node child with `code` (an ES module), BASE and EMAIL set. */
function child(code) {
  const p = spawn(process.execPath, ["--input-type=module", "-e", code], {
    env: { ...process.env, BASE: proxy.url, EMAIL: email("child"), PASSWORD },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  p.stdout.on("data", (c) => (out += c));
  p.stderr.on("data", (c) => (out += c));
  const exited = new Promise((r) => p.on("exit", (code, signal) => r({ code, signal })));
  return { p, exited, out: () => out };
}

const running = (program) => `
  import { createClient } from ${SDK};
  const client = createClient({ baseUrl: process.env.BASE });
  await client.register({ email: process.env.EMAIL, password: process.env.PASSWORD });
  await client.whoami();
  await new Promise((r) => setTimeout(r, 1600)); // a proactive refresh is due in this window
  await client.whoami();
  ${program}
  console.log("done");
`;

test("dispose() leaves no timer or handle: the process exits by itself", async () => {
  // Control: without dispose() the refresh timer keeps the process alive (the check can fail).
  const kept = child(running(""));
  await until(() => kept.out().includes("done"), 15000, "the control child");
  const stillRunning = await Promise.race([kept.exited.then(() => false), sleep(3000).then(() => true)]);
  kept.p.kill("SIGKILL");
  assert.equal(stillRunning, true, "without dispose() the process stays alive: " + kept.out());
  const disposed = child(running("client.dispose();"));
  const status = await Promise.race([disposed.exited, sleep(15000).then(() => "hung")]);
  if (status === "hung") disposed.p.kill("SIGKILL");
  assert.deepEqual(status, { code: 0, signal: null }, disposed.out());
  assert.match(disposed.out(), /done/);
});

test("a refresh timer that fires early (the event loop's cached clock) is armed again", async () => {
  proxy.reset();
  // Every timer fires 150 ms early (more than the refresh jitter), as libuv's loop time lagging Date.now() does by a few ms
  // under load: the first proactive refresh wakes up before the token is due.
  const app = child(`
    const realSetTimeout = globalThis.setTimeout;
    globalThis.setTimeout = (fn, ms = 0, ...args) => realSetTimeout(fn, Math.max(0, ms - 150), ...args);
    const { createClient } = await import(${SDK});
    const client = createClient({ baseUrl: process.env.BASE });
    await client.register({ email: process.env.EMAIL, password: process.env.PASSWORD });
    const first = client.tokens.refresh_token;
    await new Promise((r) => realSetTimeout(r, 4500)); // two access-token lifetimes (2 s)
    console.log(JSON.stringify({ rotated: client.tokens.refresh_token !== first }));
    client.dispose();
  `);
  const status = await Promise.race([app.exited, sleep(20000).then(() => "hung")]);
  if (status === "hung") app.p.kill("SIGKILL");
  assert.deepEqual(status, { code: 0, signal: null }, app.out());
  assert.deepEqual(JSON.parse(app.out().trim().split("\n").at(-1)), { rotated: true });
  assert.ok(proxy.refreshes() >= 2, `proactive refreshes kept going: ${proxy.refreshes()}`);
});

test("a process frozen past expiry (SIGSTOP 3 s) sends no expired token on wake-up", async () => {
  proxy.reset();
  const app = child(`
    import { createClient } from ${SDK};
    const client = createClient({ baseUrl: process.env.BASE });
    await client.register({ email: process.env.EMAIL, password: process.env.PASSWORD });
    let ok = 0, failed = 0, stop = false;
    process.on("SIGUSR2", () => (stop = true));
    console.log("ready");
    while (!stop) {
      const r = await client.fetch(process.env.BASE + "/v1/session");
      r.status === 200 ? ok++ : failed++;
      await new Promise((r) => setTimeout(r, 50));
    }
    client.dispose();
    console.log(JSON.stringify({ ok, failed }));
  `);
  await until(() => app.out().includes("ready"), 15000, "the app");
  await sleep(800);
  app.p.kill("SIGSTOP");
  await sleep(3000); // the access token (2 s) expires while the process is frozen
  app.p.kill("SIGCONT");
  await sleep(1500);
  app.p.kill("SIGUSR2");
  await app.exited;
  const stats = JSON.parse(app.out().trim().split("\n").at(-1));
  assert.equal(stats.failed, 0, app.out());
  assert.ok(stats.ok > 10, app.out());
  assert.equal(proxy.unauthorized(), 0, "no request went out with an expired token");
  assert.ok(proxy.refreshes() >= 2);
});

test("SSR: two concurrent renders refreshing the same (cookie) refresh token both succeed", async () => {
  const grant = (await api(server.url, "POST", "/v1/users", { body: { email: email("ssr"), password: PASSWORD } })).body;
  const render = async () => {
    const { client } = await nodeClient(proxy.url); // one client per request, memory storage
    await client.useRefreshToken(grant.refresh_token);
    const who = await client.whoami();
    const tokens = client.tokens;
    client.dispose();
    return { sid: who.session.id, refresh: tokens.refresh_token };
  };
  proxy.reset();
  const [a, b] = await Promise.all([render(), render()]);
  assert.equal(a.sid, grant.session.id);
  assert.equal(b.sid, grant.session.id);
  assert.equal(a.refresh, b.refresh, "both got the same successor (the cookie to set)");
  assert.equal(proxy.refreshes(), 2);
  const next = await (async () => {
    const { client } = await nodeClient(proxy.url);
    await client.useRefreshToken(a.refresh);
    const who = await client.whoami();
    client.dispose();
    return who;
  })();
  assert.equal(next.session.id, grant.session.id, "the next request's render works with the new cookie");
});

test("the CommonJS build works with require()", async () => {
  const app = spawn(
    process.execPath,
    [
      "-e",
      `const { createClient, SessiondError } = require(${JSON.stringify(join(ROOT, "dist", "index.cjs"))});
       (async () => {
         const client = createClient({ baseUrl: process.env.BASE });
         await client.register({ email: process.env.EMAIL, password: process.env.PASSWORD });
         const who = await client.whoami();
         const err = await client.loginWithPassword({ email: process.env.EMAIL, password: "wrong password" }).catch((e) => e);
         client.dispose();
         console.log(JSON.stringify({ sid: who.session.id === client.state.sessionId, error: err instanceof SessiondError && err.code }));
       })();`,
    ],
    { env: { ...process.env, BASE: proxy.url, EMAIL: email("cjs"), PASSWORD }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  app.stdout.on("data", (c) => (out += c));
  const code = await new Promise((r) => app.on("exit", r));
  assert.equal(code, 0);
  assert.deepEqual(JSON.parse(out), { sid: true, error: "INVALID_CREDENTIALS" });
});
