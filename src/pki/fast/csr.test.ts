import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createCsr, parseCsr } from '../csr.js';
import { MeshcaError } from '../errors.js';
import { issueWorkloadCertificate, issueWorkloadCertificateLibrary, type WorkloadRequest } from '../issue.js';
import { generateKeyPair } from '../keys.js';
import { OID } from '../oids.js';
import { encodePem } from '../pem.js';
import { encodeOid, encodeTlv } from './der.js';
import { expectTlv, parseCsrFast, readTlv } from './index.js';
import { makeSigner, opensslCsr, tbsOf } from './testing.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';
const ec = generateKeyPair('ec-p256').privateKey;
const rsa = generateKeyPair('rsa-2048').privateKey;
const good = createCsr({ key: ec, sans: { uris: [ID] } }).der;
const goodRsa = createCsr({ key: rsa, sans: { uris: [ID] } }).der;

function outcome(f: () => unknown): { ok: true } | { code: string; reason: string; message: string } {
  try {
    f();
    return { ok: true };
  } catch (e) {
    if (!(e instanceof MeshcaError)) throw e;
    return { code: e.code, reason: e.reason, message: e.message };
  }
}

/** Replaces the signature BIT STRING of a DER CSR. */
function withSignature(der: Buffer, sigBits: Buffer): Buffer {
  const outer = readTlv(der, 0, der.length);
  const info = readTlv(der, outer.body, outer.end);
  const alg = readTlv(der, info.end, outer.end);
  const body = Buffer.concat([der.subarray(info.start, alg.end), sigBits]);
  return encodeTlv(0x30, body);
}

function flipLastSignatureByte(der: Buffer): Buffer {
  const out = Buffer.from(der);
  out[out.length - 1] ^= 0x01;
  return out;
}

const p521 = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']);
const rsa1024 = opensslCsr(['-newkey', 'rsa:1024']);

const BAD: [string, string | Buffer, string][] = [
  ['garbage bytes', randomBytes(300), 'malformed_csr'],
  ['empty input', Buffer.alloc(0), 'malformed_csr'],
  ['truncated DER', good.subarray(0, good.length - 20), 'malformed_csr'],
  ['truncated header', good.subarray(0, 3), 'malformed_csr'],
  ['bad signature (one byte flipped)', flipLastSignatureByte(good), 'bad_csr_signature'],
  ['bad RSA signature (one byte flipped)', flipLastSignatureByte(goodRsa), 'bad_csr_signature'],
  ['RSA-1024 key (openssl req)', rsa1024, 'weak_key'],
  ['P-521 key (openssl req)', p521, 'bad_curve'],
  ['unsigned (empty signature)', withSignature(good, Buffer.from([0x03, 0x01, 0x00])), 'unsigned_csr'],
  ['PEM with the wrong label', encodePem('CERTIFICATE', good), 'bad_pem'],
  ['PEM with a broken body', '-----BEGIN CERTIFICATE REQUEST-----\nMII$$\n-----END CERTIFICATE REQUEST-----\n', 'bad_pem'],
  ['text without PEM', 'hello', 'bad_pem'],
];

for (const [name, input, reason] of BAD) {
  test(`bad input gives the library's error: ${name}`, () => {
    const lib = outcome(() => parseCsr(input));
    const fast = outcome(() => parseCsrFast(input));
    assert.equal('reason' in lib && lib.reason, reason, `library: ${JSON.stringify(lib)}`);
    assert.deepEqual(fast, lib);
  });
}

test('a signature algorithm that does not fit the key is a bad signature, as in the library', () => {
  // Swap ecdsa-with-SHA256 for sha256WithRSAEncryption: the family check must refuse it.
  const outer = readTlv(good, 0, good.length);
  const info = readTlv(good, outer.body, outer.end);
  const alg = readTlv(good, info.end, outer.end);
  const rsaAlg = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
  const body = Buffer.concat([good.subarray(info.start, info.end), rsaAlg, good.subarray(alg.end, outer.end)]);
  const der = encodeTlv(0x30, body);
  const lib = outcome(() => parseCsr(der));
  assert.equal('reason' in lib && lib.reason, 'bad_csr_signature');
  assert.deepEqual(
    outcome(() => parseCsrFast(der)),
    lib,
  );
});

test('an unsupported signature algorithm is refused like the library does', () => {
  const der = Buffer.from(good);
  // ecdsa-with-SHA256 (…04 03 02) becomes ecdsa-with-SHA224 (…04 03 01).
  const at = der.lastIndexOf(Buffer.from('2a8648ce3d040302', 'hex'));
  der[at + 7] = 0x01;
  const lib = outcome(() => parseCsr(der));
  assert.equal('reason' in lib && lib.reason, 'bad_csr_signature');
  assert.deepEqual(
    outcome(() => parseCsrFast(der)),
    lib,
  );
});

test('good requests parse to the same fields', () => {
  const inputs: (string | Buffer)[] = [
    good,
    encodePem('CERTIFICATE REQUEST', goodRsa),
    createCsr({
      key: ec,
      subject: { commonName: 'w', organization: ['x'] },
      sans: { uris: [ID], dnsNames: ['a.example'], ipAddresses: ['10.1.2.3', '2001:db8::1'], emailAddresses: ['a@b.c'] },
    }).pem,
    createCsr({ key: generateKeyPair('ec-p384').privateKey, isCA: true, subject: { commonName: 'ca' } }).der,
    opensslCsr(
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      [
        '-addext',
        `subjectAltName=URI:${ID},DNS:x.example,IP:::1`,
        '-addext',
        'keyUsage=digitalSignature',
        '-addext',
        'extendedKeyUsage=clientAuth',
      ],
    ),
    opensslCsr(
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      ['-addext', 'subjectAltName=otherName:1.2.3.4;UTF8:x,email:a@b.c', '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:1'],
    ),
  ];
  for (const input of inputs) {
    const lib = parseCsr(input);
    const fast = parseCsrFast(input);
    assert.deepEqual(fast.der, lib.der);
    assert.deepEqual(fast.spkiDer, lib.spkiDer);
    assert.deepEqual(fast.subjectDer, lib.subjectDer);
    assert.equal(fast.subjectEmpty, lib.subjectEmpty);
    assert.deepEqual(fast.keyInfo, lib.keyInfo);
    assert.equal(fast.signatureAlgorithmOid, lib.signatureAlgorithmOid);
    assert.deepEqual(fast.sans, stripCritical(lib.sans));
    assert.equal(fast.requestsCA, lib.requestsCA);
    assert.deepEqual(fast.requestedExtensions, lib.requestedExtensions);
    assert.ok(fast.publicKey.equals(lib.publicKey));
    assert.equal(fast.spkiCanonical, true);
  }
});

function stripCritical(s: object): object {
  const { critical: _c, ...rest } = s as Record<string, unknown>;
  return rest;
}

test('non-URI SANs are refused with permission_denied on both paths', () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const variants = [{ dnsNames: ['a.example'] }, { ipAddresses: ['10.0.0.1'] }, { emailAddresses: ['a@b.c'] }];
  for (const sans of variants) {
    const csr = createCsr({ key: ec, sans: { uris: [ID], ...sans } }).pem;
    const req: WorkloadRequest = { csr, identities: [ID], ttlSeconds: 60, now };
    const lib = outcome(() => issueWorkloadCertificateLibrary(signer, req));
    assert.equal('code' in lib && lib.code, 'permission_denied');
    assert.deepEqual(
      outcome(() => issueWorkloadCertificate(signer, req)),
      lib,
    );
  }
});

test('every bad input fails issuance exactly as the library path does', () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  for (const [, input] of BAD) {
    const req: WorkloadRequest = { csr: input, identities: [ID], ttlSeconds: 60, now };
    assert.deepEqual(
      outcome(() => issueWorkloadCertificate(signer, req)),
      outcome(() => issueWorkloadCertificateLibrary(signer, req)),
    );
  }
});

test('BER the lean parser refuses is decided by the library path during issuance', () => {
  // Re-encode the outer length in a non-minimal long form: valid BER, not DER.
  const outer = readTlv(good, 0, good.length);
  const len = outer.end - outer.body;
  const ber = Buffer.concat([Buffer.from([0x30, 0x83, 0, len >> 8, len & 0xff]), good.subarray(outer.body)]);
  assert.equal((outcome(() => parseCsrFast(ber)) as { reason?: string }).reason, 'malformed_csr');
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const req: WorkloadRequest = { csr: ber, identities: [ID], ttlSeconds: 60, now, serial: Buffer.from([7]) };
  const lib = outcome(() => issueWorkloadCertificateLibrary(signer, req));
  assert.deepEqual(
    outcome(() => issueWorkloadCertificate(signer, req)),
    lib,
  );
});

test('lengths are bounded: every prefix of a good request is refused, never read past', () => {
  for (let n = 0; n < good.length; n++) {
    const r = outcome(() => parseCsrFast(good.subarray(0, n)));
    assert.ok('reason' in r && r.reason === 'malformed_csr', `prefix ${n}: ${JSON.stringify(r)}`);
  }
  // And every single-byte corruption either parses or fails with a MeshcaError (never a crash).
  for (let i = 0; i < good.length; i++) {
    const der = Buffer.from(good);
    der[i] ^= 0x80;
    outcome(() => parseCsrFast(der));
  }
  assert.ok(expectTlv(good, 0, good.length, 0x30, 'x'));
});

test('PEM variants decode exactly as the library decodes them', () => {
  const b64 = good.toString('base64');
  const lines = b64.replace(/(.{64})/g, '$1\n');
  const block = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
  const variants = [
    block('CERTIFICATE REQUEST', lines),
    block('CERTIFICATE REQUEST', lines).replace(/\n/g, '\r\n'),
    `some text before\n${block('CERTIFICATE REQUEST', b64)}and after`,
    block('NEW CERTIFICATE REQUEST', lines),
    block('CERTIFICATE REQUEST', ` \t${lines} `),
    block('CERTIFICATE REQUEST', lines) + block('CERTIFICATE', 'AAAA'),
    block('CERTIFICATE REQUEST', lines) + block('CERTIFICATE', '%%%'),
    block('CERTIFICATE', 'AAAA') + block('CERTIFICATE REQUEST', lines),
    block('CERTIFICATE REQUEST', '   \n  '),
    block('CERTIFICATE REQUEST', 'AA==AA'),
    block('CERTIFICATE REQUEST', 'AA=\n='),
    block('CERTIFICATE REQUEST', 'AA==='),
    '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n',
  ];
  for (const v of variants) {
    for (const input of [v, Buffer.from(v)]) {
      const lib = outcome(() => parseCsr(input));
      const fast = outcome(() => parseCsrFast(input));
      assert.deepEqual(fast, lib, JSON.stringify(v));
    }
  }
});

/** A CSR assembled by hand around a given SPKI, signed with `key`: for key encodings no tool writes by default. */
function handCsr(key: KeyObject, spki: Buffer, hashOid: string, withNull: boolean): Buffer {
  const uri = Buffer.from(ID, 'latin1');
  const san = encodeTlv(
    0x30,
    encodeOid('2.5.29.17'),
    Buffer.from([0x01, 0x01, 0xff]),
    encodeTlv(0x04, encodeTlv(0x30, encodeTlv(0x86, uri))),
  );
  const attr = encodeTlv(0x30, encodeOid('1.2.840.113549.1.9.14'), encodeTlv(0x31, encodeTlv(0x30, san)));
  const info = encodeTlv(0x30, Buffer.from([0x02, 0x01, 0x00]), Buffer.from([0x30, 0x00]), spki, encodeTlv(0xa0, attr));
  const alg = withNull ? encodeTlv(0x30, encodeOid(hashOid), Buffer.from([0x05, 0x00])) : encodeTlv(0x30, encodeOid(hashOid));
  return encodeTlv(0x30, info, alg, encodeTlv(0x03, Buffer.from([0]), sign('sha256', info, key)));
}

test('non-canonical key encodings load through DER and give the library certificate', () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  // EC P-256 with a compressed point.
  const ecKey = generateKeyPair('ec-p256');
  const raw = ecKey.publicKey.export({ format: 'der', type: 'spki' });
  const point = raw.subarray(raw.length - 64);
  const compressed = Buffer.concat([Buffer.from([(point[63] & 1) === 0 ? 0x02 : 0x03]), point.subarray(0, 32)]);
  const ecAlg = readTlv(raw, 2, raw.length);
  const ecSpki = encodeTlv(0x30, raw.subarray(ecAlg.start, ecAlg.end), encodeTlv(0x03, Buffer.from([0]), compressed));
  // RSA without the NULL parameters (RFC 3279 asks for them; some encoders drop them).
  const rsaKey = generateKeyPair('rsa-2048');
  const rsaRaw = rsaKey.publicKey.export({ format: 'der', type: 'spki' });
  const rsaOuter = readTlv(rsaRaw, 0, rsaRaw.length);
  const rsaAlg = readTlv(rsaRaw, rsaOuter.body, rsaOuter.end);
  const rsaSpki = encodeTlv(0x30, encodeTlv(0x30, encodeOid('1.2.840.113549.1.1.1')), rsaRaw.subarray(rsaAlg.end, rsaOuter.end));
  const cases: [string, Buffer][] = [
    ['compressed EC point', handCsr(ecKey.privateKey, ecSpki, '1.2.840.10045.4.3.2', false)],
    ['RSA without NULL parameters', handCsr(rsaKey.privateKey, rsaSpki, '1.2.840.113549.1.1.11', true)],
  ];
  for (const [name, der] of cases) {
    const fast = parseCsrFast(der);
    assert.equal(fast.spkiCanonical, false, name);
    assert.deepEqual(fast.keyInfo, parseCsr(der).keyInfo, name);
    const req: WorkloadRequest = { csr: der, identities: [ID], ttlSeconds: 60, now, serial: Buffer.from([9]) };
    const a = issueWorkloadCertificateLibrary(signer, req);
    const b = issueWorkloadCertificate(signer, req);
    assert.deepEqual(tbsOf(b.certDer), tbsOf(a.certDer), name);
  }
});

/** A request carrying exactly these Extension TLVs (and a SPIFFE URI SAN), signed with `ec`. */
function csrWithExtensions(...exts: Buffer[]): Buffer {
  const uri = Buffer.from(ID);
  const san = encodeTlv(0x30, encodeOid(OID.subjectAltName), encodeTlv(0x04, encodeTlv(0x30, encodeTlv(0x86, uri))));
  const spki = createPublicKey(ec).export({ type: 'spki', format: 'der' });
  const extReq = encodeTlv(0x30, encodeOid(OID.extensionRequest), encodeTlv(0x31, encodeTlv(0x30, san, ...exts)));
  const info = encodeTlv(0x30, encodeTlv(0x02, Buffer.from([0])), encodeTlv(0x30), spki, encodeTlv(0xa0, extReq));
  const alg = encodeTlv(0x30, encodeOid(OID.ecdsaWithSHA256));
  return encodeTlv(0x30, info, alg, encodeTlv(0x03, Buffer.from([0]), sign('sha256', info, ec)));
}
const keyUsage = (unused: number, ...bits: number[]) =>
  encodeTlv(
    0x30,
    encodeOid(OID.keyUsage),
    encodeTlv(0x01, Buffer.from([0xff])),
    encodeTlv(0x04, encodeTlv(0x03, Buffer.from([unused, ...bits]))),
  );
const basicConstraints = (ca: boolean) =>
  encodeTlv(
    0x30,
    encodeOid(OID.basicConstraints),
    encodeTlv(0x04, ca ? encodeTlv(0x30, encodeTlv(0x01, Buffer.from([0xff]))) : encodeTlv(0x30)),
  );

test('a CSR asking for CA powers is refused with invalid_argument ca_not_allowed on both paths, never answered with a leaf', () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const asking: [string, Buffer][] = [
    ['basicConstraints CA:TRUE (meshca)', createCsr({ key: ec, isCA: true, sans: { uris: [ID] } }).der],
    [
      'basicConstraints CA:TRUE (openssl)',
      opensslCsr(
        ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
        ['-addext', `subjectAltName=URI:${ID}`, '-addext', 'basicConstraints=critical,CA:TRUE'],
      ),
    ],
    [
      'keyUsage keyCertSign (openssl)',
      opensslCsr(
        ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
        ['-addext', `subjectAltName=URI:${ID}`, '-addext', 'keyUsage=critical,digitalSignature,keyCertSign'],
      ),
    ],
    [
      'keyUsage cRLSign (openssl)',
      opensslCsr(['-newkey', 'rsa:2048'], ['-addext', `subjectAltName=URI:${ID}`, '-addext', 'keyUsage=cRLSign']),
    ],
    ['keyUsage keyCertSign', csrWithExtensions(keyUsage(2, 0x04))],
    ['keyUsage cRLSign', csrWithExtensions(keyUsage(1, 0x02))],
    // keyCertSign before a CA:FALSE basicConstraints: the later extension must not clear the request.
    ['keyUsage keyCertSign then basicConstraints CA:FALSE', csrWithExtensions(keyUsage(2, 0x84), basicConstraints(false))],
    ['basicConstraints CA:TRUE then keyUsage digitalSignature', csrWithExtensions(basicConstraints(true), keyUsage(7, 0x80))],
    // The bit is set though the unused-bits count says it is padding: still a request for CA powers.
    ['keyUsage keyCertSign in the padding', csrWithExtensions(keyUsage(6, 0x04))],
    ['keyUsage keyCertSign in a 9-octet bit string', csrWithExtensions(keyUsage(0, 0x04, 0, 0, 0, 0, 0, 0, 0, 1))],
  ];
  for (const [name, der] of asking) {
    assert.equal(parseCsrFast(der).requestsCA, true, name);
    assert.equal(parseCsr(der).requestsCA, true, name);
    const req: WorkloadRequest = { csr: der, identities: [ID], ttlSeconds: 60, now };
    const lib = outcome(() => issueWorkloadCertificateLibrary(signer, req));
    assert.deepEqual('code' in lib && [lib.code, lib.reason], ['invalid_argument', 'ca_not_allowed'], name);
    assert.deepEqual(
      outcome(() => issueWorkloadCertificate(signer, req)),
      lib,
      name,
    );
  }
  const endEntity: [string, Buffer][] = [
    ['keyUsage digitalSignature, keyEncipherment, keyAgreement', csrWithExtensions(keyUsage(3, 0xa8))],
    ['basicConstraints CA:FALSE', csrWithExtensions(basicConstraints(false))],
    ['keyUsage decipherOnly', csrWithExtensions(keyUsage(7, 0x00, 0x80))],
  ];
  for (const [name, der] of endEntity) {
    assert.equal(parseCsrFast(der).requestsCA, false, name);
    assert.equal(parseCsr(der).requestsCA, false, name);
    const req: WorkloadRequest = { csr: der, identities: [ID], ttlSeconds: 60, now };
    assert.deepEqual(issueWorkloadCertificate(signer, req).sans, { uris: [ID] }, name);
  }
});
