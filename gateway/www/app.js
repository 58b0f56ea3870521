'use strict';
// chatmi's browser client: plain JavaScript, no build step, no dependencies.
//
// It follows "Writing a reconnecting client" in docs/protocol.md: every
// conversation keeps the messages it holds by seq (so a message seen twice
// is shown once), unacked sends are kept and resent with their original id
// after a reconnect, and a reconnect (or a `resync`) asks `convs`, then
// `history after` wherever something was missed.
//
// Safety rule: text that came from the server or a user goes into the page
// only through textContent or DOM properties, never as HTML.

const $ = (id) => document.getElementById(id);
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const PAGE = 50;                 // history page size
const RESEND_MS = 10000;         // an unacked send on a live connection is resent after this
const PROBE_MS = 30000;          // presence refresh, which is also the liveness probe
const PROBE_TIMEOUT_MS = 10000;  // no answer to it within this or two heartbeats: the connection is dead
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30000;
const STABLE_MS = 10000;         // a session up this long resets the backoff
const MAX_TEXT_BYTES = 4096;     // the server's default --max-text-bytes

// ---- state -------------------------------------------------------------------

const S = {
  mode: 'user', cred: '', me: '',
  conn: 'offline',            // offline | connecting | connected | reconnecting
  ws: null, hello: null,
  resumed: false,             // signed in from the tab's saved session: never bounce to the form
  everConnected: false,
  attempt: 0, retryAt: 0, retryTimer: 0, stableTimer: 0, closeReason: '',
  synced: false,              // the first `convs` of this sign-in has been answered
  convs: new Map(),           // conv id -> conversation (see conv())
  current: null,
  pending: new Map(),         // send id -> { id, conv, req, text, sentAt, failed }
  replies: new Map(),         // request id -> callback(reply or error)
  presence: new Map(),        // user -> true (online) / false
  read: {},                   // conv id -> seq read up to (kept in localStorage)
  stateFor: '',               // the user whose saved state is loaded
  prefix: randomPrefix(), counter: 0,
};

function randomPrefix() {
  const b = new Uint8Array(6);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
// Request ids: a random prefix per page load and a counter, so ids never
// repeat for different messages (a repeated send id means "the same message").
const nextId = () => `${S.prefix}-${++S.counter}`;
// Both ids are ASCII, so JavaScript's string order is byte order.
const dmConv = (a, b) => (a < b ? `dm:${a}:${b}` : `dm:${b}:${a}`);

// Web storage may be full or disabled: the client then simply forgets.
const saved = {
  get(area, key, dflt) {
    try { const v = window[area].getItem(key); return v === null ? dflt : JSON.parse(v); } catch (e) { return dflt; }
  },
  set(area, key, value) { try { window[area].setItem(key, JSON.stringify(value)); } catch (e) { /* forget */ } },
  del(area, key) { try { window[area].removeItem(key); } catch (e) { /* forget */ } },
};

// ---- conversations -------------------------------------------------------------

// A conversation: msgs by seq; last: the highest seq held with nothing
// missing below it in the loaded window; high: the newest seq known to
// exist; oldest: the lowest held (for scrolling back).
function conv(id) {
  let c = S.convs.get(id);
  if (!c) {
    const room = id.startsWith('room:');
    const [, a, b] = id.split(':');
    c = {
      id, room, name: room ? id.slice(5) : (a === S.me ? b : a),
      msgs: new Map(), last: 0, high: 0, oldest: 0,
      loaded: false, noOlder: false, listed: false,
      busy: false,   // a history request is out
      again: false,  // something was missed meanwhile: loadAfter when it is back
      joinedAt: 0,   // when this tab joined it (Date.now())
    };
    S.convs.set(id, c);
  }
  return c;
}

function isMessage(m) {
  return m && typeof m.conv === 'string' && Number.isInteger(m.seq) && m.seq > 0 &&
    typeof m.from === 'string' && typeof m.text === 'string' && (m.conv.startsWith('room:') || m.conv.startsWith('dm:'));
}

// Adds a message unless its (conv, seq) is already held. Returns whether it was new.
function addMessage(m) {
  const c = conv(m.conv);
  c.listed = true;
  if (m.seq > c.high) c.high = m.seq;
  if (c.msgs.has(m.seq)) return false;
  c.msgs.set(m.seq, { conv: m.conv, seq: m.seq, from: m.from, text: m.text, ts: Number(m.ts) || Date.now() });
  if (!c.oldest || m.seq < c.oldest) c.oldest = m.seq;
  if (m.seq === 1) c.noOlder = true;
  while (c.msgs.has(c.last + 1)) c.last++;
  return true;
}

// Messages from others above the read mark (held or only known to exist).
function unreadOf(c) {
  if (c === S.current && !document.hidden) return 0;
  const read = S.read[c.id] || 0;
  let n = 0;
  for (let s = Math.max(read, c.high - 999) + 1; s <= c.high; s++) {
    const m = c.msgs.get(s);
    if (!m || m.from !== S.me) n++;
  }
  return n;
}

function markRead(c) {
  if ((S.read[c.id] || 0) < c.high) {
    S.read[c.id] = c.high;
    saved.set('localStorage', `chatmi.read.${S.me}`, S.read);
  }
}

function removeConv(c) {
  S.convs.delete(c.id);
  if (S.current === c) S.current = null;
}

// ---- requests and history ----------------------------------------------------------

function wsSend(obj) {
  if (S.conn !== 'connected') return false;
  S.ws.send(JSON.stringify(obj));
  return true;
}

// Sends a request with a fresh id; onReply gets its reply or its error.
function request(obj, onReply) {
  obj.id = nextId();
  if (onReply) S.replies.set(obj.id, onReply);
  if (wsSend(obj)) return true;
  S.replies.delete(obj.id);
  return false;
}

function history(c, range, onMessages) {
  if (c.busy || S.conn !== 'connected') return;
  c.busy = true;
  request(Object.assign({ op: 'history', conv: c.id, limit: PAGE }, range), (r) => {
    c.busy = false;
    if (r.op !== 'history' || !Array.isArray(r.messages)) return;
    const msgs = r.messages.filter((m) => isMessage(m) && m.conv === c.id);
    msgs.forEach(addMessage);
    onMessages(msgs, r.messages.length);
    if (c.again && !c.busy) { c.again = false; loadAfter(c); }
    render();
  });
}

// The newest page: what a conversation shows when first opened.
function loadLatest(c) {
  history(c, {}, (msgs, n) => {
    c.loaded = true;
    if (n < PAGE) c.noOlder = true;
    if (msgs.length) c.last = Math.max(c.last, msgs[msgs.length - 1].seq);
    if (c === S.current) render(true);
    if (c.high > c.last) loadAfter(c);
  });
}

// Everything after c.last, page by page: what was missed, or a gap. The
// server returned everything between c.last and the newest seq of the page
// (older messages beyond --history-max are gone for good), so c.last moves
// there; each page moves it forward, so this ends.
function loadAfter(c) {
  if (c.busy) { c.again = true; return; }
  history(c, { after: c.last }, (msgs, n) => {
    if (msgs.length) c.last = Math.max(c.last, msgs[msgs.length - 1].seq);
    if (n === PAGE || (msgs.length && c.high > c.last)) loadAfter(c);
  });
}

function loadOlder(c) {
  if (c.noOlder || !c.oldest) return;
  const sc = $('scroller');
  const fromBottom = sc.scrollHeight - sc.scrollTop;
  history(c, { before: c.oldest }, (msgs, n) => {
    if (n < PAGE) c.noOlder = true;
    render();
    sc.scrollTop = sc.scrollHeight - fromBottom;  // keep what the reader was looking at in place
  });
}

// Presence of the DM peers (and of oneself: the request then never is
// empty). Its reply is also the liveness probe, as a page cannot see the
// server's pings: a connection silent for two heartbeats (the period after
// which the server gives up on a client, too) is dropped and reconnected,
// without waiting minutes for TCP to notice a dead network.
function refreshPresence() {
  const users = [S.me];
  for (const c of S.convs.values()) if (!c.room && c.listed && !users.includes(c.name)) users.push(c.name);
  const ws = S.ws;
  const wait = Math.max(PROBE_TIMEOUT_MS, 2000 * (Number(S.hello && S.hello.heartbeat) || 25));
  const probe = setTimeout(() => { if (S.ws === ws) dropConnection(ws, 'No answer from the server'); }, wait);
  const sent = request({ op: 'presence', users: users.slice(0, 100) }, (r) => {
    clearTimeout(probe);
    if (r.op !== 'presence' || !r.users || typeof r.users !== 'object') return;
    for (const [u, st] of Object.entries(r.users)) S.presence.set(u, st === 'online');
    render();
  });
  if (!sent) clearTimeout(probe);
}

// ---- sending -------------------------------------------------------------------

function sendText(c, text) {
  const id = nextId();
  const req = c.room ? { op: 'send', id, room: c.name, text } : { op: 'send', id, to: c.name, text };
  S.pending.set(id, { id, conv: c.id, req, text, sentAt: 0, failed: '' });
  savePending();
  c.listed = true;
  trySend(S.pending.get(id));
  render(true);
}

// Always the request's original id: a retry of a send that did go through
// gets the same seq back and is stored once.
function trySend(p) {
  if (!p.failed && wsSend(p.req)) p.sentAt = Date.now();
}

function savePending() {
  const list = [...S.pending.values()].filter((p) => !p.failed).map(({ id, conv: cv, req, text }) => ({ id, conv: cv, req, text }));
  saved.set('sessionStorage', `chatmi.pending.${S.me}`, list);
}

setInterval(() => {
  for (const p of S.pending.values()) if (p.sentAt && Date.now() - p.sentAt > RESEND_MS) trySend(p);
}, 2000);

// ---- server messages --------------------------------------------------------------

function onServer(m) {
  const reply = typeof m.id === 'string' && S.replies.get(m.id);
  if (reply) { S.replies.delete(m.id); reply(m); }
  const p = typeof m.id === 'string' && S.pending.get(m.id);
  switch (m.op) {
    case 'hello': onHello(m); break;
    case 'resync': resync(); break;  // the socket stayed up but deliveries may have been lost
    case 'message': onMessage(m); break;
    case 'ack': if (p) onAck(p, m); break;
    case 'joined': {
      if (typeof m.conv !== 'string' || !m.conv.startsWith('room:')) break;
      const c = conv(m.conv);
      c.listed = true;
      c.joinedAt = Date.now();
      select(c);
      break;
    }
    case 'left': {
      const c = S.convs.get(`room:${m.room}`);
      if (c) removeConv(c);
      if (!S.current) selectSomething();
      render();
      break;
    }
    case 'error': onError(m, p, reply); break;
    default: break;  // replies handled by their callback; unknown ops are ignored
  }
}

function onHello(m) {
  if (typeof m.user !== 'string') return;
  S.hello = m;
  if (S.stateFor !== m.user) loadUserState(m.user);
  S.everConnected = true;
  setConn('connected');
  saved.set('sessionStorage', 'chatmi.session', { mode: S.mode, cred: S.cred });
  if (S.mode === 'user') saved.set('localStorage', 'chatmi.user', S.me);
  clearTimeout(S.stableTimer);
  S.stableTimer = setTimeout(() => { S.attempt = 0; }, STABLE_MS);
  resync();
}

// What the user's saved state holds: the read marks (localStorage: every
// tab and visit), the unacked sends and the open conversation (this tab).
function loadUserState(user) {
  S.me = user;
  S.stateFor = user;
  S.read = saved.get('localStorage', `chatmi.read.${user}`, {}) || {};
  for (const p of saved.get('sessionStorage', `chatmi.pending.${user}`, []) || []) {
    if (p && typeof p.id === 'string' && p.req && typeof p.conv === 'string' && !S.pending.has(p.id)) {
      S.pending.set(p.id, { id: p.id, conv: p.conv, req: p.req, text: String(p.text), sentAt: 0, failed: '' });
      conv(p.conv).listed = true;
    }
  }
  $('me-name').textContent = user;
}

// Steps 2 and 3 of the recipe: resend what is unacked, then find out what was missed.
function resync() {
  for (const p of S.pending.values()) trySend(p);
  const asked = Date.now();
  request({ op: 'convs' }, (r) => onConvs(r, asked));
}

function onConvs(r, asked) {
  if (r.op !== 'convs' || !Array.isArray(r.convs)) return;
  const first = !S.synced;
  S.synced = true;
  const seen = new Set();
  for (const e of r.convs) {
    if (!e || typeof e.conv !== 'string' || !Number.isInteger(e.last_seq)) continue;
    const c = conv(e.conv);
    c.listed = true;
    seen.add(c.id);
    // A conversation this browser never saw before: what is already there counts as read.
    if (first && S.read[c.id] === undefined) S.read[c.id] = e.last_seq;
    if (e.last_seq > c.high) c.high = e.last_seq;
    if (c.loaded && c.high > c.last) loadAfter(c);
  }
  // Rooms left in another tab go; one joined after the question was asked stays.
  for (const c of [...S.convs.values()]) if (c.room && !seen.has(c.id) && !(c.joinedAt >= asked)) removeConv(c);
  if (!S.current) selectSomething();
  else if (!S.current.loaded) loadLatest(S.current);
  refreshPresence();
  render();
}

function onMessage(m) {
  if (!isMessage(m)) return;
  const c = conv(m.conv);
  const gap = c.loaded && m.seq > c.last + 1;
  if (!addMessage(m)) return;
  if (gap) loadAfter(c);
  if (!c.room && !S.presence.has(c.name)) refreshPresence();
  render();
}

function onAck(p, m) {
  S.pending.delete(p.id);
  savePending();
  if (typeof m.conv === 'string' && Number.isInteger(m.seq)) {
    addMessage({ conv: m.conv, seq: m.seq, from: S.me, text: p.text, ts: m.ts });
  }
  render(S.current && S.current.id === p.conv);
}

// Errors of sends mark them (or retry them); errors of requests that had a
// callback were its business; the rest (join, leave) are shown.
function onError(m, p, reply) {
  const text = typeof m.message === 'string' && m.message ? m.message : String(m.code);
  if (p && (m.code === 'rate_limited' || m.code === 'unavailable')) {
    p.sentAt = Date.now() - RESEND_MS + 2000;  // again in about 2 s, same id
  } else if (p) {
    p.failed = text;
    savePending();
    render();
  } else if (!reply) {
    toast(text);
  }
}

// ---- the connection -------------------------------------------------------------------

function wsUrl() {
  const u = new URL('ws', location.href);  // next to the page, so a path prefix works too
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = `${S.mode === 'token' ? 'token' : 'user'}=${encodeURIComponent(S.cred)}`;
  return u.href;
}

// The seconds to expiry of a JWT (without checking it: the server does), or Infinity.
function tokenTtl(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const exp = JSON.parse(atob(b64)).exp;
    return Number.isFinite(exp) ? exp - Date.now() / 1000 : Infinity;
  } catch (e) {
    return Infinity;
  }
}

function connect() {
  clearTimeout(S.retryTimer);
  if (!S.cred || S.ws) return;
  if (S.mode === 'token' && tokenTtl(S.cred) <= 0) {
    signOut('Your token has expired: paste a new one.');
    return;
  }
  let ws;
  try {
    ws = new WebSocket(wsUrl(), 'chatmi.v1.json');
  } catch (e) {
    signOut(String(e.message || e));
    return;
  }
  S.ws = ws;
  setConn(S.everConnected || S.resumed ? 'reconnecting' : 'connecting');
  ws.onmessage = (ev) => {
    if (S.ws !== ws || typeof ev.data !== 'string') return;
    let m;
    try { m = JSON.parse(ev.data); } catch (e) { return; }
    if (m && typeof m === 'object' && !Array.isArray(m)) onServer(m);
  };
  ws.onclose = (ev) => { if (S.ws === ws) connectionLost(ev.code); };
}

// Gives up on a connection that looks dead without waiting for TCP to say so.
function dropConnection(ws, why) {
  connectionLost(4000, why);
  try { ws.close(); } catch (e) { /* already closing */ }
}

function connectionLost(code, why) {
  const hadHello = S.conn === 'connected';
  S.ws = null;
  S.hello = null;
  clearTimeout(S.stableTimer);
  S.replies.clear();
  for (const c of S.convs.values()) c.busy = c.again = false;
  for (const p of S.pending.values()) p.sentAt = 0;
  if (!S.cred) return;
  if (!S.everConnected && !S.resumed) {
    // A fresh sign-in that never got a hello: most likely a refused handshake.
    signOut('Could not connect. Check the user name or token, and that the gateway is running.');
    return;
  }
  S.closeReason = why || (code === 1001 ? 'The server is restarting' : code === 1013 ? 'The connection was too slow'
    : hadHello ? 'Connection lost' : 'Cannot reach the server');
  scheduleReconnect();
}

// Exponential backoff with "equal jitter": 0.5 s, 1 s, 2 s, ... capped at
// 30 s, each drawn from [base/2, base], so clients dropped together do not
// all come back in the same instant.
function scheduleReconnect() {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** S.attempt);
  S.attempt++;
  const delay = base / 2 + Math.random() * base / 2;
  S.retryAt = Date.now() + delay;
  S.retryTimer = setTimeout(connect, delay);
  setConn('reconnecting');
}

function reconnectNow() {
  if (!S.cred || S.ws) return;
  S.attempt = 0;
  connect();
}

function setConn(state) {
  S.conn = state;
  renderConn();
  render();
}

// ---- rendering -----------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

let toastTimer = 0;
function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
}

const COLORS = ['#e0455a', '#4f6df5', '#1f9d6a', '#c26d12', '#8a4fd6', '#1a8fb0', '#b8407a', '#5b6b2e'];
function colorOf(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return COLORS[h % COLORS.length];
}
const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const fmtTime = (ts) => new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const fmtDay = (ts) => new Date(ts).toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric' });

function renderConn() {
  const s = $('state');
  const waitS = Math.max(0, Math.ceil((S.retryAt - Date.now()) / 1000));
  const offline = S.conn === 'reconnecting' && !navigator.onLine;
  const label = offline ? 'offline'
    : S.conn === 'reconnecting' ? (S.ws ? 'reconnecting…' : `reconnecting in ${waitS} s`)
    : S.conn === 'connecting' ? 'connecting…' : S.conn;
  s.dataset.state = offline ? 'offline' : S.conn;  // what the pill shows
  s.dataset.conn = S.conn;                          // what the client is doing
  s.textContent = label;
  s.title = S.conn === 'reconnecting' ? 'Click to reconnect now'
    : S.hello ? `session ${S.hello.session} on node ${S.hello.node}` : '';
  const banner = S.conn === 'reconnecting' && (S.everConnected || S.resumed);
  $('banner').hidden = !banner;
  $('banner').classList.toggle('bad', offline);
  if (banner) {
    $('banner-text').textContent = offline ? 'You are offline. Messages will be sent when the network is back.'
      : `${S.closeReason}. ${S.ws ? 'Reconnecting…' : `Reconnecting in ${waitS} s…`} Unsent messages will be sent then.`;
  }
}
setInterval(() => { if (S.conn === 'reconnecting') renderConn(); }, 1000);

function render(toBottom) {
  if (S.current && !document.hidden) markRead(S.current);
  renderSide();
  renderMain(toBottom);
  let total = 0;
  for (const c of S.convs.values()) total += unreadOf(c);
  document.title = total ? `(${total}) chatmi` : 'chatmi';
}

function renderSide() {
  const rooms = [], dms = [];
  for (const c of S.convs.values()) if (c.listed) (c.room ? rooms : dms).push(c);
  for (const [list, items] of [[$('rooms'), rooms], [$('dms'), dms]]) {
    list.replaceChildren(...items.sort(byName).map((c) => {
      const unread = unreadOf(c);
      const b = el('button', (c === S.current ? 'active ' : '') + (unread ? 'unread' : ''));
      b.type = 'button';
      b.dataset.conv = c.id;
      if (c.room) b.append(el('span', 'hash', '#'));
      else b.append(el('span', S.presence.get(c.name) ? 'dot on' : 'dot'));
      b.append(el('span', 'label', c.name + (!c.room && c.name === S.me ? ' (you)' : '')));
      if (unread) b.append(el('span', 'badge', unread > 99 ? '99+' : String(unread)));
      b.title = c.room ? `#${c.name}` : `${c.name}: ${S.presence.get(c.name) ? 'online' : 'offline'}`;
      b.onclick = () => select(c);
      const li = el('li');
      li.append(b);
      return li;
    }));
  }
}

function renderMain(toBottom) {
  const c = S.current, sc = $('scroller');
  const atBottom = sc.scrollHeight - sc.scrollTop - sc.clientHeight < 60;
  $('conv-title').textContent = c ? (c.room ? `# ${c.name}` : c.name) : 'Welcome';
  $('conv-dot').hidden = !c || c.room;
  $('conv-dot').className = c && S.presence.get(c.name) ? 'dot on' : 'dot';
  $('conv-sub').textContent = !c ? '' : c.room ? 'room' : (S.presence.get(c.name) ? 'online' : 'offline');
  $('leave').hidden = !c || !c.room;
  $('in-text').disabled = $('send').disabled = !c;
  $('in-text').placeholder = c ? `Message ${c.room ? '#' : ''}${c.name}` : 'Message';
  $('older').hidden = !c || c.noOlder || !c.msgs.size;

  const msgs = c ? [...c.msgs.values()].sort((a, b) => a.seq - b.seq) : [];
  const pend = c ? [...S.pending.values()].filter((p) => p.conv === c.id)
    .map((p) => ({ from: S.me, text: p.text, ts: Date.now(), pending: p })) : [];
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of msgs.concat(pend)) {
    if (!prev || fmtDay(prev.ts) !== fmtDay(m.ts)) frag.append(el('div', 'day', fmtDay(m.ts)));
    const first = !prev || prev.from !== m.from || m.ts - prev.ts > 5 * 60000 || fmtDay(prev.ts) !== fmtDay(m.ts);
    frag.append(messageRow(m, first));
    prev = m;
  }
  $('messages').replaceChildren(frag);
  $('empty').hidden = !!(c && (msgs.length || pend.length));
  $('empty').textContent = !c ? 'Join a room or start a direct message to begin chatting.'
    : c.loaded || S.conn !== 'connected' ? 'No messages yet. Say hello!' : 'Loading…';
  if (toBottom || atBottom) sc.scrollTop = sc.scrollHeight;
}

function messageRow(m, first) {
  const p = m.pending;
  const row = el('div', 'msg' + (first ? ' first' : '') + (m.from === S.me ? ' mine' : '') +
    (p ? (p.failed ? ' failed' : ' pending') : ''));
  if (p) row.dataset.pending = p.id;
  else { row.dataset.conv = m.conv; row.dataset.seq = String(m.seq); }
  if (first) {
    const av = el('div', 'avatar', m.from.slice(0, 1).toUpperCase());
    av.style.background = colorOf(m.from);
    const meta = el('div', 'meta');
    meta.append(el('b', '', m.from));
    const t = el('time', '', fmtTime(m.ts));
    if (!p) { t.dateTime = new Date(m.ts).toISOString(); t.title = `${new Date(m.ts).toLocaleString()} · #${m.seq}`; }
    meta.append(t);
    row.append(av, meta);
  }
  row.append(el('div', 'text', m.text));
  if (p) {
    const note = el('div', 'note', p.failed ? `Not sent: ${p.failed} (click to dismiss)`
      : S.conn === 'connected' ? 'sending…' : 'waiting for the connection…');
    if (p.failed) note.onclick = () => { S.pending.delete(p.id); savePending(); render(); };
    row.append(note);
  }
  return row;
}

// ---- navigation ---------------------------------------------------------------------

function select(c) {
  S.current = c;
  c.listed = true;
  saved.set('sessionStorage', `chatmi.current.${S.me}`, c.id);
  if (!c.loaded) loadLatest(c);
  if (!c.room && !S.presence.has(c.name)) refreshPresence();
  render(true);
  $('in-text').focus();
}

// The conversation this tab had open, else the first one.
function selectSomething() {
  const want = saved.get('sessionStorage', `chatmi.current.${S.me}`, '');
  const listed = [...S.convs.values()].filter((c) => c.listed);
  const c = listed.find((x) => x.id === want) || listed.filter((x) => x.room).sort(byName)[0] || listed.sort(byName)[0];
  if (c) select(c);
}

// ---- sign in and out ---------------------------------------------------------------------

function signIn(mode, cred, resumed) {
  Object.assign(S, { mode, cred, resumed, everConnected: false, synced: false, attempt: 0 });
  if (mode === 'user') loadUserState(cred);
  $('signin').hidden = true;
  $('app').hidden = false;
  connect();
}

function signOut(error) {
  const ws = S.ws;
  if (S.me) saved.del('sessionStorage', `chatmi.pending.${S.me}`);
  Object.assign(S, { cred: '', ws: null, hello: null, current: null, me: '', stateFor: '', synced: false });
  clearTimeout(S.retryTimer);
  clearTimeout(S.stableTimer);
  if (ws) ws.close(1000);
  for (const m of [S.convs, S.pending, S.replies, S.presence]) m.clear();
  saved.del('sessionStorage', 'chatmi.session');
  setConn('offline');
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = error || '';
}

// ---- user interface events -------------------------------------------------------------------

document.querySelectorAll('.tab').forEach((t) => {
  t.onclick = () => {
    S.mode = t.dataset.mode;
    document.querySelectorAll('.tab').forEach((x) => x.classList.toggle('active', x === t));
    $('user-field').hidden = S.mode !== 'user';
    $('token-field').hidden = S.mode !== 'token';
  };
});

$('signin-form').onsubmit = (e) => {
  e.preventDefault();
  $('signin-error').textContent = '';
  if (S.mode === 'user') {
    const u = $('in-user').value.trim();
    if (!NAME_RE.test(u)) { $('signin-error').textContent = 'A user name is 1 to 64 characters of A-Z a-z 0-9 _ . -'; return; }
    signIn('user', u, false);
  } else {
    const t = $('in-token').value.trim();
    if (t.split('.').length !== 3) { $('signin-error').textContent = 'That does not look like a JWT (three parts separated by dots).'; return; }
    if (tokenTtl(t) <= 0) { $('signin-error').textContent = 'That token has expired.'; return; }
    signIn('token', t, false);
  }
};

$('join-form').onsubmit = (e) => {
  e.preventDefault();
  const r = $('in-room').value.trim().replace(/^#/, '');
  if (!NAME_RE.test(r)) { toast('A room name is 1 to 64 characters of A-Z a-z 0-9 _ . -'); return; }
  if (!request({ op: 'join', room: r })) { toast('Not connected: try again in a moment.'); return; }
  $('in-room').value = '';
};

$('dm-form').onsubmit = (e) => {
  e.preventDefault();
  const u = $('in-dm').value.trim().replace(/^@/, '');
  if (!NAME_RE.test(u)) { toast('A user name is 1 to 64 characters of A-Z a-z 0-9 _ . -'); return; }
  if (!S.me) { toast('Not connected yet.'); return; }
  $('in-dm').value = '';
  select(conv(dmConv(S.me, u)));
};

$('leave').onclick = () => {
  if (S.current && S.current.room && !request({ op: 'leave', room: S.current.name })) toast('Not connected.');
};
$('older').onclick = () => { if (S.current) loadOlder(S.current); };
$('scroller').addEventListener('scroll', () => {
  const c = S.current;
  if (c && c.loaded && !c.noOlder && $('scroller').scrollTop < 40) loadOlder(c);
});
$('signout').onclick = () => signOut();
$('state').onclick = reconnectNow;
$('retry').onclick = reconnectNow;
window.addEventListener('online', reconnectNow);
window.addEventListener('offline', renderConn);

$('composer').onsubmit = (e) => {
  e.preventDefault();
  const text = $('in-text').value;
  if (!S.current || !text.trim()) return;
  const bytes = new TextEncoder().encode(text).length;
  if (bytes > MAX_TEXT_BYTES) { toast(`That message is ${bytes} bytes; the limit is ${MAX_TEXT_BYTES}.`); return; }
  sendText(S.current, text);
  $('in-text').value = '';
  $('in-text').style.height = '';
};
$('in-text').onkeydown = (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('composer').requestSubmit(); }
};
$('in-text').oninput = (e) => {
  e.target.style.height = '';
  e.target.style.height = `${Math.min(e.target.scrollHeight, 160)}px`;
};
document.addEventListener('visibilitychange', () => render());
setInterval(() => { if (S.conn === 'connected') refreshPresence(); }, PROBE_MS);

// Start: ?user=alice signs in at once (handy for demos); a reload resumes
// this tab's session; otherwise the last user name is filled in.
{
  const params = new URLSearchParams(location.search);
  const session = saved.get('sessionStorage', 'chatmi.session', null);
  $('in-user').value = params.get('user') || saved.get('localStorage', 'chatmi.user', '') || '';
  if (params.get('user') && NAME_RE.test(params.get('user'))) signIn('user', params.get('user'), false);
  else if (session && (session.mode === 'user' || session.mode === 'token') && typeof session.cred === 'string' && session.cred) {
    signIn(session.mode, session.cred, true);
  }
}
