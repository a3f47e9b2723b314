// Hono without importing it: a middleware over the parts of its context it uses.
import type { Claims } from "../jwt.js";
import type { Verifier } from "../verifier.js";
import { authenticate, isRefusal } from "./shared.js";

export interface HonoLikeContext {
  req: { header(name: string): string | undefined };
  set(key: "sessiond", value: Claims): void;
}

/** For `new Hono<SessiondEnv>()`, so `c.get("sessiond")` is typed. */
export type SessiondEnv = { Variables: { sessiond: Claims } };

/**
 * `app.use("/api/*", sessiondHono(verifier))`: a good token goes on with
 * `c.get("sessiond")` set to its claims; any other is answered with sessiond's problem+json.
 */
export function sessiondHono(verifier: Verifier) {
  return async function sessiondMiddleware(c: HonoLikeContext, next: () => Promise<void>): Promise<Response | void> {
    const verdict = await authenticate(verifier, c.req.header("authorization"));
    if (!isRefusal(verdict)) {
      c.set("sessiond", verdict);
      await next();
      return;
    }
    return new Response(JSON.stringify(verdict.body), { status: verdict.status, headers: verdict.headers });
  };
}
