import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, resolveConfig } from './index.js';
import { issuerSecretRef } from './issuer-secret.js';

const ARN = 'arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-0000-1111-2222-333344445555';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'meshca-config-issuer-secret-'));
}

test('issuerSecret from the YAML file, env and flag, as NAMESPACE/NAME', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'meshca.yaml'), 'issuerSecret: istio-system/istio-ca\n');
  const fromFile = loadConfig({ env: {}, flags: { dir } });
  assert.equal(fromFile.issuerSecret, 'istio-system/istio-ca');
  assert.deepEqual(issuerSecretRef(fromFile.issuerSecret!), { namespace: 'istio-system', name: 'istio-ca' });
  const fromEnv = loadConfig({ env: { MESHCA_ISSUER_SECRET: 'mesh/ca.v2' }, flags: { dir: tmp() } });
  assert.deepEqual(issuerSecretRef(fromEnv.issuerSecret!), { namespace: 'mesh', name: 'ca.v2' });
  assert.equal(resolveConfig({ dir }).issuerSecret, undefined, 'unset by default');
});

test('a malformed reference names the field and the expected shape', () => {
  for (const bad of ['istio-ca', 'istio-system/', 'Istio/ca', 'a/b/c']) {
    assert.throws(
      () => resolveConfig({ dir: tmp(), issuerSecret: bad }),
      /field "issuerSecret": expected NAMESPACE\/NAME of a Secret, such as istio-system\/istio-ca/,
      bad,
    );
  }
});

test('combinations that make no sense are refused with the reason', () => {
  const dir = tmp();
  const issuerSecret = 'istio-system/istio-ca';
  assert.throws(
    () => resolveConfig({ dir, issuerSecret, upstream: 'awspca', awspcaArn: ARN }),
    /field "issuerSecret": the Secret's key pair is the issuing CA; upstream awspca would be a second one/,
  );
  assert.throws(
    () => resolveConfig({ dir, issuerSecret, storeUrl: 'postgres://meshca@db/meshca' }),
    /field "issuerSecret": replicas on PostgreSQL share the CA/,
  );
  assert.throws(() => resolveConfig({ dir, issuerSecret, stateBackend: 'secret' }), /field "issuerSecret": the state Secret holds/);
  assert.throws(() => resolveConfig({ dir, issuerSecretSource: 'kubernetes' }), /field "issuerSecretSource": only used with issuerSecret/);
  assert.throws(
    () => resolveConfig({ dir, issuerSecret, issuerSecretSource: 'cluster' as never }),
    /field "issuerSecretSource": .*state-dir.*kubernetes/,
  );
  assert.equal(resolveConfig({ dir, issuerSecret }).issuerSecretSource, 'state-dir');
  // Workers and the controllers are fine: workers reload when the primary does.
  const c = resolveConfig({ dir, issuerSecret, workers: 2, controllers: false });
  assert.equal(c.workers, 2);
});
