import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, test } from 'node:test';
import {
  Server,
  ServerCredentials,
  experimental,
  status,
  type Metadata,
  type ServerUnaryCall,
  type sendUnaryData,
  type ServiceError,
} from '@grpc/grpc-js';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import { createLeafCertificate, createRootCertificate } from '../pki/profiles.js';
import { encodePem } from '../pki/pem.js';
import { grpcCaClient } from './client.js';
import {
  CREATE_CERTIFICATE_PATH,
  decodeRequest,
  encodeResponse,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
} from './proto.js';

// A stand-in for the Istio CA over real gRPC + TLS: it checks the wire contract, not issuance.
const now = new Date();
const rootKey = generateKeyPair('ec-p256');
const root = createRootCertificate({ key: rootKey.privateKey, now });
function leaf(sans: { uris?: string[]; dnsNames?: string[] }) {
  const k = generateKeyPair('ec-p256');
  const der = createLeafCertificate({
    issuerCert: root,
    issuerKey: rootKey.privateKey,
    publicKey: k.publicKey,
    sans,
    ttlSeconds: 600,
    now,
  }).der;
  return { cert: encodePem('CERTIFICATE', der), key: privateKeyToPem(k.privateKey) };
}
const serving = leaf({ dnsNames: ['istiod.istio-system.svc'] });
const workload = leaf({ uris: ['spiffe://cluster.local/ns/a/sa/b'] });

interface Seen {
  req: IstioCertificateRequest;
  md: Metadata;
  peerSan?: string;
}
const seen: Seen[] = [];
let reply: (s: Seen) => IstioCertificateResponse | Partial<ServiceError> = () => ({ certChain: ['L', 'R'], rootCerts: ['R'] });

function makeServer(creds: ServerCredentials): Promise<{ server: Server; port: number }> {
  const server = new Server();
  server.addService(
    {
      CreateCertificate: {
        path: CREATE_CERTIFICATE_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: decodeRequest,
        responseSerialize: encodeResponse,
        responseDeserialize: () => ({}),
      },
    },
    {
      CreateCertificate: (
        call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
        cb: sendUnaryData<IstioCertificateResponse>,
      ) => {
        const s: Seen = { req: call.request, md: call.metadata, peerSan: call.getAuthContext().sslPeerCertificate?.subjectaltname };
        seen.push(s);
        const r = reply(s);
        if ('certChain' in r) cb(null, r as IstioCertificateResponse);
        else cb(r as ServiceError);
      },
    },
  );
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, port) => (err ? reject(err) : resolve({ server, port }))),
  );
}

let tls: { server: Server; port: number };
let plain: { server: Server; port: number };
before(async () => {
  // Client certificates requested but optional, like the CA, which takes a token or a certificate.
  // (ServerCredentials.createSsl only requests a certificate when it also requires one.)
  const provider: experimental.CertificateProvider = {
    // Providers answer asynchronously: grpc-js registers the server as a watcher after subscribing.
    addCaCertificateListener: (l) => setImmediate(() => l({ caCertificate: Buffer.from(root.pem) })),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (l) =>
      setImmediate(() => l({ certificate: Buffer.from(serving.cert), privateKey: Buffer.from(serving.key) })),
    removeIdentityCertificateListener: () => undefined,
  };
  tls = await makeServer(experimental.createCertificateProviderServerCredentials(provider, provider, false));
  plain = await makeServer(ServerCredentials.createInsecure());
});
after(() => {
  tls.server.forceShutdown();
  plain.server.forceShutdown();
});

const tlsClient = (serverName = 'istiod.istio-system.svc') =>
  grpcCaClient({ address: `127.0.0.1:${tls.port}`, rootPem: root.pem, serverName, clusterId: 'east', timeoutMs: 5000 });

test('token call over TLS: verified against the root under the istiod name, bearer token and ClusterID sent', async () => {
  seen.length = 0;
  const res = await tlsClient().createCertificate(
    { csr: 'CSR', validityDuration: 60, metadata: { ClusterID: 'east', WorkloadName: 'w' } },
    { kind: 'token', token: 'tok' },
  );
  assert.deepEqual(res, { certChain: ['L', 'R'], rootCerts: ['R'] });
  const s = seen[0];
  assert.deepEqual(s.req, { csr: 'CSR', validityDuration: 60, metadata: { ClusterID: 'east', WorkloadName: 'w' } });
  assert.deepEqual(s.md.get('authorization'), ['Bearer tok']);
  assert.deepEqual(s.md.get('clusterid'), ['east']);
  assert.equal(s.peerSan, undefined, 'no client certificate with a token');
});

test('mTLS call presents the workload certificate and no token', async () => {
  seen.length = 0;
  await tlsClient().createCertificate({ csr: 'CSR' }, { kind: 'mtls', certChainPem: workload.cert, keyPem: workload.key });
  assert.equal(seen[0].peerSan, 'URI:spiffe://cluster.local/ns/a/sa/b');
  assert.deepEqual(seen[0].md.get('authorization'), []);
});

test("the CA's status and message come back as the error message", async () => {
  reply = () => ({ code: status.PERMISSION_DENIED, details: 'token is for ns/a/sa/a, not ns/a/sa/b' });
  try {
    await assert.rejects(tlsClient().createCertificate({ csr: 'CSR' }, { kind: 'token', token: 't' }), {
      code: 'permission_denied',
      message: 'PERMISSION_DENIED: token is for ns/a/sa/a, not ns/a/sa/b',
    });
  } finally {
    reply = () => ({ certChain: ['L', 'R'], rootCerts: ['R'] });
  }
});

test('a CA whose certificate does not carry the expected name is refused', async () => {
  await assert.rejects(tlsClient('ca.example.com').createCertificate({ csr: 'CSR' }, { kind: 'token', token: 't' }), {
    code: 'unavailable',
    message: /^UNAVAILABLE: /,
  });
});

test('plaintext is for tokens only', async () => {
  const c = grpcCaClient({ address: `127.0.0.1:${plain.port}`, serverName: 'x', plaintext: true });
  seen.length = 0;
  await c.createCertificate({ csr: 'CSR' }, { kind: 'token', token: 'tok' });
  assert.deepEqual(seen[0].md.get('authorization'), ['Bearer tok']);
  await assert.rejects(
    c.createCertificate({ csr: 'CSR' }, { kind: 'mtls', certChainPem: workload.cert, keyPem: workload.key }),
    /needs TLS/,
  );
  assert.throws(() => grpcCaClient({ address: 'x:1', serverName: 'x' }), /CA root \(--ca-root\) is required/);
});

test('aborting cancels the call', async () => {
  reply = () => ({ certChain: ['L'], rootCerts: [] });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(tlsClient().createCertificate({ csr: 'CSR' }, { kind: 'token', token: 't' }, ac.signal), /CANCELLED/);
});

test('many calls on one long-lived signal leave no abort listener behind and no warning', async () => {
  reply = () => ({ certChain: ['L', 'R'], rootCerts: ['R'] });
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  try {
    const ac = new AbortController();
    const c = tlsClient();
    for (let i = 0; i < 15; i++) {
      await c.createCertificate({ csr: 'CSR' }, { kind: 'token', token: 't' }, ac.signal);
      assert.equal(getEventListeners(ac.signal, 'abort').length, 0, `after call ${i + 1}`);
    }
    reply = () => ({ code: status.UNAVAILABLE, details: 'try later' });
    for (let i = 0; i < 12; i++) await assert.rejects(c.createCertificate({ csr: 'CSR' }, { kind: 'token', token: 't' }, ac.signal));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      warnings.map((w) => w.message),
      [],
    );
  } finally {
    process.off('warning', onWarning);
    reply = () => ({ certChain: ['L', 'R'], rootCerts: ['R'] });
  }
});

test('a CA certificate that does not chain to --ca-root names the file', async () => {
  const other = createRootCertificate({ key: generateKeyPair('ec-p256').privateKey, now });
  const c = grpcCaClient({
    address: `127.0.0.1:${tls.port}`,
    rootPem: other.pem,
    rootSource: '/etc/meshca/wrong-root.pem',
    serverName: 'istiod.istio-system.svc',
    timeoutMs: 5000,
  });
  await assert.rejects(c.createCertificate({ csr: 'CSR' }, { kind: 'token', token: 't' }), {
    code: 'unavailable',
    reason: 'ca_root_mismatch',
    message:
      /(unable to get local issuer certificate|self-signed certificate in certificate chain).*--ca-root \/etc\/meshca\/wrong-root\.pem: that file does not contain the CA's root/,
  });
});
