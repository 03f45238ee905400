import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { errorMessage } from '../api/client';
import { formatMicros, type MicrosInput } from '../lib/money';
import { formatDateTime } from '../lib/format';

export function ErrorBox({ error, testid, onRetry }: { error: unknown; testid?: string; onRetry?: () => void }) {
  if (!error) return null;
  const msg = typeof error === 'string' ? error : errorMessage(error);
  return (
    <div class="alert alert-error" role="alert" data-testid={testid ?? 'error'}>
      <span>{msg}</span>
      {onRetry && (
        <button type="button" class="btn btn-small btn-ghost" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Notice({ kind = 'info', children, testid }: { kind?: 'info' | 'success' | 'warn'; children: ComponentChildren; testid?: string }) {
  return (
    <div class={`alert alert-${kind}`} role="status" data-testid={testid}>
      <div class="alert-body">{children}</div>
    </div>
  );
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

/** Shows loading, then the error (with retry), then children. */
export function Async<T>({
  state,
  children,
  label,
}: {
  state: { data: T | undefined; error: unknown; loading: boolean; reload: () => void };
  children: (data: T) => ComponentChildren;
  label?: string;
}) {
  if (state.error) return <ErrorBox error={state.error} onRetry={state.reload} />;
  if (state.data === undefined) return state.loading ? <Loading label={label} /> : null;
  return <>{children(state.data)}</>;
}

export function Money({ micros, signed, testid, class: cls }: { micros: MicrosInput | null | undefined; signed?: boolean; testid?: string; class?: string }) {
  if (micros === null || micros === undefined) return <span data-testid={testid}>—</span>;
  const cls2 = ['money', cls, signed && BigInt(micros) < 0n ? 'neg' : signed && BigInt(micros) > 0n ? 'pos' : ''].filter(Boolean).join(' ');
  return (
    <span class={cls2} data-testid={testid} data-micros={String(micros)}>
      {formatMicros(micros, { signed })}
    </span>
  );
}

export function When({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span>—</span>;
  return (
    <time dateTime={iso} title={iso}>
      {formatDateTime(iso)}
    </time>
  );
}

let idCounter = 0;
export function useId(prefix = 'f'): string {
  const ref = useRef<string>();
  if (!ref.current) ref.current = `${prefix}-${++idCounter}`;
  return ref.current;
}

type FieldProps = {
  label: string;
  hint?: ComponentChildren;
  error?: string | null;
  children: (id: string, describedBy: string | undefined) => ComponentChildren;
  class?: string;
};

/** A labelled form field; the child receives the input id and aria-describedby. */
export function Field({ label, hint, error, children, class: cls }: FieldProps) {
  const id = useId('field');
  const hintId = hint ? `${id}-hint` : undefined;
  const errId = error ? `${id}-err` : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(' ') || undefined;
  return (
    <div class={`field ${cls ?? ''}`}>
      <label for={id}>{label}</label>
      {children(id, describedBy)}
      {hint && (
        <div class="hint" id={hintId}>
          {hint}
        </div>
      )}
      {error && (
        <div class="field-error" id={errId} role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

type BtnProps = JSX.HTMLAttributes<HTMLButtonElement> & {
  busy?: boolean;
  variant?: 'primary' | 'secondary' | 'danger' | 'ghost';
  small?: boolean;
  type?: 'button' | 'submit';
  disabled?: boolean;
};

export function Button({ busy, variant = 'secondary', small, class: cls, children, disabled, type = 'button', ...rest }: BtnProps) {
  return (
    <button
      type={type}
      class={`btn btn-${variant}${small ? ' btn-small' : ''}${cls ? ' ' + cls : ''}`}
      disabled={disabled || busy}
      aria-busy={busy ? 'true' : undefined}
      {...rest}
    >
      {busy && <span class="spinner spinner-inline" aria-hidden="true" />}
      {children}
    </button>
  );
}

/** Shows a secret once with a copy button. */
export function SecretBox({ secret, onDone, title }: { secret: string; onDone: () => void; title: string }) {
  const [copied, setCopied] = useState<'idle' | 'ok' | 'fail'>('idle');
  const ref = useRef<HTMLInputElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    headingRef.current?.focus();
  }, []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      setCopied('ok');
    } catch {
      ref.current?.select();
      setCopied('fail');
    }
  };
  return (
    <section class="secret-box" aria-labelledby="secret-title" data-testid="key-secret-box">
      <h3 id="secret-title" tabIndex={-1} ref={headingRef}>
        {title}
      </h3>
      <p>
        Copy this key now. <strong>It will not be shown again</strong> — Beaver stores only a hash.
      </p>
      <div class="secret-row">
        <label class="sr-only" for="secret-value">
          API key secret
        </label>
        <input id="secret-value" ref={ref} class="mono" readOnly value={secret} data-testid="key-secret" onFocus={(e) => (e.target as HTMLInputElement).select()} />
        <Button variant="primary" onClick={copy} data-testid="key-secret-copy">
          {copied === 'ok' ? 'Copied' : 'Copy'}
        </Button>
      </div>
      <div aria-live="polite" class="hint">
        {copied === 'ok' ? 'Copied to the clipboard.' : copied === 'fail' ? 'Copy blocked by the browser: the key is selected, press Ctrl+C.' : ''}
      </div>
      <Button variant="secondary" onClick={onDone} data-testid="key-secret-done">
        I have saved it
      </Button>
    </section>
  );
}

export function PageHeader({ title, children, subtitle }: { title: string; subtitle?: ComponentChildren; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle && <p class="subtitle">{subtitle}</p>}
      </div>
      {children && <div class="page-actions">{children}</div>}
    </div>
  );
}

export function Badge({ kind = 'neutral', children }: { kind?: 'neutral' | 'ok' | 'warn' | 'bad' | 'info'; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

/** A meter for "used of limit" with text; limit null = unlimited. */
export function Meter({ label, used, limit, format }: { label: string; used: bigint; limit: bigint | null; format: (v: bigint) => string }) {
  const pct = limit && limit > 0n ? Number((used * 1000n) / limit) / 10 : 0;
  return (
    <div class="meter-wrap">
      <div class="meter-label">
        <span>{label}</span>
        <span>
          {format(used)} {limit !== null ? `of ${format(limit)}` : '(no limit)'}
        </span>
      </div>
      {limit !== null && (
        <div class={`meter${pct >= 90 ? ' meter-high' : ''}`} role="meter" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.min(100, pct)}>
          {/* CSSOM style (not a style attribute), which the CSP allows */}
          <div class="meter-fill" style={{ width: `${Math.min(100, pct)}%` }} />
        </div>
      )}
    </div>
  );
}
