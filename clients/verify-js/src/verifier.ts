import { DenyList } from "./denylist.js";
import { FEED_STALE, StartError, TOKEN_INVALID, VerifyError } from "./errors.js";
import { Feed } from "./feed.js";
import { Introspection } from "./introspect.js";
import { INVALID, TokenChecker, UNKNOWN_KID, type Claims } from "./jwt.js";
import { Keys } from "./keys.js";

export interface VerifierOptions {
  /** `http://host:port` of sessiond (any instance). */
  url: string;
  /** A verifier key (`verifier_api_keys`; reads the feed and introspects, nothing else). */
  apiKey: string;
  /** Expected `iss`. */
  issuer: string;
  /** Expected `aud`. */
  audience: string;
  /**
   * Longest the feed may be silent (no fact, no heartbeat) before checks fail closed with
   * `REVOCATION_FEED_STALE`. sessiond heartbeats every 5 s. Default 15 000.
   */
  stalenessBoundMs?: number;
  /** Least time between two JWKS fetches caused by unknown `kid`s. Default 10 000. */
  jwksCooldownMs?: number;
  /**
   * `"introspect"`: while the feed is stale, ask sessiond (`POST /v1/introspect`) about each
   * token instead of refusing it; if that fails too, the check still fails closed.
   */
  fallback?: "introspect";
  /**
   * How many tokens whose signature passed are remembered, so a token seen again skips
   * the Ed25519 check (its expiry and revocation are still checked every time). 0 turns
   * it off. Default 4096.
   */
  signatureCacheSize?: number;
}

/** The deny-set's size. */
export interface DeniedCount {
  sessions: number;
  users: number;
}

/** What `check` answers: the claims, the refusal, or a promise of either (network needed). */
export type CheckResult = Claims | VerifyError | Promise<Claims | VerifyError>;

/** Fetches the JWKS and a snapshot of live revocations, then follows the revocation feed. */
export async function createVerifier(options: VerifierOptions): Promise<Verifier> {
  for (const name of ["url", "apiKey", "issuer", "audience"] as const)
    if (typeof options[name] !== "string" || options[name] === "") throw new TypeError(`createVerifier: \`${name}\` is required`);
  const verifier = new Verifier(options);
  await verifier.start();
  return verifier;
}

export class Verifier {
  private readonly keys: Keys;
  private readonly denied = new DenyList();
  private readonly feed: Feed;
  private readonly checker: TokenChecker;
  private readonly introspection: Introspection | null;
  private readonly stalenessBoundMs: number;
  private readonly cacheSize: number;
  /** token → claims, for tokens whose signature and claims passed (insertion order). */
  private readonly verified = new Map<string, Claims>();
  private keysGeneration = 0;
  private following: Promise<void> | null = null;

  /** Use `createVerifier`, which also starts it. */
  constructor(options: VerifierOptions) {
    const baseUrl = options.url.replace(/\/+$/, "");
    this.stalenessBoundMs = options.stalenessBoundMs ?? 15_000;
    this.cacheSize = options.signatureCacheSize ?? 4096;
    this.keys = new Keys(`${baseUrl}/.well-known/jwks.json`, options.jwksCooldownMs ?? 10_000);
    this.checker = new TokenChecker({ issuer: options.issuer, audience: options.audience }, (kid) => this.keys.get(kid));
    this.feed = new Feed({
      baseUrl,
      apiKey: options.apiKey,
      stalenessBoundMs: this.stalenessBoundMs,
      denied: this.denied,
      onKeysChanged: () => {
        this.keys.refresh().catch(() => {
          /* the next unknown kid retries */
        });
      },
    });
    this.introspection = options.fallback === "introspect" ? new Introspection(baseUrl, options.apiKey) : null;
  }

  /** @internal */
  async start(): Promise<void> {
    // The snapshot first, then the keys: a key published in between is in the JWKS we fetch.
    await this.feed.snapshot();
    await this.keys.refresh();
    if (this.keys.size === 0) throw new StartError("sessiond's JWKS holds no Ed25519 key: no token could verify");
    this.keysGeneration = this.keys.generation;
    this.following = this.feed.follow();
  }

  /**
   * Checks a token: signature and claims, expiry (no leeway), the feed's freshness, then
   * the deny-set. Resolves to the claims or rejects with a `VerifyError`. Goes to the
   * network only for an unknown `kid` (one JWKS refetch per cooldown) or, with the
   * introspection fallback, while the feed is stale.
   */
  verify(token: string): Promise<Claims> {
    const result = this.check(token);
    if (result instanceof VerifyError) return Promise.reject(result);
    if (result instanceof Promise) return result.then((r) => (r instanceof VerifyError ? Promise.reject(r) : r));
    return Promise.resolve(result);
  }

  /**
   * The same check without ever waiting: an unknown `kid` is `TOKEN_INVALID` (a JWKS
   * refetch starts in the background, within the cooldown), and a stale feed is
   * `REVOCATION_FEED_STALE` even with the introspection fallback. Throws `VerifyError`.
   */
  verifySync(token: string): Claims {
    const result = this.check(token, false);
    if (result instanceof VerifyError) throw result;
    if (result instanceof Promise) throw TOKEN_INVALID; // not reached: `check(…, false)` never waits
    return result;
  }

  /**
   * What the framework integrations call: never throws, and answers synchronously unless
   * the network is needed (then a promise that never rejects).
   */
  check(token: string, mayWait = true): CheckResult {
    if (this.keys.generation !== this.keysGeneration) {
      // A key was added or retired: what was verified with the old set is checked again.
      this.verified.clear();
      this.keysGeneration = this.keys.generation;
    }
    let claims = this.cacheSize > 0 ? this.verified.get(token) : undefined;
    if (claims === undefined) {
      const checked = this.checker.check(token);
      if (checked === INVALID) return TOKEN_INVALID;
      if (checked === UNKNOWN_KID) {
        const refreshed = this.keys.refreshForUnknownKid();
        if (!mayWait) return TOKEN_INVALID;
        return refreshed.then(() => {
          const again = this.checker.check(token);
          return typeof again === "number" ? TOKEN_INVALID : this.decide(again, token, true);
        });
      }
      claims = checked;
      this.remember(token, claims);
    }
    return this.decide(claims, token, mayWait);
  }

  private decide(claims: Claims, token: string, mayWait: boolean): Claims | VerifyError | Promise<Claims | VerifyError> {
    const nowMs = Date.now();
    if (claims.exp * 1000 <= nowMs) return new VerifyError("TOKEN_EXPIRED", { expiredAt: claims.exp });
    const reason = this.denied.refusal(claims.sid, claims.sub, claims.iat, nowMs);
    if (performance.now() - this.feed.heard > this.stalenessBoundMs) {
      // Nothing can be known to be unrevoked; only sessiond itself can still say.
      if (this.introspection === null || !mayWait) return FEED_STALE;
      if (reason !== undefined) return new VerifyError("SESSION_REVOKED", { revokedReason: reason });
      return this.introspection.ask(token).then((answer) => (answer === true ? claims : answer));
    }
    if (reason !== undefined) return new VerifyError("SESSION_REVOKED", { revokedReason: reason });
    return claims;
  }

  private remember(token: string, claims: Claims): void {
    if (this.cacheSize <= 0) return;
    if (this.verified.size >= this.cacheSize) {
      // The oldest entry goes: cheap, and a token still in use comes back on its next check.
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(token, claims);
  }

  /** The deny-set's size. */
  deniedCount(): DeniedCount {
    return { sessions: this.denied.deniedSessions, users: this.denied.deniedUsers };
  }

  /** Whether checks currently fail closed (or go to introspection) for want of the feed. */
  isStale(): boolean {
    return performance.now() - this.feed.heard > this.stalenessBoundMs;
  }

  /** Counters for tests and monitoring. */
  stats(): { jwksFetches: number; snapshots: number; streamConnections: number; introspections: number } {
    return {
      jwksFetches: this.keys.fetches,
      snapshots: this.feed.snapshots,
      streamConnections: this.feed.connections,
      introspections: this.introspection?.calls ?? 0,
    };
  }

  /** Ends the revocation stream; the verifier then fails closed once the bound passes. */
  async close(): Promise<void> {
    this.feed.close();
    await this.following;
  }
}
