// sessiond's public keys, from its JWKS: fetched at start, again when the feed says
// `keys_changed`, and when a token names a key not seen yet (at most once per cooldown,
// so a flood of made-up `kid`s cannot turn into load on sessiond).
import { createPublicKey, type KeyObject } from "node:crypto";

import { getJson } from "./http.js";

interface Jwk {
  kid?: unknown;
  kty?: unknown;
  crv?: unknown;
  x?: unknown;
}

export class Keys {
  /** Imported once per key: `verify` never parses a JWK. */
  private byKid = new Map<string, KeyObject>();
  private lastUnknownFetch = -Infinity;
  private inflight: Promise<void> | null = null;
  /** How many JWKS fetches were made (for tests and the README's claims). */
  fetches = 0;
  /** Bumped whenever the key set changes, so caches built on old keys can tell. */
  generation = 0;

  constructor(
    private readonly jwksUrl: string,
    private readonly cooldownMs: number,
  ) {}

  /** How many usable (Ed25519) keys are held. */
  get size(): number {
    return this.byKid.size;
  }

  get(kid: string): KeyObject | undefined {
    return this.byKid.get(kid);
  }

  /** Fetches the JWKS now (concurrent callers share one request). */
  refresh(): Promise<void> {
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /**
   * A token named a `kid` we do not hold: refetch, unless one such refetch happened within
   * the cooldown. Resolves when the keys are as fresh as they will get.
   */
  refreshForUnknownKid(): Promise<void> {
    const swallow = () => {
      /* sessiond unreachable: the token stays unverifiable, which refuses it */
    };
    if (this.inflight) return this.inflight.catch(swallow);
    const now = performance.now();
    if (now - this.lastUnknownFetch < this.cooldownMs) return Promise.resolve();
    this.lastUnknownFetch = now;
    return this.refresh().catch(swallow);
  }

  private async fetch(): Promise<void> {
    this.fetches++;
    const jwks = await getJson<{ keys?: Jwk[] }>(this.jwksUrl);
    const next = new Map<string, KeyObject>();
    for (const jwk of jwks.keys ?? []) {
      // Only Ed25519 keys: an RSA or symmetric key in the set could never verify an EdDSA
      // token, and must never be handed to a verify call.
      if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.kid !== "string" || typeof jwk.x !== "string") continue;
      const known = this.byKid.get(jwk.kid);
      try {
        next.set(jwk.kid, known ?? createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: jwk.x }, format: "jwk" }));
      } catch {
        /* a malformed key is skipped, like one of another type */
      }
    }
    const changed = next.size !== this.byKid.size || [...next.keys()].some((kid) => !this.byKid.has(kid));
    this.byKid = next;
    if (changed) this.generation++;
  }
}
