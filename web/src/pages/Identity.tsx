import { useEffect, useState } from 'preact/hooks';
import { api, errorMessage, session } from '../api/client';
import type { IdentitiesResponse, MfaChallenge, OAuthProvider } from '../api/types';
import { Async, Button, ErrorBox, Loading, Notice, When } from '../components/ui';
import { useAction, useAsync, useSession, useTitle } from '../lib/hooks';
import { SecondStep } from './Auth';
import { Link, navigate, useLocation } from '../lib/router';

/** "Sign in with …" buttons for the providers the server has on (none: nothing shown). */
export function OAuthButtons() {
  const [providers, setProviders] = useState<OAuthProvider[]>([]);
  useEffect(() => {
    api<{ data: OAuthProvider[] }>('GET', '/auth/oauth/providers', undefined, { auth: false })
      .then((r) => setProviders(r.data))
      .catch(() => setProviders([]));
  }, []);
  if (providers.length === 0) return null;
  return (
    <div class="oauth-buttons" data-testid="oauth-buttons">
      <p class="subtitle">or</p>
      {providers.map((p) => (
        // A full navigation: the server sets the flow's cookie and sends the browser to the provider.
        <a key={p.id} class="btn btn-secondary btn-block" href={`/auth/oauth/${p.id}/start`} data-testid={`oauth-${p.id}`}>
          Sign in with {p.name}
        </a>
      ))}
    </div>
  );
}

/**
 * Where the identity provider's callback sends the browser: the URL fragment carries a single-use code
 * (exchanged here for the session's tokens), a finished link, or an error. The fragment is wiped at once.
 */
export function OAuthDone() {
  useTitle('Signing in');
  const s = useSession();
  const [error, setError] = useState<string | null>(null);
  const [link, setLink] = useState(false);
  const [mfa, setMfa] = useState<MfaChallenge | null>(null);
  useEffect(() => {
    const frag = new URLSearchParams(window.location.hash.slice(1));
    history.replaceState(history.state, '', window.location.pathname);
    const code = frag.get('code');
    if (frag.get('linked')) {
      navigate(`/security?linked=${encodeURIComponent(frag.get('linked')!)}`, { replace: true });
    } else if (code) {
      session
        .loginWithCode(code)
        .then((r) => ('mfa_required' in r ? setMfa(r) : navigate('/dashboard', { replace: true })))
        .catch((e) => setError(errorMessage(e)));
    } else {
      setLink(frag.get('link') === '1');
      setError(frag.get('message') || 'The sign-in did not complete.');
    }
  }, []);
  // Two-factor on: the provider was the first factor; the code step signs in, then on to the dashboard.
  useEffect(() => {
    if (mfa && s.status === 'signedIn') navigate('/dashboard', { replace: true });
  }, [mfa, s.status]);
  if (mfa) return <SecondStep challenge={mfa} onCancel={() => navigate('/login', { replace: true })} />;
  if (!error) return <Loading label="Signing you in…" />;
  return (
    <div class="auth-card card" data-testid="oauth-error">
      <h1>{link ? 'Linking failed' : 'Sign-in failed'}</h1>
      <ErrorBox error={error} />
      <Link class="btn btn-primary" href={link ? '/security' : '/login'}>
        {link ? 'Back to security' : 'Back to sign in'}
      </Link>
    </div>
  );
}

/** The account's ways to sign in: linked identity providers (link another, unlink); a part of the Security page. */
export function LinkedIdentities() {
  const loc = useLocation();
  const state = useAsync((signal) => api<IdentitiesResponse>('GET', '/auth/identities', undefined, { signal }), []);
  const link = useAction(async (provider: string) => {
    const { url } = await api<{ url: string }>('POST', `/auth/oauth/${provider}/link`);
    window.location.assign(url);
  });
  const unlink = useAction(async (id: string) => {
    await api('DELETE', `/auth/identities/${id}`);
    state.reload();
  });
  const linked = loc.query.get('linked');
  return (
    <div>
      {linked && <Notice kind="success" testid="linked-notice">Linked {linked}. You can now sign in with it.</Notice>}
      <ErrorBox error={link.error ?? unlink.error} testid="identity-error" />
      <Async state={state}>
        {(d) => {
          const name = (id: string) => d.providers.find((p) => p.id === id)?.name ?? id;
          const unlinked = d.providers.filter((p) => !d.data.some((i) => i.provider === p.id));
          return (
            <section class="card">
              <h2>Sign-in methods</h2>
              <p>{d.has_password ? 'Password: set.' : 'Password: none (use "Forgot your password?" on the sign-in page to set one).'}</p>
              {d.data.length === 0 ? (
                <p>No identity provider is linked.</p>
              ) : (
                <table class="table" data-testid="identities">
                  <thead>
                    <tr>
                      <th>Provider</th>
                      <th>Email</th>
                      <th>Linked</th>
                      <th>Last used</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {d.data.map((i) => (
                      <tr key={i.id}>
                        <td>{name(i.provider)}</td>
                        <td>
                          {i.email || '—'}
                          {i.email && !i.email_verified && ' (unverified)'}
                        </td>
                        <td>
                          <When iso={i.created_at} />
                        </td>
                        <td>
                          <When iso={i.last_used_at} />
                        </td>
                        <td>
                          <Button small busy={unlink.busy} onClick={() => void unlink.run(i.id)} data-testid={`unlink-${i.provider}`}>
                            Unlink
                          </Button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              {unlinked.length > 0 && (
                <div class="actions">
                  {unlinked.map((p) => (
                    <Button key={p.id} busy={link.busy} onClick={() => void link.run(p.id)} data-testid={`link-${p.id}`}>
                      Link {p.name}
                    </Button>
                  ))}
                </div>
              )}
            </section>
          );
        }}
      </Async>
    </div>
  );
}
