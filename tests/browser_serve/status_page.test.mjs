// Browser test of `publisher serve`'s status page: Debian's chromium, headless, driven by
// playwright-core, against a running service (started by tests/tests/serve_page.rs).
//
//   SERVE_URL     required: the service, e.g. http://127.0.0.1:8080
//   READ_TOKEN    required: a token with read on ENV (signs in through the page's form)
//   KILL_TOKEN    required: a token with kill on ENV (the test kills KILL_FLAG through the API)
//   ENV           optional: the environment (default prod)
//   KILL_FLAG     optional: default beta-banner
//   CHROMIUM_PATH optional: default /usr/bin/chromium
//
// Run: node --test tests/browser_serve/

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';

const env = process.env;
const SERVE_URL = env.SERVE_URL;
const ENV = env.ENV || 'prod';
const KILL_FLAG = env.KILL_FLAG || 'beta-banner';

describe('status page', () => {
  let browser;
  let page;
  before(async () => {
    assert.ok(SERVE_URL && env.READ_TOKEN && env.KILL_TOKEN, 'SERVE_URL, READ_TOKEN, KILL_TOKEN');
    browser = await chromium.launch({ executablePath: env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true });
    page = await browser.newPage();
  });
  after(async () => {
    await browser?.close();
  });

  it('signs in with a token and shows the deployed state, then the state after a kill', async () => {
    await page.goto(SERVE_URL + '/');
    await page.fill('input[name=token]', env.READ_TOKEN);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.equal(await page.textContent('#whoami'), 'reader');
    const section = page.locator(`#env-${ENV}`);
    const before = Number(await section.locator('.version').textContent());
    assert.ok(before >= 1, `a version is shown: ${await section.textContent()}`);
    assert.equal(await section.locator('.killed').count(), 0, 'nothing killed yet');

    const reply = await fetch(`${SERVE_URL}/api/v1/environments/${ENV}/flags/${KILL_FLAG}/kill`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${env.KILL_TOKEN}` },
    });
    const text = await reply.text();
    assert.equal(reply.status, 200, text);
    const killed = JSON.parse(text);

    await page.reload();
    const now = Number(await section.locator('.version').textContent());
    assert.equal(now, killed.version, 'the page shows the version the kill published');
    assert.equal(now, before + 1);
    assert.match(await section.locator('.killed').textContent(), new RegExp(KILL_FLAG));
    assert.match(await section.textContent(), /kill by oncall/);
  });
});
