// The JWT attack set: tokens a verifier must refuse as TOKEN_INVALID, each built from a
// real sessiond token and its JWKS.
import { createHmac, generateKeyPairSync, sign } from "node:crypto";

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const parts = (token) => token.split(".");
const decode = (segment) => JSON.parse(Buffer.from(segment, "base64url").toString());

/** `{name: token}` for every attack on `good` (a valid token) given the server's `jwks`. */
export function attackTokens(good, jwks) {
  const [h, p, s] = parts(good);
  const header = decode(h);
  const payload = decode(p);
  const attacker = generateKeyPairSync("ed25519");
  const attackerJwk = attacker.publicKey.export({ format: "jwk" });
  const signed = (hdr, pl = payload) => {
    const input = `${b64(hdr)}.${b64(pl)}`;
    return `${input}.${sign(null, Buffer.from(input), attacker.privateKey).toString("base64url")}`;
  };
  const publicX = jwks.keys[0].x;
  const hsInput = `${b64({ ...header, alg: "HS256" })}.${p}`;
  return {
    "alg none": `${b64({ ...header, alg: "none" })}.${p}.`,
    "alg none, signature kept": `${b64({ ...header, alg: "none" })}.${p}.${s}`,
    "HS256 with the public key as secret": `${hsInput}.${createHmac("sha256", Buffer.from(publicX, "base64url")).update(hsInput).digest("base64url")}`,
    "HS256 with the JWK text as secret": `${hsInput}.${createHmac("sha256", JSON.stringify(jwks.keys[0])).update(hsInput).digest("base64url")}`,
    "unknown kid": signed({ ...header, kid: "not-a-key-of-sessiond" }),
    "path kid": signed({ ...header, kid: "../../../../etc/passwd" }),
    "jku header": signed({ ...header, kid: "attacker", jku: "http://127.0.0.1:9/jwks.json" }),
    "jwk header": signed({ ...header, kid: "attacker", jwk: attackerJwk }),
    "jwk header with the real kid": signed({ ...header, jwk: attackerJwk }),
    "real kid, signed by another key": signed(header),
    "typ JWT": signed({ ...header, typ: "JWT" }),
    "typ JWT, otherwise the real token": `${b64({ ...header, typ: "JWT" })}.${p}.${s}`,
    "no kid": `${b64({ alg: header.alg, typ: header.typ })}.${p}.${s}`,
    "padded segment": `${h}.${p}==.${s}`,
    "padded signature": `${h}.${p}.${s}==`,
    "non-base64url segment": `${h}.${p.slice(0, -2)}+/.${s}`,
    "truncated signature": `${h}.${p}.${s.slice(0, -4)}`,
    "flipped signature": `${h}.${p}.${s[0] === "A" ? "B" : "A"}${s.slice(1)}`,
    "changed payload": `${h}.${b64({ ...payload, sub: "someone-else" })}.${s}`,
    "wrong issuer": `${h}.${b64({ ...payload, iss: "evil" })}.${s}`,
    "two segments": `${h}.${p}`,
    "four segments": `${good}.${s}`,
    "empty": "",
    garbage: "garbage",
    "dots only": "..",
    "spaces": `${h} .${p}.${s}`,
  };
}
