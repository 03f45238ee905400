// WebAuthn in the browser: the server's options (JSON, binary fields as
// base64url, as go-webauthn sends them) → navigator.credentials → the
// credential as JSON for the server.

type Json = Record<string, unknown>;

export function b64urlToBytes(s: string): Uint8Array<ArrayBuffer> {
  const pad = s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=');
  const bin = atob(pad);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToB64url(b: ArrayBuffer | Uint8Array): string {
  const u = b instanceof Uint8Array ? b : new Uint8Array(b);
  let s = '';
  for (const c of u) s += String.fromCharCode(c);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const withIds = (list: unknown) =>
  Array.isArray(list) ? list.map((d: Json) => ({ ...d, id: b64urlToBytes(d.id as string) })) : undefined;

export function passkeysSupported(): boolean {
  return typeof window !== 'undefined' && !!window.PublicKeyCredential && !!navigator.credentials;
}

/** Creates a passkey from register/begin's options; returns the credential JSON for register/finish. */
export async function createPasskey(options: { publicKey: Json }): Promise<Json> {
  const pk = options.publicKey;
  const user = pk.user as Json;
  const publicKey = {
    ...pk,
    challenge: b64urlToBytes(pk.challenge as string),
    user: { ...user, id: b64urlToBytes(user.id as string) },
    excludeCredentials: withIds(pk.excludeCredentials),
  } as unknown as PublicKeyCredentialCreationOptions;
  const cred = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!cred) throw new Error('No passkey was created.');
  const r = cred.response as AuthenticatorAttestationResponse;
  return {
    id: cred.id,
    rawId: bytesToB64url(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: bytesToB64url(r.attestationObject),
      clientDataJSON: bytesToB64url(r.clientDataJSON),
      transports: typeof r.getTransports === 'function' ? r.getTransports() : [],
    },
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}

/** Signs login/begin's challenge with a passkey; returns the assertion JSON for login/finish. */
export async function getPasskey(options: { publicKey: Json }): Promise<Json> {
  const pk = options.publicKey;
  const publicKey = {
    ...pk,
    challenge: b64urlToBytes(pk.challenge as string),
    allowCredentials: withIds(pk.allowCredentials),
  } as unknown as PublicKeyCredentialRequestOptions;
  const cred = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!cred) throw new Error('No passkey was chosen.');
  const r = cred.response as AuthenticatorAssertionResponse;
  return {
    id: cred.id,
    rawId: bytesToB64url(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: bytesToB64url(r.authenticatorData),
      clientDataJSON: bytesToB64url(r.clientDataJSON),
      signature: bytesToB64url(r.signature),
      userHandle: r.userHandle ? bytesToB64url(r.userHandle) : undefined,
    },
    clientExtensionResults: cred.getClientExtensionResults(),
  };
}
