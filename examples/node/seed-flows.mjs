// The seed flows with @sessiond/client in Node: OTP login, refresh on expiry, restore at
// start-up, logout. Run it twice: the second run restores the stored session.
//
//   node examples/node/seed-flows.mjs you@example.com          # log in (or restore), use, refresh
//   node examples/node/seed-flows.mjs you@example.com --logout # … then log out
//
// SESSIOND_URL (default http://127.0.0.1:8420); SESSIOND_OUTBOX (default
// ./sessiond-data/outbox, where sessiond writes code mail when no SMTP server is set): the
// code is read from there, or asked for on the terminal. The session is kept in
// SESSION_FILE (default ./.sessiond-example-session.json, mode 0600).
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline/promises";
import { createClient, kvStore } from "../../clients/js/dist/index.js";

const base = process.env.SESSIOND_URL ?? "http://127.0.0.1:8420";
const outbox = process.env.SESSIOND_OUTBOX ?? "./sessiond-data/outbox";
const file = process.env.SESSION_FILE ?? "./.sessiond-example-session.json";
const emailAddress = process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "ann@example.com";
const say = (line) => console.log(line);

// A key-value file (AsyncStorage's shape): each write replaces the file by rename, atomically.
const fileKv = {
  read: () => (existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : {}),
  write(all) {
    writeFileSync(file + ".tmp", JSON.stringify(all), { mode: 0o600 });
    renameSync(file + ".tmp", file);
  },
  async getItem(k) {
    return this.read()[k] ?? null;
  },
  async setItem(k, v) {
    this.write({ ...this.read(), [k]: v });
  },
  async removeItem(k) {
    const all = this.read();
    delete all[k];
    this.write(all);
  },
};

const client = createClient({ baseUrl: base, storage: kvStore(fileKv), device: { label: "seed-flows.mjs" } });
let refreshes = 0;
client.on("refreshed", () => refreshes++);
client.on("sessionEnded", (e) => say(`session ended: ${e.reason}${e.revoked_reason ? ` (${e.revoked_reason})` : ""}`));

async function codeFor(address, since) {
  for (let i = 0; i < 20; i++) {
    if (existsSync(outbox)) {
      const mails = readdirSync(outbox)
        .map((f) => join(outbox, f))
        .filter((f) => statSync(f).mtimeMs >= since - 1000)
        .map((f) => readFileSync(f, "utf8").replace(/=\r?\n/g, ""))
        .filter((m) => m.toLowerCase().includes(address.toLowerCase()));
      const code = mails.at(-1)?.match(/\b(\d{6})\b/)?.[1];
      if (code) return code;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const code = await rl.question(`code mailed to ${address}: `);
  rl.close();
  return code.trim();
}

try {
  // 1. Restore at start-up.
  const restored = await client.restore();
  if (restored) {
    say(`restored session ${restored.sessionId} from ${file}`);
  } else {
    // 2. OTP login.
    const since = Date.now();
    const challenge = await client.sendOtp({ email: emailAddress });
    say(`a code was mailed to ${emailAddress} (challenge ${challenge.challenge_id}, valid ${challenge.expires_in} s)`);
    const grant = await client.verifyOtp({ challenge_id: challenge.challenge_id, code: await codeFor(emailAddress, since) });
    say(`logged in: session ${grant.session.id}, user ${grant.user?.id}, access token valid ${grant.expires_in} s`);
  }
  const me = await client.whoami();
  say(`whoami: ${me.user?.email ?? "anonymous"} on "${me.session.device.label ?? "?"}" (${me.session.auth_method})`);

  // 3. Refresh on expiry: with short tokens (SESSIOND_ACCESS_TOKEN_TTL=5s) wait past expiry
  //    and call again; the SDK refreshes first (or on a 401 TOKEN_EXPIRED, once).
  const left = client.state.accessExpiresAt - Date.now();
  if (left < 60000) {
    say(`waiting ${Math.ceil(left / 1000) + 1} s for the access token to expire…`);
    await new Promise((r) => setTimeout(r, left + 1000));
  }
  const data = await client.setSessionData({ runs: ((await client.getSessionData()).runs ?? 0) + 1 });
  say(`session data: ${JSON.stringify(data)}; refreshes so far: ${refreshes}`);
  const { sessions } = await client.listSessions();
  say(`${sessions.length} live session(s): ${sessions.map((s) => (s.current ? "*" : "") + (s.device.label ?? "?")).join(", ")}`);

  // 4. Logout.
  if (process.argv.includes("--logout")) {
    await client.logout();
    say("logged out; the stored session is gone");
  } else {
    say(`run again to restore the session, or with --logout`);
  }
} catch (e) {
  say(`failed: ${e.code ?? ""} ${e.message}`);
  process.exitCode = 1;
} finally {
  client.dispose(); // no timers left: the process exits by itself
}
