import { StartError } from "./errors.js";

/** The longest a JWKS, snapshot or introspection request may take. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** GETs `url` (with `apiKey` as the bearer, when given) and reads the JSON answer. */
export async function getJson<T>(url: string, apiKey?: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    throw new StartError(`sessiond could not be reached at ${url}: ${(e as Error).message}`);
  }
  if (response.status !== 200) {
    const body = await response.text().catch(() => "");
    throw new StartError(`sessiond refused ${url} (${response.status}): ${body}`, response.status);
  }
  return (await response.json()) as T;
}
