// The hotspot map: the partnership and its neighbours' outlines, its H3 cells coloured by
// distinct children (the default), records, Gi* confidence bin or emerging-hotspot class, with
// filters, a month-by-month time slider, a keyboard-reachable table of cells and downloads.
// Each layer counts one value per cell, and says which on the map, in the legend, in the cell
// panel and in the downloads' names.

import { $, api, download, el, getJson, hasRole, plural, restorePlace, say, session, table, words } from './core.js';

// Viridis (colour-blind safe) for magnitudes; ColorBrewer RdBu (diverging) for Gi* bins.
const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];
const BINS = [
  [3, '#b2182b', 'Hot spot, 99 % confidence'],
  [2, '#ef8a62', 'Hot spot, 95 % confidence'],
  [1, '#fddbc7', 'Hot spot, 90 % confidence'],
  [0, '#f7f7f7', 'Not significant'],
  [-1, '#d1e5f0', 'Cold spot, 90 % confidence'],
  [-2, '#67a9cf', 'Cold spot, 95 % confidence'],
  [-3, '#2166ac', 'Cold spot, 99 % confidence'],
];
const EMERGING = {
  new: ['#b2182b', '#2166ac'], consecutive: ['#d6604d', '#4393c3'], intensifying: ['#67001f', '#053061'],
  persistent: ['#f4a582', '#92c5de'], diminishing: ['#fddbc7', '#d1e5f0'], sporadic: ['#e08214', '#8073ac'],
  oscillating: ['#fdb863', '#b2abd2'], historical: ['#fee0b6', '#d8daeb'],
};

/** The filter vocabularies (atlas_domain::taxonomy; an HTTP test keeps these lists in step). */
const VOCABULARIES = {
  agency_kinds: ['police', 'social_care', 'health', 'education', 'yot', 'probation', 'housing', 'youth_services', 'vcs'],
  record_kinds: ['incident', 'referral', 'missing_episode', 'assessment', 'intelligence', 'health_attendance', 'education_concern'],
  indicators: ['missing', 'substance_misuse', 'older_associate', 'gifts_money', 'online_contact', 'hotel_taxi', 'school_absence', 'sexual_health', 'self_harm', 'known_peer_exploited'],
  age_bands: ['0-9', '10-12', '13-15', '16-17', '18-25'],
};

/** The most cells drawn as SVG elements; more are drawn on a canvas. */
const SVG_CELLS = 10000;
let canvasRenderer = null;
function canvas() {
  if (!canvasRenderer) canvasRenderer = L.canvas({ padding: 0.5 });
  return canvasRenderer;
}

/** How long the time slider shows each month while playing, in milliseconds. */
const PLAY_STEP_MS = 1500;

const state = {
  map: null, loaded: false, drawn: null, outline: null, neighbours: null, resolution: null,
  months: [], playing: 0, timer: null, drawing: 0, byCell: new Map(), selected: null, placeList: [],
};

const layerName = () => $('layer').value;

/**
 * What a layer counts in each cell: records only on the records layer; distinct children
 * (the API's `value=subjects`) everywhere else, the analyses included.
 */
const VALUES = {
  records: { singular: 'record', plural: 'records', means: 'each record an agency holds; a child may have several' },
  subjects: { singular: 'distinct child', plural: 'distinct children', means: 'each child counted once, however many records and agencies' },
};
const valueName = () => (layerName() === 'records' ? 'records' : 'subjects');
const value = () => VALUES[valueName()];

const capitalised = (text) => `${text[0].toUpperCase()}${text.slice(1)}`;

/** A count of the layer's value: "1 distinct child", "2 records". */
const counted = (count) => plural(count, value().singular, value().plural);

/** What the layer shows, in one line: the legend's heading. */
function layerMeaning() {
  const what = `${value().plural} (${value().means})`;
  if (layerName() === 'bin') return `Gi* hot and cold spots of ${what}, after false-discovery control.`;
  if (layerName() === 'emerging') return `Emerging hot-spot patterns of ${what}, month by month.`;
  return `${capitalised(value().plural)} per cell (${value().means}), on a log scale.`;
}
const base = () => `/api/v1/partnerships/${session.claims.partnership}`;

function resolutionForZoom(zoom) {
  if (zoom <= 8) return 6;
  if (zoom <= 10) return 7;
  if (zoom <= 12) return 8;
  return 9;
}

/** Whether the layer is an analysis (hot spots, emerging), whose resolution is not the zoom's. */
const isAnalysis = () => layerName() === 'bin' || layerName() === 'emerging';

/**
 * The resolution to ask for: the one chosen; on "automatic", the zoom's for counts, and none for
 * an analysis (the server answers at the partnership's analysis resolution, chosen from its data
 * and kept while zooming, and says why).
 */
function currentResolution() {
  const chosen = $('resolution').value;
  if (chosen !== 'auto') return Number(chosen);
  return isAnalysis() ? null : resolutionForZoom(state.map.getZoom());
}

/** One line on the resolution drawn: which, and why. */
function resolutionNote(resolution, settings) {
  if (settings && settings.resolution_chosen) {
    return `Resolution ${resolution}, chosen from the data: ${settings.resolution_chosen.reason}. It stays the same as you zoom.`;
  }
  if ($('resolution').value === 'auto') return `Resolution ${resolution}, following the zoom.`;
  return `Resolution ${resolution}, as chosen.`;
}

/** The last day of the month starting on `first` (`YYYY-MM-01`). */
function monthEnd(first) {
  const [year, month] = first.split('-').map(Number);
  const day = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${first.slice(0, 8)}${String(day).padStart(2, '0')}`;
}

/** The period asked for: the slider's month in month-by-month mode, else the from/to fields. */
function period() {
  if ($('month-mode').checked && state.months.length > 0 && layerName() !== 'emerging') {
    const first = state.months[Number($('month').value)];
    return { from: first, to: monthEnd(first) };
  }
  return { from: $('from').value, to: $('to').value };
}

function query(format) {
  const params = new URLSearchParams({ format });
  const resolution = currentResolution();
  if (resolution !== null) params.set('resolution', String(resolution));
  const { from, to } = period();
  if (from) params.set('from', from);
  if (to) params.set('to', to);
  Object.keys(VOCABULARIES).forEach((name) => {
    const chosen = [...document.querySelectorAll(`#filter-${name} input:checked`)].map((input) => input.value);
    if (chosen.length > 0) params.set(name, chosen.join(','));
  });
  // The analyses count the layer's value, and say so in the address a download uses too; the
  // grid's answer has both records and distinct children, by name.
  if (layerName() === 'bin' || layerName() === 'emerging') {
    params.set('value', valueName());
    // The map says whether its hot spots hold at the resolutions either side (not for every
    // frame of a month-by-month playback: three analyses a frame).
    if (layerName() === 'bin' && format === 'geojson' && !state.playing) params.set('sensitivity', 'true');
    return `${base()}/${layerName() === 'bin' ? 'hotspots' : 'emerging'}?${params}`;
  }
  return `${base()}/grid?${params}`;
}

function magnitude(properties) {
  return layerName() === 'records' ? properties.records : properties.subjects;
}

function emergingColour(category) {
  const [kind, hot] = [category.split('_')[0], category.includes('hot')];
  return EMERGING[kind] ? EMERGING[kind][hot ? 0 : 1] : '#f7f7f7';
}

function colourOf(properties, maximum) {
  if (layerName() === 'bin') return (BINS.find(([bin]) => bin === properties.bin) || BINS[3])[1];
  if (layerName() === 'emerging') return emergingColour(properties.category);
  const share = Math.log1p(magnitude(properties)) / Math.log1p(Math.max(maximum, 1));
  return VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(share * VIRIDIS.length))];
}

function legend(maximum, categories, resolution) {
  const row = (colour, text) => el('div', { className: 'legend-row' },
    el('span', { className: 'swatch', style: `background:${colour}` }), el('span', {}, text));
  const heading = el('p', { className: 'legend-value' }, layerMeaning());
  const note = el('p', { className: 'legend-resolution' }, resolution);
  let rows;
  if (layerName() === 'bin') {
    rows = BINS.map(([, colour, text]) => row(colour, text));
  } else if (layerName() === 'emerging') {
    rows = [...categories].sort().map((category) => row(emergingColour(category), category.replace(/_/g, ' ')));
  } else {
    const steps = new Map();
    [0.1, 0.25, 0.5, 0.75, 1].forEach((share) => {
      const count = Math.max(1, Math.round(Math.expm1(share * Math.log1p(Math.max(maximum, 1)))));
      if (!steps.has(count)) steps.set(count, VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(share * VIRIDIS.length))]);
    });
    rows = maximum === 0
      ? [el('p', {}, `No ${value().plural} in this view.`)]
      : [...steps].map(([count, colour]) => row(colour, counted(count)));
  }
  $('legend').replaceChildren(heading, note, ...rows);
}

/** A p-value in plain figures: "< 0.001" below 0.001, otherwise to three decimals. */
function pValue(p) {
  if (typeof p !== 'number' || !Number.isFinite(p)) return '–';
  return p < 0.001 ? '< 0.001' : p.toFixed(3);
}

/** A Gi* bin in words: "Hot spot, 99 % confidence". */
const binText = (bin) => (BINS.find(([known]) => known === bin) || BINS[3])[2];

/** An emerging-hotspot category in words: "intensifying hot spot". */
const categoryText = (category) => category.replace(/_/g, ' ');

/** A cell's figures as the panel names them, for the layer shown. */
/**
 * Where a cell is, in words, from the nearest of the partnership's places: "Burnley centre"
 * within 1.5 km of its point, else "3 km south-west of Burnley" (as hot spot areas are named).
 */
function near(cell) {
  const layer = state.byCell.get(cell);
  if (!layer || state.placeList.length === 0) return '–';
  const { lat, lng } = layer.getBounds().getCenter();
  const radians = (degrees) => (degrees * Math.PI) / 180;
  let best = null;
  state.placeList.forEach((place) => {
    const [phi1, phi2] = [radians(place.lat), radians(lat)];
    const [dPhi, dLambda] = [radians(lat - place.lat), radians(lng - place.lon)];
    const a = Math.sin(dPhi / 2) ** 2 + Math.cos(phi1) * Math.cos(phi2) * Math.sin(dLambda / 2) ** 2;
    const km = 2 * 6371.0088 * Math.asin(Math.sqrt(a));
    if (!best || km < best.km) {
      const bearing = (Math.atan2(Math.sin(dLambda) * Math.cos(phi2), Math.cos(phi1) * Math.sin(phi2) - Math.sin(phi1) * Math.cos(phi2) * Math.cos(dLambda)) * 180) / Math.PI;
      best = { place, km, bearing: (bearing + 360) % 360 };
    }
  });
  const directions = ['north', 'north-east', 'east', 'south-east', 'south', 'south-west', 'west', 'north-west'];
  if (best.km < 1.5) return `${best.place.name} centre`;
  return `${Math.round(best.km)} km ${directions[Math.floor((best.bearing + 22.5) / 45) % 8]} of ${best.place.name}`;
}

function figures(properties) {
  const where = ['Where', near(properties.cell)];
  if (layerName() === 'bin') {
    return [
      ['Cell', properties.cell],
      where,
      ['Gi* result', binText(properties.bin)],
      [capitalised(value().plural), String(properties.value)],
      ['Gi* z-score', properties.z.toFixed(2)],
      ['p-value (decides the confidence)', pValue(properties.p_randomisation)],
      properties.p_sim === undefined ? null : ['p-value by permutation', pValue(properties.p_sim)],
      ['p-value from the normal curve (for reference)', pValue(properties.p)],
    ];
  }
  if (layerName() === 'emerging') {
    return [
      ['Cell', properties.cell],
      where,
      ['Pattern', categoryText(properties.category)],
      ['Counted', value().plural],
      ['Trend (Mann–Kendall z)', properties.trend_z.toFixed(2)],
      ['Trend p-value', pValue(properties.trend_p)],
      ['Months as a hot spot', plural(properties.hot_steps, 'month')],
      ['Months as a cold spot', plural(properties.cold_steps, 'month')],
    ];
  }
  return [
    ['Cell', properties.cell],
    where,
    ['Distinct children', String(properties.subjects)],
    ['Records', String(properties.records)],
    ['Agencies', String(properties.agencies)],
    ['Agency kinds', (properties.agency_kinds || []).map(categoryText).join(', ')],
    ['Children known to two or more kinds of agency', String(properties.multi_agency_subjects)],
    ['First record', properties.first],
    ['Last record', properties.last],
  ];
}

function showDetails(properties) {
  const rows = figures(properties).filter(Boolean).map(([name, shown]) => el('tr', {},
    el('th', { scope: 'row' }, name),
    el('td', {}, shown)));
  $('details').replaceChildren(el('table', { className: 'cell-figures' }, el('tbody', {}, ...rows)));
}

/** Shows a cell's figures, outlines it and brings it into view. */
function selectCell(cell) {
  const layer = state.byCell.get(cell);
  if (!layer) return;
  state.selected = cell;
  state.byCell.forEach((other) => other.setStyle({ weight: 0.5, color: '#333', opacity: 0.35 }));
  layer.setStyle({ weight: 3, color: '#000', opacity: 1 });
  layer.bringToFront();
  showDetails(layer.feature.properties);
  if (!state.map.getBounds().contains(layer.getBounds())) state.map.panTo(layer.getBounds().getCenter());
}

/** The cells ranked by what the layer shows, for the table beside the map. */
function ranked(features) {
  const score = (properties) => {
    if (layerName() === 'bin') return properties.z;
    if (layerName() === 'emerging') return properties.category === 'no_pattern' ? -Infinity : properties.trend_z;
    return magnitude(properties);
  };
  return features.map((feature) => feature.properties)
    .filter((properties) => Number.isFinite(score(properties)))
    .sort((a, b) => score(b) - score(a))
    .slice(0, 10);
}

/** What the layer shows of a cell, in words. */
function describe(properties) {
  if (layerName() === 'bin') {
    // What the cell holds against what its child population would lead us to expect, and why
    // a cell the test alone would call hot is not called one.
    const expected = properties.expected !== undefined
      ? `, ${counted(properties.value)} where ${properties.expected.toFixed(1)} expected` : '';
    const verdict = properties.too_few_children ? 'Too few children to say' : binText(properties.bin);
    return `${verdict} (z ${properties.z.toFixed(2)}${expected})`;
  }
  if (layerName() === 'emerging') return categoryText(properties.category);
  return counted(magnitude(properties));
}

function topCells(features) {
  const rows = ranked(features).map((properties) => [
    el('button', { type: 'button', className: 'link', onclick: () => selectCell(properties.cell) }, properties.cell),
    near(properties.cell),
    describe(properties),
  ]);
  const heading = { bin: 'Gi* result', emerging: 'Pattern' }[layerName()] || capitalised(value().plural);
  $('top-cells').replaceChildren(rows.length > 0 ? table(['Cell', 'Where', heading], rows) : el('p', {}, 'No cells.'));
}

/**
 * The colour scale's top in month-by-month mode on the count layers: the highest cell over the
 * whole period at this resolution and with these filters (no month can exceed it), fetched once
 * per resolution, layer and filters; `null` otherwise.
 */
async function monthScale() {
  if (!$('month-mode').checked || ['bin', 'emerging'].includes(layerName())) return null;
  const address = query('json').replace(/&?(from|to)=[^&]*/g, '');
  if (state.scale && state.scale.address === address) return state.scale.maximum;
  const whole = await getJson(address);
  const maximum = (whole.cells || []).reduce((top, cell) => Math.max(top, magnitude(cell) || 0), 0);
  state.scale = { address, maximum };
  return maximum;
}

/** The filters in force, as chips beside the closed filter panel ("No filters" when none). */
function filterChips() {
  const names = { agency_kinds: 'Agency kind', record_kinds: 'Record kind', indicators: 'Indicator', age_bands: 'Age band' };
  const chips = Object.keys(VOCABULARIES).flatMap((name) => [...document.querySelectorAll(`#filter-${name} input:checked`)]
    .map((input) => el('li', { className: 'chip' }, `${names[name]}: ${words(input.value)}`)));
  $('active-filters').replaceChildren(...(chips.length ? chips : [el('li', {}, 'No filters: every record of the period')]));
}

/**
 * The map as a picture: every drawn cell in its colour and the partnership's outline, over the
 * whole drawing (whatever the view), with the title, period, layer, filters, legend and
 * attribution written under it. The PNG export and the printed page use it.
 */
function picture() {
  const [width, mapHeight, footer] = [1600, 900, 300];
  const canvasElement = el('canvas', { width, height: mapHeight + footer });
  const context = canvasElement.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, width, mapHeight + footer);
  const bounds = state.drawn ? state.drawn.getBounds() : null;
  if (bounds && bounds.isValid()) {
    // An equirectangular projection at the drawing's latitude: true to shape at this scale.
    const squeeze = Math.cos((bounds.getCenter().lat * Math.PI) / 180);
    const spanX = (bounds.getEast() - bounds.getWest()) * squeeze;
    const spanY = bounds.getNorth() - bounds.getSouth();
    const scale = Math.min((width - 40) / spanX, (mapHeight - 40) / spanY);
    const point = ([lng, lat]) => [20 + (lng - bounds.getWest()) * squeeze * scale, 20 + (bounds.getNorth() - lat) * scale];
    const ring = (coordinates) => {
      context.beginPath();
      coordinates.forEach((position, index) => {
        const [x, y] = point(position);
        if (index === 0) context.moveTo(x, y); else context.lineTo(x, y);
      });
      context.closePath();
    };
    state.byCell.forEach((layer) => {
      ring(layer.feature.geometry.coordinates[0]);
      context.fillStyle = layer.options.fillColor;
      context.fill();
      context.strokeStyle = 'rgba(51, 51, 51, 0.35)';
      context.lineWidth = 0.5;
      context.stroke();
    });
    if (state.outline) {
      context.strokeStyle = '#1d3557';
      context.lineWidth = 2;
      state.outline.eachLayer((layer) => {
        const geometry = layer.feature.geometry;
        const polygons = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
        polygons.forEach((polygon) => polygon.forEach((coordinates) => { ring(coordinates); context.stroke(); }));
      });
    }
  }
  context.fillStyle = '#000';
  let y = mapHeight + 30;
  const line = (text, font = '20px sans-serif') => {
    context.font = font;
    context.fillText(text, 20, y, width - 40);
    y += 28;
  };
  line($('map-title').textContent, 'bold 26px sans-serif');
  const { from, to } = period();
  line(`Period: ${from || 'the first record'} to ${to || 'the last record'}. ${$('legend').querySelector('.legend-value')?.textContent || ''}`);
  line(`Filters: ${$('active-filters').innerText.replace(/\n/g, '; ')}`);
  let x = 20;
  context.font = '18px sans-serif';
  $('legend').querySelectorAll('.legend-row').forEach((row) => {
    const swatch = row.querySelector('.swatch');
    const text = row.textContent;
    context.fillStyle = swatch ? getComputedStyle(swatch).backgroundColor : '#fff';
    context.fillRect(x, y - 16, 18, 18);
    context.fillStyle = '#000';
    context.fillText(text, x + 24, y);
    x += 34 + context.measureText(text).width;
    if (x > width - 200) { x = 20; y += 28; }
  });
  y += 36;
  line(`Made with Safeguard Atlas on ${new Date().toISOString().slice(0, 10)}. Reference geography: Office for National Statistics, Open Government Licence v3.0; H3 hexagons.`, '16px sans-serif');
  return canvasElement;
}

/** The printed page's picture of the map, redrawn after each drawing (not while playing). */
function refreshPicture() {
  if (state.playing || state.byCell.size > 30000) return;
  const { from, to } = period();
  $('map-caption').textContent = `Period: ${from || 'the first record'} to ${to || 'the last record'}. `
    + `${$('legend').querySelector('.legend-value')?.textContent || ''} Filters: ${$('active-filters').innerText.replace(/\n/g, '; ')}.`;
  $('map-picture').src = picture().toDataURL('image/png');
}

/** Saves the map's picture as a PNG. */
function exportPng() {
  picture().toBlob((blob) => {
    const link = el('a', { href: URL.createObjectURL(blob), download: `atlas-${session.claims.partnership}-map.png` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }, 'image/png');
}

/** Zooms to an area and shows its first cell's figures. */
function showArea(area) {
  const layers = area.cells.map((cell) => state.byCell.get(cell)).filter(Boolean);
  if (layers.length === 0) return;
  state.map.fitBounds(L.featureGroup(layers).getBounds(), { maxZoom: 13, padding: [20, 20] });
  selectCell(area.cells[0]);
}

/**
 * The hot spot areas as a sortable table, the keyboard route through the map: each area's
 * name is a button that zooms to it (most children first until another column is chosen).
 */
function areaTable(areas) {
  const rows = areas.map((area) => [
    el('button', { type: 'button', className: 'link', onclick: () => showArea(area) }, area.name),
    String(area.confidence), String(area.cells.length), String(area.children), String(area.records),
    area.trend ? area.trend.direction : '–',
  ]);
  const shown = table(['Area', 'Confidence (%)', 'Cells', 'Distinct children', 'Records', 'Children month by month'], rows,
    'Hot spot areas: contiguous cells hot at 95 % confidence or more, named from the nearest place (choose a heading to sort, an area to zoom to it)');
  shown.id = 'area-table';
  [...shown.tBodies[0].rows].forEach((row, index) => { row.dataset.area = areas[index].name; });
  return shown;
}

/** The hot spot areas section: the areas of a Gi* answer, or the way to them. */
function showAreas(data) {
  if (layerName() !== 'bin') {
    $('areas-summary').replaceChildren(el('button', {
      type: 'button',
      onclick: () => { $('layer').value = 'bin'; $('layer').dispatchEvent(new Event('change')); },
    }, 'Show the hot spot areas (the Gi* hot spots layer)'));
    $('areas').replaceChildren();
    return;
  }
  const areas = (data && data.areas) || [];
  $('areas-summary').textContent = data ? data.summary : '';
  $('areas').replaceChildren(areas.length ? areaTable(areas) : '',
    data && data.place_attribution ? el('p', { className: 'note' }, data.place_attribution) : '');
}

async function draw() {
  const drawing = ++state.drawing;
  const { from, to } = period();
  if (!state.playing) say('status', 'Loading…'); // Not announced every step while playing.
  try {
    const data = await (await api(query('geojson'), { accept: 'application/geo+json' })).json();
    if (drawing !== state.drawing) return; // A newer drawing was asked for meanwhile.
    $('map').dataset.noData = String(Boolean(data.no_data));
    if (data.no_data) {
      // No agency contributed records for this period: nothing is drawn, and nothing on the
      // page reads as a zero or as "not significant".
      if (state.drawn) state.drawn.remove();
      state.drawn = null;
      state.byCell = new Map();
      $('map').dataset.cells = '0';
      const when = from || to ? `${from || 'the start'} to ${to || 'the end'}` : 'any period';
      const notice = `No data: no agency has contributed records for ${when}. This is not a count of zero.`;
      $('legend').replaceChildren(el('p', { className: 'legend-value no-data' }, notice));
      $('top-cells').replaceChildren();
      showAreas(null);
      clearDetails();
      say('status', notice);
      return;
    }
    const resolution = (data.settings && data.settings.resolution) || currentResolution();
    const features = data.features || [];
    const own = features.reduce((top, feature) => Math.max(top, magnitude(feature.properties) || 0), 0);
    // Month by month, every month is coloured on one scale, so months compare.
    const monthTop = await monthScale();
    if (drawing !== state.drawing) return;
    const maximum = monthTop === null ? own : Math.max(monthTop, own);
    const categories = new Set(features.map((feature) => feature.properties.category).filter(Boolean));
    if (state.drawn) state.drawn.remove();
    state.byCell = new Map();
    state.drawn = L.geoJSON(data, {
      // SVG keeps one element per cell (named with data-cell); past a few thousand cells a
      // canvas draws far faster.
      renderer: features.length > SVG_CELLS ? canvas() : undefined,
      style: (feature) => ({ fillColor: colourOf(feature.properties, maximum), fillOpacity: 0.8, color: '#333', opacity: 0.35, weight: 0.5 }),
      onEachFeature: (feature, layer) => {
        state.byCell.set(feature.properties.cell, layer);
        layer.on('click', () => selectCell(feature.properties.cell));
        // A text node: Leaflet would read a string as HTML.
        layer.bindTooltip(() => document.createTextNode(`${near(feature.properties.cell)} (${feature.properties.cell}): ${describe(feature.properties)}`));
      },
    }).addTo(state.map);
    state.byCell.forEach((layer, cell) => {
      const path = layer.getElement();
      if (!path) return;
      // Hexagons are not tab stops: the area table and the cell table are the keyboard route.
      path.setAttribute('tabindex', '-1');
      path.dataset.cell = cell;
      if (layer.feature.properties.bin !== undefined) path.dataset.bin = String(layer.feature.properties.bin);
    });
    state.resolution = resolution;
    Object.assign($('map').dataset, {
      cells: String(features.length), layer: layerName(), value: valueName(), resolution: String(resolution), period: `${from || ''}..${to || ''}`,
    });
    const sensitivity = data.sensitivity ? ` ${data.sensitivity.note}` : '';
    const scale = monthTop === null ? '' : ` Every month is coloured on one scale, up to the highest cell over the whole period (${counted(maximum)}), so months compare.`;
    legend(maximum, categories, `${resolutionNote(resolution, data.settings)}${sensitivity}${scale}`);
    filterChips();
    refreshPicture();
    topCells(features);
    showAreas(data);
    // The cell panel follows the drawing: the same cell's new figures, or none.
    if (state.selected && state.byCell.has(state.selected)) selectCell(state.selected);
    else clearDetails();
    const when = from || to ? ` for ${from || 'the start'} to ${to || 'the end'}` : '';
    say('status', `${plural(features.length, 'cell')} drawn at resolution ${resolution}${when}, counting ${value().plural}.`);
  } catch (error) {
    if (drawing !== state.drawing) return;
    // Nothing stale stays on screen as if it answered the question asked.
    if (state.drawn) state.drawn.remove();
    state.drawn = null;
    state.byCell = new Map();
    $('map').dataset.cells = '0';
    $('legend').replaceChildren();
    $('top-cells').replaceChildren();
    clearDetails();
    say('status', error.message);
  }
}

function clearDetails() {
  state.selected = null;
  $('details').replaceChildren(el('p', {}, 'Click a cell on the map, or choose one in the table, to see its figures.'));
}

/** The months the partnership's records span, for the time slider. */
async function loadMonths() {
  const grid = await getJson(`${base()}/grid?resolution=6`);
  const firsts = grid.cells.map((cell) => cell.first).sort();
  const lasts = grid.cells.map((cell) => cell.last).sort();
  state.months = [];
  if (firsts.length === 0) return;
  const [startYear, startMonth] = firsts[0].split('-').map(Number);
  const [endYear, endMonth] = lasts[lasts.length - 1].split('-').map(Number);
  for (let year = startYear, month = startMonth; year < endYear || (year === endYear && month <= endMonth);) {
    state.months.push(`${year}-${String(month).padStart(2, '0')}-01`);
    month += 1;
    if (month > 12) { month = 1; year += 1; }
  }
  $('month').max = String(state.months.length - 1);
  $('month').value = '0';
  showMonth();
}

function showMonth() {
  const first = state.months[Number($('month').value)];
  const label = first ? new Date(`${first}T00:00:00Z`).toLocaleDateString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' }) : '';
  $('month-label').textContent = label;
  $('month').setAttribute('aria-valuetext', label);
}

/** Counts the times Play was pressed: a step of an earlier play never schedules another. */
let plays = 0;

/** Stops playing through the months (also when the map page is left). */
export function stopPlaying() {
  if (state.timer) clearTimeout(state.timer);
  state.playing = 0;
  state.timer = null;
  $('play').textContent = 'Play';
  $('play').setAttribute('aria-pressed', 'false');
}

/** Shows the next month once the current one is drawn and has been on screen a while. */
function playNext(play) {
  state.timer = setTimeout(async () => {
    if (state.playing !== play) return;
    const next = Number($('month').value) + 1;
    if (next >= state.months.length || $('map-page').hidden) {
      stopPlaying();
      return;
    }
    $('month').value = String(next);
    showMonth();
    await draw();
    if (state.playing === play) playNext(play);
  }, PLAY_STEP_MS);
}

async function togglePlay() {
  if (state.playing) {
    stopPlaying();
    return;
  }
  plays += 1;
  const play = plays;
  state.playing = play;
  // From the last month, play starts again at the first.
  if (Number($('month').value) >= state.months.length - 1) {
    $('month').value = '0';
    showMonth();
  }
  $('play').textContent = 'Pause';
  $('play').setAttribute('aria-pressed', 'true');
  if (!$('month-mode').checked) {
    $('month-mode').checked = true;
  }
  await monthMode();
  if (state.playing === play) playNext(play);
}

function monthMode() {
  const on = $('month-mode').checked;
  $('month').disabled = !on;
  // The month is named only while the map shows one month.
  $('month-label').hidden = !on;
  $('play').disabled = state.months.length === 0 || layerName() === 'emerging';
  $('from').disabled = on;
  $('to').disabled = on;
  if (!on) stopPlaying();
  return draw();
}

function filterBoxes() {
  Object.entries(VOCABULARIES).forEach(([name, values]) => {
    $(`filter-${name}`).replaceChildren(...values.map((value) => el('label', { className: 'check' },
      el('input', { type: 'checkbox', value, onchange: draw }), ` ${words(value)}`)));
  });
}

async function outlines() {
  const feature = async (code) => (await api(`/api/v1/partnerships/${code}?boundary=true`, { accept: 'application/geo+json' })).json();
  const own = await feature(session.claims.partnership);
  if (state.outline) state.outline.remove();
  if (state.neighbours) state.neighbours.remove();
  state.outline = L.geoJSON(own, { style: { color: '#1d3557', weight: 2.5, fill: false }, interactive: false }).addTo(state.map);
  state.map.fitBounds(state.outline.getBounds());
  $('map-title').textContent = `Hotspot map: ${own.properties ? own.properties.name : session.claims.partnership}`;
  const neighbours = await Promise.all(((own.properties && own.properties.neighbours) || []).map(feature));
  state.neighbours = L.geoJSON({ type: 'FeatureCollection', features: neighbours }, {
    style: { color: '#555', weight: 1.5, dashArray: '6 4', fill: false },
    onEachFeature: (neighbour, layer) => layer.bindTooltip(() => document.createTextNode(`Neighbour: ${neighbour.properties.name}`), { sticky: true }),
  }).addTo(state.map);
  state.neighbours.bringToBack();
  $('map').dataset.neighbours = String(neighbours.length);
  await placeLabels();
}

/** The least population a place needs for its name to show at `zoom`: towns first. */
function labelThreshold(zoom) {
  if (zoom < 10) return 50000;
  if (zoom < 11) return 15000;
  if (zoom < 12) return 5000;
  return 0;
}

/**
 * The partnership's towns and villages as labels over the cells (GeoNames, attributed on the
 * map), the larger ones at lower zooms; not interactive and not tab stops.
 */
async function placeLabels() {
  const { places, attribution } = await getJson(`${base()}/places`);
  state.placeList = places;
  if (state.places) state.places.remove();
  state.places = L.layerGroup(places.map((place) => {
    const marker = L.marker([place.lat, place.lon], {
      icon: L.divIcon({ className: 'place-label', html: el('span', {}, place.name), iconSize: null }),
      interactive: false,
      keyboard: false,
    });
    marker.population = place.population;
    return marker;
  }));
  state.places.addTo(state.map);
  if (attribution) state.map.attributionControl.addAttribution(attribution);
  const show = () => {
    const least = labelThreshold(state.map.getZoom());
    state.places.eachLayer((marker) => {
      const element = marker.getElement();
      if (element) element.hidden = marker.population < least;
    });
    $('map').dataset.placeLabels = String([...document.querySelectorAll('#map .place-label:not([hidden])')].length);
  };
  state.map.on('zoomend', show);
  show();
}

function baseMap() {
  const url = document.querySelector('meta[name="atlas-tile-url"]');
  if (!url) return; // No base map by default: the map works offline and tells no third party where we look.
  const attribution = document.querySelector('meta[name="atlas-tile-attribution"]');
  L.tileLayer(url.content, { attribution: attribution ? attribution.content : '', maxZoom: 18 }).addTo(state.map);
}

function setUp() {
  state.map = L.map('map', { zoomSnap: 0.5, keyboard: true }).setView([53.8, -2.6], 9);
  baseMap();
  state.map.on('moveend', () => {
    if ($('resolution').value === 'auto' && !isAnalysis() && resolutionForZoom(state.map.getZoom()) !== state.resolution) draw();
  });
  ['resolution', 'from', 'to'].forEach((id) => $(id).addEventListener('change', draw));
  $('layer').addEventListener('change', () => {
    // Emerging hotspots need many periods: the month-by-month view does not apply to them.
    const emerging = layerName() === 'emerging';
    $('month-mode').disabled = emerging;
    if (emerging) $('month-mode').checked = false;
    monthMode();
  });
  $('month-mode').addEventListener('change', monthMode);
  $('month').addEventListener('input', () => {
    showMonth();
    draw();
  });
  $('play').addEventListener('click', togglePlay);
  $('clear-filters').addEventListener('click', () => {
    document.querySelectorAll('#filters input:checked').forEach((input) => { input.checked = false; });
    draw();
  });
  // The file's name says what its layer counts, as the map does.
  const saveAs = (format) => {
    const layer = { bin: 'gi-star-', emerging: 'emerging-' }[layerName()] || '';
    return `atlas-${session.claims.partnership}-${layer}${value().plural.replace(/ /g, '-')}.${format === 'csv' ? 'csv' : 'geojson'}`;
  };
  $('download-geojson').addEventListener('click', () => download(query('geojson'), 'application/geo+json', saveAs('geojson')).catch((error) => say('status', error.message)));
  $('export-png').addEventListener('click', exportPng);
  $('download-csv').addEventListener('click', () => download(query('csv'), 'text/csv', saveAs('csv')).catch((error) => say('status', error.message)));
  filterBoxes();
}

/** Opens the map page for the signed-in caller (a new caller means a new page load). */
export async function showMap() {
  if (!state.map) setUp();
  // Agency analysts see their partnership's counts but not its analyses.
  const analyses = hasRole('partnership_analyst');
  document.querySelectorAll('#layer option[data-analysis]').forEach((option) => {
    option.hidden = !analyses;
    option.disabled = !analyses;
  });
  if (!analyses && $('layer').selectedOptions[0].disabled) $('layer').value = 'subjects';
  state.map.invalidateSize();
  if (!state.loaded) {
    try {
      await outlines();
      await loadMonths();
      // Back from signing in again: the layer, resolution, period, month and filters as they were.
      if (restorePlace($('map-page'))) showMonth();
      state.loaded = true;
    } catch (error) {
      say('status', error.message);
      return;
    }
    await monthMode();
    return;
  }
  await draw();
}
