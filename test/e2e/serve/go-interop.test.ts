import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodeResponse, encodeRequest } from '../../../src/agent/proto.js';
import { createCsr } from '../../../src/pki/csr.js';
import { generateKeyPair } from '../../../src/pki/keys.js';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { REPO_ROOT } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';

/**
 * meshca's gRPC server against grpc-go, the gRPC and HTTP/2 stack Istio's pilot-agent uses to reach
 * its CA (Debian's golang-google-grpc-dev, built here in GOPATH mode: test/fixtures/go/grpcclient).
 * Unlike the OpenJDK client, grpc-go reads the trailers: every call's status comes from
 * grpc-status as the Istio agent would see it. All calls share one HTTP/2 connection, one of them
 * is a 5 MB message that meshca refuses part-way through while grpc-go is still sending it under
 * flow control, and the others must not notice.
 */
const tmp = tempDir('meshca-go-');
let server: RunningServer;

function run(
  cmd: string,
  args: string[],
  o: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  // Asynchronously: the server runs in this process and must keep answering meanwhile.
  return new Promise((resolve) =>
    execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 << 20, env: o.env ?? process.env, cwd: o.cwd },
      (err, stdout, stderr) =>
        resolve({
          status: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0,
          stdout,
          stderr: stderr || String(err ?? ''),
        }),
    ),
  );
}

let client = '';
before(async () => {
  server = await startServer({ dir: tmp.path, grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', logLevel: 'silent', rateLimit: 0 });
  client = join(tmp.path, 'grpcclient');
  const env = { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(tmp.path, 'gocache'), GOFLAGS: '' };
  // GOPATH mode builds a directory given relative to the working directory.
  const b = await run('go', ['build', '-o', client, '.'], { env, cwd: join(REPO_ROOT, 'test/fixtures/go/grpcclient') });
  assert.equal(
    b.status,
    0,
    `building the grpc-go client needs Debian's golang-go and golang-google-grpc-dev (.ci/run installs them): ${b.stderr}`,
  );
});
after(async () => {
  await server?.close();
  tmp.cleanup();
});

test(
  'grpc-go over TLS: 60 concurrent calls on one connection get chains, refusals get their gRPC codes from the trailers',
  { timeout: 280_000 },
  async () => {
    const root = readFileSync(join(tmp.path, 'root', 'root-cert.pem'), 'utf8');
    const lines: string[] = [];
    const expect: { code: number; sa?: string; message?: RegExp }[] = [];
    for (let i = 0; i < 60; i++) {
      const sa = `g${i}`;
      const key = generateKeyPair(i % 3 === 0 ? 'rsa-2048' : 'ec-p256').privateKey;
      const csr = createCsr({ key, sans: { uris: [`spiffe://cluster.local/ns/go/sa/${sa}`] } }).pem;
      const token = await server.issueToken({ namespace: 'go', serviceAccount: sa, ttlSeconds: 600 });
      let req = encodeRequest({
        csr,
        validityDuration: 3600,
        ...(i % 4 === 1 ? { metadata: { ClusterID: 'Kubernetes', WorkloadName: `w-${i}` } } : {}),
      });
      if (i % 10 === 9) {
        lines.push(`${req.toString('base64')} not-a-token`);
        expect.push({ code: 16 }); // UNAUTHENTICATED
        continue;
      }
      if (i === 20) {
        req = encodeRequest({ csr: csr + '#'.repeat(40_000) });
        expect.push({ code: 3, message: /above the 32768-byte limit/ }); // INVALID_ARGUMENT, from the service
      } else if (i === 30) {
        req = encodeRequest({ csr: csr + '#'.repeat(5 << 20) });
        expect.push({ code: 8, message: /exceeds the 4194304-byte limit/ }); // RESOURCE_EXHAUSTED, from the transport
      } else expect.push({ code: 0, sa });
      lines.push(`${req.toString('base64')} ${token}`);
    }
    const reqs = join(tmp.path, 'requests.txt');
    writeFileSync(reqs, lines.join('\n'));
    const r = await run(client, [join(tmp.path, 'root', 'root-cert.pem'), String(server.grpcPort), reqs]);
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout.slice(0, 2000)}`);
    const out = r.stdout.trim().split('\n');
    assert.equal(out.pop(), '1', 'one HTTP/2 connection for all the calls');
    assert.equal(out.length, 60);
    const rootCert = new X509Certificate(root);
    let ok = 0;
    out.forEach((line, i) => {
      const [index, code, body, message] = line.split(' ');
      assert.equal(Number(index), i);
      const want = expect[i];
      const msg = Buffer.from(message, 'base64').toString();
      assert.equal(Number(code), want.code, `call ${i}: code ${code} ${msg}`);
      if (want.message) assert.match(msg, want.message, `call ${i}`);
      if (want.code !== 0) return assert.equal(body, '-');
      const res = decodeResponse(Buffer.from(body, 'base64'));
      assert.ok(res.certChain.length >= 2, `call ${i}: a leaf and its chain`);
      const leaf = new X509Certificate(res.certChain[0]);
      assert.equal(leaf.subjectAltName, `URI:spiffe://cluster.local/ns/go/sa/${want.sa}`);
      const top = new X509Certificate(res.certChain[res.certChain.length - 1]);
      assert.ok(top.verify(rootCert.publicKey) || top.fingerprint256 === rootCert.fingerprint256, `call ${i}: the chain ends at the root`);
      assert.ok(leaf.verify(new X509Certificate(res.certChain[1]).publicKey), `call ${i}: the leaf is signed by the next certificate`);
      assert.deepEqual(
        res.rootCerts.map((p) => new X509Certificate(p).fingerprint256),
        [rootCert.fingerprint256],
      );
      ok++;
    });
    assert.equal(ok, 52);
  },
);
