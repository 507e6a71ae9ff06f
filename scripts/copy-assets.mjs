#!/usr/bin/env node
// Copies the dashboard's static files (HTML, CSS) next to its compiled script in dist/, which tsc
// cannot do: the server reads them from there, so dist/ alone (as in the image) is enough to run.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dir = join('src', 'server', 'http', 'dashboard', 'assets');
const from = join(root, dir);
const to = join(root, 'dist', dir);
mkdirSync(to, { recursive: true });
for (const name of readdirSync(from)) {
  // TypeScript sources and their tsconfig are compiled by tsc, not shipped.
  if (name.endsWith('.ts') || name === 'tsconfig.json') continue;
  copyFileSync(join(from, name), join(to, name));
}
