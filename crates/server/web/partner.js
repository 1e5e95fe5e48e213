// The partner page (partner viewers): the published releases of partnerships that share them
// with the viewer's partnership, and nothing at cell level beyond what a release publishes.

import { $, el, getJson, say } from './core.js';
import { releaseDetails, releaseList } from './releases.js';

async function open(code, release) {
  try {
    $('release-view-title').textContent = `${release.partnership}: ${release.period} (v${release.version})`;
    $('release-body').replaceChildren(await releaseDetails(code, release.id));
    $('release-view').hidden = false;
    $('release-view-title').scrollIntoView();
  } catch (error) {
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
    const sections = await Promise.all(sharers.map(async (partnership) => {
      const { releases } = await getJson(`/api/v1/partnerships/${partnership.code}/releases`);
      return el('section', { dataset: { sharer: partnership.code } },
        el('h3', {}, `${partnership.name} (${partnership.code})`),
        releaseList(releases, (release) => [el('button', { type: 'button', onclick: () => open(partnership.code, release) }, 'Open')]));
    }));
    $('partner-releases').replaceChildren(...sections);
    say('partner-status', sharers.length === 0
      ? 'No partnership shares its releases with yours at present.'
      : `${sharers.length} partnership${sharers.length === 1 ? ' shares' : 's share'} releases with yours.`);
  } catch (error) {
    say('partner-status', error.message);
  }
}
