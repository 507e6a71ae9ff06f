import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { formatTextLine } from '../../../src/server/log-text.js';
import { MESHCA_BIN, REPO_ROOT, runMeshca } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';
import { spawnServe } from './helpers.js';

const tmp = tempDir('meshca-log-format-');
after(() => tmp.cleanup());

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \S/;
const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');
const ADDRS = ['--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--plaintext'];

test('the text format: one readable line per record, ISO time and level first, fields as key=value', () => {
  const line = formatTextLine(
    JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 11, 6, 3),
      name: 'meshca',
      pid: 1,
      msg: 'renewal failed',
      cluster: 'east',
      n: 3,
      err: { type: 'Error', message: 'no route', stack: 'Error: no route\n at x' },
    }),
  );
  assert.equal(line, '2026-12-06T03:00:00.000Z WARN renewal failed cluster=east n=3 err="no route"\n');
});

test('serve --log-format text writes text lines (and never the token or the key); JSON when piped by default', async () => {
  const dir = join(tmp.path, 'text');
  const s = spawnServe(['--dir', dir, ...ADDRS, '--log-format', 'text', '--log-level', 'debug']);
  try {
    const ready = await s.ready;
    const tok = await runMeshca(['token', '--dir', dir, '-n', 'shop', '-s', 'cart', '--ttl', '10m']);
    assert.equal(tok.code, 0, tok.stderr);
    const tokenFile = join(tmp.path, 'token');
    writeFileSync(tokenFile, tok.stdout.trim());
    const out = join(tmp.path, 'out');
    const agent = await runMeshca(['agent', '--once', '--plaintext', '--ca-addr', ready.grpc, '--token-file', tokenFile, '--out', out]);
    assert.equal(agent.code, 0, agent.stderr);
    assert.equal(await s.stop(), 0);
    const log = lines(s.stderr());
    assert.ok(log.length >= 2, s.stderr());
    for (const l of log) assert.match(l, TEXT_LINE);
    assert.ok(
      log.some((l) => / INFO meshca serving grpc=/.test(l)),
      s.stderr(),
    );
    assert.ok(!s.stderr().includes(tok.stdout.trim()), 'the token is not logged');
    assert.ok(!s.stderr().includes(tok.stdout.trim().split('.')[2]), 'nor its signature');
    assert.ok(!/PRIVATE KEY/.test(s.stderr()));
    assert.ok(!s.stderr().includes(readFileSync(join(out, 'key.pem'), 'utf8').split('\n')[1]));
  } finally {
    await s.stop();
  }

  const json = spawnServe(['--dir', dir, ...ADDRS]);
  try {
    await json.ready;
  } finally {
    await json.stop();
  }
  const records = lines(json.stderr()).map((l) => JSON.parse(l) as { level: number; time: number; msg: string });
  assert.ok(records.some((r) => r.msg === 'meshca serving' && r.level === 30 && typeof r.time === 'number'));
});

test('a bad --log-format is refused', async () => {
  const r = await runMeshca(['serve', '--dir', join(tmp.path, 'bad'), ...ADDRS, '--log-format', 'xml']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /log-?[Ff]ormat/);
});

test('on a terminal (a pseudo-TTY from script(1)) the default is text', async () => {
  const dir = join(tmp.path, 'tty');
  const cmd = [process.execPath, MESHCA_BIN, 'serve', '--dir', dir, ...ADDRS].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qec', `exec ${cmd}`, '/dev/null'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let out = '';
  const exited = new Promise((resolve) => child.on('close', resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "meshca serving" line within 60 s: ${out}`)), 60_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/ INFO meshca serving /.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
  const logLines = lines(out.replace(/\r/g, '')).filter((l) => !l.startsWith('{"event":"listening"'));
  assert.ok(logLines.length >= 1, out);
  for (const l of logLines) assert.match(l, TEXT_LINE);
});
