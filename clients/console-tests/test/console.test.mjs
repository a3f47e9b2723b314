// The admin console in real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core) against the real sessiond binary: sign in, find and open a user, end a
// session (and see through the API that its token is refused at once), deactivate, rotate
// a key, erase; a wrong key, a forged CSRF token and script payloads; labels, keyboard and
// a narrow screen. A screenshot of every page goes to target/console-screenshots/.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = resolve(ROOT, "..", "..");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const SHOTS = process.env.CONSOLE_SCREENSHOTS || join(REPO, "target", "console-screenshots");
const PASSWORD = "correct horse battery staple";
const XSS = `<img src=x onerror=alert(1)>`;
const ci = process.env.CI && process.env.CI !== "false" && process.env.CI !== "0";
const missing = !existsSync(CHROMIUM);
if (missing && ci) throw new Error(`${CHROMIUM} is missing under CI (clients/js/scripts/setup-browser.sh installs it)`);
if (missing) console.log(`# console browser tests skipped: ${CHROMIUM} is missing (setup-browser.sh installs it as root)`);

/** `sessiond serve` on 127.0.0.1:0 with a fresh data folder; resolves once it listens. */
async function startServer() {
  const bin = process.env.SESSIOND_BIN || join(REPO, "target", "debug", "sessiond");
  if (!existsSync(bin)) throw new Error(`no sessiond binary at ${bin}: set SESSIOND_BIN`);
  const dataDir = mkdtempSync(join(tmpdir(), "sessiond-console-"));
  const adminKey = randomBytes(32).toString("hex");
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SESSIOND_") && k !== "RUST_LOG") env[k] = v;
  Object.assign(env, {
    SESSIOND_LOG_FORMAT: "json",
    SESSIOND_ADMIN_API_KEY: adminKey,
    SESSIOND_CLEANUP_INTERVAL: "0s",
    SESSIOND_PASSWORD_HASH_WORKERS: "1",
  });
  const child = spawn(bin, ["--data-dir", dataDir, "serve", "--bind", "127.0.0.1:0"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  const addr = await new Promise((done, fail) => {
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
            done(a);
          }
        } catch {
          /* a partial line */
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => fail(new Error(`sessiond exited (${code}):\n${logs}`)));
  });
  return {
    url: `http://${addr}`,
    adminKey,
    logs: () => logs,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe("admin console in Chromium", { skip: missing }, () => {
  let server;
  let browser;
  let context;
  let page;
  const alerts = [];
  const errors = [];
  const api = async (method, path, { bearer, body } = {}) => {
    const headers = {};
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (body) headers["content-type"] = "application/json";
    const res = await fetch(server.url + path, { method, headers, body: body && JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const admin = (method, path, body) => api(method, path, { bearer: server.adminKey, body });
  const shot = async (name) => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Every form control has a label, every button and link a name (screen readers). */
  const assertLabelled = async () => {
    const unlabelled = await page.evaluate(() => {
      const bad = [];
      for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
        if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label")) bad.push(el.outerHTML);
      }
      for (const el of document.querySelectorAll("a[href], button")) {
        const name = (el.getAttribute("aria-label") || el.textContent || "").trim();
        if (!name) bad.push(el.outerHTML);
        if (el.tabIndex < 0) bad.push(`not focusable: ${el.outerHTML}`);
      }
      return bad;
    });
    assert.deepEqual(unlabelled, [], `unlabelled controls on ${page.url()}`);
  };

  let alice;
  let aliceEmail;
  let phone;
  let laptop;
  let xss;

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    server = await startServer();
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("dialog", async (dialog) => {
      // Confirmations of destructive actions are accepted; an alert can only be a payload.
      if (dialog.type() === "confirm") return dialog.accept();
      alerts.push(dialog.message());
      return dialog.dismiss();
    });
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    // A CSP violation (an inline script or style) is reported as a console error.
    page.on("console", (m) => m.type() === "error" && !m.text().includes("401") && !m.text().includes("403") && !m.text().includes("422") && !m.text().includes("404") && errors.push(m.text()));

    aliceEmail = `alice-${randomBytes(4).toString("hex")}@example.com`;
    const reg = await api("POST", "/v1/users", {
      body: { email: aliceEmail, password: PASSWORD, name: "Alice Liddell", device: { label: "Alice laptop" } },
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    laptop = reg.body;
    alice = reg.body.user.id;
    const second = await api("POST", "/v1/auth/password", {
      body: { email: aliceEmail, password: PASSWORD, device: { label: "Alice phone" } },
    });
    assert.equal(second.status, 200);
    phone = second.body;
    for (const name of ["Bob Builder", "Carol Danvers", "Dave Grohl"]) {
      const r = await api("POST", "/v1/users", {
        body: { email: `${name.split(" ")[0].toLowerCase()}-${randomBytes(3).toString("hex")}@example.com`, password: PASSWORD, name },
      });
      assert.equal(r.status, 201);
    }
    const x = await api("POST", "/v1/users", {
      body: { email: `xss-${randomBytes(3).toString("hex")}@example.com`, password: PASSWORD, name: XSS, device: { label: XSS } },
    });
    assert.equal(x.status, 201, JSON.stringify(x.body));
    xss = x.body.user.id;
    await api("POST", "/v1/auth/password", { body: { email: aliceEmail, password: "wrong password here" } });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("no console page without signing in; a wrong key is refused", async () => {
    await page.goto(`${server.url}/admin/users`);
    assert.match(page.url(), /\/admin\/sign-in$/);
    await assertLabelled();
    await shot("01-sign-in");
    await page.fill("#key", "not-the-admin-key");
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    assert.equal(await page.locator("#sign-in-error").textContent(), "That is not the admin key.");
    await shot("02-sign-in-refused");
    // Empty is refused by the browser (required); a script payload or a huge value by the server.
    for (const bad of [XSS, "k".repeat(5000)]) {
      await page.fill("#key", bad);
      await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
      assert.equal(await page.locator("#sign-in-error").textContent(), "That is not the admin key.");
    }
    assert.equal((await context.cookies()).length, 0);
  });

  test("sign in: an HttpOnly, SameSite=Strict cookie, never the key", async () => {
    await page.goto(`${server.url}/admin/sign-in`);
    // The key field is focused first: sign-in works from the keyboard alone.
    await page.waitForFunction(() => document.activeElement?.id === "key");
    await page.keyboard.type(server.adminKey);
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    assert.match(page.url(), /\/admin$/);
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0].name, "__Host-sessiond_console");
    assert.equal(cookies[0].httpOnly, true);
    assert.equal(cookies[0].sameSite, "Strict");
    assert.ok(!cookies[0].value.includes(server.adminKey));
    assert.equal(await page.evaluate(() => document.cookie), "");
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes(server.adminKey));
    assert.ok(!(await page.content()).includes(server.adminKey));
    await page.locator("svg.bars").first().waitFor();
    await assertLabelled();
    await shot("03-overview");
    // Keyboard: the first Tab reaches the skip link.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
  });

  test("search a user, open them, end a session: its token is refused at once", async () => {
    await page.click("nav >> text=Users");
    await shot("04-users");
    await page.fill("#q", "alice");
    await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
    await assertLabelled();
    const link = page.locator(`a[href="/admin/users/${alice}"]`);
    assert.equal(await link.textContent(), aliceEmail);
    await shot("05-users-search");
    await Promise.all([page.waitForNavigation(), link.click()]);
    const liveRows = () => page.locator('section[aria-labelledby="sessions"] table tbody tr').count();
    const endedRows = () => page.locator('section[aria-labelledby="ended"] table tbody tr').count();
    assert.equal(await liveRows(), 2);
    assert.equal(await endedRows(), 0);
    await assertLabelled();
    await shot("06-user");

    const sid = laptop.session.id;
    await Promise.all([page.waitForNavigation(), page.click(`form[action="/admin/sessions/${sid}/end"] button`)]);
    assert.equal(await page.locator(".notice").textContent(), "The session was ended.");
    const refused = await api("GET", "/v1/session", { bearer: laptop.access_token });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.code, "SESSION_REVOKED");
    assert.equal(refused.body.revoked_reason, "admin");
    assert.equal((await api("GET", "/v1/session", { bearer: phone.access_token })).status, 200);
    assert.equal(await liveRows(), 1);
    // The ended one is listed with why and by whom.
    assert.equal(await endedRows(), 1);
    const ended = await page.locator('section[aria-labelledby="ended"] table tbody tr').textContent();
    assert.match(ended, /admin/);

    await page.goto(`${server.url}/admin/sessions/${sid}`);
    const facts = await page.locator("dl.facts").textContent();
    assert.match(facts, /Reasonadmin/);
    assert.match(facts, /Initiatoradmin/);
    assert.match(await page.locator("ol.timeline").textContent(), /session\.ended/);
    await assertLabelled();
    await shot("07-session");
  });

  test("deactivate: every session ends; events tell why", async () => {
    await page.goto(`${server.url}/admin/users/${alice}`);
    await Promise.all([page.waitForNavigation(), page.click(`form[action="/admin/users/${alice}/deactivate"] button`)]);
    assert.match(await page.locator(".notice").textContent(), /deactivated/);
    const refused = await api("GET", "/v1/session", { bearer: phone.access_token });
    assert.equal(refused.status, 401);
    assert.equal((await admin("GET", `/v1/admin/users/${alice}`)).body.active, false);
    await shot("08-user-deactivated");
    await page.goto(`${server.url}/admin/events?user_id=${alice}`);
    const types = await page.locator("tbody td:nth-child(3)").allTextContents();
    for (const t of ["user.created", "session.created", "login.failed", "session.ended", "user.deactivated"]) {
      assert.ok(types.includes(t), `${t} in ${types}`);
    }
    await assertLabelled();
    await shot("09-events");
  });

  test("a form with a forged CSRF token is refused", async () => {
    await page.goto(`${server.url}/admin/users/${alice}`);
    await page.evaluate(() => {
      for (const input of document.querySelectorAll("input[name=csrf]")) input.value = "forged";
    });
    await Promise.all([page.waitForNavigation(), page.click(`form[action="/admin/users/${alice}/reactivate"] button`)]);
    assert.match(await page.locator(".error").textContent(), /CSRF/);
    await shot("10-csrf-refused");
    // The page's own scripts cannot post at all (CSP `connect-src` falls back to 'none'),
    // so a request with the session cookie but no token is sent from here.
    const cookie = (await context.cookies())[0];
    const res = await fetch(`${server.url}/admin/users/${alice}/reactivate`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie: `${cookie.name}=${cookie.value}`,
        "sec-fetch-site": "same-origin",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "csrf=",
    });
    assert.equal(res.status, 403);
    assert.equal((await admin("GET", `/v1/admin/users/${alice}`)).body.active, false);
  });

  test("script payloads are shown as text and never run", async () => {
    await page.goto(`${server.url}/admin/users`);
    await page.fill("#q", XSS);
    await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
    assert.equal(await page.inputValue("#q"), XSS);
    assert.match(await page.locator("caption").textContent(), /<img src=x onerror=alert\(1\)>/);
    await page.goto(`${server.url}/admin/users?q=xss`);
    assert.ok(await page.getByText(XSS, { exact: true }).first().isVisible());
    await page.goto(`${server.url}/admin/users/${xss}`);
    assert.ok(await page.getByText(XSS, { exact: true }).first().isVisible());
    await page.goto(`${server.url}/admin/events?type=${encodeURIComponent("<script>alert(2)</script>")}`);
    assert.match(await page.locator(".error").textContent(), /not an event type/);
    await page.goto(`${server.url}/admin/users/${xss}`);
    assert.equal(await page.locator("img").count(), 0);
    await shot("11-user-with-script-name");
    assert.deepEqual(alerts, []);
  });

  test("signing keys: list and rotate", async () => {
    await page.click("nav >> text=Signing keys");
    assert.equal(await page.locator("tbody tr").count(), 1);
    await Promise.all([page.waitForNavigation(), page.click('form[action="/admin/keys/rotate"] button')]);
    assert.match(await page.locator(".notice").textContent(), /new key is published/);
    assert.equal(await page.locator("tbody tr").count(), 2);
    const jwks = await api("GET", "/.well-known/jwks.json");
    assert.equal(jwks.body.keys.length, 2);
    await assertLabelled();
    await shot("12-keys");
  });

  test("configuration: effective, secrets masked", async () => {
    await page.click("nav >> text=Configuration");
    const text = await page.locator("table.config").textContent();
    assert.ok(text.includes("admin_api_key"));
    assert.ok(!text.includes(server.adminKey));
    assert.ok(text.includes("rate_limits.login"));
    await shot("13-config");
  });

  test("erase, with a typed confirmation", async () => {
    await page.goto(`${server.url}/admin/users/${alice}`);
    await Promise.all([page.waitForNavigation(), page.click("text=Erase…")]);
    await assertLabelled();
    await shot("14-erase-confirm");
    await page.fill("#confirm", "nope");
    await Promise.all([page.waitForNavigation(), page.click("button.danger")]);
    assert.match(await page.locator(".error").textContent(), /nothing was erased/);
    assert.equal((await admin("GET", `/v1/admin/users/${alice}`)).status, 200);
    await page.fill("#confirm", "erase");
    await Promise.all([page.waitForNavigation(), page.click("button.danger")]);
    assert.equal(await page.locator(".notice").textContent(), "The user was erased.");
    assert.equal((await admin("GET", `/v1/admin/users/${alice}`)).status, 404);
    await page.goto(`${server.url}/admin/users/${alice}`);
    assert.match(await page.locator("h1").textContent(), /Not found/);
  });

  test("readable on a narrow screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [path, name] of [
      [`/admin`, "15-narrow-overview"],
      [`/admin/users/${xss}`, "16-narrow-user"],
    ]) {
      await page.goto(server.url + path);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${path} scrolls sideways by ${overflow}px`);
      await shot(name);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test("sign out ends the console session", async () => {
    await page.goto(`${server.url}/admin`);
    const cookie = (await context.cookies())[0];
    await Promise.all([page.waitForNavigation(), page.click("text=Sign out")]);
    assert.match(await page.locator(".notice").textContent(), /signed out/);
    assert.equal((await context.cookies()).length, 0);
    // The old cookie, put back, is no session either.
    await context.addCookies([cookie]);
    await page.goto(`${server.url}/admin`);
    assert.match(page.url(), /\/admin\/sign-in$/);
    assert.deepEqual(errors, [], "no script errors or CSP violations");
    assert.deepEqual(alerts, []);
    console.log(`# screenshots in ${SHOTS}`);
  });
});
