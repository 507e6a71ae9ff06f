import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Certificate } from '../resources/certmanager.js';
import { startReconcileLoop } from './loop.js';
import type { ReconcileReport } from './reconcile.js';
import { gen, withDuration, withPrivateKey } from './testing/gen.js';
import { harness, type Harness } from './testing/harness.js';

const harnesses: Harness[] = [];
after(() => harnesses.forEach((h) => h.cleanup()));

describe('startReconcileLoop', () => {
  it('issues at once, wakes at the next renewal, and answers trigger()', async () => {
    const h = harness(() => new Date());
    harnesses.push(h);
    await h.apply(gen.selfSignedIssuer(), gen.certificate('web', withDuration('1h'), withPrivateKey({ algorithm: 'ECDSA' })));
    const reports: ReconcileReport[] = [];
    let wake: () => void = () => {};
    const nextReport = () => new Promise<void>((r) => (wake = r));
    const first = nextReport();
    const loop = startReconcileLoop(h, { maxIntervalMs: 60_000, unref: false, onReport: (r) => (reports.push(r), wake()) });
    await first;
    assert.ok(reports[0].events.some((e) => e.action === 'issued'));
    const cert = await h.get<Certificate>('Certificate', 'web');
    assert.equal(reports[0].nextWakeup?.toISOString().replace('.000Z', 'Z'), cert.status?.renewalTime);
    const p = nextReport();
    loop.trigger();
    await p;
    assert.deepEqual(reports[1].events, []);
    await loop.stop();
  });
});
