import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import { certsToPem } from '../../src/pki/certificate.js';
import { generateKeyPair, privateKeyToPem } from '../../src/pki/keys.js';
import { decodePemBlocks, encodePem } from '../../src/pki/pem.js';
import { makeIntermediate, makeRoot, type Ca } from '../helpers/pki.js';
import { opensslIntermediate, opensslOk, opensslRoot, opensslVerify, x509Text, type OpensslCaFiles } from '../helpers/openssl.js';
import { runMeshca, type RunResult } from '../helpers/run.js';
import { fileMode, snapshotTree, tempDir, tmpFilesBelow } from '../helpers/tmp.js';

const ID = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';
const DAY = 86_400_000;

async function ok(args: string[]): Promise<RunResult> {
  const r = await runMeshca(args);
  assert.equal(r.code, 0, `meshca ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

function x509s(file: string): X509Certificate[] {
  return pemBlocks(readFileSync(file, 'utf8')).map((p) => new X509Certificate(p));
}

/** Writes the leaf of a chain file to its own file, for `openssl verify ... leaf`. */
function leafFile(chainFile: string, out: string): string {
  writeFileSync(out, pemBlocks(readFileSync(chainFile, 'utf8'))[0]);
  return out;
}

/** Node's X509Certificate agrees that each certificate is issued and signed by the next, up to a self-signed root. */
function assertNodeChain(file: string): void {
  const chain = x509s(file);
  for (let i = 0; i + 1 < chain.length; i++) {
    assert.equal(chain[i].checkIssued(chain[i + 1]), true, `${file}: #${i + 1} not issued by #${i + 2}`);
    assert.equal(chain[i].verify(chain[i + 1].publicKey), true, `${file}: #${i + 1} signature`);
  }
  const top = chain[chain.length - 1];
  assert.equal(top.verify(top.publicKey), true, `${file}: does not end with a self-signed root`);
}

/** openssl verifies the workload chain for both TLS roles, strictly, and the leaf carries the identity. */
function assertWorkloadChainVerifies(dir: string, rootFile: string, spiffeId: string): void {
  assertNodeChain(join(dir, 'cert-chain.pem'));
  const leaf = leafFile(join(dir, 'cert-chain.pem'), join(dir, 'leaf.pem'));
  for (const purpose of ['sslclient', 'sslserver']) {
    const v = opensslVerify(rootFile, leaf, join(dir, 'cert-chain.pem'), ['-purpose', purpose]);
    assert.equal(v.code, 0, `openssl verify (${purpose}) failed: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /leaf\.pem: OK/);
  }
  const text = x509Text(leaf);
  assert.match(text, new RegExp(`X509v3 Subject Alternative Name: critical\\s+URI:${spiffeId.replace(/[/.]/g, '\\$&')}\\s`));
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /X509v3 Authority Key Identifier:/);
}

/** Writes an Istio plugin-CA bundle directory from library-made certificates. */
function writeBundle(dir: string, ca: Ca, root: Ca, key = ca.key): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ca-cert.pem'), ca.cert.pem);
  writeFileSync(join(dir, 'ca-key.pem'), privateKeyToPem(key));
  writeFileSync(join(dir, 'cert-chain.pem'), certsToPem([ca.cert, root.cert]));
  writeFileSync(join(dir, 'root-cert.pem'), root.cert.pem);
  return dir;
}

/** Writes an Istio bundle directory from openssl-made files. */
function writeOpensslBundle(dir: string, ca: OpensslCaFiles, root: OpensslCaFiles): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(ca.cert, join(dir, 'ca-cert.pem'));
  copyFileSync(ca.key, join(dir, 'ca-key.pem'));
  writeFileSync(join(dir, 'cert-chain.pem'), readFileSync(ca.cert, 'utf8') + readFileSync(root.cert, 'utf8'));
  copyFileSync(root.cert, join(dir, 'root-cert.pem'));
  return dir;
}

function opensslCsr(dir: string, name: string, newkey: string[], spiffeId = ID): string {
  const out = join(dir, `${name}.csr`);
  opensslOk([
    'req',
    '-new',
    ...newkey,
    '-nodes',
    '-keyout',
    join(dir, `${name}.key`),
    '-subj',
    '/O=x',
    '-addext',
    `subjectAltName=URI:${spiffeId}`,
    '-out',
    out,
  ]);
  return out;
}

const CA_KU = 'keyUsage = critical, digitalSignature, keyCertSign, cRLSign';

interface BadInput {
  name: string;
  /** Prepares inputs under `dir` (a template state with cluster "east" is at `dir`/state) and returns the arguments. */
  setup: (dir: string) => string[] | Promise<string[]>;
  stderr: RegExp;
  code: number;
}

const BAD_INPUTS: BadInput[] = [
  {
    name: 'token for a namespace that smuggles a SPIFFE path',
    setup: (d) => ['token', '--dir', join(d, 'state'), '-n', 'evil/sa/x/ns/istio-system', '-s', 'y'],
    stderr: /^meshca: --namespace: namespace "evil\/sa\/x\/ns\/istio-system" is not a Kubernetes namespace name [^\n]*\n$/,
    code: 2,
  },
  {
    name: 'token for a service account that is not a Kubernetes name',
    setup: (d) => ['token', '--dir', join(d, 'state'), '-n', 'default', '-s', 'Web:x'],
    stderr: /^meshca: --service-account: service account "Web:x" is not a Kubernetes service account name [^\n]*\n$/,
    code: 2,
  },
  {
    name: 'garbage PEM',
    setup: (d) => {
      writeFileSync(join(d, 'garbage.pem'), '-----BEGIN CERTIFICATE-----\nthis is not base64!\n-----END CERTIFICATE-----\n');
      return ['inspect', join(d, 'garbage.pem')];
    },
    stderr: /^meshca: \S+\/garbage\.pem: PEM block "CERTIFICATE" has an invalid base64 body\n$/,
    code: 2,
  },
  {
    name: 'garbage CSR',
    setup: (d) => {
      writeFileSync(join(d, 'garbage.csr'), 'hello\n');
      return [
        'issue',
        '--dir',
        join(d, 'state'),
        '--cluster',
        'east',
        '--spiffe-id',
        ID,
        '--csr',
        join(d, 'garbage.csr'),
        '--out',
        join(d, 'out'),
      ];
    },
    stderr: /^meshca: \S+\/garbage\.csr: CSR: no PEM block labelled "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST" found\n$/,
    code: 2,
  },
  {
    name: 'CSR with a bad signature',
    setup: (d) => {
      const csr = opensslCsr(d, 'tampered', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
      const der = Buffer.from(decodePemBlocks(readFileSync(csr, 'utf8'))[0].der);
      der[der.length - 1] ^= 0x01;
      writeFileSync(csr, encodePem('CERTIFICATE REQUEST', der));
      return ['issue', '--dir', join(d, 'state'), '--cluster', 'east', '--spiffe-id', ID, '--csr', csr, '--out', join(d, 'out')];
    },
    stderr: /^meshca: \S+\/tampered\.csr: CSR: signature does not verify with the request's own public key\n$/,
    code: 2,
  },
  {
    name: 'RSA-1024 CSR',
    setup: (d) => {
      const csr = opensslCsr(d, 'weak', ['-newkey', 'rsa:1024']);
      return ['issue', '--dir', join(d, 'state'), '--cluster', 'east', '--spiffe-id', ID, '--csr', csr, '--out', join(d, 'out')];
    },
    stderr: /^meshca: \S+\/weak\.csr: CSR: RSA key of 1024 bits is below the 2048-bit minimum\n$/,
    code: 2,
  },
  {
    name: 'RSA-1024 root',
    setup: (d) => {
      const weak = opensslRoot(d, { keySpec: 'rsa:1024', subj: '/O=Istio/CN=Weak Root', name: 'weak' });
      return ['root', 'import', '--dir', join(d, 'fresh'), '--cert', weak.cert, '--key', weak.key];
    },
    stderr: /^meshca: root certificate "Weak Root": RSA key of 1024 bits is below the 2048-bit minimum\n$/,
    code: 2,
  },
  {
    name: 'CSR for another identity',
    setup: (d) => {
      const csr = opensslCsr(d, 'other', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'spiffe://cluster.local/ns/other/sa/x');
      return ['issue', '--dir', join(d, 'state'), '--cluster', 'east', '--spiffe-id', ID, '--csr', csr, '--out', join(d, 'out')];
    },
    stderr:
      /^meshca: CSR requests identity spiffe:\/\/cluster\.local\/ns\/other\/sa\/x but the caller is authenticated as spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews\n$/,
    code: 6,
  },
  {
    name: 'invalid SPIFFE ID',
    setup: (d) => [
      'issue',
      '--dir',
      join(d, 'state'),
      '--cluster',
      'east',
      '--spiffe-id',
      'spiffe://cluster.local/ns/a/',
      '--out',
      join(d, 'out'),
    ],
    stderr: /^meshca: --spiffe-id: SPIFFE path "\/ns\/a\/" must not end with "\/"\n$/,
    code: 2,
  },
  {
    name: 'key not matching the CA certificate',
    setup: (d) => {
      const root = makeRoot({ now: new Date() });
      const bundle = writeBundle(
        join(d, 'bundle'),
        makeIntermediate(root, { now: new Date() }),
        root,
        generateKeyPair('ec-p256').privateKey,
      );
      return ['ca', 'import', bundle, '--dir', join(d, 'state'), '--cluster', 'west'];
    },
    stderr:
      /is not a usable plugin-CA bundle \(1 problem\(s\)\):\n {2}- ca-key\.pem does not match the public key of ca-cert\.pem "Test Intermediate"\n$/,
    code: 2,
  },
  {
    name: 'root key not matching the root certificate',
    setup: (d) => {
      const root = opensslRoot(d, { subj: '/O=Istio/CN=Mismatched Root', name: 'mm' });
      writeFileSync(join(d, 'other-key.pem'), privateKeyToPem(generateKeyPair('ec-p256').privateKey));
      return ['root', 'import', '--dir', join(d, 'fresh'), '--cert', root.cert, '--key', join(d, 'other-key.pem')];
    },
    stderr: /^meshca: the root key does not match the public key of "Mismatched Root"\n$/,
    code: 2,
  },
  {
    name: 'CA without keyCertSign',
    setup: (d) => {
      const root = opensslRoot(d, { subj: '/O=Istio/CN=Root', name: 'r' });
      const ca = opensslIntermediate(d, root, {
        subj: '/O=Istio/CN=No Sign CA',
        extLines: [
          'basicConstraints = critical, CA:true, pathlen:0',
          'keyUsage = critical, digitalSignature, cRLSign',
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid:always',
        ],
      });
      return ['ca', 'import', writeOpensslBundle(join(d, 'bundle'), ca, root), '--dir', join(d, 'state'), '--cluster', 'west'];
    },
    stderr: /\n {2}- ca-cert\.pem "No Sign CA" lacks the keyCertSign key usage, so it cannot sign workload certificates\n$/,
    code: 2,
  },
  {
    name: 'pathlen violation in a bundle',
    setup: (d) => {
      const root = opensslRoot(d, {
        subj: '/O=Istio/CN=Tight Root',
        name: 'tight',
        extLines: ['basicConstraints = critical, CA:true, pathlen:0', CA_KU, 'subjectKeyIdentifier = hash'],
      });
      const ca = opensslIntermediate(d, root, { subj: '/O=Istio/CN=Cluster CA', pathlen: 0 });
      return ['ca', 'import', writeOpensslBundle(join(d, 'bundle'), ca, root), '--dir', join(d, 'state'), '--cluster', 'west'];
    },
    stderr:
      /\n {2}- pathlen too small: "Tight Root" has pathlen 0 but 1 CA certificate\(s\) sit below it once "Cluster CA" signs workloads\n$/,
    code: 2,
  },
  {
    name: 'pathlen violation when creating an intermediate',
    setup: async (d) => {
      const root = opensslRoot(d, {
        subj: '/O=Istio/CN=Tight Root',
        name: 'tight',
        extLines: ['basicConstraints = critical, CA:true, pathlen:0', CA_KU, 'subjectKeyIdentifier = hash'],
      });
      await ok(['root', 'import', '--dir', join(d, 'tight-state'), '--cert', root.cert, '--key', root.key]);
      return ['intermediate', '--dir', join(d, 'tight-state'), '--cluster', 'c1', '--out', join(d, 'out'), '--key-algorithm', 'ec-p256'];
    },
    stderr: /^meshca: issuer "Tight Root" has pathlen 0 and cannot sign another CA\n$/,
    code: 5,
  },
  {
    name: 'expired CA',
    setup: (d) => {
      const past = new Date(Date.now() - 400 * DAY);
      const root = makeRoot({ now: past, cn: 'Old Root' });
      const bundle = writeBundle(join(d, 'bundle'), makeIntermediate(root, { now: past, days: 30, cn: 'Expired CA' }), root);
      return ['ca', 'import', bundle, '--dir', join(d, 'state'), '--cluster', 'west'];
    },
    stderr: /\(1 problem\(s\)\):\n {2}- "Expired CA" expired at \d{4}-\d\d-\d\dT[\d:.]+Z\n$/,
    code: 2,
  },
  {
    name: 'proxy-secret JSON without the expected entries',
    setup: (d) => {
      const doc = { dynamicActiveSecrets: [{ name: 'kubernetes://my-cert', secret: { name: 'kubernetes://my-cert' } }] };
      writeFileSync(join(d, 'secret.json'), JSON.stringify(doc));
      return ['compare-roots', join(d, 'secret.json'), join(d, 'state', 'clusters', 'east', 'cacerts')];
    },
    stderr:
      /^meshca: \S+\/secret\.json: proxy secret output has neither a "default" secret with tlsCertificate\.certificateChain\.inlineBytes nor a "ROOTCA" secret with validationContext\.trustedCa\.inlineBytes \(secrets present: kubernetes:\/\/my-cert\)\n$/,
    code: 2,
  },
  {
    name: 'init over an existing root without --force',
    setup: (d) => ['init', '--dir', join(d, 'state'), '--key-algorithm', 'ec-p256'],
    stderr: /^meshca: a root already exists in \S+\/state\/root\/root-cert\.pem; pass --force to replace it\n$/,
    code: 4,
  },
  {
    name: 'bundle adopted under another root',
    setup: (d) => {
      const root = makeRoot({ cn: 'Foreign Root', now: new Date() });
      return [
        'ca',
        'import',
        writeBundle(join(d, 'bundle'), makeIntermediate(root, { now: new Date() }), root),
        '--dir',
        join(d, 'state'),
        '--cluster',
        'west',
      ];
    },
    stderr:
      /^meshca: the bundle chains to root "Foreign Root" \([0-9A-F:]+\) but the root in \S+\/state is "O = cluster\.local" \([0-9A-F:]+\); use another --dir or import that root first\n$/,
    code: 5,
  },
];

describe('meshca CLI (process level)', () => {
  const shared = tempDir('meshca-e2e-shared-');
  /** Made once: RSA-4096 generation is the slowest step of the whole file. */
  let rsaRoot: OpensslCaFiles;

  before(() => {
    rsaRoot = opensslRoot(shared.path, { keySpec: 'rsa:4096', subj: '/O=Istio/CN=Interop Root CA', name: 'rsa-root' });
  });
  after(shared.cleanup);

  it('every command answers --help', async () => {
    const cmds = [['init'], ['root', 'import'], ['intermediate'], ['ca', 'import'], ['issue'], ['inspect'], ['verify'], ['compare-roots']];
    const results = await Promise.all(cmds.map((c) => runMeshca([...c, '--help'])));
    results.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: meshca ${cmds[i].join(' ')} `));
    });
  });

  it('init defaults match Istio (RSA 2048, O=cluster.local, 10 years) and keys are 0600', async () => {
    const t = tempDir();
    try {
      const dir = join(t.path, 'state');
      await ok(['init', '--dir', dir]);
      const rootFile = join(dir, 'root', 'root-cert.pem');
      assert.equal(fileMode(join(dir, 'root', 'root-key.pem')), 0o600);
      const text = x509Text(rootFile);
      assert.match(text, /Subject: O = cluster\.local\n/);
      assert.match(text, /Public-Key: \(2048 bit\)/);
      assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/);
      assert.match(text, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
      assert.match(text, /X509v3 Subject Key Identifier:/);
      const c = new X509Certificate(readFileSync(rootFile));
      assert.equal(c.ca, true);
      assert.equal(c.verify(c.publicKey), true);
      const days = (Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY;
      assert.ok(Math.abs(days - 3650) < 0.01, `root lasts ${days} days`);
      assert.equal(c.checkPrivateKey(createPrivateKey(readFileSync(join(dir, 'root', 'root-key.pem')))), true);
      assert.deepEqual(tmpFilesBelow(t.path), []);
    } finally {
      t.cleanup();
    }
  });

  it('finds its state in --dir, then $MESHCA_HOME, then ./.meshca; init --force replaces the root', async () => {
    const t = tempDir();
    try {
      const home = join(t.path, 'home');
      await runMeshca(['init', '--key-algorithm', 'ec-p256'], { env: { MESHCA_HOME: home } }).then((r) =>
        assert.equal(r.code, 0, r.stderr),
      );
      assert.ok(existsSync(join(home, 'root', 'root-cert.pem')));
      await runMeshca(['init', '--key-algorithm', 'ec-p256'], { cwd: t.path }).then((r) => assert.equal(r.code, 0, r.stderr));
      const cwdRoot = join(t.path, '.meshca', 'root', 'root-cert.pem');
      const first = readFileSync(cwdRoot, 'utf8');
      const forced = await runMeshca(['init', '--key-algorithm', 'ec-p256', '--cn', 'Second Root', '--force'], { cwd: t.path });
      assert.equal(forced.code, 0, forced.stderr);
      assert.notEqual(readFileSync(cwdRoot, 'utf8'), first);
      assert.match(x509Text(cwdRoot), /Subject: O = cluster\.local, CN = Second Root\n/);
    } finally {
      t.cleanup();
    }
  });

  it('init, intermediate, issue: the bundle, the Secret and workload chains check out with openssl and Node', async () => {
    const t = tempDir();
    try {
      const dir = join(t.path, 'state');
      const east = join(t.path, 'east');
      const wl = join(t.path, 'wl');
      await ok(['init', '--dir', dir, '--key-algorithm', 'ec-p256', '--org', 'Istio', '--cn', 'Mesh Root', '--root-days', '3650']);
      const inter = await ok([
        'intermediate',
        '--dir',
        dir,
        '--cluster',
        'east',
        '--out',
        east,
        '--key-algorithm',
        'ec-p384',
        '--intermediate-days',
        '365',
        '--istio-namespace',
        'mesh-system',
      ]);
      assert.match(inter.stdout, /created intermediate "O = Istio, CN = meshca intermediate east" for cluster east/);
      assert.equal(inter.stderr, '');

      // The plugin-CA bundle: files, modes, chain order, openssl's view of the intermediate.
      for (const f of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem', 'cacerts.yaml'])
        assert.ok(existsSync(join(east, f)), f);
      assert.equal(fileMode(join(east, 'ca-key.pem')), 0o600);
      assert.equal(fileMode(join(east, 'cacerts.yaml')), 0o600);
      const [ca, root] = x509s(join(east, 'cert-chain.pem'));
      assert.equal(ca.raw.equals(x509s(join(east, 'ca-cert.pem'))[0].raw), true);
      assert.equal(root.raw.equals(x509s(join(east, 'root-cert.pem'))[0].raw), true);
      assert.equal(ca.checkIssued(root), true);
      assert.equal(ca.verify(root.publicKey), true);
      assert.equal(ca.checkPrivateKey(createPrivateKey(readFileSync(join(east, 'ca-key.pem')))), true);
      const v = opensslVerify(join(east, 'root-cert.pem'), join(east, 'ca-cert.pem'));
      assert.equal(v.code, 0, v.stderr);
      const caText = x509Text(join(east, 'ca-cert.pem'));
      assert.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      assert.match(caText, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
      assert.match(caText, /Public-Key: \(384 bit\)/);
      assert.match(caText, /Issuer: O = Istio, CN = Mesh Root/);

      // cacerts.yaml: the Secret kubectl would print, with the four files as base64 data.
      const secret = parseYaml(readFileSync(join(east, 'cacerts.yaml'), 'utf8'));
      assert.equal(secret.apiVersion, 'v1');
      assert.equal(secret.kind, 'Secret');
      assert.equal(secret.metadata.name, 'cacerts');
      assert.equal(secret.metadata.namespace, 'mesh-system');
      assert.deepEqual(Object.keys(secret.data).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
      for (const [k, v64] of Object.entries(secret.data as Record<string, string>)) {
        assert.equal(Buffer.from(v64, 'base64').toString('utf8'), readFileSync(join(east, k), 'utf8'), k);
      }

      // A workload certificate with a generated key.
      const iss = await ok([
        'issue',
        '--dir',
        dir,
        '--cluster',
        'east',
        '--spiffe-id',
        ID,
        '--ttl',
        '1h',
        '--key-algorithm',
        'ec-p256',
        '--out',
        wl,
      ]);
      assert.match(iss.stdout, new RegExp(`issued ${ID.replace(/[/.]/g, '\\$&')} \\(EC P-256\\)`));
      assert.equal(fileMode(join(wl, 'key.pem')), 0o600);
      const chain = x509s(join(wl, 'cert-chain.pem'));
      assert.equal(chain.length, 3);
      assert.equal(chain[1].raw.equals(ca.raw), true);
      assert.equal(chain[2].raw.equals(root.raw), true);
      assert.equal(readFileSync(join(wl, 'root-cert.pem'), 'utf8'), readFileSync(join(east, 'root-cert.pem'), 'utf8'));
      const leaf = chain[0];
      assert.equal(leaf.ca, false);
      assert.equal(leaf.subjectAltName, `URI:${ID}`);
      assert.equal(leaf.checkIssued(ca), true);
      assert.equal(leaf.verify(ca.publicKey), true);
      assert.equal(leaf.checkPrivateKey(createPrivateKey(readFileSync(join(wl, 'key.pem')))), true);
      assert.equal(Date.parse(leaf.validTo) - Date.parse(leaf.validFrom), 3_600_000 + 60_000, 'one hour plus a minute of back-dating');
      assertWorkloadChainVerifies(wl, join(wl, 'root-cert.pem'), ID);

      // A workload certificate for an openssl-made RSA CSR: no key.pem, same public key.
      const csrKey = join(t.path, 'csr-key.pem');
      const csr = join(t.path, 'req.csr');
      opensslOk([
        'req',
        '-new',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        csrKey,
        '-subj',
        '/O=bookinfo',
        '-addext',
        `subjectAltName=URI:${ID}`,
        '-out',
        csr,
      ]);
      const wl2 = join(t.path, 'wl2');
      await ok(['issue', '--dir', dir, '--cluster', 'east', '--spiffe-id', ID, '--csr', csr, '--out', wl2]);
      assert.equal(existsSync(join(wl2, 'key.pem')), false);
      const leaf2 = x509s(join(wl2, 'cert-chain.pem'))[0];
      assert.equal(leaf2.checkPrivateKey(createPrivateKey(readFileSync(csrKey))), true);
      assert.equal(Date.parse(leaf2.validTo) - Date.parse(leaf2.validFrom), DAY + 60_000, 'default TTL 24h');
      assertWorkloadChainVerifies(wl2, join(east, 'root-cert.pem'), ID);
      assert.deepEqual(tmpFilesBelow(t.path), []);

      // inspect, verify, ca import and compare-roots over what was just made.
      const json = JSON.parse((await ok(['inspect', wl, '--json'])).stdout);
      assert.equal(json.certificates.length, 3);
      assert.deepEqual(
        json.certificates.map((c: { role: string }) => c.role),
        ['leaf', 'intermediate', 'root'],
      );
      assert.deepEqual(json.certificates[0].subjectAltNames.uris, [ID]);
      assert.equal(json.certificates[0].fingerprintSha256, leaf.fingerprint256);
      assert.equal(json.certificates[0].serial, leaf.serialNumber.replace(/(..)(?!$)/g, '$1:'));
      assert.equal(json.chain.verified, true);
      assert.equal(json.chain.root.fingerprintSha256, root.fingerprint256);
      assert.deepEqual(json.identity, {
        spiffeIds: [ID],
        invalid: [],
        trustDomain: 'cluster.local',
        namespace: 'bookinfo',
        serviceAccount: 'reviews',
      });
      const text = (await ok(['inspect', join(wl, 'cert-chain.pem'), '--root', join(east, 'root-cert.pem')])).stdout;
      assert.match(text, /Certificate #1: leaf\n {2}Subject: {13}\(empty\)\n {2}Issuer: {14}O = Istio, CN = meshca intermediate east\n/);
      assert.match(text, /Not after:\s+\S+ \((59m \d+s|1h 0m) left\)\n\s+Public key:\s+EC P-256\n\s+Signature:\s+ecdsa-with-SHA384\n/);
      assert.match(
        text,
        new RegExp(`Chain: verifies to root "O = Istio, CN = Mesh Root" \\(${root.fingerprint256}\\) trusted from --root`),
      );
      assert.match(
        text,
        /SPIFFE ID: spiffe:\/\/cluster\.local\/ns\/bookinfo\/sa\/reviews \(trust domain cluster\.local, namespace bookinfo, service account reviews\)/,
      );

      const ver = await ok(['verify', '--root', join(east, 'root-cert.pem'), join(wl, 'cert-chain.pem')]);
      assert.match(ver.stdout, /^OK: .*cert-chain\.pem: chain of 3 certificate\(s\) verifies to root "O = Istio, CN = Mesh Root"/);
      assert.match((await ok(['ca', 'import', east])).stdout, /valid plugin-CA bundle \(istio layout\)/);
      assert.match((await ok(['verify', '--root', join(east, 'root-cert.pem'), east])).stdout, /chain of 2 certificate\(s\) verifies/);

      // The proxy view: what istioctl proxy-config secret prints for this workload, as JSON and YAML.
      const proxy = {
        dynamicActiveSecrets: [
          {
            name: 'default',
            secret: {
              name: 'default',
              tlsCertificate: {
                certificateChain: { inlineBytes: readFileSync(join(wl, 'cert-chain.pem')).toString('base64') },
                privateKey: { inlineBytes: 'W3JlZGFjdGVkXQ==' },
              },
            },
          },
          {
            name: 'ROOTCA',
            secret: {
              name: 'ROOTCA',
              validationContext: { trustedCa: { inlineBytes: readFileSync(join(wl, 'root-cert.pem')).toString('base64') } },
            },
          },
        ],
      };
      writeFileSync(join(t.path, 'proxy.json'), JSON.stringify(proxy));
      writeFileSync(join(t.path, 'proxy.yaml'), stringify(proxy));
      const pj = JSON.parse((await ok(['inspect', join(t.path, 'proxy.yaml'), '--json'])).stdout);
      assert.equal(pj.kind, 'proxy secret');
      assert.equal(pj.chain.verified, true);
      assert.equal(pj.identity.spiffeIds[0], ID);
      const cmp = await ok(['compare-roots', east, join(t.path, 'proxy.json'), join(east, 'cacerts.yaml'), wl2]);
      assert.match(cmp.stdout, new RegExp(`all 4 sources share root "Mesh Root" \\(${root.fingerprint256}\\)`));
      assert.equal((cmp.stdout.match(new RegExp(root.fingerprint256, 'g')) ?? []).length, 5);

      // A second mesh with its own root does not share trust: both fingerprints shown, exit 1.
      const other = join(t.path, 'other');
      await ok(['init', '--dir', other, '--key-algorithm', 'ec-p256']);
      await ok(['intermediate', '--dir', other, '--cluster', 'west', '--out', join(t.path, 'west'), '--key-algorithm', 'ec-p256']);
      const diff = await runMeshca(['compare-roots', east, join(t.path, 'west')]);
      assert.equal(diff.code, 1);
      const otherRoot = x509s(join(t.path, 'west', 'root-cert.pem'))[0];
      assert.match(diff.stdout, new RegExp(`east: root "Mesh Root" ${root.fingerprint256}`));
      assert.match(diff.stdout, new RegExp(`west: root "O = cluster.local" ${otherRoot.fingerprint256}`));
      assert.match(diff.stderr, /meshca: the 2 sources do not share a root/);

      const bad = await runMeshca(['verify', '--root', join(t.path, 'west', 'root-cert.pem'), join(wl, 'cert-chain.pem')]);
      assert.equal(bad.code, 1);
      assert.match(
        bad.stderr,
        /does not verify against .*west\/root-cert\.pem:\n {2}- "Mesh Root" is self-signed but is not one of the trusted roots\n/,
      );
      assert.equal(bad.stdout, '');
    } finally {
      t.cleanup();
    }
  });

  it('warns when the intermediate NotAfter is clamped to the root', async () => {
    const t = tempDir();
    try {
      const dir = join(t.path, 'state');
      await ok(['init', '--dir', dir, '--key-algorithm', 'ec-p256', '--root-days', '30']);
      const r = await ok([
        'intermediate',
        '--dir',
        dir,
        '--cluster',
        'c1',
        '--out',
        join(t.path, 'out'),
        '--key-algorithm',
        'ec-p256',
        '--intermediate-days',
        '365',
      ]);
      assert.match(r.stderr, /^meshca: warning: the intermediate's NotAfter was clamped to the root's \(\S+\); 365 days were requested\n$/);
      const [ca, root] = x509s(join(t.path, 'out', 'cert-chain.pem'));
      assert.equal(ca.validTo, root.validTo);
      const imp = await ok(['ca', 'import', join(t.path, 'out')]);
      assert.match(imp.stderr, /meshca: warning: "meshca intermediate c1" expires in 2\dd \d+h/);
    } finally {
      t.cleanup();
    }
  });

  it('interop: an openssl RSA-4096 root without its key and an openssl intermediate bundle issue workloads openssl verifies', async () => {
    const t = tempDir();
    try {
      const dir = join(t.path, 'state');
      const inter = opensslIntermediate(t.path, rsaRoot, {
        keySpec: 'ec:P-256',
        pathlen: 0,
        subj: '/O=Istio/CN=Interop Intermediate',
        name: 'int',
      });
      const bundle = join(t.path, 'bundle');
      mkdirSync(bundle);
      copyFileSync(inter.cert, join(bundle, 'ca-cert.pem'));
      copyFileSync(inter.key, join(bundle, 'ca-key.pem'));
      writeFileSync(join(bundle, 'cert-chain.pem'), readFileSync(inter.cert, 'utf8') + readFileSync(rsaRoot.cert, 'utf8'));
      copyFileSync(rsaRoot.cert, join(bundle, 'root-cert.pem'));

      const imp = await ok(['root', 'import', '--dir', dir, '--cert', rsaRoot.cert]);
      assert.match(imp.stdout, /imported root "O = Istio, CN = Interop Root CA".*\n {2}key: {9}RSA 4096 \(certificate only\)/);
      assert.match(imp.stderr, /warning: the root was imported without its key/);
      assert.equal(existsSync(join(dir, 'root', 'root-key.pem')), false);
      const noKey = await runMeshca([
        'intermediate',
        '--dir',
        dir,
        '--cluster',
        'west',
        '--out',
        join(t.path, 'nope'),
        '--key-algorithm',
        'ec-p256',
      ]);
      assert.notEqual(noKey.code, 0);
      assert.match(noKey.stderr, /was imported without its key; sign intermediates with the root's owner/);
      assert.equal(existsSync(join(t.path, 'nope')), false);

      const adopted = await ok(['ca', 'import', bundle, '--dir', dir, '--cluster', 'west']);
      assert.match(adopted.stdout, /signing CA: {2}"O = Istio, CN = Interop Intermediate" \(EC P-256, pathlen 0/);
      assert.match(adopted.stdout, /adopted as cluster west/);
      const wl = join(t.path, 'wl');
      await ok(['issue', '--dir', dir, '--cluster', 'west', '--spiffe-id', ID, '--key-algorithm', 'rsa-2048', '--out', wl]);
      assertWorkloadChainVerifies(wl, rsaRoot.cert, ID);
      const chain = readFileSync(join(wl, 'cert-chain.pem'), 'utf8');
      assert.ok(
        chain.endsWith(readFileSync(inter.cert, 'utf8') + readFileSync(rsaRoot.cert, 'utf8')),
        'openssl certificates carried byte for byte',
      );
      assert.match(x509Text(join(wl, 'leaf.pem')), /Issuer: O = Istio, CN = Interop Intermediate/);

      // The cert-manager layout of the same CA is accepted too.
      const cm = join(t.path, 'cm');
      mkdirSync(cm);
      copyFileSync(inter.cert, join(cm, 'tls.crt'));
      copyFileSync(inter.key, join(cm, 'tls.key'));
      copyFileSync(rsaRoot.cert, join(cm, 'ca.crt'));
      assert.match((await ok(['ca', 'import', cm])).stdout, /valid plugin-CA bundle \(cert-manager layout\)/);
    } finally {
      t.cleanup();
    }
  });

  it('interop: an openssl root imported with its PKCS#1 key signs meshca intermediates that openssl verifies', async () => {
    const t = tempDir();
    try {
      const dir = join(t.path, 'state');
      // `openssl genrsa -traditional` style key, as older Istio tools/certs Makefiles produce.
      const pkcs1 = join(t.path, 'root-key-pkcs1.pem');
      opensslOk(['pkey', '-in', rsaRoot.key, '-traditional', '-out', pkcs1]);
      assert.match(readFileSync(pkcs1, 'utf8'), /^-----BEGIN RSA PRIVATE KEY-----/);
      const imp = await ok(['root', 'import', '--dir', dir, '--cert', rsaRoot.cert, '--key', pkcs1]);
      assert.match(imp.stdout, /private key stored in .*root-key\.pem, mode 0600/);
      assert.equal(fileMode(join(dir, 'root', 'root-key.pem')), 0o600);
      const out = join(t.path, 'c1');
      await ok(['intermediate', '--dir', dir, '--cluster', 'c1', '--out', out, '--key-algorithm', 'ec-p256', '--pathlen', '0']);
      const v = opensslVerify(rsaRoot.cert, join(out, 'ca-cert.pem'));
      assert.equal(v.code, 0, v.stderr);
      assertNodeChain(join(out, 'cert-chain.pem'));
      const rootSki = /X509v3 Subject Key Identifier:\s+(\S+)/.exec(x509Text(rsaRoot.cert))?.[1];
      const caText = x509Text(join(out, 'ca-cert.pem'));
      assert.ok(rootSki && caText.includes(rootSki), 'intermediate AKI names the openssl root SKI');
      assert.match(caText, /Signature Algorithm: sha256WithRSAEncryption/);
      const wl = join(t.path, 'wl');
      await ok(['issue', '--dir', dir, '--cluster', 'c1', '--spiffe-id', ID, '--key-algorithm', 'ec-p256', '--out', wl]);
      assertWorkloadChainVerifies(wl, rsaRoot.cert, ID);
    } finally {
      t.cleanup();
    }
  });

  // Cases are independent (own temp dir, read-only template), so two run at once.
  describe('bad inputs: a clear error, a non-zero exit, and nothing written', { concurrency: 2 }, () => {
    /** A state directory with a root and cluster "east", copied into each case. */
    const template = join(shared.path, 'template');
    before(async () => {
      await ok(['init', '--dir', template, '--key-algorithm', 'ec-p256']);
      await ok([
        'intermediate',
        '--dir',
        template,
        '--cluster',
        'east',
        '--out',
        join(shared.path, 'east-out'),
        '--key-algorithm',
        'ec-p256',
      ]);
    });

    for (const c of BAD_INPUTS) {
      it(c.name, async () => {
        const t = tempDir();
        try {
          cpSync(template, join(t.path, 'state'), { recursive: true });
          const args = await c.setup(t.path);
          const before = snapshotTree(t.path);
          const r = await runMeshca(args);
          assert.equal(r.code, c.code, `exit ${r.code}, stderr:\n${r.stderr}`);
          assert.match(r.stderr, c.stderr);
          assert.deepEqual(snapshotTree(t.path), before, 'files were written or changed');
          assert.equal(existsSync(join(t.path, 'out')), false);
          assert.deepEqual(tmpFilesBelow(t.path), []);
        } finally {
          t.cleanup();
        }
      });
    }
  });
});
