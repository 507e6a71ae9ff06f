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
      assert.throws(
        () => parseSpiffeId(id),
        (e: Error & { reason?: string }) => {
          assert.equal(e.reason, 'bad_spiffe_id');
          assert.match(e.message, msg);
          return true;
        },
      );
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

  it('builds workload identities only from Kubernetes names', () => {
    const bad: [string, string, string][] = [
      ['evil/sa/x/ns/istio-system', 'y', 'bad_namespace'],
      ['Default', 'web', 'bad_namespace'],
      ['n'.repeat(64), 'web', 'bad_namespace'],
      ['a.b', 'web', 'bad_namespace'],
      ['-a', 'web', 'bad_namespace'],
      ['default', 'a/b', 'bad_service_account'],
      ['default', 'a:b', 'bad_service_account'],
      ['default', 'Web', 'bad_service_account'],
      ['default', '..', 'bad_service_account'],
      ['default', 'a..b', 'bad_service_account'],
      ['default', 'a.', 'bad_service_account'],
      ['default', 'a_b', 'bad_service_account'],
      ['default', 's'.repeat(254), 'bad_service_account'],
      ['default', '', 'bad_service_account'],
    ];
    for (const [ns, sa, reason] of bad) {
      assert.throws(
        () => workloadSpiffeId('cluster.local', ns, sa),
        (e: { code?: string; reason?: string }) => e.code === 'invalid_argument' && e.reason === reason,
        `${ns} ${sa}`,
      );
    }
    assert.equal(workloadSpiffeId('td', 'n'.repeat(63), 'a-1.b-2'), `spiffe://td/ns/${'n'.repeat(63)}/sa/a-1.b-2`);
    assert.equal(workloadSpiffeId('td', 'x', 's'.repeat(253)), `spiffe://td/ns/x/sa/${'s'.repeat(253)}`);
  });

  it('parseWorkloadId reads only paths whose namespace and service account are Kubernetes names', () => {
    for (const id of [
      'spiffe://td/ns/Default/sa/web',
      'spiffe://td/ns/default/sa/Web',
      'spiffe://td/ns/a_b/sa/web',
      'spiffe://td/ns/default/sa/..x',
      'spiffe://td/ns/default/sa/a..b',
      `spiffe://td/ns/${'n'.repeat(64)}/sa/web`,
    ]) {
      assert.equal(parseWorkloadId(id), undefined, id);
    }
    assert.deepEqual(parseWorkloadId('spiffe://td/ns/default/sa/web.v1'), {
      trustDomain: 'td',
      namespace: 'default',
      serviceAccount: 'web.v1',
    });
  });
});
