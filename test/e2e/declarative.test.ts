import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { secretManifest } from '../../src/ca/bundle.js';
import { CaState } from '../../src/ca/state.js';
import { parseCertificates } from '../../src/pki/certificate.js';
import { startPcaApi, type PcaApiHandle } from '../../src/server/pca/index.js';
import { expandShellVars } from '../fixtures/manifests/expand.js';
import { openssl, opensslRoot, opensslVerify } from '../helpers/openssl.js';
import { REPO_ROOT, runMeshca, type RunResult, ok } from '../helpers/run.js';
import { snapshotTree, tempDir } from '../helpers/tmp.js';

const MANIFESTS = join(REPO_ROOT, 'test', 'fixtures', 'manifests');
const DAY = 86_400_000;
const HOUR = 3_600_000;

function yamlOf(r: RunResult): {
  status?: Record<string, unknown> & { conditions?: { type: string; status: string; reason: string; message: string }[] };
} {
  return parseYaml(r.stdout);
}

describe('declarative PKI: the cert-manager seed (AWSPCAIssuer + Certificate) against meshca pca-api', () => {
  const tmp = tempDir('meshca-decl-pca-');
  const dir = join(tmp.path, 'state');
  let api: PcaApiHandle;
  let pcaRoot: string;
  // The PCA-compatible API runs in this process on a clock the test moves along with `--at`.
  let pcaNow = new Date();
  let env: Record<string, string | undefined>;
  let manifest: string;
  const meshca = (args: string[]) => runMeshca([...args, '--dir', dir], { env, timeoutMs: 60_000 });

  before(async () => {
    const pcaState = new CaState(join(tmp.path, 'pca'));
    pcaState.initRoot({
      alg: 'ec-p256',
      subject: { organization: ['Example Corp'], commonName: 'AWS PCA root' },
      now: new Date(Date.now() - DAY),
    });
    pcaRoot = pcaState.rootCertPath;
    api = await startPcaApi({ state: pcaState, addr: '127.0.0.1:0', insecure: true, now: () => pcaNow });
    env = {
      AWS_ENDPOINT_URL_ACM_PCA: api.url,
      AWS_ACCESS_KEY_ID: 'AKIDDECLARATIVE01',
      AWS_SECRET_ACCESS_KEY: 'not-checked-by-an-insecure-pca-api',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(tmp.path, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(tmp.path, 'aws-credentials'),
      AWS_PROFILE: undefined,
      AWS_SESSION_TOKEN: undefined,
      AWS_ENDPOINT_URL: undefined,
    };
    const text = readFileSync(join(MANIFESTS, 'istio-ca-awspca.yaml'), 'utf8');
    manifest = join(tmp.path, 'istio-ca.yaml');
    writeFileSync(manifest, expandShellVars(text, { ISTIO_CA_ARN: api.cas()[0].arn, CA_REGION: 'us-east-1', ISTIO_REVISION: '1-20' }));
  });
  after(async () => {
    await api?.close();
    tmp.cleanup();
  });

  it('applies as-is: the issuer is verified, the certificate Ready, cacerts a plugin CA chained to the PCA root', async () => {
    const r = ok(await meshca(['apply', '-f', manifest]), 'apply');
    assert.equal(
      r.stdout,
      'awspcaissuer.awspca.cert-manager.io/aws-pca-issuer-istio created\ncertificate.cert-manager.io/istio-ca created\n',
    );
    const issuer = yamlOf(ok(await meshca(['get', 'awspcaissuer', 'aws-pca-issuer-istio', '-o', 'yaml']), 'get issuer'));
    const ready = issuer.status?.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason, ready?.message], ['True', 'Verified', 'Issuer verified']);
    const table = ok(await meshca(['get', 'certificate', 'istio-ca']), 'get certificate').stdout;
    assert.match(table, /^NAMESPACE\s+NAME\s+READY\s+SECRET\s+ISSUER\s+REVISION\s+TIME LEFT\s+RENEWAL TIME\s+RENEWS IN\s+AGE\n/);
    assert.match(table, /istio-system\s+istio-ca\s+True\s+cacerts\s+aws-pca-issuer-istio\s+1\s+29d\s+\S+Z\s+14d/);
    const secret = join(dir, 'secrets', 'istio-system', 'cacerts');
    for (const f of ['tls.crt', 'tls.key', 'ca.crt']) assert.ok(existsSync(join(secret, f)), f);
    assert.equal(readFileSync(join(secret, 'ca.crt'), 'utf8'), readFileSync(pcaRoot, 'utf8'));
    const v = opensslVerify(join(secret, 'ca.crt'), join(secret, 'tls.crt'));
    assert.equal(v.code, 0, v.stderr + v.stdout);
    const text = openssl(['x509', '-in', join(secret, 'tls.crt'), '-noout', '-text']).stdout;
    assert.match(text, /CA:TRUE/);
    assert.match(text, /DNS:\*\.istiod-1-20/);
    assert.match(text, /O = cluster.local, O = cert-manager, CN = istio-ca/);
    // istiod would accept it: meshca's own plugin-CA check on the cert-manager layout.
    ok(await runMeshca(['verify', '--ca', '--root', join(secret, 'ca.crt'), join(secret, 'tls.crt')]), 'verify --ca');
    const crs = ok(await meshca(['get', 'certificaterequests', '-n', 'istio-system']), 'get cr').stdout;
    assert.match(crs, /istio-ca-1\s+True\s+True\s+aws-pca-issuer-istio/);
  });

  it('applying the same file twice prints unchanged and changes no file', async () => {
    const before = snapshotTree(dir);
    const r = ok(await meshca(['apply', '-f', manifest]), 'second apply');
    assert.equal(
      r.stdout,
      'awspcaissuer.awspca.cert-manager.io/aws-pca-issuer-istio unchanged\ncertificate.cert-manager.io/istio-ca unchanged\n',
    );
    assert.deepEqual(snapshotTree(dir), before);
  });

  it('reconcile --at ... --dry-run shows what would renew and writes nothing', async () => {
    const before = snapshotTree(dir);
    const quiet = ok(await meshca(['reconcile', '--at', '+14d', '--dry-run']), 'dry run 14d').stdout;
    assert.doesNotMatch(quiet, /would-renew/);
    const r = ok(await meshca(['reconcile', '--at', '+16d', '--dry-run']), 'dry run 16d').stdout;
    assert.match(r, /^dry run at .*: nothing was written$/m);
    assert.match(r, /Certificate istio-system\/istio-ca: would-renew: Renewing certificate as renewal was scheduled at /);
    assert.deepEqual(snapshotTree(dir), before);
  });

  it('renews at renewalTime under an advanced clock: revision 2, a new serial, the chain still verifies', async () => {
    const first = yamlOf(ok(await meshca(['get', 'certificate', 'istio-ca', '-o', 'yaml']), 'get'));
    const renewalTime = first.status!.renewalTime as string;
    const serial1 = first.status!.serialNumber;
    pcaNow = new Date(renewalTime);
    const r = ok(await meshca(['reconcile', '--at', renewalTime, '--allow-future-material']), 'reconcile at renewal time').stdout;
    assert.match(r, /Certificate istio-system\/istio-ca: renewed: revision 2/);
    const second = yamlOf(ok(await meshca(['get', 'certificate', 'istio-ca', '-o', 'yaml']), 'get'));
    assert.equal(second.status!.revision, 2);
    assert.notEqual(second.status!.serialNumber, serial1);
    // Issued at the advanced time (PCA back-dates NotBefore by up to an hour for clock skew).
    const nb = Date.parse(second.status!.notBefore as string);
    assert.ok(nb <= Date.parse(renewalTime) && nb >= Date.parse(renewalTime) - 2 * HOUR, `${second.status!.notBefore} vs ${renewalTime}`);
    const secret = join(dir, 'secrets', 'istio-system', 'cacerts');
    const leaf = parseCertificates(readFileSync(join(secret, 'tls.crt'), 'utf8'))[0];
    assert.equal(leaf.serialHex, second.status!.serialNumber);
    const meta = JSON.parse(readFileSync(`${secret}.meta.json`, 'utf8'));
    assert.equal(meta.version, 2, 'the change marker the server watches moved');
    const again = ok(await meshca(['reconcile', '--at', renewalTime, '--allow-future-material']), 'reconcile again').stdout;
    assert.match(again, /^nothing to do at /m);
  });
});

describe('declarative PKI: bad manifests are refused with the path of the bad field, and change nothing', () => {
  const tmp = tempDir('meshca-decl-bad-');
  const dir = join(tmp.path, 'state');
  after(() => tmp.cleanup());

  const cases: [string, RegExp][] = [
    ['bad-unknown-kind.yaml', /bad-unknown-kind\.yaml: document 1 \(Certificat oops\): kind: unknown kind "Certificat"/],
    ['bad-fields.yaml', /spec\.privateKey\.sizee: unknown field/],
    ['bad-fields.yaml', /spec\.isCA: expected boolean, received string/],
    ['bad-fields.yaml', /spec\.duration: certificate duration 30m must be at least 1h0m0s/],
    ['bad-renew-before.yaml', /spec\.renewBefore: certificate duration 24h0m0s must be greater than renewBefore 24h0m0s/],
  ];
  for (const [file, re] of cases) {
    it(`${file}: ${re.source.slice(0, 60)}`, async () => {
      const r = await runMeshca(['apply', '-f', join(MANIFESTS, file), '--dir', dir]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '');
      assert.equal(existsSync(join(dir, 'resources')), false);
    });
  }

  it('a file with one bad document applies none of them', async () => {
    const f = join(tmp.path, 'mixed.yaml');
    writeFileSync(
      f,
      `${readFileSync(join(MANIFESTS, 'selfsigned-ca.yaml'), 'utf8')}\n---\n${readFileSync(join(MANIFESTS, 'bad-renew-before.yaml'), 'utf8')}`,
    );
    const r = await runMeshca(['apply', '-f', f, '--dir', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /document 5 \(Certificate istio-system\/bad\)/);
    assert.equal(existsSync(join(dir, 'resources')), false);
  });
});

describe('declarative PKI: the Gloo RootTrustPolicy seed over two clusters', () => {
  const tmp = tempDir('meshca-decl-rtp-');
  const dir = join(tmp.path, 'state');
  const meshca = (args: string[]) => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  const bundle = (c: string) => join(dir, 'clusters', c, 'cacerts');
  after(() => tmp.cleanup());

  function verifyBundle(c: string, at?: Date): void {
    const extra = at ? ['-attime', String(Math.floor(at.getTime() / 1000))] : [];
    const v = opensslVerify(join(bundle(c), 'root-cert.pem'), join(bundle(c), 'ca-cert.pem'), join(bundle(c), 'cert-chain.pem'), extra);
    assert.equal(v.code, 0, `${c}: ${v.stderr}${v.stdout}`);
  }

  it('issues a cacerts intermediate per cluster from the root in secretRef; compare-roots passes', async () => {
    // Step 1 of the seed: a root made with openssl, stored as the my-root-trust-policy.gloo-mesh secret.
    const root = opensslRoot(tmp.path, { keySpec: 'rsa:2048', subj: '/O=Istio/CN=Solo Root CA' });
    const pem = readFileSync(root.cert, 'utf8');
    const files = [
      { name: 'ca-cert.pem', data: pem },
      { name: 'ca-key.pem', data: readFileSync(root.key, 'utf8') },
      { name: 'cert-chain.pem', data: pem },
      { name: 'root-cert.pem', data: pem },
    ];
    writeFileSync(join(tmp.path, 'secret.yaml'), secretManifest(files, { name: 'my-root-trust-policy.gloo-mesh', namespace: 'gloo-mesh' }));
    assert.match(
      ok(await meshca(['apply', '-f', join(tmp.path, 'secret.yaml')]), 'apply secret').stdout,
      /^secret\/my-root-trust-policy.gloo-mesh created$/m,
    );
    ok(await meshca(['cluster', 'add', 'cluster1', '--no-reconcile']), 'cluster add 1');
    ok(await meshca(['cluster', 'add', 'cluster2', '--no-reconcile']), 'cluster add 2');
    const r = ok(await meshca(['apply', '-f', join(MANIFESTS, 'root-trust-policy.yaml')]), 'apply rtp');
    assert.equal(r.stdout, 'roottrustpolicy.admin.gloo.solo.io/root-trust-policy created\n');
    for (const c of ['cluster1', 'cluster2']) {
      for (const f of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem'])
        assert.ok(existsSync(join(bundle(c), f)), `${c}/${f}`);
      assert.equal(readFileSync(join(bundle(c), 'root-cert.pem'), 'utf8'), pem);
      verifyBundle(c);
      const text = openssl(['x509', '-in', join(bundle(c), 'ca-cert.pem'), '-noout', '-text']).stdout;
      assert.match(text, /Public-Key: \(4096 bit\)/, 'rsaKeySizeBytes defaults to 4096 bits');
      assert.match(text, /O = gloo-mesh/);
    }
    ok(await runMeshca(['compare-roots', bundle('cluster1'), bundle('cluster2')]), 'compare-roots');
    const got = ok(await meshca(['get', 'rtp']), 'get rtp').stdout;
    assert.match(got, /gloo-mesh\s+root-trust-policy\s+ACCEPTED\s+cluster1,cluster2/);
  });

  it('renews each intermediate when a tenth of its one-day lifetime is left; roots still compare equal', async () => {
    const serial = (c: string) => parseCertificates(readFileSync(join(bundle(c), 'ca-cert.pem'), 'utf8'))[0].serialHex;
    const before = [serial('cluster1'), serial('cluster2')];
    const early = ok(await meshca(['reconcile', '--at', '+21h', '--allow-future-material']), 'reconcile +21h').stdout;
    assert.match(early, /nothing to do/);
    const at = new Date(Date.now() + 22 * HOUR);
    const r = ok(await meshca(['reconcile', '--at', at.toISOString(), '--allow-future-material']), 'reconcile +22h').stdout;
    assert.match(r, /RootTrustPolicy gloo-mesh\/root-trust-policy: renewed: cluster cluster1: renewal was scheduled at/);
    assert.match(r, /cluster cluster2: renewal was scheduled at/);
    assert.notEqual(serial('cluster1'), before[0]);
    assert.notEqual(serial('cluster2'), before[1]);
    verifyBundle('cluster1', at);
    verifyBundle('cluster2', at);
    // compare-roots checks chains at the real time, when these renewed intermediates are not yet
    // valid; compare the roots' fingerprints with openssl instead (chains verified -attime above).
    const fp = (c: string) => openssl(['x509', '-in', join(bundle(c), 'root-cert.pem'), '-noout', '-fingerprint', '-sha256']).stdout;
    assert.equal(fp('cluster1'), fp('cluster2'));
    assert.match(fp('cluster1'), /Fingerprint=/);
  });

  it("cluster remove withdraws that cluster's intermediate", async () => {
    const r = ok(await meshca(['cluster', 'remove', 'cluster2']), 'cluster remove');
    assert.match(r.stdout, /cluster.meshca.io "cluster2" deleted/);
    assert.equal(existsSync(bundle('cluster2')), false);
    assert.ok(existsSync(bundle('cluster1')));
    assert.match(ok(await meshca(['cluster', 'list']), 'cluster list').stdout, /cluster1/);
  });
});

describe('declarative PKI: selfSigned root, ca issuer, and an Istio cacerts in one apply', () => {
  const tmp = tempDir('meshca-decl-ss-');
  const dir = join(tmp.path, 'state');
  after(() => tmp.cleanup());

  it('settles the dependency chain in one apply and openssl verifies the result', async () => {
    const r = await runMeshca(['apply', '-f', join(MANIFESTS, 'selfsigned-ca.yaml'), '--dir', dir]);
    ok(r, 'apply');
    const got = ok(await runMeshca(['get', 'certs', '-n', 'istio-system', '--dir', dir]), 'get').stdout;
    assert.match(got, /istio-ca\s+True\s+cacerts\s+mesh-root\s+1/);
    assert.match(got, /mesh-root\s+True\s+mesh-root\s+selfsigned\s+1/);
    const s = join(dir, 'secrets', 'istio-system', 'cacerts');
    const v = opensslVerify(join(s, 'ca.crt'), join(s, 'tls.crt'));
    assert.equal(v.code, 0, v.stderr);
    const del = ok(await runMeshca(['delete', 'certificate', 'istio-ca', '--dir', dir]), 'delete').stdout;
    assert.equal(del, 'certificate.cert-manager.io "istio-ca" deleted\n');
    assert.ok(existsSync(join(s, 'tls.crt')), 'the secret outlives its Certificate, as in cert-manager');
    const crs = ok(await runMeshca(['get', 'cr', '--dir', dir]), 'get cr').stdout;
    assert.doesNotMatch(crs, /istio-ca-1/);
    const missing = await runMeshca(['get', 'certificate', 'istio-ca', '--dir', dir]);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /certificates.cert-manager.io "istio-ca" not found/);
  });
});
