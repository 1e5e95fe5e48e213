// Safeguard Atlas in the browser: sign-in and the hotspot map. Plain JavaScript, no build step;
// the server embeds this file (crates/server/src/web.rs).
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'atlas-token';
  const state = { token: sessionStorage.getItem(TOKEN_KEY), claims: null, map: null, drawn: null, outline: null, resolution: null };

  // Viridis (colour-blind safe) for magnitudes; ColorBrewer RdBu (diverging) for Gi* bins.
  const VIRIDIS = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'];
  const BINS = [
    [3, '#b2182b', 'Hot spot, 99 % confidence'],
    [2, '#ef8a62', 'Hot spot, 95 %'],
    [1, '#fddbc7', 'Hot spot, 90 %'],
    [0, '#f7f7f7', 'Not significant'],
    [-1, '#d1e5f0', 'Cold spot, 90 %'],
    [-2, '#67a9cf', 'Cold spot, 95 %'],
    [-3, '#2166ac', 'Cold spot, 99 % confidence'],
  ];
  const EMERGING = {
    new: ['#b2182b', '#2166ac'], consecutive: ['#d6604d', '#4393c3'], intensifying: ['#67001f', '#053061'],
    persistent: ['#f4a582', '#92c5de'], diminishing: ['#fddbc7', '#d1e5f0'], sporadic: ['#e08214', '#8073ac'],
    oscillating: ['#fdb863', '#b2abd2'], historical: ['#fee0b6', '#d8daeb'],
  };

  function claimsOf(token) {
    try {
      const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(payload));
    } catch {
      return null;
    }
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  async function api(path, accept) {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: accept || 'application/json' },
    });
    if (response.status === 401) {
      signOut();
      throw new Error('Your sign-in has expired or was refused: sign in again.');
    }
    if (!response.ok) {
      let message = `The server answered ${response.status}.`;
      try {
        message = (await response.json()).message || message;
      } catch {
        // Not JSON: keep the status.
      }
      throw new Error(message);
    }
    return response;
  }

  // Sign-in.
  async function showSignIn() {
    $('sign-in').hidden = false;
    $('map-page').hidden = true;
    $('sign-out').hidden = true;
    $('who').textContent = '';
    const response = await fetch('/api/v1/demo/users');
    if (!response.ok) {
      return;
    }
    const { users } = await response.json();
    $('demo').hidden = false;
    $('demo-users').replaceChildren(...users.map((user) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = user.describe;
      button.dataset.user = user.id;
      button.addEventListener('click', () => signIn(user.token));
      item.append(button);
      return item;
    }));
  }

  function signIn(token) {
    const claims = claimsOf(token.trim());
    if (!claims || !claims.partnership) {
      alert('That is not an Atlas token: it names no partnership.');
      return;
    }
    state.token = token.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    showSignIn();
  }

  // The map.
  function resolutionForZoom(zoom) {
    if (zoom <= 8) return 6;
    if (zoom <= 10) return 7;
    if (zoom <= 12) return 8;
    return 9;
  }

  function currentResolution() {
    const chosen = $('resolution').value;
    return chosen === 'auto' ? resolutionForZoom(state.map.getZoom()) : Number(chosen);
  }

  function query(format) {
    const layer = $('layer').value;
    const params = new URLSearchParams({ resolution: String(currentResolution()), format });
    if ($('from').value) params.set('from', $('from').value);
    if ($('to').value) params.set('to', $('to').value);
    const base = `/api/v1/partnerships/${state.claims.partnership}`;
    if (layer === 'bin') {
      params.set('value', 'subjects');
      return `${base}/hotspots?${params}`;
    }
    if (layer === 'emerging') {
      return `${base}/emerging?${params}`;
    }
    return `${base}/grid?${params}`;
  }

  function magnitude(properties) {
    return $('layer').value === 'subjects' ? properties.subjects : properties.records;
  }

  function colourOf(properties, maximum) {
    const layer = $('layer').value;
    if (layer === 'bin') {
      return (BINS.find(([bin]) => bin === properties.bin) || BINS[3])[1];
    }
    if (layer === 'emerging') {
      const [kind, hot] = [properties.category.split('_')[0], properties.category.includes('hot')];
      return EMERGING[kind] ? EMERGING[kind][hot ? 0 : 1] : '#f7f7f7';
    }
    const share = Math.log1p(magnitude(properties)) / Math.log1p(Math.max(maximum, 1));
    return VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(share * VIRIDIS.length))];
  }

  function legend(maximum, categories) {
    const rows = [];
    const row = (colour, text) => {
      const div = document.createElement('div');
      div.className = 'legend-row';
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colour;
      const label = document.createElement('span');
      label.textContent = text;
      div.append(swatch, label);
      rows.push(div);
    };
    const layer = $('layer').value;
    if (layer === 'bin') {
      BINS.forEach(([, colour, text]) => row(colour, text));
    } else if (layer === 'emerging') {
      [...categories].sort().forEach((category) => {
        const [kind, hot] = [category.split('_')[0], category.includes('hot')];
        row(EMERGING[kind] ? EMERGING[kind][hot ? 0 : 1] : '#f7f7f7', category.replace(/_/g, ' '));
      });
    } else {
      const what = layer === 'subjects' ? 'distinct children' : 'records';
      [0, 0.25, 0.5, 0.75, 1].forEach((share) => {
        const value = Math.round(Math.expm1(share * Math.log1p(Math.max(maximum, 1))));
        row(VIRIDIS[Math.min(VIRIDIS.length - 1, Math.floor(share * VIRIDIS.length))], `${value} ${what}`);
      });
    }
    $('legend').replaceChildren(...rows);
  }

  function showDetails(properties) {
    const table = document.createElement('table');
    Object.entries(properties).forEach(([name, value]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = name.replace(/_/g, ' ');
      const td = document.createElement('td');
      td.textContent = Array.isArray(value) ? value.join(', ') : String(value);
      tr.append(th, td);
      table.append(tr);
    });
    $('details').replaceChildren(table);
  }

  async function draw() {
    const resolution = currentResolution();
    state.resolution = resolution;
    setStatus('Loading…');
    try {
      const data = await (await api(query('geojson'), 'application/geo+json')).json();
      const features = data.features || [];
      const maximum = features.reduce((top, feature) => Math.max(top, magnitude(feature.properties) || 0), 0);
      const categories = new Set(features.map((feature) => feature.properties.category).filter(Boolean));
      if (state.drawn) state.drawn.remove();
      state.drawn = L.geoJSON(data, {
        style: (feature) => ({ fillColor: colourOf(feature.properties, maximum), fillOpacity: 0.75, color: '#333', weight: 0.5 }),
        onEachFeature: (feature, layer) => {
          layer.on('click', () => showDetails(feature.properties));
          layer.bindTooltip(`${feature.properties.cell}`);
        },
      }).addTo(state.map);
      $('map').dataset.cells = String(features.length);
      $('map').dataset.layer = $('layer').value;
      legend(maximum, categories);
      setStatus(`${features.length} cells drawn at resolution ${resolution}.`);
    } catch (error) {
      $('map').dataset.cells = '0';
      setStatus(error.message);
    }
  }

  async function download(format) {
    try {
      const response = await api(query(format), format === 'csv' ? 'text/csv' : 'application/geo+json');
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement('a');
      link.href = url;
      link.download = `atlas-${state.claims.partnership}-${$('layer').value}.${format === 'csv' ? 'csv' : 'geojson'}`;
      link.click();
      URL.revokeObjectURL(url);
    } catch (error) {
      setStatus(error.message);
    }
  }

  async function showMap() {
    $('sign-in').hidden = true;
    $('map-page').hidden = false;
    $('sign-out').hidden = false;
    if (!state.map) {
      // No base map: the map works offline, and only the partnership's own cells are drawn.
      state.map = L.map('map', { zoomSnap: 0.5 }).setView([53.8, -2.6], 9);
      state.map.on('moveend', () => {
        if ($('resolution').value === 'auto' && resolutionForZoom(state.map.getZoom()) !== state.resolution) draw();
      });
      ['layer', 'resolution', 'from', 'to'].forEach((id) => $(id).addEventListener('change', draw));
      $('download-geojson').addEventListener('click', () => download('geojson'));
      $('download-csv').addEventListener('click', () => download('csv'));
    }
    try {
      const boundary = await (await api(`/api/v1/partnerships/${state.claims.partnership}?boundary=true`, 'application/geo+json')).json();
      if (state.outline) state.outline.remove();
      state.outline = L.geoJSON(boundary, { style: { color: '#1d3557', weight: 2, fill: false } }).addTo(state.map);
      state.map.fitBounds(state.outline.getBounds());
      $('map-title').textContent = `Hotspot map: ${boundary.properties ? boundary.properties.name : state.claims.partnership}`;
    } catch (error) {
      setStatus(error.message);
    }
    await draw();
  }

  function start() {
    state.claims = state.token ? claimsOf(state.token) : null;
    if (!state.claims) {
      showSignIn();
      return;
    }
    $('who').textContent = `Signed in as ${state.claims.sub} (${(state.claims.roles || []).join(', ')}, ${state.claims.partnership})`;
    showMap();
  }

  $('sign-out').addEventListener('click', signOut);
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    signIn($('token').value);
  });
  start();
})();
