import { Component, type ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { session } from './api/client';
import { Loading } from './components/ui';
import { useSession } from './lib/hooks';
import { Link, matchRoute, navigate, safeNext, useLocation } from './lib/router';
import { Home } from './pages/Home';
import { ForgotPassword, Login, Register, ResetPassword, VerifyEmail } from './pages/Auth';
import { Dashboard } from './pages/Dashboard';
import { Keys } from './pages/Keys';
import { Playground } from './pages/Playground';
import { Billing } from './pages/Billing';
import { Security } from './pages/Security';
import { AdminAccount, AdminAccounts, TEMPORAL_UI } from './pages/Admin';
import { AdminModels } from './pages/AdminModels';
import { AdminProviders } from './pages/AdminProviders';
import { AdminImport } from './pages/AdminImport';
import { OAuthDone } from './pages/Identity';
import { AdminAudit } from './pages/Audit';
import { AdminOperations } from './pages/AdminOperations';

type Guard = 'public' | 'guest' | 'user' | 'admin';
interface RouteDef {
  path: string;
  guard: Guard;
  render: (params: Record<string, string>) => ComponentChildren;
}

const routes: RouteDef[] = [
  // Admin pages live under /manage: /admin/* belongs to the API (a reload there would hit JSON).
  { path: '/', guard: 'public', render: () => <Home /> },
  { path: '/login', guard: 'guest', render: () => <Login /> },
  { path: '/register', guard: 'guest', render: () => <Register /> },
  { path: '/forgot-password', guard: 'public', render: () => <ForgotPassword /> },
  { path: '/reset-password', guard: 'public', render: () => <ResetPassword /> },
  { path: '/verify-email', guard: 'public', render: () => <VerifyEmail /> },
  { path: '/dashboard', guard: 'user', render: () => <Dashboard /> },
  { path: '/keys', guard: 'user', render: () => <Keys /> },
  { path: '/playground', guard: 'user', render: () => <Playground /> },
  { path: '/billing', guard: 'user', render: () => <Billing /> },
  { path: '/security', guard: 'user', render: () => <Security /> },
  { path: '/oauth/done', guard: 'public', render: () => <OAuthDone /> },
  { path: '/manage', guard: 'admin', render: () => <AdminAccounts /> },
  { path: '/manage/accounts', guard: 'admin', render: () => <AdminAccounts /> },
  { path: '/manage/accounts/:id', guard: 'admin', render: (p) => <AdminAccount id={p.id} /> },
  { path: '/manage/models', guard: 'admin', render: () => <AdminModels /> },
  { path: '/manage/providers', guard: 'admin', render: () => <AdminProviders /> },
  { path: '/manage/catalog', guard: 'admin', render: () => <AdminImport /> },
  { path: '/manage/audit', guard: 'admin', render: () => <AdminAudit /> },
  { path: '/manage/operations', guard: 'admin', render: () => <AdminOperations /> },
];

/** Keeps one broken page from blanking the whole app; reset on navigation (keyed by path). */
class ErrorBoundary extends Component<{ children: ComponentChildren }, { error: unknown }> {
  override state = { error: null as unknown };
  static override getDerivedStateFromError(error: unknown) {
    return { error };
  }
  override componentDidCatch(error: unknown) {
    console.error('page crashed', error);
  }
  override render() {
    if (this.state.error) {
      return (
        <div class="narrow" role="alert" data-testid="page-crash">
          <h1>Something went wrong</h1>
          <p>This page hit an unexpected error: {String((this.state.error as Error)?.message ?? this.state.error)}</p>
          <button type="button" class="btn btn-primary" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </div>
      );
    }
    return this.props.children;
  }
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

function NotFound() {
  return (
    <div class="narrow center-block">
      <h1>Page not found</h1>
      <p>There is nothing at this address.</p>
      <Link class="btn btn-primary" href="/">
        Go to the home page
      </Link>
    </div>
  );
}

function Logo() {
  return (
    <svg class="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
      <rect x="1" y="1" width="30" height="30" rx="8" class="logo-bg" />
      <path class="logo-fg" d="M9 8h8.5a5 5 0 0 1 2.6 9.3A5.2 5.2 0 0 1 18 27H9zm4 4v4h4a2 2 0 0 0 0-4zm0 8v3.6h4.6a1.8 1.8 0 0 0 0-3.6z" />
    </svg>
  );
}

function Header() {
  const s = useSession();
  const loc = useLocation();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [loc.path]);
  const acct = s.account;
  const link = (href: string, label: string, testid: string, section = href) => {
    const active = href === '/' ? loc.path === '/' : loc.path === section || loc.path.startsWith(section + '/');
    return (
      <li>
        <Link href={href} aria-current={active ? 'page' : undefined} data-testid={testid}>
          {label}
        </Link>
      </li>
    );
  };
  return (
    <header class="site-header">
      <div class="header-inner">
        <Link href="/" class="brand" aria-label="Beaver home">
          <Logo />
          <span>Beaver</span>
        </Link>
        <button
          type="button"
          class="btn btn-ghost menu-toggle"
          aria-expanded={open ? 'true' : 'false'}
          aria-controls="main-nav"
          onClick={() => setOpen(!open)}
          data-testid="nav-toggle"
        >
          <span class="burger" aria-hidden="true" />
          Menu
        </button>
        <nav id="main-nav" class={`main-nav${open ? ' open' : ''}`} aria-label="Main">
          <ul>
            {link('/', 'Models', 'nav-home')}
            {acct && link('/dashboard', 'Dashboard', 'nav-dashboard')}
            {acct && link('/keys', 'API keys', 'nav-keys')}
            {acct && link('/playground', 'Playground', 'nav-playground')}
            {acct && link('/billing', 'Billing', 'nav-billing')}
            {acct && link('/security', 'Security', 'nav-security')}
            {acct?.role === 'admin' && link('/manage/accounts', 'Admin', 'nav-admin', '/manage')}
          </ul>
          <div class="nav-account">
            {s.status === 'resuming' ? null : acct ? (
              <>
                <span class="who" title={acct.email} data-testid="nav-email">
                  {acct.email}
                </span>
                <button type="button" class="btn btn-small btn-secondary" data-testid="sign-out" onClick={() => session.logout().then(() => navigate('/login?signed_out=1'))}>
                  Sign out
                </button>
              </>
            ) : (
              <>
                <Link class="btn btn-small btn-ghost" href="/login" data-testid="nav-login">
                  Sign in
                </Link>
                <Link class="btn btn-small btn-primary" href="/register" data-testid="nav-register">
                  Create account
                </Link>
              </>
            )}
          </div>
        </nav>
      </div>
    </header>
  );
}

function AdminNav({ path }: { path: string }) {
  const items = [
    ['/manage/accounts', 'Accounts'],
    ['/manage/models', 'Models & pricing'],
    ['/manage/providers', 'Providers'],
    ['/manage/catalog', 'Import & export'],
    ['/manage/audit', 'Audit log'],
    ['/manage/operations', 'Operations'],
  ];
  return (
    <nav class="subnav" aria-label="Admin">
      {items.map(([href, label]) => (
        <Link key={href} href={href} data-testid={`admin-nav-${href.slice('/manage/'.length)}`} aria-current={path === href || (href === '/manage/accounts' && (path === '/manage' || path.startsWith('/manage/accounts/'))) ? 'page' : undefined}>
          {label}
        </Link>
      ))}
      <a href={TEMPORAL_UI} target="_blank" rel="noopener noreferrer" data-testid="temporal-link">
        Temporal UI ↗
      </a>
    </nav>
  );
}

export function App() {
  const s = useSession();
  const loc = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    void session.resume();
  }, []);

  // Move focus to the main region on client-side navigation (screen readers and keyboard users).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    mainRef.current?.focus({ preventScroll: true });
  }, [loc.path]);

  let content: ComponentChildren = <NotFound />;
  for (const r of routes) {
    const params = matchRoute(r.path, loc.path);
    if (!params) continue;
    if (r.guard !== 'public' && s.status === 'resuming') {
      content = <Loading label="Restoring your session…" />;
    } else if ((r.guard === 'user' || r.guard === 'admin') && !s.account) {
      const next = encodeURIComponent(loc.path + window.location.search);
      content = <Redirect to={`/login?next=${next}${s.reason === 'expired' ? '&expired=1' : ''}`} />;
    } else if (r.guard === 'admin' && s.account?.role !== 'admin') {
      content = (
        <div class="narrow">
          <h1>Admins only</h1>
          <p>This page needs the admin role.</p>
        </div>
      );
    } else if (r.guard === 'guest' && s.account) {
      content = <Redirect to={safeNext(loc.query.get('next'))} />;
    } else {
      content = (
        <>
          {r.guard === 'admin' && <AdminNav path={loc.path} />}
          {r.render(params)}
        </>
      );
    }
    break;
  }

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <Header />
      <main id="main" ref={mainRef} tabIndex={-1} class="container">
        <ErrorBoundary key={loc.path}>{content}</ErrorBoundary>
      </main>
      <footer class="site-footer">
        <div class="container">
          <span>Beaver — one API for OpenAI, Anthropic, Google, DeepSeek, Perplexity and xAI.</span>
          <span>
            Prices in USD, charged per token in exact micro-dollars.
          </span>
        </div>
      </footer>
    </>
  );
}
