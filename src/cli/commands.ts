import type { Command } from 'commander';
import { register as agent } from './agent.js';
import { register as genCa } from './gen-ca.js';
import { register as pcaApi } from './pca-api.js';
import { register as serve } from './serve.js';
import { register as token } from './token.js';

/** Every CLI command registers itself here: one file per command in this folder. */
export type Register = (program: Command) => void;

export const COMMANDS: Register[] = [
  serve,
  token,
  agent,
  genCa,
  pcaApi,
];
