// The profiles page (partnership analysts): the partnership's quarterly problem profile, one
// quarter or two side by side, in its own edition (exact counts) or the board edition (every
// count through the publication gate, for circulation), with a chart where one reads better
// than a table, each table as CSV, a print layout for board papers, and a request for a new
// version after late records.

import { $, SUPPRESSED, api, download, el, getJson, hasRole, published, say, session, svg, table } from './core.js';

/** The tables drawn as bar charts, and which of their columns the bars show. */
const CHARTS = {
  age_and_sex: (columns) => columns.length - 1,
  indicators: () => 0,
  record_kinds: () => 0,
  location_roles: () => 0,
  agency_kinds_per_child: () => 0,
  agency_kinds: () => 0,
};

/** Every stored version, newest quarter and version first. */
let versions = [];

/** The value of a version's option. */
const optionOf = (version) => `${version.period}|${version.version}`;

function describe(version, latest) {
  return `${version.period}, version ${version.version}${latest ? ' (latest)' : ''}`;
}

function fillChoices() {
  const latestOf = new Map();
  versions.forEach((version) => {
    if (!latestOf.has(version.period)) latestOf.set(version.period, version.version);
  });
  const options = () => versions.map((version) => el('option', { value: optionOf(version) },
    describe(version, latestOf.get(version.period) === version.version)));
  const [choice, compare] = [$('profile-choice'), $('profile-compare')];
  const [chosen, compared] = [choice.value, compare.value];
  choice.replaceChildren(...options());
  compare.replaceChildren(el('option', { value: '' }, 'none'), ...options());
  if (chosen && versions.some((version) => optionOf(version) === chosen)) choice.value = chosen;
  if (compared) compare.value = compared;
  else if (versions.length > 1) {
    // By default, the quarter before the one shown, as a board compares them.
    const first = versions[0];
    const before = versions.find((version) => version.period < first.period);
    if (before) compare.value = optionOf(before);
  }
}

/** A horizontal bar chart of one column of a table; suppressed entries have no bar. */
function barChart(tableData, column) {
  // Totals rows are not bars beside their parts.
  const rows = tableData.rows.filter((row) => !row.label.startsWith('all '));
  const values = rows.map((row) => row.values[column]);
  const numbers = values.filter((value) => typeof value === 'number');
  const highest = Math.max(1, ...numbers);
  const [width, rowHeight, labelWidth, valueWidth] = [520, 22, 190, 56];
  const barSpace = width - labelWidth - valueWidth;
  const bars = rows.flatMap((row, index) => {
    const y = index * rowHeight;
    const value = values[index];
    const length = typeof value === 'number' ? (value / highest) * barSpace : 0;
    return [
      svg('text', { x: labelWidth - 6, y: y + 15, 'text-anchor': 'end', class: 'axis' }, row.label),
      svg('rect', { x: labelWidth, y: y + 4, width: Math.max(length, 0), height: rowHeight - 8, class: 'bar' }),
      svg('text', { x: labelWidth + length + 4, y: y + 15, class: 'axis' }, value === null ? '–' : String(value)),
    ];
  });
  return svg('svg', {
    viewBox: `0 0 ${width} ${rows.length * rowHeight}`,
    role: 'img',
    'aria-label': `${tableData.title}: a bar chart of the ${tableData.columns[column]} column of the table that follows`,
    class: 'chart bars',
  }, ...bars);
}

/** The path of one edition of a profile: board members read only the board edition. */
function editionPath(code, period, edition) {
  return `/api/v1/partnerships/${code}/profiles/${period}${edition === 'board' ? '/board' : ''}`;
}

/** One entry of a table as the page shows it. */
function entry(value) {
  if (value === 'c' || value === null) return published(value);
  return String(value);
}

function tableOf(code, version, edition, tableData) {
  const failed = el('p', { role: 'alert' });
  const csv = el('button', {
    type: 'button',
    className: 'no-print',
    onclick: () => download(
      `${editionPath(code, version.period, edition)}?version=${version.version}&format=csv&table=${tableData.name}`,
      'text/csv',
      `profile-${code}-${version.period}-v${version.version}-${edition}-${tableData.name}.csv`,
    ).catch((error) => { failed.textContent = error.message; }),
  }, `Download “${tableData.title}” as CSV`);
  const chartColumn = CHARTS[tableData.name];
  return el('div', { className: 'profile-table' },
    chartColumn && tableData.rows.length > 0 ? barChart(tableData, chartColumn(tableData.columns)) : null,
    table([tableData.label, ...tableData.columns], tableData.rows.map((row) => [row.label, ...row.values.map(entry)]), tableData.title),
    csv,
    failed);
}

/** One profile as an article: its heading, how its counts are shown, and its sections. */
function article(code, version, edition, content) {
  const generated = `Version ${version.version}, generated ${version.generated_at.slice(0, 10)} by ${version.scheduled ? 'the quarterly schedule' : version.generated_by}`;
  return el('article', { className: 'profile', dataset: { period: version.period, edition } },
    el('h3', {}, `${content.name}: ${content.period} (${content.first_day} to ${content.last_day})`),
    el('p', { className: 'profile-meta' }, `${edition === 'board' ? 'Board edition' : 'Own edition'}. ${generated}.`),
    el('p', { className: 'note' }, `Counts: ${content.counts}.`, edition === 'board' ? ` ${SUPPRESSED}` : ''),
    ...content.sections.map((section) => el('section', { className: 'profile-section', dataset: { section: section.id } },
      el('h4', {}, section.title),
      el('ul', {}, ...section.findings.map((finding) => el('li', {}, finding))),
      ...section.tables.map((tableData) => tableOf(code, version, edition, tableData)))),
    content.attribution ? el('p', { className: 'note' }, content.attribution) : '');
}

async function render() {
  const code = session.claims.partnership;
  const edition = $('profile-edition').value;
  const chosen = [$('profile-choice').value, $('profile-compare').value].filter(Boolean);
  if (chosen.length === 0) {
    $('profile-view').replaceChildren();
    return;
  }
  say('profiles-status', 'Loading…');
  const shown = await Promise.all([...new Set(chosen)].map(async (choice) => {
    const [period, number] = choice.split('|');
    const profile = await getJson(`${editionPath(code, period, edition)}?version=${number}`);
    const version = versions.find((candidate) => optionOf(candidate) === choice);
    return article(code, version, edition, profile.content);
  }));
  $('profile-view').replaceChildren(...shown);
  $('profile-view').dataset.count = String(shown.length);
  say('profiles-status', shown.length === 2 ? 'Two profiles side by side.' : 'One profile.');
}

async function load() {
  const code = session.claims.partnership;
  ({ profiles: versions } = await getJson(`/api/v1/partnerships/${code}/profiles`));
  if (versions.length === 0) {
    say('profiles-status', 'No profile yet: the schedule generates each quarter’s profile about five weeks after it ends, or generate one below.');
    $('profile-view').replaceChildren();
    return;
  }
  fillChoices();
  await render();
}

let wired = false;

/** Shows the page: the latest profile, beside the quarter before when there is one. */
export async function showProfiles() {
  // Board members read the board edition only, and generate nothing.
  const analyst = hasRole('partnership_analyst');
  if (!analyst) $('profile-edition').value = 'board';
  $('profile-edition').closest('label').hidden = !analyst;
  $('profile-generate-form').hidden = !analyst;
  if (!wired) {
    wired = true;
    $('profiles-form').addEventListener('submit', (event) => {
      event.preventDefault();
      render().catch((error) => say('profiles-status', error.message));
    });
    $('profile-print').addEventListener('click', () => window.print());
    $('profile-generate-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const period = $('profile-new-period').value.trim();
      say('profiles-status', `Generating the profile of ${period}…`);
      try {
        const response = await api(`/api/v1/partnerships/${session.claims.partnership}/profiles`, { method: 'POST', body: { period } });
        const version = await response.json();
        await load();
        $('profile-choice').value = optionOf(version);
        await render();
        say('profiles-status', response.status === 201
          ? `Generated version ${version.version} of ${period}.`
          : `The records have not changed since version ${version.version} of ${period}: it stands.`);
      } catch (error) {
        say('profiles-status', error.message);
      }
    });
  }
  await load();
}
