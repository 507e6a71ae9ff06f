import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePem } from '../pki/pem.js';
import { makeSigner, opensslCsr } from '../pki/fast/testing.js';
import { signKubeCsr } from './sign.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';
const policy = { defaultTtlSeconds: 3600, maxTtlSeconds: 86400, trustDomains: ['cluster.local'] };
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

test('the Kubernetes signer refuses CSRs asking for keyCertSign or cRLSign as well as CA:TRUE', () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const req = (extra: string[]) => ({
    csrPem: encodePem('CERTIFICATE REQUEST', opensslCsr(ec, ['-addext', `subjectAltName=URI:${ID}`, ...extra])),
    usages: ['digital signature', 'client auth'],
    now,
  });
  for (const ku of ['keyUsage=critical,digitalSignature,keyCertSign', 'keyUsage=cRLSign', 'basicConstraints=critical,CA:TRUE']) {
    assert.throws(() => signKubeCsr(signer, req(['-addext', ku]), policy), { code: 'invalid_argument', reason: 'ca_not_allowed' }, ku);
  }
  const ok = signKubeCsr(signer, req(['-addext', 'keyUsage=digitalSignature']), policy);
  assert.equal(ok.cert.isCA, false);
});
