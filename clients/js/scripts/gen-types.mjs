// Generates src/api.ts (the wire types) from sessiond's /openapi.json.
//   node scripts/gen-types.mjs            starts $SESSIOND_BIN (or ../../target/debug/sessiond) on port 0
//   SESSIOND_URL=http://127.0.0.1:8420 node scripts/gen-types.mjs
//   node scripts/gen-types.mjs --print    writes to stdout instead (the tests compare)
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));

/** The TypeScript for one OpenAPI 3.1 schema. */
function ts(schema, indent = "") {
  if (!schema || Object.keys(schema).length === 0) return "unknown";
  if (schema.$ref) return schema.$ref.split("/").pop();
  const alts = schema.oneOf ?? schema.anyOf;
  if (alts) return alts.map((s) => ts(s, indent)).join(" | ");
  if (schema.allOf) return schema.allOf.map((s) => ts(s, indent)).join(" & ");
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  const types = Array.isArray(schema.type) ? schema.type : [schema.type ?? (schema.properties ? "object" : undefined)];
  return types
    .map((t) => {
      switch (t) {
        case "string":
          return "string";
        case "integer":
        case "number":
          return "number";
        case "boolean":
          return "boolean";
        case "null":
          return "null";
        case "array":
          return `${wrap(ts(schema.items, indent))}[]`;
        case "object":
          if (!schema.properties) return "Record<string, unknown>";
          return objectBody(schema, indent);
        default:
          return "unknown";
      }
    })
    .join(" | ");
}

const wrap = (t) => (/[|&]/.test(t) ? `(${t})` : t);

function objectBody(schema, indent) {
  const required = new Set(schema.required ?? []);
  const inner = indent + "  ";
  const lines = Object.entries(schema.properties).map(([name, prop]) => {
    const doc = prop.description ? `${inner}/** ${prop.description.replace(/\*\//g, "*\\/").split("\n").join(" ")} */\n` : "";
    return `${doc}${inner}${name}${required.has(name) ? "" : "?"}: ${ts(prop, inner)};`;
  });
  return `{\n${lines.join("\n")}\n${indent}}`;
}

export function generate(openapi) {
  const schemas = structuredClone(openapi.components?.schemas ?? {});
  // The exchange providers are each deployment's own configuration (the server lists
  // its own as an `enum`); the SDK's types take any provider name.
  delete schemas.ExchangeRequest?.properties?.provider?.enum;
  let out =
    "// Generated from sessiond's /openapi.json by scripts/gen-types.mjs: do not edit.\n" +
    "// The tests regenerate it from the server they start and fail on any difference.\n\n";
  for (const name of Object.keys(schemas).sort()) {
    const s = schemas[name];
    const doc = s.description ? `/** ${s.description.replace(/\*\//g, "*\\/").split("\n").join(" ")} */\n` : "";
    if ((s.type === "object" || s.properties) && s.properties && !s.oneOf && !s.allOf)
      out += `${doc}export interface ${name} ${objectBody(s, "")}\n\n`;
    else out += `${doc}export type ${name} = ${ts(s)};\n\n`;
  }
  return out.trimEnd() + "\n";
}

async function main() {
  let url = process.env.SESSIOND_URL;
  let stop = async () => {};
  if (!url) {
    const { startServer } = await import("../test/harness.mjs");
    const server = await startServer();
    url = server.url;
    stop = () => server.stop();
  }
  try {
    const openapi = await (await fetch(url + "/openapi.json")).json();
    const text = generate(openapi);
    if (process.argv.includes("--print")) process.stdout.write(text);
    else {
      writeFileSync(join(here, "..", "src", "api.ts"), text);
      console.log("wrote src/api.ts");
    }
  } finally {
    await stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
