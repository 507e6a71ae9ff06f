import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeOid } from '../keys.js';
import { DerError, encodeOid, encodeTlv, readSmallInt, readTlv, tlvSize } from './der.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('readTlv reads short and long definite lengths', () => {
  assert.deepEqual(readTlv(hex('04 02 aa bb'), 0, 4), { tag: 4, start: 0, body: 2, end: 4 });
  const long = Buffer.concat([hex('04 81 80'), Buffer.alloc(0x80)]);
  assert.deepEqual(readTlv(long, 0, long.length), { tag: 4, start: 0, body: 3, end: 0x83 });
});

test('readTlv refuses what DER forbids and what runs past the limit', () => {
  const bad = [
    '04', // no length
    '04 03 aa bb', // content past the end
    '04 80 aa 00 00', // indefinite length
    '04 81 05 aa aa aa aa aa', // long form for a short length
    '04 82 00 81' + 'aa'.repeat(0x81), // leading zero length octet
    '1f 01 01 00', // high tag number
    '04 85 01 00 00 00 00', // five length octets
  ];
  for (const b of bad) {
    const buf = hex(b);
    assert.throws(() => readTlv(buf, 0, buf.length), DerError, b);
  }
  // The limit is honoured even when the buffer goes on.
  assert.throws(() => readTlv(hex('04 02 aa bb cc'), 0, 3), DerError);
});

test('readSmallInt: two’s complement, minimal only', () => {
  const int = (s: string) => {
    const b = hex(s);
    return readSmallInt(b, readTlv(b, 0, b.length));
  };
  assert.equal(int('02 01 00'), 0);
  assert.equal(int('02 01 7f'), 127);
  assert.equal(int('02 02 00 80'), 128);
  assert.equal(int('02 01 ff'), -1);
  assert.throws(() => int('02 02 00 01'), DerError);
  assert.throws(() => int('02 02 ff ff'), DerError);
  assert.throws(() => int('02 00'), DerError);
});

test('encodeTlv and encodeOid round-trip through the reader and decodeOid', () => {
  for (const n of [0, 1, 127, 128, 255, 256, 65_535, 65_536]) {
    const t = encodeTlv(0x04, Buffer.alloc(n, 1));
    assert.equal(t.length, tlvSize(n));
    const r = readTlv(t, 0, t.length);
    assert.equal(r.end - r.body, n);
    assert.equal(r.end, t.length);
  }
  for (const oid of ['1.2.840.10045.2.1', '2.5.29.17', '1.3.6.1.5.5.7.3.2', '2.999.1', '1.2.840.113549.1.9.14']) {
    assert.equal(decodeOid(encodeOid(oid)), oid);
  }
});
