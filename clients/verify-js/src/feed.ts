// Following sessiond's revocation feed: a snapshot to start from, then the event stream
// (Server-Sent Events read through fetch's body), reconnecting from the last cursor with
// a backoff; a cursor sessiond can no longer continue means a fresh snapshot.
import type { DenyList } from "./denylist.js";
import { getJson } from "./http.js";

interface Fact {
  type?: string;
  sid?: string;
  sub?: string;
  reason?: string;
  not_before?: string;
  max_exp?: string;
}

interface Page {
  events: Fact[];
  next_cursor: string;
}

/** sessiond heartbeats every 5 s; a stream silent for twice that is dead, whatever the socket says. */
const HEARTBEAT_MS = 5_000;
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5_000;

export interface FeedOptions {
  baseUrl: string;
  apiKey: string;
  stalenessBoundMs: number;
  denied: DenyList;
  /** The feed said `keys_changed`, or we re-snapshotted (and may have missed one). */
  onKeysChanged: () => void;
}

export class Feed {
  /** `performance.now()` when the feed last proved the deny-set up to date. */
  heard = performance.now();
  /** How many snapshots were taken (1 at start; more after an expired cursor). */
  snapshots = 0;
  /** How many times the stream was (re)connected. */
  connections = 0;
  private cursor = "0";
  private closed = false;
  private abort: AbortController | null = null;
  private wake: (() => void) | null = null;
  private readonly silenceMs: number;

  constructor(private readonly options: FeedOptions) {
    this.silenceMs = Math.max(2 * HEARTBEAT_MS, options.stalenessBoundMs / 2);
  }

  /** Replaces the deny-set with the live revocations and remembers the cursor to follow. */
  async snapshot(): Promise<void> {
    const page = await getJson<Page>(`${this.options.baseUrl}/v1/revocations/snapshot`, this.options.apiKey);
    if (typeof page.next_cursor !== "string" || !/^\d+$/.test(page.next_cursor)) throw new Error("a malformed snapshot cursor");
    this.snapshots++;
    this.options.denied.clear();
    for (const fact of page.events ?? []) this.apply(fact, false);
    this.cursor = page.next_cursor;
    this.heard = performance.now();
  }

  /** Follows the stream until `close()`; never rejects. */
  async follow(): Promise<void> {
    let retryMs = FIRST_RETRY_MS;
    let resnapshot = false;
    while (!this.closed) {
      try {
        if (resnapshot) {
          await this.snapshot();
          // Facts purged from under our cursor may have included a `keys_changed`.
          this.options.onKeysChanged();
          resnapshot = false;
        }
        const outcome = await this.streamOnce(() => {
          retryMs = FIRST_RETRY_MS;
        });
        if (outcome === "expired") {
          resnapshot = true;
          continue;
        }
      } catch {
        /* unreachable, refused, reset: retry below; staleness is what callers see */
      }
      if (this.closed) return;
      await this.sleep(retryMs * (0.75 + Math.random() / 2));
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    }
  }

  /** Ends the stream and the follower. */
  close(): void {
    this.closed = true;
    this.abort?.abort();
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** One connection: "expired" when sessiond cannot continue from our cursor, else "lost". */
  private async streamOnce(onConnected: () => void): Promise<"expired" | "lost"> {
    const abort = new AbortController();
    this.abort = abort;
    let lastChunk = performance.now();
    const watchdog = setInterval(() => {
      if (performance.now() - lastChunk > this.silenceMs) abort.abort();
    }, 1000);
    watchdog.unref?.();
    try {
      const response = await fetch(`${this.options.baseUrl}/v1/revocations/stream`, {
        headers: { authorization: `Bearer ${this.options.apiKey}`, accept: "text/event-stream", "last-event-id": this.cursor },
        signal: abort.signal,
      });
      if (response.status === 409) {
        await response.body?.cancel();
        return "expired";
      }
      if (response.status !== 200 || !response.body) {
        await response.body?.cancel();
        return "lost";
      }
      this.connections++;
      onConnected();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return "lost";
        lastChunk = performance.now();
        buffer += decoder.decode(value, { stream: true });
        if (buffer.includes("\r")) buffer = buffer.replace(/\r\n?/g, "\n");
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (this.onEvent(block) === "expired") {
            await reader.cancel().catch(() => {});
            return "expired";
          }
        }
      }
    } catch {
      return "lost";
    } finally {
      clearInterval(watchdog);
      if (this.abort === abort) this.abort = null;
    }
  }

  private onEvent(block: string): "expired" | undefined {
    let name = "";
    let id: string | undefined;
    let data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("id:")) id = line.slice(3).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trimStart();
    }
    if (name === "") return undefined; // a comment or keep-alive
    if (name === "cursor_expired") return "expired";
    if (name === "heartbeat") {
      this.options.denied.evict(Date.now());
    } else {
      try {
        this.apply(JSON.parse(data) as Fact, true);
      } catch {
        /* a fact we cannot read is one we cannot act on; the cursor still moves past it */
      }
      if (id !== undefined && /^\d+$/.test(id)) this.cursor = id;
    }
    this.heard = performance.now();
    return undefined;
  }

  private apply(fact: Fact, live: boolean): void {
    const maxExp = Date.parse(fact.max_exp ?? "");
    const reason = fact.reason ?? "";
    switch (fact.type) {
      case "session_revoked":
        if (typeof fact.sid === "string" && !Number.isNaN(maxExp)) this.options.denied.denySession(fact.sid, reason, maxExp);
        break;
      case "user_revoked": {
        const notBefore = Date.parse(fact.not_before ?? "");
        if (typeof fact.sub === "string" && !Number.isNaN(notBefore) && !Number.isNaN(maxExp))
          this.options.denied.denyUser(fact.sub, reason, notBefore, maxExp);
        break;
      }
      case "keys_changed":
        // In a snapshot the keys are fetched anyway (at start, or after it on re-snapshot).
        if (live) this.options.onKeysChanged();
        break;
    }
  }
}
