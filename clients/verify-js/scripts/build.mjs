// Builds dist/: index.js (ESM), index.cjs (CommonJS) and the .d.ts files. Node built-ins
// stay imports; there is nothing else to bundle (no runtime dependencies).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
const common = {
  entryPoints: [join(root, "src/index.ts")],
  bundle: true,
  platform: "node",
  target: "node18",
  sourcemap: true,
  logLevel: "warning",
};
await build({ ...common, format: "esm", outfile: join(dist, "index.js") });
await build({ ...common, format: "cjs", outfile: join(dist, "index.cjs") });
execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.json"), "--emitDeclarationOnly", "--outDir", dist], { stdio: "inherit" });
// the CJS build must be CommonJS, and neither build may pull in a framework
const cjs = readFileSync(join(dist, "index.cjs"), "utf8");
if (!cjs.includes("module.exports")) throw new Error("index.cjs is not CommonJS");
for (const file of ["index.js", "index.cjs"]) {
  const code = readFileSync(join(dist, file), "utf8");
  for (const framework of ["express", "fastify", "hono"])
    if (new RegExp(`(from|require\\()\\s*["']${framework}`).test(code)) throw new Error(`${file} imports ${framework}`);
}
console.log("@sessiond/verify built");
