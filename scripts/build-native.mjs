#!/usr/bin/env node
// Builds meshca's native signature checks (native/meshca_native.c) into build/native/meshca_native.node.
//
// One C file with no dependencies of its own: Node-API and OpenSSL headers come from Node's own
// include directory, and the symbols from the node binary at load time, so a plain `cc -shared`
// is all it takes (no node-gyp, no Python, no download). Without a C compiler or Node's headers
// the build is skipped with a warning and meshca checks signatures with node:crypto instead
// (slower, same results). `--force` rebuilds even when the output is newer than the source.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'native', 'meshca_native.c');
const outDir = join(root, 'build', 'native');
const out = join(outDir, 'meshca_native.node');
const force = process.argv.includes('--force');

function skip(why) {
  console.warn(`meshca: native signature checks not built (${why}); issuance will use node:crypto`);
  process.exit(0);
}

if (!force && existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) process.exit(0);

const candidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const include = candidates.find((d) => existsSync(join(d, 'node_api.h')) && existsSync(join(d, 'openssl', 'ec.h')));
if (!include) skip(`Node's headers (node_api.h, openssl/ec.h) not found in ${candidates.join(', ')}`);

const cc = process.env.CC || 'cc';
mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = [
  '-O2',
  '-fPIC',
  '-shared',
  '-std=c11',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-Wno-deprecated-declarations',
  '-Wno-unused-parameter',
  `-I${include}`,
  '-o',
  tmp,
  src,
];
const r = spawnSync(cc, args, { encoding: 'utf8' });
if (r.error) skip(`${cc}: ${r.error.message}`);
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  process.stderr.write(r.stderr);
  skip(`${cc} exited with ${r.status}`);
}
renameSync(tmp, out);
console.log(`meshca: built ${out.slice(root.length)}`);
