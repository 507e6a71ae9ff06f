import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { opensslOk } from '../helpers/openssl.js';
import { ok, runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

/** The subject as openssl prints it, independently of meshca's own rendering. */
function subjectOf(dir: string): string {
  return opensslOk(['x509', '-noout', '-subject', '-nameopt', 'oneline', '-in', join(dir, 'root', 'root-cert.pem')]).trim();
}

describe('init --subject makes the roots the guides use', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());

  it("takes openssl's /C=.../CN=... form, with C, ST, L, O, OU and CN", async () => {
    const dir = join(tmp.path, 'openssl');
    const subject = '/C=US/ST=Washington/L=Seattle/O=Example Corp/OU=Mesh/CN=Root CA';
    ok(await runMeshca(['init', '--dir', dir, '--subject', subject]), 'init --subject');
    assert.equal(subjectOf(dir), 'subject=C = US, ST = Washington, L = Seattle, O = Example Corp, OU = Mesh, CN = Root CA');
  });

  it("takes RFC 4514's CN=...,O=...,C=US form with an escaped comma, and no O at all", async () => {
    const dir = join(tmp.path, 'rfc4514');
    ok(await runMeshca(['init', '--dir', dir, '--subject', 'CN=Root CA,O=Example\\, Inc.,C=US']), 'init --subject');
    assert.equal(subjectOf(dir), 'subject=C = US, O = "Example, Inc.", CN = Root CA');
    const cnOnly = join(tmp.path, 'cn-only');
    ok(await runMeshca(['init', '--dir', cnOnly, '--subject', '/CN=Root CA']), 'init --subject /CN=');
    assert.equal(subjectOf(cnOnly), 'subject=CN = Root CA');
  });

  it('refuses --subject with --org or --cn, and a bad subject, creating nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['--subject', '/CN=x', '--org', 'y'], /'--subject <dn>' cannot be used with option '--org <name>'/],
      [['--subject', '/CN=x', '--cn', 'y'], /'--subject <dn>' cannot be used with option '--cn <name>'/],
      [['--subject', '/CN=x/X=1'], /"X=1" is not KEY=value/],
      [['--subject', '/C=USA/CN=x'], /country "USA" must be a two-letter/],
      [['--subject', '/O=/CN=x'], /O has no value/],
      [['--subject', ''], /must name at least one attribute/],
    ];
    for (const [args, message] of cases) {
      const dir = join(tmp.path, 'refused');
      const r = await runMeshca(['init', '--dir', dir, ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(existsSync(dir), false, args.join(' '));
    }
  });
});
