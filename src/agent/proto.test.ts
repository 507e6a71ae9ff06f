import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from './proto.js';

test('request fields sit at the Istio field numbers: csr 1, validity_duration 3, metadata 4', () => {
  const buf = encodeRequest({ csr: 'C', validityDuration: 3600, metadata: { ClusterID: 'k1' } });
  assert.equal(buf[0], 0x0a); // field 1, length-delimited
  assert.deepEqual([...buf.subarray(0, 3)], [0x0a, 0x01, 0x43]);
  assert.equal(buf[3], 0x18); // field 3, varint
  assert.equal(buf[6], 0x22); // field 4, length-delimited (3600 is a two-byte varint)
  assert.deepEqual(decodeRequest(buf), { csr: 'C', validityDuration: 3600, metadata: { ClusterID: 'k1' } });
});

test('an absent TTL and empty metadata leave the fields out', () => {
  assert.deepEqual([...encodeRequest({ csr: 'C' })], [0x0a, 0x01, 0x43]);
});

test('responses decode with and without the root_cert field', () => {
  const withRoots = encodeResponse({ certChain: ['leaf', 'root'], rootCerts: ['root', 'old-root'] });
  assert.deepEqual(decodeResponse(withRoots), { certChain: ['leaf', 'root'], rootCerts: ['root', 'old-root'] });
  const legacy = encodeResponse({ certChain: ['leaf', 'root'], rootCerts: [] });
  assert.deepEqual(decodeResponse(legacy), { certChain: ['leaf', 'root'], rootCerts: [] });
  // Field 2 is Roots{repeated string ca_cert = 1}: 0x12 len 0x0a len "r".
  assert.deepEqual([...encodeResponse({ certChain: [], rootCerts: ['r'] })], [0x12, 0x03, 0x0a, 0x01, 0x72]);
});
