import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { startServer } from '../../../src/server/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, workloadCsr } from './helpers.js';

/** The serving certificate the gRPC port presents, checked against our root for the istiod name. */
function servingCert(port: number, rootPem: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: rootPem, servername: 'istiod.istio-system.svc', ALPNProtocols: ['h2'] }, () => {
      const c = new X509Certificate(s.getPeerCertificate().raw);
      s.end();
      resolve(c);
    });
    s.on('error', reject);
  });
}

test('the serving certificate is renewed at half life without a restart', async () => {
  const dir = tempDir('meshca-serve-renew-');
  const s = await startServer({ dir: dir.path, grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', logLevel: 'silent', servingTtl: '3s' });
  try {
    const first = await servingCert(s.grpcPort, s.rootPem);
    assert.ok(first.checkHost('istiod.istio-system.svc') && first.checkIP('127.0.0.1') && first.checkHost('localhost'));
    await new Promise((r) => setTimeout(r, 2000));
    const second = await servingCert(s.grpcPort, s.rootPem);
    assert.notEqual(second.serialNumber, first.serialNumber, 'a new certificate after half of the 3 s lifetime');
    assert.ok(new Date(second.validTo) > new Date(first.validTo));
    const c = IstioCaClient.tls(s.grpcAddress, s.rootPem, { serverName: 'localhost' });
    const token = await s.issueToken({ namespace: 'a', serviceAccount: 'b' });
    assert.equal((await c.createCertificate({ csr: workloadCsr(ID('a', 'b')).csr }, { token })).certChain.length, 3);
    c.close();
  } finally {
    await s.close();
    dir.cleanup();
  }
});
