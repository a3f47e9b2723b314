// The revocations still worth knowing: each is forgotten once its `max_exp` has passed,
// since no token it is about can be alive then, so memory stays bounded by the
// revocations of one access-token lifetime.

interface SessionEntry {
  reason: string;
  /** Milliseconds since the epoch. */
  maxExp: number;
}

interface UserEntry extends SessionEntry {
  /** Seconds since the epoch: the user's tokens issued before it are dead. */
  notBefore: number;
}

export class DenyList {
  private sessions = new Map<string, SessionEntry>();
  private users = new Map<string, UserEntry>();
  /** One string per reason, shared by all entries: 100 000 "logout"s cost one. */
  private reasons = new Map<string, string>();

  private intern(reason: string): string {
    const known = this.reasons.get(reason);
    if (known !== undefined) return known;
    if (this.reasons.size < 256) this.reasons.set(reason, reason);
    return reason;
  }

  denySession(sid: string, reason: string, maxExp: number): void {
    this.sessions.set(sid, { reason: this.intern(reason), maxExp });
  }

  /** `notBefore` in milliseconds; kept in whole seconds, compared with `iat` (seconds). */
  denyUser(sub: string, reason: string, notBeforeMs: number, maxExp: number): void {
    const notBefore = Math.floor(notBeforeMs / 1000);
    const entry = this.users.get(sub);
    // A later deactivation wins; an older fact (a replayed snapshot) never narrows it.
    if (entry && notBefore < entry.notBefore) return;
    this.users.set(sub, { reason: this.intern(reason), notBefore, maxExp: entry ? Math.max(maxExp, entry.maxExp) : maxExp });
  }

  /** The revocation reason if a token of this session/user issued at `iat` is denied. */
  refusal(sid: string, sub: string | undefined, iat: number, nowMs: number): string | undefined {
    // Lookups only: no allocation on the path every accepted token takes.
    if (this.sessions.size > 0) {
      const session = this.sessions.get(sid);
      if (session !== undefined && session.maxExp > nowMs) return session.reason;
    }
    if (sub === undefined || this.users.size === 0) return undefined;
    const user = this.users.get(sub);
    if (user !== undefined && user.maxExp > nowMs && iat < user.notBefore) return user.reason;
    return undefined;
  }

  /** Forgets what can no longer matter. */
  evict(nowMs: number): void {
    for (const [sid, e] of this.sessions) if (e.maxExp <= nowMs) this.sessions.delete(sid);
    for (const [sub, e] of this.users) if (e.maxExp <= nowMs) this.users.delete(sub);
  }

  clear(): void {
    this.sessions.clear();
    this.users.clear();
  }

  get deniedSessions(): number {
    return this.sessions.size;
  }

  get deniedUsers(): number {
    return this.users.size;
  }
}
