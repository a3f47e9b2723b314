// Builds dist/: index.js (ESM), index.cjs (CommonJS), index.d.ts (+ per-module .d.ts), and
// prints the size of the minified ESM bundle, raw and gzipped.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
const common = { entryPoints: [join(root, "src/index.ts")], bundle: true, target: "es2020", sourcemap: true, logLevel: "warning" };
await build({ ...common, format: "esm", outfile: join(dist, "index.js") });
await build({ ...common, format: "cjs", outfile: join(dist, "index.cjs") });
const min = await build({ ...common, sourcemap: false, format: "esm", minify: true, write: false, outfile: "min.js" });
execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.json"), "--emitDeclarationOnly", "--outDir", dist], { stdio: "inherit" });
const code = min.outputFiles[0].contents;
const size = { minified: code.length, gzip: gzipSync(code, { level: 9 }).length };
writeFileSync(join(dist, "size.json"), JSON.stringify(size) + "\n");
console.log(`@sessiond/client ESM bundle: ${size.minified} B minified, ${size.gzip} B minified+gzip`);
// the CJS build must load in Node
const cjs = readFileSync(join(dist, "index.cjs"), "utf8");
if (!cjs.includes("module.exports")) throw new Error("index.cjs is not CommonJS");
