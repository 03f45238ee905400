import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, errorMessage, session, type SessionState } from '../api/client';
import type { Page } from '../api/types';

export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (v: T) => void;
}

/** Runs `fn` on mount and whenever `deps` change; exposes loading / error / data. */
export function useAsync<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    const ctrl = new AbortController();
    setLoading(true);
    setError(null);
    fnRef
      .current(ctrl.signal)
      .then((v) => {
        if (!ctrl.signal.aborted) setData(v);
      })
      .catch((e) => {
        if (!ctrl.signal.aborted) setError(e);
      })
      .finally(() => {
        if (!ctrl.signal.aborted) setLoading(false);
      });
    return () => ctrl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload, setData };
}

export function useSession(): SessionState {
  const [s, setS] = useState(session.state);
  useEffect(() => session.subscribe(setS), []);
  return s;
}

/** Wraps a submit action with busy / error / success state. */
export function useAction<A extends unknown[], R>(fn: (...args: A) => Promise<R>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = useCallback(
    async (...args: A): Promise<R | undefined> => {
      setBusy(true);
      setError(null);
      try {
        return await fn(...args);
      } catch (e) {
        setError(errorMessage(e));
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [fn],
  );
  return { run, busy, error, setError };
}

export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · Beaver` : 'Beaver — one API for every LLM';
  }, [title]);
}

export interface PagesState<T> {
  rows: T[];
  loading: boolean;
  error: unknown;
  /** null once the last page is in. */
  cursor: string | null;
  /** Loads the next page (appended). */
  more: () => void;
  /** Loads the first page again, replacing the rows. */
  refresh: () => void;
  /** After an error: the page that failed, again. */
  retry: () => void;
}

/** A list the API pages by cursor (`?limit=&cursor=` → `{data, next_cursor}`), loaded a page at a time. */
export function usePages<T>(path: string, limit: number): PagesState<T> {
  const [rows, setRows] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const load = async (c: string | null, reset: boolean) => {
    setLoading(true);
    setError(null);
    try {
      const q = new URLSearchParams({ limit: String(limit) });
      if (c) q.set('cursor', c);
      const page = await api<Page<T>>('GET', `${path}?${q}`);
      setRows((r) => (reset ? page.data : [...r, ...page.data]));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void load(null, true);
  }, [path, limit]);
  return {
    rows,
    loading,
    error,
    cursor,
    more: () => void load(cursor, false),
    refresh: () => void load(null, true),
    retry: () => void load(cursor, rows.length === 0),
  };
}
