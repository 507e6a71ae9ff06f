import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ResponseType } from '../../proto/istio-ca.js';
import { encodeResponse, type CertificateResponse } from './proto.js';

/** What the server wrote before its encoder was hand-written: protobufjs from the same object. */
function viaProtobufjs(r: CertificateResponse): Buffer {
  return Buffer.from(ResponseType.encode({ cert_chain: r.certChain, root_cert: { ca_cert: r.roots } }).finish());
}

function decoded(buf: Buffer): { certChain: string[]; roots: string[] } {
  const o = ResponseType.toObject(ResponseType.decode(buf), { arrays: true }) as {
    cert_chain: string[];
    root_cert?: { ca_cert?: string[] };
  };
  return { certChain: o.cert_chain, roots: o.root_cert?.ca_cert ?? [] };
}

const pem = (n: number, c = 'B') => `-----BEGIN CERTIFICATE-----\n${c.repeat(n)}\n-----END CERTIFICATE-----\n`;

const cases: [string, CertificateResponse][] = [
  ['a three-certificate chain and one root', { certChain: [pem(900), pem(700), pem(620)], roots: [pem(620)] }],
  ['two roots during a rotation', { certChain: [pem(900), pem(700), pem(620) + pem(610, 'C')], roots: [pem(620), pem(610, 'C')] }],
  ['no roots: field 2 is still written, empty', { certChain: ['leaf'], roots: [] }],
  ['nothing at all', { certChain: [], roots: [] }],
  ['empty strings', { certChain: ['', 'x'], roots: [''] }],
  ['non-ASCII text (two-, three- and four-byte UTF-8)', { certChain: ['é', '漢字', '😀 ok'], roots: ['ü'.repeat(100)] }],
];
// Length prefixes at every varint boundary: 1, 2 and 3 bytes, on both sides of each limit.
for (const n of [127, 128, 16_383, 16_384, 70_000])
  cases.push([`a ${n}-byte string`, { certChain: ['a'.repeat(n)], roots: ['r'.repeat(n)] }]);
// A Roots message whose own length crosses a varint boundary although each string does not.
cases.push(['a Roots message of exactly 128 bytes', { certChain: ['l'], roots: ['r'.repeat(63), 's'.repeat(61)] }]);

for (const [name, r] of cases) {
  test(`response encoding matches protobufjs byte for byte: ${name}`, () => {
    const ours = encodeResponse(r);
    assert.deepEqual(ours, viaProtobufjs(r));
    assert.deepEqual(decoded(ours), { certChain: r.certChain, roots: r.roots });
  });
}

test('the encoded response starts with field 1 and puts Roots in field 2', () => {
  assert.deepEqual([...encodeResponse({ certChain: ['L'], roots: ['r'] })], [0x0a, 0x01, 0x4c, 0x12, 0x03, 0x0a, 0x01, 0x72]);
});
