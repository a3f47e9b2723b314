import type {
  AnonymousSessionRequest,
  CookieTokenResponse,
  DeviceInput,
  ExchangeRequest,
  OtpChallengeResponse,
  OtpRequest,
  OtpVerifyRequest,
  PasswordLoginRequest,
  RegisterRequest,
  RevokedCount,
  SessionList,
  TokenResponse,
  ValidateResponse,
  WhoAmI,
} from "./api.js";
import { SessiondError, TERMINAL_CODES, retryAfterOf, type Problem } from "./errors.js";
import { browserLifecycle, type Lifecycle } from "./lifecycle.js";
import { localStorageOrNull, memoryStore, webStore, type SessionStore, type StoredSession } from "./storage.js";
import { browserTabs, type Coordinator, type TabMessage } from "./tabs.js";

/** How logins and refreshes carry the tokens: in the body (default), or as HttpOnly cookies. */
export type TokenTransport = "body" | "cookie";

/** What a login answers: the token response, or in cookie mode the same without the tokens. */
export type LoginAnswer<M extends TokenTransport> = M extends "cookie" ? CookieTokenResponse : TokenResponse;

export interface ClientOptions<M extends TokenTransport = "body"> {
  /** sessiond's address, e.g. `https://auth.example.com`; default `""` (same origin). */
  baseUrl?: string;
  /**
   * `"cookie"` (browsers): sessiond keeps the tokens in HttpOnly cookies that no script can
   * read; the SDK stores no token anywhere (only the session's id, user, method and expiry),
   * sends every request with `credentials: "include"` and refreshes by calling the refresh
   * endpoint with its cookie. Cross-tab coordination works as in the default `"body"` mode.
   */
  transport?: M;
  /** Where the session is kept. Default: `localStorage` in browsers, memory elsewhere. */
  storage?: SessionStore;
  /** Name of the cross-tab channel and lock (default `sessiond`). */
  name?: string;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** Sent with every login (`device_id`, `user_agent`, `label`). */
  device?: DeviceInput;
  /** Coordinate tabs (Web Locks, BroadcastChannel). Default: on in browsers. */
  crossTab?: boolean;
  /** Use Web Locks when the browser has them (default true; false uses a storage lease). */
  webLocks?: boolean;
  /** Resume signal. Default: {@link browserLifecycle} in browsers; `null` for none. */
  lifecycle?: Lifecycle | null;
  /** Refresh shortly before expiry by a timer (default true). */
  autoRefresh?: boolean;
  /** Per-request timeout in ms (default 10 000). */
  timeoutMs?: number;
  /** How long `getAccessToken()` keeps retrying a refresh through transient errors (default 15 000 ms). */
  refreshWaitMs?: number;
  /** A login on an anonymous session upgrades it in place (default true). */
  upgradeAnonymous?: boolean;
}

/** The current session as the client knows it (no secrets). */
export interface SessionState {
  sessionId: string;
  userId: string | null;
  authMethod: string;
  anonymous: boolean;
  /** Epoch ms (this device's clock) when the access token expires. */
  accessExpiresAt: number;
}

export interface SessionEndedEvent {
  /** The server's code (`SESSION_REVOKED`, `REFRESH_TOKEN_REUSED`, …) or `LOGOUT`. */
  reason: string;
  /** Why the server ended it (`logout`, `revoked_by_user`, `admin`, `idle_timeout`, …). */
  revoked_reason?: string;
  sessionId: string;
}

export interface ClientEvents {
  /** A session ended, once per session and tab. */
  sessionEnded: SessionEndedEvent;
  /** A session started, was restored or upgraded, or ended (`null`). */
  sessionChanged: SessionState | null;
  /** New tokens, from this tab's refresh (`remote: false`) or another tab's. */
  refreshed: SessionState & { remote: boolean };
}

type Listener<K extends keyof ClientEvents> = (event: ClientEvents[K]) => void;

const stateOf = (p: StoredSession): SessionState => ({
  sessionId: p.s,
  userId: p.u,
  authMethod: p.m,
  anonymous: p.m === "anon",
  accessExpiresAt: p.e,
});
/** A token is used only while it has this much life left (network time, wake-up). */
const margin = (p: StoredSession) => Math.min(5000, p.t / 10);
/** Proactive refresh starts this long before expiry. */
const lead = (p: StoredSession) => Math.min(60000, p.t / 4);
const fresh = (p: StoredSession) => Date.now() < p.e - margin(p);
const soon = (p: StoredSession) => Date.now() >= p.e - lead(p);
const isBrowser = typeof window === "object" && typeof document === "object";

export class SessiondClient<M extends TokenTransport = "body"> {
  private readonly base: string;
  private readonly store: SessionStore;
  private readonly http: typeof fetch;
  private readonly opts: ClientOptions<M>;
  private readonly cookies: boolean;
  private readonly tabs: Coordinator | null;
  private readonly unlisten: (() => void) | null;
  private readonly listeners: Record<string, Set<(event: never) => void>> = {};
  private readonly ended = new Set<string>();
  private readonly inflight = new Set<AbortController>();
  private pair: StoredSession | null = null;
  private loading: Promise<void> | null = null;
  private refreshing: Promise<StoredSession> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sleeper: { t: ReturnType<typeof setTimeout>; done: () => void } | null = null;
  private failures = 0;
  private notBefore = 0;
  private disposed = false;

  constructor(options: ClientOptions<M> = {}) {
    this.opts = options;
    this.cookies = options.transport === "cookie";
    this.base = (options.baseUrl ?? "").replace(/\/$/, "");
    this.http = options.fetch ?? ((...args) => fetch(...args));
    const local = localStorageOrNull();
    this.store = options.storage ?? (local ? webStore(local) : memoryStore());
    const name = options.name ?? "sessiond";
    this.tabs =
      (options.crossTab ?? isBrowser)
        ? browserTabs(name, (m) => this.onTab(m), options.webLocks !== false, (options.timeoutMs ?? 10000) + 2000)
        : null;
    const lifecycle = options.lifecycle === undefined ? (isBrowser ? browserLifecycle : null) : options.lifecycle;
    this.unlisten = lifecycle ? lifecycle(() => this.onResume()) : null;
  }

  // ----- events -----

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof ClientEvents>(type: K, listener: Listener<K>): () => void {
    const set = (this.listeners[type] ??= new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  private emit<K extends keyof ClientEvents>(type: K, event: ClientEvents[K]): void {
    // Asynchronously, outside every lock, so that a listener may call the SDK.
    for (const fn of (this.listeners[type] ?? []) as Iterable<Listener<K>>)
      void Promise.resolve().then(() => {
        try {
          fn(event);
        } catch (e) {
          console.error(e);
        }
      });
  }

  // ----- state -----

  /** Loads the stored session once (called by everything else); resolves to its state. */
  async restore(): Promise<SessionState | null> {
    this.alive();
    await (this.loading ??= (async () => {
      const p = await this.store.load();
      if (p && !this.pair && !this.ended.has(p.s)) this.adopt(p, false);
    })());
    return this.state;
  }

  /** The current session, or null. */
  get state(): SessionState | null {
    return this.pair && stateOf(this.pair);
  }

  /** The current tokens (for SSR: to write cookies back), or null; always null in cookie mode. */
  get tokens(): { access_token: string; refresh_token: string; expires_at: number } | null {
    const p = this.pair;
    return p && !this.cookies ? { access_token: p.a, refresh_token: p.r, expires_at: p.e } : null;
  }

  /** Starts from a refresh token alone (SSR: the one from a cookie); the next call refreshes. */
  async useRefreshToken(refreshToken: string): Promise<void> {
    if (this.cookies) throw new SessiondError(0, "COOKIE_MODE", "in cookie mode the refresh token is the browser's cookie");
    await this.restore();
    this.adopt({ a: "", r: refreshToken, e: 0, t: 0, s: "", u: null, m: "" }, false);
  }

  private adopt(p: StoredSession, remote: boolean | null): void {
    const before = this.pair;
    this.pair = p;
    this.schedule();
    if (!before || before.s !== p.s || before.m !== p.m) this.emit("sessionChanged", stateOf(p));
    else if (remote !== null) this.emit("refreshed", { ...stateOf(p), remote });
  }

  /** Stores a new pair (login or refresh), tells the other tabs. */
  private async commit(p: StoredSession, remote: boolean | null): Promise<StoredSession> {
    await this.store.save(p);
    if (this.ended.has(p.s)) {
      // ended (a logout) while an async store was writing: the logout wins
      await this.store.clear();
      throw new SessiondError(0, "NO_SESSION", "the session ended");
    }
    this.adopt(p, remote);
    this.tabs?.post({ t: "pair", p });
    return p;
  }

  private onTab(m: TabMessage): void {
    if (this.disposed) return;
    if (m.t === "end") {
      void this.end(m.s, m.reason, m.revoked_reason, false);
      return;
    }
    const p = m.p;
    const cur = this.pair;
    if (this.ended.has(p.s) || (cur && cur.s === p.s && cur.e >= p.e)) return;
    this.loading ??= Promise.resolve();
    this.adopt(p, true);
  }

  /** Ends a session in this tab: once per session, storage cleared, one event. */
  private async end(sid: string, reason: string, revoked_reason: string | undefined, origin: boolean): Promise<void> {
    if (this.ended.has(sid)) return;
    this.ended.add(sid);
    const mine = this.pair?.s === sid;
    if (mine) {
      this.pair = null;
      clearTimeout(this.timer);
    }
    if (origin) this.tabs?.post({ t: "end", s: sid, reason, revoked_reason });
    const stored = await this.store.load();
    if (stored && (stored.s === sid || (stored.s === "" && mine))) await this.store.clear();
    const event: SessionEndedEvent = { reason, sessionId: sid };
    if (revoked_reason) event.revoked_reason = revoked_reason;
    this.emit("sessionEnded", event);
    if (mine) this.emit("sessionChanged", null);
  }

  private endFrom(p: StoredSession, e: SessiondError): Promise<void> {
    return this.end(p.s, e.code, e.problem?.revoked_reason, true);
  }

  // ----- tokens -----

  /**
   * A usable access token: the current one, or a refreshed one (single-flight: any number
   * of concurrent callers cause one refresh). In cookie mode the token is in an HttpOnly
   * cookie: this answers an opaque marker of the current one once it is fresh (not a
   * token: send requests with {@link fetch}, or with `credentials: "include"`). Rejects with `NO_SESSION` without a session,
   * with a terminal error when the session ended, or with a transient error when the
   * server stayed unreachable for `refreshWaitMs` (the session is kept).
   */
  async getAccessToken(): Promise<string> {
    await this.restore();
    const p = this.pair;
    if (!p) throw new SessiondError(0, "NO_SESSION", "no session");
    return fresh(p) ? p.a : (await this.refreshWhen((q) => !fresh(q))).a;
  }

  /** Refreshes now (joins a refresh already under way). */
  async refresh(): Promise<SessionState> {
    await this.restore();
    const start = this.pair;
    return stateOf(await this.refreshWhen((q) => q.r === start?.r));
  }

  /**
   * For HTTP clients other than {@link fetch}: a request sent with `sentToken` was answered
   * with `status` and problem `code`. Returns true when the request should be retried once
   * with a new `getAccessToken()`: the token changed since it was sent, or it expired and
   * was refreshed. Terminal codes end the session (and return false).
   */
  async handleUnauthorized(status: number, code: string | undefined, sentToken: string, problem?: Problem | null): Promise<boolean> {
    if (status !== 401) return false;
    const p = this.pair;
    if (!p) return false;
    if (code && TERMINAL_CODES.includes(code)) {
      if (p.a !== sentToken) return true; // ask again with the current token
      await this.endFrom(p, new SessiondError(401, code, undefined, problem));
      return false;
    }
    // In cookie mode an access cookie past its Max-Age is simply not sent: no token.
    const stale = code === "TOKEN_EXPIRED" || code === "TOKEN_INVALID" || (this.cookies && code === "TOKEN_NOT_PROVIDED");
    if (!stale) return false;
    if (p.a !== sentToken) return true; // a late 401: someone already has a new token
    await this.refreshWhen((q) => q.a === sentToken);
    return true;
  }

  /** Single-flight refresh if `want(current pair)`; re-decided under the cross-tab lock. */
  private async refreshWhen(want: (p: StoredSession) => boolean): Promise<StoredSession> {
    for (let i = 0; ; i++) {
      const joined = !!this.refreshing;
      const p = await (this.refreshing ??= this.refreshLoop(want).finally(() => {
        this.refreshing = null;
      }));
      // A refresh we joined was started for another reason: decide again, once.
      if (!joined || i > 0 || !want(p)) return p;
    }
  }

  private async refreshLoop(want: (p: StoredSession) => boolean): Promise<StoredSession> {
    const giveUp = Date.now() + (this.opts.refreshWaitMs ?? 15000);
    for (;;) {
      const wait = this.notBefore - Date.now();
      if (wait > 0) await this.sleep(wait);
      this.alive();
      try {
        const got = await (this.tabs ? this.tabs.lock(() => this.refreshOnce(want)) : this.refreshOnce(want));
        this.failures = 0;
        this.notBefore = 0;
        return got;
      } catch (e) {
        if (!(e instanceof SessiondError) || !e.transient || this.disposed) throw e;
        this.failures++;
        const backoff = Math.min(30000, 500 * 2 ** (this.failures - 1)) * (0.5 + Math.random() / 2);
        this.notBefore = Date.now() + Math.max(backoff, (e.retryAfter ?? 0) * 1000);
        if (this.notBefore >= giveUp) {
          this.schedule();
          throw e;
        }
      }
    }
  }

  private async refreshOnce(want: (p: StoredSession) => boolean): Promise<StoredSession> {
    let p = this.pair;
    // Another tab may have refreshed while we waited for the lock.
    const stored = this.tabs ? await this.store.load() : null;
    if (stored && p && stored.s === p.s && stored.e > p.e && !this.ended.has(stored.s)) {
      this.adopt(stored, true);
      p = stored;
    }
    if (!p) throw new SessiondError(0, "NO_SESSION", "no session");
    if (!want(p)) return p;
    const sentAt = Date.now();
    let res: TokenResponse | CookieTokenResponse;
    try {
      res = await this.call<TokenResponse>("POST", "/v1/token/refresh", this.refreshBody(p));
    } catch (e) {
      if (e instanceof SessiondError && e.terminal && this.pair === p) await this.endFrom(p, e);
      throw e;
    }
    // A logout (here or in another tab) while the refresh was out wins: never resurrect.
    if (this.pair !== p || this.ended.has(res.session.id)) {
      if (this.pair) return this.pair;
      throw new SessiondError(0, "NO_SESSION", "the session ended during the refresh");
    }
    this.failures = 0;
    return this.commit(pairOf(res, sentAt), false);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    const p = this.pair;
    if (!p || this.disposed || this.opts.autoRefresh === false) return;
    const at = Math.max(p.e - lead(p) * (1 - Math.random() / 5), this.notBefore);
    this.timer = setTimeout(() => this.proactive(), Math.max(0, at - Date.now()));
  }

  private proactive(): void {
    // Node's timers count from the event loop's cached clock, so one can fire a few ms before
    // `soon` holds by Date.now(); refreshWhen then refreshes nothing, and the timer must be armed
    // again, or proactive refresh would stop for good.
    if (this.pair) this.refreshWhen(soon).then(
      () => this.schedule(),
      () => this.schedule(),
    );
  }

  private onResume(): void {
    if (this.pair && !this.disposed && soon(this.pair)) this.proactive();
  }

  // ----- HTTP -----

  private refreshBody(p: StoredSession): object {
    return this.cookies ? {} : { refresh_token: p.r };
  }

  private async call<T>(method: string, path: string, body?: unknown, token?: string | null): Promise<T> {
    this.alive();
    const ctl = new AbortController();
    this.inflight.add(ctl);
    const timer = setTimeout(() => ctl.abort(), this.opts.timeoutMs ?? 10000);
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.cookies) headers["sessiond-token-transport"] = "cookie";
    else if (token) headers.authorization = "Bearer " + token;
    let res: Response;
    let text: string;
    try {
      res = await this.http(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctl.signal,
        credentials: this.cookies ? "include" : "omit",
      });
      text = await res.text();
    } catch (e) {
      throw new SessiondError(0, this.disposed ? "DISPOSED" : ctl.signal.aborted ? "TIMEOUT" : "NETWORK_ERROR", String((e as Error)?.message ?? e));
    } finally {
      clearTimeout(timer);
      this.inflight.delete(ctl);
    }
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const problem = data && typeof data === "object" ? (data as Problem) : null;
      throw new SessiondError(
        res.status,
        problem?.code ?? "HTTP_" + res.status,
        problem?.detail ?? res.statusText,
        problem,
        retryAfterOf(res.headers.get("retry-after"), problem),
      );
    }
    return data as T;
  }

  /** An authenticated call: refresh once and retry once on a 401 `TOKEN_EXPIRED`. */
  private async authed<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (let retried = false; ; retried = true) {
      const token = await this.getAccessToken();
      try {
        return await this.call<T>(method, path, body, token);
      } catch (e) {
        if (!(e instanceof SessiondError) || retried || !(await this.handleUnauthorized(e.status, e.code, token, e.problem)))
          throw e;
      }
    }
  }

  /**
   * `fetch` with the access token attached; on `401 TOKEN_EXPIRED` it refreshes once and
   * retries once, never more. Bound, so it can be handed to ky (`ky.create({fetch})`) or
   * anything else that takes a `fetch`.
   */
  readonly fetch = async (input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> => {
    const req = typeof Request === "function" && input instanceof Request ? input : null;
    const spare = req && req.clone();
    const send = (token: string, again: boolean) => {
      const headers = new Headers(init.headers ?? req?.headers);
      if (!this.cookies) headers.set("authorization", "Bearer " + token);
      const credentials = this.cookies ? (init.credentials ?? "include") : init.credentials;
      return this.http(again && spare ? spare : input, { ...init, headers, ...(credentials ? { credentials } : {}) });
    };
    const token = await this.getAccessToken();
    const res = await send(token, false);
    if (res.status !== 401) return res;
    const problem = (await res
      .clone()
      .json()
      .catch(() => null)) as Problem | null;
    return (await this.handleUnauthorized(401, problem?.code, token, problem)) ? send(await this.getAccessToken(), true) : res;
  };

  // ----- logins -----

  private async login(path: string, body: object, withDevice = true): Promise<LoginAnswer<M>> {
    await this.restore();
    const cur = this.pair;
    let upgrade: string | null = null;
    if (cur && cur.m === "anon" && this.opts.upgradeAnonymous !== false)
      upgrade = await this.getAccessToken().catch(() => null);
    if (withDevice && this.opts.device && !("device" in body)) body = { ...body, device: this.opts.device };
    const sentAt = Date.now();
    // In cookie mode the anonymous session's cookie goes along by itself.
    const res = await this.call<LoginAnswer<M>>("POST", path, body, upgrade);
    await this.commit(pairOf(res, sentAt), null);
    return res;
  }

  /** `POST /v1/users`: registers and logs in. */
  register(body: RegisterRequest): Promise<LoginAnswer<M>> {
    return this.login("/v1/users", body);
  }

  /** `POST /v1/auth/password`. */
  loginWithPassword(body: PasswordLoginRequest): Promise<LoginAnswer<M>> {
    return this.login("/v1/auth/password", body);
  }

  /** `POST /v1/auth/otp`: mails a code; answers the challenge to verify. */
  sendOtp(body: OtpRequest): Promise<OtpChallengeResponse> {
    if (this.opts.device && !("device" in body)) body = { ...body, device: this.opts.device };
    return this.call("POST", "/v1/auth/otp", body);
  }

  /** `POST /v1/auth/otp/verify`. */
  verifyOtp(body: OtpVerifyRequest): Promise<LoginAnswer<M>> {
    return this.login("/v1/auth/otp/verify", body, false);
  }

  /** `POST /v1/auth/exchange`: a partner's token vouched for by the named provider, or an ID token (Sign in with Apple/Google) with its `nonce`, for a session. */
  exchange(body: ExchangeRequest): Promise<LoginAnswer<M>> {
    return this.login("/v1/auth/exchange", body);
  }

  /** `POST /v1/sessions/anonymous`: a session without a user; a later login upgrades it. */
  createAnonymousSession(body: AnonymousSessionRequest = {}): Promise<LoginAnswer<M>> {
    return this.login("/v1/sessions/anonymous", body);
  }

  /** The stored session, or a new anonymous one (a device's first launch). */
  async ensureSession(): Promise<SessionState> {
    const state = await this.restore();
    if (state) return state;
    await this.createAnonymousSession();
    return this.state!;
  }

  // ----- the current session -----

  /** `GET /v1/session`: who am I. */
  whoami(): Promise<WhoAmI> {
    return this.authed("GET", "/v1/session");
  }

  /** `GET /v1/session/data`. */
  getSessionData<T extends object = Record<string, unknown>>(): Promise<T> {
    return this.authed("GET", "/v1/session/data");
  }

  /** `PUT /v1/session/data`: replaces the session's app data (an object, ≤ 16 KiB). */
  setSessionData<T extends object>(data: T): Promise<T> {
    return this.authed("PUT", "/v1/session/data", data);
  }

  /** `GET /v1/sessions`: the user's live sessions, newest first (`current: true` marks this one). */
  listSessions(): Promise<SessionList> {
    return this.authed("GET", "/v1/sessions");
  }

  /** `DELETE /v1/sessions/{id}`: ends one of the user's sessions (use {@link logout} for this one). */
  async revokeSession(id: string): Promise<void> {
    await this.authed("DELETE", "/v1/sessions/" + encodeURIComponent(id));
    if (id === this.pair?.s) await this.end(id, "SESSION_REVOKED", "revoked_by_user", true);
  }

  /** `DELETE /v1/sessions?except=current`: logs out every other device. */
  revokeOtherSessions(): Promise<RevokedCount> {
    return this.authed("DELETE", "/v1/sessions?except=current");
  }

  /** `POST /v1/token/validate`: the server's verdict on any token (changes nothing). */
  validate(token: string): Promise<ValidateResponse> {
    return this.call("POST", "/v1/token/validate", { token });
  }

  /**
   * Logs out: the session ends here and in every tab at once (storage cleared, one
   * `sessionEnded` with reason `LOGOUT`), then `POST /v1/logout` revokes it on the server
   * (refreshing first if the access token expired). Rejects if the server could not be
   * told (the local session is gone either way).
   */
  async logout(): Promise<void> {
    await this.restore();
    const p = this.pair;
    if (!p) return;
    await this.end(p.s, "LOGOUT", "logout", true);
    let token = p.a;
    for (let i = 0; ; i++) {
      try {
        if (!fresh(p) || i > 0)
          token = pairOf(await this.call<TokenResponse>("POST", "/v1/token/refresh", this.refreshBody(p)), Date.now()).a;
        await this.call("POST", "/v1/logout", undefined, token);
        return;
      } catch (e) {
        if (e instanceof SessiondError && e.terminal) return; // already over on the server
        if (!(e instanceof SessiondError) || i > 0 || e.code !== "TOKEN_EXPIRED") throw e;
      }
    }
  }

  /** Stops timers, listeners, the tab channel and requests in flight. The client is unusable afterwards. */
  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    if (this.sleeper) {
      clearTimeout(this.sleeper.t);
      this.sleeper.done();
    }
    for (const c of this.inflight) c.abort();
    this.unlisten?.();
    this.tabs?.close();
  }

  private alive(): void {
    if (this.disposed) throw new SessiondError(0, "DISPOSED", "the client was disposed");
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((done) => {
      this.sleeper = {
        t: setTimeout(() => {
          this.sleeper = null;
          done();
        }, ms),
        done,
      };
    });
  }
}

function pairOf(res: TokenResponse | CookieTokenResponse, sentAt: number): StoredSession {
  // Cookie mode: no token ever reaches this code; `a` is a marker of this pair (no secret).
  const cookie = !("access_token" in res);
  return {
    a: cookie ? `cookie:${res.session.id}:${sentAt}:${Math.random().toString(36).slice(2)}` : res.access_token,
    r: cookie ? "" : res.refresh_token,
    // JWT `exp` has whole seconds (sessiond truncates): the token may die up to 1 s before `expires_in` says.
    e: sentAt + Math.max(res.expires_in * 500, res.expires_in * 1000 - 1000),
    t: Math.max(res.expires_in * 500, res.expires_in * 1000 - 1000),
    s: res.session.id,
    u: res.session.user_id ?? null,
    m: res.session.auth_method,
  };
}

/** Creates a client (see {@link ClientOptions}). */
export function createClient<M extends TokenTransport = "body">(options?: ClientOptions<M>): SessiondClient<M> {
  return new SessiondClient<M>(options);
}
