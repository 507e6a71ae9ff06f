import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { opensslVerify } from '../../helpers/openssl.js';
import { runMeshca } from '../../helpers/run.js';
import { snapshotTree, tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, audit, getJson, spawnServe, workloadCsr } from './helpers.js';

const tmp = tempDir('meshca-serve-restart-');
after(() => tmp.cleanup());

const ADDRS = ['--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn'];

async function token(dir: string, sa: string): Promise<string> {
  const r = await runMeshca(['token', '--dir', dir, '-n', 'shop', '-s', sa]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

test('restart reuses the root; earlier certificates still verify; no audit row is lost', async () => {
  const dir = join(tmp.path, 'state');
  // At info level, where serve logs that it created the state directory.
  const first = spawnServe(['--dir', dir, ...ADDRS.slice(0, 4), '--log-level', 'info']);
  const a = await first.ready;
  assert.equal(a.createdRoot, true);
  const rootPem = await (await fetch(`http://${a.http}/v1/trust-bundle?format=pem`)).text();
  const c1 = IstioCaClient.tls(a.grpc, rootPem);
  const t = await token(dir, 'cart');
  const issued = await c1.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: t });
  await assert.rejects(c1.createCertificate({ csr: workloadCsr(ID('shop', 'other')).csr }, { token: t }));
  c1.close();
  assert.equal(await first.stop(), 0, first.stderr());
  assert.ok(first.stderr().includes(`created state directory ${dir}`), first.stderr());

  const second = spawnServe(['--dir', dir, ...ADDRS]);
  const b = await second.ready;
  try {
    assert.equal(b.createdRoot, false);
    assert.doesNotMatch(second.stderr(), /created state directory/);
    assert.equal(b.rootFingerprint, a.rootFingerprint, 'same root after a restart');
    const bundle = await getJson<{ roots: string[] }>(b.http, '/v1/trust-bundle');
    assert.deepEqual(bundle.body.roots, [rootPem]);
    // The certificate issued before the restart verifies against the trust bundle served after it.
    const rootFile = join(tmp.path, 'root.pem');
    const leafFile = join(tmp.path, 'leaf.pem');
    const interFile = join(tmp.path, 'inter.pem');
    writeFileSync(rootFile, bundle.body.roots.join(''));
    writeFileSync(leafFile, issued.certChain[0]);
    writeFileSync(interFile, issued.certChain[1]);
    const v = opensslVerify(rootFile, leafFile, interFile);
    assert.equal(v.code, 0, v.stderr);
    // The same token (its key is in the store) still works against the restarted server.
    const c2 = IstioCaClient.tls(b.grpc, bundle.body.roots[0]);
    const again = await c2.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: t });
    c2.close();
    assert.equal(again.certChain[1], issued.certChain[1], 'same intermediate');
    // Rows written in batches before the first shutdown all survived it.
    const rows = await audit(b.http);
    assert.deepEqual(rows.map((r) => r.outcome).reverse(), ['issued', 'refused', 'issued']);
  } finally {
    assert.equal(await second.stop(), 0, second.stderr());
  }
});

test('a corrupted root file: clear error, non-zero exit, and no new root', async () => {
  const dir = join(tmp.path, 'corrupt');
  const s = spawnServe(['--dir', dir, ...ADDRS]);
  await s.ready;
  assert.equal(await s.stop(), 0);
  const rootFile = join(dir, 'root', 'root-cert.pem');
  const pem = readFileSync(rootFile, 'utf8');
  const broken = pem.slice(0, 40) + pem.slice(60);
  writeFileSync(rootFile, broken);
  const before = snapshotTree(dir);

  const bad = spawnServe(['--dir', dir, ...ADDRS]);
  const code = await bad.exited;
  assert.notEqual(code, 0);
  assert.match(bad.stderr(), /meshca: the root certificate .*root-cert\.pem is unreadable/);
  assert.equal(readFileSync(rootFile, 'utf8'), broken, 'the root file is left as it was');
  assert.deepEqual(snapshotTree(dir), before, 'nothing written');

  // A deleted root is refused too: the store remembers there was one.
  const { rmSync } = await import('node:fs');
  rmSync(rootFile);
  const gone = spawnServe(['--dir', dir, ...ADDRS]);
  assert.notEqual(await gone.exited, 0);
  assert.match(gone.stderr(), /root-cert\.pem is missing but this state directory already had a root .*will not mint a new root/);
});

test('config: meshca.yaml < env < flag, and a bad field is named', async () => {
  const dir = join(tmp.path, 'config');
  const file = join(tmp.path, 'meshca.yaml');
  writeFileSync(
    file,
    ['trustDomain: file.example', 'cluster: from-file', 'maxTtl: 30d', 'defaultTtl: 1h', 'logLevel: warn', ''].join('\n'),
  );
  const s = spawnServe(
    ['--config', file, '--dir', dir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--trust-domain', 'flag.example'],
    { MESHCA_CLUSTER: 'from-env', MESHCA_TRUST_DOMAIN: 'env.example' },
  );
  const r = await s.ready;
  try {
    const ca = await getJson<{ trustDomain: string; cluster: string }>(r.http, '/v1/ca');
    assert.equal(ca.body.trustDomain, 'flag.example', 'flag beats env and file');
    assert.equal(ca.body.cluster, 'from-env', 'env beats file');
    const rootPem = (await getJson<{ roots: string[] }>(r.http, '/v1/trust-bundle')).body.roots[0];
    const c = IstioCaClient.tls(r.grpc, rootPem);
    const t = await token(dir, 'cart');
    // maxTtl 30d from the file applies.
    await assert.rejects(
      c.createCertificate({ csr: workloadCsr('spiffe://flag.example/ns/shop/sa/cart').csr, ttlSeconds: 31 * 86400 }, { token: t }),
      /maximum TTL 30d/,
    );
    const ok = await c.createCertificate({ csr: workloadCsr('spiffe://flag.example/ns/shop/sa/cart').csr }, { token: t });
    c.close();
    assert.equal(ok.certChain.length, 3);
  } finally {
    await s.stop();
  }

  writeFileSync(file, 'maxTtl: 30 days\n');
  const bad = await runMeshca(['serve', '--config', file, '--dir', dir]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid configuration: field "maxTtl" \(from .*meshca\.yaml\): expected a positive duration/);
  const badEnv = await runMeshca(['serve', '--dir', dir], { env: { MESHCA_GRPC_ADDR: 'localhost' } });
  assert.equal(badEnv.code, 2);
  assert.match(badEnv.stderr, /field "grpcAddr" \(from env MESHCA_GRPC_ADDR\): expected host:port/);
});
