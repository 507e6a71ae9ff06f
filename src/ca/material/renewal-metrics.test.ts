import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { RenewalMetrics } from './renewal-metrics.js';

test('the renewal window is read at scrape time, and failures count from a 0 present at start', async () => {
  const registry = new Registry();
  let from: Date | undefined;
  const m = new RenewalMetrics([registry], 'east', () => from);
  const first = await registry.metrics();
  assert.match(
    first,
    /^meshca_intermediate_renewal_failures_total\{cluster="east"\} 0$/m,
    'the 0 sample lets the first failure show as an increase',
  );
  assert.match(first, /^# TYPE meshca_ca_cert_renewal_timestamp_seconds gauge$/m);
  assert.doesNotMatch(first, /^meshca_ca_cert_renewal_timestamp_seconds\{/m, 'no window known yet: no sample');

  from = new Date(1_800_000_000_500);
  assert.match(await registry.metrics(), /^meshca_ca_cert_renewal_timestamp_seconds\{cluster="east"\} 1800000000$/m);
  from = new Date(1_900_000_000_000);
  m.failed();
  m.failed();
  const later = await registry.metrics();
  assert.match(
    later,
    /^meshca_ca_cert_renewal_timestamp_seconds\{cluster="east"\} 1900000000$/m,
    'a renewed intermediate moves the window',
  );
  assert.match(later, /^meshca_intermediate_renewal_failures_total\{cluster="east"\} 2$/m);
});
