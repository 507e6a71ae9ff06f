import { Option, type Command } from 'commander';
import { LocalTokenIssuer } from '../auth/index.js';
import { invalid } from '../pki/errors.js';
import { namespaceNameProblem, serviceAccountNameProblem } from '../pki/spiffe.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { existingStateDir, parseDuration, withDir } from './options.js';

interface TokenOptions {
  dir?: string;
  namespace: string;
  serviceAccount: string;
  ttl: number;
  audience: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
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
    .addOption(
      new Option('--ttl <duration>', 'token lifetime (e.g. 10m, 1h)').argParser((v) => parseDuration(v, '--ttl')).default(3600, '1h'),
    )
    .addOption(new Option('--audience <aud>', 'token audience; repeatable').argParser(collect).default([], 'istio-ca'));
  withDir(cmd).action(async (o: TokenOptions) => {
    // Checked before the store is opened: a name that is not a Kubernetes name makes no token at all.
    const ns = namespaceNameProblem(o.namespace);
    if (ns) throw invalid('bad_namespace', `--namespace: ${ns}`);
    const sa = serviceAccountNameProblem(o.serviceAccount);
    if (sa) throw invalid('bad_service_account', `--service-account: ${sa}`);
    // Same state directory as `meshca serve`, which also honours $MESHCA_DIR.
    const fromEnv = !o.dir && process.env.MESHCA_DIR;
    const store = openSqliteStore(existingStateDir(o.dir || process.env.MESHCA_DIR || undefined, fromEnv ? '$MESHCA_DIR' : '--dir'));
    try {
      const issuer = await LocalTokenIssuer.open(store, { passphrase: process.env.MESHCA_KEY_PASSPHRASE });
      const token = await issuer.issue({
        namespace: o.namespace,
        serviceAccount: o.serviceAccount,
        ttlSeconds: o.ttl,
        audience: o.audience.length ? o.audience : ['istio-ca'],
      });
      process.stdout.write(`${token}\n`);
    } finally {
      await store.close();
    }
  });
}
