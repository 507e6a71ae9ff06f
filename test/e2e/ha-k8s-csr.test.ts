import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { K8sDouble } from '../k8s-double/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from './ha-load.js';
import { startK8sSigner } from './k8s-signer-process.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, getJson, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * `upstream: k8s-csr` with replicas on PostgreSQL: each replica is a registration authority that
 * turns the CSRs it authorized into Kubernetes CSRs (signed here by `meshca k8s-signer`), with
 * one leader elected in the database and the audit of both in one table.
 */
const SIGNER = 'example.com/foo';
const tmp = tempDir('meshca-ha-k8s-csr-');
let cluster: PgCluster;
let url: string;
let double: K8sDouble;
let signer: ChildProcess | undefined;
let rootFile: string;
const replicas: ServeProcess[] = [];

before(async () => {
  cluster = await startPostgres();
  url = await cluster.createDatabase('meshca_ha_k8s_csr');
  double = await K8sDouble.start();
  double.tokens.set('k8s-token-cart', { username: 'system:serviceaccount:shop:cart', audiences: ['istio-ca'] });
  double.users.set('ra-token', 'system:serviceaccount:meshca-system:meshca');
  double.users.set('signer-token', 'system:serviceaccount:signer-ca-system:signer');
  const kcSigner = double.writeKubeconfig(join(tmp.path, 'kc-signer'), 'signer-token', 'signer-ca-system');
  rootFile = (await startK8sSigner({ dir: join(tmp.path, 'external-ca'), signerName: SIGNER, kubeconfig: kcSigner }, (c) => (signer = c)))
    .rootFile;
});

after(async () => {
  await Promise.all(replicas.map((r) => r.stop()));
  signer?.kill('SIGTERM');
  await double?.close();
  await cluster?.stop();
  tmp.cleanup();
});

test(
  'two k8s-csr replicas on PostgreSQL: both issue through Kubernetes CSRs, one leads, every certificate audited',
  { timeout: 60_000 },
  async () => {
    const kc = double.writeKubeconfig(join(tmp.path, 'kc-ra'), 'ra-token');
    for (const n of [0, 1]) {
      replicas.push(
        spawnServe(
          [
            ...['--dir', join(tmp.path, `r${n}`), '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn'],
            ...['--upstream', 'k8s-csr', '--k8s-signer-name', SIGNER, '--external-ca-root', rootFile, '--k8s-approve'],
            ...['--kubeconfig', kc, '--local-tokens', 'false'],
          ],
          { MESHCA_STORE_URL: url },
        ),
      );
    }
    const ready = await Promise.all(replicas.map((r) => r.ready));
    const externalRoot = readFileSync(rootFile, 'utf8');
    const leaders = await until(
      'one leader',
      async () => {
        const l = await Promise.all(
          ready.map(async (r) => (await getJson<{ replica: { leader: boolean } }>(r.http, '/v1/dashboard')).body.replica.leader),
        );
        return l.filter(Boolean).length === 1 ? l : undefined;
      },
      10_000,
    );
    assert.equal(leaders.filter(Boolean).length, 1);
    const serials: string[] = [];
    for (const [i, r] of ready.entries()) {
      const client = IstioCaClient.tls(r.grpc, externalRoot);
      try {
        for (let k = 0; k < 2; k++) {
          const res = await client.createCertificate(
            { csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 3600 },
            { token: 'k8s-token-cart' },
          );
          assert.equal(
            res.certChain[res.certChain.length - 1].trim(),
            externalRoot.trim(),
            `replica ${i}: the chain ends at the external root`,
          );
          writeFileSync(join(tmp.path, 'leaf.pem'), res.certChain[0]);
          writeFileSync(join(tmp.path, 'chain.pem'), res.certChain.slice(1, -1).join(''));
          const v = opensslVerify(rootFile, join(tmp.path, 'leaf.pem'), join(tmp.path, 'chain.pem'));
          assert.equal(v.code, 0, v.stderr);
          serials.push(res.certChain[0]);
        }
      } finally {
        client.close();
      }
    }
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const issued = Number(
        (await db.query("SELECT count(*)::int AS n FROM audit WHERE outcome = 'issued' AND identity LIKE '%/ns/shop/sa/cart'")).rows[0].n,
      );
      assert.equal(issued, serials.length, 'every certificate is audited in the shared database');
      assert.equal(Number((await db.query('SELECT count(*)::int AS n FROM leader_terms')).rows[0].n), 1, 'one leader term');
      assert.equal(Number((await db.query('SELECT count(*)::int AS n FROM ca_material')).rows[0].n), 0, 'no CA key anywhere');
    } finally {
      await db.end();
    }
  },
);
