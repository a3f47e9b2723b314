import { localStorageOrNull, type StoredSession } from "./storage.js";

/** What tabs tell each other. */
export type TabMessage =
  | { t: "pair"; p: StoredSession }
  | { t: "end"; s: string; reason: string; revoked_reason?: string };

/** Cross-tab (or cross-anything) coordination: a refresh lock and a message bus. */
export interface Coordinator {
  /** Runs `fn` while no other tab runs its refresh. */
  lock<T>(fn: () => Promise<T>): Promise<T>;
  post(message: TabMessage): void;
  close(): void;
}

interface LockManagerLike {
  request<T>(name: string, options: { ifAvailable: true }, callback: (lock: unknown) => Promise<T>): Promise<T>;
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Browser tabs of one origin: Web Locks when available (released by the browser when a
 * tab dies), else a short-lived lease in `localStorage` (expires by itself if its tab
 * dies); BroadcastChannel shares new pairs and session ends. Without either, every tab
 * still works on its own: the server's grace window answers a racing refresh with the
 * same successor.
 */
export function browserTabs(
  name: string,
  onMessage: (m: TabMessage) => void,
  useLocks: boolean,
  leaseMs: number,
): Coordinator {
  const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(name) : null;
  if (channel) channel.onmessage = (ev: MessageEvent) => onMessage(ev.data as TabMessage);
  const nav = typeof navigator === "object" ? (navigator as { locks?: LockManagerLike }) : undefined;
  const locks = useLocks ? nav?.locks : undefined;
  const store = localStorageOrNull();
  const me = Math.random().toString(36).slice(2);
  const leaseKey = name + ".lease";
  const holder = (): { o: string; u: number } | null => {
    try {
      return JSON.parse(store!.getItem(leaseKey) || "null") as { o: string; u: number } | null;
    } catch {
      return null;
    }
  };
  const release = () => {
    if (holder()?.o === me) store!.removeItem(leaseKey);
  };
  if (!locks && store && typeof addEventListener === "function") addEventListener("pagehide", release);
  return {
    async lock<T>(fn: () => Promise<T>): Promise<T> {
      if (locks) {
        const lockName = name + ".refresh";
        const free = await locks.request(lockName, { ifAvailable: true }, async (lock) => (lock ? { v: await fn() } : null));
        if (free) return free.v;
        // Another tab was refreshing: let its new pair (BroadcastChannel, storage) arrive
        // before deciding again under the lock.
        return locks.request(lockName, async () => {
          await sleep(30);
          return fn();
        });
      }
      if (!store) return fn();
      // A lease: claim it, let competing claims land, keep it only if it is still ours.
      const giveUp = Date.now() + 2 * leaseMs;
      for (;;) {
        const h = holder();
        if (h && h.o !== me && h.u > Date.now() && Date.now() < giveUp) {
          await sleep(20 + Math.random() * 30);
          continue;
        }
        store.setItem(leaseKey, JSON.stringify({ o: me, u: Date.now() + leaseMs }));
        await sleep(25 + Math.random() * 25);
        if (holder()?.o === me || Date.now() >= giveUp) break;
      }
      try {
        return await fn();
      } finally {
        release();
      }
    },
    post: (m) => channel?.postMessage(m),
    close() {
      channel?.close();
      if (!locks && store && typeof removeEventListener === "function") removeEventListener("pagehide", release);
    },
  };
}
