// Safeguard Atlas in the browser: sign-in, the pages each role may open, and moving between
// them (`#map`, `#upload`, `#comparison`, `#profiles`, `#assessment`, `#partner`, `#requests`, `#audit`). Plain JavaScript modules with
// no build step; the server embeds these files (crates/server/src/web.rs).

import { $, el, getJson, hasRole, keepToken, loadSession, placeToReturnTo, savePlace, session, signOut, takeNotice, words } from './core.js';
import { showMap, stopPlaying } from './map.js';
import { showUpload } from './upload.js';
import { showComparison } from './comparison.js';
import { showProfiles } from './profiles.js';
import { showAssessment } from './assessment.js';
import { showPartner } from './partner.js';
import { showRequests } from './requests.js';
import { showAudit } from './audit.js';
import { begin, complete, forgetProviderSignIn, provider, rememberProviderSignIn } from './oidc.js';

/**
 * The pages, in the order the navigation lists them, with the roles that may open them; a
 * caller starts on the first they may open (agency analysts on upload, partnership analysts on
 * the map).
 */
const PAGES = [
  { id: 'upload', title: 'Upload', roles: ['agency_analyst'], show: showUpload },
  { id: 'map', title: 'Hotspot map', roles: ['partnership_analyst', 'agency_analyst'], show: showMap },
  { id: 'comparison', title: 'Comparison and releases', roles: ['partnership_analyst'], show: showComparison },
  { id: 'profiles', title: 'Profiles', roles: ['partnership_analyst', 'board_member'], show: showProfiles },
  { id: 'assessment', title: 'Self-assessment', roles: ['partnership_analyst', 'board_member'], show: showAssessment },
  { id: 'partner', title: 'Partner releases', roles: ['partner_viewer'], show: showPartner },
  { id: 'requests', title: 'Requests', roles: ['partnership_analyst', 'partner_viewer'], show: showRequests },
  { id: 'audit', title: 'Audit', roles: ['auditor'], show: showAudit },
];

/** The pages the signed-in caller may open. */
function allowedPages() {
  return PAGES.filter((page) => page.roles.some(hasRole));
}

function hideAll() {
  document.querySelectorAll('.page').forEach((page) => {
    page.hidden = true;
  });
}

/**
 * Shows what is waiting for the caller above every page (partnership analysts and partner
 * viewers): requests to answer, releases to approve, questions to reply to, answers to read.
 */
let waitingAsked = 0;

async function showWaiting() {
  const aside = $('waiting');
  const asked = ++waitingAsked;
  if (!['partnership_analyst', 'partner_viewer'].some(hasRole)) {
    aside.hidden = true;
    return;
  }
  try {
    const { items } = await getJson(`/api/v1/partnerships/${session.claims.partnership}/waiting`);
    if (asked !== waitingAsked) return; // A newer list was asked for meanwhile.
    $('waiting-items').replaceChildren(...items.map((item) => el('li', { dataset: { kind: item.kind } },
      el('a', { href: `#${item.page}` }, item.text), item.overdue ? ' (overdue)' : '')));
    aside.hidden = items.length === 0;
  } catch {
    // The list is a convenience: each page shows the same things in full.
  }
}

async function showSignIn() {
  hideAll();
  $('waiting').hidden = true;
  $('sign-in').hidden = false;
  $('sign-out').hidden = true;
  $('nav').hidden = true;
  $('who').textContent = '';
  const organisation = provider();
  $('organisation').hidden = !organisation;
  const notice = takeNotice();
  if (notice) $('sign-in-error').textContent = notice;
  const response = await fetch('/api/v1/demo/users').catch(() => null);
  if (!response || !response.ok) return;
  const { users } = await response.json();
  $('demo').hidden = false;
  $('demo-users').replaceChildren(...users.map((user) => el('li', {},
    el('button', { type: 'button', dataset: { user: user.id }, onclick: () => signIn(user.token) }, user.describe))));
}

async function signIn(token) {
  forgetProviderSignIn(); // A pasted or picked token: signing out has no provider session to end.
  if (!keepToken(token)) {
    $('token').setCustomValidity('That is not a token: a JSON Web Token with an expiry (exp).');
    $('token').reportValidity();
    return;
  }
  try {
    await loadSession();
  } catch (error) {
    $('sign-in-error').textContent = error.message;
    return;
  }
  const first = allowedPages()[0];
  if (first && window.location.hash !== `#${first.id}`) {
    window.location.hash = first.id;
  } else {
    route();
  }
}

function navigation(pages, current) {
  $('nav').replaceChildren(...pages.map((page) => el('a', {
    href: `#${page.id}`,
    dataset: { page: page.id },
    'aria-current': page.id === current ? 'page' : 'false',
  }, page.title)));
  $('nav').hidden = pages.length === 0;
}

/** Shows the page the address names, when the caller may open it. */
async function route() {
  if (session.token && !session.claims) {
    try {
      await loadSession();
    } catch (error) {
      await showSignIn();
      $('sign-in-error').textContent = error.message;
      return;
    }
  }
  if (!session.claims) {
    showSignIn();
    return;
  }
  // Back from signing in again: to the page the caller was on.
  const back = placeToReturnTo();
  if (back && back !== window.location.hash) {
    window.location.hash = back.replace('#', '');
    return;
  }
  const claims = session.claims;
  $('who').textContent = `Signed in as ${claims.sub} (${(claims.roles || []).map(words).join(', ')}, ${claims.partnership})`;
  $('sign-out').hidden = false;
  const pages = allowedPages();
  const wanted = window.location.hash.replace('#', '') || (pages[0] && pages[0].id);
  const page = pages.find((candidate) => candidate.id === wanted);
  navigation(pages, page && page.id);
  hideAll();
  if (!page || page.id !== 'map') stopPlaying();
  if (!page) {
    $('no-page').hidden = false;
    $('no-page-text').textContent = pages.length === 0
      ? 'Your role has no page in the web application. Administration is done with the `atlas` command or the API (docs/access.md).'
      : `Your role cannot open “${wanted}”. Choose one of the pages above.`;
    return;
  }
  showWaiting();
  const section = $(`${page.id}-page`);
  section.hidden = false;
  document.title = `${page.title} · Safeguard Atlas`;
  // Move focus to the page's heading, so that keyboard and screen-reader users land on it.
  const heading = section.querySelector('h2');
  heading.tabIndex = -1;
  heading.focus();
  try {
    await page.show();
  } catch (error) {
    $('no-page').hidden = false;
    $('no-page-text').textContent = error.message;
  }
}

/** Finishes a sign-in through the identity provider when the browser has just come back from it. */
async function returnFromProvider() {
  const organisation = provider();
  if (!organisation) return;
  try {
    const tokens = await complete(organisation);
    if (!tokens) return;
    if (!keepToken(tokens.accessToken)) {
      throw new Error('The identity provider did not issue a JSON Web Token with an expiry: ask your administrator to issue JWT access tokens for Atlas (docs/access.md).');
    }
    rememberProviderSignIn(tokens.idToken);
  } catch (error) {
    $('sign-in-error').textContent = error.message;
  }
}

$('oidc-sign-in').addEventListener('click', () => {
  const organisation = provider();
  if (organisation) {
    begin(organisation).catch((error) => {
      $('sign-in-error').textContent = `Sign-in could not start: ${error.message}`;
    });
  }
});
$('sign-out').addEventListener('click', () => signOut());
// Before a session ends: signing in again through the provider comes back to the same place.
$('stay-signed-in').hidden = !provider();
$('stay-signed-in').addEventListener('click', () => {
  const organisation = provider();
  if (!organisation) return;
  savePlace();
  begin(organisation).catch((error) => {
    $('session-ending-text').textContent = `Sign-in could not start: ${error.message}`;
  });
});
// The skip link moves focus to the page shown, without changing the address (which names pages).
document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  const shown = document.querySelector('.page:not([hidden]) h2');
  if (shown) {
    shown.tabIndex = -1;
    shown.focus();
  }
});
$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('token').setCustomValidity('');
  signIn($('token').value);
});
$('token').addEventListener('input', () => $('token').setCustomValidity(''));
window.addEventListener('hashchange', route);
// A page that changed something (a request answered, say) asks for the list to be redrawn.
document.addEventListener('atlas-changed', showWaiting);
returnFromProvider().then(route);
