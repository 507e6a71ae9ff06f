import type { Command } from 'commander';
import { register as agent } from './agent.js';
import { register as apply } from './apply.js';
import { register as caImport } from './ca-import.js';
import { register as cluster } from './cluster.js';
import { register as compareRoots } from './compare-roots.js';
import { register as del } from './delete.js';
import { register as genCa } from './gen-ca.js';
import { register as get } from './get.js';
import { register as init } from './init.js';
import { register as inspect } from './inspect.js';
import { register as intermediate } from './intermediate.js';
import { register as issue } from './issue.js';
import { register as k8sSigner } from './k8s-signer.js';
import { register as pcaApi } from './pca-api.js';
import { register as reconcile } from './reconcile.js';
import { register as root } from './root.js';
import { register as serve } from './serve.js';
import { register as token } from './token.js';
import { register as verify } from './verify.js';

/** Every CLI command registers itself here: one file per command in this folder. */
export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [
  serve,
  token,
  agent,
  genCa,
  pcaApi,
  init,
  root,
  intermediate,
  caImport,
  issue,
  inspect,
  verify,
  compareRoots,
  apply,
  get,
  del,
  reconcile,
  cluster,
  k8sSigner,
];
