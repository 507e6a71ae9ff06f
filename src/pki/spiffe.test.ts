import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSpiffeId, isSpiffeId, parseSpiffeId, parseWorkloadId, workloadSpiffeId } from './spiffe.js';

const VALID: [string, string, string][] = [
  ['spiffe://cluster.local/ns/default/sa/web', 'cluster.local', '/ns/default/sa/web'],
  ['spiffe://example.org', 'example.org', ''],
  ['spiffe://td-1_x.y/A.b-c_D/09', 'td-1_x.y', '/A.b-c_D/09'],
  ['spiffe://a/..b/.c', 'a', '/..b/.c'],
];

const INVALID: [string, string, RegExp][] = [
  ['uppercase trust domain', 'spiffe://Cluster.local/ns/a', /trust domain "Cluster\.local" has characters other than lowercase letters/],
  ['port', 'spiffe://cluster.local:8443/ns/a', /must not have a port/],
  ['userinfo', 'spiffe://user@cluster.local/ns/a', /must not have user info/],
  ['query', 'spiffe://cluster.local/ns/a?x=1', /must not have a query or fragment/],
  ['fragment', 'spiffe://cluster.local/ns/a#frag', /must not have a query or fragment/],
  ['empty segment', 'spiffe://cluster.local/ns//a', /has an empty segment/],
  ['"." segment', 'spiffe://cluster.local/ns/./a', /has a "\." segment/],
  ['".." segment', 'spiffe://cluster.local/ns/../a', /has a "\.\." segment/],
  ['trailing slash', 'spiffe://cluster.local/ns/a/', /must not end with "\/"/],
  ['bad path character', 'spiffe://cluster.local/ns/a b', /path segment "a b" has characters other than/],
  ['percent-encoding', 'spiffe://cluster.local/ns/a%20b', /path segment "a%20b" has characters other than/],
  ['bad trust domain character', 'spiffe://clus*ter/ns/a', /trust domain "clus\*ter" has characters/],
  ['empty trust domain', 'spiffe:///ns/a', /trust domain is empty/],
  ['wrong scheme', 'https://cluster.local/ns/a', /has scheme "https"; a SPIFFE ID must use "spiffe"/],
  ['uppercase scheme', 'SPIFFE://cluster.local/ns/a', /has scheme "SPIFFE"/],
  ['not a URI', 'cluster.local/ns/a', /is not a SPIFFE ID/],
  ['too long', `spiffe://a/${'x'.repeat(2048)}`, /longer than 2048 bytes/],
];

describe('SPIFFE IDs', () => {
  for (const [id, td, path] of VALID) {
    it(`accepts ${id}`, () => {
      assert.deepEqual(parseSpiffeId(id), { trustDomain: td, path });
      assert.equal(formatSpiffeId({ trustDomain: td, path }), id);
      assert.equal(isSpiffeId(id), true);
    });
  }
  for (const [what, id, msg] of INVALID) {
    it(`rejects ${what}`, () => {
      assert.throws(() => parseSpiffeId(id), (e: Error & { reason?: string }) => {
        assert.equal(e.reason, 'bad_spiffe_id');
        assert.match(e.message, msg);
        return true;
      });
      assert.equal(isSpiffeId(id), false);
    });
  }

  it('formats only valid parts', () => {
    assert.throws(() => formatSpiffeId({ trustDomain: 'ok', path: 'no-slash' }), /must start with "\/"/);
    assert.throws(() => formatSpiffeId({ trustDomain: 'UP', path: '/a' }), /trust domain "UP"/);
  });

  it('builds and splits Istio workload identities', () => {
    const id = workloadSpiffeId('cluster.local', 'bookinfo', 'reviews');
    assert.equal(id, 'spiffe://cluster.local/ns/bookinfo/sa/reviews');
    assert.deepEqual(parseWorkloadId(id), { trustDomain: 'cluster.local', namespace: 'bookinfo', serviceAccount: 'reviews' });
    assert.equal(parseWorkloadId('spiffe://cluster.local/other/path'), undefined);
    assert.throws(() => workloadSpiffeId('cluster.local', '', 'sa'), /namespace is empty/);
  });
});
