// The console's one script: turns the pages' buttons into calls of the flags API
// (`/api/v1/...`), the same calls any script makes, with the session's CSRF token. It holds
// no rules: the server decides, and a refusal is shown as the server worded it.

const csrf = document.querySelector('meta[name=csrf-token]')?.content ?? '';
const status = document.getElementById('status');

// Shows `text` in the page's live region; `kind` is 'ok', 'error' or 'busy'. `extra` is an
// optional element appended after the text (a link or an Undo button).
function say(text, kind, extra) {
  status.replaceChildren(document.createTextNode(text));
  if (extra) status.append(' ', extra);
  status.className = `toast ${kind}`;
}

// One API call. Resolves to the parsed JSON answer; rejects with the problem's words.
async function api(method, path, body, headers = {}) {
  const init = { method, headers: { 'X-CSRF-Token': csrf, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
  }
  let reply;
  try {
    reply = await fetch(path, init);
  } catch (e) {
    throw new Error(`the service cannot be reached (${e.message})`);
  }
  const text = await reply.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!reply.ok) {
    const detail = json?.detail || json?.title || text || reply.statusText;
    throw new Error(`${reply.status}: ${detail}`);
  }
  return json;
}

// Runs `work` with `button` disabled and marked busy; says what failed if it throws.
async function busy(button, what, work) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  say(`${what}…`, 'busy');
  try {
    await work();
  } catch (e) {
    say(`${what} failed: ${e.message}`, 'error');
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  return a;
}

const envPath = (env, key, verb) =>
  `/api/v1/environments/${encodeURIComponent(env)}/flags/${encodeURIComponent(key)}/${verb}`;

// Marks the cell of `key` in `env` killed or not, and swaps its Kill/Unkill button.
function showKilled(cell, key, env, killed) {
  cell.querySelector('.badge.killed')?.remove();
  if (killed) {
    const badge = document.createElement('span');
    badge.className = 'badge killed';
    badge.textContent = 'killed';
    cell.querySelector('.state')?.after(' ', badge);
  }
  const button = cell.querySelector('[data-action=kill],[data-action=unkill]');
  if (button) {
    button.dataset.action = killed ? 'unkill' : 'kill';
    button.textContent = killed ? 'Unkill' : 'Kill';
    button.className = killed ? '' : 'danger';
    button.setAttribute('aria-label', `${killed ? 'Unkill' : 'Kill'}: ${key} in ${env}`);
  }
}

async function unkill(cell, key, env, button) {
  await busy(button, `Unkilling ${key} in ${env}`, async () => {
    const done = await api('POST', envPath(env, key, 'unkill'), { reason: 'undo from the console' });
    showKilled(cell, key, env, false);
    say(`${key} is live again in ${env} (version ${done.version}).`, 'ok');
  });
}

const dialog = document.getElementById('kill-dialog');
let killTarget = null;

function askKill(cell, key, env, button) {
  killTarget = { cell, key, env, button };
  dialog.querySelector('.flag-name').textContent = key;
  dialog.querySelector('.env-name').textContent = env;
  dialog.querySelector('textarea').value = '';
  dialog.showModal();
}

dialog?.addEventListener('close', () => {
  const target = killTarget;
  killTarget = null;
  if (!target || dialog.returnValue !== 'confirm') return;
  const { cell, key, env, button } = target;
  const reason = dialog.querySelector('textarea').value.trim();
  busy(button, `Killing ${key} in ${env}`, async () => {
    const done = await api('POST', envPath(env, key, 'kill'), { reason });
    showKilled(cell, key, env, true);
    const undo = document.createElement('button');
    undo.type = 'button';
    undo.textContent = 'Undo';
    undo.addEventListener('click', () => unkill(cell, key, env, undo));
    say(`${key} killed in ${env} (version ${done.version}).`, 'ok', undo);
    button.focus();
  });
});

// A toggle opens a change request that flips `enabled` in the file (JSON Patch, If-Match).
async function toggle(row, cell, key, env, button) {
  const on = button.dataset.enabled !== 'true';
  await busy(button, `Opening a change to turn ${key} ${on ? 'on' : 'off'} in ${env}`, async () => {
    const patch = [{ op: 'add', path: `/environments/${env.replaceAll('~', '~0').replaceAll('/', '~1')}/enabled`, value: on }];
    const message = `turn ${key} ${on ? 'on' : 'off'} in ${env}`;
    const done = await api('PATCH', `/api/v1/flags/${encodeURIComponent(key)}?message=${encodeURIComponent(message)}`, patch, {
      'Content-Type': 'application/json-patch+json',
      'If-Match': `"${row.dataset.etag}"`,
    });
    const id = done.change.id;
    say(`Change #${id} opened: ${message}.`, 'ok', link(`/changes/${id}`, `Review change #${id}`));
  });
}

// The flag page's metadata form: one JSON Patch of the fields that changed.
async function patchForm(form, button) {
  const ops = [];
  for (const input of form.querySelectorAll('[data-path]')) {
    if (input.value === input.dataset.initial) continue;
    ops.push(input.value === ''
      ? { op: 'remove', path: input.dataset.path }
      : { op: 'add', path: input.dataset.path, value: input.value });
  }
  if (ops.length === 0) {
    say('Nothing changed.', 'ok');
    return;
  }
  const key = form.dataset.flag;
  await busy(button, `Opening a change to ${key}`, async () => {
    const done = await api('PATCH', `/api/v1/flags/${encodeURIComponent(key)}`, ops, {
      'Content-Type': 'application/json-patch+json',
      'If-Match': `"${form.dataset.etag}"`,
    });
    const id = done.change.id;
    say(`Change #${id} opened.`, 'ok', link(`/changes/${id}`, `Review change #${id}`));
  });
}

const verbs = { approve: 'Approving', merge: 'Merging', close: 'Closing' };

async function review(verb, id, button) {
  await busy(button, `${verbs[verb]} change #${id}`, async () => {
    await api('POST', `/api/v1/changes/${encodeURIComponent(id)}/${verb}`);
    say(`Change #${id}: ${verb} done.`, 'ok');
    window.location.reload();
  });
}

// A plain POST (drift check and fix, promote, abort), after the button's confirmation if it
// has one; the page reloads to show the new state.
async function post(button) {
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const what = button.dataset.what;
  await busy(button, what, async () => {
    const done = await api('POST', button.dataset.path);
    const verdict = done?.status ?? done?.verdict ?? (done?.version !== undefined ? `version ${done.version}` : 'done');
    say(`${what}: ${typeof verdict === 'string' ? verdict : JSON.stringify(verdict)}.`, 'ok');
    setTimeout(() => window.location.reload(), 1200);
  });
}

// Rollback shows the diff first: deployed -> the chosen version, then the button.
async function rollbackDiff(form, button) {
  const env = form.dataset.env;
  const to = form.querySelector('select').value;
  const box = form.querySelector('#rollback-diff');
  await busy(button, `Diff to version ${to}`, async () => {
    const diff = await api('GET', `/api/v1/environments/${encodeURIComponent(env)}/diff?to=${encodeURIComponent(to)}`);
    const list = box.querySelector('ul');
    list.replaceChildren();
    for (const flag of diff.flags) {
      const item = document.createElement('li');
      const key = document.createElement('code');
      key.textContent = flag.key;
      item.append(key, ` ${flag.change}${flag.details ? `: ${flag.details.join('; ')}` : ''}`);
      list.append(item);
    }
    if (diff.flags.length === 0) list.append(Object.assign(document.createElement('li'), { textContent: 'nothing: the same flags' }));
    const go = box.querySelector('[data-action=rollback]');
    go.dataset.to = to;
    go.textContent = `Roll back to version ${to}`;
    box.hidden = false;
    say(`Diff to version ${to} shown.`, 'ok');
    go.focus();
  });
}

async function rollback(button) {
  const form = button.closest('form');
  const env = form.dataset.env;
  const to = Number(button.dataset.to);
  await busy(button, `Rolling ${env} back to version ${to}`, async () => {
    const done = await api('POST', `/api/v1/environments/${encodeURIComponent(env)}/rollback`, { to, message: 'rollback from the console' });
    say(done?.pending ? `Rollback waits for approval (#${done.pending.id ?? ''}).` : `Rolled back: ${env} serves version ${to}'s flags as version ${done.version}.`, 'ok');
    setTimeout(() => window.location.reload(), 1200);
  });
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const action = button.dataset.action;
  if (action === 'post') {
    post(button);
    return;
  }
  if (action === 'rollback') {
    rollback(button);
    return;
  }
  if (action in verbs) {
    review(action, button.dataset.change, button);
    return;
  }
  const row = button.closest('tr[data-flag]');
  const cell = button.closest('td[data-env]');
  if (!row || !cell) return;
  const { flag: key } = row.dataset;
  const { env } = cell.dataset;
  if (action === 'kill') askKill(cell, key, env, button);
  else if (action === 'unkill') unkill(cell, key, env, button);
  else if (action === 'toggle') toggle(row, cell, key, env, button);
});

document.addEventListener('submit', (event) => {
  const form = event.target.closest('form[data-form]');
  if (!form) return;
  event.preventDefault();
  const button = form.querySelector('button[type=submit]');
  if (form.dataset.form === 'patch') patchForm(form, button);
  else if (form.dataset.form === 'rollback') rollbackDiff(form, button);
});
