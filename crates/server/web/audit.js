// The audit page (auditors): the trail, newest first and filterable, and whether its hash chain
// verifies.

import { $, download, el, getJson, plural, say, table, words } from './core.js';

/**
 * The filter of the page shown, where the next older page starts, and a count of requests: only
 * the answer to the latest is shown, and an older page is asked for once at a time.
 */
const state = { filter: null, before: null, request: 0, loadingOlder: false };

async function verify() {
  say('chain', 'Verifying the chain…');
  try {
    const chain = await getJson('/api/v1/audit/verify');
    $('chain').dataset.intact = String(chain.intact);
    say('chain', chain.intact
      ? `The trail is intact: ${plural(chain.entries, 'entry', 'entries')} in ${plural(chain.chains, 'chain', 'chains')} verified${chain.since_checkpoint ? ` since the checkpoint of ${new Date(chain.since_checkpoint).toLocaleString()}` : ''}.`
      : `The trail is BROKEN at entry ${chain.first_broken_id} of the chain ${chain.broken_chain}: ${chain.reason}. Report this to your information governance lead.`);
  } catch (error) {
    say('chain', error.message);
  }
}

/** The form as query parameters; the times are the viewer's local time, sent in UTC. */
function filter() {
  const params = new URLSearchParams({ limit: '100' });
  [['from', 'audit-from'], ['to', 'audit-to']].forEach(([name, id]) => {
    if ($(id).value) params.set(name, new Date($(id).value).toISOString());
  });
  [['subject', 'audit-subject'], ['partnership', 'audit-partnership'], ['action', 'audit-action']].forEach(([name, id]) => {
    if ($(id).value.trim()) params.set(name, $(id).value.trim());
  });
  return params;
}

async function entries(more) {
  if (more && state.loadingOlder) return;
  if (!more) {
    state.filter = filter();
    state.before = null;
  }
  const mine = ++state.request;
  const params = new URLSearchParams(state.filter);
  if (more && state.before) params.set('before_id', String(state.before));
  state.loadingOlder = more;
  say('audit-status', 'Loading…');
  try {
    const page = await getJson(`/api/v1/audit?${params}`);
    if (mine !== state.request) return; // A newer filter was asked for meanwhile.
    const rows = page.entries.map((entry) => [
      String(entry.id),
      entry.occurred_at.replace('T', ' ').slice(0, 19),
      entry.subject,
      entry.roles.map(words).join(', '),
      entry.partnership || '–',
      entry.action,
      entry.resource,
      el('span', { className: `outcome-${entry.outcome}` }, entry.outcome),
      entry.rows_returned === null ? '–' : String(entry.rows_returned),
      Object.entries(entry.parameters).map(([name, value]) => `${name}=${value}`).join(' '),
    ]);
    const shown = table(['#', 'When (UTC)', 'Subject', 'Roles', 'Partnership', 'Action', 'Resource', 'Outcome', 'Rows', 'Parameters'], rows);
    if (more) $('audit-entries').append(shown);
    else $('audit-entries').replaceChildren(shown);
    state.before = page.next_before_id;
    $('audit-older').hidden = !page.next_before_id;
    say('audit-status', `${plural(page.entries.length, more ? 'more entry' : 'entry', more ? 'more entries' : 'entries')}.`);
  } catch (error) {
    if (mine === state.request) say('audit-status', error.message);
  } finally {
    if (mine === state.request) state.loadingOlder = false;
  }
}

let ready = false;

/** Opens the audit page. */
export async function showAudit() {
  if (!ready) {
    ready = true;
    $('verify').addEventListener('click', verify);
    $('audit-older').addEventListener('click', () => entries(true));
    $('audit-csv').addEventListener('click', () => {
      const params = filter();
      params.set('limit', '1000');
      params.set('format', 'csv');
      download(`/api/v1/audit?${params}`, 'text/csv', 'audit-trail.csv').catch((error) => say('audit-status', error.message));
    });
    $('audit-form').addEventListener('submit', (event) => {
      event.preventDefault();
      entries(false);
    });
  }
  await Promise.all([verify(), entries(false)]);
}
