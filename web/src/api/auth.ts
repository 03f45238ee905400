// Session token handling, kept free of UI code so it can be unit-tested.
//
// Storage decision: the access token lives in memory only. The refresh token
// lives in memory and is mirrored to sessionStorage (never localStorage), so a
// reload or the round trip through the card checkout page keeps the user signed
// in within that tab, while closing the tab ends it. See README.md for why.

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in?: number;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const REFRESH_STORAGE_KEY = 'beaver.refresh_token';

/** Thrown by a refresh function when the server rejected the refresh token (the session is over). */
export class RefreshRejected extends Error {
  constructor(message = 'Your session has ended. Please sign in again.') {
    super(message);
    this.name = 'RefreshRejected';
  }
}

export type SignedOutReason = 'logout' | 'expired';

export interface TokenManagerOptions {
  /** Calls POST /auth/refresh. Must throw RefreshRejected on 400/401/403, any other error for transient failures. */
  refresh: (refreshToken: string) => Promise<TokenPair>;
  storage?: KeyValueStorage | null;
  onChange?: (signedIn: boolean, reason?: SignedOutReason) => void;
}

export class TokenManager {
  private access: string | null = null;
  private refreshToken: string | null = null;
  private inflight: Promise<string | null> | null = null;
  private readonly storage: KeyValueStorage | null;

  constructor(private readonly opts: TokenManagerOptions) {
    this.storage = opts.storage ?? null;
    try {
      this.refreshToken = this.storage?.getItem(REFRESH_STORAGE_KEY) ?? null;
    } catch {
      this.refreshToken = null;
    }
  }

  get accessToken(): string | null {
    return this.access;
  }

  /** True when a refresh token is known, i.e. a session can be resumed. */
  get canResume(): boolean {
    return this.refreshToken !== null;
  }

  get signedIn(): boolean {
    return this.access !== null;
  }

  set(pair: TokenPair): void {
    const wasSignedIn = this.access !== null;
    this.access = pair.access_token;
    this.refreshToken = pair.refresh_token;
    try {
      this.storage?.setItem(REFRESH_STORAGE_KEY, pair.refresh_token);
    } catch {
      /* storage full or disabled: memory only */
    }
    if (!wasSignedIn) this.opts.onChange?.(true);
  }

  clear(reason: SignedOutReason): void {
    const was = this.access !== null || this.refreshToken !== null;
    this.access = null;
    this.refreshToken = null;
    try {
      this.storage?.removeItem(REFRESH_STORAGE_KEY);
    } catch {
      /* ignore */
    }
    if (was) this.opts.onChange?.(false, reason);
  }

  /**
   * Gets a fresh access token after `failedAccess` was answered 401. Concurrent
   * callers share a single in-flight refresh (the refresh token rotates, so a
   * second parallel refresh would use a spent token and revoke the session).
   * If another caller already refreshed since `failedAccess` was used, the
   * current token is returned without a new refresh. Resolves to null when
   * the session is over (and clears it).
   */
  refreshAfter(failedAccess: string | null): Promise<string | null> {
    if (this.access !== null && failedAccess !== null && this.access !== failedAccess) {
      return Promise.resolve(this.access);
    }
    if (this.inflight) return this.inflight;
    const rt = this.refreshToken;
    if (rt === null) {
      this.clear('expired');
      return Promise.resolve(null);
    }
    this.inflight = (async () => {
      try {
        const pair = await this.opts.refresh(rt);
        // A logout (or new login) may have happened meanwhile: only apply if still the same session.
        if (this.refreshToken !== rt) return this.access;
        this.set(pair);
        return pair.access_token;
      } catch (e) {
        if (e instanceof RefreshRejected) {
          if (this.refreshToken === rt) this.clear('expired');
          return null;
        }
        throw e;
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

function withBearer(init: RequestInit | undefined, token: string | null): RequestInit {
  const headers = new Headers(init?.headers);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  else headers.delete('Authorization');
  return { ...init, headers };
}

/**
 * Wraps fetch: adds the session's bearer token and, on a 401, refreshes once
 * (shared between concurrent calls) and retries once. The request body must
 * be replayable (a string, as all our JSON bodies are).
 */
export function createAuthedFetch(tokens: TokenManager, baseFetch: FetchLike): FetchLike {
  return async (input, init) => {
    const used = tokens.accessToken;
    const res = await baseFetch(input, withBearer(init, used));
    if (res.status !== 401 || (used === null && !tokens.canResume)) return res;
    const fresh = await tokens.refreshAfter(used);
    if (fresh === null) return res;
    // Drop the first response's body before retrying.
    res.body?.cancel().catch(() => {});
    return baseFetch(input, withBearer(init, fresh));
  };
}
