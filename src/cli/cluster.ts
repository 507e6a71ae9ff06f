import type { Command } from 'commander';
import { CaState, defaultStateDir, validateClusterName } from '../ca/state.js';
import { embeddedControllers } from '../controllers/index.js';
import { apiVersionOf, CLUSTER } from '../resources/kinds.js';
import type { Cluster } from '../resources/meshca.js';
import { humanDuration } from '../resources/duration.js';
import { notFound, table } from './get.js';
import { withDir } from './options.js';
import { runReconcile } from './reconcile.js';

interface ClusterOptions {
  dir?: string;
  description?: string;
  reconcile: boolean;
}

async function afterChange(o: ClusterOptions): Promise<void> {
  if (o.reconcile) await runReconcile({ dir: o.dir }, (line) => process.stderr.write(`reconcile: ${line}\n`));
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
      .option('--no-reconcile', 'do not issue its intermediate now'),
  ).action(async (name: string, o: ClusterOptions) => {
    validateClusterName(name);
    const c = embeddedControllers(o.dir ?? defaultStateDir());
    const { outcome } = await c.store.apply(
      CLUSTER,
      {
        apiVersion: apiVersionOf(CLUSTER),
        kind: CLUSTER.kind,
        metadata: { name },
        spec: o.description ? { description: o.description } : {},
      },
      new Date(),
    );
    process.stdout.write(`cluster.meshca.io/${name} ${outcome}\n`);
    await afterChange(o);
  });

  withDir(cluster.command('list').description('list registered clusters and their intermediates')).action(async (o: { dir?: string }) => {
    const c = embeddedControllers(o.dir ?? defaultStateDir());
    const state = new CaState(c.state.dir);
    const now = new Date();
    const rows = [];
    for (const cl of await c.store.list<Cluster>(CLUSTER)) {
      let intermediate = 'none';
      let left = '';
      try {
        const b = state.loadCluster(cl.metadata.name);
        intermediate = b.caCert.serialHex.slice(0, 16);
        left = humanDuration(b.caCert.notAfter.getTime() - now.getTime());
      } catch {
        // No bundle yet: shown as none.
      }
      rows.push({
        NAME: cl.metadata.name,
        INTERMEDIATE: intermediate,
        'TIME LEFT': left,
        AGE: humanDuration(now.getTime() - Date.parse(cl.metadata.creationTimestamp)),
      });
    }
    if (rows.length === 0) process.stdout.write('No clusters registered; add one with `meshca cluster add NAME`.\n');
    else process.stdout.write(table(rows, ['NAME', 'INTERMEDIATE', 'TIME LEFT', 'AGE']));
  });

  withDir(
    cluster
      .command('remove')
      .description('unregister a cluster; its policy-owned intermediate is withdrawn at the next reconcile')
      .argument('<name>', 'cluster name')
      .option('--no-reconcile', 'leave its intermediate in place until the next reconcile'),
  ).action(async (name: string, o: ClusterOptions) => {
    const c = embeddedControllers(o.dir ?? defaultStateDir());
    if (!(await c.store.delete(CLUSTER, name))) throw notFound(CLUSTER, name);
    process.stdout.write(`cluster.meshca.io "${name}" deleted\n`);
    await afterChange(o);
  });
}
