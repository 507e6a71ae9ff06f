// The alerting rules operators install (deploy/prometheus/): Debian's promtool checks and unit-tests
// them, and every metric their expressions name must be in what `meshca serve` exports, in each
// shape that exports different metrics (local bundle; upstream CA with --workers; PostgreSQL
// replicas). promtool missing is a failure, not a skip: .ci/run installs it (package prometheus).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runMeshca, runProcess, REPO_ROOT, type RunResult } from '../helpers/run.js';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { getText, metric, spawnServe, type ServeProcess } from './serve/helpers.js';

const DIR = join(REPO_ROOT, 'deploy/prometheus');
const RULES = join(DIR, 'meshca-alerts.yaml');
const UNIT_TESTS = join(DIR, 'meshca-alerts.test.yaml');
const OPERATOR_RULE = join(DIR, 'prometheusrule.yaml');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface UnitTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

const rulesDoc = (): RuleFile => parse(readFileSync(RULES, 'utf8')) as RuleFile;
const allRules = (): Rule[] => rulesDoc().groups.flatMap((g) => g.rules);
const alertNames = (): string[] => allRules().flatMap((r) => (r.alert ? [r.alert] : []));

async function promtool(args: string[], input?: string): Promise<RunResult> {
  try {
    return await runProcess('promtool', args, { input, timeoutMs: 60_000 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error("promtool is not installed: install Debian's prometheus package (.ci/run does)", { cause: e });
    throw e;
  }
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/**
 * The metric names a PromQL expression reads: identifiers that are not functions, keywords, label
 * names (inside {...} or a by/on/... clause), durations or numbers.
 */
function exprMetricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (m[2] || PROMQL_WORDS.has(m[1])) continue;
    names.add(m[1]);
  }
  return [...names].sort();
}

/** Metrics that Prometheus makes itself (never in a target's /metrics). */
const PROMETHEUS_OWN = new Set(['up', 'ALERTS']);

/** Whether a name is an exported family, or a histogram's series of one. */
const isExported = (n: string, exported: Set<string>) => exported.has(n) || exported.has(n.replace(/_(bucket|sum|count)$/, ''));

/** The names the expressions read that are in none of the scrapes. */
function missingMetrics(exprs: string[], exported: Set<string>): string[] {
  return [...new Set(exprs.flatMap(exprMetricNames))].filter((n) => !PROMETHEUS_OWN.has(n) && !isExported(n, exported)).sort();
}

interface Dashboard {
  templating: { list: { name: string; query: string | object }[] };
  panels: { title: string; targets: { expr: string }[] }[];
}
/** The Grafana dashboard's queries (its $job variable set to what the rules assume), and the metric its variable lists. */
function dashboardQueries(): string[] {
  const d = JSON.parse(readFileSync(join(DIR, 'grafana-dashboard.json'), 'utf8')) as Dashboard;
  const vars = d.templating.list.flatMap((v) => (typeof v.query === 'string' && v.query.startsWith('label_values(') ? [v.query] : []));
  const exprs = d.panels.flatMap((p) => p.targets.map((t) => t.expr));
  return [...exprs, ...vars.map((v) => v.replace(/^label_values\((\w+), \w+\)$/, '$1'))].map((e) => e.replaceAll('$job', 'meshca'));
}

/** Metric family names of an exposition (its TYPE lines: families without samples yet count too). */
function families(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]));
}

/** GitHub's anchor of a Markdown heading. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

describe('deploy/prometheus rules', () => {
  it('promtool check rules accepts the file and counts every rule; each alert is labelled and documented', async () => {
    const r = await promtool(['check', 'rules', RULES]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${allRules().length} rules found`));
    const doc = readFileSync(join(REPO_ROOT, 'docs/alerts.md'), 'utf8');
    const anchors = new Set([...doc.matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1])));
    assert.ok(alertNames().length >= 10, alertNames().join(' '));
    for (const rule of allRules()) {
      const name = rule.alert!;
      assert.ok(name, `every rule is an alert: ${rule.expr}`);
      assert.ok(['warning', 'critical'].includes(rule.labels?.severity ?? ''), `${name}: severity`);
      assert.ok(rule.for, `${name}: a for: duration`);
      for (const k of ['summary', 'description', 'runbook']) assert.ok(rule.annotations?.[k], `${name}: annotation ${k}`);
      assert.match(rule.annotations!.description, /`meshca |`curl |`kubectl /, `${name}: says which command to look with`);
      assert.equal(rule.annotations!.runbook, `docs/alerts.md#${name.toLowerCase()}`);
      assert.ok(anchors.has(name.toLowerCase()), `docs/alerts.md has a section ${name}`);
    }
  });

  it('promtool test rules passes, and the unit tests see every alert fire and stay quiet', async () => {
    const r = await promtool(['test', 'rules', UNIT_TESTS]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
    const t = parse(readFileSync(UNIT_TESTS, 'utf8')) as UnitTests;
    assert.deepEqual(t.rule_files, ['meshca-alerts.yaml']);
    const cases = t.tests.flatMap((x) => x.alert_rule_test ?? []);
    for (const name of alertNames()) {
      const mine = cases.filter((c) => c.alertname === name);
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${name}: a case where it fires`,
      );
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${name}: a case where it does not`,
      );
    }
  });

  it('the same promtool checks fail on a broken rule and on a wrong expectation', async () => {
    const tmp = tempDir('meshca-promtool-');
    try {
      const rules = readFileSync(RULES, 'utf8');
      writeFileSync(
        join(tmp.path, 'meshca-alerts.yaml'),
        rules.replace('expr: max by (job, cluster) (meshca_leader) == 0', 'expr: max by (job, cluster) (meshca_leader =='),
      );
      const broken = await promtool(['check', 'rules', join(tmp.path, 'meshca-alerts.yaml')]);
      assert.notEqual(broken.code, 0, broken.stdout);
      assert.match(broken.stdout + broken.stderr, /parse error/);

      writeFileSync(join(tmp.path, 'meshca-alerts.yaml'), rules);
      const tests = readFileSync(UNIT_TESTS, 'utf8');
      const wrong = tests.replace(/summary: No meshca replica of cluster east leads/, 'summary: No meshca replica of cluster west leads');
      assert.notEqual(wrong, tests);
      writeFileSync(join(tmp.path, 'meshca-alerts.test.yaml'), wrong);
      const failed = await promtool(['test', 'rules', join(tmp.path, 'meshca-alerts.test.yaml')]);
      assert.notEqual(failed.code, 0, failed.stdout);
      assert.match(failed.stdout + failed.stderr, /FAILED[\s\S]*alertname: MeshcaNoLeader/);
    } finally {
      tmp.cleanup();
    }
  });

  it('prometheusrule.yaml (Prometheus Operator) holds exactly the groups of meshca-alerts.yaml', async () => {
    const pr = parse(readFileSync(OPERATOR_RULE, 'utf8')) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string };
      spec: RuleFile;
    };
    assert.equal(pr.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(pr.kind, 'PrometheusRule');
    assert.equal(pr.metadata.name, 'meshca');
    assert.deepEqual(pr.spec.groups, rulesDoc().groups, 'regenerate it: node scripts/prometheus-rule.mjs');
    const gen = await runProcess(process.execPath, [join(REPO_ROOT, 'scripts/prometheus-rule.mjs'), '--check']);
    assert.equal(gen.code, 0, gen.stdout + gen.stderr);
  });

  it('finds the metric names of an expression, and reports a rule metric nobody exports', () => {
    assert.deepEqual(
      exprMetricNames(
        'sum by (job, reason) (increase(meshca_a_total{type="x",b="{c}"}[10m])) > 0 and on (job, instance) time() > meshca_b offset 5m or vector(1) * 86400',
      ),
      ['meshca_a_total', 'meshca_b'],
    );
    assert.deepEqual(
      missingMetrics(
        [
          'max by (cluster) (meshca_leader) == 0',
          'rate(meshca_no_such_total[5m]) > 0',
          'up == 0',
          'rate(meshca_h_bucket[5m]) + meshca_h_count',
        ],
        new Set(['meshca_leader', 'meshca_h']),
      ),
      ['meshca_no_such_total'],
    );
  });
});

describe('every metric the rules read is exported by meshca serve', () => {
  const tmp = tempDir('meshca-rules-metrics-');
  const servers: ServeProcess[] = [];
  let pg: PgCluster | undefined;
  const scrapes: Record<string, string> = {};

  const serve = async (name: string, args: string[], env: Record<string, string> = {}) => {
    const s = spawnServe(['--dir', join(tmp.path, name), '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', ...args], env);
    servers.push(s);
    const ready = await s.ready;
    return { http: ready.http, s };
  };

  before(async () => {
    // The upstream CA of the second shape: a root made by meshca init, used through its files.
    const ca = join(tmp.path, 'upstream-ca');
    mkdirSync(ca);
    const init = await runMeshca(['init', '--dir', ca]);
    assert.equal(init.code, 0, init.stderr);
    const local = await serve('local', []);
    const upstream = await serve('upstream', [
      ...[
        '--upstream',
        'files',
        '--upstream-cert-file',
        join(ca, 'root/root-cert.pem'),
        '--upstream-key-file',
        join(ca, 'root/root-key.pem'),
      ],
      ...['--intermediate-ttl', '1h', '--renew-before', '20m', '--workers', '2'],
    ]);
    pg = await startPostgres();
    const url = await pg.createDatabase('meshca_rules');
    const replicaArgs = ['--intermediate-ttl', '3h', '--cluster', 'east'];
    const r1 = await serve('replica-1', replicaArgs, { MESHCA_STORE_URL: url });
    const r2 = await serve('replica-2', replicaArgs, { MESHCA_STORE_URL: url });
    for (const [name, s] of Object.entries({ local, upstream, r1, r2 })) scrapes[name] = await getText(s.http, '/metrics');
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await pg?.stop();
    tmp.cleanup();
  });

  it('finds every rule metric in the scrapes', () => {
    const exported = new Set(Object.values(scrapes).flatMap((t) => [...families(t)]));
    assert.deepEqual(
      missingMetrics(
        allRules().map((r) => r.expr),
        exported,
      ),
      [],
    );
    // And the rules do read what the alerts are about (the extraction is not vacuous).
    const read = new Set(allRules().flatMap((r) => exprMetricNames(r.expr)));
    for (const n of [
      'meshca_leader',
      'meshca_audit_write_failures_total',
      'meshca_ca_cert_renewal_timestamp_seconds',
      'meshca_upstream_errors_total',
    ])
      assert.ok(read.has(n), n);
  });

  it('the Grafana dashboard parses, its queries are valid PromQL (promtool), and read only exported metrics', async () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 10, queries.join('\n'));
    const asRules = { groups: [{ name: 'dashboard', rules: queries.map((expr, i) => ({ record: `meshca:dashboard_query_${i}`, expr })) }] };
    const file = join(tmp.path, 'dashboard-queries.yaml');
    writeFileSync(file, JSON.stringify(asRules));
    const r = await promtool(['check', 'rules', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const exported = new Set(Object.values(scrapes).flatMap((t) => [...families(t)]));
    assert.deepEqual(missingMetrics(queries, exported), []);
  });

  it('promtool check metrics finds nothing to say about meshca_ names (istiod-parity and Node.js names excepted)', async () => {
    for (const [name, text] of Object.entries(scrapes)) {
      const r = await promtool(['check', 'metrics'], text);
      const problems = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
      // citadel_server_*_count are istiod's own names, kept so its dashboards work; nodejs_* are prom-client's.
      const ours = problems.filter((l) => !/^(citadel_server_\w+|nodejs_\w+) /.test(l));
      assert.deepEqual(ours, [], `${name}: ${problems.join('\n')}`);
    }
  });

  it('exports the values the alerts compare: the renewal window and who leads', () => {
    const { local, upstream, r1, r2 } = scrapes;
    const gauge = (text: string, n: string, cluster: string) => metric(text, `${n}{cluster="${cluster}"}`);
    // The local bundle has no renewer in serve: no window sample, the rules use its lifetime.
    assert.doesNotMatch(local, /^meshca_ca_cert_renewal_timestamp_seconds\{/m);
    assert.ok(gauge(local, 'meshca_ca_cert_not_before_timestamp_seconds', 'default') > 0);
    assert.equal(gauge(local, 'meshca_leader', 'default'), 1);
    // Upstream, renewBefore 20m: the window opens 1200 s before NotAfter; the primary of --workers leads.
    const upExpiry = gauge(upstream, 'meshca_ca_cert_expiry_timestamp_seconds', 'default');
    assert.ok(upExpiry > Date.now() / 1000);
    assert.equal(gauge(upstream, 'meshca_ca_cert_renewal_timestamp_seconds', 'default'), upExpiry - 1200);
    assert.equal(gauge(upstream, 'meshca_leader', 'default'), 1);
    assert.match(upstream, /^meshca_intermediate_renewal_failures_total\{cluster="default"\} 0$/m);
    // Replicas on PostgreSQL: exactly one leads; both know the window (a third of the 3h TTL).
    assert.equal(gauge(r1, 'meshca_leader', 'east') + gauge(r2, 'meshca_leader', 'east'), 1);
    for (const t of [r1, r2]) {
      const expiry = gauge(t, 'meshca_ca_cert_expiry_timestamp_seconds', 'east');
      assert.equal(gauge(t, 'meshca_ca_cert_renewal_timestamp_seconds', 'east'), expiry - 3600);
      assert.match(t, /^meshca_audit_write_failures_total 0$/m);
    }
  });
});
