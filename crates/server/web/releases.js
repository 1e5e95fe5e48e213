// Releases as the comparison page (their partnership's analysts) and the partner page (partners'
// viewers) show them: a list by status, and one release's summary and protected table, with
// suppressed figures as `c` and their explanation.

import { SUPPRESSED, download, el, getJson, plural, published, table, words } from './core.js';

const STATUS = {
  awaiting_approval: 'Prepared, awaiting a second analyst’s approval',
  published: 'Published to partners',
  withdrawn: 'Withdrawn',
};

/** The releases as a table; `actions(release)` gives each row's buttons. */
export function releaseList(releases, actions) {
  if (releases.length === 0) return el('p', {}, 'No releases.');
  const rows = releases.map((release) => [
    release.period,
    `v${release.version}`,
    el('span', { dataset: { status: release.status } }, STATUS[release.status] || release.status),
    `${release.prepared_by}, ${release.prepared_at.slice(0, 10)}`,
    release.approved_by ? `${release.approved_by}, ${release.approved_at.slice(0, 10)}` : '–',
    el('span', {}, ...actions(release)),
  ]);
  return table(['Quarter', 'Version', 'Status', 'Prepared by', 'Approved by', ''], rows);
}

/**
 * How a release's figures were protected, exactly as its content says: what is suppressed, and
 * how the other counts are perturbed (or, in a release made before perturbation, rounded).
 */
function protection(content) {
  const threshold = content.threshold;
  const suppressed = [
    'Every count of 1 to ', String(threshold), ' is shown as ', published('c'),
    ', as is any larger count that must be to stop a suppressed one being worked out from the totals (the suppressed figures above count both); 0 is a true zero. ',
  ];
  if (content.perturbation) {
    return [...suppressed,
      `Nothing is rounded: every other count, totals included, is moved by at most 2 (a count of ${threshold + 1} not at all, and never to ${threshold} or below), `
      + 'by an amount fixed by the records it counts (cell-key perturbation), so the same records always give the same figure. '
      + 'Each entry and each total is perturbed on its own, so a row or column need not add up exactly to its total. '
      + 'The column totals, the records and the distinct children are the quarter’s published figures, the same in every product.'];
  }
  const rounding = content.rounding > 1 ? ` Totals are rounded to the nearest ${content.rounding}; other counts are exact.` : ' Other counts are exact.';
  return [...suppressed, rounding.trim()];
}

/** The release's one-way tables: the summary's key, the row heading and what is counted. */
const BREAKDOWN_TABLES = [
  ['records_by_indicator', 'Risk indicator', 'Records'],
  ['children_by_age_band', 'Age band', 'Distinct children'],
  ['records_by_record_kind', 'Record kind', 'Records'],
];

/** One release's content: the summary, then the cell × agency-kind table. */
export async function releaseDetails(code, id) {
  const release = await getJson(`/api/v1/partnerships/${code}/releases/${id}`);
  const content = release.content || {};
  const summary = content.summary || {};
  const population = summary.population;
  const facts = [
    ['Partnership', release.partnership],
    ['Quarter', release.period],
    ['Resolution', `H3 resolution ${release.resolution}`],
    ['Distinct children', published(summary.children)],
    ['Rate per 10,000 children a year (the quarter annualised)', published(summary.rate_per_10000, 1)],
    ['Child population', population ? `${population.children_0_17} (${population.year}${population.approximate ? ', APPROXIMATE' : ''})` : '–'],
    ['Records', published(content.grand_total)],
    ['Suppressed figures', `${plural(release.suppressed_primary, 'small count')} and ${release.suppressed_secondary} more to protect them`],
  ];
  const columns = content.columns || [];
  const used = columns.map((_, index) => (content.column_totals || [])[index] !== 0);
  const rows = (content.rows || []).filter((row) => row.total !== 0).map((row) => [
    row.cell, row.near || '–', ...row.values.filter((_, index) => used[index]).map((value) => published(value)), published(row.total),
  ]);
  const failed = el('p', { role: 'alert' });
  const csv = el('button', {
    type: 'button',
    onclick: () => download(`/api/v1/partnerships/${code}/releases/${id}?format=csv`, 'text/csv', `release-${code}-${release.period}.csv`)
      .catch((error) => { failed.textContent = error.message; }),
  }, 'Download CSV');
  return el('div', {},
    el('table', { className: 'cell-figures' }, el('tbody', {}, ...facts.map(([name, value]) => el('tr', {}, el('th', { scope: 'row' }, name), el('td', {}, value))))),
    el('p', { className: 'note' }, ...protection(content), ` ${SUPPRESSED}`),
    csv,
    failed,
    el('div', { className: 'panels' },
      ...BREAKDOWN_TABLES.filter(([key]) => summary[key]).map(([key, heading, noun]) => table([heading, noun],
        Object.entries(summary[key]).map(([name, value]) => [words(name), published(value)]),
        `${noun} by ${heading.toLowerCase()}, ${release.period}`))),
    table(['Cell', 'Where', ...columns.filter((_, index) => used[index]).map((column) => words(column)), 'Total'], rows,
      `Records by cell and agency kind, ${release.period} (cells with none left out)`),
    content.place_attribution ? el('p', { className: 'note' }, content.place_attribution) : '');
}
