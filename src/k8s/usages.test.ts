import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OID } from '../pki/oids.js';
import { grantedTtl } from './sign.js';
import { WORKLOAD_USAGES, mapUsages } from './usages.js';

describe('Kubernetes usages -> X.509', () => {
  it('maps the workload usages to key usage bits and EKUs', () => {
    assert.deepEqual(mapUsages(WORKLOAD_USAGES), {
      keyUsages: ['digitalSignature', 'keyEncipherment'],
      extKeyUsages: [OID.serverAuth, OID.clientAuth],
    });
    assert.deepEqual(mapUsages(['signing', 'digital signature']).keyUsages, ['digitalSignature'], '"signing" is digital signature, once');
    assert.deepEqual(mapUsages(['client auth']), { keyUsages: [], extKeyUsages: [OID.clientAuth] });
  });

  it('refuses what a workload signer must not grant, naming the usage and why', () => {
    for (const [u, why] of [
      ['cert sign', /CA/],
      ['crl sign', /revocation/],
      ['any', /every extended key usage/],
      ['code signing', /not a service-to-service/],
      ['bogus', /not a Kubernetes key usage/],
    ] as const) {
      assert.throws(
        () => mapUsages(['digital signature', u]),
        (e: { reason: string; message: string }) => {
          assert.equal(e.reason, 'unsupported_usage');
          assert.match(e.message, new RegExp(`"${u.replace('/', '\\/')}"`));
          assert.match(e.message, why);
          return true;
        },
      );
    }
    assert.throws(() => mapUsages([]), /empty/);
  });
});

describe('grantedTtl', () => {
  const p = { defaultTtlSeconds: 86_400, maxTtlSeconds: 7 * 86_400, trustDomains: ['cluster.local'] };
  it('honours expirationSeconds, caps it, defaults without it, refuses below 600 s', () => {
    assert.equal(grantedTtl(3600, p), 3600);
    assert.equal(grantedTtl(600, p), 600);
    assert.equal(grantedTtl(365 * 86_400, p), 7 * 86_400);
    assert.equal(grantedTtl(undefined, p), 86_400);
    assert.equal(grantedTtl(undefined, { ...p, maxTtlSeconds: 3600 }), 3600, 'the default is capped too');
    assert.throws(
      () => grantedTtl(599, p),
      (e: { reason: string }) => e.reason === 'bad_expiration',
    );
  });
});
