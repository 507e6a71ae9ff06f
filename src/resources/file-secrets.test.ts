import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CACERTS, FileSecretSink } from './file-secrets.js';
import { OWNER_ANNOTATION, type SecretChange } from './secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'meshca-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const content = (crt: string, owner = 'Certificate/istio-system/istio-ca') => ({
  type: 'kubernetes.io/tls',
  data: { 'tls.crt': Buffer.from(crt), 'tls.key': Buffer.from('KEY'), 'ca.crt': Buffer.from('CA') },
  annotations: { [OWNER_ANNOTATION]: owner },
});

describe('FileSecretSink', () => {
  const sink = new FileSecretSink(dir);
  const changes: SecretChange[] = [];
  sink.onChange((c) => changes.push(c));
  const ref = { namespace: 'istio-system', name: 'cacerts' };
  const owner = { owner: 'Certificate/istio-system/istio-ca' };

  it('writes the keys as files (keys 0600) with the metadata beside them, and notifies', async () => {
    assert.equal(await sink.put(ref, content('CRT1'), owner), true);
    const d = join(dir, 'secrets', 'istio-system', 'cacerts');
    assert.equal(readFileSync(join(d, 'tls.crt'), 'utf8'), 'CRT1');
    assert.equal(statSync(join(d, 'tls.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(d, 'tls.crt')).mode & 0o777, 0o644);
    const meta = JSON.parse(readFileSync(`${d}.meta.json`, 'utf8'));
    assert.equal(meta.version, 1);
    assert.deepEqual(meta.keys, ['ca.crt', 'tls.crt', 'tls.key']);
    assert.equal(changes.length, 1);
    assert.equal(changes[0].version, 1);
  });

  it('writes nothing when the content is the same', async () => {
    const meta = `${join(dir, 'secrets', 'istio-system', 'cacerts')}.meta.json`;
    const before = statSync(meta).mtimeMs;
    assert.equal(await sink.put(ref, content('CRT1'), owner), false);
    assert.equal(statSync(meta).mtimeMs, before);
    assert.equal(changes.length, 1);
  });

  it('refuses to replace a secret another controller owns, or one meshca did not create', async () => {
    await assert.rejects(
      sink.put(ref, content('CRT2', 'Certificate/istio-system/other'), { owner: 'Certificate/istio-system/other' }),
      /managed by Certificate\/istio-system\/istio-ca/,
    );
    const hand = join(dir, 'secrets', 'istio-system', 'handmade');
    mkdirSync(hand, { recursive: true });
    writeFileSync(join(hand, 'tls.crt'), 'X');
    const r = { namespace: 'istio-system', name: 'handmade' };
    assert.equal((await sink.get(r))?.data['tls.crt'].toString(), 'X');
    await assert.rejects(sink.put(r, content('Y'), owner), /not created by meshca/);
    await assert.rejects(sink.delete(r, owner), /not created by meshca/);
    // A user's own apply may replace it.
    assert.equal(await sink.put(r, { data: { 'tls.crt': Buffer.from('Z') } }, { user: true }), true);
  });

  it('removes keys that are gone, and deletes', async () => {
    await sink.put(ref, { ...content('CRT3'), data: { 'tls.crt': Buffer.from('CRT3') } }, owner);
    assert.ok(!existsSync(join(dir, 'secrets', 'istio-system', 'cacerts', 'tls.key')));
    assert.deepEqual(Object.keys((await sink.get(ref))!.data), ['tls.crt']);
    assert.equal(await sink.delete(ref, owner), true);
    assert.equal(await sink.get(ref), undefined);
    assert.ok(changes.at(-1)?.deleted);
  });

  it("puts a cluster's cacerts where meshca serve reads it", async () => {
    const r = { cluster: 'east', ...CACERTS };
    await sink.put(
      r,
      { data: { 'ca-cert.pem': Buffer.from('C'), 'ca-key.pem': Buffer.from('K') }, annotations: { [OWNER_ANNOTATION]: 'p' } },
      { owner: 'p' },
    );
    assert.equal(readFileSync(join(dir, 'clusters', 'east', 'cacerts', 'ca-cert.pem'), 'utf8'), 'C');
    assert.equal(statSync(join(dir, 'clusters', 'east', 'cacerts', 'ca-key.pem')).mode & 0o777, 0o600);
    assert.ok(existsSync(join(dir, 'clusters', 'east', 'cacerts.meta.json')));
    assert.deepEqual(
      (await sink.list()).map((s) => s.ref.name),
      ['handmade'],
    );
  });
});
