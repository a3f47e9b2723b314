/** Why a token was refused, with the codes sessiond itself answers. */
export type VerifyErrorCode = "TOKEN_INVALID" | "TOKEN_EXPIRED" | "SESSION_REVOKED" | "REVOCATION_FEED_STALE";

const TITLES: Record<VerifyErrorCode | "TOKEN_NOT_PROVIDED", string> = {
  TOKEN_NOT_PROVIDED: "No bearer token was provided",
  TOKEN_INVALID: "The token is invalid",
  TOKEN_EXPIRED: "The token has expired",
  SESSION_REVOKED: "The session was revoked",
  REVOCATION_FEED_STALE: "The revocation feed is stale",
};

export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  /** 401, or 503 for a stale feed (nothing can be known to be unrevoked). */
  readonly status: 401 | 503;
  /** For `SESSION_REVOKED`: why the session ended (`logout`, `user_deactivated`, …). */
  readonly revokedReason: string | undefined;
  /** For `TOKEN_EXPIRED`: when, in seconds since the epoch. */
  readonly expiredAt: number | undefined;

  constructor(code: VerifyErrorCode, options: { revokedReason?: string; expiredAt?: number } = {}) {
    super(TITLES[code] + (options.revokedReason ? ` (${options.revokedReason})` : ""));
    this.name = "VerifyError";
    this.code = code;
    this.status = code === "REVOCATION_FEED_STALE" ? 503 : 401;
    this.revokedReason = options.revokedReason;
    this.expiredAt = options.expiredAt;
  }
}

// Refusals that carry nothing per token are made once: a flood of garbage tokens then
// costs no allocation (and no stack capture) per request.
export const TOKEN_INVALID = new VerifyError("TOKEN_INVALID");
export const FEED_STALE = new VerifyError("REVOCATION_FEED_STALE");

/** Thrown by `createVerifier` when sessiond cannot be reached or refuses the verifier key. */
export class StartError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "StartError";
  }
}

/** The problem+json body sessiond answers for the same refusal (RFC 9457). */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  revoked_reason?: string;
}

/** A refusal as an HTTP answer: status, headers and the problem+json body. */
export interface Refusal {
  status: 401 | 503;
  headers: Record<string, string>;
  body: ProblemBody;
}

/**
 * The answer to send for a refused request: `error` is what `verify` threw, or `null`
 * when the request had no bearer token (`TOKEN_NOT_PROVIDED`). 401 answers carry
 * `WWW-Authenticate: Bearer`. Anything that is not a `VerifyError` is rethrown.
 */
export function refusal(error: unknown): Refusal {
  if (error !== null && !(error instanceof VerifyError)) throw error;
  const code = error === null ? "TOKEN_NOT_PROVIDED" : error.code;
  const status = error === null ? 401 : error.status;
  const body: ProblemBody = { type: `urn:sessiond:problem:${code.toLowerCase()}`, title: TITLES[code], status, code };
  if (error?.revokedReason !== undefined) body.revoked_reason = error.revokedReason;
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (status === 401) headers["www-authenticate"] = "Bearer";
  return { status, headers, body };
}

/** The token of an `Authorization: Bearer <token>` header value, or `null`. */
export function bearerToken(authorization: string | string[] | undefined | null): string | null {
  if (typeof authorization !== "string") return null;
  // The scheme is case-insensitive (RFC 9110); one space, then the token.
  if (authorization.length < 8 || authorization.slice(0, 7).toLowerCase() !== "bearer ") return null;
  const token = authorization.slice(7).trim();
  return token === "" ? null : token;
}
