// The documentation test's own machinery: that it reads blocks and directives as documented in
// docs/testing.md, and that a failing command, wrong output or a server that dies fails the page.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { codeBlocks, consoleCommands, logicalLines, relativeLinks } from './markdown.js';
import { bare, pageScript, runBash, substitute } from './page-script.js';

const fence = '```';

describe('reading Markdown', () => {
  it('takes sh, bash and console blocks with the directive above them, and skips other fences whole', () => {
    const md = [
      '# t',
      `${fence}yaml`,
      `${fence}sh`,
      'not a block: inside yaml',
      fence,
      '<!-- docs-test: background, wait-for "ready now" -->',
      '',
      `${fence}sh`,
      'server --flag',
      fence,
      '<!-- docs-test: exit=1, in-clone -->',
      `${fence}bash`,
      'false',
      fence,
      `${fence}console`,
      '$ echo hi',
      'hi',
      fence,
    ].join('\n');
    const blocks = codeBlocks(md);
    assert.deepEqual(
      blocks.map((b) => [b.lang, b.line, b.body]),
      [
        ['sh', 8, 'server --flag'],
        ['bash', 12, 'false'],
        ['console', 15, '$ echo hi\nhi'],
      ],
    );
    assert.deepEqual(blocks[0].directive, { background: true, waitFor: 'ready now', inClone: false, exit: 0 });
    assert.deepEqual(blocks[1].directive, { background: false, inClone: true, exit: 1 });
    assert.throws(() => codeBlocks(`<!-- docs-test: backgroud -->\n${fence}sh\ntrue\n${fence}`), /unknown docs-test option "backgroud"/);
  });

  it('joins continuations, keeps heredoc bodies apart, and splits console commands from their output', () => {
    assert.deepEqual(logicalLines("a \\\n  --b\ncat > f <<'EOF'\nnpm test\nEOF\nc"), [
      { text: 'a  --b', heredoc: false },
      { text: "cat > f <<'EOF'", heredoc: false },
      { text: 'npm test', heredoc: true },
      { text: 'EOF', heredoc: true },
      { text: 'c', heredoc: false },
    ]);
    assert.deepEqual(consoleCommands('$ a \\\n  b\nout 1\n\nout 2\n$ c'), [
      { command: 'a  b', expected: ['out 1', 'out 2'] },
      { command: 'c', expected: [] },
    ]);
  });

  it('strips a trailing comment only outside quotes, and substitutes by the bare command', () => {
    assert.equal(bare("kubectl create namespace x   # meshca's Role"), 'kubectl create namespace x');
    assert.equal(bare("echo 'a # b' # c"), "echo 'a # b'");
    assert.equal(bare('curl host/#frag'), 'curl host/#frag');
    assert.equal(substitute('kubectl apply -k deploy/kubernetes   # apply'), 'kubectl kustomize deploy/kubernetes > /dev/null');
    assert.equal(substitute('meshca init --key rsa-2048'), 'meshca init --key rsa-2048');
  });

  it('finds relative links outside code, without anchors', () => {
    assert.deepEqual(relativeLinks('[a](docs/a.md#x) [b](https://x.y) [c](#here) `[d](no.md)`\n```\n[e](no2.md)\n```\n[f](../f.md)'), [
      'docs/a.md',
      '../f.md',
    ]);
  });
});

describe('running a page', () => {
  const run = async (md: string): Promise<{ code: number; stderr: string; stdout: string }> => {
    const t = tempDir('meshca-docs-harness-');
    try {
      const dt = join(t.path, 'dt');
      mkdirSync(dt);
      return await runBash(pageScript('page.md', codeBlocks(md), dt), t.path, { ...process.env, DOCS_TEST_REPO: '/nonexistent' });
    } finally {
      t.cleanup();
    }
  };

  it('passes when every command succeeds, with exports carried from block to block', async () => {
    const r = await run(`${fence}sh\nexport X=1\n${fence}\n${fence}sh\ntest "$X" = 1\n${fence}`);
    assert.equal(r.code, 0, r.stderr);
  });

  it('fails on a failing command in the middle of a block, and on a failing stage of a pipe', async () => {
    assert.notEqual((await run(`${fence}sh\ntrue\nfalse\ntrue\n${fence}`)).code, 0);
    assert.notEqual((await run(`${fence}sh\nfalse | cat\n${fence}`)).code, 0);
  });

  it('checks console output, with ... standing for anything', async () => {
    assert.equal((await run(`${fence}console\n$ echo root ABC123 ok\nroot ... ok\n${fence}`)).code, 0);
    const wrong = await run(`${fence}console\n$ echo root ABC123 ok\nroot ... fine\n${fence}`);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /expected output "root \.\.\. fine"/);
  });

  it('holds a documented exit status to exactly that status', async () => {
    assert.equal((await run(`<!-- docs-test: exit=1 -->\n${fence}sh\nexit 1\n${fence}`)).code, 0);
    assert.notEqual((await run(`<!-- docs-test: exit=1 -->\n${fence}sh\ntrue\n${fence}`)).code, 0);
    assert.notEqual((await run(`<!-- docs-test: exit=1 -->\n${fence}sh\nexit 2\n${fence}`)).code, 0);
  });

  it('waits for a background command, fails when it dies first, and stops it at the end', async () => {
    const ok = await run(
      `<!-- docs-test: background, wait-for "up" -->\n${fence}sh\nsh -c 'sleep 0.3; echo up; sleep 60'\n${fence}\n${fence}sh\necho after\n${fence}`,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /after/);
    const died = await run(`<!-- docs-test: background, wait-for "up" -->\n${fence}sh\nsh -c 'echo boom; exit 3'\n${fence}`);
    assert.notEqual(died.code, 0);
    assert.match(died.stderr, /exited before printing up/);
  });
});
