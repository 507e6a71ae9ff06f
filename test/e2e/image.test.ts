import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The container image: deploy/Dockerfile and deploy/image/build.sh, which builds it here from
 * Debian packages and runs it once. That build takes minutes and root, so it is not part of this
 * suite (docs/kubernetes.md, "Image"); these checks keep the recipe and the script consistent
 * with the repository, the manifests and package.json.
 */
const DOCKERFILE = join(REPO_ROOT, 'deploy', 'Dockerfile');
const BUILD_SH = join(REPO_ROOT, 'deploy', 'image', 'build.sh');
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
const nodeMajor = /^>=(\d+)$/.exec(pkg.engines.node)?.[1];

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  steps: Instruction[];
}

/** Instructions with `\` continuations joined; the ARGs before the first FROM; the stages. */
function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines.map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const [, op, args] = /^(\S+)\s+(.*)$/.exec(line)!;
    if (op === 'FROM') {
      const [from, , name] = args.split(/\s+/);
      stages.push({ from, name, steps: [] });
    } else if (!stages.length) {
      assert.equal(op, 'ARG', `only ARG may come before the first FROM, not ${op}`);
      const [k, v] = args.split('=');
      globalArgs.set(k, v);
    } else stages.at(-1)!.steps.push({ op, args });
  }
  return { globalArgs, stages };
}

const copies = (s: Stage) =>
  s.steps
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const parts = i.args.split(/\s+/);
      const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length);
      const paths = parts.filter((p) => !p.startsWith('--'));
      return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
    });

function plan(env: Record<string, string>, args = ['--plan']): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', [BUILD_SH, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const planMap = (stdout: string) =>
  new Map(
    stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t') as [string, string]),
  );

/** Relative import specifiers of a TypeScript file (static, dynamic and `export ... from`). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

const dockerfile = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const [build, runtime] = dockerfile.stages;

describe('deploy/Dockerfile', () => {
  it('builds both stages FROM one NODE_IMAGE: the Node major package.json asks for, on the Debian of the local base', () => {
    assert.equal(dockerfile.stages.length, 2);
    assert.deepEqual(
      dockerfile.stages.map((s) => s.from),
      ['${NODE_IMAGE}', '${NODE_IMAGE}'],
    );
    assert.equal(build.name, 'build');
    const def = dockerfile.globalArgs.get('NODE_IMAGE');
    const p = planMap(plan({}).stdout);
    assert.equal(def, `node:${nodeMajor}-${p.get('suite')}-slim`, 'the default image is the Debian release build.sh debootstraps');
    assert.equal(p.get('node'), `>=${nodeMajor}`);
    assert.match(readFileSync(BUILD_SH, 'utf8'), /--build-arg "NODE_IMAGE=\$base"/, 'build.sh sets the same build argument');
  });

  it('copies into the build stage only paths that exist and that .dockerignore lets through', () => {
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const ignored = (p: string) =>
      ignore.some((pat) =>
        pat.includes('*')
          ? new RegExp(`^${pat.replace(/\./g, '\\.').replace(/\*/g, '[^/]*')}$`).test(p)
          : p === pat || p.startsWith(`${pat}/`),
      );
    const sources = copies(build).flatMap((c) => c.sources);
    assert.ok(sources.length > 0);
    for (const s of sources) {
      assert.ok(existsSync(join(REPO_ROOT, s)), `COPY ${s}: no such path in the repository`);
      assert.ok(!ignored(s), `COPY ${s} is excluded by .dockerignore`);
    }
    // What npm ci makes inside must not be sent in from the developer's checkout.
    for (const made of ['node_modules', 'dist', 'build']) assert.ok(ignored(made), `.dockerignore leaves out ${made}`);
    assert.equal(ignored('src/cli/main.ts'), false);
    assert.equal(ignored('npm-debug.log'), true, 'the glob pattern is understood');
  });

  it('every relative import tsc follows resolves inside what the build stage copies', () => {
    const copied = copies(build).flatMap((c) => c.sources.map((s) => resolve(REPO_ROOT, s)));
    const inside = (p: string) => copied.some((c) => p === c || p.startsWith(c + sep));
    const roots = copied.filter((c) => statSync(c).isDirectory() && tsFiles(c).length > 0);
    assert.ok(roots.some((r) => r.endsWith(`${sep}src`)));
    const outside: string[] = [];
    for (const file of roots.flatMap(tsFiles)) {
      for (const spec of relativeImports(file)) {
        const target = resolve(dirname(file), spec);
        if (!inside(target)) outside.push(`${relative(REPO_ROOT, file)} imports ${spec}`);
      }
    }
    assert.deepEqual(outside, [], 'tsc in the build stage would not find these');
    // The check sees the imports it has to: unit tests beside the code use test/ helpers.
    assert.ok(relativeImports(join(REPO_ROOT, 'src', 'serve', 'audit-setting.test.ts')).some((s) => s.includes('/test/helpers/')));
  });

  it('the code the image keeps imports nothing the build stage drops (compiled tests, test/, bench/)', () => {
    const run = build.steps.find((i) => i.op === 'RUN' && i.args.includes('npm ci'))!;
    assert.match(run.args, /rm -rf dist\/test dist\/bench/);
    assert.match(run.args, /find dist -name '\*\.test\.js\*' -delete/);
    const src = join(REPO_ROOT, 'src');
    const dropped = (p: string) => !p.startsWith(src + sep) || p.endsWith('.test.js');
    const bad = tsFiles(src)
      .filter((f) => !f.endsWith('.test.ts'))
      .flatMap((f) => relativeImports(f).map((spec) => ({ f, spec })))
      .filter(({ f, spec }) => dropped(resolve(dirname(f), spec)))
      .map(({ f, spec }) => `${relative(REPO_ROOT, f)} imports ${spec}`);
    assert.deepEqual(bad, []);
  });

  it('the runtime stage takes from the build stage what npm ci made, and runs as the Deployment does', () => {
    const buildSources = new Set(copies(build).flatMap((c) => c.sources));
    const run = build.steps.find((i) => i.op === 'RUN' && i.args.includes('npm ci'));
    assert.ok(run, 'the build stage runs npm ci');
    assert.match(run.args, /npm prune --omit=dev/);
    assert.match(run.args, /test -f build\/native\/meshca_native\.node/, 'a missing native build fails the image build');
    const workdir = build.steps.find((i) => i.op === 'WORKDIR')!.args;
    for (const c of copies(runtime)) {
      assert.equal(c.from, 'build');
      for (const s of c.sources) {
        assert.ok(s.startsWith(`${workdir}/`), `${s} is under the build stage's WORKDIR ${workdir}`);
        const top = s.slice(workdir.length + 1).split('/')[0];
        assert.ok(buildSources.has(top) || ['node_modules', 'dist', 'build'].includes(top), `${s} is neither copied in nor made by npm ci`);
      }
    }
    const user = runtime.steps.find((i) => i.op === 'USER')?.args;
    const dep = parseAllDocuments(readFileSync(join(REPO_ROOT, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8'))
      .map((d) => d.toJS() as { kind: string; spec: { template: { spec: Record<string, unknown> } } })
      .find((o) => o?.kind === 'Deployment')!;
    const pod = dep.spec.template.spec as {
      securityContext: { runAsUser: number; runAsGroup: number };
      containers: { args: string[]; ports: { containerPort: number }[] }[];
    };
    assert.equal(user, `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`);
    assert.equal(planMap(plan({}).stdout).get('user'), String(pod.securityContext.runAsUser), 'build.sh runs the image as that user');
    assert.equal(runtime.steps.find((i) => i.op === 'CMD')?.args, JSON.stringify(pod.containers[0].args));
    const published = [...readFileSync(BUILD_SH, 'utf8').matchAll(/-p 127\.0\.0\.1::(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      published,
      pod.containers[0].ports.map((p) => p.containerPort),
      'build.sh runs serve on the ports the Deployment exposes',
    );
  });
});

describe('deploy/image/build.sh', () => {
  it('is valid bash', () => {
    const r = spawnSync('bash', ['-n', BUILD_SH], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('finds the Debian and security mirrors in one-line and deb822 APT sources, comments skipped', () => {
    const tmp = tempDir('meshca-image-');
    try {
      const deb822 = join(tmp.path, 'debian.sources');
      writeFileSync(
        deb822,
        [
          'Types: deb',
          '# http://snapshot.debian.org/archive/debian/20250520T000000Z',
          'URIs: http://mirror.example.org/debian',
          'Suites: bookworm bookworm-updates',
          '',
          'Types: deb',
          'URIs: https://security.example.org/debian-security/',
          'Suites: bookworm-security',
          '',
        ].join('\n'),
      );
      const p = planMap(plan({ APT_SOURCES: deb822 }).stdout);
      assert.equal(p.get('mirror'), 'http://mirror.example.org/debian');
      assert.equal(p.get('security'), 'https://security.example.org/debian-security');

      const oneLine = join(tmp.path, 'sources.list');
      writeFileSync(oneLine, '# deb http://old.example.org/debian bookworm main\ndeb http://one.example.org/debian bookworm main\n');
      const q = planMap(plan({ APT_SOURCES: oneLine }).stdout);
      assert.equal(q.get('mirror'), 'http://one.example.org/debian');
      assert.equal(q.get('security'), 'none');

      const o = planMap(
        plan({
          APT_SOURCES: oneLine,
          MESHCA_DEBIAN_MIRROR: 'http://override.example.org/debian',
          MESHCA_IMAGE: 'localhost/meshca:test',
          MESHCA_OCI_RUNTIME: 'crun',
        }).stdout,
      );
      assert.equal(o.get('mirror'), 'http://override.example.org/debian');
      assert.equal(o.get('image'), 'localhost/meshca:test');
      assert.equal(o.get('runtime'), 'crun');
    } finally {
      tmp.cleanup();
    }
  });

  it('refuses an unknown option, naming it', () => {
    const r = plan({}, ['--plna']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /unknown option --plna/);
    assert.equal(r.stdout, '');
  });
});
