import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CONFIG_KEYS, envName, flagName, formatDuration, loadConfig, resolveConfig } from './index.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'meshca-config-'));
}

test('defaults need no file at all', () => {
  const dir = tmp();
  const c = loadConfig({ env: {}, flags: { dir } });
  assert.equal(c.grpcAddr, '127.0.0.1:15012');
  assert.equal(c.httpAddr, '127.0.0.1:15014');
  assert.equal(c.trustDomain, 'cluster.local');
  assert.equal(c.cluster, 'default');
  assert.equal(c.defaultTtl, 86400);
  assert.equal(c.maxTtl, 90 * 86400);
  assert.deepEqual(c.audience, ['istio-ca']);
  assert.deepEqual(c.servingSans, ['istiod.istio-system.svc', 'localhost', '127.0.0.1']);
  assert.equal(c.plaintext, false);
  assert.equal(c.dir, dir);
  assert.equal(c.configFile, undefined);
});

test('precedence: defaults < meshca.yaml < env < flags', () => {
  const dir = tmp();
  const file = join(dir, 'meshca.yaml');
  writeFileSync(file, 'maxTtl: 30d\ndefaultTtl: 2h\ntrustDomain: file.example\nrateLimit: 5\naudience: [a, b]\n');
  const c = loadConfig({
    env: { MESHCA_DEFAULT_TTL: '3h', MESHCA_TRUST_DOMAIN: 'env.example', MESHCA_PLAINTEXT: 'true' },
    flags: { dir, trustDomain: 'flag.example' },
  });
  assert.equal(c.configFile, file, 'meshca.yaml in the state directory is found without --config');
  assert.equal(c.maxTtl, 30 * 86400, 'from the file');
  assert.equal(c.defaultTtl, 3 * 3600, 'env beats the file');
  assert.equal(c.trustDomain, 'flag.example', 'flag beats env and file');
  assert.equal(c.plaintext, true);
  assert.equal(c.rateLimit, 5);
  assert.deepEqual(c.audience, ['a', 'b']);
});

test('a bad field is named with where its value came from', () => {
  const dir = tmp();
  const file = join(dir, 'x.yaml');
  writeFileSync(file, 'maxTtl: forever\n');
  assert.throws(
    () => loadConfig({ configFile: file, env: {}, flags: { dir } }),
    (e: Error) => {
      assert.match(e.message, /field "maxTtl" \(from .*x\.yaml\): expected a positive duration/);
      return true;
    },
  );
  assert.throws(
    () => loadConfig({ env: { MESHCA_RATE_LIMIT: 'lots' }, flags: { dir } }),
    /field "rateLimit" \(from env MESHCA_RATE_LIMIT\)/,
  );
  assert.throws(
    () => loadConfig({ env: {}, flags: { dir, grpcAddr: 'nope' } }),
    /field "grpcAddr" \(from flag --grpc-addr\): expected host:port/,
  );
  writeFileSync(file, 'maxTTL: 1d\n');
  assert.throws(() => loadConfig({ configFile: file, env: {}, flags: { dir } }), /unknown field "maxTTL"/);
  writeFileSync(file, 'a: [\n');
  assert.throws(() => loadConfig({ configFile: file, env: {}, flags: { dir } }), /not valid YAML/);
  assert.throws(() => loadConfig({ configFile: join(dir, 'missing.yaml'), env: {} }), /does not exist/);
});

test('grpc-js, no longer a server transport, is refused with the reason and the alternatives', () => {
  assert.throws(
    () => loadConfig({ env: {}, flags: { dir: tmp(), grpcTransport: 'grpc-js' } }),
    /field "grpcTransport" \(from flag --grpc-transport\): grpc-js is no longer a server transport .*use h2 or node-http2/,
  );
  assert.throws(
    () => loadConfig({ env: { MESHCA_GRPC_TRANSPORT: 'h3' }, flags: { dir: tmp() } }),
    /field "grpcTransport" \(from env MESHCA_GRPC_TRANSPORT\): expected h2 or node-http2, got "h3"/,
  );
});

test('default TTL above the maximum is refused', () => {
  assert.throws(
    () => resolveConfig({ dir: tmp(), defaultTtl: '10d', maxTtl: '1d' }),
    /field "defaultTtl": default TTL 864000s is above the maximum TTL 86400s/,
  );
});

test('flag and env names derive from the key', () => {
  assert.equal(flagName('impersonationAllow'), '--impersonation-allow');
  assert.equal(envName('maxCsrBytes'), 'MESHCA_MAX_CSR_BYTES');
  assert.equal(formatDuration(90 * 86400), '90d');
  assert.equal(formatDuration(5400), '90m');
});

test('no setting takes the names of the diagnostic switches MESHCA_NATIVE and MESHCA_AUDIT', () => {
  // Those two are read on their own (pki/fast/native.ts, serve/audit-setting.ts), not as settings.
  const names = new Set(CONFIG_KEYS.map((k) => envName(k)));
  assert.ok(names.has('MESHCA_GRPC_ADDR'), 'the list is the settings list');
  for (const n of ['MESHCA_NATIVE', 'MESHCA_AUDIT']) assert.equal(names.has(n), false, n);
});
