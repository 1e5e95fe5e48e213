// The requests page (partnership analysts and partner viewers): ask a partnership that shares
// its releases with yours, or every member of a regional group, for a summary; follow your
// requests and reply to questions; read the answer once its releases are published, and a
// regional request's summary once every member has answered. Partnership analysts also answer the requests made
// to their partnership: accept (the quarters' releases are prepared for a second analyst's
// approval), decline with a reason, or ask a question.

import { $, SUPPRESSED, api, el, getJson, hasRole, published, say, session, table, words } from './core.js';
import { releaseDetails } from './releases.js';

const BREAKDOWNS = [
  ['agency_kind', 'Agency kind'],
  ['indicator', 'Risk indicator'],
  ['age_band', 'Age band'],
  ['record_kind', 'Record kind'],
  ['release_grid', 'The release grid (cells)'],
];
const BREAKDOWN_NAMES = {
  headline: 'Figure', agency_kind: 'Agency kind', indicator: 'Risk indicator', age_band: 'Age band', record_kind: 'Record kind',
};
const STATES = {
  open: 'Open',
  question: 'Question asked',
  accepted: 'Accepted: awaiting approval',
  answered: 'Answered',
  declined: 'Declined',
};

/** Posts to a request's `action` (on the partnership asked) and reloads the page. */
async function act(request, action, body) {
  try {
    await api(`/api/v1/partnerships/${request.owner}/summary-requests/${request.id}/${action}`, { method: 'POST', body });
    await load();
    document.dispatchEvent(new Event('atlas-changed'));
    say('requests-status', `The request was updated: ${action}.`);
  } catch (error) {
    say('requests-status', error.message);
  }
}

/** A text field with a button sending it as `action`. */
function messageForm(request, action, label, button) {
  const id = `${action}-${request.id}`;
  const input = el('input', { id, maxLength: 2000, required: true });
  return el('form', {
    className: 'inline-form',
    onsubmit: (event) => { event.preventDefault(); act(request, action, { text: input.value }); },
  }, el('label', { htmlFor: id }, label), input, el('button', { type: 'submit' }, button));
}

function stateOf(request) {
  return el('span', { dataset: { state: request.state } }, STATES[request.state] || request.state, request.overdue ? ' (overdue)' : '');
}

function conversation(request) {
  const lines = [];
  (request.messages || []).forEach((message) => lines.push(el('li', {}, `${message.from === 'owner' ? 'Question' : 'Reply'}: ${message.text}`)));
  if (request.decline_reason) lines.push(el('li', {}, `Declined: ${request.decline_reason}`));
  return lines.length ? el('ul', {}, ...lines) : '–';
}

function outgoingRows(requests) {
  return requests.map((request) => [
    request.regional_request ? `${request.owner} (part of a regional request)` : request.owner,
    request.periods.join(', '),
    stateOf(request),
    request.needed_by,
    conversation(request),
    el('span', {},
      request.state === 'question' ? messageForm(request, 'reply', 'Reply', 'Send reply') : null,
      ...request.releases.map((release) => el('button', {
        type: 'button',
        'aria-label': `Read ${release.period}: the release of ${request.owner}`,
        onclick: async () => {
          try {
            $('request-release').replaceChildren(el('h3', {}, `${request.owner}: ${release.period}`), await releaseDetails(request.owner, release.id));
          } catch (error) {
            say('requests-status', error.message);
          }
        },
      }, `Read ${release.period}`))),
  ]);
}

function incomingRows(requests) {
  return requests.map((request) => [
    request.regional_request ? `${request.requester} (a regional request)` : request.requester,
    request.periods.join(', '),
    request.breakdowns.map(words).join(', '),
    request.purpose,
    request.needed_by,
    stateOf(request),
    conversation(request),
    ['open', 'question'].includes(request.state)
      ? el('span', {},
        el('button', { type: 'button', 'aria-label': `Accept the request from ${request.requester} for ${request.periods.join(', ')}`, onclick: () => act(request, 'accept') }, 'Accept'),
        messageForm(request, 'decline', 'Reason to decline', 'Decline'),
        messageForm(request, 'question', 'Question to ask', 'Ask'))
      : '–',
  ]);
}

/** A regional total: the sum of the figures shown, "at least" when some are not. */
function regionalTotal(total) {
  return total.parts_not_shown > 0 ? `at least ${total.sum}` : String(total.sum);
}

/** One quarter of an assembled regional summary: the headline and each breakdown asked for. */
function regionalPeriod(period) {
  const names = period.partnerships;
  return el('div', {},
    el('h4', {}, period.period),
    period.missing.length ? el('p', { className: 'note' }, `Not included: ${period.missing.join('; ')}.`) : null,
    el('p', {}, `Rate per 10,000 children a year over the partnerships included: `, published(period.rate_per_10000, 1),
      period.rate_per_10000 === null ? ' (not given: some partnership’s children or population are not shown)' : ''),
    ...period.tables.map((regional) => table(
      [BREAKDOWN_NAMES[regional.breakdown] || 'Figure', ...names, 'Region'],
      regional.rows.map((row) => [words(row.category), ...row.values.map((value) => published(value)), regionalTotal(row.total)]),
      `${period.period}: ${regional.counts} by ${(BREAKDOWN_NAMES[regional.breakdown] || regional.breakdown).toLowerCase()}, as each partnership published them`,
    )));
}

/** Shows one regional request's answers and, once assembled, its summary. */
async function showRegional(code, id) {
  const summary = await getJson(`/api/v1/partnerships/${code}/regional-requests/${id}`);
  const answers = summary.answers.map((answer) => [
    answer.partnership,
    answer.state === 'own' ? 'Your own partnership' : (STATES[answer.state] || answer.state),
    answer.decline_reason || '–',
  ]);
  $('regional-summary').replaceChildren(
    el('h3', {}, `Regional summary: ${summary.group}`),
    table(['Partnership', 'Answer', 'Reason if declined'], answers, 'Each member’s answer'),
    summary.state === 'assembled'
      ? el('div', {},
        el('p', { className: 'note' }, `Each column is the partnership’s published release; “Region” adds up the figures shown, and says “at least” where some are suppressed. ${SUPPRESSED}`),
        ...summary.summary.map(regionalPeriod))
      : el('p', {}, `Waiting for ${summary.waiting_for.join(', ')}: the summary is assembled once every member has answered.`));
}

function regionalRows(code, requests) {
  return requests.map((request) => [
    request.group,
    request.periods.join(', '),
    request.state === 'assembled' ? 'Assembled' : `Waiting for ${request.waiting_for.join(', ')}${request.overdue ? ' (overdue)' : ''}`,
    request.needed_by,
    el('button', {
      type: 'button',
      'aria-label': `${request.state === 'assembled' ? 'Read the summary of' : 'Follow'} the regional request to ${request.group} for ${request.periods.join(', ')}`,
      onclick: () => showRegional(code, request.id).catch((error) => say('requests-status', error.message)),
    }, request.state === 'assembled' ? 'Read the summary' : 'Follow'),
  ]);
}

async function load() {
  const code = session.claims.partnership;
  const [{ incoming, outgoing }, { sharing }, { groups }, { requests: regional }] = await Promise.all([
    getJson(`/api/v1/partnerships/${code}/summary-requests`),
    getJson('/api/v1/sharing'),
    getJson('/api/v1/regional-groups'),
    getJson(`/api/v1/partnerships/${code}/regional-requests`),
  ]);
  const sharers = sharing.filter((partnership) => partnership.scopes.includes('releases'));
  const owner = $('request-owner');
  const chosen = owner.value;
  owner.replaceChildren(
    ...sharers.map((partnership) => el('option', { value: partnership.code }, `${partnership.name} (${partnership.code})`)),
    ...groups.map((group) => el('option', { value: `group:${group.name}` }, `Regional group: ${group.name} (${group.members.length} partnerships)`)),
  );
  if (chosen) owner.value = chosen;
  $('request-form').hidden = sharers.length === 0 && groups.length === 0;
  $('regional-requests').replaceChildren(regional.length === 0
    ? el('p', {}, 'Your partnership has made no regional request.')
    : table(['Group', 'Quarters', 'State', 'Needed by', ''], regionalRows(code, regional), 'Regional requests your partnership made'));
  $('requests-outgoing').replaceChildren(outgoing.length === 0
    ? el('p', {}, 'Your partnership has made no request.')
    : table(['Asked', 'Quarters', 'State', 'Needed by', 'Questions and answers', ''], outgoingRows(outgoing), 'Requests your partnership made'));
  const analyst = hasRole('partnership_analyst');
  $('requests-incoming-section').hidden = !analyst;
  if (analyst) {
    $('requests-incoming').replaceChildren(incoming.length === 0
      ? el('p', {}, 'No partnership has asked yours for a summary.')
      : table(['From', 'Quarters', 'Breakdowns', 'Purpose', 'Needed by', 'State', 'Questions and answers', ''], incomingRows(incoming), 'Requests made to your partnership'));
  }
  return sharers;
}

let wired = false;

/** Opens the requests page. */
export async function showRequests() {
  if (!wired) {
    wired = true;
    $('request-breakdowns').replaceChildren(...BREAKDOWNS.map(([value, text]) => el('label', { className: 'check' },
      el('input', { type: 'checkbox', value, checked: value === 'agency_kind' }), ` ${text}`)));
    $('request-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const body = {
        periods: $('request-periods').value.split(/[\s,]+/).filter(Boolean),
        breakdowns: [...document.querySelectorAll('#request-breakdowns input:checked')].map((box) => box.value),
        purpose: $('request-purpose').value,
        needed_by: $('request-needed-by').value,
      };
      const asked = $('request-owner').value;
      try {
        if (asked.startsWith('group:')) {
          await api(`/api/v1/partnerships/${session.claims.partnership}/regional-requests`, { method: 'POST', body: { group: asked.slice(6), ...body } });
        } else {
          await api(`/api/v1/partnerships/${asked}/summary-requests`, { method: 'POST', body });
        }
        await load();
        document.dispatchEvent(new Event('atlas-changed'));
        say('requests-status', 'Your request was sent.');
      } catch (error) {
        say('requests-status', error.message);
      }
    });
  }
  const sharers = await load();
  say('requests-status', sharers.length === 0 ? 'No partnership shares its releases with yours, so there is no one to ask on its own.' : '');
}
