// Compile-time check that the structural types fit the real frameworks' own types (Fastify
// and Hono ship theirs): `tsc -p test/types` fails if an integration stopped fitting.
import Fastify from "fastify";
import { Hono } from "hono";

import { sessiondFastify, sessiondFastifyHook, sessiondHono, type SessiondEnv, type Verifier } from "../../src/index.js";

declare const verifier: Verifier;

const fastify = Fastify();
await fastify.register(sessiondFastify(verifier));
fastify.get("/one", { onRequest: sessiondFastifyHook(verifier) }, async () => "ok");
fastify.addHook("onRequest", sessiondFastifyHook(verifier));

const hono = new Hono<SessiondEnv>();
hono.use("/api/*", sessiondHono(verifier));
hono.get("/api/me", (c) => c.json({ sid: c.get("sessiond").sid }));

// an app without the env type takes the middleware too
const plain = new Hono();
plain.use(sessiondHono(verifier));
