// Drives the Projector web console in headless Chromium, as a person would, for the
// end-to-end test.
//
//   node tests/console/drive.mjs <base-url> <projection-name> <screenshot.png> [token] [sql]
//
// It opens <base-url>/, waits until the projections table lists <projection-name> with a
// numeric lag, clicks Pause and waits for the state `paused`, clicks Resume and waits for the
// state to leave `paused`, runs <sql> (default `SELECT 1 AS one`) in the SQL box and waits for
// at least one result row (and, when the answer read the projection, for the "read at" line
// to show its position), opens the projection's dead letters and waits for the panel, then
// takes a full-page screenshot. On success it prints one JSON line summarising what it saw
// and exits 0. On a failure, or after 60 s in all, it prints the reason to stderr, saves a
// screenshot to <screenshot>.failed.png if it can, and exits 1.
//
// Token: when given, it is written to sessionStorage under `projector-token` by an init
// script that runs before the page's own scripts, which is where the page keeps the token it
// asks for after a 401. A bearer token cannot contain whitespace, so a 4th argument that does
// is taken as the SQL (`drive.mjs URL NAME PNG "SELECT ..."`); pass "" as the token to give
// SQL without a token.
//
// Chromium: $CHROMIUM or /usr/bin/chromium (Debian's package; tests/console/setup.sh installs
// it). Playwright's launch() gives it a fresh temporary profile and removes it on close.
// Any confirm() the page asks is accepted.

import { chromium } from 'playwright-core';

const OVERALL_MS = 60_000;
const STEP_MS = 20_000;   // one step's wait, so a stuck step is named before the overall limit
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const argv = process.argv.slice(2);
if (argv.length < 3) {
  console.error('usage: node drive.mjs <base-url> <projection-name> <screenshot.png> [token] [sql]');
  process.exit(2);
}
const [baseArg, name, shot] = argv;
let token = argv[3] || '';
let sql = argv[4] || 'SELECT 1 AS one';
if (/\s/.test(token) && argv.length === 4) { sql = token; token = ''; }
const base = baseArg.replace(/\/+$/, '');

let step = 'starting';
let browser = null;
let page = null;
const pageErrors = [];

// CSS attribute selector for a row, with the name quoted as a CSS string.
const rowSel = `tr[data-projection=${JSON.stringify(name)}]`;

async function run() {
  step = 'launching chromium';
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ARGS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('dialog', (d) => d.accept());
  page.on('pageerror', (e) => pageErrors.push(String(e && e.message || e)));
  if (token) {
    await page.addInitScript((t) => sessionStorage.setItem('projector-token', t), token);
  }

  step = `opening ${base}/`;
  const res = await page.goto(base + '/', { waitUntil: 'load' });
  if (!res || !res.ok()) throw new Error(`GET / answered ${res ? res.status() : 'nothing'}`);
  const standards = await page.evaluate(() => document.compatMode === 'CSS1Compat');

  step = `waiting for ${name} to be listed with a numeric lag`;
  const listed = await page.waitForFunction(({ sel }) => {
    const auth = document.querySelector('#auth');
    if (auth && !auth.hidden) return 'auth';
    const td = document.querySelector(sel + ' td[data-col="lag_events"]');
    return td && /\d/.test(td.textContent) ? 'ok' : false;
  }, { sel: rowSel }).then((h) => h.jsonValue());
  if (listed === 'auth') throw new Error('the page asks for an API token' + (token ? ' (the given one was refused)' : ''));
  const row = page.locator(rowSel);
  const lag = await row.locator('td[data-col="lag_events"]').textContent();
  const stateOf = () => row.locator('td[data-col="state"] .state').textContent();

  if ((await stateOf()) === 'paused') {
    step = `resuming ${name}, which was paused before the test`;
    await row.locator('button[data-action="resume"]').click();
    await waitState(false);
  }

  step = `pausing ${name}`;
  await row.locator('button[data-action="pause"]').click();
  await waitState(true);
  const pausedStatus = await page.locator('#status').textContent();

  step = `resuming ${name}`;
  await row.locator('button[data-action="resume"]').click();
  await waitState(false);
  const stateAfter = await stateOf();

  step = `running the SQL ${JSON.stringify(sql)}`;
  await page.locator('#sql').fill(sql);
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/query') && r.request().method() === 'POST');
  await page.locator('#run-sql').click();
  const answered = await answer;
  await page.waitForSelector('#results[data-state="done"], #results[data-state="error"]', { state: 'attached' });
  if ((await page.getAttribute('#results', 'data-state')) === 'error') {
    throw new Error('the query failed: ' + await page.locator('#sql-error').textContent());
  }
  const body = await answered.json();
  const rows = await page.locator('#results tbody tr').count();
  if (rows < 1) throw new Error('the query showed no rows');
  const columns = await page.locator('#results thead th').allTextContents();
  const served = body.positions || {};
  const mentions = new RegExp(`\\b${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.`).test(sql);
  if (mentions && !(name in served)) {
    throw new Error(`the query read ${name} but the answer's positions lack it: ${JSON.stringify(served)}`);
  }
  if (name in served) {
    step = `waiting for the "read at" line to show ${name} @ ${served[name]}`;
    await page.waitForSelector(`#positions span[data-projection=${JSON.stringify(name)}][data-position="${served[name]}"]`, { state: 'attached' });
  }
  const positions = await page.$$eval('#positions span[data-projection]', (spans) =>
    Object.fromEntries(spans.map((s) => [s.dataset.projection, s.dataset.position === '' ? null : Number(s.dataset.position)])));
  const positionsLine = await page.locator('#positions').textContent();

  step = `opening the dead letters of ${name}`;
  await row.locator('button[data-action="dead-letters"]').click();
  const panelSel = `#dead-letters[data-projection=${JSON.stringify(name)}]`;
  await page.waitForSelector(`${panelSel}[data-state="loaded"], ${panelSel}[data-state="error"]`, { state: 'attached' });
  if ((await page.getAttribute('#dead-letters', 'data-state')) === 'error') {
    throw new Error('the dead letters did not load: ' + await page.locator('#dl-error').textContent());
  }
  const deadLetters = await page.locator('#dl-table tbody tr').count();
  const none = await page.locator('#dl-none').isVisible();
  const total = await page.locator('#dl-total').textContent();

  step = 'taking the screenshot';
  await page.screenshot({ path: shot, fullPage: true });
  if (pageErrors.length) throw new Error('the page threw: ' + pageErrors.join(' | '));

  return {
    listed: true, lag, paused: true, paused_status: pausedStatus, resumed: true,
    state_after_resume: stateAfter, sql, rows, columns, positions, positions_line: positionsLine,
    dead_letters_panel: true, dead_letters_shown: deadLetters, no_dead_letters: none,
    dead_letters_total: total, standards_mode: standards, connection: await page.locator('#conn').textContent(),
    screenshot: shot,
  };
}

// Waits until the row's state is (or is no longer) `paused`, as the server reports it.
async function waitState(paused) {
  await page.waitForFunction(({ sel, paused }) => {
    const s = document.querySelector(sel + ' td[data-col="state"] .state');
    return s && (s.textContent === 'paused') === paused;
  }, { sel: rowSel, paused });
}

async function fail(err) {
  console.error(`drive.mjs: failed while ${step}: ${err && err.message || err}`);
  if (page) {
    try {
      const seen = await page.evaluate(() => ({
        connection: document.querySelector('#conn')?.textContent,
        status: document.querySelector('#status')?.textContent,
        listed: [...document.querySelectorAll('#projections tbody tr')].map((tr) => tr.dataset.projection),
      }));
      console.error('drive.mjs: the page showed ' + JSON.stringify(seen));
    } catch (e) {
      console.error('drive.mjs: could not read the page: ' + e.message);
    }
    try {
      await page.screenshot({ path: shot + '.failed.png', fullPage: true, timeout: 5000 });
      console.error(`drive.mjs: screenshot saved to ${shot}.failed.png`);
    } catch (e) {
      console.error('drive.mjs: no failure screenshot: ' + e.message);
    }
  }
  if (pageErrors.length) console.error('drive.mjs: page errors: ' + pageErrors.join(' | '));
}

let timer;
const overall = new Promise((_, reject) => {
  timer = setTimeout(() => reject(new Error(`overall timeout of ${OVERALL_MS / 1000} s`)), OVERALL_MS);
});
let code = 0;
try {
  const summary = await Promise.race([run(), overall]);
  console.log(JSON.stringify(summary));
} catch (err) {
  await fail(err);
  code = 1;
}
clearTimeout(timer);
if (browser) await browser.close().catch(() => {});
process.exit(code);
