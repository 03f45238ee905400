import { useState } from 'preact/hooks';
import qrcode from 'qrcode-generator';
import { api, session } from '../api/client';
import type { Passkey } from '../api/types';
import { Async, Button, ErrorBox, Field, Notice, PageHeader, When } from '../components/ui';
import { useAction, useAsync, useSession, useTitle } from '../lib/hooks';
import { createPasskey, passkeysSupported } from '../lib/webauthn';
import { LinkedIdentities } from './Identity';
import { AccountAudit } from './Audit';

/** The otpauth URI as an inline SVG QR code (drawn here: nothing leaves the browser). */
function QrCode({ text }: { text: string }) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const cells: string[] = [];
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) cells.push(`M${c + 4} ${r + 4}h1v1h-1z`);
  return (
    <svg class="qr" viewBox={`0 0 ${n + 8} ${n + 8}`} width="200" height="200" role="img" aria-label="QR code of the two-factor secret" data-testid="totp-qr">
      <rect width={n + 8} height={n + 8} fill="#fff" />
      <path d={cells.join('')} fill="#000" />
    </svg>
  );
}

/** How many recovery codes are left, and a fresh set for a current code (the old ones stop working). */
function RecoveryCodes({ onCodes }: { onCodes: (codes: string[]) => void }) {
  const status = useAsync((signal) => api<{ two_factor: boolean; recovery_codes_left: number }>('GET', '/auth/2fa', undefined, { signal }), []);
  const [code, setCode] = useState('');
  const renew = useAction(async () => {
    const r = await api<{ recovery_codes: string[] }>('POST', '/auth/2fa/recovery-codes', { code: code.replace(/\s+/g, '') });
    setCode('');
    onCodes(r.recovery_codes);
    status.reload();
  });
  return (
    <form
      class="form"
      onSubmit={(e) => {
        e.preventDefault();
        void renew.run();
      }}
    >
      <Async state={status}>
        {(d) => (
          <p data-testid="recovery-codes-left">
            {d.recovery_codes_left} of 10 recovery codes left.{d.recovery_codes_left <= 3 ? ' Renew them before you run out.' : ''}
          </p>
        )}
      </Async>
      <Field label="Code from the app" hint="New recovery codes replace the old ones, which stop working.">
        {(id) => <input id={id} required inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} data-testid="recovery-renew-code" />}
      </Field>
      <ErrorBox error={renew.error} testid="recovery-renew-error" />
      <Button type="submit" busy={renew.busy} data-testid="recovery-renew">
        New recovery codes
      </Button>
    </form>
  );
}

function TwoFactor() {
  const s = useSession();
  const on = !!s.account?.two_factor;
  const [enrol, setEnrol] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [code, setCode] = useState('');
  const [disableWith, setDisableWith] = useState('');
  const start = useAction(async () => setEnrol(await api<{ secret: string; otpauth_uri: string }>('POST', '/auth/2fa/enroll', {})));
  const confirm = useAction(async () => {
    const r = await api<{ recovery_codes: string[] }>('POST', '/auth/2fa/confirm', { code: code.replace(/\s+/g, '') });
    setCodes(r.recovery_codes);
    setEnrol(null);
    setCode('');
    await session.reloadAccount();
  });
  const disable = useAction(async () => {
    const v = disableWith.trim();
    await api('POST', '/auth/2fa/disable', /^\d{6}$/.test(v.replace(/\s+/g, '')) ? { code: v.replace(/\s+/g, '') } : { recovery_code: v });
    setDisableWith('');
    await session.reloadAccount();
  });

  return (
    <section class="card" data-testid="twofactor-card">
      <h2>Two-factor authentication</h2>
      {codes && (
        <Notice kind="warn" testid="recovery-codes">
          <p>
            <strong>Save these recovery codes now.</strong> Each signs you in once if you lose your authenticator app; they are not shown again.
          </p>
          <ul class="recovery-codes">
            {codes.map((c) => (
              <li key={c}>
                <code data-testid="recovery-code">{c}</code>
              </li>
            ))}
          </ul>
          <Button small onClick={() => setCodes(null)} data-testid="recovery-codes-done">
            I saved them
          </Button>
        </Notice>
      )}
      {on ? (
        <>
          <p data-testid="twofactor-status">
            Two-factor authentication is <strong>on</strong>: signing in with your password also asks for a code.
          </p>
          <RecoveryCodes key={codes ? codes.join() : 'none'} onCodes={setCodes} />
          <form
            class="form"
            onSubmit={(e) => {
              e.preventDefault();
              void disable.run();
            }}
          >
            <Field label="Code or recovery code" hint="To turn two-factor off, confirm with a current code or an unused recovery code.">
              {(id) => <input id={id} required autoComplete="one-time-code" value={disableWith} onInput={(e) => setDisableWith(e.currentTarget.value)} data-testid="twofactor-disable-code" />}
            </Field>
            <ErrorBox error={disable.error} testid="twofactor-disable-error" />
            <Button type="submit" variant="danger" busy={disable.busy} data-testid="twofactor-disable">
              Turn off two-factor
            </Button>
          </form>
        </>
      ) : enrol ? (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            void confirm.run();
          }}
        >
          <p>Scan this code with an authenticator app, or type the secret in, then enter the 6-digit code it shows. Turning it on signs out your other sessions.</p>
          <QrCode text={enrol.otpauth_uri} />
          <p>
            Secret: <code data-testid="totp-secret">{enrol.secret}</code>
          </p>
          <Field label="Code from the app">
            {(id) => <input id={id} required inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} data-testid="totp-confirm-code" />}
          </Field>
          <ErrorBox error={confirm.error} testid="totp-confirm-error" />
          <Button type="submit" variant="primary" busy={confirm.busy} data-testid="totp-confirm">
            Turn on two-factor
          </Button>
        </form>
      ) : (
        <>
          <p data-testid="twofactor-status">Two-factor authentication is off. Turn it on to ask for a code from an authenticator app at every password sign-in.</p>
          <ErrorBox error={start.error} />
          <Button variant="primary" busy={start.busy} onClick={() => void start.run()} data-testid="twofactor-enroll">
            Set up two-factor
          </Button>
        </>
      )}
    </section>
  );
}

function Passkeys() {
  const list = useAsync((signal) => api<{ data: Passkey[] }>('GET', '/auth/passkeys', undefined, { signal }), []);
  const [name, setName] = useState('');
  const add = useAction(async () => {
    const begin = await api<{ ceremony_token: string; options: { publicKey: Record<string, unknown> } }>('POST', '/auth/passkeys/register/begin', {});
    const credential = await createPasskey(begin.options);
    await api('POST', '/auth/passkeys/register/finish', { ceremony_token: begin.ceremony_token, credential, name: name.trim() });
    setName('');
    list.reload();
  });
  const remove = useAction(async (id: string) => {
    await api('DELETE', `/auth/passkeys/${encodeURIComponent(id)}`);
    list.reload();
  });
  return (
    <section class="card" data-testid="passkeys-card">
      <h2>Passkeys</h2>
      <p>A passkey signs you in without a password or a code, with your device's screen lock or a security key.</p>
      <Async state={list}>
        {(d) =>
          d.data.length === 0 ? (
            <p data-testid="passkeys-empty">No passkeys yet.</p>
          ) : (
            <table class="table" data-testid="passkeys-table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Added</th>
                  <th>Last used</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {d.data.map((p) => (
                  <tr key={p.id} data-testid="passkey-row">
                    <td>{p.name}</td>
                    <td>
                      <When iso={p.created_at} />
                    </td>
                    <td>
                      <When iso={p.last_used_at} />
                    </td>
                    <td>
                      <Button small variant="danger" onClick={() => void remove.run(p.id)} data-testid="passkey-remove">
                        Remove
                      </Button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Async>
      <ErrorBox error={remove.error} />
      {passkeysSupported() ? (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            void add.run();
          }}
        >
          <Field label="Name" hint="To tell your passkeys apart, e.g. “laptop”.">
            {(id) => <input id={id} maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} data-testid="passkey-name" />}
          </Field>
          <ErrorBox error={add.error} testid="passkey-add-error" />
          <Button type="submit" variant="primary" busy={add.busy} data-testid="passkey-add">
            Add a passkey
          </Button>
        </form>
      ) : (
        <Notice kind="warn">This browser does not support passkeys.</Notice>
      )}
    </section>
  );
}

export function Security() {
  useTitle('Security');
  return (
    <div class="page">
      <PageHeader title="Security" subtitle="Two-factor authentication, passkeys, the identity providers you sign in with, and every security- and money-relevant act on your account." />
      <TwoFactor />
      <Passkeys />
      <LinkedIdentities />
      <AccountAudit />
    </div>
  );
}
