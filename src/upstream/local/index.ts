import { CaState } from '../../ca/state.js';
import { MeshcaError } from '../../pki/errors.js';
import type { Upstream, UpstreamContext } from '../contract.js';
import { KeyUpstream } from '../key-upstream.js';
import type { LocalUpstreamConfig } from './config.js';

/** Signs with the root whose key lives in the state directory (root/root-key.pem). */
export function createLocalUpstream(config: LocalUpstreamConfig, ctx: UpstreamContext = {}): Upstream {
  const dir = config.dir ?? ctx.stateDir;
  if (!dir) throw new MeshcaError('invalid_argument', 'bad_upstream', 'upstream.dir is required for a local upstream outside the server');
  const state = new CaState(dir, { passphrase: ctx.passphrase });
  return new KeyUpstream(
    'local',
    state.rootCertPath,
    () => {
      const root = state.loadRoot();
      if (!root.key) {
        throw new MeshcaError(
          'failed_precondition',
          'no_root_key',
          `the root in ${state.dir} has no key; a local upstream needs it (use the files or awspca upstream instead)`,
        );
      }
      return { cert: root.cert, key: root.key, chain: [] };
    },
    ctx.now,
  );
}
