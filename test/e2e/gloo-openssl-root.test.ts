import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { opensslOk, opensslVerify } from '../helpers/openssl.js';
import { ok, runMeshca, type RunResult } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

// The Gloo guide's OpenSSL steps, verbatim (a 2048-bit key instead of 4096, to stay fast).
const ROOT_CA_CONF = `[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 2048
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
[ req_dn ]
O = Istio
CN = Root CA
`;

const RTP = `apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata: {name: root-trust-policy, namespace: gloo-mesh}
spec:
  config:
    intermediateCertOptions: {secretRotationGracePeriodRatio: 0.1, ttlDays: 1}
    mgmtServerCa:
      secretRef: {name: my-root-trust-policy.gloo-mesh, namespace: gloo-mesh}
`;

const SECRET_LABEL = 'secret gloo-mesh/my-root-trust-policy.gloo-mesh';

describe("the Gloo guide's openssl root, and the mistakes its copy steps make", () => {
  const tmp = tempDir('meshca-gloo-openssl-');
  const dir = join(tmp.path, 'state');
  const f = (name: string): string => join(tmp.path, name);
  const meshca = (args: string[]): Promise<RunResult> => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  after(() => tmp.cleanup());

  /** `kubectl create secret generic --from-file` for the guide's three files, as YAML. */
  function rootSecret(files: Record<string, string>): string {
    const data = Object.entries(files)
      .map(([k, file]) => `  ${k}: ${readFileSync(f(file)).toString('base64')}`)
      .join('\n');
    writeFileSync(
      f('root-secret.yaml'),
      `apiVersion: v1\nkind: Secret\nmetadata: {name: my-root-trust-policy.gloo-mesh, namespace: gloo-mesh}\ndata:\n${data}\n`,
    );
    return f('root-secret.yaml');
  }

  it('a CSR copied into cert-chain.pem is named as a CSR, with the secret named once', async () => {
    writeFileSync(f('root-ca.conf'), ROOT_CA_CONF);
    opensslOk(['req', '-new', '-config', 'root-ca.conf', '-nodes', '-out', 'root-ca.crt', '-keyout', 'root-ca.key'], { cwd: tmp.path });
    opensslOk(['x509', '-in', 'root-ca.crt', '-out', 'cert.pem', '-req', '-signkey', 'root-ca.key', '-days', '360'], { cwd: tmp.path });
    writeFileSync(f('rtp.yaml'), RTP);
    // The guide: cp cert.pem ca-cert.pem; cp root-ca.key ca-key.pem; cp root-ca.crt cert-chain.pem (the CSR).
    const r = await meshca([
      'apply',
      '-f',
      rootSecret({ 'ca-cert.pem': 'cert.pem', 'ca-key.pem': 'root-ca.key', 'cert-chain.pem': 'root-ca.crt' }),
      '-f',
      f('rtp.yaml'),
    ]);
    assert.equal(r.code, 8, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `RootTrustPolicy gloo-mesh/root-trust-policy: CAUnavailable: ${SECRET_LABEL.replace(/[.]/g, '\\.')}: cert-chain\\.pem: no PEM "CERTIFICATE" block found \\(it holds a CERTIFICATE REQUEST, a CSR: put the signed certificate there\\)$`,
        'm',
      ),
    );
    assert.equal(r.stderr.split(SECRET_LABEL).length - 1, 2, 'the secret is named once per line (the event and the summary)');
  });

  it('a root signed by `openssl x509 -req` without its extensions is refused with the reason and the openssl flag', async () => {
    // openssl agrees: the certificate has no basicConstraints, so it is no CA.
    assert.doesNotMatch(opensslOk(['x509', '-in', f('cert.pem'), '-noout', '-text']), /CA:TRUE/);
    const r = await meshca([
      'apply',
      '-f',
      rootSecret({ 'ca-cert.pem': 'cert.pem', 'ca-key.pem': 'root-ca.key', 'cert-chain.pem': 'cert.pem' }),
    ]);
    assert.equal(r.code, 8, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /CAUnavailable: secret gloo-mesh\/my-root-trust-policy\.gloo-mesh: "Root CA" is not a CA certificate \(basicConstraints CA:TRUE missing; `openssl x509 -req` keeps a request's extensions only with -copy_extensions copyall or -extfile\)$/m,
    );
  });

  it('with -copy_extensions copyall the same steps give a root every cluster intermediate chains to', async () => {
    opensslOk(
      ['x509', '-in', 'root-ca.crt', '-out', 'cert.pem', '-req', '-signkey', 'root-ca.key', '-days', '360', '-copy_extensions', 'copyall'],
      {
        cwd: tmp.path,
      },
    );
    ok(
      await meshca(['apply', '-f', rootSecret({ 'ca-cert.pem': 'cert.pem', 'ca-key.pem': 'root-ca.key', 'cert-chain.pem': 'cert.pem' })]),
      'apply',
    );
    ok(await meshca(['cluster', 'add', 'cluster1']), 'cluster add');
    const ca = join(dir, 'clusters', 'cluster1', 'cacerts', 'ca-cert.pem');
    const v = opensslVerify(f('cert.pem'), ca);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });
});
