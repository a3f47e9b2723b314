import type { SessiondClient } from "./client.js";

interface AxiosConfig {
  headers?: unknown;
  _sessiond?: { token: string; retried?: boolean };
}

/** The part of an axios instance the interceptor uses (no dependency on axios). */
export interface AxiosLike {
  interceptors: {
    request: { use(onFulfilled: (c: any) => any): number; eject(id: number): void };
    response: { use(onFulfilled: undefined, onRejected: (e: any) => any): number; eject(id: number): void };
  };
  request(config: any): Promise<unknown>;
}

/**
 * Attaches the access token to every request of an axios instance; on `401 TOKEN_EXPIRED`
 * refreshes once and retries once (never loops). Returns the function that detaches it.
 * For ky (and anything else that takes a `fetch`): `ky.create({ fetch: client.fetch })`.
 */
export function axiosInterceptor(client: SessiondClient, axios: AxiosLike): () => void {
  const req = axios.interceptors.request.use(async (config: AxiosConfig) => {
    const token = await client.getAccessToken();
    const h = (config.headers ??= {}) as { set?: (k: string, v: string) => void } & Record<string, unknown>;
    if (typeof h.set === "function") h.set("Authorization", "Bearer " + token);
    else h.Authorization = "Bearer " + token;
    config._sessiond = { token, retried: config._sessiond?.retried };
    return config;
  });
  const res = axios.interceptors.response.use(undefined, async (error: any) => {
    const config = error?.config as AxiosConfig | undefined;
    const r = error?.response;
    const sent = config?._sessiond;
    if (config && r && sent && !sent.retried && (await client.handleUnauthorized(r.status, r.data?.code, sent.token, r.data))) {
      config._sessiond = { token: sent.token, retried: true };
      return axios.request(config);
    }
    throw error;
  });
  return () => {
    axios.interceptors.request.eject(req);
    axios.interceptors.response.eject(res);
  };
}
