import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createCsr } from '../../../src/pki/csr.js';
import { generateKeyPair } from '../../../src/pki/keys.js';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { REPO_ROOT } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';

/** IstioCertificateRequest{csr = 1, validity_duration = 3} in one gRPC frame, encoded by hand. */
function frame(csrPem: string, ttl: number): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
    out.push(n);
    return Buffer.from(out);
  };
  const csr = Buffer.from(csrPem);
  const msg = Buffer.concat([Buffer.from([0x0a]), varint(csr.length), csr, Buffer.from([0x18]), varint(ttl)]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/**
 * meshca's HTTP/2 engine against an independent HTTP/2 implementation: OpenJDK's java.net.http
 * (its own HPACK encoder, flow control and stream scheduling), 60 concurrent gRPC calls on one
 * connection with varying headers, plus refusals that come back as trailers-only answers.
 */
const tmp = tempDir('meshca-java-');
let server: RunningServer;
before(async () => {
  server = await startServer({ dir: tmp.path, grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', logLevel: 'silent', rateLimit: 0 });
});
after(async () => {
  await server?.close();
  tmp.cleanup();
});

test(
  'OpenJDK HttpClient over TLS/h2: 60 concurrent calls succeed, bad tokens get UNAUTHENTICATED as trailers-only answers',
  { timeout: 120_000 },
  async () => {
    const lines: string[] = [];
    for (let i = 0; i < 60; i++) {
      const sa = `j${i}`;
      const key = generateKeyPair(i % 3 === 0 ? 'rsa-2048' : 'ec-p256').privateKey;
      const csr = createCsr({ key, sans: { uris: [`spiffe://cluster.local/ns/java/sa/${sa}`] } });
      const token = i % 10 === 9 ? 'not-a-token' : await server.issueToken({ namespace: 'java', serviceAccount: sa, ttlSeconds: 600 });
      lines.push(`${frame(csr.pem, 3600).toString('base64')} ${token}`);
    }
    const reqs = join(tmp.path, 'requests.txt');
    writeFileSync(reqs, lines.join('\n'));
    const root = join(tmp.path, 'root', 'root-cert.pem');
    // Asynchronously: the server runs in this process and must keep answering while java runs.
    const r = await new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        'java',
        [join(REPO_ROOT, 'test/fixtures/java/H2Client.java'), root, String(server.grpcPort), reqs],
        { encoding: 'utf8', timeout: 100_000 },
        (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    const out = r.stdout.trim().split('\n');
    assert.equal(out.pop(), 'HTTP_2');
    assert.equal(out.length, 60);
    out.forEach((line, i) => {
      const [status, grpcStatus, len] = line.split(' ');
      assert.equal(status, '200', `call ${i}: ${line}`);
      if (i % 10 === 9) {
        assert.equal(grpcStatus, '16', `call ${i}: ${line}`);
        assert.equal(len, '0');
      } else {
        // grpc-status 0 travels in the trailers, which this client does not expose; the body is the chain.
        assert.equal(grpcStatus, '-', `call ${i}: ${line}`);
        assert.ok(Number(len) > 1000, `call ${i}: ${line}`);
      }
    });
  },
);
