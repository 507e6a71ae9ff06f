import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ControlMetrics } from './control-metrics.js';

test('meshca_leader follows the leadership read at scrape time; audit write failures count', async () => {
  const m = new ControlMetrics('east');
  const before = await m.registry.metrics();
  assert.doesNotMatch(before, /^meshca_leader\{/m, 'no sample before leadership is known');
  assert.match(before, /^meshca_audit_write_failures_total 0$/m, 'present at 0 from the start');

  let leading = false;
  m.setLeadership(() => leading);
  assert.match(await m.registry.metrics(), /^meshca_leader\{cluster="east"\} 0$/m);
  leading = true;
  assert.match(await m.registry.metrics(), /^meshca_leader\{cluster="east"\} 1$/m);

  m.auditWriteFailed();
  m.auditWriteFailed();
  m.auditWriteFailed();
  assert.match(await m.registry.metrics(), /^meshca_audit_write_failures_total 3$/m);
});
