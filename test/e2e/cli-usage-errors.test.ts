import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runMeshca } from '../helpers/run.js';

/** A usage error: exit 2, the error and a one-line hint, and no help screen burying the error. */
async function usageError(args: string[]): Promise<string[]> {
  const r = await runMeshca(args);
  assert.equal(r.code, 2, `meshca ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.doesNotMatch(r.stderr, /Usage:|Options:/, `help printed after the error:\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.ok(lines.length <= 3, `more than the error and its hints:\n${r.stderr}`);
  return lines;
}

describe('usage errors print the error and a hint, not the help', () => {
  it('kubectl habit: -n before the command says where -n goes', async () => {
    const lines = await usageError(['-n', 'istio-system', 'get', 'certificate', 'istio-ca']);
    assert.equal(lines[0], "error: unknown option '-n'");
    assert.equal(lines[1], "(put -n after the command: meshca get -n istio-system certificate istio-ca; see 'meshca --help')");
  });

  it('an unknown command keeps the suggestion and points at the top help', async () => {
    const lines = await usageError(['gett']);
    assert.deepEqual(lines, ["error: unknown command 'gett'", '(Did you mean get?)', "(see 'meshca --help')"]);
  });

  it("an unknown option of a command points at that command's help", async () => {
    assert.deepEqual(await usageError(['get', '--bogus']), ["error: unknown option '--bogus'", "(see 'meshca get --help')"]);
    assert.deepEqual(await usageError(['get']), ["error: missing required argument 'kind'", "(see 'meshca get --help')"]);
    assert.deepEqual(await usageError(['cluster', 'list', '--bogus']), [
      "error: unknown option '--bogus'",
      "(see 'meshca cluster list --help')",
    ]);
  });

  it('--help still prints the whole help', async () => {
    const r = await runMeshca(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: meshca/);
  });
});
