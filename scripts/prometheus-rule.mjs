#!/usr/bin/env node
// Writes deploy/prometheus/prometheusrule.yaml, the Prometheus Operator's PrometheusRule holding the
// groups of deploy/prometheus/meshca-alerts.yaml (copied as text, comments included, under spec:).
// With --check it writes nothing and exits 1 when the file differs from what it would write
// (test/e2e/prometheus-rules.test.ts runs that).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(new URL('..', import.meta.url).pathname, 'deploy', 'prometheus');
const rules = readFileSync(join(dir, 'meshca-alerts.yaml'), 'utf8');
const start = rules.search(/^groups:/m);
if (start < 0) throw new Error('meshca-alerts.yaml has no top-level groups:');
const body = rules
  .slice(start)
  .split('\n')
  .map((l) => (l === '' ? l : `  ${l}`))
  .join('\n');
const text = `# Generated from meshca-alerts.yaml by scripts/prometheus-rule.mjs: edit that file, then run
# \`node scripts/prometheus-rule.mjs\`. For the Prometheus Operator; the labels must match your
# Prometheus's ruleSelector (kube-prometheus-stack: release: <its release name>).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: meshca
  namespace: meshca-system
  labels:
    app.kubernetes.io/name: meshca
spec:
${body}`;
const target = join(dir, 'prometheusrule.yaml');
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // missing: differs
  }
  if (current !== text) {
    console.error(
      `${target} is not what scripts/prometheus-rule.mjs writes from meshca-alerts.yaml; run: node scripts/prometheus-rule.mjs`,
    );
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
}
