// Browser test of the console (`/flags`, `/flags/{key}`, `/changes`, `/changes/{id}`):
// Debian's chromium, headless, driven by playwright-core, against the running service started
// by tests/tests/serve/serve_page.rs (after status_page.test.mjs: a real SeaweedFS store, the
// worker in workerd as prod's edge, the checkout a clone of a bare remote, dev needing one
// approval per change).
//
//   SERVE_URL    the service            READ_TOKEN   reads prod only
//   ALICE_TOKEN  read, edit, kill, publish everywhere
//   BOB_TOKEN    read, approve everywhere
//   WORKER_URL   prod's edge (purged by every publish)
//   REMOTE       the bare remote's path
//   CHROMIUM_PATH optional: default /usr/bin/chromium
//
// Journeys: alice kills a flag from the flags page with a reason (confirm dialog), sees the
// badge and the worker's answer change, and undoes it; the kill latency (click on the
// dialog's confirm to the worker's OFREP answer changing) over 20 kills and 20 unkills, into
// target/artifacts/console-kill-latency.json; alice turns a flag off in dev (a change
// request), bob approves it from his page, alice merges it and the remote's main holds her
// commit; a drift check and a rollback from the environment page, its diff shown first; the
// reader sees no mutating control and its forged POSTs get 403. Every page:
// a screenshot at 1280x800 in target/artifacts/console/, axe-core with no serious or
// critical violation, and no Content-Security-Policy violation in the console.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const env = process.env;
const SERVE_URL = env.SERVE_URL;
const ARTIFACTS = resolve(env.ARTIFACTS_DIR || join('target', 'artifacts'));
const SHOTS = join(ARTIFACTS, 'console');
const KILL_FLAG = 'live-updates';
const TOGGLE_FLAG = 'new-chart';
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

async function signIn(context, token) {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.problems = problems;
  await page.goto(SERVE_URL + '/');
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  return page;
}

// axe-core in the page (evaluated through DevTools, so the page's CSP is not loosened):
// no serious or critical violation.
async function accessible(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `${what}: axe violations`,
  );
}

async function shoot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

// The worker's OFREP answer for `key` (value and reason), as a client sees it.
async function edgeAnswer(key) {
  const reply = await fetch(`${env.WORKER_URL}/ofrep/v1/evaluate/flags/${key}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ context: { targetingKey: 'latency-user' } }),
  });
  const body = await reply.json();
  return `${JSON.stringify(body.value)} ${body.reason}`;
}

// Polls the worker until its answer for `key` differs from `from`; ms since `t0`.
async function edgeChange(key, from, t0, limitMs = 5000) {
  for (;;) {
    const now = await edgeAnswer(key);
    if (now !== from) return { answer: now, ms: performance.now() - t0 };
    if (performance.now() - t0 > limitMs) throw new Error(`the edge still answers ${from} after ${limitMs} ms`);
  }
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// Waits for the status line to report the action's outcome; it must match `expected`.
async function settled(page, expected) {
  await page.waitForFunction(() => !document.querySelector('#status.busy'));
  assert.match(await page.textContent('#status'), expected);
}

const row = (page, key) => page.locator(`tr.flag[data-flag="${key}"]`);
const cell = (page, key, e) => row(page, key).locator(`td.env[data-env="${e}"]`);

describe('console', () => {
  let browser;
  let alice;
  before(async () => {
    assert.ok(SERVE_URL && env.ALICE_TOKEN && env.BOB_TOKEN && env.READ_TOKEN && env.WORKER_URL && env.REMOTE);
    mkdirSync(SHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    alice = await signIn(context, env.ALICE_TOKEN);
  });
  after(async () => {
    await browser?.close();
  });

  it('kills a flag with a reason behind a confirmation, shows the badge, and undoes it', async () => {
    await alice.goto(`${SERVE_URL}/flags`);
    assert.equal(await alice.textContent('#whoami'), 'alice');
    await shoot(alice, 'flags');
    await accessible(alice, '/flags');
    const prod = cell(alice, KILL_FLAG, 'prod');
    assert.equal(await prod.locator('.badge.killed').count(), 0);
    const live = await edgeAnswer(KILL_FLAG);

    // Cancel kills nothing.
    await prod.locator('button[data-action=kill]').click();
    const dialog = alice.locator('#kill-dialog');
    assert.ok(await dialog.isVisible());
    assert.equal(await dialog.locator('.flag-name').textContent(), KILL_FLAG);
    await shoot(alice, 'flags-kill-dialog');
    await accessible(alice, 'kill dialog');
    await dialog.locator('button[value=cancel]').click();
    assert.ok(!(await dialog.isVisible()));
    assert.equal(await prod.locator('.badge.killed').count(), 0);

    // Confirm with a reason: killed at the edge, the badge shows, the audit has the reason.
    await prod.locator('button[data-action=kill]').click();
    await dialog.locator('textarea').fill('websocket storm, incident 42');
    const t0 = performance.now();
    await dialog.locator('#kill-confirm').click();
    const killed = await edgeChange(KILL_FLAG, live, t0);
    assert.match(killed.answer, /DISABLED/);
    await settled(alice, new RegExp(`${KILL_FLAG} killed in prod`));
    await prod.locator('.badge.killed').waitFor();
    const audit = await (await fetch(`${SERVE_URL}/api/v1/environments/prod/audit`, {
      headers: { Authorization: `Bearer ${env.READ_TOKEN}` },
    })).json();
    const last = JSON.stringify(audit.entries?.[0] ?? audit[0] ?? audit);
    assert.match(last, /websocket storm, incident 42/);
    assert.match(last, /alice/);
    await shoot(alice, 'flags-killed');

    // Undo.
    const t1 = performance.now();
    await alice.locator('#status button', { hasText: 'Undo' }).click();
    const back = await edgeChange(KILL_FLAG, killed.answer, t1);
    assert.equal(back.answer, live);
    await settled(alice, /live again in prod/);
    await prod.locator('button[data-action=kill]').waitFor();
    assert.equal(await prod.locator('.badge.killed').count(), 0);
  });

  it('measures kill and unkill from the click to the edge answer, 20 times each', async () => {
    const kills = [];
    const unkills = [];
    const apiKills = [];
    const prod = cell(alice, KILL_FLAG, 'prod');
    const dialog = alice.locator('#kill-dialog');
    const live = await edgeAnswer(KILL_FLAG);
    for (let i = 0; i < 20; i++) {
      await prod.locator('button[data-action=kill]').click();
      await dialog.locator('textarea').fill(`latency run ${i}`);
      const answered = alice.waitForResponse((r) => r.url().endsWith(`/${KILL_FLAG}/kill`));
      const t0 = performance.now();
      await dialog.locator('#kill-confirm').click();
      const killed = await edgeChange(KILL_FLAG, live, t0);
      kills.push(killed.ms);
      await answered;
      // The service's answer (publish and purge done) as the page got it.
      apiKills.push(await alice.evaluate(() => {
        const [entry] = performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/kill')).slice(-1);
        return entry.responseEnd - entry.startTime;
      }));
      await settled(alice, /killed in prod/);
      await prod.locator('button[data-action=unkill]').waitFor();
      const t1 = performance.now();
      await prod.locator('button[data-action=unkill]').click();
      unkills.push((await edgeChange(KILL_FLAG, killed.answer, t1)).ms);
      await settled(alice, /live again in prod/);
      await prod.locator('button[data-action=kill]').waitFor();
    }
    const stats = (xs) => {
      const s = [...xs].sort((a, b) => a - b);
      return { n: s.length, p50_ms: Math.round(percentile(s, 50)), p99_ms: Math.round(percentile(s, 99)), max_ms: Math.round(s.at(-1)) };
    };
    const report = {
      measured: 'click on the console\'s Kill confirm (or Unkill) to the worker in workerd answering differently over OFREP',
      kill: stats(kills),
      unkill: stats(unkills),
      kill_api_answer: stats(apiKills),
      samples_ms: { kill: kills.map(Math.round), unkill: unkills.map(Math.round) },
    };
    writeFileSync(join(ARTIFACTS, 'console-kill-latency.json'), JSON.stringify(report, null, 2) + '\n');
    console.log(`kill latency: ${JSON.stringify({ kill: report.kill, unkill: report.unkill, api: report.kill_api_answer })}`);
  });

  it('opens a change by toggling a flag; another user approves; the merge lands on the remote', async () => {
    await alice.goto(`${SERVE_URL}/flags?q=${TOGGLE_FLAG}`);
    const dev = cell(alice, TOGGLE_FLAG, 'dev');
    const toggle = dev.locator('button[data-action=toggle]');
    assert.equal(await toggle.textContent(), 'Turn off');
    await toggle.click();
    const review = alice.locator('#status a', { hasText: 'Review change' });
    await review.waitFor();
    const id = (await review.getAttribute('href')).split('/').pop();
    await review.click();
    await alice.waitForURL(`${SERVE_URL}/changes/${id}`);
    assert.match(await alice.textContent('h1'), new RegExp(`#${id} .*${TOGGLE_FLAG}`));
    assert.equal(await alice.textContent('#change-state'), 'open');
    assert.match(await alice.locator('pre.diff .add').allTextContents().then((l) => l.join('\n')), /enabled: false/);
    assert.match(await alice.locator('tr[data-env=dev]').textContent(), new RegExp(TOGGLE_FLAG));
    // The author may not approve, nor merge yet.
    assert.equal(await alice.locator('button[data-action=approve]').count(), 0);
    assert.equal(await alice.locator('button[data-action=merge]').count(), 0);
    await shoot(alice, 'change');
    await accessible(alice, '/changes/{id}');

    const bobContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const bob = await signIn(bobContext, env.BOB_TOKEN);
    await bob.goto(`${SERVE_URL}/changes`);
    await shoot(bob, 'changes');
    await accessible(bob, '/changes');
    await bob.click(`a[href="/changes/${id}"]`);
    await bob.click('button[data-action=approve]');
    await bob.waitForFunction(() => document.querySelector('#change-state')?.textContent === 'approved');
    assert.equal(await bob.locator('b.approver').first().textContent(), 'bob');
    assert.deepEqual(bob.problems, []);
    await bobContext.close();

    await alice.reload();
    assert.equal(await alice.textContent('#change-state'), 'approved');
    await alice.click('button[data-action=merge]');
    await alice.waitForFunction(() => document.querySelector('#change-state')?.textContent === 'merged');
    await shoot(alice, 'change-merged');
    const author = execFileSync('git', ['--git-dir', env.REMOTE, 'log', '-1', '--format=%an', 'main']).toString().trim();
    assert.equal(author, 'alice');
    const shown = execFileSync('git', ['--git-dir', env.REMOTE, 'show', '--format=', 'main']).toString();
    const changed = shown.split('\n').filter((l) => /^[-+][^-+]/.test(l));
    assert.deepEqual(changed.map((l) => l.trim().replace(/\s+/g, ' ')), ['- enabled: true', '+ enabled: false']);
  });

  it('shows a flag page and the environments page', async () => {
    await alice.goto(`${SERVE_URL}/flags/${TOGGLE_FLAG}`);
    assert.match(await alice.textContent('h1'), new RegExp(TOGGLE_FLAG));
    assert.ok((await alice.locator('table.history tbody tr').count()) >= 2, 'the merge is in its history');
    await shoot(alice, 'flag');
    await accessible(alice, '/flags/{key}');
    await alice.goto(`${SERVE_URL}/`);
    await shoot(alice, 'environments');
    assert.deepEqual(alice.problems, [], 'no script error or CSP violation on alice\'s pages');
  });

  it('checks drift, and rolls prod back after showing the diff', async () => {
    await alice.goto(`${SERVE_URL}/environments/prod`);
    await shoot(alice, 'environment');
    await accessible(alice, '/environments/{env}');
    const before = Number(await alice.textContent('#env-prod .stable .version'));
    let loaded = alice.waitForEvent('load');
    await alice.click('button[data-path$="/drift"]');
    await settled(alice, /^Drift check: /);
    await loaded;
    assert.match(await alice.textContent('#env-prod .drift'), /last drift check by alice/);

    // The newest earlier version is the last kill of the latency runs: its diff says so.
    const to = Number(await alice.locator('#rollback-to option').first().getAttribute('value'));
    assert.equal(to, before - 1);
    await alice.click('form.rollback button[type=submit]');
    await alice.locator('#rollback-diff').waitFor();
    assert.match(await alice.textContent('#rollback-diff ul'), new RegExp(KILL_FLAG));
    await shoot(alice, 'environment-rollback-diff');
    await accessible(alice, 'rollback diff');
    const live = await edgeAnswer(KILL_FLAG);
    loaded = alice.waitForEvent('load');
    await alice.click('#rollback-diff button[data-action=rollback]');
    await settled(alice, /Rolled back/);
    await loaded;
    assert.equal(Number(await alice.textContent('#env-prod .stable .version')), before + 1);
    assert.match(await alice.textContent('#env-prod .audit-entry .action'), /rollback/);
    // The edge serves the rolled-back flags: the flag killed again.
    assert.match((await edgeChange(KILL_FLAG, live, performance.now())).answer, /DISABLED/);
    assert.deepEqual(alice.problems, []);
  });

  it('shows a reader no mutating control and refuses the POSTs forged from its session', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const reader = await signIn(context, env.READ_TOKEN);
    for (const path of ['/flags', `/flags/${KILL_FLAG}`, '/changes?state=all', '/changes/1']) {
      await reader.goto(SERVE_URL + path);
      assert.equal(await reader.locator('button[data-action]').count(), 0, path);
      assert.equal(await reader.locator('form[data-form]').count(), 0, path);
    }
    await reader.goto(`${SERVE_URL}/flags`);
    await shoot(reader, 'flags-read-only');
    const csrf = await reader.getAttribute('meta[name=csrf-token]', 'content');
    const kill = `/api/v1/environments/prod/flags/${TOGGLE_FLAG}/kill`;
    const auditTop = (await (await fetch(`${SERVE_URL}/api/v1/environments/prod/audit`, {
      headers: { Authorization: `Bearer ${env.READ_TOKEN}` },
    })).json()).entries[0].version;
    // From the page, with its CSRF token: no role.
    const noRole = await reader.evaluate(async ({ kill, csrf }) => (await fetch(kill, {
      method: 'POST', headers: { 'X-CSRF-Token': csrf },
    })).status, { kill, csrf });
    assert.equal(noRole, 403);
    // alice's session: without the CSRF token, and from another origin.
    const cookie = (await alice.context().cookies(SERVE_URL)).find((c) => c.name === 'flags_session');
    const aliceCsrf = await alice.getAttribute('meta[name=csrf-token]', 'content');
    const forged = async (headers) => (await fetch(SERVE_URL + kill, {
      method: 'POST', headers: { Cookie: `flags_session=${cookie.value}`, ...headers },
    })).status;
    assert.equal(await forged({ Origin: SERVE_URL }), 403, 'no CSRF token');
    assert.equal(await forged({ Origin: 'https://evil.example', 'X-CSRF-Token': aliceCsrf }), 403, 'another origin');
    const audit = await (await fetch(`${SERVE_URL}/api/v1/environments/prod/audit`, {
      headers: { Authorization: `Bearer ${env.READ_TOKEN}` },
    })).json();
    assert.equal(audit.entries[0].version, auditTop, 'nothing was published by the forged requests');
    await context.close();
  });
});
