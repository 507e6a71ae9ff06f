import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../store/sqlite/index.js';
import { bootstrapCa, type BootstrapOptions } from './bootstrap.js';
import { CaState } from './state.js';

const opts = (): BootstrapOptions => ({
  cluster: 'default',
  trustDomain: 'cluster.local',
  keyAlgorithm: 'ec-p256',
  rootDays: 30,
  intermediateDays: 10,
  now: new Date(),
});

test('first start creates root and intermediate; later starts reuse them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-boot-'));
  const store = openSqliteStore(dir);
  const first = await bootstrapCa(new CaState(dir), store, opts());
  assert.ok(first.createdRoot && first.createdIntermediate);
  const again = await bootstrapCa(new CaState(dir), store, opts());
  assert.ok(!again.createdRoot && !again.createdIntermediate);
  assert.equal(again.bundle.roots[0].fingerprint256, first.bundle.roots[0].fingerprint256);
  assert.equal(again.bundle.caCert.fingerprint256, first.bundle.caCert.fingerprint256);
  await store.close();
});

test('a missing or corrupt root is an error, never a new root', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-boot-'));
  const store = openSqliteStore(dir);
  const state = new CaState(dir);
  await bootstrapCa(state, store, opts());
  const rootPem = readFileSync(state.rootCertPath, 'utf8');
  writeFileSync(state.rootCertPath, rootPem.slice(0, 200));
  await assert.rejects(bootstrapCa(state, store, opts()), { reason: 'corrupt_state' });
  rmSync(state.rootCertPath);
  await assert.rejects(bootstrapCa(state, store, opts()), /is missing but this state directory already had a root \(SHA-256 [0-9A-F:]+\)/);
  assert.equal(state.hasRoot(), false, 'nothing written');
  await store.close();
});
