import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkAuditStats } from '../../test/helpers/audit-stats.js';
import { openSqliteStore } from './sqlite/index.js';

// The same aggregates are checked against PostgreSQL in postgres/index.test.ts.
test('SQLite dashboard aggregates: per-minute buckets, per-cluster valid counts, refusal reasons', async () => {
  await checkAuditStats(openSqliteStore(mkdtempSync(join(tmpdir(), 'meshca-stats-'))));
});
