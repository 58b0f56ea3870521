// chat.test.mjs: chatmi's browser client in a real browser (Debian's
// Chromium, driven by playwright-core) against real processes: Redis, two
// gateways and a worker from the build tree.
//
// alice's browser talks to gateway 0 and bob's to gateway 1, so that when
// gateway 0 is killed bob can go on writing while alice is cut off; then
// gateway 0 comes back on the same port and alice's page must show every
// message she missed, and deliver the one she typed while disconnected.
//
// Every wait is a condition awaited with a deadline (page.waitForFunction,
// a log line, a process exit): no fixed sleeps. The screenshots land in
// $CHATMI_BROWSER_ARTIFACTS (default: the current directory).
//
// Run by chat.sh (make check), which checks that Chromium and the node
// modules are there. Environment: see stack.mjs, plus CHATMI_CHROMIUM,
// CHATMI_BROWSER_MODULES, CHATMI_BROWSER_TIMEOUT_SCALE, CHATMI_BROWSER_KEEP=1.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { Stack } from './stack.mjs';

const modules = process.env.CHATMI_BROWSER_MODULES;
const { chromium } = createRequire(path.join(modules, 'noop.js'))('playwright-core');
const scale = Number(process.env.CHATMI_BROWSER_TIMEOUT_SCALE) || 1;
const WAIT = Math.round(10000 * scale);       // one delivery, one page state
const RECOVER = Math.round(45000 * scale);    // a reconnect after backoff
const artifacts = process.env.CHATMI_BROWSER_ARTIFACTS || process.cwd();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatmi-browser.'));
const stack = new Stack(dir, scale);

const users = {}; // name -> { ctx, page, dialogs, errors, profile }
let failed = false;

// Steps depend on each other: once one failed, the rest are skipped.
function step(name, fn) {
  test(name, { timeout: Math.round(180000 * scale) }, async (t) => {
    if (failed) { t.skip('an earlier step failed'); return; }
    try {
      await fn();
    } catch (e) {
      failed = true;
      for (const [who, u] of Object.entries(users)) {
        await u.page.screenshot({ path: path.join(artifacts, `failed-${who}.png`) }).catch(() => {});
      }
      console.error(stack.tail());
      throw e;
    }
  });
}

// A fresh browser with a fresh profile for each user: two people on two machines.
async function openBrowser(name, port) {
  const profile = fs.mkdtempSync(path.join(dir, `profile-${name}.`));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHATMI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
    viewport: { width: 1180, height: 720 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(WAIT);
  const u = { ctx, page, dialogs: [], errors: [], profile, base: `http://127.0.0.1:${port}/` };
  page.on('dialog', (d) => { u.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => u.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') u.errors.push(`console: ${m.text()}`); });
  users[name] = u;
  return u;
}

// ---- page helpers --------------------------------------------------------------

// The connection state the client is in (the pill's data-conn). The pill
// itself says "offline" instead of "reconnecting" when the browser has no
// network at all (navigator.onLine), as in a network namespace with only
// loopback; the test runs there too.
const waitState = (page, state, ms = WAIT) =>
  page.waitForFunction((s) => document.getElementById('state').dataset.conn === s, state, { timeout: ms });
const stateLabel = (page) => page.evaluate(() => ({
  text: document.getElementById('state').textContent, online: navigator.onLine,
}));

// The texts of the stored messages shown (rows with a seq), in order.
const shownTexts = (page) =>
  page.$$eval('#messages .msg[data-seq] .text', (els) => els.map((e) => e.textContent));
const shownSeqs = (page) =>
  page.$$eval('#messages .msg[data-seq]', (els) => els.map((e) => Number(e.dataset.seq)));

// Waits until every text is shown as a stored message of the open conversation.
async function waitTexts(page, texts, ms = WAIT) {
  try {
    await page.waitForFunction((want) => {
      const have = new Set([...document.querySelectorAll('#messages .msg[data-seq] .text')].map((e) => e.textContent));
      return want.every((t) => have.has(t));
    }, texts, { timeout: ms });
  } catch (e) {
    throw new Error(`${e.message}\nwanted ${JSON.stringify(texts)}\nshown ${JSON.stringify(await shownTexts(page))}`);
  }
}

async function signIn(page, name, base, shot) {
  await page.goto(base);
  await page.waitForSelector('#signin-form');
  if (shot) await page.screenshot({ path: path.join(artifacts, shot) });
  await page.fill('#in-user', name);
  await page.click('#signin-button');
  await waitState(page, 'connected');
  await page.waitForFunction((n) => document.getElementById('me-name').textContent === n, name);
}

async function joinRoom(page, room) {
  await page.fill('#in-room', room);
  await page.press('#in-room', 'Enter');
  await page.waitForFunction((r) => document.getElementById('conv-title').textContent === `# ${r}`, room);
}

async function openConv(page, conv) {
  await page.click(`button[data-conv="${conv}"]`);
  await page.waitForFunction((c) => document.querySelector(`button[data-conv="${c}"]`)?.classList.contains('active'), conv);
}

// Types and sends; waits until the server acked it (the row has its seq).
async function say(page, text) {
  await page.fill('#in-text', text);
  await page.press('#in-text', 'Enter');
  await waitTexts(page, [text]);
}

const badge = (page, conv) =>
  page.$eval(`button[data-conv="${conv}"]`, (b) => b.querySelector('.badge')?.textContent || '');

// ---- the stack -------------------------------------------------------------------------

before(async () => {
  await stack.startRedis();
  await stack.startWorker();
  await stack.startGateway(0);
  await stack.startGateway(1);
});

// Cleanup whatever happened (the last step does it, and checks it, when all went well).
after(async () => {
  for (const u of Object.values(users)) await u.ctx.close().catch(() => {});
  await stack.stopAll();
  if (process.env.CHATMI_BROWSER_KEEP === '1' || failed) console.error(`# logs kept in ${dir}`);
  else fs.rmSync(dir, { recursive: true, force: true });
});

// ---- the steps -----------------------------------------------------------------------------

const GENERAL = 'room:general';
const DM = 'dm:alice:bob';
const XSS = '<img src=x onerror=alert(1)>';
const room1 = ['Good morning everyone! Standup moves to 10:30 today.', 'Morning alice! Works for me. Coffee first?'];
const dm1 = ['Hey bob, do you have the slides for the review?', 'Yes, sending them over in a minute.'];

step('the page is served with its files and a strict CSP', async () => {
  const base = `http://127.0.0.1:${stack.gateways[0].port}/`;
  for (const [file, type] of [['', 'text/html'], ['app.js', 'text/javascript'], ['style.css', 'text/css'], ['icon.svg', 'image/svg+xml']]) {
    const r = await fetch(base + file);
    assert.equal(r.status, 200, `GET /${file}`);
    assert.ok(r.headers.get('content-type').startsWith(type), `GET /${file}: ${r.headers.get('content-type')}`);
    assert.match(r.headers.get('content-security-policy') || '', /script-src 'self'/);
  }
  assert.equal((await fetch(`${base}../etc/passwd`)).status, 404);
  assert.equal((await fetch(`${base}stack.mjs`)).status, 404);
});

step('alice and bob sign in, on two gateways', async () => {
  const a = await openBrowser('alice', stack.gateways[0].port);
  const b = await openBrowser('bob', stack.gateways[1].port);
  await signIn(a.page, 'alice', a.base, 'signin.png');
  await signIn(b.page, 'bob', b.base);
  assert.equal(await a.page.textContent('#state'), 'connected');
});

step('room messages: each sees the other\'s', async () => {
  const a = users.alice.page, b = users.bob.page;
  await joinRoom(a, 'general');
  await joinRoom(b, 'general');
  await say(a, room1[0]);
  await waitTexts(b, [room1[0]]);
  await say(b, room1[1]);
  await waitTexts(a, room1);
  assert.deepEqual(await shownTexts(a), room1);
  assert.deepEqual(await shownTexts(b), room1);
  assert.deepEqual(await shownSeqs(b), [1, 2]);
});

step('direct messages: unread count, presence, replies', async () => {
  const a = users.alice.page, b = users.bob.page;
  await a.fill('#in-dm', 'bob');
  await a.press('#in-dm', 'Enter');
  await a.waitForFunction(() => document.getElementById('conv-title').textContent === 'bob');
  // bob has a session: his presence dot turns on for alice
  await a.waitForSelector(`button[data-conv="${DM}"] .dot.on`);
  await say(a, dm1[0]);
  // bob is reading #general: the DM shows up with one unread message
  await b.waitForFunction((c) => document.querySelector(`button[data-conv="${c}"] .badge`)?.textContent === '1', DM);
  await openConv(b, DM);
  await waitTexts(b, [dm1[0]]);
  assert.equal(await badge(b, DM), '', 'opening the conversation reads it');
  await say(b, dm1[1]);
  await waitTexts(a, dm1);
  assert.deepEqual(await shownTexts(a), dm1);
});

step('message text is shown as text, never run as HTML', async () => {
  const a = users.alice.page, b = users.bob.page;
  await openConv(a, GENERAL);
  await openConv(b, GENERAL);
  await say(b, XSS);
  await waitTexts(a, [XSS]);
  for (const [who, page] of [['alice', a], ['bob', b]]) {
    const imgs = await page.$$eval('img', (els) => els.map((e) => e.getAttribute('src')));
    assert.ok(imgs.every((src) => src === 'icon.svg'), `${who}: an img element was created: ${JSON.stringify(imgs)}`);
    assert.equal(await page.$$eval('[onerror]', (els) => els.length), 0, `${who}: an onerror attribute exists`);
    assert.deepEqual(users[who].dialogs, [], `${who}: a dialog fired`);
  }
});

step('a reload recovers the history', async () => {
  const a = users.alice.page;
  await a.reload();
  await waitState(a, 'connected');
  // the tab's session and open conversation come back; history comes from the server
  await a.waitForFunction(() => document.getElementById('conv-title').textContent === '# general');
  await waitTexts(a, [...room1, XSS]);
  assert.deepEqual(await shownTexts(a), [...room1, XSS]);
  assert.deepEqual(await shownSeqs(a), [1, 2, 3]);
  await openConv(a, DM);
  await waitTexts(a, dm1);
  assert.deepEqual(await shownTexts(a), dm1);
  await openConv(a, GENERAL);
  await waitTexts(a, [XSS]);
  assert.deepEqual(users.alice.dialogs, []);
});

const missedRoom = ['Slides are in the shared folder.', 'Review starts in 5 minutes, room B.', 'Anyone seen the projector remote?'];
const missedDm = ['alice, are you there?', 'Ping me when you are back online.'];
const typedOffline = 'Sorry, my connection dropped. On my way!';

step('gateway killed: "reconnecting", then every missed message is recovered', async () => {
  const a = users.alice.page, b = users.bob.page;
  await stack.killGateway(0);
  await waitState(a, 'reconnecting');
  const label = await stateLabel(a);
  assert.match(label.text, label.online ? /^reconnecting/ : /^offline$/, 'the pill says so');
  assert.equal(await a.isVisible('#banner'), true, 'the banner says the connection is lost');
  assert.equal(await b.textContent('#state'), 'connected', 'bob is on the other gateway');
  await a.screenshot({ path: path.join(artifacts, 'chat-reconnecting.png') });

  // While alice is cut off: bob writes in the room and to her directly.
  for (const t of missedRoom) await say(b, t);
  await openConv(b, DM);
  for (const t of missedDm) await say(b, t);
  await openConv(b, GENERAL);
  // alice types too: it waits, unacked, for the connection.
  await a.fill('#in-text', typedOffline);
  await a.press('#in-text', 'Enter');
  await a.waitForFunction((t) => [...document.querySelectorAll('#messages .msg.pending .text')].some((e) => e.textContent === t), typedOffline);
  assert.equal(await a.getAttribute('#state', 'data-conn'), 'reconnecting', 'still disconnected');

  await stack.startGateway(0, stack.gateways[0].port);
  await waitState(a, 'connected', RECOVER);
  await waitTexts(a, [...room1, XSS, ...missedRoom, typedOffline]);
  const seqs = await shownSeqs(a);
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7], 'every message once, in order, no gap');
  assert.deepEqual((await shownTexts(a)).slice(3, 6), missedRoom);
  assert.equal(await a.$$eval('#messages .msg.pending', (els) => els.length), 0, 'nothing left unsent');
  // bob gets alice's message exactly once
  await waitTexts(b, [typedOffline]);
  assert.equal((await shownTexts(b)).filter((t) => t === typedOffline).length, 1);
  // the DM: two unread, then both shown
  await a.waitForFunction((c) => document.querySelector(`button[data-conv="${c}"] .badge`)?.textContent === '2', DM);
  await openConv(a, DM);
  await waitTexts(a, [...dm1, ...missedDm]);
  assert.deepEqual(await shownTexts(a), [...dm1, ...missedDm]);
  assert.equal(await a.isVisible('#banner'), false);
});

// An HS256 JWT, made here independently of the gateway's code.
function jwt(secret, payload) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}`;
  return `${signed}.${crypto.createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

step('token sign-in on a gateway with --auth jwt', async () => {
  const secret = crypto.randomBytes(32).toString('hex');
  const port = await stack.startGateway(2, 0, secret);
  const now = Math.floor(Date.now() / 1000);
  const page = await users.bob.ctx.newPage(); // a new tab of bob's browser: carol borrows it
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  page.setDefaultTimeout(WAIT);
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.click('.tab[data-mode="token"]');
  const tryToken = async (token) => {
    await page.fill('#in-token', token);
    await page.click('#signin-button');
  };
  // expired: refused before connecting
  await tryToken(jwt(secret, { sub: 'carol', exp: now - 60 }));
  await page.waitForFunction(() => /expired/.test(document.getElementById('signin-error').textContent));
  // signed with another key: the gateway answers 401, the form says so
  await tryToken(jwt('not-the-key', { sub: 'carol', exp: now + 3600 }));
  await page.waitForFunction(() => /Could not connect/.test(document.getElementById('signin-error').textContent) &&
    !document.getElementById('signin').hidden);
  // a good token: carol is in, joins #general and sees what was said there
  await tryToken(jwt(secret, { sub: 'carol', exp: now + 3600 }));
  await waitState(page, 'connected');
  assert.equal(await page.textContent('#me-name'), 'carol');
  await joinRoom(page, 'general');
  await waitTexts(page, [...missedRoom, typedOffline]);
  const hello = 'Hi both! carol here, signed in with a token.';
  await say(page, hello);
  await openConv(users.alice.page, GENERAL);
  await waitTexts(users.alice.page, [hello]);
  await waitTexts(users.bob.page, [hello]);
  await page.close();
  const unexpected = errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
  assert.deepEqual(unexpected, []);
  // Chromium reports the 401 (WWW-Authenticate: Bearer) as an authentication failure
  assert.ok(errors.some((e) => /401|Authentication failed/.test(e)), `the handshake was refused: ${JSON.stringify(errors)}`);
});

// dave, a raw WebSocket client run inside bob's page (same origin, so the
// page's CSP allows it), fills #archive with n messages, one at a time.
async function fillArchive(page, n) {
  await page.evaluate(async ({ n, ms }) => {
    const url = new URL('ws?user=dave', location.href);
    url.protocol = 'ws:';
    const ws = new WebSocket(url.href, 'chatmi.v1.json');
    const waiters = new Map();
    let helloSeen;
    const hello = new Promise((resolve) => { helloSeen = resolve; });
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.op === 'hello') helloSeen();
      const w = m.id && waiters.get(m.id);
      if (w) { waiters.delete(m.id); w(m); }
    };
    const bounded = (p, what) => Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`dave: no ${what}`)), ms))]);
    const req = (o) => bounded(new Promise((resolve) => { waiters.set(o.id, resolve); ws.send(JSON.stringify(o)); }), `reply to ${o.id}`);
    await bounded(hello, 'hello');
    await req({ op: 'join', id: 'j', room: 'archive' });
    for (let i = 1, tries = 0; i <= n; i++) {
      const r = await req({ op: 'send', id: `a${i}`, room: 'archive', text: `archive message ${i}` });
      if (r.op === 'ack') continue;
      // over --rate-limit (20/s, bursts of 40): pace the retry, same id, bounded
      if (r.code !== 'rate_limited' || ++tries > 10 * n) throw new Error(`dave: ${JSON.stringify(r)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      i--;
    }
    ws.close();
  }, { n, ms: WAIT });
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

step('scrolling to the top pages back through a long history', async () => {
  const a = users.alice.page;
  await fillArchive(users.bob.page, 120);
  await joinRoom(a, 'archive');
  await a.waitForFunction(() => document.querySelectorAll('#messages .msg[data-seq]').length === 50);
  assert.deepEqual(await shownSeqs(a), range(71, 120), 'opens on the newest 50');
  // scrolled to the top: the 50 before, and what was on screen stays there
  await a.$eval('#scroller', (sc) => { sc.scrollTop = 0; });
  await a.waitForFunction(() => document.querySelectorAll('#messages .msg[data-seq]').length === 100);
  assert.deepEqual(await shownSeqs(a), range(21, 120));
  const kept = await a.$eval('#scroller', (sc) => {
    const row = document.querySelector('#messages .msg[data-seq="71"]').getBoundingClientRect();
    const box = sc.getBoundingClientRect();
    return sc.scrollTop > 0 && row.top >= box.top - 1 && row.top < box.bottom;
  });
  assert.ok(kept, 'message 71 is still in view after the older page came in above it');
  await a.$eval('#scroller', (sc) => { sc.scrollTop = 0; });
  await a.waitForFunction(() => document.querySelectorAll('#messages .msg[data-seq]').length === 120);
  assert.deepEqual(await shownSeqs(a), range(1, 120));
  assert.equal(await a.isVisible('#older'), false, 'nothing older to load');
  assert.equal(await a.textContent('#messages .msg[data-seq="1"] .text'), 'archive message 1');
});

step('unread counts while reading another conversation; screenshots', async () => {
  const a = users.alice.page, b = users.bob.page;
  // alice: a second room and a DM with someone offline, then back to #general
  await joinRoom(a, 'random');
  await a.fill('#in-dm', 'carol');
  await a.press('#in-dm', 'Enter');
  await a.waitForSelector('button[data-conv="dm:alice:carol"] .dot:not(.on)');
  await openConv(a, GENERAL);
  await waitTexts(a, [typedOffline]);
  // bob writes in #random and to alice: both count as unread for her
  await joinRoom(b, 'random');
  await say(b, 'Lunch at noon? The new ramen place opened.');
  await openConv(b, DM);
  await say(b, 'Great, see you in room B.');
  await a.waitForFunction(() => document.querySelector('button[data-conv="room:random"] .badge')?.textContent === '1');
  await a.waitForFunction((c) => document.querySelector(`button[data-conv="${c}"] .badge`)?.textContent === '1', DM);
  await a.waitForSelector(`button[data-conv="${DM}"] .dot.on`);
  assert.equal(await a.title(), '(2) chatmi');
  await a.screenshot({ path: path.join(artifacts, 'chat.png') });
  await b.screenshot({ path: path.join(artifacts, 'chat-bob.png') });
  console.log(`# screenshots: ${path.join(artifacts, 'chat.png')} ${path.join(artifacts, 'chat-bob.png')}`);
});

step('leaving a room', async () => {
  const a = users.alice.page;
  await openConv(a, 'room:random');
  await waitTexts(a, ['Lunch at noon? The new ramen place opened.']);
  await a.click('#leave');
  await a.waitForSelector('button[data-conv="room:random"]', { state: 'detached' });
  await a.waitForFunction(() => document.getElementById('conv-title').textContent !== '# random');
  // the server forgot the membership too: a reload does not bring it back
  await a.reload();
  await waitState(a, 'connected');
  await a.waitForSelector(`button[data-conv="${GENERAL}"]`);
  assert.equal(await a.$('button[data-conv="room:random"]'), null);
});

step('no script errors and no blocked content in either page', async () => {
  for (const [who, u] of Object.entries(users)) {
    // Chromium logs each refused WebSocket handshake while gateway 0 was down: expected.
    const errs = u.errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
    assert.deepEqual(errs, [], `${who}: ${errs.join('\n')}`);
  }
});

step('every program exits 0 on SIGTERM', async () => {
  for (const u of Object.values(users)) await u.ctx.close();
  // A crash or a sanitizer report (leaks are reported at exit) shows as another status.
  const bad = (await stack.stopAll()).filter(([, st]) => st.code !== 0);
  assert.deepEqual(bad, []);
});
