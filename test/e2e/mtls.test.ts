/**
 * The STRICT-mTLS story end to end, with real processes and real tools: `meshca serve` as the
 * mesh CA, `meshca token` for two service accounts, `meshca agent` fetching their certificates,
 * then mutual TLS between Node endpoints and from curl/openssl with nothing but the issued files.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { openssl } from '../helpers/openssl.js';
import { MESHCA_BIN, REPO_ROOT, runMeshca, runProcess, type RunResult } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const ID = (sa: string) => `spiffe://cluster.local/ns/shop/sa/${sa}`;
const tmp = tempDir('meshca-mtls-');
const stateDir = join(tmp.path, 'state');
const caRoot = join(stateDir, 'root', 'root-cert.pem');
let serve: ChildProcess;
let grpcAddr = '';

function startServe(): Promise<{ grpc: string; http: string }> {
  serve = spawn(
    process.execPath,
    [MESHCA_BIN, 'serve', '--dir', stateDir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn'],
    {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MESHCA_HOME: undefined, MESHCA_KEY_PASSPHRASE: undefined },
    },
  );
  let out = '';
  let err = '';
  serve.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    serve.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))));
    });
    serve.on('close', (code) => reject(new Error(`meshca serve exited with ${code}: ${err}`)));
  });
}

async function token(sa: string): Promise<string> {
  const r = await runMeshca(['token', '--dir', stateDir, '--namespace', 'shop', '--service-account', sa]);
  assert.equal(r.code, 0, r.stderr);
  const file = join(tmp.path, `${sa}.token`);
  writeFileSync(file, r.stdout);
  return file;
}

function agent(args: string[]): Promise<RunResult> {
  return runMeshca(['agent', '--ca-addr', grpcAddr, '--ca-root', caRoot, '--key-algorithm', 'ec-p256', ...args]);
}

interface Workload {
  dir: string;
  chain: string;
  key: string;
  root: string;
  serial: string;
}

function load(dir: string): Workload {
  const chain = readFileSync(join(dir, 'cert-chain.pem'), 'utf8');
  return {
    dir,
    chain,
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    root: readFileSync(join(dir, 'root-cert.pem'), 'utf8'),
    serial: new X509Certificate(chain).serialNumber,
  };
}

const pairMatches = (w: Workload): boolean => new X509Certificate(w.chain).checkPrivateKey(createPrivateKey(w.key));

/** load(), or undefined when a file vanished under the reader (a retired version directory). */
function tryLoad(dir: () => string): Workload | undefined {
  try {
    return load(dir());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e; // a file that does not parse: something was published half-written
  }
}

/** The published names (the agent's ..data and version directories are hidden). */
const visible = (dir: string): string[] =>
  readdirSync(dir)
    .filter((n) => !n.startsWith('.'))
    .sort();

/** The SPIFFE ID a TLS peer presented, from Node's own parse of its certificate. */
const peerId = (s: tls.TLSSocket): string | undefined => /URI:(spiffe:\/\/[^,]+)/.exec(s.getPeerCertificate().subjectaltname ?? '')?.[1];

let frontendToken = '';
let frontend: Workload;
let backend: Workload;

before(async () => {
  const addrs = await startServe();
  grpcAddr = addrs.grpc;
  frontendToken = await token('frontend');
  const backendToken = await token('backend');
  // Two agents at once, one RSA (Istio's default) and one EC.
  const [f, b] = await Promise.all([
    agent([
      '--once',
      '--token-file',
      frontendToken,
      '--out',
      join(tmp.path, 'frontend'),
      '--cluster-id',
      'default',
      '--workload-name',
      'frontend-v1',
    ]),
    agent(['--once', '--token-file', backendToken, '--out', join(tmp.path, 'backend'), '--key-algorithm', 'rsa-2048']),
  ]);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.match(f.stdout, new RegExp(`^issued ${ID('frontend')} serial=[0-9a-f]+ notAfter=\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`));
  assert.match(b.stdout, new RegExp(`^issued ${ID('backend')} serial=`));
  frontend = load(join(tmp.path, 'frontend'));
  backend = load(join(tmp.path, 'backend'));
});

after(async () => {
  if (serve && serve.exitCode === null) {
    const closed = new Promise((r) => serve.once('close', r));
    serve.kill('SIGTERM');
    await closed;
  }
  tmp.cleanup();
});

test('each agent wrote its chain, a 0600 key that matches it, and the mesh root; openssl agrees', () => {
  for (const [w, sa, alg] of [
    [frontend, 'frontend', 'ec'],
    [backend, 'backend', 'rsa'],
  ] as const) {
    assert.deepEqual(visible(w.dir), ['cert-chain.pem', 'key.pem', 'root-cert.pem']);
    assert.equal(statSync(join(w.dir, 'key.pem')).mode & 0o777, 0o600);
    const leaf = new X509Certificate(w.chain);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(w.key)));
    assert.equal(leaf.publicKey.asymmetricKeyType, alg);
    assert.equal(leaf.subjectAltName, `URI:${ID(sa)}`);
    assert.equal(w.root, readFileSync(caRoot, 'utf8'));
    const v = openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      join(w.dir, 'root-cert.pem'),
      '-untrusted',
      join(w.dir, 'cert-chain.pem'),
      join(w.dir, 'cert-chain.pem'),
    ]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
  }
});

test('mutual TLS between two Node endpoints, each side checking the SPIFFE ID of the other', async () => {
  const server = tls.createServer(
    { key: backend.key, cert: backend.chain, ca: backend.root, requestCert: true, rejectUnauthorized: true },
    (s) => {
      // Authorization on top of authentication: only the frontend may call the backend.
      if (peerId(s) !== ID('frontend')) return s.destroy();
      s.end(`hello ${peerId(s)}`);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const call = (w: Workload, expectServer: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        ca: w.root,
        cert: w.chain,
        key: w.key,
        // Mesh peers are named by SPIFFE ID, not DNS: verify the URI SAN as Envoy's SAN matcher does.
        checkServerIdentity: (_h, cert) =>
          cert.subjectaltname === `URI:${expectServer}` ? undefined : new Error(`server is ${cert.subjectaltname}`),
      });
      let data = '';
      s.on('secureConnect', () => assert.equal(peerId(s), expectServer));
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('end', () => resolve(data));
      s.on('close', () => resolve(data));
      s.on('error', reject);
    });
  try {
    assert.equal(await call(frontend, ID('backend')), `hello ${ID('frontend')}`);
    // The backend's own certificate authenticates but is not authorized: the server hangs up.
    assert.equal(await call(backend, ID('backend')), '');
    // A client expecting another identity refuses the backend.
    await assert.rejects(call(frontend, ID('payments')), /server is URI:spiffe:\/\/cluster.local\/ns\/shop\/sa\/backend/);
  } finally {
    server.close();
  }
});

test('STRICT: an HTTPS workload answers curl with a client certificate, refuses plaintext and certificate-less TLS', async () => {
  let served = 0;
  const server = createHttpsServer(
    { key: backend.key, cert: backend.chain, ca: backend.root, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      served++;
      res.end(`peer=${peerId(req.socket as tls.TLSSocket)}\n`);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const f = (n: string) => join(frontend.dir, n);
  // Workload certificates name a SPIFFE ID and no host, so curl cannot match a hostname: it skips
  // that check (-k) but pins the backend's issued key, so the server is still authenticated.
  // openssl s_client below verifies the backend's chain to the root without a hostname.
  const pin = `sha256//${createHash('sha256')
    .update(new X509Certificate(backend.chain).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64')}`;
  const url = `https://127.0.0.1:${port}/`;
  try {
    const ok = await runProcess('curl', [
      '-sS',
      '--max-time',
      '10',
      '--cacert',
      f('root-cert.pem'),
      '--cert',
      f('cert-chain.pem'),
      '--key',
      f('key.pem'),
      '-k',
      '--pinnedpubkey',
      pin,
      '-w',
      '%{http_code}',
      url,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `peer=${ID('frontend')}\n200`);

    const sc = await runProcess(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-CAfile',
        f('root-cert.pem'),
        '-cert',
        f('cert-chain.pem'),
        '-cert_chain',
        f('cert-chain.pem'),
        '-key',
        f('key.pem'),
        '-verify_return_error',
        '-brief',
        '-ign_eof',
      ],
      { input: 'GET / HTTP/1.0\r\n\r\n' },
    );
    assert.equal(sc.code, 0, sc.stderr);
    assert.match(sc.stderr, /Verification: OK/);
    assert.match(sc.stdout, new RegExp(`peer=${ID('frontend')}`));
    const before = served;

    const plain = await runProcess('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}/`]);
    assert.notEqual(plain.code, 0, `plaintext must be refused: ${plain.stdout}`);
    const noCert = await runProcess('curl', ['-sS', '--max-time', '10', '--cacert', f('root-cert.pem'), '-k', '--pinnedpubkey', pin, url]);
    assert.notEqual(noCert.code, 0, `TLS without a client certificate must be refused: ${noCert.stdout}`);
    assert.equal(served, before, 'no refused request reached the handler');
  } finally {
    server.close();
  }
});

test('renewal from --cert-dir authenticates with the current certificate: same identity, new key and serial', async () => {
  const out = join(tmp.path, 'frontend-renewed');
  const r = await agent(['--once', '--cert-dir', frontend.dir, '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const renewed = load(out);
  assert.match(r.stdout, new RegExp(`^issued ${ID('frontend')} serial=`));
  assert.equal(new X509Certificate(renewed.chain).subjectAltName, `URI:${ID('frontend')}`);
  assert.notEqual(renewed.serial, frontend.serial);
  assert.notEqual(renewed.key, frontend.key);
  // And in place, as a restarted agent does.
  const inPlace = await agent(['--once', '--cert-dir', out, '--out', out]);
  assert.equal(inPlace.code, 0, inPlace.stderr);
  assert.notEqual(load(out).serial, renewed.serial);
});

test("a token for one service account cannot obtain another's identity; the agent exits with the CA's message", async () => {
  const out = join(tmp.path, 'stolen');
  const r = await agent(['--once', '--token-file', frontendToken, '--identity', ID('backend'), '--out', out]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /^meshca: PERMISSION_DENIED: .*spiffe:\/\/cluster.local\/ns\/shop\/sa\/backend/m);
  assert.throws(() => readdirSync(out), /ENOENT/);
  // Rewriting the token's claims breaks its signature: refused before any identity check.
  const [h, p, s] = readFileSync(frontendToken, 'utf8').trim().split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims.sub = 'system:serviceaccount:shop:backend';
  claims['kubernetes.io'].serviceaccount.name = 'backend';
  const forged = join(tmp.path, 'forged.token');
  writeFileSync(forged, `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`);
  const f = await agent(['--once', '--token-file', forged, '--out', out]);
  assert.notEqual(f.code, 0);
  assert.match(f.stderr, /^meshca: UNAUTHENTICATED: /m);
});

test(
  'a long-running agent renews short-lived certificates over mTLS; readers never see a half-written or mismatched pair',
  { timeout: 40_000 },
  async (t) => {
    const out = join(tmp.path, 'rotating');
    const child = spawn(
      process.execPath,
      [
        MESHCA_BIN,
        'agent',
        '--ca-addr',
        grpcAddr,
        '--ca-root',
        caRoot,
        '--key-algorithm',
        'ec-p256',
        '--token-file',
        frontendToken,
        '--out',
        out,
        '--ttl',
        '4s',
        '--renew-at',
        '0.5',
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const serials = new Set<string>();
    let reads = 0;
    let straddles = 0;
    try {
      const deadline = Date.now() + 25_000;
      while (Date.now() < deadline && serials.size < 3) {
        await new Promise((r) => setTimeout(r, 3));
        if (serials.size === 0 && !existsSync(join(out, 'key.pem'))) continue; // not issued yet
        reads++;
        // The consistent reader's protocol: resolve ..data once, read everything from there. It must
        // never see a mismatch (ENOENT only means that version was just retired: look again).
        const pinned = tryLoad(() => realpathSync(join(out, '..data')));
        if (pinned) {
          assert.ok(pairMatches(pinned), `mismatched pair in ${pinned.dir}`);
          serials.add(pinned.serial);
        }
        // A naive reader opening the public names one by one: each file complete and parseable;
        // its two opens may straddle the one swap of ..data, but the pair must be consistent when
        // it looks again. A writer that left a mismatch in place (key written late) fails here.
        const naive = tryLoad(() => out);
        if (naive && pairMatches(naive)) continue;
        straddles++;
        await new Promise((r) => setTimeout(r, 50));
        const again = load(out);
        assert.ok(pairMatches(again), 'certificate and key still mismatched 50 ms later');
      }
      assert.ok(
        serials.size >= 3,
        `expected at least two renewals, saw ${serials.size} certificates in ${reads} reads; agent log:\n${log}`,
      );
      t.diagnostic(`${reads} reads, ${serials.size} certificates, ${straddles} naive reads straddling the swap`);
      assert.ok(straddles <= 1, `${straddles} inconsistent reads`);
      assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, `agent must stop cleanly on SIGTERM: ${log}`);
    // Checked once the agent has stopped: mid-write, its staged version is legitimately present.
    assert.deepEqual(visible(out), ['cert-chain.pem', 'key.pem', 'root-cert.pem']);
    const hidden = readdirSync(out).filter((n) => n.startsWith('.'));
    assert.equal(hidden.length, 2, `only ..data and the current version remain: ${hidden.join(', ')}`);
    const issued = log.split('\n').filter((l) => l.includes(' issued '));
    assert.match(issued[0], /auth=token/);
    assert.ok(
      issued.slice(1).every((l) => l.includes('auth=mtls')),
      `renewals must authenticate with the certificate:\n${log}`,
    );
    assert.match(log, /meshca agent: stopped/);
  },
);
