// Fastify without importing it: an `onRequest` hook, and a plugin that installs it.
import type { Claims } from "../jwt.js";
import type { Verifier } from "../verifier.js";
import { authenticate, isRefusal } from "./shared.js";

export interface FastifyLikeRequest {
  headers: { authorization?: string | undefined };
  sessiond?: Claims | null;
}

export interface FastifyLikeReply {
  code(status: number): FastifyLikeReply;
  header(name: string, value: string): FastifyLikeReply;
  send(payload: string): unknown;
}

export interface FastifyLikeInstance {
  decorateRequest(name: string, value: null): unknown;
  hasRequestDecorator?(name: string): boolean;
  addHook(name: "onRequest", hook: (request: FastifyLikeRequest, reply: FastifyLikeReply) => Promise<unknown>): unknown;
}

/**
 * An `onRequest` hook: `fastify.addHook("onRequest", sessiondFastifyHook(verifier))`, or in
 * a route's `onRequest` option. A good token sets `request.sessiond`; any other is answered
 * with sessiond's problem+json and the route never runs.
 */
export function sessiondFastifyHook(verifier: Verifier) {
  return async function sessiondOnRequest(request: FastifyLikeRequest, reply: FastifyLikeReply): Promise<unknown> {
    const verdict = await authenticate(verifier, request.headers.authorization);
    if (!isRefusal(verdict)) {
      request.sessiond = verdict;
      return;
    }
    reply.code(verdict.status);
    for (const [name, value] of Object.entries(verdict.headers)) reply.header(name, value);
    // An async hook that answers returns the reply, so Fastify stops there.
    return reply.send(JSON.stringify(verdict.body));
  };
}

/**
 * A plugin protecting every route of the context it is registered in (and its children):
 * `await app.register(sessiondFastify(verifier))`. Like plugins wrapped by
 * `fastify-plugin`, it is not encapsulated, so its hook applies to the registering context
 * rather than to an empty child of its own.
 */
export function sessiondFastify(verifier: Verifier) {
  const hook = sessiondFastifyHook(verifier);
  const plugin = async function sessiondPlugin(fastify: FastifyLikeInstance): Promise<void> {
    if (!fastify.hasRequestDecorator?.("sessiond")) fastify.decorateRequest("sessiond", null);
    fastify.addHook("onRequest", hook);
  };
  // What fastify-plugin sets: Fastify then runs the plugin in the registering context.
  Object.assign(plugin, { [Symbol.for("skip-override")]: true, [Symbol.for("fastify.display-name")]: "@sessiond/verify" });
  return plugin;
}
