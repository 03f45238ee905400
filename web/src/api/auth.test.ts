import { describe, expect, it, vi } from 'vitest';
import { REFRESH_STORAGE_KEY, RefreshRejected, TokenManager, createAuthedFetch, type KeyValueStorage, type TokenPair } from './auth';

class MemStorage implements KeyValueStorage {
  m = new Map<string, string>();
  getItem(k: string) {
    return this.m.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A fake server: valid access tokens answer 200 with the token echoed; anything else 401. */
function fakeServer(valid: Set<string>) {
  const calls: string[] = [];
  const fetch = vi.fn(async (_input: string, init?: RequestInit) => {
    const auth = new Headers(init?.headers).get('Authorization') ?? '';
    const tok = auth.replace(/^Bearer /, '');
    calls.push(tok);
    if (valid.has(tok)) return new Response(JSON.stringify({ tok }), { status: 200 });
    return new Response(JSON.stringify({ error: { message: 'bad', type: 'x', code: 'unauthorized' } }), { status: 401 });
  });
  return { fetch, calls };
}

describe('TokenManager + createAuthedFetch', () => {
  it('refreshes once for many concurrent 401s and retries each once', async () => {
    const valid = new Set<string>();
    const server = fakeServer(valid);
    const gate = deferred<TokenPair>();
    const refresh = vi.fn(async (rt: string) => {
      expect(rt).toBe('r1');
      return gate.promise;
    });
    const storage = new MemStorage();
    const tm = new TokenManager({ refresh, storage });
    tm.set({ access_token: 'a1', refresh_token: 'r1' });
    const f = createAuthedFetch(tm, server.fetch);

    const pending = [f('/x'), f('/y'), f('/z')];
    // let all three first attempts fail
    await new Promise((r) => setTimeout(r, 0));
    expect(refresh).toHaveBeenCalledTimes(1);
    valid.add('a2');
    gate.resolve({ access_token: 'a2', refresh_token: 'r2' });
    const results = await Promise.all(pending);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(server.calls.filter((t) => t === 'a1')).toHaveLength(3);
    expect(server.calls.filter((t) => t === 'a2')).toHaveLength(3);
    expect(tm.accessToken).toBe('a2');
    expect(storage.getItem(REFRESH_STORAGE_KEY)).toBe('r2');
  });

  it('does not refresh again when a late 401 carries an already-replaced token', async () => {
    const valid = new Set(['a2']);
    const server = fakeServer(valid);
    const refresh = vi.fn(async () => ({ access_token: 'a3', refresh_token: 'r3' }));
    const tm = new TokenManager({ refresh });
    tm.set({ access_token: 'a2', refresh_token: 'r2' });
    // Simulate: a request sent with a1 comes back 401 after the refresh to a2 happened.
    await expect(tm.refreshAfter('a1')).resolves.toBe('a2');
    expect(refresh).not.toHaveBeenCalled();
    const res = await createAuthedFetch(tm, server.fetch)('/x');
    expect(res.status).toBe(200);
  });

  it('retries only once: a second 401 is returned to the caller', async () => {
    const server = fakeServer(new Set());
    let n = 0;
    const refresh = vi.fn(async () => ({ access_token: `b${++n}`, refresh_token: `s${n}` }));
    const tm = new TokenManager({ refresh });
    tm.set({ access_token: 'a1', refresh_token: 'r1' });
    const res = await createAuthedFetch(tm, server.fetch)('/x');
    expect(res.status).toBe(401);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(server.fetch).toHaveBeenCalledTimes(2);
  });

  it('signs out when the refresh token is rejected, and notifies', async () => {
    const server = fakeServer(new Set());
    const onChange = vi.fn();
    const storage = new MemStorage();
    const tm = new TokenManager({
      refresh: async () => {
        throw new RefreshRejected();
      },
      storage,
      onChange,
    });
    tm.set({ access_token: 'a1', refresh_token: 'r1' });
    const f = createAuthedFetch(tm, server.fetch);
    const [r1, r2] = await Promise.all([f('/x'), f('/y')]);
    expect(r1.status).toBe(401);
    expect(r2.status).toBe(401);
    expect(tm.signedIn).toBe(false);
    expect(tm.canResume).toBe(false);
    expect(storage.getItem(REFRESH_STORAGE_KEY)).toBeNull();
    expect(onChange).toHaveBeenLastCalledWith(false, 'expired');
  });

  it('keeps the session on a transient refresh failure and lets the next call try again', async () => {
    const valid = new Set(['a2']);
    const server = fakeServer(valid);
    let fail = true;
    const refresh = vi.fn(async () => {
      if (fail) throw new TypeError('network down');
      return { access_token: 'a2', refresh_token: 'r2' };
    });
    const tm = new TokenManager({ refresh });
    tm.set({ access_token: 'a1', refresh_token: 'r1' });
    const f = createAuthedFetch(tm, server.fetch);
    await expect(f('/x')).rejects.toThrow('network down');
    expect(tm.canResume).toBe(true);
    fail = false;
    expect((await f('/x')).status).toBe(200);
    expect(refresh).toHaveBeenCalledTimes(2);
  });

  it('resumes from a stored refresh token (reload) on the first 401', async () => {
    const storage = new MemStorage();
    storage.setItem(REFRESH_STORAGE_KEY, 'r9');
    const server = fakeServer(new Set(['a10']));
    const refresh = vi.fn(async (rt: string) => {
      expect(rt).toBe('r9');
      return { access_token: 'a10', refresh_token: 'r10' };
    });
    const tm = new TokenManager({ refresh, storage });
    expect(tm.canResume).toBe(true);
    expect(tm.signedIn).toBe(false);
    const res = await createAuthedFetch(tm, server.fetch)('/x');
    expect(res.status).toBe(200);
    expect(server.calls).toEqual(['', 'a10']);
  });

  it('does not try to refresh without any session', async () => {
    const server = fakeServer(new Set());
    const refresh = vi.fn();
    const tm = new TokenManager({ refresh });
    const res = await createAuthedFetch(tm, server.fetch)('/x');
    expect(res.status).toBe(401);
    expect(refresh).not.toHaveBeenCalled();
  });

  it('ignores a refresh result that arrives after logout', async () => {
    const gate = deferred<TokenPair>();
    const tm = new TokenManager({ refresh: () => gate.promise });
    tm.set({ access_token: 'a1', refresh_token: 'r1' });
    const p = tm.refreshAfter('a1');
    tm.clear('logout');
    gate.resolve({ access_token: 'a2', refresh_token: 'r2' });
    await expect(p).resolves.toBeNull();
    expect(tm.signedIn).toBe(false);
    expect(tm.canResume).toBe(false);
  });
});
