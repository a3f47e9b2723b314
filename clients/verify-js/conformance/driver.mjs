// The conformance driver (clients/VERIFIER-CONFORMANCE.md): an Express app protecting
// GET /protected with the library's middleware, and GET /stats with the deny-set's size.
// Prints `listening <port>` once ready; exits on SIGTERM; exits 1 if the verifier cannot start.
import express from "express";

import { createVerifier, sessiondExpress } from "../dist/index.js";

function required(name) {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`driver: ${name} is not set\n`);
    process.exit(1);
  }
  return value;
}

const options = {
  url: required("SESSIOND_URL"),
  apiKey: required("SESSIOND_VERIFIER_KEY"),
  issuer: required("SESSIOND_ISSUER"),
  audience: required("SESSIOND_AUDIENCE"),
};
if (process.env.STALENESS_MS) options.stalenessBoundMs = Number(process.env.STALENESS_MS);
if (process.env.JWKS_COOLDOWN_MS) options.jwksCooldownMs = Number(process.env.JWKS_COOLDOWN_MS);

let verifier;
try {
  verifier = await createVerifier(options);
} catch (e) {
  process.stderr.write(`driver: the verifier could not start: ${e.message}\n`);
  process.exit(1);
}

const app = express();
app.get("/protected", sessiondExpress(verifier), (req, res) => {
  res.json({ sub: req.sessiond.sub ?? null, sid: req.sessiond.sid });
});
app.get("/stats", (_req, res) => {
  const { sessions, users } = verifier.deniedCount();
  res.json({ denied_sessions: sessions, denied_users: users });
});

const server = app.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
server.on("error", (e) => {
  process.stderr.write(`driver: cannot listen: ${e.message}\n`);
  process.exit(1);
});

process.on("SIGTERM", async () => {
  server.closeAllConnections?.();
  server.close();
  await verifier.close();
  process.exit(0);
});
