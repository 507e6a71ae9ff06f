import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseGoDuration, formatGoDuration } from './duration.js';
import { loadManifests } from './load.js';
import { MeshcaError } from '../pki/errors.js';
import { expandShellVars, SEED_VARS } from '../../test/fixtures/manifests/expand.js';

const FIXTURES = new URL('../../../test/fixtures/manifests/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');

function problems(text: string): string[] {
  try {
    loadManifests(text, 'test.yaml');
  } catch (e) {
    assert.ok(e instanceof MeshcaError);
    assert.equal(e.code, 'invalid_argument');
    return e.message.split('\n');
  }
  assert.fail('expected the manifest to be refused');
}

describe('loadManifests', () => {
  it('accepts the seed AWSPCAIssuer + Certificate pair as written', () => {
    const docs = loadManifests(expandShellVars(fixture('istio-ca-awspca.yaml'), SEED_VARS), 'seed');
    assert.deepEqual(
      docs.map((d) => d.object.kind.kind),
      ['AWSPCAIssuer', 'Certificate'],
    );
    const cert = docs[1].object.resource!;
    assert.equal(cert.metadata.namespace, 'istio-system');
    assert.deepEqual((cert.spec as { dnsNames: string[] }).dnsNames, ['*.istiod-1-20']);
  });

  it('accepts the seed RootTrustPolicy', () => {
    const [d] = loadManifests(fixture('root-trust-policy.yaml'), 'seed');
    assert.equal(d.object.kind.kind, 'RootTrustPolicy');
  });

  it('refuses an unknown kind and names the kinds it knows', () => {
    const p = problems(fixture('bad-unknown-kind.yaml'));
    assert.match(p[0], /document 1 \(Certificat .*oops\): kind: unknown kind "Certificat"/);
    assert.match(p[0], /Certificate, CertificateRequest/);
  });

  it('reports every bad field with its path: unknown field, wrong type, duration < 1h', () => {
    const p = problems(fixture('bad-fields.yaml'));
    assert.ok(
      p.some((l) => /spec\.privateKey\.sizee: unknown field$/.test(l)),
      p.join('\n'),
    );
    assert.ok(
      p.some((l) => /spec\.isCA: expected boolean, received string/.test(l)),
      p.join('\n'),
    );
    assert.ok(
      p.some((l) => /spec\.duration: certificate duration 30m must be at least 1h0m0s/.test(l)),
      p.join('\n'),
    );
  });

  it('refuses renewBefore >= duration on the renewBefore field', () => {
    const p = problems(fixture('bad-renew-before.yaml'));
    assert.deepEqual(p, [
      'test.yaml: document 1 (Certificate istio-system/bad): spec.renewBefore: certificate duration 24h0m0s must be greater than renewBefore 24h0m0s',
    ]);
  });

  it('names cert-manager fields and issuer types meshca does not implement', () => {
    const p = problems(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: le}
spec:
  acme: {server: https://acme.example}
`);
    assert.ok(
      p.some((l) => /spec\.acme: the cert-manager issuer type "acme" is not supported/.test(l)),
      p.join('\n'),
    );
  });

  it('refuses a wrong apiVersion, saying which one is served', () => {
    const p = problems('apiVersion: cert-manager.io/v1alpha2\nkind: Certificate\nmetadata: {name: x}\nspec: {}\n');
    assert.match(p[0], /kind Certificate is not served at apiVersion "cert-manager.io\/v1alpha2"; use cert-manager.io\/v1/);
  });

  it('points at the line of a YAML syntax error', () => {
    const p = problems('apiVersion: v1\nkind: [unclosed\n');
    assert.match(p[0], /document 1 \(line \d+, column \d+\): YAML syntax error/);
  });

  it('requires a name and refuses unknown top-level fields', () => {
    const p = problems('apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {}\nspecs: {}\n');
    assert.ok(
      p.some((l) => /metadata\.name: expected string, received undefined/.test(l)),
      p.join('\n'),
    );
    assert.ok(
      p.some((l) => /: specs: unknown field/.test(l)),
      p.join('\n'),
    );
  });

  it('refuses duplicates, accepts a List and a Secret with stringData', () => {
    assert.match(
      problems(
        'apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {name: a}\n---\napiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {name: a}\n',
      )[0],
      /duplicates document 1/,
    );
    const docs = loadManifests(
      `apiVersion: v1
kind: List
items:
- apiVersion: meshca.io/v1alpha1
  kind: Cluster
  metadata: {name: a}
- apiVersion: v1
  kind: Secret
  metadata: {name: creds, namespace: istio-system}
  stringData: {AWS_ACCESS_KEY_ID: AKIA}
  data: {AWS_SECRET_ACCESS_KEY: c2VjcmV0}
`,
      'list',
    );
    assert.equal(docs.length, 2);
    assert.equal(docs[1].object.secret?.data.AWS_SECRET_ACCESS_KEY.toString(), 'secret');
    assert.equal(docs[1].object.secret?.data.AWS_ACCESS_KEY_ID.toString(), 'AKIA');
  });

  it('validates RootTrustPolicy options with paths', () => {
    const p = problems(`apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata: {name: r, namespace: gloo-mesh}
spec:
  config:
    mgmtServerCa: {}
    intermediateCertOptions: {ttlDays: 0, secretRotationGracePeriodRatio: 1.5, rsaKeySizeBytes: 1024}
`);
    const text = p.join('\n');
    assert.match(text, /spec\.config\.mgmtServerCa: set exactly one of generated or secretRef/);
    assert.match(text, /spec\.config\.intermediateCertOptions\.ttlDays: must be at least 1 day/);
    assert.match(text, /secretRotationGracePeriodRatio: must be between 0 and 1/);
    assert.match(text, /rsaKeySizeBytes: must be 2048, 3072 or 4096/);
  });
});

describe('Go durations', () => {
  it('parses and prints the forms Kubernetes manifests use', () => {
    assert.equal(parseGoDuration('2160h'), 2160 * 3_600_000);
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('720h0m0s'), 720 * 3_600_000);
    assert.equal(parseGoDuration('1.5h'), 5_400_000);
    assert.equal(parseGoDuration('30d'), undefined);
    assert.equal(parseGoDuration(''), undefined);
    assert.equal(formatGoDuration(2160 * 3_600_000), '2160h0m0s');
    assert.equal(formatGoDuration(90_000), '1m30s');
  });
});
