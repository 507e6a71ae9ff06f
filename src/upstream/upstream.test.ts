import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaState } from '../ca/state.js';
import { verifyChain } from '../pki/chain.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import { createUpstream, upstreamTypes } from './index.js';

const csr = () =>
  createCsr({
    key: generateKeyPair('ec-p256').privateKey,
    subject: { country: ['US'], organization: ['mesh'], commonName: 'east' },
    isCA: true,
  }).pem;

describe('upstream registry, local and files upstreams', () => {
  let dir: string;
  let state: CaState;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshca-upstream-'));
    state = new CaState(join(dir, 'state'));
    state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'root' }, now: new Date() });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('knows local, files and awspca, and names the field at fault in a bad config', async () => {
    assert.deepEqual(upstreamTypes(), ['awspca', 'files', 'k8s-csr', 'local']);
    await assert.rejects(createUpstream({ type: 'vault' }), /upstream\.type "vault" is unknown; use one of awspca, files, k8s-csr, local/);
    await assert.rejects(createUpstream({ type: 'files', certFile: 'a.pem' }), /upstream\.keyFile: /);
    await assert.rejects(createUpstream({ type: 'awspca', arn: 'arn:x', colour: 'red' }), (e: unknown) => {
      const m = (e as Error).message;
      return /upstream\.arn: expected an ACM PCA CA ARN/.test(m) && /upstream\.colour: unknown field/.test(m);
    });
  });

  it('local: signs an intermediate with the root in the state directory, keeping the CSR subject as is', async () => {
    const up = await createUpstream({ type: 'local' }, { stateDir: state.dir });
    await up.check();
    const out = await up.signIntermediate({ csrPem: csr(), ttlSeconds: 86_400, pathLen: 0 });
    assert.equal(out.cert.subject, 'C = US, O = mesh, CN = east');
    assert.equal(out.cert.ext.basicConstraints?.pathLen, 0);
    const roots = await up.roots();
    assert.ok(verifyChain([out.cert, ...out.chain], { now: new Date(), roots }).ok);
  });

  it('files: signs from an intermediate plus its chain, and cuts the lifetime back to the issuer', async () => {
    const mid = state.createIntermediate('mid', { alg: 'ec-p256', days: 2, pathLen: 1, now: new Date() });
    writeFileSync(join(dir, 'mid.pem'), mid.caCert.pem);
    writeFileSync(join(dir, 'mid-key.pem'), privateKeyToPem(mid.caKey));
    writeFileSync(join(dir, 'chain.pem'), mid.roots[0].pem);
    const up = await createUpstream({
      type: 'files',
      certFile: join(dir, 'mid.pem'),
      keyFile: join(dir, 'mid-key.pem'),
      chainFile: join(dir, 'chain.pem'),
    });
    const out = await up.signIntermediate({ csrPem: csr(), ttlSeconds: 30 * 86_400 });
    assert.equal(out.cert.notAfter.getTime(), mid.caCert.notAfter.getTime());
    assert.equal(out.chain.length, 2);
    assert.ok(verifyChain([out.cert, ...out.chain], { now: new Date(), roots: await up.roots() }).ok);
    const noChain = await createUpstream({ type: 'files', certFile: join(dir, 'mid.pem'), keyFile: join(dir, 'mid-key.pem') });
    await assert.rejects(
      noChain.check(),
      (e: unknown) => e instanceof MeshcaError && /not a root; give the issuers up to the root in upstream\.chainFile/.test(e.message),
    );
  });
});
