// The self-assessment page (partnership analysts, for their board): the key questions of the
// guidance by theme with what to look out for, Atlas's evidence beside the questions of
// "understanding what is happening", the board's rating, evidence and actions for each, recorded
// as a dated version; what changed since the last assessment and the actions overdue.

import { $, api, el, getJson, hasRole, say, session, table } from './core.js';

const RATINGS = [
  ['not_assessed', 'Not assessed'],
  ['red', 'Red: not in place'],
  ['amber', 'Amber: partly in place or improving'],
  ['green', 'Green: effective'],
];
const STATUSES = [['open', 'Open'], ['in_progress', 'In progress'], ['done', 'Done']];
const RATING_NAMES = Object.fromEntries(RATINGS.map(([value, name]) => [value, name.split(':')[0]]));

/** A `<select>` of `choices` ([value, text]) with `value` chosen. */
function select(id, label, choices, value) {
  const control = el('select', { id, dataset: { field: id.split('-').pop() } },
    ...choices.map(([choice, text]) => el('option', { value: choice }, text)));
  control.value = value;
  return el('label', {}, label, control);
}

/** One action's row of controls. */
function actionRow(question, index, action = {}) {
  const id = `action-${question}-${index}`;
  const row = el('li', { className: 'action', dataset: { question } },
    el('label', {}, 'Action', el('input', { id: `${id}-action`, value: action.action || '', dataset: { field: 'action' }, required: true, maxLength: 1000 })),
    el('label', {}, 'Owner (a role or team)', el('input', { id: `${id}-owner`, value: action.owner || '', dataset: { field: 'owner' }, required: true, maxLength: 1000 })),
    el('label', {}, 'Due', el('input', { id: `${id}-due`, type: 'date', value: action.due || '', dataset: { field: 'due' }, required: true })),
    select(`${id}-status`, 'Status', STATUSES, action.status || 'open'));
  row.append(el('button', { type: 'button', className: 'danger', 'aria-label': `Remove this action (${index + 1})`, onclick: () => row.remove() }, 'Remove this action'));
  return row;
}

/** A question's card: the question, what to look out for, Atlas's evidence, and the board's answer. */
function questionCard(question, answer, evidence) {
  const key = question.id.replace('.', '-');
  const actions = el('ol', { className: 'actions' }, ...(answer?.actions || []).map((action, index) => actionRow(question.id, index, action)));
  let added = actions.children.length;
  return el('section', { className: 'question', dataset: { question: question.id }, 'aria-labelledby': `q-${key}` },
    el('h4', { id: `q-${key}` }, question.text),
    el('p', { className: 'look-out' }, 'Look out for: ', question.look_out_for.join('; '), '.'),
    evidence ? el('div', { className: 'atlas-evidence', dataset: { evidence: question.id } },
      el('p', {}, el('strong', {}, 'Evidence from Atlas (today)')),
      el('ul', {}, ...evidence.findings.map((finding) => el('li', {}, finding)))) : null,
    select(`rating-${key}`, 'Rating', RATINGS, answer?.rating || 'not_assessed'),
    el('label', {}, 'The board’s evidence (about arrangements, never about a child)',
      el('textarea', { id: `evidence-${key}`, rows: 3, maxLength: 4000, value: answer?.evidence || '', dataset: { field: 'evidence' } })),
    actions,
    el('button', {
      type: 'button',
      'aria-label': `Add an action to: ${question.text}`,
      onclick: () => { actions.append(actionRow(question.id, added)); added += 1; },
    }, 'Add an action'));
}

/** The answers in the form, as the API takes them. */
function answersOf(themes) {
  return themes.flatMap((theme) => theme.questions).map((question) => {
    const key = question.id.replace('.', '-');
    const actions = [...document.querySelectorAll(`#assessment-form li.action[data-question="${question.id}"]`)].map((row) => {
      const field = (name) => row.querySelector(`[data-field="${name}"]`).value;
      return { action: field('action'), owner: field('owner'), due: field('due'), status: field('status') };
    });
    return { question: question.id, rating: $(`rating-${key}`).value, evidence: $(`evidence-${key}`).value, actions };
  }).filter((answer) => answer.rating !== 'not_assessed' || answer.evidence || answer.actions.length > 0);
}

function summary(page) {
  const questionText = new Map(page.themes.flatMap((theme) => theme.questions).map((question) => [question.id, question.text]));
  const parts = [];
  if (page.latest) {
    parts.push(el('p', {}, `Latest assessment: version ${page.latest.version}, assessed on ${page.latest.assessed_on}, recorded by ${page.latest.recorded_by}. The form below starts from it.`));
  } else {
    parts.push(el('p', {}, 'No assessment recorded yet.'));
  }
  if (page.changes_since_previous.length > 0) {
    parts.push(table(['Question', 'Before', 'Now'], page.changes_since_previous.map((change) => [
      questionText.get(change.question), RATING_NAMES[change.before] || 'not answered', RATING_NAMES[change.now] || 'not answered',
    ]), 'Changes since the assessment before'));
  }
  parts.push(page.overdue_actions.length === 0
    ? el('p', {}, 'No action is overdue.')
    : table(['Question', 'Action', 'Owner', 'Due', 'Days overdue', 'Status'], page.overdue_actions.map((action) => [
      questionText.get(action.question), action.action, action.owner, action.due, String(action.days_overdue), action.status.replace('_', ' '),
    ]), 'Overdue actions'));
  if (page.history.length > 0) {
    parts.push(table(['Version', 'Assessed on', 'Recorded by'], page.history.map((entry) => [String(entry.version), entry.assessed_on, entry.recorded_by]), 'Assessments recorded'));
  }
  return parts;
}

async function load() {
  const code = session.claims.partnership;
  const page = await getJson(`/api/v1/partnerships/${code}/self-assessment`);
  const answers = new Map((page.latest?.answers || []).map((answer) => [answer.question, answer]));
  const evidence = new Map(page.atlas_evidence.map((item) => [item.question, item]));
  $('assessment-source').textContent = `Source: ${page.source}.`;
  $('assessment-summary').replaceChildren(...summary(page));
  $('assessment-date').value = new Date().toISOString().slice(0, 10);
  // Board members read the assessment; its analysts record it.
  const readOnly = !hasRole('partnership_analyst');
  $('assessment-themes').replaceChildren(...page.themes.map((theme) => el('fieldset', { className: 'theme', dataset: { theme: theme.id }, disabled: readOnly },
    el('legend', {}, theme.title),
    ...theme.questions.map((question) => questionCard(question, answers.get(question.id), evidence.get(question.id))))));
  $('assessment-record').hidden = readOnly;
  $('assessment-date').closest('label').hidden = readOnly;
  return page;
}

let themes = [];
let wired = false;

/** Shows the page: the latest assessment in the form, ready to be reviewed and recorded again. */
export async function showAssessment() {
  if (!wired) {
    wired = true;
    $('assessment-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      say('assessment-status', 'Recording…');
      try {
        const response = await api(`/api/v1/partnerships/${session.claims.partnership}/self-assessments`, {
          method: 'POST',
          body: { assessed_on: $('assessment-date').value, answers: answersOf(themes) },
        });
        const recorded = await response.json();
        ({ themes } = await load());
        say('assessment-status', `Recorded as version ${recorded.version}.`);
      } catch (error) {
        say('assessment-status', error.message);
      }
    });
    $('assessment-print').addEventListener('click', () => window.print());
  }
  ({ themes } = await load());
}
