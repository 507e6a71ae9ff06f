import type { Command } from 'commander';
import { LocalTokenIssuer } from '../auth/index.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { openState, parseDuration, withDir } from './options.js';

interface TokenOptions {
  dir?: string;
  namespace: string;
  serviceAccount: string;
  ttl: number;
  audience: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}

/**
 * `meshca token`: a JWT from the local issuer with Kubernetes service-account claims, for the
 * embedded mode where no Kubernetes API server vouches for workloads. The signing key lives in the
 * state directory's store, shared with `meshca serve`.
 */
export function register(program: Command): void {
  const cmd = program
    .command('token')
    .description('print a signed service-account token that `meshca serve` accepts (embedded mode)')
    .requiredOption('-n, --namespace <ns>', 'Kubernetes namespace')
    .requiredOption('-s, --service-account <sa>', 'service account name')
    .option('--ttl <duration>', 'token lifetime (e.g. 10m, 1h)', (v) => parseDuration(v, '--ttl'), 3600)
    .option('--audience <aud>', 'token audience; repeatable (default: istio-ca)', collect, [] as string[]);
  withDir(cmd).action(async (o: TokenOptions) => {
    const state = openState(o);
    const store = openSqliteStore(state.dir);
    try {
      const issuer = await LocalTokenIssuer.open(store, { passphrase: process.env.MESHCA_KEY_PASSPHRASE });
      const token = await issuer.issue({ namespace: o.namespace, serviceAccount: o.serviceAccount, ttlSeconds: o.ttl, audience: o.audience.length ? o.audience : ['istio-ca'] });
      process.stdout.write(`${token}\n`);
    } finally {
      await store.close();
    }
  });
}
