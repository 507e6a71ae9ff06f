/**
 * Real kubectl against the API double as `node scripts/kube-api-double.mjs` starts it for a user
 * without a cluster (docs/kubernetes.md): discovery, create -f, certificate approve (a protobuf
 * PUT on /approval), wait and jsonpath on the certificate `meshca k8s-signer` writes, Secrets and
 * ConfigMaps, merge patches and resourceVersion conflicts. kubectl is installed by .ci/run; without
 * it this test fails rather than skips.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { REPO_ROOT } from '../helpers/run.js';
import { opensslVerify } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';
import { startK8sSigner } from './k8s-signer-process.js';

const tmp = tempDir('meshca-kubectl-double-');
const kubeconfig = join(tmp.path, 'kubeconfig.yaml');
const children: ChildProcess[] = [];
let rootFile = '';

function kubectl(args: string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync('kubectl', args, { input, encoding: 'utf8', env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 60_000 });
  assert.ifError(r.error); // kubectl missing: fail, .ci/run installs it
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function kubectlOk(args: string[], input?: string): string {
  const r = kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.err}`);
  return r.out;
}

before(async () => {
  const double = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'kube-api-double.mjs'), '--kubeconfig', kubeconfig], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(double);
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    double.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out);
    });
    double.on('close', (code) => reject(new Error(`kube-api-double exited ${code}`)));
  });
  assert.match(line, /^Kubernetes API double listening on http:\/\/127\.0\.0\.1:\d+ /);
  ({ rootFile } = await startK8sSigner({ dir: join(tmp.path, 'signer'), signerName: 'example.com/foo', kubeconfig }, (c) =>
    children.push(c),
  ));
});

after(() => {
  for (const c of children) c.kill('SIGTERM');
  tmp.cleanup();
});

describe('scripts/kube-api-double.mjs', () => {
  it('refuses bad arguments with a message naming them, exit 2, and writes no kubeconfig', () => {
    const script = join(REPO_ROOT, 'scripts', 'kube-api-double.mjs');
    const out = join(tmp.path, 'never.yaml');
    for (const [args, message] of [
      [[], /--kubeconfig FILE is required/],
      [['--kubeconfig', out, '--port', 'http'], /--port must be a port number \(0-65535\), got "http"/],
      [['--kubeconfig', out, '--bogus'], /Unknown option '--bogus'/],
    ] as const) {
      const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(existsSync(out), false);
    }
  });
});

describe('kubectl against the API double', () => {
  it('creates, approves and reads a CSR that meshca k8s-signer signs', () => {
    const request = createCsr({
      key: generateKeyPair('ec-p256').privateKey,
      subject: { commonName: 'app.example.com' },
      sans: { dnsNames: ['app.example.com'] },
    }).pem;
    const csrYaml = [
      'apiVersion: certificates.k8s.io/v1',
      'kind: CertificateSigningRequest',
      'metadata:',
      '  name: app',
      'spec:',
      `  request: ${Buffer.from(request).toString('base64')}`,
      '  signerName: example.com/foo',
      '  expirationSeconds: 86400',
      '  usages: ["digital signature", "key encipherment", "server auth"]',
      '',
    ].join('\n');
    assert.match(kubectlOk(['create', '-f', '-'], csrYaml), /certificatesigningrequest\.certificates\.k8s\.io\/app created/);
    const again = kubectl(['create', '-f', '-'], csrYaml);
    assert.notEqual(again.code, 0);
    assert.match(again.err, /AlreadyExists|already exists/);
    assert.match(kubectlOk(['get', 'csr']), /^app\s.*\sPending$/m);
    assert.match(kubectlOk(['certificate', 'approve', 'app']), /app approved/);
    kubectlOk(['wait', '--for=jsonpath={.status.certificate}', 'csr/app', '--timeout=60s']);
    assert.equal(kubectlOk(['get', 'csr', 'app', '-o', 'jsonpath={.status.conditions[0].type}']), 'Approved');
    // The server-side Table: kubectl prints the columns of a real API server.
    const table = kubectlOk(['get', 'csr', 'app']).split('\n');
    assert.deepEqual(table[0].split(/\s+/), ['NAME', 'AGE', 'SIGNERNAME', 'REQUESTOR', 'REQUESTEDDURATION', 'CONDITION']);
    assert.match(table[1], /^app\s+\d+s\s+example\.com\/foo\s+system:anonymous\s+24h\s+Approved,Issued$/);
    const chain = Buffer.from(kubectlOk(['get', 'csr', 'app', '-o', 'jsonpath={.status.certificate}']), 'base64').toString('utf8');
    const chainFile = join(tmp.path, 'app.pem');
    writeFileSync(chainFile, chain);
    const v = opensslVerify(rootFile, chainFile, chainFile);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.equal(new X509Certificate(chain).subjectAltName, 'DNS:app.example.com');
    assert.ok(new X509Certificate(chain).checkIssued(new X509Certificate(chain.slice(chain.indexOf('-----END CERTIFICATE-----') + 26))));
    assert.ok(readFileSync(rootFile, 'utf8').includes('BEGIN CERTIFICATE'));

    assert.match(kubectlOk(['create', '-f', '-'], csrYaml.replace('name: app', 'name: refused')), /refused created/);
    assert.match(kubectlOk(['certificate', 'deny', 'refused']), /refused denied/);
    assert.match(kubectlOk(['get', 'csr', 'refused']), /\sDenied$/m);
    assert.equal(kubectlOk(['get', 'csr', 'refused', '-o', 'jsonpath={.status.certificate}']), '');
  });

  it('refuses a CSR the API server would refuse, with its message', () => {
    const r = kubectl(
      ['create', '-f', '-'],
      'apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: bad}\nspec: {request: "bm90IGEgQ1NS", signerName: example.com/foo, usages: [server auth]}\n',
    );
    assert.notEqual(r.code, 0);
    assert.match(r.err, /PEM block type must be CERTIFICATE REQUEST/);
  });

  it('serves Secrets and ConfigMaps: get -o yaml, merge patch, and 409 on a stale resourceVersion', () => {
    kubectlOk(
      ['create', '-f', '-'],
      'apiVersion: v1\nkind: Secret\nmetadata: {name: cacerts, namespace: istio-system}\ndata: {root-cert.pem: cm9vdA==}\n',
    );
    assert.match(kubectlOk(['get', 'secret', '-n', 'istio-system', 'cacerts', '-o', 'yaml']), /root-cert\.pem: cm9vdA==/);
    const missing = kubectl(['get', 'secret', '-n', 'istio-system', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /secrets "nope" not found/);
    kubectlOk(['create', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: "1"}\n');
    assert.match(kubectlOk(['get', 'configmap']), /^settings\s/m);
    const stale = kubectlOk(['get', 'configmap', 'settings', '-o', 'json']);
    kubectlOk(['patch', 'configmap', 'settings', '--type', 'merge', '-p', '{"data":{"a":"2"}}']);
    assert.equal(kubectlOk(['get', 'configmap', 'settings', '-o', 'jsonpath={.data.a}']), '2');
    const conflict = kubectl(['replace', '-f', '-'], stale);
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.err, /the object has been modified/);
    const strategic = kubectl(['patch', 'configmap', 'settings', '-p', '{"data":{"a":"3"}}']);
    assert.notEqual(strategic.code, 0, 'the double applies merge patches only');
    assert.match(strategic.err, /merge-patch\+json/);
  });
});
