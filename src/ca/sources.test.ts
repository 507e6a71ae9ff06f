import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { makeIntermediate, makeLeaf, makeRoot } from '../../test/helpers/pki.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { certsToPem } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import { secretManifest } from './bundle.js';
import { readBundle, readCertificateFile, readSource, sourceRoots } from './sources.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';
const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The shape `istioctl proxy-config secret <pod> -o json` prints. */
function proxySecret(chainPem: string | undefined, rootPem: string | undefined) {
  const entries: unknown[] = [];
  if (chainPem !== undefined) {
    entries.push({
      name: 'default',
      versionInfo: '2025-06-01T12:00:00Z',
      lastUpdated: '2025-06-01T12:00:00.000Z',
      secret: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
        name: 'default',
        tlsCertificate: { certificateChain: { inlineBytes: b64(chainPem) }, privateKey: { inlineBytes: 'W3JlZGFjdGVkXQ==' } },
      },
    });
  }
  if (rootPem !== undefined) {
    entries.push({ name: 'ROOTCA', secret: { name: 'ROOTCA', validationContext: { trustedCa: { inlineBytes: b64(rootPem) } } } });
  }
  return { dynamicActiveSecrets: entries };
}

describe('readSource', () => {
  const t = tempDir();
  after(t.cleanup);
  const root = makeRoot();
  const int = makeIntermediate(root);
  const leaf = makeLeaf(int, { spiffeId: ID });
  const chainPem = certsToPem([leaf.cert, int.cert]);
  const file = (name: string, data: string | Buffer): string => {
    const p = join(t.path, name);
    writeFileSync(p, data);
    return p;
  };

  it('reads a PEM chain in order, and finds no roots in a chain without one', () => {
    const s = readSource(file('chain.pem', chainPem));
    assert.equal(s.kind, 'pem');
    assert.deepEqual(
      s.chain.map((c) => c.fingerprint256),
      [leaf.cert.fingerprint256, int.cert.fingerprint256],
    );
    assert.deepEqual(sourceRoots(s), []);
    const full = readSource(file('full.pem', chainPem + root.cert.pem));
    assert.equal(sourceRoots(full)[0].fingerprint256, root.cert.fingerprint256);
  });

  it('reads CSRs, DER certificates, and ignores keys in PEM files', () => {
    const csr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [ID] } }).pem;
    const s = readSource(file('mixed.pem', privateKeyToPem(leaf.key) + csr));
    assert.equal(s.chain.length, 0);
    assert.deepEqual(s.csrs[0].sans.uris, [ID]);
    const der = readSource(file('leaf.der', leaf.cert.der));
    assert.equal(der.kind, 'der');
    assert.equal(der.chain[0].fingerprint256, leaf.cert.fingerprint256);
  });

  it('reads istioctl proxy-config secret output as JSON and as YAML', () => {
    const doc = proxySecret(chainPem, root.cert.pem);
    for (const [name, text] of [
      ['secret.json', JSON.stringify(doc, null, 2)],
      ['secret.yaml', stringify(doc)],
    ]) {
      const s = readSource(file(name, text));
      assert.equal(s.kind, 'proxy secret');
      assert.equal(s.chain.length, 2);
      assert.equal(s.roots[0].fingerprint256, root.cert.fingerprint256);
      assert.match(s.rootsFrom ?? '', /ROOTCA secret$/);
    }
  });

  it("reads Envoy's snake_case config_dump secrets too", () => {
    const doc = {
      configs: [
        { '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump' },
        {
          '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
          dynamic_active_secrets: [
            { name: 'ROOTCA', secret: { name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: b64(root.cert.pem) } } } },
          ],
        },
      ],
    };
    const s = readSource(file('dump.json', JSON.stringify(doc)));
    assert.equal(s.chain.length, 0);
    assert.equal(s.roots.length, 1);
  });

  it('rejects proxy-secret output without the expected entries, naming the file and what is there', () => {
    const p = file('empty-secret.json', JSON.stringify({ dynamicActiveSecrets: [{ name: 'kubernetes://foo', secret: {} }] }));
    assert.throws(() => readSource(p), {
      message: `${p}: proxy secret output has neither a "default" secret with tlsCertificate.certificateChain.inlineBytes nor a "ROOTCA" secret with validationContext.trustedCa.inlineBytes (secrets present: kubernetes://foo)`,
    });
    const other = file('other.json', JSON.stringify({ hello: 'world' }));
    assert.throws(() => readSource(other), /other\.json: unrecognised document: expected PEM, `istioctl proxy-config secret` output/);
  });

  it('reads bundle directories in both layouts and Secret manifests', () => {
    const istio = join(t.path, 'istio');
    mkdirSync(istio);
    writeFileSync(join(istio, 'ca-cert.pem'), int.cert.pem);
    writeFileSync(join(istio, 'cert-chain.pem'), certsToPem([int.cert, root.cert]));
    writeFileSync(join(istio, 'root-cert.pem'), root.cert.pem);
    const s = readSource(istio);
    assert.equal(s.layout, 'istio');
    assert.equal(s.caBundle, true);
    assert.equal(s.chain.length, 2);
    assert.equal(s.rootsFrom, `${istio}/root-cert.pem`);

    const cm = join(t.path, 'cm');
    mkdirSync(cm);
    writeFileSync(join(cm, 'tls.crt'), leaf.cert.pem + int.cert.pem);
    writeFileSync(join(cm, 'ca.crt'), root.cert.pem);
    const c = readSource(cm);
    assert.equal(c.layout, 'cert-manager');
    assert.equal(c.caBundle, false, 'a workload tls.crt is not a CA bundle');
    assert.equal(c.roots.length, 1);

    const manifest = file(
      'cacerts.yaml',
      secretManifest([
        { name: 'ca-cert.pem', data: int.cert.pem },
        { name: 'ca-key.pem', data: privateKeyToPem(int.key) },
        { name: 'cert-chain.pem', data: certsToPem([int.cert, root.cert]) },
        { name: 'root-cert.pem', data: root.cert.pem },
      ]),
    );
    const m = readSource(manifest);
    assert.equal(m.kind, 'secret manifest');
    assert.equal(m.caBundle, true);
    assert.equal(readBundle(manifest)['ca-key.pem'], privateKeyToPem(int.key));
  });

  it('names the file in every error', () => {
    const garbage = file('garbage.pem', '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n');
    assert.throws(() => readSource(garbage), { message: `${garbage}: PEM block "CERTIFICATE" has an invalid base64 body` });
    const junk = file('junk.bin', Buffer.from([0x30, 0x03, 0x01, 0x01, 0xff, 0x00, 0x13]));
    assert.throws(() => readSource(junk), { message: `${junk}: not a certificate source: expected PEM, DER, JSON or YAML` });
    const missing = join(t.path, 'nope.pem');
    assert.throws(() => readSource(missing), { code: 'not_found', message: `${missing}: no such file or directory` });
    const emptyDir = join(t.path, 'emptydir');
    mkdirSync(emptyDir);
    assert.throws(() => readSource(emptyDir), /emptydir: no certificate files found/);
    assert.throws(
      () => readCertificateFile(file('key-only.pem', privateKeyToPem(leaf.key)), 'root file'),
      /key-only\.pem: root file: no PEM "CERTIFICATE" block found/,
    );
  });
});
