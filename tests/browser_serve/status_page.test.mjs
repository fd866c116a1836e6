// Browser test of `publisher serve`'s status page: Debian's chromium, headless, driven by
// playwright-core, against a running service (started by tests/tests/serve/serve_page.rs).
//
//   SERVE_URL     required: the service, e.g. http://127.0.0.1:8080
//   READ_TOKEN    required: a token with read on ENV (signs in through the page's form)
//   KILL_TOKEN    required: a token with kill on ENV (signs in too, and kills KILL_FLAG through
//                 the API from its page: session cookie plus the page's CSRF token)
//   LATER         required: an RFC 3339 instant 60 days after the telemetry batch (`?now=`)
//   WORKER_URL    required: ENV's edge, a worker purged by every publish
//   DEAD_URL      required: ENV's other configured edge, a closed port
//
// The deployment it expects (set up by serve_page.rs): prod pushed by `admin`, staging too
// (the read token may not read it), checkout-v2's rollout ticked 1 -> 2 and back to 1
// (reverting), a drift check by the reader, an expired flag `old-promo` in the checkout, beta-banner evaluated 5 on + 3 off.
//   ENV           optional: the environment (default prod)
//   KILL_FLAG     optional: default beta-banner
//   CHROMIUM_PATH optional: default /usr/bin/chromium
//
// Run: node --test tests/browser_serve/

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const env = process.env;
const SERVE_URL = env.SERVE_URL;
const ENV = env.ENV || 'prod';
const KILL_FLAG = env.KILL_FLAG || 'beta-banner';

// Signs `page` in through the form with `token`: a session cookie, never the token itself.
// Screenshots of the page (sign-in form, signed in) land here for a reviewer to look at.
const ARTIFACTS_DIR = resolve(env.ARTIFACTS_DIR || join('target', 'artifacts'));

async function signIn(page, token) {
  await page.goto(SERVE_URL + '/');
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  const cookies = await page.context().cookies(SERVE_URL);
  const session = cookies.find((c) => c.name === 'flags_session');
  assert.ok(session, `a session cookie: ${JSON.stringify(cookies)}`);
  assert.ok(session.httpOnly && session.sameSite === 'Strict', JSON.stringify(session));
  assert.ok(!cookies.some((c) => c.value.includes(token)), 'the token is in no cookie');
}

// POSTs `path` from the page's own origin with `headers`, as a script of the page would.
function postFromPage(page, path, headers) {
  return page.evaluate(async ({ path, headers }) => {
    const reply = await fetch(path, { method: 'POST', headers });
    return { status: reply.status, text: await reply.text() };
  }, { path, headers });
}

describe('status page', () => {
  let browser;
  let page;
  before(async () => {
    assert.ok(
      SERVE_URL && env.READ_TOKEN && env.KILL_TOKEN && env.LATER && env.WORKER_URL && env.DEAD_URL,
      'SERVE_URL, READ_TOKEN, KILL_TOKEN, LATER, WORKER_URL, DEAD_URL',
    );
    browser = await chromium.launch({ executablePath: env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
  });
  after(async () => {
    await browser?.close();
  });

  it('signs in with a token and shows the deployed state, then the state after a kill', async () => {
    await page.goto(SERVE_URL + '/');
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'status-page-sign-in.png') });
    await signIn(page, env.READ_TOKEN);
    assert.equal(await page.textContent('#whoami'), 'reader');
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'status-page.png'), fullPage: true });
    assert.equal(await page.locator('#env-staging').count(), 0, 'staging is not the reader\'s');
    const section = page.locator(`#env-${ENV}`);
    const before = Number(await section.locator('.version').textContent());
    assert.ok(before >= 1, `a version is shown: ${await section.textContent()}`);
    assert.equal(await section.locator('.killed').count(), 0, 'nothing killed yet');

    // The edges: the worker serves the version shown, in sync; the closed port is unreachable
    // (and did not stall the page).
    const worker = section.locator(`tr.edge[data-url="${env.WORKER_URL}"]`);
    assert.equal(await worker.locator('.state').textContent(), 'in sync');
    assert.equal(Number(await worker.locator('.edge-version').textContent()), before);
    assert.match(await worker.locator('.hash code').textContent(), /^[0-9a-f]{12}$/);
    const hashBefore = await worker.locator('.hash').getAttribute('title');
    const api = await (await fetch(`${SERVE_URL}/api/v1/environments/${ENV}`, {
      headers: { Authorization: `Bearer ${env.READ_TOKEN}` },
    })).json();
    assert.equal(hashBefore, api.content_hash, 'the content hash the store serves');
    const dead = section.locator(`tr.edge[data-url="${env.DEAD_URL}"]`);
    assert.match(await dead.locator('.state').textContent(), /^unreachable: connection failed$/);
    assert.equal(await dead.locator('.edge-version').textContent(), '-');
    assert.equal(await section.locator('.fleet').textContent(), '1 of 2 in sync, 0 converging, 0 drifted, 1 unreachable');

    // The last drift check, run by the reader through the API: the checkout is what was
    // pushed (rollout stages advanced by ticks are not drift).
    assert.match(await section.locator('.drift').textContent(), /^last drift check by reader: in sync \d+ s ago$/);

    // The version's age: published seconds ago, the instant in the title.
    const age = section.locator('.stable time.age');
    assert.match(await age.textContent(), /^\d+ s ago$|^1 min ago$/);
    const published = Date.parse(await age.getAttribute('title'));
    assert.ok(Math.abs(Date.now() - published) < 120_000, await age.getAttribute('title'));

    // The rollout: back at stage 1 of 4 (1%), reverting after the failed check.
    const rollout = section.locator('tr.rollout[data-flag="checkout-v2"]');
    assert.equal(await rollout.locator('.stage').textContent(), '1 of 4');
    assert.equal(await rollout.locator('.live').textContent(), '1%');
    assert.match(await rollout.locator('.status').textContent(), /^reverting: health check/);
    // Its chart: one point per recorded transition (push: 1%, tick: 5%, tick back: 1%), the
    // last a halt, the line ending at the current share.
    const chart = rollout.locator('svg.rollout-chart');
    const points = chart.locator('circle.point');
    assert.equal(await points.count(), 3);
    const ys = await points.evaluateAll((cs) => cs.map((c) => Number(c.getAttribute('cy'))));
    assert.ok(ys[1] < ys[0] && ys[2] === ys[0], `up to 5% and back to 1%: ${ys}`);
    assert.equal(await chart.locator('circle.halt').count(), 1);
    assert.match(await chart.locator('circle.halt title').textContent(), /stage 1 \(reverting\)/);
    assert.equal(await chart.locator('text.current').textContent(), '1%');
    assert.equal(await chart.locator('g.guide').count(), 4, 'one guide per stage');
    assert.equal(await chart.locator('polyline').count(), 1);

    // Lints from the checkout: the expired flag.
    const lint = section.locator('tr.lint[data-flag="old-promo"]');
    assert.match(await lint.textContent(), /expired on 2020-01-01/);
    assert.equal(await section.locator('tr.lint.not-evaluated').count(), 0, 'evaluated just now');

    // Recent changes, newest first: the ticks by cron, the pushes by the admin token.
    const whos = await section.locator('tr.audit-entry .who').allTextContents();
    assert.deepEqual(whos, ['cron', 'cron', 'admin']);

    // Evaluations per variant: beta-banner's two variants, 8 in all.
    const evaluations = section.locator('figure.evaluations-flag[data-flag="beta-banner"]');
    assert.match(await evaluations.locator('figcaption').textContent(), /8 evaluations \(off, on\)/);
    assert.equal(await evaluations.locator('g.series').count(), 2);
    assert.deepEqual(await evaluations.locator('text.current').allTextContents(), ['3', '5']);

    // The kill, from the oncall token's own page: its session cookie alone is refused; with
    // the CSRF token the page embeds it goes through.
    const oncall = await browser.newPage();
    await signIn(oncall, env.KILL_TOKEN);
    const csrf = await oncall.getAttribute('meta[name=csrf-token]', 'content');
    assert.match(csrf, /^[A-Za-z0-9_-]{43}$/);
    const killPath = `/api/v1/environments/${ENV}/flags/${KILL_FLAG}/kill`;
    const bare = await postFromPage(oncall, killPath, {});
    assert.equal(bare.status, 403, bare.text);
    assert.match(JSON.parse(bare.text).detail, /X-CSRF-Token/);
    const reply = await postFromPage(oncall, killPath, { 'X-CSRF-Token': csrf });
    assert.equal(reply.status, 200, reply.text);
    const killed = JSON.parse(reply.text);
    await oncall.close();

    await page.reload();
    const now = Number(await section.locator('.version').textContent());
    assert.equal(now, killed.version, 'the page shows the version the kill published');
    assert.equal(now, before + 1);
    assert.match(await section.locator('.killed').textContent(), new RegExp(KILL_FLAG));
    assert.match(await section.textContent(), /kill by oncall/);
    assert.equal(await section.locator('tr.audit-entry .who').first().textContent(), 'oncall');
    assert.equal(await section.locator('tr.audit-entry .action').first().textContent(), 'kill');
    // The kill purged the worker: it serves the new version (it reloads on the purge; allow a
    // few reloads for it), with another content hash.
    for (let i = 0; i < 20 && Number(await worker.locator('.edge-version').textContent()) !== now; i++) {
      await new Promise((r) => setTimeout(r, 250));
      await page.reload();
    }
    assert.equal(Number(await worker.locator('.edge-version').textContent()), now);
    assert.equal(await worker.locator('.state').textContent(), 'in sync');
    assert.notEqual(await worker.locator('.hash').getAttribute('title'), hashBefore);
    // The kill carries the rollout's state: still three transitions.
    assert.equal(await section.locator('svg.rollout-chart circle.point').count(), 3);

    // 60 days on, beta-banner has not been evaluated for 60 days.
    await page.goto(`${SERVE_URL}/?now=${encodeURIComponent(env.LATER)}`);
    const stale = section.locator('tr.lint.not-evaluated[data-flag="beta-banner"]');
    assert.match(await stale.textContent(), /not evaluated in 60 days/);
    assert.match(await section.locator('.stable time.age').textContent(), /^60 d ago$|^59 d 23 h ago$/);

    // Signing out ends the session: the form again, and the old cookie reads nothing.
    const [old] = (await page.context().cookies(SERVE_URL)).filter((c) => c.name === 'flags_session');
    await Promise.all([page.waitForNavigation(), page.click('form.signout button[type=submit]')]);
    assert.equal(await page.locator('input[name=token]').count(), 1);
    assert.equal((await page.context().cookies(SERVE_URL)).filter((c) => c.name === 'flags_session').length, 0);
    const signedOut = await fetch(`${SERVE_URL}/api/v1/environments/${ENV}`, {
      headers: { Cookie: `flags_session=${old.value}` },
    });
    assert.equal(signedOut.status, 401);
  });
});
