export { SessiondClient, createClient } from "./client.js";
export type { ClientOptions, ClientEvents, SessionEndedEvent, SessionState } from "./client.js";
export { SessiondError, TERMINAL_CODES } from "./errors.js";
export type { Problem } from "./errors.js";
export { memoryStore, webStore, kvStore, secureStore } from "./storage.js";
export type {
  SessionStore,
  StoredSession,
  WebStorageLike,
  AsyncKeyValue,
  SecureStoreLike,
  KeyValueStoreOptions,
} from "./storage.js";
export { browserLifecycle, appStateLifecycle } from "./lifecycle.js";
export type { Lifecycle, AppStateLike } from "./lifecycle.js";
export { axiosInterceptor } from "./interceptors.js";
export type { AxiosLike } from "./interceptors.js";
export type * from "./api.js";
