// The conformance driver as the Rust scenario runs it: a child process that prints
// `listening <port>`, answers /protected and /stats, and exits on SIGTERM.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

import { ROOT, logout, newUser, startServer, until } from "./harness.mjs";

function startDriver(env) {
  const child = spawn(process.execPath, [join(ROOT, "conformance/driver.mjs")], {
    cwd: join(ROOT, "..", ".."),
    env: { ...process.env, SESSIOND_ISSUER: "sessiond", SESSIOND_AUDIENCE: "sessiond", STALENESS_MS: "8000", JWKS_COOLDOWN_MS: "1000", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c) => (stdout += c));
  child.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

test("the driver: listening <port>, /protected, /stats, exit on SIGTERM", async () => {
  const server = await startServer({ SESSIOND_ACCESS_TOKEN_TTL: "10m" });
  const driver = startDriver({ SESSIOND_URL: server.url, SESSIOND_VERIFIER_KEY: server.verifierKey });
  try {
    const line = await until(() => driver.stdout().includes("\n") && driver.stdout(), 15000, "listening");
    assert.match(line, /^listening \d+\n$/);
    const base = `http://127.0.0.1:${line.trim().split(" ")[1]}`;
    const user = await newUser(server);
    const ok = await fetch(`${base}/protected`, { headers: { authorization: `Bearer ${user.token}` } });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get("content-type"), /^application\/json/);
    assert.deepEqual(await ok.json(), { sub: user.userId, sid: user.sid });
    const none = await fetch(`${base}/protected`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), "Bearer");
    assert.equal((await none.json()).code, "TOKEN_NOT_PROVIDED");
    await logout(server, user.token);
    const revoked = await until(async () => {
      const r = await fetch(`${base}/protected`, { headers: { authorization: `Bearer ${user.token}` } });
      return r.status === 401 ? r.json() : null;
    }, 1000, "the logout");
    assert.equal(revoked.code, "SESSION_REVOKED");
    assert.equal(revoked.revoked_reason, "logout");
    assert.deepEqual(await (await fetch(`${base}/stats`)).json(), { denied_sessions: 1, denied_users: 0 });
    driver.child.kill("SIGTERM");
    const { code } = await driver.exited;
    assert.equal(code, 0);
  } finally {
    driver.child.kill("SIGKILL");
    await server.stop();
  }
});

test("the driver exits non-zero with the reason when the verifier cannot start", async () => {
  const server = await startServer();
  const driver = startDriver({ SESSIOND_URL: server.url, SESSIOND_VERIFIER_KEY: "k".repeat(40) });
  try {
    const { code } = await driver.exited;
    assert.notEqual(code, 0);
    assert.match(driver.stderr(), /could not start/);
    assert.equal(driver.stdout(), "");
  } finally {
    await server.stop();
  }
});
