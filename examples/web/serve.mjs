// The example page's server: serves examples/web/ and the SDK build (clients/js/dist) and
// forwards the API (/v1/…, /openapi.json, /.well-known/…) to sessiond, so the page and the
// API share one origin (no CORS needed; sessiond answers CORS only for `web.allowed_origins`). No dependencies.
//   SESSIOND_URL=http://127.0.0.1:8420 PORT=8080 node examples/web/serve.mjs
import { existsSync, readFileSync } from "node:fs";
import http from "node:http";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const sdk = join(here, "..", "..", "clients", "js", "dist");
const upstream = new URL(process.env.SESSIOND_URL || "http://127.0.0.1:8420");
const port = Number(process.env.PORT ?? 8080);
const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".map": "application/json", ".css": "text/css" };
const api = /^\/(v1\/|openapi\.json|\.well-known\/|healthz|readyz)/;

function file(res, path) {
  if (!existsSync(path)) return res.writeHead(404).end("not found");
  res.writeHead(200, { "content-type": types[extname(path)] ?? "application/octet-stream", "cache-control": "no-store" });
  res.end(readFileSync(path));
}

const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, "http://x");
  if (api.test(pathname)) {
    // Forward as is; the client IP travels in X-Forwarded-For (believed by sessiond only
    // if this proxy is in its trusted_proxies).
    const headers = { ...req.headers, host: upstream.host, "x-forwarded-for": req.socket.remoteAddress };
    const out = http.request(
      { host: upstream.hostname, port: upstream.port || 80, path: req.url, method: req.method, headers },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      },
    );
    out.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/problem+json" });
      res.end(JSON.stringify({ status: 502, code: "BAD_GATEWAY", detail: "sessiond is not reachable" }));
    });
    req.pipe(out);
    return;
  }
  if (pathname.startsWith("/sdk/")) return file(res, normalize(join(sdk, pathname.slice(5))).startsWith(sdk) ? join(sdk, pathname.slice(5)) : "");
  const path = normalize(join(here, pathname === "/" ? "index.html" : pathname));
  return file(res, path.startsWith(here) ? path : "");
});

server.listen(port, "127.0.0.1", () => {
  console.log(`example page on http://127.0.0.1:${server.address().port}/ (API forwarded to ${upstream.origin})`);
});
