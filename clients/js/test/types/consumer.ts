// Compiled (tsc --strict, no emit) by `npm run typecheck` against the built declarations:
// what an app writes type-checks, and misuse does not.
import {
  SessiondError,
  appStateLifecycle,
  axiosInterceptor,
  createClient,
  kvStore,
  secureStore,
  type CookieTokenResponse,
  type SessionEndedEvent,
  type SessionState,
  type TokenResponse,
  type WhoAmI,
} from "../../dist/index.js";
import {
  signWebhook,
  verifyWebhook,
  WebhookVerificationError,
  type WebhookEvent,
  type WebhookVerificationReason,
} from "@sessiond/client/webhooks"; // the package's exports map, as an app resolves it

export async function app(): Promise<void> {
  const auth = createClient({ baseUrl: "https://auth.example.com", device: { label: "phone" } });
  const grant: TokenResponse = await auth.loginWithPassword({ email: "a@example.com", password: "x".repeat(8) });
  const sid: string = grant.session.id;
  const me: WhoAmI = await auth.whoami();
  const email: string | null | undefined = me.user?.email;
  const off = auth.on("sessionEnded", (e: SessionEndedEvent) => void e.revoked_reason?.toUpperCase());
  auth.on("refreshed", (s) => void (s.remote satisfies boolean));
  auth.on("sessionChanged", (s: SessionState | null) => void s?.sessionId);
  off();
  const token: string = await auth.getAccessToken();
  const res: Response = await auth.fetch("/api", { method: "POST", body: "{}" });
  await auth.setSessionData({ theme: "dark" });
  const data = await auth.getSessionData<{ theme?: string }>();
  kvStore({ getItem: async () => null, setItem: async () => {}, removeItem: async () => {} });
  secureStore({ getItemAsync: async () => null, setItemAsync: async () => {}, deleteItemAsync: async () => {} });
  appStateLifecycle({ addEventListener: () => ({ remove() {} }) });
  try {
    await auth.refresh();
  } catch (e) {
    if (e instanceof SessiondError && e.terminal) void e.code;
  }
  void [sid, email, token, res, data, axiosInterceptor];
  // @ts-expect-error: a login needs a password
  await auth.loginWithPassword({ email: "a@example.com" });
  // @ts-expect-error: no such event
  auth.on("loggedOut", () => {});
  auth.dispose();
  // Cookie mode: the login answer is typed without tokens.
  const web = createClient({ transport: "cookie" });
  const answer: CookieTokenResponse = await web.loginWithPassword({ email: "a@example.com", password: "x".repeat(8) });
  void (answer.token_transport satisfies "cookie");
  // @ts-expect-error: no token in a cookie-mode answer
  void answer.access_token;
  web.dispose();
}

// The webhooks entry (`@sessiond/client/webhooks`): a receiver's code type-checks.
export async function receiver(
  rawBody: Uint8Array,
  nodeHeaders: Record<string, string | string[] | undefined>,
): Promise<void> {
  const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  try {
    const event: WebhookEvent = await verifyWebhook(secret, nodeHeaders, rawBody, { toleranceSeconds: 60 });
    void (event.type satisfies string | undefined);
    const typed = await verifyWebhook<{ type: "x"; data: { n: number } }>(secret, new Headers(), "{}", {
      now: new Date(),
    });
    void (typed.data.n satisfies number);
  } catch (e) {
    if (e instanceof WebhookVerificationError) {
      const reason: WebhookVerificationReason = e.reason;
      void reason;
    }
  }
  const signature: string = await signWebhook(secret, "msg_1", Math.floor(Date.now() / 1000), "{}");
  void signature;
  // @ts-expect-error: the body is the raw string or bytes, never a parsed object
  await verifyWebhook(secret, nodeHeaders, { type: "x" });
  // @ts-expect-error: no such option
  await verifyWebhook(secret, nodeHeaders, "{}", { tolerance: 60 });
  // @ts-expect-error: no such reason
  void ((r: WebhookVerificationReason) => r === "expired");
}
