// The partner page (partner viewers): the published releases of partnerships that share them
// with the viewer's partnership, and nothing at cell level beyond what a release publishes.

import { $, el, getJson, plural, say } from './core.js';
import { releaseDetails, releaseList } from './releases.js';

/** Counts openings, so that a slower earlier one cannot replace a later one. */
let opening = 0;

async function open(partnership, release) {
  const mine = ++opening;
  try {
    const details = await releaseDetails(partnership.code, release.id);
    if (mine !== opening) return;
    $('release-view-title').textContent = `${partnership.name}: ${release.period} (v${release.version})`;
    $('release-body').replaceChildren(details);
    $('release-view').hidden = false;
    $('release-view-title').tabIndex = -1;
    $('release-view-title').focus();
  } catch (error) {
    if (mine !== opening) return;
    $('release-view').hidden = true; // Not the release asked for: nothing is better.
    say('partner-status', error.message);
  }
}

/** Opens the partner page. */
export async function showPartner() {
  $('release-view').hidden = true;
  say('partner-status', 'Loading…');
  try {
    const { sharing } = await getJson('/api/v1/sharing');
    const sharers = sharing.filter((partnership) => partnership.scopes.includes('releases'));
    // One partnership's failure leaves the others' releases readable.
    const sections = await Promise.all(sharers.map(async (partnership) => {
      const heading = el('h3', {}, `${partnership.name} (${partnership.code})`);
      try {
        const { releases } = await getJson(`/api/v1/partnerships/${partnership.code}/releases`);
        return el('section', { dataset: { sharer: partnership.code } }, heading,
          releaseList(releases, (release) => [el('button', {
            type: 'button', 'aria-label': `Open ${partnership.name}'s ${release.period} release`, onclick: () => open(partnership, release),
          }, 'Open')]));
      } catch (error) {
        return el('section', { dataset: { sharer: partnership.code } }, heading, el('p', {}, error.message));
      }
    }));
    $('partner-releases').replaceChildren(...sections);
    say('partner-status', sharers.length === 0
      ? 'No partnership shares its releases with yours at present.'
      : `${plural(sharers.length, 'partnership shares', 'partnerships share')} releases with yours.`);
  } catch (error) {
    say('partner-status', error.message);
  }
}
