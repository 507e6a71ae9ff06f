#!/usr/bin/env node
// Runs every compiled test file with node's test runner. Node 20 has no glob support in
// `node --test`, so the list is built here. Optional argument: a substring filter on the path.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv[2];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(relative(root, p));
  }
}
for (const d of ['dist/src', 'dist/test', 'dist/bench']) {
  try {
    walk(join(root, d));
  } catch {
    /* folder may not exist yet */
  }
}
const selected = files.filter((f) => !filter || f.includes(filter)).sort();
if (selected.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
// A test that hangs fails after 5 minutes instead of stalling CI, and a file whose tests are done
// exits even if something it started (a timer, a socket) is still open: such a leak once kept a
// file alive forever after a failed assertion (test/e2e/k8s-leader.test.ts).
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', '--test-force-exit', ...selected], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
