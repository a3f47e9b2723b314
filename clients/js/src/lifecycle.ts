/**
 * Tells the client that the app came back (a tab shown again, a phone woken, the network
 * back), so that a token that expired while asleep is refreshed before the next request.
 * Returns the function that unsubscribes.
 */
export type Lifecycle = (onResume: () => void) => () => void;

/** Browsers: `visibilitychange` to visible, `focus`, `online`, `pageshow` (bfcache). */
export const browserLifecycle: Lifecycle = (onResume) => {
  const onVisible = () => {
    if (document.visibilityState === "visible") onResume();
  };
  const events = ["focus", "online", "pageshow"];
  document.addEventListener("visibilitychange", onVisible);
  for (const e of events) addEventListener(e, onResume);
  return () => {
    document.removeEventListener("visibilitychange", onVisible);
    for (const e of events) removeEventListener(e, onResume);
  };
};

/** React Native's `AppState` (or anything shaped like it). */
export interface AppStateLike {
  addEventListener(type: "change", listener: (state: string) => void): { remove(): void };
}

/** React Native / Expo: resume when `AppState` turns `active`. */
export function appStateLifecycle(appState: AppStateLike): Lifecycle {
  return (onResume) => {
    const sub = appState.addEventListener("change", (state) => {
      if (state === "active") onResume();
    });
    return () => sub.remove();
  };
}
