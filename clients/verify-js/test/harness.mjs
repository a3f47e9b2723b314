// Test harness: the real sessiond binary on a random port (restartable on the same port
// and data folder), a small HTTP proxy the tests can cut the revocation stream at, and
// helpers to make users, sessions and hostile tokens. No secret is ever printed.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function binary() {
  const bin = process.env.SESSIOND_BIN || "/tmp/sessiond-bin/sessiond";
  if (!existsSync(bin)) throw new Error(`no sessiond binary at ${bin}: build it or set SESSIOND_BIN`);
  return bin;
}

export const PASSWORD = "correct horse battery staple";
let emails = 0;
export const email = (tag = "u") => `${tag}-${process.pid}-${++emails}-${Date.now()}@example.com`;

/**
 * `sessiond serve` with a fresh data folder, an admin key and a verifier key. `restart()`
 * comes back on the same port and data folder, `rotateKeys()` rotates with `--now` in
 * between.
 */
export async function startServer(env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "sessiond-verify-js-"));
  const adminKey = randomBytes(32).toString("hex");
  const verifierKey = randomBytes(32).toString("hex");
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SESSIOND_") && k !== "RUST_LOG") childEnv[k] = v;
  Object.assign(childEnv, {
    SESSIOND_LOG_FORMAT: "json",
    SESSIOND_ADMIN_API_KEY: adminKey,
    SESSIOND_VERIFIER_API_KEYS: JSON.stringify([verifierKey]),
    SESSIOND_RATE_LIMITS__ENABLED: "false",
    SESSIOND_CLEANUP_INTERVAL: "0s",
    SESSIOND_PASSWORD_HASH_WORKERS: "1",
    ...env,
  });
  let child = null;
  let logs = "";
  let bind = "127.0.0.1:0";

  async function launch() {
    logs = "";
    child = spawn(binary(), ["--data-dir", dataDir, "serve", "--bind", bind], { env: childEnv, stdio: ["ignore", "pipe", "pipe"] });
    const proc = child;
    const addr = await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error("sessiond did not start in 20 s:\n" + logs)), 20000);
      const onData = (chunk) => {
        logs += chunk;
        for (const line of logs.split("\n")) {
          if (!line.includes("sessiond listening")) continue;
          try {
            const ev = JSON.parse(line);
            const a = ev.addr ?? ev.fields?.addr;
            if (a) {
              clearTimeout(timer);
              ok(a);
            }
          } catch {
            /* a partial line */
          }
        }
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onData);
      proc.once("exit", (code) => {
        clearTimeout(timer);
        fail(new Error(`sessiond exited (${code}):\n${logs}`));
      });
    });
    bind = addr;
  }

  async function halt() {
    if (child && child.exitCode === null && child.signalCode === null) {
      const proc = child;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
    }
    child = null;
  }

  await launch();
  const server = {
    get url() {
      return `http://${bind}`;
    },
    get port() {
      return Number(bind.split(":").pop());
    },
    dataDir,
    adminKey,
    verifierKey,
    logs: () => logs,
    async admin(method, path, body) {
      return call(server.url, method, path, { token: adminKey, body });
    },
    /** Stops the process, keeping its data folder and port for `start()`. */
    halt,
    /** Starts again on the same port and data folder. */
    start: launch,
    async restart() {
      await halt();
      await launch();
    },
    /** `sessiond keys rotate --now` while stopped, then up again. */
    async rotateKeys() {
      await halt();
      await promisify(execFile)(binary(), ["--data-dir", dataDir, "keys", "rotate", "--now"], { env: childEnv });
      await launch();
    },
    async stop() {
      await halt();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** A plain JSON call. */
export async function call(base, method, path, { token, body } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

/** A registered user and the token of its first session. */
export async function newUser(server) {
  const r = await call(server.url, "POST", "/v1/users", { body: { email: email(), password: PASSWORD } });
  if (r.status !== 201) throw new Error(`registration answered ${r.status}`);
  return { userId: r.body.user.id, token: r.body.access_token, sid: r.body.session.id };
}

/** One more session for the user, made by the admin API. */
export async function newSession(server, userId) {
  const r = await server.admin("POST", "/v1/admin/sessions", { user_id: userId });
  if (r.status !== 201) throw new Error(`admin session answered ${r.status}`);
  return { token: r.body.access_token, sid: r.body.session.id };
}

export async function logout(server, token) {
  const r = await call(server.url, "POST", "/v1/logout", { token });
  if (r.status !== 204) throw new Error(`logout answered ${r.status}`);
}

/** Waits until `check()` is truthy (polling), or fails after `ms`. */
export async function until(check, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The code `verify` refuses with, or "OK". */
export async function outcome(verifier, token) {
  try {
    await verifier.verify(token);
    return "OK";
  } catch (e) {
    if (!e.code) throw e;
    return e.code;
  }
}

/**
 * A proxy to the server (streaming, so the SSE feed passes through). `cutStream()` ends
 * the open revocation streams and refuses new ones until `restoreStream()`; `count(path)`
 * says how often a path was asked for.
 */
export async function startProxy(server) {
  const streams = new Set();
  const log = [];
  let streamCut = false;
  const proxy = http.createServer((req, res) => {
    const path = new URL(req.url, "http://proxy").pathname;
    log.push(path);
    if (streamCut && path === "/v1/revocations/stream") {
      res.writeHead(503).end();
      return;
    }
    const target = new URL(server.url);
    const out = http.request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
    if (path === "/v1/revocations/stream") {
      streams.add(res);
      res.on("close", () => {
        streams.delete(res);
        out.destroy();
      });
    }
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    count: (path) => log.filter((p) => p === path).length,
    cutStream() {
      streamCut = true;
      for (const s of streams) s.destroy();
    },
    restoreStream() {
      streamCut = false;
    },
    close() {
      proxy.closeAllConnections?.();
      return new Promise((r) => proxy.close(r));
    },
  };
}
