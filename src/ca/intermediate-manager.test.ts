import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyChain } from '../pki/chain.js';
import { parseCertificate } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError } from '../pki/errors.js';
import { issueWorkloadCertificate } from '../pki/issue.js';
import { generateKeyPair } from '../pki/keys.js';
import type { SignIntermediateRequest, Upstream, UpstreamChain } from '../upstream/index.js';
import { createLocalUpstream } from '../upstream/local/index.js';
import { IntermediateManager, type IntermediateEvent } from './intermediate-manager.js';
import { CaState } from './state.js';

const DAY = 86_400_000;
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/web';

class FakeClock {
  constructor(public t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** The local upstream, on the fake clock, with switchable failures and a call counter. */
class FlakyUpstream implements Upstream {
  readonly type = 'test';
  readonly source = 'test upstream';
  calls = 0;
  failing = false;
  constructor(private readonly inner: Upstream) {}
  check(): Promise<void> {
    return this.inner.check();
  }
  async signIntermediate(req: SignIntermediateRequest): Promise<UpstreamChain> {
    this.calls++;
    if (this.failing) throw new MeshcaError('unavailable', 'upstream_down', 'upstream unreachable');
    return this.inner.signIntermediate(req);
  }
  roots() {
    return this.inner.roots();
  }
}

const leafCsr = () => createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [SPIFFE] } }).pem;

describe('IntermediateManager', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshca-im-'));
    new CaState(dir).initRoot({ alg: 'ec-p256', subject: { organization: ['corp'] }, now: new Date() });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function make(o: { renewBeforeSeconds?: number; ttlSeconds?: number } = {}) {
    const clock = new FakeClock(Date.now());
    const upstream = new FlakyUpstream(createLocalUpstream({ type: 'local', dir }, { now: () => clock.now() }));
    const events: IntermediateEvent[] = [];
    const m = new IntermediateManager({
      upstream,
      ttlSeconds: o.ttlSeconds ?? 10 * 86_400,
      renewBeforeSeconds: o.renewBeforeSeconds,
      subject: { organization: ['corp'], commonName: 'mesh intermediate' },
      clock,
      manualSchedule: true,
      retry: { initialDelayMs: 60_000, maxDelayMs: 600_000 },
      onEvent: (e) => events.push(e),
    });
    return { clock, upstream, m, events };
  }

  it('renews renewBefore ahead of expiry (default a third of the lifetime) and swaps the signer', async () => {
    const { clock, upstream, m } = make();
    await m.start();
    const first = m.current();
    const s1 = m.status();
    assert.equal(s1.generation, 1);
    assert.ok(s1.ready);
    const life = s1.notAfter!.getTime() - s1.notBefore!.getTime();
    assert.equal(s1.nextRenewal!.getTime(), s1.notAfter!.getTime() - life / 3);
    clock.t = s1.nextRenewal!.getTime() - 1000;
    await m.tick();
    assert.equal(upstream.calls, 1, 'not due yet');
    clock.advance(2000);
    await m.tick();
    assert.equal(upstream.calls, 2);
    const second = m.current();
    assert.notEqual(second.cert.serialHex, first.cert.serialHex);
    assert.equal(m.status().generation, 2);
    const leaf = m.sign({ csr: leafCsr(), identities: [SPIFFE], ttlSeconds: 3600 });
    const chain = leaf.chain.map((p) => parseCertificate(p));
    assert.ok(verifyChain(chain, { now: clock.now(), roots: m.roots(), leafIsEndEntity: true }).ok);
  });

  it('keeps signing with the current intermediate while the upstream fails, backs off, and recovers', async () => {
    const { clock, upstream, m, events } = make({ renewBeforeSeconds: 5 * 86_400 });
    await m.start();
    const serial = m.current().cert.serialHex;
    upstream.failing = true;
    clock.advance(6 * DAY);
    await m.tick();
    const s = m.status();
    assert.equal(s.lastError?.reason, 'upstream_down');
    assert.equal(s.lastError?.attempts, 1);
    assert.ok(
      s.nextRenewal!.getTime() >= clock.t + 30_000 && s.nextRenewal!.getTime() <= clock.t + 60_000,
      'first retry after half to all of initialDelayMs',
    );
    assert.equal(m.current().cert.serialHex, serial, 'still signing with the old intermediate');
    // The renewal window's start stays put while retries move nextRenewal (the renewal-window alert reads it).
    assert.equal(s.renewFrom!.getTime(), s.notAfter!.getTime() - 5 * DAY);
    assert.ok(m.sign({ csr: leafCsr(), identities: [SPIFFE], ttlSeconds: 60 }).certPem);
    await m.tick();
    assert.equal(upstream.calls, 2, 'no retry before the backoff elapses');
    clock.advance(60_000);
    await m.tick();
    assert.equal(m.status().lastError?.attempts, 2);
    upstream.failing = false;
    clock.advance(600_000);
    await m.tick();
    assert.equal(m.status().lastError, undefined);
    assert.notEqual(m.current().cert.serialHex, serial);
    assert.equal(m.status().renewFrom!.getTime(), m.status().notAfter!.getTime() - 5 * DAY, "the new intermediate's window");
    assert.ok(m.status().renewFrom!.getTime() > clock.t);
    assert.deepEqual(
      events.map((e) => e.type),
      ['renewed', 'renewal_failed', 'renewal_failed', 'renewed'],
    );
  });

  it('lets a request that took the old signer finish with it while the next one gets the new signer', async () => {
    const { clock, m } = make();
    await m.start();
    const taken = m.current();
    clock.t = m.status().nextRenewal!.getTime();
    await m.tick();
    const fresh = m.current();
    assert.notEqual(fresh, taken);
    for (const signer of [taken, fresh]) {
      const now = clock.now();
      const out = issueWorkloadCertificate(signer, { csr: leafCsr(), identities: [SPIFFE], ttlSeconds: 60, now });
      assert.ok(
        verifyChain(
          out.chain.map((p) => parseCertificate(p)),
          { now, roots: m.roots() },
        ).ok,
      );
    }
  });

  it('adopts a valid initial bundle without calling the upstream, and fails start without one when the upstream is down', async () => {
    const a = make();
    await a.m.start();
    const bundle = a.m.bundle()!;
    const b = make();
    const m = new IntermediateManager({
      upstream: b.upstream,
      ttlSeconds: 86_400,
      subject: { commonName: 'x' },
      clock: b.clock,
      manualSchedule: true,
      initial: bundle,
    });
    await m.start();
    assert.equal(b.upstream.calls, 0);
    assert.equal(m.current().cert.serialHex, bundle.caCert.serialHex);
    const c = make();
    c.upstream.failing = true;
    await assert.rejects(c.m.start(), (e: unknown) => e instanceof MeshcaError && e.reason === 'upstream_down');
    assert.throws(
      () => c.m.current(),
      (e: unknown) => e instanceof MeshcaError && e.code === 'unavailable' && /upstream unreachable/.test(e.message),
    );
    assert.equal(c.m.status().ready, false);
  });

  it('does not loop when the upstream gives a shorter life than renewBefore', async () => {
    const { clock, upstream, m } = make({ ttlSeconds: 2 * 86_400, renewBeforeSeconds: 5 * 86_400 });
    await m.start();
    await m.tick();
    assert.equal(upstream.calls, 1);
    const s = m.status();
    assert.ok(s.nextRenewal!.getTime() > clock.t, 'renewal is in the future');
  });
});
