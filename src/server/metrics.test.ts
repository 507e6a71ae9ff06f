import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NOW, daysFrom, makeIntermediate, makeRoot } from '../../test/helpers/pki.js';
import { ServerMetrics } from './metrics.js';

test("setHierarchy exports the issuing intermediate's NotBefore and NotAfter, and the earliest root expiry", async () => {
  const m = new ServerMetrics({ defaultMetrics: false });
  const root = makeRoot({ days: 3650 });
  const inter = makeIntermediate(root, { days: 30 });
  m.setHierarchy('east', [inter.cert, root.cert], [root.cert]);
  const text = await m.registry.metrics();
  const secs = (d: Date) => Math.floor(d.getTime() / 1000);
  // The profile backdates NotBefore a little for clock skew; the lifetime is what the alerts use.
  assert.ok(secs(inter.cert.notBefore) <= secs(NOW) && secs(inter.cert.notBefore) > secs(NOW) - 3600);
  assert.equal(secs(inter.cert.notAfter), secs(daysFrom(NOW, 30)));
  assert.match(text, new RegExp(`^meshca_ca_cert_not_before_timestamp_seconds\\{cluster="east"\\} ${secs(inter.cert.notBefore)}$`, 'm'));
  assert.match(text, new RegExp(`^meshca_ca_cert_expiry_timestamp_seconds\\{cluster="east"\\} ${secs(inter.cert.notAfter)}$`, 'm'));
  assert.match(text, new RegExp(`^meshca_root_cert_expiry_timestamp_seconds ${secs(root.cert.notAfter)}$`, 'm'));
});
