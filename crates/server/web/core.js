// What every page of the web application shares: the signed-in caller, API calls with their
// token, small DOM helpers and how published figures are written.

import { canRefresh, endSessionUrl, forgetProviderSignIn, refresh } from './oidc.js';

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

const TOKEN_KEY = 'atlas-token';

/**
 * The signed-in caller: their token (kept in this tab's sessionStorage) and who Atlas reads it
 * as (`GET /api/v1/session`: `sub`, `partnership`, `agency`, `roles`), whatever claim names the
 * identity provider uses.
 */
export const session = { token: sessionStorage.getItem(TOKEN_KEY), claims: null };

/** Where the caller was when their session ended: the page and the map's settings. */
const PLACE_KEY = 'atlas-place';
/**
 * A token is renewed 90 s before it expires (a third of its life, when shorter), and the
 * caller warned 60 s before (a sixth), which a renewal makes unnecessary.
 */
const RENEW_BEFORE_MS = 90_000;
const WARN_BEFORE_MS = 60_000;
const timers = { renew: null, warn: null, end: null };

const NOTICE_KEY = 'atlas-sign-in-notice';
/** Whether this page is already signing out. */
let signingOut = false;

/**
 * Forgets the token and reloads the page, so that nothing the last person saw stays in this
 * tab (through the identity provider's end-session endpoint, when the token came from it and it
 * names one, unless `keepProviderSession`: a session that merely ran out signs in again
 * quickly); `notice` is shown on the sign-in page that follows.
 */
export function signOut(notice, { keepProviderSession = false } = {}) {
  if (signingOut) return; // Once: a second call would cancel the first one's navigation.
  signingOut = true;
  forgetToken();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  if (keepProviderSession) forgetProviderSignIn();
  const endSession = keepProviderSession ? null : endSessionUrl();
  if (endSession) {
    window.location.assign(endSession); // The provider ends its session and sends the browser back.
    return;
  }
  window.history.replaceState(null, '', '/');
  window.location.reload();
}

/** The notice left by the last sign-out, once. */
export function takeNotice() {
  const notice = sessionStorage.getItem(NOTICE_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  return notice;
}

/** The claims of a JWT, or null when it is not one. */
export function claimsOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

/**
 * Keeps `token` for this tab (who it names is asked of the server: {@link loadSession}); false
 * when it is not a JWT with an expiry.
 */
export function keepToken(token) {
  const claims = claimsOf(token.trim());
  if (!claims || typeof claims.exp !== 'number') return false;
  session.token = token.trim();
  sessionStorage.setItem(TOKEN_KEY, session.token);
  return true;
}

/**
 * Asks the server who the kept token is (`GET /api/v1/session`) and plans its renewal; throws
 * the reason, forgetting the token, when the server refuses it.
 */
export async function loadSession() {
  const response = await fetch('/api/v1/session', {
    headers: { Authorization: `Bearer ${session.token}`, Accept: 'application/json' },
  });
  if (!response.ok) {
    const error = response.status === 401
      ? new Error('That token was refused: it has expired, or no key Atlas trusts signed it.')
      : await failure(response);
    forgetToken();
    throw error;
  }
  const me = await response.json();
  session.claims = { sub: me.subject, partnership: me.partnership, agency: me.agency, roles: me.roles };
  planRenewal();
  return session.claims;
}

/** Forgets the token. */
function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  session.claims = null;
  Object.keys(timers).forEach((name) => clearTimeout(timers[name]));
}

/** When the token expires (milliseconds since the epoch), or null. */
function expiresAt() {
  const claims = session.token ? claimsOf(session.token) : null;
  return claims && typeof claims.exp === 'number' ? claims.exp * 1000 : null;
}

/**
 * Plans what happens before the token expires: a new one from the identity provider (when this
 * tab has a refresh token), else a warning (with a way to sign in again and come back to the
 * same place), and at expiry a sign-out that keeps the place.
 */
function planRenewal() {
  Object.keys(timers).forEach((name) => clearTimeout(timers[name]));
  $('session-ending').hidden = true;
  const at = expiresAt();
  if (!at) return;
  const now = Date.now();
  const claims = claimsOf(session.token);
  const life = typeof claims.iat === 'number' ? at - claims.iat * 1000 : at - now;
  if (canRefresh()) timers.renew = setTimeout(renew, Math.max(0, at - Math.min(RENEW_BEFORE_MS, life / 3) - now));
  timers.warn = setTimeout(warnOfEnd, Math.max(0, at - Math.min(WARN_BEFORE_MS, life / 6) - now));
  timers.end = setTimeout(() => {
    savePlace();
    signOut('Your session ended. Sign in again to carry on where you were.', { keepProviderSession: true });
  }, Math.max(0, at - now));
}

/** Replaces the token with a new one from the identity provider; whether that worked. */
async function renew() {
  const token = await refresh().catch(() => null);
  if (!token || !keepToken(token)) return false;
  planRenewal();
  document.dispatchEvent(new CustomEvent('atlas-renewed'));
  return true;
}

/** Shows when the session ends, and how to stay. */
function warnOfEnd() {
  const at = new Date(expiresAt()).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  $('session-ending-text').textContent = canRefresh()
    ? `Your session ends at ${at} unless it can be renewed.`
    : `Your session ends at ${at}.`;
  $('session-ending').hidden = false;
}

/** The key a control's value is kept under: its id, or its box's id and its value. */
function placeKey(control) {
  if (control.id) return control.id;
  const owner = control.parentElement && control.parentElement.closest('[id]');
  return owner && control.value ? `${owner.id}:${control.value}` : null;
}

/** Keeps where the caller is (the page, and its controls' values) for after a sign-in. */
export function savePlace() {
  const page = document.querySelector('.page:not([hidden]):not(#sign-in):not(#no-page)');
  if (!page || !session.claims) return;
  const controls = {};
  page.querySelectorAll('input, select').forEach((control) => {
    const key = placeKey(control);
    if (!key || ['file', 'password', 'hidden'].includes(control.type)) return;
    controls[key] = control.type === 'checkbox' ? control.checked : control.value;
  });
  // The page shown, named as the address names it (`#map`), whether or not the address does.
  const hash = `#${page.id.replace(/-page$/, '')}`;
  sessionStorage.setItem(PLACE_KEY, JSON.stringify({ hash, sub: session.claims.sub, controls }));
}

/**
 * The page the same caller was on before signing in again, once; null otherwise. The map's
 * settings stay kept for {@link restorePlace}; another page's are forgotten.
 */
export function placeToReturnTo() {
  const place = JSON.parse(sessionStorage.getItem(PLACE_KEY) || 'null');
  if (!place || !place.hash || !session.claims || place.sub !== session.claims.sub) {
    if (place && !place.hash) return null; // Returned already: the controls wait for their page.
    sessionStorage.removeItem(PLACE_KEY);
    return null;
  }
  if (place.hash === '#map') sessionStorage.setItem(PLACE_KEY, JSON.stringify({ ...place, hash: null }));
  else sessionStorage.removeItem(PLACE_KEY);
  return place.hash;
}

/** Puts back the values the same caller's controls in `section` had; once. */
export function restorePlace(section) {
  const place = JSON.parse(sessionStorage.getItem(PLACE_KEY) || 'null');
  sessionStorage.removeItem(PLACE_KEY);
  if (!place || !session.claims || place.sub !== session.claims.sub) return false;
  section.querySelectorAll('input, select').forEach((control) => {
    const key = placeKey(control);
    if (!key || !(key in place.controls)) return;
    if (control.type === 'checkbox') control.checked = place.controls[key];
    else control.value = place.controls[key];
  });
  return true;
}

/** Whether the caller has `role`. */
export function hasRole(role) {
  return Boolean(session.claims && (session.claims.roles || []).includes(role));
}

/** The error a refused API call throws: the server's own message. */
async function failure(response) {
  let message = `The server answered ${response.status}.`;
  try {
    message = (await response.json()).message || message;
  } catch {
    // Not JSON: keep the status.
  }
  return new Error(message);
}

/**
 * Calls the API with the caller's token; returns the response, or throws the server's message.
 * A 401 renews the token from the identity provider and tries once more when it can; otherwise
 * it signs the caller out, keeping their place.
 */
export async function api(path, { method = 'GET', accept = 'application/json', body } = {}) {
  if (!session.token) throw new Error('You are signed out.');
  const send = () => fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${session.token}`,
      Accept: accept,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let response = await send();
  if (response.status === 401 && canRefresh() && await renew()) response = await send();
  if (response.status === 401) {
    const message = 'Your sign-in has expired or was refused: sign in again to carry on where you were.';
    savePlace();
    signOut(message, { keepProviderSession: true });
    throw new Error(message);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** The JSON answer of a GET. */
export async function getJson(path) {
  return (await api(path)).json();
}

/** Fetches `path` with the token and lets the browser save it as `name`. */
export async function download(path, accept, name) {
  const response = await api(path, { accept });
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked once the browser has taken the download over.
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Makes an element: `el('td', { className: 'n' }, 'text', child)`. */
export function el(tag, properties = {}, ...children) {
  const element = document.createElement(tag);
  Object.entries(properties).forEach(([name, value]) => {
    if (name === 'dataset') Object.assign(element.dataset, value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name in element) element[name] = value;
    else element.setAttribute(name, value);
  });
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

/** Makes an SVG element: `svg('rect', { x: 0, width: 10 }, child)`. */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  Object.entries(attributes).forEach(([name, value]) => element.setAttribute(name, String(value)));
  element.append(...children);
  return element;
}

/**
 * A table with a header row; each named column sorts by its button (numbers as numbers, words
 * in order; again for the other way), and `aria-sort` says how it is sorted. Columns with an
 * empty heading (buttons) do not sort.
 */
export function table(headings, rows, caption) {
  const body = el('tbody', {}, ...rows.map((row) => el('tr', {}, ...row.map((cell) => el('td', {}, cell)))));
  const cells = headings.map((heading) => el('th', { scope: 'col' }));
  const sortBy = (column) => {
    const ascending = cells[column].getAttribute('aria-sort') !== 'ascending';
    cells.forEach((cell) => { if (cell.hasAttribute('aria-sort')) cell.setAttribute('aria-sort', 'none'); });
    cells[column].setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    const key = (row) => (row.children[column] ? row.children[column].textContent.trim() : '');
    const number = (text) => (/^-?[\d,]+(\.\d+)?$/.test(text) ? Number(text.replace(/,/g, '')) : NaN);
    const sorted = [...body.rows].sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const [nx, ny] = [number(x), number(y)];
      const order = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y, 'en', { numeric: true }) : nx - ny;
      return ascending ? order : -order;
    });
    body.append(...sorted);
  };
  headings.forEach((heading, column) => {
    if (!heading) return;
    cells[column].setAttribute('aria-sort', 'none');
    cells[column].append(el('button', { type: 'button', className: 'sort', onclick: () => sortBy(column) }, heading));
  });
  return el('table', {}, caption ? el('caption', {}, caption) : null, el('thead', {}, el('tr', {}, ...cells)), body);
}

/**
 * A count with its noun, singular for exactly one: `plural(1, 'record')` is "1 record",
 * `plural(2, 'distinct child', 'distinct children')` is "2 distinct children".
 */
export function plural(count, singular, pluralForm = `${singular}s`) {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** What a suppressed figure means, wherever one is shown. */
export const SUPPRESSED =
  'c: suppressed to protect children’s privacy. The figure is small enough that it could identify a child, or would let one be worked out from the totals. It is not zero.';

/**
 * A published figure: the number, or `c` (marked up with its explanation) where it was
 * suppressed. Never shows a suppressed figure as zero.
 */
export function published(value, digits) {
  if (value === 'c') {
    return el('abbr', { className: 'suppressed', title: SUPPRESSED, tabIndex: 0 }, 'c');
  }
  if (value === null || value === undefined) return el('span', { className: 'missing', title: 'not available' }, '–');
  if (typeof value === 'number' && digits !== undefined) return String(value.toFixed(digits));
  return String(value);
}

/** The vocabularies' values in words, for people: agency kinds, record kinds, roles. */
const WORDS = {
  police: 'Police',
  social_care: 'Children’s social care',
  health: 'Health',
  education: 'Education',
  yot: 'Youth offending team',
  probation: 'Probation',
  housing: 'Housing',
  youth_services: 'Youth services',
  vcs: 'Voluntary and community sector',
  missing_episode: 'missing episode',
  health_attendance: 'health attendance',
  education_concern: 'education concern',
  agency_analyst: 'agency analyst',
  partnership_analyst: 'partnership analyst',
  partner_viewer: 'partner viewer',
  admin: 'administrator',
  auditor: 'auditor',
  board_member: 'board member',
  not_recorded: 'not recorded',
};

/** A vocabulary value in words: `yot` is "Youth offending team"; others lose their underscores. */
export function words(value) {
  return WORDS[value] || String(value).replace(/_/g, ' ');
}

/** Sets a status line's text. */
export function say(id, text) {
  $(id).textContent = text;
}
