import { Command } from 'commander';
import { COMMANDS } from './commands.js';

export function buildProgram(): Command {
  const program = new Command('meshca')
    .description('Certificate-authority control plane for service meshes (Istio-compatible CA, mesh intermediates, trust checks)')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}
