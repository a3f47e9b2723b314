// The fallback while the feed is stale: ask sessiond itself about the token. Concurrent
// checks of one token share one request. Anything but a clear answer fails closed.
import { FEED_STALE, VerifyError } from "./errors.js";

/** Introspection is on the request path: it may not hang a request for long. */
const INTROSPECT_TIMEOUT_MS = 5_000;

export class Introspection {
  calls = 0;
  private pending = new Map<string, Promise<true | VerifyError>>();

  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  /** `true` if sessiond says the token is active, else the refusal; never rejects. */
  ask(token: string): Promise<true | VerifyError> {
    let answer = this.pending.get(token);
    if (answer === undefined) {
      answer = this.introspect(token).finally(() => this.pending.delete(token));
      this.pending.set(token, answer);
    }
    return answer;
  }

  private async introspect(token: string): Promise<true | VerifyError> {
    this.calls++;
    try {
      const active = await this.post<{ active?: unknown }>("/v1/introspect", token, true);
      if (active?.active === true) return true;
      if (active?.active !== false) return FEED_STALE;
      // Introspection says only "not active"; the public validate call says why.
      const why = await this.post<{ reason?: unknown; revoked_reason?: unknown }>("/v1/token/validate", token, false);
      if (why?.reason === "TOKEN_EXPIRED") return new VerifyError("TOKEN_EXPIRED");
      const reason =
        typeof why?.revoked_reason === "string" ? why.revoked_reason : typeof why?.reason === "string" ? why.reason.toLowerCase() : "inactive";
      return new VerifyError("SESSION_REVOKED", { revokedReason: reason });
    } catch {
      return FEED_STALE;
    }
  }

  /** The JSON answer of a 200, `null` for any other status or an unreadable answer. */
  private async post<T>(path: string, token: string, authorized: boolean): Promise<T | null> {
    const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
    if (authorized) headers.authorization = `Bearer ${this.apiKey}`;
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method: "POST",
        headers,
        body: JSON.stringify({ token }),
        signal: AbortSignal.timeout(INTROSPECT_TIMEOUT_MS),
      });
    } catch (e) {
      if (authorized) throw e;
      return null;
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      if (authorized) throw new Error(`introspection answered ${response.status}`);
      return null;
    }
    return (await response.json()) as T;
  }
}
