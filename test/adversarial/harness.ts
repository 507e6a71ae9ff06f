/**
 * The adversarial suite's target: `meshca serve` as a child process (so a crash is an exit, and its
 * memory is its own), a fresh well-behaved client that must keep being answered while an attack
 * runs, the process's resident memory sampled throughout, and the audit read back afterwards to
 * check that nothing was issued to anyone but the identities a case allows.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { LocalTokenIssuer } from '../../src/auth/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { treeMemory } from '../../bench/lib/proc.js';
import { IstioCaClient } from '../e2e/serve/ca-client.js';
import { ID, spawnServe, workloadCsr, type ServeProcess } from '../e2e/serve/helpers.js';
import { tempDir } from '../helpers/tmp.js';
import { sleep } from './wire.js';

export type Transport = 'h2' | 'node-http2';

/** RSS of the whole server (all its processes) must stay below this through every case. */
export const RSS_BOUND = 384 * 1024 * 1024;
/** A fresh, valid client must have its certificate within this, attack or not. */
export const ANSWER_BOUND_MS = 5000;
/** The identity of the well-behaved client that probes the server during attacks. */
export const PROBE_ID = ID('probe', 'fresh');

export interface Target {
  transport: Transport;
  grpc: string;
  http: string;
  pid: number;
  dir: string;
  rootPem: string;
  serve: ServeProcess;
  /** A valid local token for ns/sa (minted with the server's own issuer key). */
  token(ns: string, sa: string, o?: { ttlSeconds?: number; audience?: string[]; now?: Date }): Promise<string>;
  /** The local issuer's current signing key (PEM) and kid, to forge tokens a JWKS issuer could sign. */
  issuerKey(): Promise<{ kid: string; privateKeyPem: string }>;
  /** The id of the newest audit row (0 when none), read from the state database itself. */
  auditMark(): number;
  /** Audit rows written after `mark`, oldest first. */
  auditSince(mark: number): AuditRow[];
  close(): Promise<void>;
}

export interface AuditRow {
  id: number;
  outcome: string;
  reason: string;
  identity: string;
  caller: string;
  client_cluster: string | null;
  message: string | null;
}

export async function startTarget(transport: Transport, extra: string[] = []): Promise<Target> {
  const tmp = tempDir(`meshca-adv-${transport}-`);
  const serve = spawnServe([
    '--dir',
    tmp.path,
    '--grpc-addr',
    '127.0.0.1:0',
    '--http-addr',
    '127.0.0.1:0',
    '--grpc-transport',
    transport,
    '--rate-limit',
    '0',
    '--log-level',
    'error',
    '--workers',
    '1',
    ...extra,
  ]);
  const ready = await serve.ready;
  const store = openSqliteStore(tmp.path);
  const issuer = await LocalTokenIssuer.open(store);
  // Read-only, beside the server's writer (WAL): what the audit really holds, not what an API says.
  const db = new Database(join(tmp.path, 'meshca.db'), { readonly: true });
  const markQ = db.prepare('SELECT coalesce(max(id), 0) AS id FROM audit');
  const sinceQ = db.prepare('SELECT id, outcome, reason, identity, caller, client_cluster, message FROM audit WHERE id > ? ORDER BY id');
  return {
    transport,
    grpc: ready.grpc,
    http: ready.http,
    pid: serve.child.pid!,
    dir: tmp.path,
    rootPem: readFileSync(join(tmp.path, 'root', 'root-cert.pem'), 'utf8'),
    serve,
    token: (namespace, serviceAccount, o = {}) =>
      issuer.issue({ namespace, serviceAccount, ttlSeconds: o.ttlSeconds ?? 600, audience: o.audience ?? ['istio-ca'], now: o.now }),
    issuerKey: async () => (await store.listTokenKeys())[0],
    auditMark: () => (markQ.get() as { id: number }).id,
    auditSince: (mark) => sinceQ.all(mark) as AuditRow[],
    close: async () => {
      db.close();
      await store.close();
      await serve.stop();
      tmp.cleanup();
    },
  };
}

/** One certificate for the probe identity on a new connection; the time it took, or an error. */
export async function probe(t: Target, token: string): Promise<number> {
  const client = IstioCaClient.tls(t.grpc, t.rootPem);
  const started = Date.now();
  try {
    const { csr } = workloadCsr(PROBE_ID);
    const res = await Promise.race([
      client.createCertificate({ csr, ttlSeconds: 3600 }, { token }),
      sleep(ANSWER_BOUND_MS).then(() => {
        throw new Error(`no answer within ${ANSWER_BOUND_MS} ms`);
      }),
    ]);
    assert.ok(res.certChain.length >= 2, 'the probe got a chain');
    return Date.now() - started;
  } finally {
    client.close();
  }
}

/** Samples the server's RSS every 50 ms until stopped; returns the largest reading. */
export function watchRss(pid: number): { stop(): number } {
  let max = treeMemory(pid).rss;
  const timer = setInterval(() => (max = Math.max(max, treeMemory(pid).rss)), 50);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, treeMemory(pid).rss);
    },
  };
}

export interface CaseResult {
  probes: number[];
  maxRss: number;
  /** Every audit row written during the case. */
  rows: AuditRow[];
  /** The audit position before the case, for re-reading rows written after it returned. */
  mark: number;
}

/**
 * Runs `attack` while a fresh client probes the server every 200 ms on new connections, then checks
 * what every case must: the process is alive, every probe was answered within ANSWER_BOUND_MS
 * (one more after the attack), RSS stayed under RSS_BOUND, and the audit shows issued
 * certificates only for the probe and the identities in `allowed`.
 */
export async function underAttack(
  t: Target,
  name: string,
  attack: () => Promise<void>,
  o: { allowed?: string[] } = {},
): Promise<CaseResult> {
  const token = await t.token('probe', 'fresh');
  await sleep(150); // rows of the previous case still in the 100 ms audit batch
  const mark = t.auditMark();
  const rss = watchRss(t.pid);
  const probes: number[] = [];
  const failures: string[] = [];
  let attacking = true;
  const prober = (async () => {
    while (attacking) {
      try {
        probes.push(await probe(t, token));
      } catch (e) {
        failures.push((e as Error).message);
      }
      await sleep(200);
    }
  })();
  try {
    await attack();
  } finally {
    attacking = false;
    await prober;
  }
  try {
    probes.push(await probe(t, token));
  } catch (e) {
    failures.push(`after the attack: ${(e as Error).message}`);
  }
  const maxRss = rss.stop();
  assert.equal(t.serve.child.exitCode, null, `${name}: the server exited: ${t.serve.stderr().slice(-2000)}`);
  assert.deepEqual(failures, [], `${name}: a fresh client was not answered in time`);
  assert.ok(probes.length >= 1, `${name}: no probe ran`);
  await sleep(300); // the audit is flushed every 100 ms
  const rows = t.auditSince(mark);
  const allowed = new Set([PROBE_ID, ...(o.allowed ?? [])]);
  const foreign = rows.filter((r) => r.outcome === 'issued' && !allowed.has(r.identity));
  assert.deepEqual(
    foreign.map((r) => r.identity),
    [],
    `${name}: certificates were issued to identities the case does not allow`,
  );
  const probesIssued = rows.filter((r) => r.outcome === 'issued' && r.identity === PROBE_ID).length;
  assert.equal(probesIssued, probes.length, `${name}: every probe's certificate is in the audit, once`);
  // RSS is the process's high-water mark so far: V8 keeps pages it grew into, so a case that
  // breaks the bound also shows in every later one; the first failing case is the culprit.
  process.stderr.write(
    `adversarial ${t.transport} ${name}: peak RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB, ${probes.length} probes, slowest ${Math.max(...probes)} ms\n`,
  );
  assert.ok(maxRss < RSS_BOUND, `${name}: server RSS reached ${(maxRss / 2 ** 20).toFixed(0)} MiB (bound ${RSS_BOUND / 2 ** 20} MiB)`);
  return { probes, maxRss, rows, mark };
}
