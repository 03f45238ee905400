import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorMessage, session } from '../api/client';
import type { Account, MfaChallenge } from '../api/types';
import { passkeysSupported } from '../lib/webauthn';
import { Button, ErrorBox, Field, Loading, Notice } from '../components/ui';
import { useAction, useSession, useTitle } from '../lib/hooks';
import { Link, navigate, useLocation } from '../lib/router';
import { OAuthButtons } from './Identity';

let rememberedEmail = '';

function passwordProblem(pw: string, email: string): string | null {
  if (pw.length < 10) return 'Use at least 10 characters.';
  if (pw.length > 256) return 'Use at most 256 characters.';
  if (email && pw.trim().toLowerCase() === email.trim().toLowerCase()) return 'The password must not be your email address.';
  return null;
}

function AuthCard({ title, children, intro }: { title: string; intro?: ComponentChildren; children: ComponentChildren }) {
  return (
    <div class="auth-card card">
      <h1>{title}</h1>
      {intro && <p class="subtitle">{intro}</p>}
      {children}
    </div>
  );
}

/** The second sign-in step when two-factor is on: a code from the app, or a recovery code. */
export function SecondStep({ challenge, onCancel }: { challenge: MfaChallenge; onCancel: () => void }) {
  const [recovery, setRecovery] = useState(false);
  const [value, setValue] = useState('');
  const action = useAction(async () => {
    const v = value.trim();
    await session.completeMfa(challenge.challenge_token, recovery ? { recovery_code: v } : { code: v.replace(/\s+/g, '') });
  });
  return (
    <AuthCard title="Two-factor authentication" intro={recovery ? 'Enter one of your recovery codes. Each works once.' : 'Enter the 6-digit code from your authenticator app.'}>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run();
        }}
        data-testid="mfa-form"
      >
        <Field label={recovery ? 'Recovery code' : 'Code'}>
          {(id) => (
            <input id={id} autoComplete="one-time-code" inputMode={recovery ? 'text' : 'numeric'} required value={value}
              onInput={(e) => setValue(e.currentTarget.value)} data-testid="mfa-code" />
          )}
        </Field>
        <ErrorBox error={action.error} testid="mfa-error" />
        <Button type="submit" variant="primary" busy={action.busy} data-testid="mfa-submit" class="btn-block">
          Verify
        </Button>
      </form>
      <p class="auth-links">
        <Button variant="ghost" small data-testid="mfa-toggle" onClick={() => { setRecovery(!recovery); setValue(''); }}>
          {recovery ? 'Use a code from the app' : 'Use a recovery code'}
        </Button>
        <Button variant="ghost" small onClick={onCancel}>
          Start over
        </Button>
      </p>
    </AuthCard>
  );
}

export function Login() {
  useTitle('Sign in');
  const loc = useLocation();
  const s = useSession();
  const [email, setEmail] = useState(rememberedEmail);
  const [password, setPassword] = useState('');
  const [mfa, setMfa] = useState<MfaChallenge | null>(null);
  const action = useAction(async () => {
    const r = await session.login(email.trim(), password);
    if ('mfa_required' in r) setMfa(r);
  });
  const passkey = useAction(() => session.loginWithPasskey());
  if (mfa) return <SecondStep challenge={mfa} onCancel={() => setMfa(null)} />;
  const registered = loc.query.get('registered') === '1';
  const expired = loc.query.get('expired') === '1' || s.reason === 'expired';
  const signedOut = loc.query.get('signed_out') === '1';
  const reset = loc.query.get('reset') === '1';
  return (
    <AuthCard title="Sign in" intro="Welcome back. Sign in to manage keys, credits and usage.">
      {registered && (
        <Notice kind="success" testid="registered-notice">
          Account created. We sent a verification link to your email. Sign in to continue.
        </Notice>
      )}
      {reset && <Notice kind="success">Password changed. Sign in with your new password.</Notice>}
      {expired && !registered && <Notice kind="warn">Your session has ended. Please sign in again.</Notice>}
      {signedOut && !expired && <Notice>You are signed out.</Notice>}
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          void action.run();
        }}
        data-testid="login-form"
      >
        <Field label="Email">
          {(id) => <input id={id} type="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} data-testid="login-email" />}
        </Field>
        <Field label="Password">
          {(id) => (
            <input id={id} type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} data-testid="login-password" />
          )}
        </Field>
        <ErrorBox error={action.error} testid="login-error" />
        <Button type="submit" variant="primary" busy={action.busy} data-testid="login-submit" class="btn-block">
          Sign in
        </Button>
      </form>
      {passkeysSupported() && (
        <div class="form passkey-signin">
          <ErrorBox error={passkey.error} testid="passkey-login-error" />
          <Button busy={passkey.busy} onClick={() => void passkey.run()} data-testid="passkey-login" class="btn-block">
            Sign in with a passkey
          </Button>
        </div>
      )}
      <OAuthButtons />
      <p class="auth-links">
        <Link href="/forgot-password">Forgot your password?</Link>
        <span>
          New here? <Link href="/register">Create an account</Link>
        </span>
      </p>
    </AuthCard>
  );
}

export function Register() {
  useTitle('Create account');
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [touched, setTouched] = useState(false);
  const pwProblem = password ? passwordProblem(password, email) : null;
  const action = useAction(async () => {
    const body: Record<string, string> = { email: email.trim(), password };
    if (name.trim()) body.name = name.trim();
    await api<{ account: Account }>('POST', '/auth/register', body, { auth: false });
    rememberedEmail = email.trim();
    navigate('/login?registered=1');
  });
  return (
    <AuthCard title="Create your account" intro="One key for every major model. Pay only for the tokens you use.">
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (passwordProblem(password, email)) return;
          void action.run();
        }}
        data-testid="register-form"
      >
        <Field label="Email">
          {(id) => <input id={id} type="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} data-testid="register-email" />}
        </Field>
        <Field label="Name (optional)">
          {(id) => <input id={id} type="text" autoComplete="name" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="register-name" />}
        </Field>
        <Field label="Password" hint="10 to 256 characters; not your email and not a common password." error={touched ? pwProblem : null}>
          {(id, describedBy) => (
            <input
              id={id}
              type="password"
              autoComplete="new-password"
              required
              minLength={10}
              maxLength={256}
              value={password}
              aria-describedby={describedBy}
              aria-invalid={touched && pwProblem ? 'true' : undefined}
              onInput={(e) => setPassword(e.currentTarget.value)}
              onBlur={() => setTouched(true)}
              data-testid="register-password"
            />
          )}
        </Field>
        <ErrorBox error={action.error} testid="register-error" />
        <Button type="submit" variant="primary" busy={action.busy} class="btn-block" data-testid="register-submit">
          Create account
        </Button>
      </form>
      <p class="auth-links">
        <span>
          Already have an account? <Link href="/login">Sign in</Link>
        </span>
      </p>
    </AuthCard>
  );
}

export function VerifyEmail() {
  useTitle('Verify email');
  const loc = useLocation();
  const token = loc.query.get('token') ?? '';
  const s = useSession();
  const [state, setState] = useState<'working' | 'ok' | 'error'>(token ? 'working' : 'error');
  const [error, setError] = useState<string>(token ? '' : 'This link has no verification token. Open the link from the email again.');
  const started = useRef('');
  useEffect(() => {
    if (!token || started.current === token) return;
    started.current = token;
    setState('working');
    api('POST', '/auth/verify-email', { token }, { auth: false })
      .then(() => {
        setState('ok');
        if (s.account) void session.reloadAccount();
      })
      .catch((e) => {
        setState('error');
        setError(errorMessage(e));
      });
  }, [token]);
  return (
    <AuthCard title="Verify your email">
      {state === 'working' && <Loading label="Verifying your email…" />}
      {state === 'ok' && (
        <>
          <Notice kind="success" testid="verify-ok">
            Your email address is verified. Thank you!
          </Notice>
          <Link class="btn btn-primary" href={s.account ? '/dashboard' : '/login'}>
            {s.account ? 'Go to the dashboard' : 'Sign in'}
          </Link>
        </>
      )}
      {state === 'error' && (
        <>
          <ErrorBox error={error} testid="verify-error" />
          <p>Verification links work once and expire. Sign in to continue; you can use Beaver while unverified unless this server requires verification.</p>
        </>
      )}
    </AuthCard>
  );
}

export function ForgotPassword() {
  useTitle('Forgot password');
  const [email, setEmail] = useState('');
  const [sent, setSent] = useState(false);
  const action = useAction(async () => {
    await api('POST', '/auth/password/forgot', { email: email.trim() }, { auth: false });
    setSent(true);
  });
  return (
    <AuthCard title="Reset your password" intro="We will email you a link to choose a new password.">
      {sent ? (
        <Notice kind="success" testid="forgot-sent">
          If an account exists for <strong>{email}</strong>, a reset link is on its way. The link works once and expires.
        </Notice>
      ) : (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            void action.run();
          }}
        >
          <Field label="Email">
            {(id) => <input id={id} type="email" autoComplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} data-testid="forgot-email" />}
          </Field>
          <ErrorBox error={action.error} />
          <Button type="submit" variant="primary" busy={action.busy} class="btn-block" data-testid="forgot-submit">
            Send reset link
          </Button>
        </form>
      )}
      <p class="auth-links">
        <Link href="/login">Back to sign in</Link>
      </p>
    </AuthCard>
  );
}

export function ResetPassword() {
  useTitle('Choose a new password');
  const loc = useLocation();
  const token = loc.query.get('token') ?? '';
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [done, setDone] = useState(false);
  const [touched, setTouched] = useState(false);
  const problem = passwordProblem(password, '') ?? (confirm && confirm !== password ? 'The passwords do not match.' : null);
  const action = useAction(async () => {
    await api('POST', '/auth/password/reset', { token, password }, { auth: false });
    // Every session of the account is revoked by the server; drop ours locally too.
    if (session.tokens.signedIn || session.tokens.canResume) await session.logout();
    setDone(true);
  });
  if (!token) {
    return (
      <AuthCard title="Choose a new password">
        <ErrorBox error="This link has no reset token. Request a new link." />
        <Link href="/forgot-password">Request a new link</Link>
      </AuthCard>
    );
  }
  return (
    <AuthCard title="Choose a new password" intro="After the change, every signed-in session of your account is signed out.">
      {done ? (
        <>
          <Notice kind="success" testid="reset-ok">
            Your password has been changed.
          </Notice>
          <Link class="btn btn-primary" href="/login?reset=1">
            Sign in
          </Link>
        </>
      ) : (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            setTouched(true);
            if (problem || confirm !== password) return;
            void action.run();
          }}
        >
          <Field label="New password" hint="10 to 256 characters; not your email and not a common password.">
            {(id, d) => (
              <input id={id} type="password" autoComplete="new-password" required minLength={10} maxLength={256} aria-describedby={d} value={password} onInput={(e) => setPassword(e.currentTarget.value)} data-testid="reset-password" />
            )}
          </Field>
          <Field label="Repeat the new password" error={touched ? problem : null}>
            {(id, d) => (
              <input id={id} type="password" autoComplete="new-password" required aria-describedby={d} value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} data-testid="reset-confirm" />
            )}
          </Field>
          <ErrorBox error={action.error} testid="reset-error" />
          <Button type="submit" variant="primary" busy={action.busy} class="btn-block" data-testid="reset-submit">
            Change password
          </Button>
        </form>
      )}
    </AuthCard>
  );
}
