// Runs every ```sh, ```bash and ```console block of README.md, SECURITY.md and docs/*.md, so a
// command copied from the documentation does not fail. Each page runs as one bash script, block by
// block in order (exports carry over), with `set -eo pipefail`, in a scratch directory of its own,
// with `meshca` on PATH (what `npm link` does for a reader). Only the lines in SUBSTITUTIONS
// (page-script.ts) are rewritten, each for the reason given there; docs/testing.md lists the same
// table. The page's relative links must resolve too.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { MESHCA_BIN, REPO_ROOT } from '../helpers/run.js';
import { postgresBinDir, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { codeBlocks, consoleCommands, logicalLines, relativeLinks } from './markdown.js';
import { SUBSTITUTIONS, bare, pageScript, q, runBash } from './page-script.js';

const PAGES = [
  'README.md',
  'SECURITY.md',
  ...readdirSync(join(REPO_ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

const PCA_KEY = { id: 'AKIDDOCSTEST', secret: 'docs-test-secret-key' };

/** A local PCA-compatible API with a root CA, for pages that name an AWS Private CA. */
async function startPca(dir: string): Promise<{ url: string; arn: string; child: ChildProcess }> {
  const init = spawnSync(
    process.execPath,
    [MESHCA_BIN, 'init', '--dir', dir, '--key-algorithm', 'rsa-2048', '--org', 'Istio', '--cn', 'docs test PCA root'],
    { encoding: 'utf8' },
  );
  assert.equal(init.status, 0, init.stderr);
  const region = ['--pca-region', 'eu-west-1', '--pca-account', '123456789012'];
  const list = spawnSync(process.execPath, [MESHCA_BIN, 'pca-api', '--dir', dir, '--list-arns', '-o', 'json', ...region], {
    encoding: 'utf8',
  });
  assert.equal(list.status, 0, list.stderr);
  const arn = (JSON.parse(list.stdout) as { arn: string; type: string }[]).find((ca) => ca.type === 'ROOT')?.arn;
  assert.ok(arn, list.stdout + list.stderr);
  const child = spawn(
    process.execPath,
    [
      MESHCA_BIN,
      'pca-api',
      '--dir',
      dir,
      '--pca-api-addr',
      '127.0.0.1:0',
      '--quiet',
      ...region,
      '--pca-access-key',
      `${PCA_KEY.id}:${PCA_KEY.secret}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await new Promise<string>((res, rej) => {
    let seen = '';
    const timer = setTimeout(() => rej(new Error(`pca-api did not start: ${seen}`)), 20_000);
    const onData = (d: Buffer): void => {
      seen += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        res(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', () => rej(new Error(`pca-api exited: ${seen}`)));
  });
  return { url, arn, child };
}

function pageEnv(home: string, bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Nothing of the caller's meshca, AWS or Kubernetes settings leaks into the page.
  for (const [k, v] of Object.entries(process.env)) if (!/^(MESHCA_|AWS_|KUBECONFIG$|NODE_TEST|NODE_OPTIONS$)/.test(k)) env[k] = v;
  return {
    ...env,
    HOME: home,
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    KUBECONFIG: join(home, 'no-kubeconfig'),
    AWS_EC2_METADATA_DISABLED: 'true',
    DOCS_TEST_REPO: REPO_ROOT.replace(/\/$/, ''),
    DOCS_TEST_NODE: process.execPath,
  };
}

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

describe('documented commands', () => {
  it('README and docs call meshca one way: `meshca ...`, not npx or node bin/meshca.js', () => {
    for (const page of PAGES) {
      for (const b of codeBlocks(readFileSync(join(REPO_ROOT, page), 'utf8'))) {
        assert.doesNotMatch(b.body, /^\s*(npx meshca|node bin\/meshca\.js)\b/m, `${page}:${b.line}`);
      }
    }
  });

  it('every substitution is used by some page, so the table stays short and true', () => {
    const lines = PAGES.flatMap((p) =>
      codeBlocks(readFileSync(join(REPO_ROOT, p), 'utf8')).flatMap((b) =>
        (b.lang === 'console'
          ? consoleCommands(b.body).map((c) => c.command)
          : logicalLines(b.body)
              .filter((l) => !l.heredoc)
              .map((l) => l.text)
        ).map(bare),
      ),
    );
    for (const s of SUBSTITUTIONS)
      assert.ok(
        lines.some((l) => s.pattern.test(l)),
        `unused substitution ${s.pattern}`,
      );
  });

  for (const page of PAGES) {
    it(`${page}: every shell block runs, and every relative link resolves`, async (ctx) => {
      const text = readFileSync(join(REPO_ROOT, page), 'utf8');
      for (const link of relativeLinks(text)) {
        const target = resolve(dirname(join(REPO_ROOT, page)), link);
        assert.ok(existsSync(target), `${page}: broken link ${link}`);
      }
      const blocks = codeBlocks(text);
      if (blocks.length === 0) return;
      // Like the e2e tests, a page whose cross-check tools are not installed is skipped, not failed
      // (.ci/run installs them all).
      const shellText = blocks.map((b) => b.body).join('\n');
      const missing = ['aws', 'kubectl', 'openssl', 'curl'].filter(
        (tool) => new RegExp(`(^|[\\s|;&(])${tool} `, 'm').test(shellText) && spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
      );
      if (missing.length > 0) {
        ctx.skip(`not installed: ${missing.join(', ')} (see .ci/run)`);
        return;
      }
      const t = tempDir('meshca-docs-');
      cleanups.push(t.cleanup);
      const work = join(t.path, 'work');
      const dt = join(t.path, 'docs-test');
      const bin = join(dt, 'bin');
      for (const d of [work, bin, join(t.path, 'home')]) mkdirSync(d, { recursive: true });
      writeFileSync(join(bin, 'meshca'), `#!/bin/sh\nexec ${q(process.execPath)} ${q(MESHCA_BIN)} "$@"\n`);
      chmodSync(join(bin, 'meshca'), 0o755);
      const env = pageEnv(join(t.path, 'home'), bin);
      let pca: ChildProcess | undefined;
      if (/^export PCA_ARN=/m.test(text)) {
        const p = await startPca(join(dt, 'pca'));
        pca = p.child;
        Object.assign(env, {
          DOCS_TEST_PCA_ARN: p.arn,
          DOCS_TEST_PCA_URL: p.url,
          DOCS_TEST_PCA_KEY_ID: PCA_KEY.id,
          DOCS_TEST_PCA_SECRET: PCA_KEY.secret,
        });
      }
      let pg: PgCluster | undefined;
      if (/^export MESHCA_STORE_URL=postgres:/m.test(text)) {
        if (!postgresBinDir()) {
          ctx.skip('PostgreSQL is not installed (apt-get install -y postgresql)');
          return;
        }
        pg = await startPostgres();
        env.DOCS_TEST_PG_URL = await pg.createDatabase('meshca');
      }
      try {
        const script = pageScript(page, blocks, dt);
        writeFileSync(join(dt, 'script.sh'), script);
        const r = await runBash(script, work, env);
        assert.equal(
          r.code,
          0,
          `${page}: a documented command failed (exit ${r.code})\n--- stderr (last 4000 characters)\n${r.stderr.slice(-4000)}\n--- stdout (last 2000)\n${r.stdout.slice(-2000)}`,
        );
      } finally {
        pca?.kill('SIGTERM');
        // A background command the script could not stop (it was killed itself) is stopped here.
        const pids = existsSync(join(dt, 'pids')) ? readFileSync(join(dt, 'pids'), 'utf8').split(/\s+/).filter(Boolean) : [];
        for (const p of pids) {
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
        await pg?.stop();
      }
    });
  }
});
