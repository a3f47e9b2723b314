/**
 * What the SDK keeps of a session: the token pair and a few ids, under one record so that
 * a write is all-or-nothing. Small on purpose (well under SecureStore's ~2 KB per value).
 */
export interface StoredSession {
  /** access token */
  a: string;
  /** refresh token */
  r: string;
  /** access-token expiry, epoch ms on this device's clock (receipt time + `expires_in`) */
  e: number;
  /** usable access-token lifetime in ms (`expires_in`, less the up-to-1 s of whole-second `exp`) */
  t: number;
  /** session id */
  s: string;
  /** user id (null: anonymous) */
  u: string | null;
  /** how the session was authenticated (`auth_method`) */
  m: string;
}

/** Where the session lives. Every method may be sync or async. */
export interface SessionStore {
  load(): Promise<StoredSession | null> | StoredSession | null;
  /** Replaces the record atomically: a reader sees the old record or the new one. */
  save(value: StoredSession): Promise<void> | void;
  clear(): Promise<void> | void;
}

/** The Web Storage API (`localStorage`, `sessionStorage`). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** AsyncStorage's shape (React Native `@react-native-async-storage/async-storage`). */
export interface AsyncKeyValue {
  getItem(key: string): Promise<string | null>;
  setItem(key: string, value: string): Promise<void>;
  removeItem(key: string): Promise<void>;
}

/** Expo SecureStore's shape (`expo-secure-store`). */
export interface SecureStoreLike {
  getItemAsync(key: string): Promise<string | null>;
  setItemAsync(key: string, value: string): Promise<void>;
  deleteItemAsync(key: string): Promise<void>;
}

function parse(text: string | null): StoredSession | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as StoredSession;
    return v && typeof v.r === "string" && typeof v.s === "string" ? v : null;
  } catch {
    return null;
  }
}

/** `localStorage` if this runtime has one that works (it throws where storage is blocked). */
export function localStorageOrNull(): WebStorageLike | null {
  try {
    const s = typeof localStorage === "object" ? localStorage : null;
    s?.getItem("sessiond");
    return s;
  } catch {
    return null;
  }
}

/** In memory only (Node, SSR, tests); optionally seeded. */
export function memoryStore(initial?: StoredSession | null): SessionStore {
  let value = initial ?? null;
  return {
    load: () => value,
    save: (v) => {
      value = v;
    },
    clear: () => {
      value = null;
    },
  };
}

/** `localStorage` (the browser default): one key, one `setItem`, so writes are atomic. */
export function webStore(storage: WebStorageLike = localStorage, key = "sessiond"): SessionStore {
  return {
    load: () => parse(storage.getItem(key)),
    save: (v) => storage.setItem(key, JSON.stringify(v)),
    clear: () => storage.removeItem(key),
  };
}

export interface KeyValueStoreOptions {
  /** Key of the record (default `sessiond`; SecureStore allows only `[A-Za-z0-9._-]`). */
  key?: string;
  /** Longest value written under one key; longer records are chunked (default 1800). */
  maxValueBytes?: number;
}

/**
 * An async key-value store (AsyncStorage, SecureStore through {@link secureStore}).
 * The record is one value when it fits `maxValueBytes`; otherwise its chunks are written
 * under fresh keys first and a small manifest under `key` last, so a process killed
 * between writes leaves the old record or the new one, never a mix. Stale chunks are
 * removed after the manifest is written (or at the next load after a crash).
 */
export function kvStore(kv: AsyncKeyValue, options: KeyValueStoreOptions = {}): SessionStore {
  const key = options.key ?? "sessiond";
  const max = Math.max(64, options.maxValueBytes ?? 1800);
  const pendingKey = key + ".p";
  const chunkKey = (gen: string, i: number) => `${key}.${gen}.${i}`;
  type Manifest = { g: string; n: number; o?: Manifest | null };
  const manifest = (text: string | null): Manifest | null => {
    try {
      const m = text ? (JSON.parse(text) as Manifest) : null;
      return m && typeof m.g === "string" && typeof m.n === "number" ? m : null;
    } catch {
      return null;
    }
  };
  const drop = async (m: Manifest | null | undefined) => {
    if (m) for (let i = 0; i < m.n; i++) await kv.removeItem(chunkKey(m.g, i));
  };
  let cleaned = false;
  return {
    async load() {
      const head = await kv.getItem(key);
      const m = manifest(head);
      if (!cleaned) {
        // Once, at start-up: a write that was killed leaves a note of the chunks it was
        // writing (new) and replacing (old); whichever is not the current record goes.
        cleaned = true;
        const note = manifest(await kv.getItem(pendingKey));
        if (note) {
          for (const x of [note, note.o]) if (x && x.g !== m?.g) await drop(x);
          await kv.removeItem(pendingKey);
        }
      }
      if (!m) return parse(head);
      let text = "";
      for (let i = 0; i < m.n; i++) {
        const part = await kv.getItem(chunkKey(m.g, i));
        if (part === null) return null;
        text += part;
      }
      return parse(text);
    },
    async save(v) {
      const text = JSON.stringify(v);
      const old = manifest(await kv.getItem(key));
      const m: Manifest | null =
        text.length > max ? { g: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), n: Math.ceil(text.length / max) } : null;
      if (old || m) await kv.setItem(pendingKey, JSON.stringify({ ...(m ?? { g: "", n: 0 }), o: old }));
      if (m) for (let i = 0; i < m.n; i++) await kv.setItem(chunkKey(m.g, i), text.slice(i * max, (i + 1) * max));
      await kv.setItem(key, m ? JSON.stringify(m) : text); // the commit point
      await drop(old);
      if (old || m) await kv.removeItem(pendingKey);
    },
    async clear() {
      const old = manifest(await kv.getItem(key));
      if (old) await kv.setItem(pendingKey, JSON.stringify({ g: "", n: 0, o: old }));
      await kv.removeItem(key);
      await drop(old);
      if (old) await kv.removeItem(pendingKey);
    },
  };
}

/** Expo SecureStore (values are limited to about 2 KB: records are kept small and chunked). */
export function secureStore(store: SecureStoreLike, options: KeyValueStoreOptions = {}): SessionStore {
  return kvStore(
    {
      getItem: (k) => store.getItemAsync(k),
      setItem: (k, v) => store.setItemAsync(k, v),
      removeItem: (k) => store.deleteItemAsync(k),
    },
    { maxValueBytes: 1800, ...options },
  );
}
