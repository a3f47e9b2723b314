// The examples run as the README says, against the real server: the Node seed-flows script
// (OTP login, refresh on expiry, restore at start-up, logout) and the web page (through its
// same-origin server, in headless Chromium; screenshots in test-results/).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { PASSWORD, REPO, ROOT, email, startServer, until } from "./harness.mjs";

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

describe("examples/node/seed-flows.mjs", () => {
  test("OTP login and refresh on expiry, then restore at start-up, then logout", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sessiond-example-"));
    const env = {
      ...process.env,
      SESSIOND_URL: server.url,
      SESSIOND_OUTBOX: join(server.dataDir, "outbox"),
      SESSION_FILE: join(dir, "session.json"),
    };
    const script = join(REPO, "examples", "node", "seed-flows.mjs");
    const address = email("seed");
    const first = (await run(process.execPath, [script, address], { env, timeout: 30000 })).stdout;
    assert.match(first, /a code was mailed to/);
    assert.match(first, /logged in: session/);
    assert.match(first, /waiting \d+ s for the access token to expire/);
    assert.match(first, /refreshes so far: [1-9]/);
    const sid = first.match(/logged in: session (\S+),/)[1];
    const second = (await run(process.execPath, [script, address, "--logout"], { env, timeout: 30000 })).stdout;
    assert.match(second, new RegExp(`restored session ${sid}`));
    assert.match(second, /session data: \{"runs":2\}/);
    assert.match(second, /logged out/);
    assert.equal(readFileSync(env.SESSION_FILE, "utf8"), "{}", "the stored session is gone");
  });
});

describe("examples/web", { skip: !existsSync(CHROMIUM) && "no chromium" }, () => {
  let page;
  let serve;
  let browser;
  before(async () => {
    serve = spawn(process.execPath, [join(REPO, "examples", "web", "serve.mjs")], {
      env: { ...process.env, SESSIOND_URL: server.url, PORT: "0" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    serve.stdout.on("data", (c) => (out += c));
    const url = await until(() => out.match(/on (http:\/\/\S+\/)/)?.[1], 10000, "the example server");
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
    const context = await browser.newContext({ viewport: { width: 900, height: 820 } });
    page = await context.newPage();
    page.baseUrl = url;
  });
  after(async () => {
    await browser?.close();
    serve?.kill();
  });

  test("log in, see the session and devices, survive a reload and a second tab, see why it ended", async () => {
    mkdirSync(join(ROOT, "test-results"), { recursive: true });
    await page.goto(page.baseUrl);
    await page.fill("#password [name=email]", email("web"));
    await page.fill("#password [name=password]", PASSWORD);
    await page.click("#password [name=register]");
    await page.waitForSelector("#in:not([hidden])");
    await page.waitForSelector("#sessions tr");
    assert.match(await page.textContent("#sessions"), /this device/);
    await page.reload();
    await page.waitForSelector("#in:not([hidden])");
    assert.match(await page.textContent("#log"), /session restored from storage/);
    const second = await page.context().newPage();
    await second.goto(page.baseUrl);
    await second.waitForSelector("#in:not([hidden])");
    await page.waitForTimeout(2500); // a rotation or two
    await page.screenshot({ path: join(ROOT, "test-results", "example-signed-in.png") });
    await second.click("#logout");
    await page.waitForSelector("#ended:not([hidden])");
    assert.match(await page.textContent("#why"), /You logged out/);
    await page.screenshot({ path: join(ROOT, "test-results", "example-ended.png") });
    await second.close();
  });
});
