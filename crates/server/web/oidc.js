// Sign-in through the organisation's identity provider: the OpenID Connect authorization code
// flow with PKCE (RFC 7636, S256), run by the page as a public client. The server names the
// provider in <meta name="atlas-oidc-…"> elements when `[web.oidc]` is configured.

const PENDING_KEY = 'atlas-oidc-pending';
/**
 * Set while this tab's token came from the provider: the ID token (for the end-session
 * request's `id_token_hint`), or `'1'` when the provider sent none.
 */
const SIGNED_IN_KEY = 'atlas-oidc-signed-in';
/** The refresh token the provider issued this tab, rotated at each use. */
const REFRESH_KEY = 'atlas-oidc-refresh';

/** The provider's settings, or null when none is configured. */
export function provider() {
  const read = (name) => {
    const element = document.querySelector(`meta[name="atlas-oidc-${name}"]`);
    return element ? element.content : null;
  };
  const settings = {
    authorization: read('authorization-endpoint'),
    token: read('token-endpoint'),
    clientId: read('client-id'),
    scope: read('scope') || 'openid',
    endSession: read('end-session-endpoint'),
  };
  return settings.authorization && settings.token && settings.clientId ? settings : null;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Where the provider sends the browser back: this page, without query or fragment. */
function redirectUri() {
  return `${window.location.origin}/`;
}

/** `endpoint` with `params` added to whatever query it already has. */
function withParams(endpoint, params) {
  const url = new URL(endpoint);
  Object.entries(params).forEach(([name, value]) => url.searchParams.set(name, value));
  return url.toString();
}

/** The standard error code of a provider's answer (RFC 6749), never its free text. */
function errorCode(text) {
  return (text || '').replace(/[^a-z_]/g, '') || 'no reason given';
}

/** Sends the browser to the provider to sign in. */
export async function begin(settings) {
  const verifier = random();
  const state = random();
  const challenge = base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state }));
  window.location.assign(withParams(settings.authorization, {
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: redirectUri(),
    scope: settings.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }));
}

/**
 * When the provider has just sent the browser back, exchanges the code for tokens and returns
 * `{ accessToken, idToken }` (removing the code from the address); returns null when this is not
 * such a return. Throws with the reason when the sign-in failed or does not match the one this
 * tab began.
 */
export async function complete(settings) {
  const query = new URLSearchParams(window.location.search);
  if (!query.has('code') && !query.has('error')) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) || 'null');
  sessionStorage.removeItem(PENDING_KEY);
  window.history.replaceState(null, '', redirectUri());
  // Only a return to the sign-in this tab began is read at all, errors included.
  if (!pending || pending.state !== query.get('state')) {
    throw new Error('That sign-in was not started from this tab (its state does not match): sign in again.');
  }
  if (query.has('error')) {
    throw new Error(`The identity provider refused the sign-in (${errorCode(query.get('error'))}).`);
  }
  const response = await fetch(settings.token, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: query.get('code'),
      redirect_uri: redirectUri(),
      client_id: settings.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    throw new Error(`The identity provider did not issue a token (${response.status}, ${errorCode(answer.error)}).`);
  }
  if (answer.refresh_token) sessionStorage.setItem(REFRESH_KEY, answer.refresh_token);
  return { accessToken: answer.access_token, idToken: answer.id_token || null };
}

/** Whether this tab can get a new access token from the provider without the user. */
export function canRefresh() {
  return Boolean(provider() && sessionStorage.getItem(REFRESH_KEY));
}

/**
 * A new access token from the provider for this tab's refresh token (which the provider may
 * rotate: the new one is kept), or null when there is none or the provider refuses it (the
 * refresh token is then forgotten).
 */
export async function refresh() {
  const settings = provider();
  const refreshToken = sessionStorage.getItem(REFRESH_KEY);
  if (!settings || !refreshToken) return null;
  const response = await fetch(settings.token, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: settings.clientId }),
  }).catch(() => null);
  const answer = response ? await response.json().catch(() => ({})) : {};
  if (!response || !response.ok || !answer.access_token) {
    // A network failure keeps the refresh token for the next try; a refusal ends it.
    if (response) sessionStorage.removeItem(REFRESH_KEY);
    return null;
  }
  if (answer.refresh_token) sessionStorage.setItem(REFRESH_KEY, answer.refresh_token);
  if (answer.id_token) sessionStorage.setItem(SIGNED_IN_KEY, answer.id_token);
  return answer.access_token;
}

/** Remembers that this tab's token came from the provider (once Atlas has accepted it). */
export function rememberProviderSignIn(idToken) {
  sessionStorage.setItem(SIGNED_IN_KEY, idToken || '1');
}

/** Forgets that this tab's token came from the provider (a token was pasted or picked). */
export function forgetProviderSignIn() {
  sessionStorage.removeItem(SIGNED_IN_KEY);
  sessionStorage.removeItem(REFRESH_KEY);
}

/**
 * Where signing out should send the browser to end the provider's session too (OpenID Connect
 * RP-initiated logout, with `id_token_hint` when the provider gave an ID token), or null when
 * the token did not come from the provider or it names no end-session endpoint. Forgets that
 * the tab signed in through the provider.
 */
export function endSessionUrl() {
  const settings = provider();
  const signedIn = sessionStorage.getItem(SIGNED_IN_KEY);
  forgetProviderSignIn();
  if (!settings || !settings.endSession || !signedIn) return null;
  const params = { client_id: settings.clientId, post_logout_redirect_uri: redirectUri() };
  if (signedIn !== '1') params.id_token_hint = signedIn;
  return withParams(settings.endSession, params);
}
