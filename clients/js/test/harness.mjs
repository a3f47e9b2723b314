// Test harness: the real sessiond binary on a random port, and a small HTTP proxy in front
// of it that the tests control (faults, delays, counts). No secret is ever printed.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = resolve(ROOT, "..", "..");
export const PASSWORD = "correct horse battery staple";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function binary() {
  const bin = process.env.SESSIOND_BIN || join(REPO, "target", "debug", "sessiond");
  if (!existsSync(bin))
    throw new Error(`no sessiond binary at ${bin}: run through \`cargo test -p sessiond --test clients_js\` or set SESSIOND_BIN`);
  return bin;
}

/**
 * Starts `sessiond serve` on 127.0.0.1:0 with a fresh data folder and short lifetimes
 * (2 s access tokens), rate limits off unless `env` says otherwise.
 */
export async function startServer(env = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "sessiond-js-"));
  const adminKey = randomBytes(32).toString("hex");
  const childEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SESSIOND_") && k !== "RUST_LOG") childEnv[k] = v;
  Object.assign(childEnv, {
    SESSIOND_LOG_FORMAT: "json",
    SESSIOND_ADMIN_API_KEY: adminKey,
    SESSIOND_ACCESS_TOKEN_TTL: "2s",
    SESSIOND_RATE_LIMITS__ENABLED: "false",
    SESSIOND_CLEANUP_INTERVAL: "0s",
    SESSIOND_PASSWORD_HASH_WORKERS: "1",
    ...env,
  });
  const child = spawn(binary(), ["--data-dir", dataDir, "serve", "--bind", "127.0.0.1:0"], {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  const addr = await new Promise((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error("sessiond did not start in 20 s:\n" + logs)), 20000);
    const onData = (chunk) => {
      logs += chunk;
      for (const line of logs.split("\n")) {
        if (!line.includes("sessiond listening")) continue;
        try {
          const ev = JSON.parse(line);
          const a = ev.addr ?? ev.fields?.addr;
          if (a) {
            clearTimeout(timer);
            resolveAddr(a);
          }
        } catch {
          /* a partial line */
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`sessiond exited (${code}):\n${logs}`)));
  });
  const url = `http://${addr}`;
  return {
    url,
    dataDir,
    adminKey,
    logs: () => logs,
    /** The code in the newest outbox mail to `email`. */
    otpCode(email) {
      const dir = join(dataDir, "outbox");
      const mails = readdirSync(dir)
        .map((f) => readFileSync(join(dir, f), "utf8"))
        .filter((m) => m.toLowerCase().includes(email.toLowerCase()));
      const text = mails.at(-1)?.replace(/=\r?\n/g, "");
      const m = text && text.match(/\b(\d{6})\b/);
      if (!m) throw new Error("no code mailed to " + email);
      return m[1];
    },
    async admin(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A plain JSON call (no SDK), for setting up scenarios. */
export async function api(base, method, path, { token, body } = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

let emails = 0;
export const email = (tag = "u") => `${tag}-${process.pid}-${++emails}-${Date.now()}@example.com`;

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".map": "application/json" };
const API = /^\/(v1\/|openapi\.json|\.well-known\/|healthz|readyz|docs)/;

/**
 * An HTTP proxy to `target`. Rules (first match wins, `times` limits them):
 *   { method, path, times, delay }            wait, then forward
 *   { ..., hold: Promise }                     wait for the promise, then forward
 *   { ..., respond: {status, body, headers} }  answer without forwarding
 *   { ..., reset: true }                       close the connection, do not forward
 *   { ..., dropResponse: true }                forward, then close the connection unanswered
 * With `staticDir`, other GETs serve files from it (the browser tests' same-origin page).
 */
export async function startProxy(target, { staticDir } = {}) {
  const rules = [];
  const log = []; // { method, path, status }
  const successors = new Set(); // hashes of refresh tokens handed out by refreshes
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, "http://proxy");
    if (staticDir && req.method === "GET" && !API.test(url.pathname)) {
      const file = normalize(join(staticDir, decodeURIComponent(url.pathname)));
      if (!file.startsWith(staticDir) || !existsSync(file)) {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      res.end(readFileSync(file));
      return;
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const entry = { method: req.method, path: url.pathname, status: 0, at: Date.now() };
    log.push(entry);
    const i = rules.findIndex((r) => (!r.method || r.method === req.method) && (!r.path || r.path === url.pathname));
    const rule = i >= 0 ? rules[i] : null;
    if (rule && rule.times !== undefined && --rule.times <= 0) rules.splice(i, 1);
    if (rule?.delay) await sleep(rule.delay);
    if (rule?.hold) await rule.hold;
    if (rule?.reset) {
      entry.status = -1;
      req.socket.destroy();
      return;
    }
    if (rule?.respond) {
      const r = rule.respond;
      entry.status = r.status;
      const isProblem = r.status >= 400;
      res.writeHead(r.status, { "content-type": isProblem ? "application/problem+json" : "application/json", ...(r.headers ?? {}) });
      res.end(r.body === undefined ? "" : JSON.stringify(r.body));
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    let upstream;
    try {
      upstream = await new Promise((ok, fail) => {
        const u = new URL(target + req.url);
        const out = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers }, (r) => {
          const parts = [];
          r.on("data", (c) => parts.push(c));
          r.on("end", () => ok({ status: r.statusCode, headers: r.headers, body: Buffer.concat(parts) }));
          r.on("error", fail);
        });
        out.on("error", fail);
        out.end(body);
      });
    } catch {
      entry.status = 502;
      res.writeHead(502).end();
      return;
    }
    entry.status = upstream.status;
    if (req.method === "POST" && url.pathname === "/v1/token/refresh" && upstream.status === 200) {
      try {
        // In the body, or in cookie mode in the refresh cookie (`__Secure-sessiond_rt`).
        const cookie = [upstream.headers["set-cookie"] ?? []]
          .flat()
          .map((c) => c.match(/^__Secure-sessiond_rt=([^;]+)/)?.[1])
          .find(Boolean);
        const rt = cookie ?? JSON.parse(upstream.body.toString()).refresh_token;
        if (rt) successors.add(createHash("sha256").update(rt).digest("hex"));
      } catch {
        /* not JSON */
      }
    }
    if (rule?.dropResponse) {
      entry.dropped = true;
      req.socket.destroy();
      return;
    }
    const h = { ...upstream.headers };
    delete h["transfer-encoding"];
    delete h.connection;
    res.writeHead(upstream.status, h);
    res.end(upstream.body);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    log,
    rules,
    successors,
    rule(r) {
      rules.push(r);
      return r;
    },
    clearRules() {
      rules.length = 0;
    },
    count(method, path, status) {
      return log.filter((e) => e.method === method && e.path === path && (status === undefined || e.status === status)).length;
    },
    refreshes() {
      return log.filter((e) => e.method === "POST" && e.path === "/v1/token/refresh").length;
    },
    unauthorized() {
      return log.filter((e) => e.status === 401).length;
    },
    reset() {
      log.length = 0;
      successors.clear();
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(r));
    },
  };
}

/** A client on `base` for Node tests, recording its events. */
export async function nodeClient(base, options = {}) {
  const { createClient, memoryStore } = await import("../dist/index.js");
  const client = createClient({ baseUrl: base, storage: memoryStore(), autoRefresh: false, ...options });
  const events = { sessionEnded: [], sessionChanged: [], refreshed: [] };
  for (const type of Object.keys(events)) client.on(type, (e) => events[type].push(e));
  return { client, events };
}

/** Waits until `check()` is truthy (polling), or fails after `ms`. */
export async function until(check, ms = 10000, what = "condition") {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}
