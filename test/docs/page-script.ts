// How test/docs/commands.test.ts turns a Markdown page into one bash script: the stated
// substitutions, the background convention, and expected output of ```console blocks.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/run.js';
import { consoleCommands, logicalLines, type CodeBlock } from './markdown.js';

/** The example ARN the AWS page uses for "your CA"; the test replaces it by a local PCA-compatible API's. */
export const PCA_ARN_LINE = /^export PCA_ARN=arn:aws:acm-pca:\S+(\s+#.*)?$/;
/** The example database URL of the replicas page; the test replaces it by a throwaway cluster's. */
export const PG_URL_LINE = /^export MESHCA_STORE_URL=postgres:\/\/\S+(\s+#.*)?$/;

interface Substitution {
  pattern: RegExp;
  replace: (m: RegExpExecArray) => string;
  why: string;
}

const startScript = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;

/** The only lines not run as written. `$DOCS_TEST_REPO` is the clone, `$DOCS_TEST_PCA_*` the local PCA API. */
export const SUBSTITUTIONS: Substitution[] = [
  { pattern: /^npm ci\b.*$/, replace: () => ':', why: 'the suite runs in a clone that `npm ci` already installed and built' },
  {
    pattern: /^npm link\b.*$/,
    replace: () => ':',
    why: "the test puts `meshca` on PATH itself instead of writing to npm's global directory",
  },
  { pattern: /^npm run build\b.*$/, replace: () => ':', why: 'the suite runs compiled files, so the build is done' },
  {
    pattern: /^npm test\b.*$/,
    replace: () => `tail -n 1 "$DOCS_TEST_REPO/.ci/run" | grep -qx 'npm test'`,
    why: 'running the whole suite from inside it would recurse: checked to be the command .ci/run runs',
  },
  {
    pattern: /^npm start\b.*$/,
    replace: () => startScript.replace(/\bnode\b/, '"$DOCS_TEST_NODE"').replace('bin/meshca.js', '"$DOCS_TEST_REPO/bin/meshca.js"'),
    why: "npm runs scripts in the clone; this runs package.json's start script in the page's directory",
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
  {
    pattern: /^node scripts\/kube-api-double\.mjs\b(.*)$/,
    replace: (m) => `"$DOCS_TEST_NODE" "$DOCS_TEST_REPO/scripts/kube-api-double.mjs"${m[1]}`,
    why: 'the page runs in a scratch directory: the same script, from the clone',
  },
  {
    pattern: /^kubectl apply -k (\S+)$/,
    replace: (m) => `kubectl kustomize ${m[1]} > /dev/null`,
    why: 'no cluster: the same manifests built offline',
  },
  {
    pattern: /^kubectl apply -f (\S*cacerts\.yaml)$/,
    replace: (m) => `meshca ca import ${m[1]}`,
    why: 'no cluster: the Secret is validated as a plugin-CA bundle instead',
  },
  {
    pattern: /^kubectl apply -f ([\w.-]+\.yaml)$/,
    replace: (m) => `meshca apply --no-reconcile --dir "$DT/kubectl-apply" -f ${m[1]}`,
    why: "no cluster: the manifest (a Secret) is validated by meshca's manifest loader",
  },
  {
    pattern: /^kubectl create namespace (\S+)$/,
    replace: (m) => `kubectl create namespace ${m[1]} --dry-run=client -o name`,
    why: 'no cluster: client-side dry run',
  },
  {
    pattern: /^kubectl config view --raw --minify --flatten --context (\S+) > (\S+)$/,
    replace: (m) =>
      `printf 'apiVersion: v1\\nkind: Config\\ncurrent-context: %s\\nclusters:\\n- name: %s\\n  cluster: {server: "https://127.0.0.1:9"}\\nusers:\\n- name: admin\\n  user: {token: docs-example}\\ncontexts:\\n- name: %s\\n  context: {cluster: %s, user: admin}\\n' ${m[1]} ${m[1]} ${m[1]} ${m[1]} > ${m[2]}`,
    why: "no cluster: a kubeconfig for an API server that is not there, so the cluster's delivery shows the connection error",
  },
  {
    pattern: /^istioctl proxy-config secret \S+ -o json > (\S+)$/,
    replace: (m) => `"$DOCS_TEST_NODE" "$DOCS_TEST_REPO/dist/test/docs/proxy-secret.js" web > ${m[1]}`,
    why: "no cluster: the dump a proxy holding ./web's certificate would print",
  },
  {
    pattern: /^(?:[A-Z_]+=\S+ )*deploy\/smoke\.sh$/,
    replace: () => 'bash -n "$DOCS_TEST_REPO/deploy/smoke.sh"',
    why: 'needs a kind cluster: syntax-checked',
  },
  {
    pattern: /^((?:[A-Z_]+=\S+ )*)deploy\/image\/build\.sh\b.*$/,
    replace: (m) => `${m[1]}bash "$DOCS_TEST_REPO/deploy/image/build.sh" --plan`,
    why: 'needs root and minutes (debootstrap, an npm ci inside the image): what it would use, printed',
  },
  {
    pattern: PCA_ARN_LINE,
    replace: () =>
      'export PCA_ARN="$DOCS_TEST_PCA_ARN" AWS_ENDPOINT_URL="$DOCS_TEST_PCA_URL" AWS_ACCESS_KEY_ID="$DOCS_TEST_PCA_KEY_ID" AWS_SECRET_ACCESS_KEY="$DOCS_TEST_PCA_SECRET"',
    why: "no AWS account: a `meshca pca-api` started by the test stands in for AWS Private CA, with its root's ARN",
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

export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

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
          for (const piece of exp
            .split('...')
            .map((p) => p.trim())
            .filter(Boolean)) {
            out.push(
              `grep -qF -- ${q(piece)} ${file} || { echo ${q(`${where}: expected output ${JSON.stringify(exp)}`)} >&2; cat ${file} >&2; exit 1; }`,
            );
          }
        }
      });
    } else {
      const text = logicalLines(b.body)
        .map((l) => (l.heredoc ? l.text : substitute(l.text)))
        .join('\n');
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
        out.push(
          `set +e`,
          `( set -eo pipefail`,
          text,
          `)`,
          `RC=$?`,
          `set -e`,
          `[ $RC -eq ${d.exit} ] || { echo ${q(`${where}: exit status $RC, documented ${d.exit}`)} >&2; exit 1; }`,
        );
      } else {
        out.push(text);
      }
    }
    if (d.inClone) out.push('cd "$WORK"');
  });
  return `${out.join('\n')}\n`;
}

export function runBash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
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
