import { bearerToken, refusal, VerifyError, type Refusal } from "../errors.js";
import type { Claims } from "../jwt.js";
import type { Verifier } from "../verifier.js";

/**
 * The request's verdict: the claims, or the refusal to answer. Synchronous unless the
 * verifier must go to the network (an unknown `kid`, or introspection while stale).
 */
export function authenticate(verifier: Verifier, authorization: string | string[] | undefined | null): Claims | Refusal | Promise<Claims | Refusal> {
  const token = bearerToken(authorization);
  if (token === null) return refusal(null);
  const result = verifier.check(token);
  if (result instanceof Promise) return result.then(toVerdict);
  return toVerdict(result);
}

function toVerdict(result: Claims | VerifyError): Claims | Refusal {
  return result instanceof VerifyError ? refusal(result) : result;
}

export function isRefusal(verdict: Claims | Refusal): verdict is Refusal {
  return "body" in verdict;
}
