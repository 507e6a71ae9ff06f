import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseCertificates } from '../pki/certificate.js';
import { parseCsr } from '../pki/csr.js';
import { MeshcaError } from '../pki/errors.js';
import { keyMatches, parsePrivateKeyPem } from '../pki/keys.js';
import { runAgent, systemClock, type AgentEvent, type Clock } from './agent.js';
import { FakeCa, fakeToken } from './fake-ca.js';
import { issueOnce, loadCertDir, type AgentConfig } from './issue.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshca-agent-'));
  dirs.push(d);
  return d;
}

/** Advances instantly on sleep and records every delay the loop asked for. */
class FakeClock implements Clock {
  // Whole seconds, as X.509 times are, so that expected delays come out exact.
  t = Math.floor(Date.now() / 1000) * 1000;
  sleeps: number[] = [];
  onSleep: (ms: number) => void = () => undefined;
  now = (): number => this.t;
  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
    this.onSleep(ms);
  }
}

function setup(over: Partial<AgentConfig> = {}) {
  const clock = new FakeClock();
  const ca = new FakeCa(clock.now);
  let token = fakeToken('shop', 'cart');
  const reads: string[] = [];
  const readFile = (p: string): string => {
    if (p.endsWith('token')) {
      reads.push(p);
      return token;
    }
    return readFileSync(p, 'utf8');
  };
  const cfg: AgentConfig = {
    outDir: tmp(),
    keyAlgorithm: 'ec-p256',
    trustDomain: 'cluster.local',
    renewAt: 0.5,
    tokenFile: '/var/run/token',
    ...over,
  };
  return { clock, ca, cfg, reads, readFile, setToken: (t: string) => (token = t) };
}

function files(dir: string) {
  const chain = readFileSync(join(dir, 'cert-chain.pem'), 'utf8');
  const key = readFileSync(join(dir, 'key.pem'), 'utf8');
  const root = readFileSync(join(dir, 'root-cert.pem'), 'utf8');
  const leaf = parseCertificates(chain)[0];
  return { chain, key, root, leaf, matches: keyMatches(parsePrivateKeyPem(key), leaf.publicKey) };
}

test('token issuance writes cert-chain.pem, key.pem (0600) and root-cert.pem for the token identity', async () => {
  const { clock, ca, cfg, readFile } = setup({ ttlSeconds: 600, clusterId: 'east', workloadName: 'cart-v1' });
  const { held, auth } = await issueOnce(cfg, { client: ca, now: clock.now, readFile });
  assert.equal(auth, 'token');
  assert.equal(held.identity.spiffeId, 'spiffe://cluster.local/ns/shop/sa/cart');
  const f = files(cfg.outDir);
  assert.ok(f.matches, 'key.pem must be the key of the leaf');
  assert.equal(statSync(join(cfg.outDir, 'key.pem')).mode & 0o777, 0o600);
  assert.deepEqual(f.leaf.ext.san?.uris, ['spiffe://cluster.local/ns/shop/sa/cart']);
  assert.equal(parseCertificates(f.chain).length, 2, 'leaf + intermediate, root kept apart');
  assert.equal(f.root, ca.root.pem);
  assert.equal(f.leaf.notAfter.getTime() - clock.t, 600_000);
  assert.deepEqual(
    readdirSync(cfg.outDir)
      .filter((n) => !n.startsWith('.'))
      .sort(),
    ['cert-chain.pem', 'key.pem', 'root-cert.pem'],
  );
  const call = ca.calls[0];
  assert.equal(call.auth.kind, 'token');
  assert.equal(call.req.validityDuration, 600);
  assert.deepEqual(call.req.metadata, { ClusterID: 'east', WorkloadName: 'cart-v1' });
  assert.deepEqual(parseCsr(call.req.csr).sans.uris, ['spiffe://cluster.local/ns/shop/sa/cart']);
});

test('an old-style response (root only as the last cert_chain entry) gives the same files', async () => {
  const { clock, ca, cfg, readFile } = setup({ keyAlgorithm: 'rsa-2048' });
  ca.shape = 'legacy';
  await issueOnce(cfg, { client: ca, now: clock.now, readFile });
  const f = files(cfg.outDir);
  assert.ok(f.matches);
  assert.equal(f.root, ca.root.pem);
  assert.equal(f.leaf.keyInfo.label, 'RSA 2048');
});

test('the token file is re-read on every request', async () => {
  const { clock, ca, cfg, reads, readFile, setToken } = setup();
  await issueOnce(cfg, { client: ca, now: clock.now, readFile });
  setToken(fakeToken('shop', 'checkout'));
  const { held } = await issueOnce(cfg, { client: ca, now: clock.now, readFile });
  assert.equal(reads.length, 2);
  assert.equal(held.identity.spiffeId, 'spiffe://cluster.local/ns/shop/sa/checkout');
});

test('a certificate for another identity, or for another key, never reaches the disk', async () => {
  const { clock, ca, cfg, readFile } = setup();
  ca.overrideIdentity = 'spiffe://cluster.local/ns/shop/sa/admin';
  await assert.rejects(
    issueOnce(cfg, { client: ca, now: clock.now, readFile }),
    /certifies spiffe:\/\/cluster.local\/ns\/shop\/sa\/admin instead of .*sa\/cart/,
  );
  assert.deepEqual(readdirSync(cfg.outDir), []);
});

test("the CA's refusal surfaces with its status and message, and nothing is written", async () => {
  const { clock, ca, cfg, readFile } = setup();
  ca.failures.push(new MeshcaError('permission_denied', 'ca_permission_denied', 'PERMISSION_DENIED: not allowed'));
  await assert.rejects(issueOnce(cfg, { client: ca, now: clock.now, readFile }), {
    code: 'permission_denied',
    message: 'PERMISSION_DENIED: not allowed',
  });
  assert.deepEqual(readdirSync(cfg.outDir), []);
});

test('--cert-dir renews over mTLS: same identity, new key and serial, no token needed', async () => {
  const first = setup();
  await issueOnce(first.cfg, { client: first.ca, now: first.clock.now, readFile: first.readFile });
  const before = files(first.cfg.outDir);
  const out = tmp();
  const cfg: AgentConfig = { ...first.cfg, tokenFile: undefined, certDir: first.cfg.outDir, outDir: out };
  const current = loadCertDir(cfg.certDir!);
  const { held, auth } = await issueOnce(cfg, { client: first.ca, now: first.clock.now }, current);
  assert.equal(auth, 'mtls');
  assert.equal(held.identity.spiffeId, before.leaf.ext.san?.uris[0]);
  const after = files(out);
  assert.ok(after.matches);
  assert.notEqual(after.leaf.serialHex, before.leaf.serialHex);
  assert.notEqual(after.key, before.key);
  const call = first.ca.calls[1];
  assert.equal(call.auth.kind, 'mtls');
  // Once the certificate has expired there is nothing left to authenticate with.
  first.clock.t = current.leaf.notAfter.getTime() + 1;
  await assert.rejects(
    issueOnce(cfg, { client: first.ca, now: first.clock.now }, current),
    /certificate expired at .* and no --token-file/,
  );
});

test('a renewal the CA refuses over mTLS falls back to the token', async () => {
  const { clock, ca, cfg, readFile } = setup();
  const { held } = await issueOnce(cfg, { client: ca, now: clock.now, readFile });
  ca.rejectMtls = true;
  const r = await issueOnce(cfg, { client: ca, now: clock.now, readFile }, held);
  assert.equal(r.auth, 'token');
  assert.deepEqual(
    ca.calls.map((c) => c.auth.kind),
    ['token', 'mtls', 'token'],
  );
});

test('the loop issues with the token, renews with its certificate near half-life, and stops on abort', async () => {
  const { clock, ca, cfg, readFile } = setup();
  ca.ttlSeconds = 3600;
  const stop = new AbortController();
  const events: AgentEvent[] = [];
  const serials: string[] = [];
  clock.onSleep = () => {
    const f = files(cfg.outDir);
    assert.ok(f.matches);
    serials.push(f.leaf.serialHex);
    if (serials.length === 3) stop.abort();
  };
  await runAgent(cfg, { client: ca, clock, random: () => 0.5, readFile, onEvent: (e) => events.push(e) }, stop.signal);
  assert.deepEqual(
    ca.calls.map((c) => c.auth.kind),
    ['token', 'mtls', 'mtls'],
  );
  assert.deepEqual(clock.sleeps, [1_800_000, 1_800_000, 1_800_000]);
  assert.equal(new Set(serials).size, 3);
  assert.deepEqual(
    events.map((e) => e.type),
    ['issued', 'issued', 'issued', 'stopped'],
  );
});

test('failures back off 1 s, 2 s, 4 s while the old files stay in place; success resets the backoff', async () => {
  const { clock, ca, cfg, readFile } = setup();
  const stop = new AbortController();
  const unavailable = () => new MeshcaError('unavailable', 'ca_unavailable', 'UNAVAILABLE: connection refused');
  let snapshot = '';
  let sleeps = 0;
  clock.onSleep = () => {
    sleeps++;
    const f = files(cfg.outDir);
    if (sleeps === 1) {
      snapshot = f.chain + f.key;
      ca.failures.push(unavailable(), unavailable(), unavailable());
    } else if (sleeps <= 4) {
      assert.equal(f.chain + f.key, snapshot, 'the last good certificate stays on disk during failures');
    } else if (sleeps === 5) {
      assert.notEqual(f.chain + f.key, snapshot);
      ca.failures.push(unavailable());
    } else stop.abort();
  };
  const events: AgentEvent[] = [];
  await runAgent(cfg, { client: ca, clock, random: () => 0.5, readFile, onEvent: (e) => events.push(e) }, stop.signal);
  assert.deepEqual(clock.sleeps, [1_800_000, 1_000, 2_000, 4_000, 1_800_000, 1_000]);
  const failed = events.filter((e) => e.type === 'failed');
  assert.equal(failed.length, 4);
  assert.match(failed[0].type === 'failed' ? failed[0].error.message : '', /UNAVAILABLE: connection refused/);
});

test('an agent that cannot reach the CA at start keeps retrying with capped backoff', async () => {
  const { clock, ca, cfg, readFile } = setup();
  for (let i = 0; i < 12; i++) ca.failures.push(new MeshcaError('unavailable', 'x', 'UNAVAILABLE: down'));
  const stop = new AbortController();
  clock.onSleep = () => {
    if (clock.sleeps.length === 13) stop.abort();
  };
  await runAgent(cfg, { client: ca, clock, random: () => 0.5, readFile }, stop.signal);
  assert.deepEqual(
    clock.sleeps.slice(0, 12),
    [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map((s) => s * 1000),
  );
  assert.equal(clock.sleeps[12], 1_800_000);
});

test('--identity asks for another SPIFFE ID; a CA that does not grant it refuses and nothing is written', async () => {
  const { clock, ca, cfg, readFile } = setup({ identity: 'spiffe://cluster.local/ns/shop/sa/admin' });
  await assert.rejects(issueOnce(cfg, { client: ca, now: clock.now, readFile }), {
    code: 'permission_denied',
    message: /requests identity spiffe:\/\/cluster.local\/ns\/shop\/sa\/admin/,
  });
  assert.deepEqual(parseCsr(ca.calls[0].req.csr).sans.uris, ['spiffe://cluster.local/ns/shop/sa/admin']);
  assert.deepEqual(readdirSync(cfg.outDir), []);
});

test("the real clock's sleep between renewals leaves no abort listener on the agent's signal", async () => {
  const ac = new AbortController();
  for (let i = 0; i < 15; i++) await systemClock.sleep(1, ac.signal);
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
});
