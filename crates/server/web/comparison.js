// The comparison page (partnership analysts): the partnership beside its neighbours or its
// comparator group, rates per 10,000 children with a trend chart and the direction of travel;
// and its releases to partners: prepare, approve (a second analyst), withdraw.

import { $, SUPPRESSED, api, el, getJson, plural, published, say, session, svg, table } from './core.js';
import { releaseDetails, releaseList } from './releases.js';

/** Okabe–Ito colours (distinguishable with colour-blindness) without the yellow, too pale on white; the partnership itself is first. */
const LINES = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#000000', '#E69F00', '#56B4E9'];
/** Dash patterns, so that lines differ without colour too. */
const DASHES = ['', '6 3', '2 3', '8 3 2 3', '1 2', '10 4', '4 4'];

/** The colour and dash of the `index`th line: no two of the first 64 lines look alike. */
function lineStyle(index) {
  return {
    colour: LINES[index % LINES.length],
    dash: DASHES[(index + Math.floor(index / LINES.length)) % DASHES.length],
  };
}

const ARROWS = { up: '▲ up', down: '▼ down', no_clear_change: '► no clear change' };

/** The rate of a period, `c` where its numerator was suppressed, "no data" where no agency contributed. */
function rateOf(period) {
  if (period.no_data) return 'no data';
  if (period.rate_per_10000 !== null && period.rate_per_10000 !== undefined) return published(period.rate_per_10000, 1);
  return published(period.children === 'c' ? 'c' : null);
}

/** A line chart of each member's rate per period; suppressed or missing rates leave gaps. */
function chart(members) {
  const periods = members[0] ? members[0].periods.map((period) => period.period) : [];
  const rates = members.flatMap((member) => member.periods.map((period) => period.rate_per_10000)).filter((rate) => typeof rate === 'number');
  const [width, height, left, bottom, top, right] = [760, 300, 56, 40, 16, 16];
  const highest = Math.max(1, ...rates) * 1.1;
  const x = (index) => left + (periods.length <= 1 ? 0 : (index * (width - left - right)) / (periods.length - 1));
  const y = (rate) => height - bottom - (rate / highest) * (height - top - bottom);
  const axes = [svg('line', { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: '#333' }),
    svg('line', { x1: left, y1: top, x2: left, y2: height - bottom, stroke: '#333' })];
  [0, 0.25, 0.5, 0.75, 1].forEach((share) => {
    const rate = share * highest;
    axes.push(svg('text', { x: left - 6, y: y(rate) + 4, 'text-anchor': 'end', class: 'axis' }, rate.toFixed(1)));
  });
  const every = Math.max(1, Math.ceil(periods.length / 8));
  periods.forEach((period, index) => {
    if (index % every === 0) axes.push(svg('text', { x: x(index), y: height - bottom + 16, 'text-anchor': 'middle', class: 'axis' }, period));
  });
  const lines = members.map((member, index) => {
    let path = '';
    let pen = 'M';
    member.periods.forEach((period, step) => {
      if (typeof period.rate_per_10000 === 'number') {
        path += `${pen}${x(step).toFixed(1)},${y(period.rate_per_10000).toFixed(1)} `;
        pen = 'L';
      } else {
        pen = 'M'; // A gap where the rate is suppressed or unknown.
      }
    });
    return svg('path', {
      d: path.trim() || 'M0,0', fill: 'none', stroke: lineStyle(index).colour, 'stroke-width': member.role === 'self' ? 3 : 1.8,
      'stroke-dasharray': lineStyle(index).dash, 'data-member': member.code,
    }, svg('title', {}, member.name));
  });
  const figure = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'chart-title', class: 'chart' },
    svg('title', { id: 'chart-title' }, 'Rate per 10,000 children by period; the table below gives the same figures'), ...axes, ...lines);
  const key = el('ul', { className: 'chart-key' }, ...members.map((member, index) => el('li', {},
    el('span', { className: 'swatch line', style: `border-top: 3px ${lineStyle(index).dash ? 'dashed' : 'solid'} ${lineStyle(index).colour}` }),
    ` ${member.name}${member.role === 'self' ? ' (this partnership)' : ''}`)));
  return el('figure', {}, figure, key, el('figcaption', {}, 'Rate of distinct children with records per 10,000 children aged 0–17, annualised'));
}

function members(answer) {
  const rows = answer.members.map((member) => {
    const latest = member.periods[member.periods.length - 1] || {};
    return [
      el('span', { dataset: { member: member.code } }, `${member.name}${member.role === 'self' ? ' (this partnership)' : ''}${member.figures_shared === false ? ' (figures not shared: no agreement)' : ''}`),
      member.population ? `${member.population.children_0_17}${member.population.approximate ? ' (approx.)' : ''}` : '–',
      member.no_data ? 'no data' : published(member.records),
      member.no_data ? 'no data' : published(member.children),
      member.no_data ? 'no data' : published(member.rate_per_10000, 1),
      published(member.rank),
      published(member.difference_from_group_mean, 1),
      latest.direction ? ARROWS[latest.direction] : '–',
    ];
  });
  const overall = table(['Partnership', 'Children 0–17', 'Records', 'Distinct children', 'Rate per 10,000 a year', 'Rank', 'Difference from group mean', 'Direction (last period)'], rows,
    `${answer.from} to ${answer.to}: ${plural(answer.window.periods, answer.by === 'quarter' ? 'closed quarter' : 'closed month')} (${plural(answer.window.months, 'month')}${answer.left_out ? `; ${answer.left_out.period} has not ended and is left out` : ''}), against ${answer.group === 'comparators' ? 'the comparator group' : 'the neighbours'}. Rates are annualised; "no data" means no agency contributed records, not zero; a direction is shown only when chance does not explain the change.`);
  const periods = answer.members[0] ? answer.members[0].periods : [];
  const trend = table(['Partnership', ...periods.map((period) => period.period)], answer.members.map((member) => [
    member.name, ...member.periods.map((period) => el('span', {}, rateOf(period), period.direction ? ` ${ARROWS[period.direction].split(' ')[0]}` : '')),
  ]), 'Rate per 10,000 children a year by period, with the direction of travel from the period before (▲ or ▼ only when chance does not explain the change)');
  return el('div', {}, overall, trend);
}

/** Counts comparisons asked for, so that a slower earlier answer cannot replace a later one. */
let comparing = 0;

async function compare() {
  const mine = ++comparing;
  const params = new URLSearchParams({ group: $('comparison-group').value, by: $('comparison-by').value });
  if ($('comparison-from').value) params.set('from', $('comparison-from').value);
  if ($('comparison-to').value) params.set('to', $('comparison-to').value);
  say('comparison-status', 'Loading…');
  try {
    const answer = await getJson(`/api/v1/partnerships/${session.claims.partnership}/comparison?${params}`);
    if (mine !== comparing) return;
    $('comparison-chart').replaceChildren(chart(answer.members));
    $('comparison-table').replaceChildren(members(answer));
    $('suppression-note').replaceChildren(
      `${answer.rates_note}. Neighbours’ ${answer.disclosure.note}. `, published('c'), ` ${SUPPRESSED}`);
    say('comparison-status', `${plural(answer.members.length, 'partnership')} compared.`);
  } catch (error) {
    if (mine === comparing) say('comparison-status', error.message);
  }
}

/** Whether a release is being prepared, approved or withdrawn: a second click waits its turn. */
let changing = false;

/** Runs `step` unless another change is under way (a double click must not send it twice). */
async function oneChange(step) {
  if (changing) return;
  changing = true;
  $('releases').setAttribute('aria-busy', 'true');
  try {
    await step();
  } finally {
    changing = false;
    $('releases').removeAttribute('aria-busy');
  }
  await releases();
}

function change(release, action) {
  if (action === 'withdraw' && !window.confirm(`Withdraw the ${release.period} release (v${release.version})? Partners stop seeing it at once, and the quarter cannot be released again.`)) return;
  oneChange(async () => {
    try {
      await api(`/api/v1/partnerships/${release.partnership}/releases/${release.id}/${action}`, { method: 'POST' });
      say('release-status', `Release ${release.period} v${release.version}: ${action === 'approve' ? 'approved and published' : 'withdrawn'}.`);
    } catch (error) {
      say('release-status', error.message);
    }
  });
}

/** Counts the releases asked to be viewed, so that a slower earlier one cannot replace a later one. */
let viewing = 0;

async function view(release) {
  const mine = ++viewing;
  try {
    const details = await releaseDetails(release.partnership, release.id);
    if (mine !== viewing) return;
    const heading = el('h4', { tabIndex: -1 }, `${release.period} v${release.version}`);
    $('release-details').replaceChildren(el('section', { className: 'release' }, heading, details));
    heading.focus();
  } catch (error) {
    say('release-status', error.message);
  }
}

async function releases() {
  try {
    const { releases: list } = await getJson(`/api/v1/partnerships/${session.claims.partnership}/releases`);
    $('releases').replaceChildren(releaseList(list, (release) => [
      el('button', { type: 'button', 'aria-label': `View the ${release.period} release`, onclick: () => view(release) }, 'View'),
      release.status === 'awaiting_approval' && release.prepared_by !== session.claims.sub
        ? el('button', { type: 'button', 'aria-label': `Approve the ${release.period} release`, onclick: () => change(release, 'approve') }, 'Approve') : null,
      release.status !== 'withdrawn' ? el('button', { type: 'button', className: 'danger', 'aria-label': `Withdraw the ${release.period} release`, onclick: () => change(release, 'withdraw') }, 'Withdraw') : null,
    ].filter(Boolean)));
  } catch (error) {
    say('release-status', error.message);
  }
}

function prepare() {
  const body = { period: $('release-period').value.trim() };
  if ($('release-resolution').value) body.resolution = Number($('release-resolution').value);
  oneChange(async () => {
    try {
      const release = await (await api(`/api/v1/partnerships/${session.claims.partnership}/releases`, { method: 'POST', body })).json();
      say('release-status', `Release ${release.period} v${release.version} prepared: another analyst of the partnership must approve it before partners see it.`);
    } catch (error) {
      say('release-status', error.message);
    }
  });
}

let ready = false;

/** Opens the comparison page. */
export async function showComparison() {
  if (!ready) {
    ready = true;
    const today = new Date();
    const from = new Date(Date.UTC(today.getUTCFullYear() - 3, today.getUTCMonth(), 1));
    $('comparison-from').value = from.toISOString().slice(0, 10);
    $('comparison-to').value = today.toISOString().slice(0, 10);
    $('comparison-form').addEventListener('submit', (event) => {
      event.preventDefault();
      compare();
    });
    $('release-form').addEventListener('submit', (event) => {
      event.preventDefault();
      prepare();
    });
  }
  await Promise.all([compare(), releases()]);
}
