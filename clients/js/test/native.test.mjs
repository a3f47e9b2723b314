// React Native / Expo: AsyncStorage- and SecureStore-compatible fakes (React Native itself
// cannot run here), atomic writes under a crash at every step, restore at start-up, and the
// AppState lifecycle adapter; all against the real server.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { after, before, describe, test } from "node:test";
import { PASSWORD, email, nodeClient, sleep, startProxy, startServer, until } from "./harness.mjs";

const { appStateLifecycle, kvStore, secureStore } = await import("../dist/index.js");

/** AsyncStorage's API over a Map; `crashAfter` mutations, it throws and keeps no more. */
function fakeAsyncStorage(map = new Map(), crashAfter = Infinity) {
  let writes = 0;
  const mutate = (fn) => {
    if (writes++ >= crashAfter) return Promise.reject(new Error("killed"));
    fn();
    return Promise.resolve();
  };
  return {
    map,
    getItem: async (k) => (map.has(k) ? map.get(k) : null),
    setItem: (k, v) => mutate(() => map.set(k, String(v))),
    removeItem: (k) => mutate(() => map.delete(k)),
  };
}

/** Expo SecureStore's API: values over 2048 bytes are refused, keys limited to [\w.-]. */
function fakeSecureStore() {
  const map = new Map();
  const check = (k) => {
    if (!/^[\w.-]+$/.test(k)) throw new Error("invalid key " + k);
  };
  return {
    map,
    getItemAsync: async (k) => (check(k), map.has(k) ? map.get(k) : null),
    setItemAsync: async (k, v) => {
      check(k);
      if (Buffer.byteLength(v) > 2048) throw new Error("value larger than 2048 bytes");
      map.set(k, v);
    },
    deleteItemAsync: async (k) => (check(k), void map.delete(k)),
  };
}

const record = (tag, size) => ({ a: tag + "a".repeat(size), r: tag + "-refresh", e: 1, t: 1000, s: tag + "-sid", u: null, m: "pwd" });

describe("storage adapters", () => {
  for (const [label, size, max] of [
    ["one value", 100, 1800],
    ["chunked", 1500, 200],
  ]) {
    test(`a write killed at any step leaves the old record or the new one (${label})`, async () => {
      const old = record("old", size);
      const neu = record("new", size + 50);
      for (let crashAt = 0; crashAt < 40; crashAt++) {
        const backing = new Map();
        await kvStore(fakeAsyncStorage(backing), { maxValueBytes: max }).save(old);
        const dying = kvStore(fakeAsyncStorage(backing, crashAt), { maxValueBytes: max });
        let completed = true;
        await dying.save(neu).catch(() => (completed = false));
        const seen = await kvStore(fakeAsyncStorage(backing), { maxValueBytes: max }).load();
        assert.ok(
          JSON.stringify(seen) === JSON.stringify(old) || JSON.stringify(seen) === JSON.stringify(neu),
          `crash after ${crashAt} writes: a mix`,
        );
        // after the start-up load, only the current record's keys are left: no stale chunks
        const head = JSON.parse(backing.get("sessiond"));
        const others = [...backing.keys()].filter((k) => k !== "sessiond").sort();
        const expected = head.g ? Array.from({ length: head.n }, (_, i) => `sessiond.${head.g}.${i}`).sort() : [];
        assert.deepEqual(others, expected, `crash after ${crashAt} writes: leftover keys`);
        if (completed) {
          assert.deepEqual(seen, neu);
          break;
        }
      }
    });
  }

  test("a chunked clear killed at any step leaves the record or nothing, and no stale chunks", async () => {
    const old = record("old", 1500);
    for (let crashAt = 0; crashAt < 20; crashAt++) {
      const backing = new Map();
      await kvStore(fakeAsyncStorage(backing), { maxValueBytes: 200 }).save(old);
      let completed = true;
      await kvStore(fakeAsyncStorage(backing, crashAt), { maxValueBytes: 200 })
        .clear()
        .catch(() => (completed = false));
      const seen = await kvStore(fakeAsyncStorage(backing), { maxValueBytes: 200 }).load();
      assert.ok(seen === null || JSON.stringify(seen) === JSON.stringify(old), `crash after ${crashAt}: a mix`);
      if (seen === null) assert.deepEqual([...backing.keys()], [], `crash after ${crashAt}: leftover keys`);
      if (completed) {
        assert.equal(seen, null);
        break;
      }
    }
  });

  test("SecureStore: a record larger than its 2 KB value limit is chunked under valid keys", async () => {
    const store = fakeSecureStore();
    const s = secureStore(store);
    const big = record("big", 5000);
    await s.save(big);
    assert.deepEqual(await s.load(), big);
    assert.ok(store.map.size >= 3);
    await s.save(record("small", 10));
    assert.deepEqual(await s.load(), record("small", 10));
    assert.equal(store.map.size, 1, "old chunks removed");
    await s.clear();
    assert.equal(await s.load(), null);
    assert.equal(store.map.size, 0);
  });
});

describe("React Native flows against the server", () => {
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

  for (const [label, make] of [
    ["AsyncStorage", () => kvStore(fakeAsyncStorage())],
    ["SecureStore", () => secureStore(fakeSecureStore())],
  ]) {
    test(`${label}: the session is restored at start-up and keeps refreshing`, async () => {
      const storage = make();
      const first = await nodeClient(proxy.url, { storage });
      const grant = await first.client.loginWithPassword({ email: (await register()).email, password: PASSWORD });
      first.client.dispose(); // the app is killed
      const second = await nodeClient(proxy.url, { storage });
      const state = await second.client.restore();
      assert.equal(state.sessionId, grant.session.id);
      assert.equal(second.events.sessionChanged.length, 1);
      await sleep(2100);
      assert.equal((await second.client.whoami()).session.id, grant.session.id);
      second.client.dispose();
      const third = await nodeClient(proxy.url, { storage });
      assert.equal((await third.client.whoami()).session.id, grant.session.id, "the rotated pair was stored");
      third.client.dispose();
    });
  }

  test("AppState 'active' refreshes an expiring token before the next request", async () => {
    const appState = new EventEmitter();
    const adapter = { addEventListener: (type, fn) => (appState.on(type, fn), { remove: () => appState.off(type, fn) }) };
    const { client, events } = await nodeClient(proxy.url, { lifecycle: appStateLifecycle(adapter) });
    await client.register({ email: email("appstate"), password: PASSWORD });
    proxy.reset();
    appState.emit("change", "background");
    await sleep(2100); // "asleep": no timers ran (autoRefresh off), the token expired
    appState.emit("change", "active");
    await sleep(300);
    assert.equal(proxy.refreshes(), 1, "refreshed on resume");
    assert.equal(events.refreshed.length, 1);
    await client.whoami();
    assert.equal(proxy.unauthorized(), 0);
    assert.equal(proxy.refreshes(), 1);
    client.dispose();
    assert.equal(appState.listenerCount("change"), 0, "dispose unsubscribed");
  });

  test("a logout while a slow store writes the refreshed pair wins (no resurrection)", async () => {
    const backing = fakeAsyncStorage();
    const slow = { ...backing, setItem: (k, v) => sleep(400).then(() => backing.setItem(k, v)) };
    const storage = kvStore(slow);
    const { client, events } = await nodeClient(proxy.url, { storage });
    await client.register({ email: email("slow"), password: PASSWORD });
    await sleep(2100);
    proxy.reset();
    const refreshing = client.getAccessToken().then(
      () => "token",
      (e) => e.code,
    );
    await until(() => proxy.count("POST", "/v1/token/refresh", 200) === 1, 5000, "the refresh answer");
    await sleep(50); // the pair is being written now
    await client.logout();
    assert.equal(await refreshing, "NO_SESSION");
    await sleep(500);
    assert.equal(client.state, null);
    assert.equal(await storage.load(), null, "nothing stored after the logout");
    assert.equal(events.sessionEnded.length, 1);
    assert.equal(events.sessionEnded[0].reason, "LOGOUT");
    client.dispose();
  });

  async function register() {
    const address = email("rn");
    const r = await fetch(server.url + "/v1/users", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: address, password: PASSWORD }),
    });
    assert.equal(r.status, 201);
    return { email: address };
  }
});
