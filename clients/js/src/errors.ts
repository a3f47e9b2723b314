/** The codes after which a session is over: storage is cleared and `sessionEnded` fires. */
export const TERMINAL_CODES: readonly string[] = [
  "SESSION_REVOKED",
  "SESSION_EXPIRED",
  "SESSION_INACTIVE",
  "REFRESH_TOKEN_REUSED",
  "REFRESH_TOKEN_EXPIRED",
  "REFRESH_TOKEN_INVALID",
  "USER_INACTIVE",
];

/** An RFC 9457 problem as sessiond answers it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
  revoked_reason?: string;
  retry_after?: number;
  [extra: string]: unknown;
}

/**
 * Every failure of the SDK. `status` is 0 when no HTTP answer arrived (`code` is then
 * `NETWORK_ERROR`, `TIMEOUT`, `NO_SESSION` or `DISPOSED`).
 */
export class SessiondError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Problem | null;
  /** Seconds the server asked us to wait (`Retry-After`), if it did. */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string, detail?: string, problem?: Problem | null, retryAfter?: number) {
    super(detail || code);
    this.name = "SessiondError";
    this.status = status;
    this.code = code;
    this.problem = problem ?? null;
    this.retryAfter = retryAfter;
  }

  /** Worth retrying later; the session is kept: network errors, timeouts, 408, 429, 5xx. */
  get transient(): boolean {
    const s = this.status;
    return s === 0 ? this.code === "NETWORK_ERROR" || this.code === "TIMEOUT" : s === 408 || s === 429 || s >= 500;
  }

  /** The session is over (see {@link TERMINAL_CODES}). */
  get terminal(): boolean {
    return TERMINAL_CODES.includes(this.code);
  }
}

/** Parses `Retry-After` (seconds or an HTTP date) or the problem's `retry_after`. */
export function retryAfterOf(header: string | null, problem: Problem | null): number | undefined {
  if (header) {
    const n = Number(header);
    if (Number.isFinite(n)) return Math.max(0, n);
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(0, (at - Date.now()) / 1000);
  }
  const p = problem?.retry_after;
  return typeof p === "number" ? p : undefined;
}
