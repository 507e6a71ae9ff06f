import type { Command } from 'commander';
import { CaState, validateClusterName } from '../ca/state.js';
import { embeddedControllers } from '../controllers/index.js';
import { apiVersionOf, CLUSTER } from '../resources/kinds.js';
import type { Cluster, ClusterSpec } from '../resources/meshca.js';
import { checkedKubeconfig } from '../k8s/cluster-client.js';
import { invalid } from '../pki/errors.js';
import { humanDuration } from '../resources/duration.js';
import { clusterDeliveryColumns, intermediateCert, notFound } from './get.js';
import { existingStateDir, stateDirToCreate, withDir } from './options.js';
import { emit, table, withOutput } from './output.js';
import { FAILED_EXIT_HELP, reconcileAfterChange } from './reconcile.js';

interface ClusterOptions {
  dir?: string;
  description?: string;
  kubeconfig?: string;
  context?: string;
  adoptExisting?: boolean;
  reconcile: boolean;
}

/** The spec `cluster add` stores; a kubeconfig that does not load stops the command before anything is stored. */
async function specFrom(name: string, o: ClusterOptions, c: ReturnType<typeof embeddedControllers>): Promise<ClusterSpec> {
  if ((o.context || o.adoptExisting) && !o.kubeconfig)
    throw invalid('missing_kubeconfig', '--context and --adopt-existing need --kubeconfig FILE');
  const spec: ClusterSpec = {};
  if (o.description) spec.description = o.description;
  if (o.kubeconfig) {
    spec.kubeconfig = await checkedKubeconfig(name, { file: o.kubeconfig, ...(o.context ? { context: o.context } : {}) }, (r) =>
      c.secrets.get(r),
    );
  }
  if (o.adoptExisting) spec.adoptExisting = true;
  return spec;
}

async function afterChange(o: ClusterOptions): Promise<void> {
  if (o.reconcile) await reconcileAfterChange(o.dir);
}

/** `meshca cluster add|list|remove NAME`: the registry RootTrustPolicies issue intermediates for. */
export function register(program: Command): void {
  const cluster = program
    .command('cluster')
    .description('register workload clusters; each gets a cacerts intermediate from the RootTrustPolicy');

  withDir(
    cluster
      .command('add')
      .description('register a cluster (a DNS label), then reconcile')
      .argument('<name>', 'cluster name')
      .option('--description <text>', 'free text shown by `meshca get cluster NAME -o yaml`')
      .option('--kubeconfig <file>', "the cluster's kubeconfig: the leader writes its istio-system/cacerts Secret there")
      .option('--context <name>', 'the kubeconfig context to use (default: its current context)')
      .option('--adopt-existing', 'replace an istio-system/cacerts Secret meshca did not create')
      .option('--no-reconcile', 'do not issue its intermediate now')
      .addHelpText('after', `\n${FAILED_EXIT_HELP}`),
  ).action(async (name: string, o: ClusterOptions) => {
    validateClusterName(name);
    const target = stateDirToCreate(o.dir);
    const c = embeddedControllers(target.dir);
    const spec = await specFrom(name, o, c);
    const { outcome } = await c.store.apply(
      CLUSTER,
      { apiVersion: apiVersionOf(CLUSTER), kind: CLUSTER.kind, metadata: { name }, spec },
      new Date(),
    );
    process.stdout.write(`cluster.meshca.io/${name} ${outcome}\n`);
    target.announce();
    await afterChange(o);
  });

  withOutput(withDir(cluster.command('list').description('list registered clusters and their intermediates'))).action(
    async (o: { dir?: string; output: string }) => {
      const c = embeddedControllers(existingStateDir(o.dir));
      const state = new CaState(c.state.dir);
      const now = new Date();
      const delivery = clusterDeliveryColumns(state);
      const rows: Record<string, string>[] = [];
      const items = [];
      for (const cl of await c.store.list<Cluster>(CLUSTER)) {
        const cert = intermediateCert(state, cl.metadata.name);
        const intermediate = cert
          ? { serial: cert.serialHex, notAfter: cert.notAfter.toISOString(), fingerprint: cert.fingerprint256 }
          : null;
        const row: Record<string, string> = {
          NAME: cl.metadata.name,
          INTERMEDIATE: intermediate?.serial.slice(0, 16) ?? 'none',
          'TIME LEFT': intermediate ? humanDuration(Date.parse(intermediate.notAfter) - now.getTime()) : '',
          AGE: humanDuration(now.getTime() - Date.parse(cl.metadata.creationTimestamp)),
        };
        for (const col of delivery) row[col.header] = col.value(cl, now);
        rows.push(row);
        items.push({
          name: cl.metadata.name,
          intermediate,
          delivery: cl.status?.delivery ?? null,
          createdAt: cl.metadata.creationTimestamp,
        });
      }
      emit(o.output, { clusters: items }, (wide) => {
        if (rows.length === 0) return 'No clusters registered; add one with `meshca cluster add NAME`.\n';
        const cols = delivery.filter((col) => wide || !col.wide).map((col) => col.header);
        return table(rows, ['NAME', 'INTERMEDIATE', 'TIME LEFT', 'AGE', ...cols]);
      });
    },
  );

  withDir(
    cluster
      .command('remove')
      .description('unregister a cluster; its policy-owned intermediate is withdrawn at the next reconcile')
      .argument('<name>', 'cluster name')
      .option('--no-reconcile', 'leave its intermediate in place until the next reconcile')
      .addHelpText('after', `\n${FAILED_EXIT_HELP}`),
  ).action(async (name: string, o: ClusterOptions) => {
    const c = embeddedControllers(existingStateDir(o.dir));
    if (!(await c.store.delete(CLUSTER, name))) throw notFound(CLUSTER, name);
    process.stdout.write(`cluster.meshca.io "${name}" deleted\n`);
    await afterChange(o);
  });
}
