// Express (4 and 5) without importing it: the middleware sees only what it uses.
import type { Claims } from "../jwt.js";
import type { Verifier } from "../verifier.js";
import { authenticate, isRefusal } from "./shared.js";
import type { Refusal } from "../errors.js";

/** The parts of Express's request the middleware reads and writes. */
export interface ExpressLikeRequest {
  headers: { authorization?: string | undefined };
  sessiond?: Claims;
}

/** The parts of Express's (or node:http's) response the middleware uses. */
export interface ExpressLikeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
}

/**
 * `app.use(sessiondExpress(verifier))` or per route: a request with a good token goes on
 * with `req.sessiond` set to its claims; any other is answered with sessiond's
 * problem+json (401 with `WWW-Authenticate: Bearer`, or 503 while the feed is stale).
 */
export function sessiondExpress(verifier: Verifier) {
  return function sessiondMiddleware(req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void): void {
    const verdict = authenticate(verifier, req.headers.authorization);
    if (verdict instanceof Promise) {
      verdict.then((v) => settle(v, req, res, next), next);
      return;
    }
    settle(verdict, req, res, next);
  };
}

function settle(verdict: Claims | Refusal, req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void): void {
  if (!isRefusal(verdict)) {
    req.sessiond = verdict;
    next();
    return;
  }
  res.statusCode = verdict.status;
  for (const [name, value] of Object.entries(verdict.headers)) res.setHeader(name, value);
  res.end(JSON.stringify(verdict.body));
}
