// stack.mjs: the real processes behind a browser test: redis-server on a
// free loopback port, chatmi-gateway instances and a chatmi-worker from the
// build tree, each in its own process group with its output in
// <dir>/<name>.log.
//
// Readiness is awaited, never guessed: redis-server's "Ready to accept
// connections", the programs' {"event":"ready"} JSON log line. Every wait
// has a deadline. Every process group started is written to
// $CHATMI_BROWSER_PIDFILE, so the wrapper (chat.sh) can kill what a crashed
// test left behind; stopAll() and the exit hook kill them otherwise.
//
// Environment (tests/browser/Makefile.am sets it): CHATMI_GATEWAY_BIN,
// CHATMI_WORKER_BIN, REDIS_SERVER, CHATMI_WWW_DIR.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const live = new Set(); // process group ids still to kill

process.on('exit', () => {
  for (const pgid of live) {
    try { process.kill(-pgid, 'SIGKILL'); } catch (e) { /* gone */ }
  }
});

// Resolves with what fn resolves with, or rejects after ms naming what.
export function deadline(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A port no socket holds right now on 127.0.0.1 (the kernel's choice).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One program: its output goes to <dir>/<name>.log; each complete line is
// offered to the watchers (predicates with a resolve) until one matches.
class Proc {
  constructor(dir, name, argv, env) {
    this.name = name;
    this.logPath = path.join(dir, `${name}.log`);
    this.log = fs.createWriteStream(this.logPath, { flags: 'a' });
    this.watchers = [];
    this.lines = [];
    this.child = spawn(argv[0], argv.slice(1), {
      detached: true, // its own process group: a gateway's children can be killed with it
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.pid = this.child.pid;
    live.add(this.pid);
    if (process.env.CHATMI_BROWSER_PIDFILE) fs.appendFileSync(process.env.CHATMI_BROWSER_PIDFILE, `${this.pid}\n`);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
      this.child.once('error', (err) => resolve({ code: null, signal: null, error: err }));
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        this.log.write(chunk);
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        for (const line of parts) this.onLine(line);
      });
    }
  }

  onLine(line) {
    this.lines.push(line);
    this.watchers = this.watchers.filter((w) => {
      if (!w.match(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  // The first line (already seen or still to come) that match accepts.
  waitLine(match, ms, what) {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    const got = new Promise((resolve) => this.watchers.push({ match, resolve }));
    const died = this.exited.then((st) => {
      throw new Error(`${this.name} exited (${JSON.stringify(st)}) before ${what}; see ${this.logPath}`);
    });
    return deadline(Promise.race([got, died]), ms, `${this.name}: ${what} (see ${this.logPath})`);
  }

  // Sends sig to the whole process group and waits for the program to
  // exit; then makes sure nothing of the group is left.
  async stop(sig, ms) {
    try { process.kill(-this.pid, sig); } catch (e) { /* gone */ }
    const st = await deadline(this.exited, ms, `${this.name} to exit on ${sig}`);
    await waitGroupGone(this.pid, ms);
    live.delete(this.pid);
    this.log.end();
    return st;
  }
}

// Whether any process (other than a zombie) is in process group pgid.
function groupAlive(pgid) {
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8'); } catch (e) { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // state ppid pgrp ...
    if (Number(f[2]) === pgid && f[0] !== 'Z') return true;
  }
  return false;
}

// After the leader exited, its group's other members (a gateway's children)
// go too: they were sent the same signal. The kernel has no event for the
// death of a process that is not our child, so this polls /proc, bounded.
async function waitGroupGone(pgid, ms) {
  const end = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() > end) {
      try { process.kill(-pgid, 'SIGKILL'); } catch (e) { /* gone */ }
      throw new Error(`process group ${pgid} still alive after ${ms} ms`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const isJsonEvent = (event) => (line) => {
  if (!line.startsWith('{')) return false;
  try { return JSON.parse(line).event === event; } catch (e) { return false; }
};

export class Stack {
  constructor(dir, scale) {
    this.dir = dir;
    this.scale = scale;
    this.procs = [];
    this.gateways = [];
    this.redisPort = 0;
    this.starts = new Map(); // name -> how many started, for log names
  }

  ms(base) { return Math.round(base * this.scale); }

  spawn(name, argv, env) {
    const n = this.starts.get(name) || 0;
    this.starts.set(name, n + 1);
    const p = new Proc(this.dir, n ? `${name}-${n}` : name, argv, env);
    this.procs.push(p);
    return p;
  }

  async startRedis() {
    const bin = process.env.REDIS_SERVER || 'redis-server';
    const data = path.join(this.dir, 'redis-data');
    fs.mkdirSync(data, { recursive: true });
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort();
      const p = this.spawn('redis', [bin, '--port', String(port), '--bind', '127.0.0.1', '--save', '',
        '--appendonly', 'no', '--dir', data, '--daemonize', 'no', '--logfile', '', '--protected-mode', 'no']);
      try {
        await p.waitLine((l) => l.includes('Ready to accept connections'), this.ms(10000), 'Redis ready');
        this.redisPort = port;
        this.redis = p;
        return port;
      } catch (e) {
        await p.stop('SIGKILL', this.ms(5000)).catch(() => {});
        if (!p.lines.some((l) => l.includes('in use'))) throw e; // another socket took the port: try another
      }
    }
    throw new Error('redis-server: no free port after 5 attempts');
  }

  gatewayArgs(listen, jwtSecret) {
    const auth = jwtSecret ? ['--auth', 'jwt', '--jwt-secret', jwtSecret] : ['--auth', 'none'];
    return [process.env.CHATMI_GATEWAY_BIN, '--listen', listen, '--processes', '2',
      '--redis-url', `redis://127.0.0.1:${this.redisPort}/0`, ...auth,
      '--www-dir', process.env.CHATMI_WWW_DIR, '--log-format', 'json', '--log-level', 'info',
      '--drain-seconds', '0'];
  }

  // Starts gateway i on port (0: one the kernel picks), with --auth none,
  // or --auth jwt when given a secret; returns its port.
  async startGateway(i, port = 0, jwtSecret = '') {
    const name = `gateway${i}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const p = this.spawn(name, this.gatewayArgs(`127.0.0.1:${port}`, jwtSecret));
      try {
        await p.waitLine(isJsonEvent('ready'), this.ms(10000), 'gateway ready');
      } catch (e) {
        await p.stop('SIGKILL', this.ms(5000)).catch(() => {});
        // The same port again right after a kill: a socket of the old
        // group may not have been released yet. Bounded retries.
        if (port && p.lines.some((l) => l.includes('in use'))) continue;
        throw e;
      }
      const listen = p.lines.map((l) => /listening on 127\.0\.0\.1:(\d+)/.exec(l)).find(Boolean);
      if (!listen) throw new Error(`${name} did not log its port; see ${p.logPath}`);
      this.gateways[i] = { proc: p, port: Number(listen[1]) };
      return this.gateways[i].port;
    }
    throw new Error(`${name}: port ${port} still in use after 5 attempts`);
  }

  async startWorker() {
    const p = this.spawn('worker', [process.env.CHATMI_WORKER_BIN, '--redis-url', `redis://127.0.0.1:${this.redisPort}/0`,
      '--worker-id', `browser-${process.pid}`, '--log-format', 'json', '--log-level', 'info']);
    await p.waitLine(isJsonEvent('ready'), this.ms(10000), 'worker ready');
    this.worker = p;
  }

  // Kills gateway i's master and children at once (a crash, not a drain).
  async killGateway(i) {
    return this.gateways[i].proc.stop('SIGKILL', this.ms(10000));
  }

  // SIGTERM to every program still running; returns [name, exit status] pairs.
  async stopAll() {
    const out = [];
    for (const p of [...this.procs].reverse()) {
      if (!live.has(p.pid)) continue;
      try {
        out.push([p.name, await p.stop('SIGTERM', this.ms(15000))]);
      } catch (e) {
        out.push([p.name, { error: String(e.message || e) }]);
      }
    }
    return out;
  }

  // The last lines of every log, for a failure report.
  tail(n = 25) {
    return this.procs.map((p) => `---- ${p.name} (${p.logPath}) ----\n${p.lines.slice(-n).join('\n')}`).join('\n');
  }
}
