import type { Command } from 'commander';

/** Every CLI command registers itself here: one file per command in this folder. */
export type Register = (program: Command) => void;

/**
 * Commands are loaded on demand: `meshca issue` never loads the server, the AWS SDK or the
 * Kubernetes client, which keeps each CLI start (and the server's own memory) small. Help and
 * unknown commands load them all.
 */
export interface CommandEntry {
  name: string;
  load: () => Promise<{ register: Register }>;
  /** Needs every other command registered too (completion scripts are generated from the whole tree). */
  needsAll?: boolean;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'serve', load: () => import('./serve.js') },
  { name: 'token', load: () => import('./token.js') },
  { name: 'agent', load: () => import('./agent.js') },
  { name: 'gen-ca', load: () => import('./gen-ca.js') },
  { name: 'pca-api', load: () => import('./pca-api.js') },
  { name: 'init', load: () => import('./init.js') },
  { name: 'root', load: () => import('./root.js') },
  { name: 'intermediate', load: () => import('./intermediate.js') },
  { name: 'ca', load: () => import('./ca-import.js') },
  { name: 'issue', load: () => import('./issue.js') },
  { name: 'inspect', load: () => import('./inspect.js') },
  { name: 'verify', load: () => import('./verify.js') },
  { name: 'compare-roots', load: () => import('./compare-roots.js') },
  { name: 'doctor', load: () => import('./doctor.js') },
  { name: 'apply', load: () => import('./apply.js') },
  { name: 'get', load: () => import('./get.js') },
  { name: 'delete', load: () => import('./delete.js') },
  { name: 'reconcile', load: () => import('./reconcile.js') },
  { name: 'cluster', load: () => import('./cluster.js') },
  { name: 'k8s-signer', load: () => import('./k8s-signer.js') },
  { name: 'version', load: () => import('./version.js') },
  { name: 'completion', load: () => import('./completion.js'), needsAll: true },
];
