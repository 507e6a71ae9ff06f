import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { opensslOk } from '../helpers/openssl.js';
import { ok, runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

/** One table row as header → cell, cut at the header's column offsets. */
function row(table: string, name: string): Record<string, string> {
  const [head, ...lines] = table.trimEnd().split('\n');
  const line = lines.find((l) => l.startsWith(`${name} `))!;
  assert.ok(line, `no row ${name} in:\n${table}`);
  const starts = [...head!.matchAll(/\S+(?: \S+)*/g)].map((m) => ({ h: m[0], at: m.index }));
  return Object.fromEntries(starts.map((s, i) => [s.h, line.slice(s.at, starts[i + 1]?.at ?? line.length).trim()]));
}

describe('get clusters and cluster list agree on when a cluster with only files expires', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const env = { MESHCA_HOME: join(tmp.path, 'state') };
  // Keys encrypted at rest: listing must still read the expiry, without the passphrase.
  const withPass = { env: { ...env, MESHCA_KEY_PASSPHRASE: 'correct horse battery staple' } };

  it("shows the intermediate's NotAfter, as openssl reads it, in both", async () => {
    const out = join(tmp.path, 'east');
    ok(await runMeshca(['init'], withPass), 'init');
    ok(await runMeshca(['intermediate', '--cluster', 'east', '--out', out], withPass), 'intermediate');
    ok(await runMeshca(['cluster', 'add', 'east', '--no-reconcile'], withPass), 'cluster add east');
    ok(await runMeshca(['cluster', 'add', 'west', '--no-reconcile'], withPass), 'cluster add west');
    const end = /notAfter=(.*)/.exec(opensslOk(['x509', '-noout', '-enddate', '-in', join(out, 'ca-cert.pem')]))![1]!;
    const expected = new Date(Date.parse(end)).toISOString();

    const get = row(ok(await runMeshca(['get', 'clusters'], { env }), 'get clusters').stdout, 'east');
    assert.equal(get.DELIVERY, 'files only');
    assert.equal(get.EXPIRES, expected);
    const list = ok(await runMeshca(['cluster', 'list'], { env }), 'cluster list').stdout;
    assert.equal(row(list, 'east').EXPIRES, expected);
    assert.equal(row(list, 'east')['TIME LEFT'], '364d');
    // No intermediate yet: nothing to expire, in both.
    assert.equal(row(ok(await runMeshca(['get', 'clusters'], { env }), 'get').stdout, 'west').EXPIRES, '');
    assert.equal(row(list, 'west').EXPIRES, '');
  });
});
