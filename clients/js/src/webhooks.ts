// Receiving sessiond's webhooks: checks the Standard Webhooks signature
// (https://www.standardwebhooks.com) of a request before its event is trusted.
//
//   webhook-id:        the event's id (the same on every retry: dedupe on it)
//   webhook-timestamp: integer seconds since the epoch of this attempt
//   webhook-signature: space-separated `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`
//
// The key is the base64 after `whsec_` in the endpoint's secret. WebCrypto only
// (`crypto.subtle`: Node >= 19, browsers, workers); no dependency. Imported as
// `@sessiond/client/webhooks`, apart from the client, so no app bundle carries it.

/** Why a webhook was refused. */
export type WebhookVerificationReason =
  /** `webhook-id`, `webhook-timestamp` or `webhook-signature` is absent or empty. */
  | "missing_headers"
  /** `webhook-timestamp` is not an integer number of seconds. */
  | "bad_timestamp"
  /** The timestamp is more than the tolerance before now (a replay, or a very late retry). */
  | "too_old"
  /** The timestamp is more than the tolerance after now (a clock far off). */
  | "too_new"
  /** No `v1` signature matches: a wrong secret, or an altered id, timestamp or body. */
  | "no_matching_signature"
  /** The secret given to the verifier is not `whsec_` + base64 (or plain base64) of a key. */
  | "bad_secret";

/** A webhook refused by {@link verifyWebhook}; answer it with a 4xx and do not act on it. */
export class WebhookVerificationError extends Error {
  readonly reason: WebhookVerificationReason;

  constructor(reason: WebhookVerificationReason, message?: string) {
    super(message ?? reason);
    this.name = "WebhookVerificationError";
    this.reason = reason;
  }
}

/**
 * The parsed JSON body of a webhook. A Standard Webhooks payload has `type` (the kind of
 * event), `timestamp` (when it happened, not when it was sent) and `data`; nothing is assumed
 * beyond it being an object. Pass your own type to {@link verifyWebhook} to narrow it.
 */
export interface WebhookEvent {
  type?: string;
  timestamp?: string;
  data?: unknown;
  [key: string]: unknown;
}

/**
 * The request's headers: a Fetch `Headers` (or anything with a case-insensitive `get`), or
 * a plain object with names in any case (Node's `req.headers`, a Lambda event's `headers`).
 * Several values of one header (an array, or keys differing only in case) are joined with
 * `", "` as HTTP folds them.
 */
export type WebhookHeaders =
  | { get(name: string): string | null | undefined }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

export interface VerifyWebhookOptions {
  /** How far the timestamp may be from now, either way, in seconds (default 300). */
  toleranceSeconds?: number;
  /** The time to check against: a `Date`, or seconds since the epoch (default: the clock). */
  now?: Date | number;
}

/** The default tolerance: 5 minutes either way. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = "whsec_";
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;
const TIMESTAMP = /^[0-9]{1,15}$/;
const encoder = new TextEncoder();

/**
 * Verifies a webhook and answers its event (the body's JSON).
 *
 * `body` must be the raw body exactly as received (a string, or bytes: a Node `Buffer` is
 * a `Uint8Array`), never JSON parsed and serialised again. Checks, in order: the secret,
 * the three headers, the timestamp's form, its distance from now (`toleranceSeconds`,
 * either way), then every `v1,` signature in constant time (other versions are ignored;
 * one match is enough, so a secret being rotated works). Rejects with a
 * {@link WebhookVerificationError} whose `reason` says which check failed. A verified body
 * that is not a JSON object rejects with a `SyntaxError`.
 *
 * Deduplicate on `webhook-id`: a retry of the same event carries the same id.
 */
export async function verifyWebhook<T = WebhookEvent>(
  secret: string,
  headers: WebhookHeaders,
  body: string | Uint8Array,
  options: VerifyWebhookOptions = {},
): Promise<T> {
  const tolerance = options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (typeof tolerance !== "number" || !(tolerance >= 0) || !Number.isFinite(tolerance))
    throw new RangeError("toleranceSeconds must be a finite number of seconds, 0 or more");
  const now = nowSeconds(options.now);
  const key = secretKey(secret);

  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !timestamp || !signatures)
    throw new WebhookVerificationError(
      "missing_headers",
      "webhook-id, webhook-timestamp and webhook-signature are all required",
    );
  if (!TIMESTAMP.test(timestamp))
    throw new WebhookVerificationError("bad_timestamp", "webhook-timestamp is not an integer number of seconds");
  const age = now - Number(timestamp);
  if (age > tolerance)
    throw new WebhookVerificationError("too_old", `webhook-timestamp is ${age} s old (tolerance ${tolerance} s)`);
  if (age < -tolerance)
    throw new WebhookVerificationError(
      "too_new",
      `webhook-timestamp is ${-age} s in the future (tolerance ${tolerance} s)`,
    );

  const expected = await hmacSha256(key, signedContent(id, timestamp, body));
  let matched = false;
  for (let entry of signatures.split(/\s+/)) {
    entry = entry.replace(/,+$/, ""); // a trailing comma: two header lines folded with ", "
    if (!entry.startsWith("v1,")) continue;
    const candidate = fromBase64(entry.slice(3));
    if (candidate && constantTimeEqual(candidate, expected)) matched = true;
  }
  if (!matched)
    throw new WebhookVerificationError("no_matching_signature", "no v1 signature matches this secret and request");

  const parsed: unknown = JSON.parse(typeof body === "string" ? body : new TextDecoder().decode(body));
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new SyntaxError("the webhook body is not a JSON object");
  return parsed as T;
}

/**
 * Signs like sessiond does: answers `v1,<base64 signature>`, the value of a
 * `webhook-signature` header (join several with a space). For a receiver's own tests.
 * `timestamp` is seconds since the epoch (or a `Date`, whole seconds taken).
 */
export async function signWebhook(
  secret: string,
  id: string,
  timestamp: number | Date,
  body: string | Uint8Array,
): Promise<string> {
  const seconds = timestamp instanceof Date ? Math.floor(timestamp.getTime() / 1000) : timestamp;
  if (!Number.isSafeInteger(seconds) || seconds < 0)
    throw new RangeError("timestamp must be a whole number of seconds since the epoch");
  const mac = await hmacSha256(secretKey(secret), signedContent(id, String(seconds), body));
  return "v1," + toBase64(mac);
}

function nowSeconds(now: Date | number | undefined): number {
  const seconds = now === undefined ? Date.now() / 1000 : now instanceof Date ? now.getTime() / 1000 : now;
  if (typeof seconds !== "number" || !Number.isFinite(seconds))
    throw new RangeError("now must be a Date or a finite number of seconds since the epoch");
  return Math.floor(seconds);
}

function secretKey(secret: string): Uint8Array<ArrayBuffer> {
  if (typeof secret !== "string")
    throw new WebhookVerificationError("bad_secret", "the webhook secret must be a string");
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = fromBase64(encoded);
  if (!key || key.length === 0)
    throw new WebhookVerificationError("bad_secret", "the webhook secret is not whsec_ followed by base64");
  return key;
}

function header(headers: WebhookHeaders, name: string): string {
  if (typeof (headers as { get?: unknown }).get === "function")
    return ((headers as { get(name: string): string | null | undefined }).get(name) ?? "").trim();
  const values: string[] = [];
  for (const [k, v] of Object.entries(headers as Record<string, string | readonly string[] | undefined>)) {
    if (v === undefined || k.toLowerCase() !== name) continue;
    if (typeof v === "string") values.push(v);
    else if (Array.isArray(v)) values.push(...v.filter((x): x is string => typeof x === "string"));
  }
  return values.map((v) => v.trim()).filter(Boolean).join(", ");
}

function signedContent(id: string, timestamp: string, body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  if (typeof body === "string") return encoder.encode(`${id}.${timestamp}.${body}`);
  if (!(body instanceof Uint8Array)) throw new TypeError("the webhook body must be a string or a Uint8Array");
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix);
  out.set(body, prefix.length);
  return out;
}

async function hmacSha256(key: Uint8Array<ArrayBuffer>, data: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new Error("WebCrypto (globalThis.crypto.subtle) is needed to check webhook signatures");
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

/** Equal length and equal bytes, in time that depends on the length only. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Standard base64 (`+/`), padding optional; null for anything else. */
function fromBase64(s: string): Uint8Array<ArrayBuffer> | null {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 61 /* = */) end--;
  const padding = s.length - end;
  if (padding > 2 || end % 4 === 1 || (padding > 0 && s.length % 4 !== 0)) return null;
  const out = new Uint8Array(Math.floor((end * 3) / 4));
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
    out += i + 1 < bytes.length ? B64[(n >> 6) & 63]! : "=";
    out += i + 2 < bytes.length ? B64[n & 63]! : "=";
  }
  return out;
}
