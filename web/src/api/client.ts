import { RefreshRejected, TokenManager, createAuthedFetch, type KeyValueStorage, type SignedOutReason, type TokenPair } from './auth';
import type { Account, ErrorBody, LoginResponse, MfaChallenge } from './types';
import { getPasskey } from '../lib/webauthn';

/** An API failure with the server's error.message (or a network explanation). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string = '',
    readonly type: string = '',
    readonly body: ErrorBody | null = null,
    readonly retryAfter: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function sessionStore(): KeyValueStorage | null {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null;
  }
}

const rawFetch = (input: string, init?: RequestInit) => fetch(input, init);

async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: ErrorBody | null = null;
  let message = `Request failed (HTTP ${res.status}).`;
  try {
    const text = await res.text();
    if (text) {
      const parsed = JSON.parse(text) as { error?: ErrorBody };
      if (parsed && parsed.error && typeof parsed.error.message === 'string') {
        body = parsed.error;
        message = parsed.error.message || message;
      }
    }
  } catch {
    /* not JSON */
  }
  const retryAfter = res.headers.get('Retry-After');
  if (res.status === 429 && retryAfter && !/retry/i.test(message)) message += ` (retry in ${retryAfter}s)`;
  return new ApiError(res.status, message, body?.code ?? '', body?.type ?? '', body, retryAfter);
}

function networkError(e: unknown): Error {
  if (e instanceof DOMException && e.name === 'AbortError') return e;
  if (e instanceof ApiError) return e;
  return new ApiError(0, 'Could not reach the Beaver server. Check your connection and try again.', 'network_error');
}

// ---- Session --------------------------------------------------------------

type SessionStatus = 'resuming' | 'signedIn' | 'signedOut';
export interface SessionState {
  status: SessionStatus;
  account: Account | null;
  /** Why the last sign-out happened (to show "your session expired"). */
  reason?: SignedOutReason;
}

type Listener = (s: SessionState) => void;

class Session {
  state: SessionState;
  private listeners = new Set<Listener>();
  readonly tokens: TokenManager;
  readonly fetch: (input: string, init?: RequestInit) => Promise<Response>;

  constructor() {
    this.tokens = new TokenManager({
      storage: sessionStore(),
      refresh: (rt) => this.callRefresh(rt),
      onChange: (signedIn, reason) => {
        if (!signedIn) this.update({ status: 'signedOut', account: null, reason });
      },
    });
    this.fetch = createAuthedFetch(this.tokens, rawFetch);
    this.state = { status: this.tokens.canResume ? 'resuming' : 'signedOut', account: null };
  }

  private async callRefresh(refreshToken: string): Promise<TokenPair> {
    const res = await rawFetch('/auth/refresh', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    if (res.ok) {
      const pair = (await res.json()) as TokenPair & { account?: Account };
      if (pair.account) queueMicrotask(() => this.setAccount(pair.account!));
      return pair;
    }
    if (res.status === 400 || res.status === 401 || res.status === 403) throw new RefreshRejected((await errorFromResponse(res)).message);
    throw await errorFromResponse(res);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private update(s: SessionState) {
    this.state = s;
    for (const l of this.listeners) l(s);
  }

  setAccount(account: Account) {
    if (!this.tokens.signedIn && !this.tokens.canResume) return;
    this.update({ status: 'signedIn', account });
  }

  /** On page load: resumes a session from the tab's refresh token, if any. */
  async resume(): Promise<void> {
    if (!this.tokens.canResume) {
      this.update({ status: 'signedOut', account: null });
      return;
    }
    try {
      const fresh = await this.tokens.refreshAfter(null);
      if (!fresh) return; // cleared → signedOut already announced
      const { account } = await api<{ account: Account }>('GET', '/auth/me');
      this.setAccount(account);
    } catch {
      // Transient failure: treat as signed out for now but keep the refresh token so a reload can retry.
      this.update({ status: 'signedOut', account: null });
    }
  }

  /** Signs in, or answers the challenge a second step (completeMfa) needs when two-factor is on. */
  async login(email: string, password: string): Promise<Account | MfaChallenge> {
    const data = await api<LoginResponse | MfaChallenge>('POST', '/auth/login', { email, password }, { auth: false });
    if ('mfa_required' in data) return data;
    return this.start(data);
  }

  /** The second step: a TOTP code or a recovery code. */
  async completeMfa(challengeToken: string, answer: { code?: string; recovery_code?: string }): Promise<Account> {
    return this.start(await api<LoginResponse>('POST', '/auth/login/2fa', { challenge_token: challengeToken, ...answer }, { auth: false }));
  }

  /** Signs in with a passkey of this site (no email or password needed). */
  async loginWithPasskey(): Promise<Account> {
    const begin = await api<{ ceremony_token: string; options: { publicKey: Record<string, unknown> } }>(
      'POST', '/auth/passkeys/login/begin', {}, { auth: false });
    const credential = await getPasskey(begin.options);
    return this.start(await api<LoginResponse>('POST', '/auth/passkeys/login/finish',
      { ceremony_token: begin.ceremony_token, credential }, { auth: false }));
  }

  private start(data: LoginResponse): Account {
    this.tokens.set(data);
    this.update({ status: 'signedIn', account: data.account });
    return data.account;
  }

  /**
   * Finishes a sign-in through an identity provider: trades the callback's single-use code for tokens, or for the
   * challenge a second step (completeMfa) needs when two-factor is on.
   */
  async loginWithCode(code: string): Promise<Account | MfaChallenge> {
    const data = await api<LoginResponse | MfaChallenge>('POST', '/auth/oauth/exchange', { code }, { auth: false });
    if ('mfa_required' in data) return data;
    return this.start(data);
  }

  async logout(): Promise<void> {
    const token = this.tokens.accessToken;
    try {
      if (token) {
        await rawFetch('/auth/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      }
    } catch {
      /* the local sign-out happens regardless */
    } finally {
      this.tokens.clear('logout');
      this.update({ status: 'signedOut', account: null, reason: 'logout' });
    }
  }

  async reloadAccount(): Promise<Account | null> {
    try {
      const { account } = await api<{ account: Account }>('GET', '/users/me');
      this.setAccount(account);
      return account;
    } catch {
      return null;
    }
  }
}

export const session = new Session();

// ---- JSON calls ------------------------------------------------------------

export interface CallOptions {
  /** Send the session token and refresh on 401 (default true). */
  auth?: boolean;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Send `body` as it is (a string) with this Content-Type instead of as JSON: a catalog file to import. */
  contentType?: string;
}

/** Calls the API with JSON in and out; throws ApiError with the server's error.message. */
export async function api<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
  const init: RequestInit = { method, headers, signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = opts.contentType ?? 'application/json';
    init.body = opts.contentType ? String(body) : JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await (opts.auth === false ? rawFetch(path, init) : session.fetch(path, init));
  } catch (e) {
    throw networkError(e);
  }
  if (!res.ok) throw await errorFromResponse(res);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(res.status, 'The server sent a response that is not JSON.', 'bad_response');
  }
}

/** Raw authenticated fetch for streaming (the caller reads the body). Non-2xx become ApiError. */
export async function streamRequest(path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  let res: Response;
  try {
    res = await session.fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal,
    });
  } catch (e) {
    throw networkError(e);
  }
  if (!res.ok) throw await errorFromResponse(res);
  return res;
}

export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof DOMException && e.name === 'AbortError') return 'Cancelled.';
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Saves an authenticated GET as a file. A plain link cannot download an
 * admin-only file: the access token lives in memory, never in a cookie, so
 * the file is fetched with it and handed to the browser as a blob URL.
 */
export async function downloadFile(path: string, fallbackName: string): Promise<void> {
  let res: Response;
  try {
    res = await session.fetch(path, { headers: { Accept: 'application/json' } });
  } catch (e) {
    throw networkError(e);
  }
  if (!res.ok) throw await errorFromResponse(res);
  const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') ?? '')?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await res.blob());
  try {
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  } finally {
    // Revoked on the next task: the click has started the download by then.
    setTimeout(() => URL.revokeObjectURL(url), 0);
  }
}
