// Builds dist/: index.js (ESM), index.cjs (CommonJS), index.d.ts (+ per-module .d.ts), the
// same for webhooks (the `@sessiond/client/webhooks` entry, for servers receiving sessiond's
// webhooks; apart from the client so no app bundle carries it), and prints the size of the
// minified ESM bundles, raw and gzipped.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
const sizes = {};
for (const [entry, label] of [["index", "@sessiond/client"], ["webhooks", "@sessiond/client/webhooks"]]) {
  const common = { entryPoints: [join(root, `src/${entry}.ts`)], bundle: true, target: "es2020", sourcemap: true, logLevel: "warning" };
  await build({ ...common, format: "esm", outfile: join(dist, `${entry}.js`) });
  await build({ ...common, format: "cjs", outfile: join(dist, `${entry}.cjs`) });
  const min = await build({ ...common, sourcemap: false, format: "esm", minify: true, write: false, outfile: "min.js" });
  const code = min.outputFiles[0].contents;
  sizes[entry] = { minified: code.length, gzip: gzipSync(code, { level: 9 }).length };
  console.log(`${label} ESM bundle: ${sizes[entry].minified} B minified, ${sizes[entry].gzip} B minified+gzip`);
  // the CJS build must load in Node
  const cjs = readFileSync(join(dist, `${entry}.cjs`), "utf8");
  if (!cjs.includes("module.exports")) throw new Error(`${entry}.cjs is not CommonJS`);
}
execFileSync(join(root, "node_modules/.bin/tsc"), ["-p", join(root, "tsconfig.json"), "--emitDeclarationOnly", "--outDir", dist], { stdio: "inherit" });
// size.json: the client (index) at the top level, as before; the webhooks entry beside it.
writeFileSync(join(dist, "size.json"), JSON.stringify({ ...sizes.index, webhooks: sizes.webhooks }) + "\n");
