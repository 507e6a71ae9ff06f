import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, workloadCsr } from './helpers.js';

/** A raw HTTP/2 request, to probe the wire rules that a well-behaved gRPC client never breaks. */
function raw(
  addr: string,
  rootPem: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; grpcStatus?: string; grpcMessage?: string; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const s = connect(`https://${addr}`, { ca: rootPem, servername: 'localhost' });
    s.on('error', reject);
    const req = s.request({
      ':method': 'POST',
      ':path': '/istio.v1.auth.IstioCertificateService/CreateCertificate',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    const out: { status: number; grpcStatus?: string; grpcMessage?: string; data: Buffer } = { status: 0, data: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    const take = (h: Record<string, unknown>) => {
      if (h['grpc-status'] !== undefined) out.grpcStatus = String(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.grpcMessage = decodeURIComponent(String(h['grpc-message']));
    };
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      take(h);
    });
    req.on('trailers', take);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('close', () => {
      out.data = Buffer.concat(chunks);
      s.close();
      resolve(out);
    });
    // A GET request is ended by the client library itself (no body).
    if (req.writable) req.end(body);
  });
}

function frame(msg: Buffer, compressed = false): Buffer {
  const h = Buffer.alloc(5);
  h[0] = compressed ? 1 : 0;
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

/** IstioCertificateRequest{csr} encoded by hand: field 1, length-delimited. */
function requestMessage(csr: string): Buffer {
  const b = Buffer.from(csr);
  const len: number[] = [];
  for (let n = b.length; ; n >>>= 7) {
    if (n < 0x80) {
      len.push(n);
      break;
    }
    len.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...len]), b]);
}

for (const transport of ['h2', 'node-http2'] as const) {
  describe(`gRPC transport ${transport}`, () => {
    const tmp = tempDir(`meshca-transport-${transport}-`);
    let server: RunningServer;
    before(async () => {
      server = await startServer({
        dir: tmp.path,
        grpcAddr: '127.0.0.1:0',
        httpAddr: '127.0.0.1:0',
        logLevel: 'silent',
        grpcTransport: transport,
      });
    });
    after(async () => {
      await server?.close();
      tmp.cleanup();
    });

    test('token issuance, then mTLS renewal with the issued certificate', async () => {
      const token = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' });
      const first = workloadCsr(ID('shop', 'cart'));
      const c1 = IstioCaClient.tls(server.grpcAddress, server.rootPem, { serverName: 'istiod.istio-system.svc' });
      const r1 = await c1.createCertificate({ csr: first.csr, ttlSeconds: 600 }, { token });
      c1.close();
      assert.equal(r1.certChain.length, 3);
      assert.equal(new X509Certificate(r1.certChain[0]).subjectAltName, `URI:${ID('shop', 'cart')}`);
      const second = workloadCsr(ID('shop', 'cart'));
      const c2 = IstioCaClient.tls(server.grpcAddress, server.rootPem, {
        serverName: 'localhost',
        certChainPem: r1.certChain.slice(0, 2).join(''),
        keyPem: first.keyPem,
      });
      const r2 = await c2.createCertificate({ csr: second.csr, ttlSeconds: 600 });
      c2.close();
      const leaf2 = new X509Certificate(r2.certChain[0]);
      assert.equal(leaf2.subjectAltName, `URI:${ID('shop', 'cart')}`);
      assert.notEqual(leaf2.serialNumber, new X509Certificate(r1.certChain[0]).serialNumber);
      // Without token or certificate: UNAUTHENTICATED (16) over either transport.
      const c3 = IstioCaClient.tls(server.grpcAddress, server.rootPem, { serverName: 'localhost' });
      await assert.rejects(c3.createCertificate({ csr: second.csr }), (e: { code?: number }) => e.code === 16);
      c3.close();
    });
  });
}

for (const transport of ['h2', 'node-http2'] as const)
  describe(`${transport} transport: gRPC wire rules`, () => {
    const tmp = tempDir('meshca-transport-wire-');
    let server: RunningServer;
    let token: string;
    before(async () => {
      server = await startServer({
        dir: tmp.path,
        grpcAddr: '127.0.0.1:0',
        httpAddr: '127.0.0.1:0',
        logLevel: 'silent',
        grpcTransport: transport,
      });
      token = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' });
    });
    after(async () => {
      await server?.close();
      tmp.cleanup();
    });

    test('gzip-compressed message is accepted', async () => {
      const r = await raw(
        server.grpcAddress,
        server.rootPem,
        { authorization: `Bearer ${token}`, 'grpc-encoding': 'gzip' },
        frame(gzipSync(requestMessage(workloadCsr(ID('shop', 'cart')).csr)), true),
      );
      assert.equal(r.grpcStatus, '0', r.grpcMessage);
      assert.ok(r.data.length > 5);
    });

    test('unknown path, unknown encoding, non-gRPC content type, GET, truncated frame', async () => {
      const body = frame(requestMessage('x'));
      const unknownPath = await raw(server.grpcAddress, server.rootPem, { ':path': '/istio.v1.auth.IstioCertificateService/Nope' }, body);
      assert.equal(unknownPath.grpcStatus, '12');
      const enc = await raw(server.grpcAddress, server.rootPem, { 'grpc-encoding': 'snappy' }, body);
      assert.equal(enc.grpcStatus, '12');
      assert.match(enc.grpcMessage ?? '', /snappy/);
      const ct = await raw(server.grpcAddress, server.rootPem, { 'content-type': 'application/json' }, body);
      assert.equal(ct.status, 415);
      const get = await raw(server.grpcAddress, server.rootPem, { ':method': 'GET' }, Buffer.alloc(0));
      assert.equal(get.status, 405);
      const trunc = await raw(server.grpcAddress, server.rootPem, { authorization: `Bearer ${token}` }, body.subarray(0, body.length - 1));
      assert.equal(trunc.grpcStatus, '13');
    });

    test('a message over the size limit is RESOURCE_EXHAUSTED and a refusal message is percent-decoded intact', async () => {
      const big = await raw(server.grpcAddress, server.rootPem, {}, frame(Buffer.alloc(5 << 20, 0x41)));
      assert.equal(big.grpcStatus, '8');
      const bad = await raw(
        server.grpcAddress,
        server.rootPem,
        { authorization: `Bearer ${token}` },
        frame(requestMessage('-----BEGIN CERTIFICATE REQUEST-----\nnot base64 ✗\n-----END CERTIFICATE REQUEST-----\n')),
      );
      assert.equal(bad.grpcStatus, '3');
      assert.ok((bad.grpcMessage ?? '').length > 0);
    });
  });
