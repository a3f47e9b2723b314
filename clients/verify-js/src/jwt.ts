// The local check of a compact JWS: strict shape, EdDSA pinned, `typ` at+jwt, a `kid` we
// hold, the signature, then `iss`, `aud` and the claims' types. Expiry and revocation are
// the caller's (they change with time; this does not).
import { verify as verifySignature, type KeyObject } from "node:crypto";

/** What a token that passed says. Frozen: the same object may be handed out again. */
export interface Claims {
  /** The user; absent for anonymous sessions. */
  readonly sub?: string;
  /** The session. */
  readonly sid: string;
  /** Issued at, seconds since the epoch. */
  readonly iat: number;
  /** Expires at, seconds since the epoch (no leeway). */
  readonly exp: number;
  /** How the session was authenticated (`pwd`, `otp`, `exchange:<provider>`, `anon`, `admin`). */
  readonly amr: readonly string[];
  readonly jti?: string;
}

/** Why a token did not pass, short of a verdict on its claims. */
export const INVALID = 0;
/** Well-formed, but signed with a key we do not hold (yet). */
export const UNKNOWN_KID = 1;
export type Unverified = typeof INVALID | typeof UNKNOWN_KID;

const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** An Ed25519 signature is 64 bytes: 86 base64url characters, unpadded. */
const SIGNATURE_CHARS = 86;
/** Header members that name other keys or demand extensions: never ours, never honoured. */
const FOREIGN_HEADERS = ["jku", "jwk", "x5u", "x5c", "crit"];
/** A header encoding is cached only while there are few (one per key, in practice). */
const MAX_CACHED_HEADERS = 64;

export interface Expected {
  issuer: string;
  audience: string;
}

export class TokenChecker {
  /** header segment → its `kid`, for headers already found well-formed. */
  private headers = new Map<string, string>();

  constructor(
    private readonly expected: Expected,
    private readonly key: (kid: string) => KeyObject | undefined,
  ) {}

  check(token: string): Claims | Unverified {
    const dot1 = token.indexOf(".");
    const dot2 = dot1 < 0 ? -1 : token.indexOf(".", dot1 + 1);
    if (dot1 <= 0 || dot2 < 0 || token.indexOf(".", dot2 + 1) >= 0) return INVALID;
    if (token.length - dot2 - 1 !== SIGNATURE_CHARS || dot2 - dot1 <= 1) return INVALID;
    const headerSegment = token.slice(0, dot1);
    const payloadSegment = token.slice(dot1 + 1, dot2);
    const signatureSegment = token.slice(dot2 + 1);
    if (!BASE64URL.test(payloadSegment) || !BASE64URL.test(signatureSegment)) return INVALID;
    const kid = this.headers.get(headerSegment) ?? this.readHeader(headerSegment);
    if (kid === undefined) return INVALID;
    const key = this.key(kid);
    if (key === undefined) return UNKNOWN_KID;
    const signature = Buffer.from(signatureSegment, "base64url");
    // base64url decoding is lenient; the length check above and this one keep it exact.
    if (signature.length !== 64) return INVALID;
    if (!verifySignature(null, Buffer.from(token.slice(0, dot2), "latin1"), key, signature)) return INVALID;
    return this.readClaims(payloadSegment);
  }

  /** The `kid` of a header we accept, else `undefined`. */
  private readHeader(segment: string): string | undefined {
    if (!BASE64URL.test(segment)) return undefined;
    const header = parseJsonObject(segment);
    // The algorithm is ours to choose, never the token's: EdDSA or nothing.
    if (header === undefined || header.alg !== "EdDSA" || header.typ !== "at+jwt") return undefined;
    if (typeof header.kid !== "string" || header.kid === "") return undefined;
    if (FOREIGN_HEADERS.some((name) => name in header)) return undefined;
    if (this.headers.size < MAX_CACHED_HEADERS) this.headers.set(segment, header.kid);
    return header.kid;
  }

  private readClaims(segment: string): Claims | Unverified {
    const p = parseJsonObject(segment);
    if (p === undefined || p.iss !== this.expected.issuer) return INVALID;
    const aud = p.aud;
    if (!(aud === this.expected.audience || (Array.isArray(aud) && aud.includes(this.expected.audience)))) return INVALID;
    if (typeof p.sid !== "string" || !isSeconds(p.exp) || !isSeconds(p.iat)) return INVALID;
    if (p.sub !== undefined && p.sub !== null && typeof p.sub !== "string") return INVALID;
    const amr = Array.isArray(p.amr) ? p.amr.filter((m): m is string => typeof m === "string") : [];
    const claims: { -readonly [K in keyof Claims]: Claims[K] } = { sid: p.sid, iat: p.iat as number, exp: p.exp as number, amr: Object.freeze(amr) };
    if (typeof p.sub === "string") claims.sub = p.sub;
    if (typeof p.jti === "string") claims.jti = p.jti;
    return Object.freeze(claims);
  }
}

function isSeconds(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
