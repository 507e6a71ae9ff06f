// Runs every ```sh, ```bash and ```console block of README.md, SECURITY.md and docs/*.md, so a
// command copied from the documentation does not fail. Each page runs as one bash script, block by
// block in order (exports carry over), with `set -eo pipefail`, in a scratch directory of its own,
// with `meshca` on PATH (what `npm link` does for a reader). Only the lines in SUBSTITUTIONS are
// rewritten, each for the reason given there; docs/testing.md lists the same table. The page's
// relative links must resolve too.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { MESHCA_BIN, REPO_ROOT } from '../helpers/run.js';
import { postgresBinDir, startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { codeBlocks, consoleCommands, logicalLines, relativeLinks, type CodeBlock } from './markdown.js';

const PAGES = ['README.md', 'SECURITY.md', ...readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** Pages the README links to that are written separately; a link to one may dangle until it lands. */
const PAGES_IN_PROGRESS = new Set(['docs/architecture.md']);

/** The example ARN the AWS page uses for "your CA"; the test replaces it by a local PCA-compatible API's. */
const PCA_ARN_LINE = /^export PCA_ARN=arn:aws:acm-pca:\S+(\s+#.*)?$/;
/** The example database URL of the replicas page; the test replaces it by a throwaway cluster's. */
const PG_URL_LINE = /^export MESHCA_STORE_URL=postgres:\/\/\S+(\s+#.*)?$/;
const PCA_KEY = { id: 'AKIDDOCSTEST', secret: 'docs-test-secret-key' };

interface Substitution {
  pattern: RegExp;
  replace: (m: RegExpExecArray) => string;
  why: string;
}

const startScript = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;

/** The only lines not run as written. `$DOCS_TEST_REPO` is the clone, `$DOCS_TEST_PCA_*` the local PCA API. */
export const SUBSTITUTIONS: Substitution[] = [
  { pattern: /^npm ci\b.*$/, replace: () => ':', why: 'the suite runs in a clone that `npm ci` already installed and built' },
  { pattern: /^npm link\b.*$/, replace: () => ':', why: 'the test puts `meshca` on PATH itself instead of writing to npm\'s global directory' },
  { pattern: /^npm run build\b.*$/, replace: () => ':', why: 'the suite runs compiled files, so the build is done' },
  {
    pattern: /^npm test\b.*$/,
    replace: () => `tail -n 1 "$DOCS_TEST_REPO/.ci/run" | grep -qx 'npm test'`,
    why: 'running the whole suite from inside it would recurse: checked to be the command .ci/run runs',
  },
  {
    pattern: /^npm start\b.*$/,
    replace: () => startScript.replace(/\bnode\b/, '"$DOCS_TEST_NODE"').replace('bin/meshca.js', '"$DOCS_TEST_REPO/bin/meshca.js"'),
    why: 'npm runs scripts in the clone; this runs package.json\'s start script in the page\'s directory',
  },
  {
    pattern: /^(?:[A-Z_]+=\S+ )*(?:npm run bench\b|node dist\/bench\/([\w-]+)\.js\b).*$/,
    replace: (m) => `test -f "$DOCS_TEST_REPO/dist/bench/${m[1] ?? 'run'}.js"`,
    why: 'a benchmark loads every core for minutes: checked to exist',
  },
  {
    pattern: /^node scripts\/run-tests\.mjs (\S+)$/,
    replace: (m) => `find "$DOCS_TEST_REPO/dist" -path '*${m[1]}*' -name '*.test.js' | grep -q .`,
    why: 'those tests run in this suite already: checked that the filter selects some',
  },
  {
    pattern: /^MESHCA_FUZZ_ITERATIONS=\d+ (node --test .*)$/,
    replace: (m) => `MESHCA_FUZZ_ITERATIONS=20 ${m[1]}`,
    why: 'the same fuzzers, 20 iterations instead of thousands',
  },
  { pattern: /^kubectl apply -k (\S+)$/, replace: (m) => `kubectl kustomize ${m[1]} > /dev/null`, why: 'no cluster: the same manifests built offline' },
  {
    pattern: /^kubectl apply -f (\S*cacerts\.yaml)$/,
    replace: (m) => `meshca ca import ${m[1]}`,
    why: 'no cluster: the Secret is validated as a plugin-CA bundle instead',
  },
  {
    pattern: /^kubectl create namespace (\S+)$/,
    replace: (m) => `kubectl create namespace ${m[1]} --dry-run=client -o name`,
    why: 'no cluster: client-side dry run',
  },
  {
    pattern: /^istioctl proxy-config secret \S+ -o json > (\S+)$/,
    replace: (m) => `"$DOCS_TEST_NODE" "$DOCS_TEST_REPO/dist/test/docs/proxy-secret.js" web > ${m[1]}`,
    why: 'no cluster: the dump a proxy holding ./web\'s certificate would print',
  },
  {
    pattern: /^(?:[A-Z_]+=\S+ )*deploy\/smoke\.sh$/,
    replace: () => 'bash -n "$DOCS_TEST_REPO/deploy/smoke.sh"',
    why: 'needs a kind cluster: syntax-checked',
  },
  {
    pattern: PCA_ARN_LINE,
    replace: () => 'export PCA_ARN="$DOCS_TEST_PCA_ARN" AWS_ENDPOINT_URL="$DOCS_TEST_PCA_URL" AWS_ACCESS_KEY_ID="$DOCS_TEST_PCA_KEY_ID" AWS_SECRET_ACCESS_KEY="$DOCS_TEST_PCA_SECRET"',
    why: 'no AWS account: a `meshca pca-api` started by the test stands in for AWS Private CA, with its root\'s ARN',
  },
  {
    pattern: PG_URL_LINE,
    replace: () => 'export MESHCA_STORE_URL="$DOCS_TEST_PG_URL"',
    why: 'no database server: a throwaway PostgreSQL started by the test, as the HA tests do',
  },
];

/** A command line without its trailing `# comment` (a `#` after a blank, outside quotes). */
export function bare(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trim();
  }
  return line.trim();
}

export function substitute(line: string): string {
  for (const s of SUBSTITUTIONS) {
    const m = s.pattern.exec(bare(line));
    if (m) return s.replace(m);
  }
  return line;
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bash script for one page: every block in order, background blocks started and waited for. */
export function pageScript(page: string, blocks: CodeBlock[], scratch: string): string {
  const out: string[] = [
    'set -eo pipefail',
    `DT=${q(scratch)}`,
    'stop_background() { for p in $(cat "$DT/pids" 2>/dev/null); do kill -TERM "$p" 2>/dev/null || true; done; for p in $(cat "$DT/pids" 2>/dev/null); do for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done; }',
    'trap stop_background EXIT',
    'WORK=$PWD',
  ];
  blocks.forEach((b, n) => {
    const where = `${page}:${b.line}`;
    const d = b.directive;
    out.push(`echo ${q(`--- ${where}`)} >&2`);
    if (d.inClone) out.push('cd "$DOCS_TEST_REPO"');
    if (b.lang === 'console') {
      consoleCommands(b.body).forEach((c, i) => {
        const file = `"$DT/out-${n}-${i}"`;
        out.push(`${substitute(c.command)} > ${file} 2>&1 || { cat ${file} >&2; exit 1; }`, `cat ${file}`);
        for (const exp of c.expected) {
          for (const piece of exp.split('...').map((p) => p.trim()).filter(Boolean)) {
            out.push(`grep -qF -- ${q(piece)} ${file} || { echo ${q(`${where}: expected output ${JSON.stringify(exp)}`)} >&2; cat ${file} >&2; exit 1; }`);
          }
        }
      });
    } else {
      const text = logicalLines(b.body).map((l) => (l.heredoc ? l.text : substitute(l.text))).join('\n');
      if (d.background) {
        const log = `"$DT/bg-${n}.log"`;
        out.push(`${bare(text.replace(/\n/g, ' '))} > ${log} 2>&1 &`, `echo $! >> "$DT/pids"`, `BGPID=$!`);
        if (d.waitFor !== undefined) {
          out.push(
            `for _ in $(seq 1 300); do grep -qF -- ${q(d.waitFor)} ${log} && break; kill -0 $BGPID 2>/dev/null || { cat ${log} >&2; echo ${q(`${where}: exited before printing ${d.waitFor}`)} >&2; exit 1; }; sleep 0.1; done`,
            `grep -qF -- ${q(d.waitFor)} ${log} || { cat ${log} >&2; echo ${q(`${where}: no ${JSON.stringify(d.waitFor)} within 30 s`)} >&2; exit 1; }`,
          );
        }
      } else if (d.exit !== 0) {
        out.push(`set +e`, `( set -eo pipefail`, text, `)`, `RC=$?`, `set -e`, `[ $RC -eq ${d.exit} ] || { echo ${q(`${where}: exit status $RC, documented ${d.exit}`)} >&2; exit 1; }`);
      } else {
        out.push(text);
      }
    }
    if (d.inClone) out.push('cd "$WORK"');
  });
  return `${out.join('\n')}\n`;
}

/** A local PCA-compatible API with a root CA, for pages that name an AWS Private CA. */
async function startPca(dir: string): Promise<{ url: string; arn: string; child: ChildProcess }> {
  const init = spawnSync(process.execPath, [MESHCA_BIN, 'init', '--dir', dir, '--key', 'rsa-2048', '--org', 'Istio', '--cn', 'docs test PCA root'], { encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);
  const region = ['--region', 'eu-west-1', '--account', '123456789012'];
  const list = spawnSync(process.execPath, [MESHCA_BIN, 'pca-api', '--dir', dir, '--list-arns', ...region], { encoding: 'utf8' });
  const arn = list.stdout.split('\n').find((l) => l.includes('\tROOT'))?.split('\t')[0];
  assert.ok(arn, list.stdout + list.stderr);
  const child = spawn(process.execPath, [MESHCA_BIN, 'pca-api', '--dir', dir, '--addr', '127.0.0.1:0', '--quiet', ...region, '--pca-access-key', `${PCA_KEY.id}:${PCA_KEY.secret}`], { stdio: ['ignore', 'pipe', 'pipe'] });
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

function runBash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      res({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
  });
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
        (b.lang === 'console' ? consoleCommands(b.body).map((c) => c.command) : logicalLines(b.body).filter((l) => !l.heredoc).map((l) => l.text)).map(bare),
      ),
    );
    for (const s of SUBSTITUTIONS) assert.ok(lines.some((l) => s.pattern.test(l)), `unused substitution ${s.pattern}`);
  });

  for (const page of PAGES) {
    it(`${page}: every shell block runs, and every relative link resolves`, async (ctx) => {
      const text = readFileSync(join(REPO_ROOT, page), 'utf8');
      for (const link of relativeLinks(text)) {
        const target = resolve(dirname(join(REPO_ROOT, page)), link);
        if (PAGES_IN_PROGRESS.has(relative(REPO_ROOT, target))) continue;
        assert.ok(existsSync(target), `${page}: broken link ${link}`);
      }
      const blocks = codeBlocks(text);
      if (blocks.length === 0) return;
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
        Object.assign(env, { DOCS_TEST_PCA_ARN: p.arn, DOCS_TEST_PCA_URL: p.url, DOCS_TEST_PCA_KEY_ID: PCA_KEY.id, DOCS_TEST_PCA_SECRET: PCA_KEY.secret });
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
        assert.equal(r.code, 0, `${page}: a documented command failed (exit ${r.code})\n--- stderr (last 4000 characters)\n${r.stderr.slice(-4000)}\n--- stdout (last 2000)\n${r.stdout.slice(-2000)}`);
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
