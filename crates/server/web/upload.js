// The upload page (agency analysts): send an extract with a progress bar, read the batch
// summary and data-quality figures, download the rejection report, and withdraw or correct
// (supersede) the agency's earlier batches.

import { $, api, download, el, getJson, plural, say, session, signOut, table } from './core.js';

/** The media type and encoding of an extract, from its file name (as `atlas upload` does). */
function mediaType(name) {
  const lower = name.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const stem = gzip ? lower.slice(0, -3) : lower;
  if (stem.endsWith('.csv')) return { type: 'text/csv', gzip };
  if (stem.endsWith('.ndjson') || stem.endsWith('.jsonl')) return { type: 'application/x-ndjson', gzip };
  return null;
}

const percent = (share) => (typeof share === 'number' ? `${(share * 100).toFixed(1)} %` : '–');

function summary(batch) {
  const quality = batch.quality || {};
  const partnerships = Object.entries(batch.partnerships || {}).map(([code, rows]) => `${code}: ${rows}`).join(', ') || 'none';
  const rows = [
    ['Batch', batch.batch_id],
    ['Status', batch.status],
    ['Rows read', String(batch.rows_total)],
    ['Rows stored', String(batch.rows_accepted)],
    ['Rows rejected', String(batch.rows_rejected)],
    ['Placed on the map (geocoded)', percent(quality.geocoded_share)],
    ['Records with indicators', percent(quality.indicator_completeness)],
    ['Earliest event', quality.first_date || '–'],
    ['Latest event', quality.last_date || '–'],
    ['Rows stored per partnership', partnerships],
  ];
  const body = el('table', { className: 'cell-figures' }, el('tbody', {}, ...rows.map(([name, value]) => el('tr', {},
    el('th', { scope: 'row' }, name), el('td', { dataset: { field: name } }, value)))));
  const report = batch.rows_rejected > 0
    ? el('button', { type: 'button', onclick: () => rejectionReport(batch) }, `Download the rejection report (${plural(batch.rows_rejected, 'row')})`)
    : el('p', {}, 'No rows were rejected.');
  $('summary-body').replaceChildren(body, report);
  $('upload-summary').hidden = false;
}

/** A refused file's rejection report (it came with the refusal): a CSV to save. */
function refusalReport(name, rejections) {
  const quoted = (text) => `"${String(text).replace(/"/g, '""')}"`;
  const csv = ['row,field,reason', ...rejections.map((row) => [row.row, quoted(row.field), quoted(row.reason)].join(','))].join('\n');
  $('refusal-report').replaceChildren(el('button', {
    type: 'button',
    onclick: () => {
      const link = el('a', { href: URL.createObjectURL(new Blob([`${csv}\n`], { type: 'text/csv' })), download: `rejections-${name}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
    },
  }, `Download the rejection report of the refused file (${plural(rejections.length, 'row')})`));
}

function rejectionReport(batch) {
  download(batch.rejections, 'text/csv', `rejections-${batch.batch_id}.csv`).catch((error) => say('upload-status', error.message));
}

/** Whether an upload is under way: the button says so but keeps focus (it is not disabled). */
let uploading = false;

function busy(on) {
  uploading = on;
  $('upload-button').setAttribute('aria-disabled', String(on));
}

/** Sends the chosen file with XMLHttpRequest, whose upload events drive the progress bar. */
function send(file, supersedes) {
  const format = mediaType(file.name);
  if (!format) {
    say('upload-status', `${file.name}: name the file .csv, .ndjson or .jsonl (optionally .gz) so its format is known.`);
    return;
  }
  const progress = $('upload-progress');
  progress.value = 0;
  progress.max = 100;
  $('upload-progress-box').hidden = false;
  $('upload-progress-label').textContent = `Uploading ${file.name}`;
  $('upload-summary').hidden = true;
  $('refusal-report').replaceChildren();
  busy(true);
  say('upload-status', `Uploading ${file.name}…`);
  const request = new XMLHttpRequest();
  const url = supersedes ? `/api/v1/extracts?supersedes=${encodeURIComponent(supersedes)}` : '/api/v1/extracts';
  request.open('POST', url);
  request.setRequestHeader('Authorization', `Bearer ${session.token}`);
  request.setRequestHeader('Content-Type', format.type);
  request.setRequestHeader('Accept', 'application/json');
  if (format.gzip) request.setRequestHeader('Content-Encoding', 'gzip');
  request.upload.addEventListener('progress', (event) => {
    if (event.lengthComputable) progress.value = Math.round((100 * event.loaded) / event.total);
  });
  request.upload.addEventListener('load', () => {
    progress.value = 100;
    $('upload-progress-label').textContent = `Sent ${file.name}`;
    say('upload-status', `${file.name} sent; the server is checking and storing it…`);
  });
  request.addEventListener('load', () => {
    busy(false);
    let body = {};
    try {
      body = JSON.parse(request.responseText);
    } catch {
      // Not JSON: the status says enough.
    }
    if (request.status === 401) {
      signOut('Your sign-in has expired or was refused: sign in again, then upload the file again.');
    } else if (request.status === 201) {
      say('upload-status', `${file.name}: ${plural(body.rows_accepted, 'row')} stored, ${body.rows_rejected} rejected.`);
      summary(body);
      batches();
    } else if (request.status === 200) {
      say('upload-status', `${file.name} was uploaded before: this is its batch, and nothing was stored again.`);
      summary(body);
    } else {
      say('upload-status', `${file.name} was refused (${request.status}): ${body.message || 'no reason given'}. Nothing was stored.`);
      if (Array.isArray(body.rejections) && body.rejections.length > 0) refusalReport(file.name, body.rejections);
    }
  });
  const failed = (why) => () => {
    busy(false);
    say('upload-status', `The upload ${why}; nothing was stored. Try again.`);
  };
  request.addEventListener('error', failed('failed: the server could not be reached'));
  request.addEventListener('abort', failed('was interrupted'));
  request.addEventListener('timeout', failed('took too long'));
  request.send(file);
}

async function withdraw(batch) {
  // A deliberate, irreversible step: ask first.
  if (!window.confirm(`Withdraw batch ${batch.batch_id}? Its ${plural(batch.rows_accepted, 'record leaves', 'records leave')} every map and analysis at once.`)) return;
  try {
    await api(`/api/v1/batches/${batch.batch_id}`, { method: 'DELETE' });
    say('upload-status', `Batch ${batch.batch_id} withdrawn.`);
    await batches();
  } catch (error) {
    say('upload-status', error.message);
  }
}

function correct(batch) {
  $('supersedes').value = batch.batch_id;
  $('upload-file').focus();
  say('upload-status', `Choose the corrected file: it will supersede batch ${batch.batch_id}.`);
}

async function batches() {
  try {
    const { batches: list } = await getJson('/api/v1/batches');
    const committed = list.filter((batch) => batch.status === 'committed');
    $('supersedes').replaceChildren(el('option', { value: '' }, 'nothing: a new batch'),
      ...committed.map((batch) => el('option', { value: batch.batch_id }, `batch ${batch.batch_id.slice(0, 8)} of ${batch.received_at.slice(0, 10)}`)));
    const rows = list.map((batch) => [
      batch.received_at.replace('T', ' ').slice(0, 16),
      el('span', { title: batch.batch_id }, batch.batch_id.slice(0, 8)),
      batch.superseded_by ? `${batch.status} by ${batch.superseded_by.slice(0, 8)}` : batch.status,
      String(batch.rows_accepted),
      String(batch.rows_rejected),
      el('span', {},
        batch.rows_rejected > 0 ? el('button', { type: 'button', 'aria-label': `Rejections of batch ${batch.batch_id}`, onclick: () => rejectionReport(batch) }, 'Rejections') : null,
        batch.status === 'committed' ? el('button', { type: 'button', 'aria-label': `Correct batch ${batch.batch_id}`, onclick: () => correct(batch) }, 'Correct') : null,
        batch.status === 'committed' ? el('button', { type: 'button', className: 'danger', 'aria-label': `Withdraw batch ${batch.batch_id}`, onclick: () => withdraw(batch) }, 'Withdraw') : null),
    ]);
    $('batches').replaceChildren(rows.length > 0
      ? table(['Received (UTC)', 'Batch', 'Status', 'Stored', 'Rejected', 'Actions'], rows)
      : el('p', {}, 'Your agency has not uploaded an extract yet.'));
  } catch (error) {
    say('upload-status', error.message);
  }
}

let ready = false;

/** Opens the upload page. */
export async function showUpload() {
  if (!ready) {
    ready = true;
    $('upload-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const file = $('upload-file').files[0];
      if (file && !uploading) send(file, $('supersedes').value);
    });
  }
  await batches();
}
