import type { Command } from 'commander';
import { embeddedControllers, nextKeySecretName } from '../controllers/index.js';
import { MeshcaError } from '../pki/errors.js';
import { CERTIFICATE, CERTIFICATE_REQUEST, kindFromCli } from '../resources/kinds.js';
import type { Resource } from '../resources/meta.js';
import { existingStateDir, withDir } from './options.js';
import { findObjects } from './get.js';
import { FAILED_EXIT_HELP, reconcileAfterChange } from './reconcile.js';

interface DeleteOptions {
  dir?: string;
  namespace?: string;
  reconcile: boolean;
}

/**
 * `meshca delete KIND NAME`. Like Kubernetes' garbage collection, a Certificate takes its
 * CertificateRequests and its pending key with it, but not its secret (cert-manager's default);
 * removing a Cluster makes its RootTrustPolicy withdraw that cluster's intermediate.
 */
export function register(program: Command): void {
  const cmd = program
    .command('delete')
    .description('delete a resource by kind and name, then reconcile')
    .argument('<kind>', 'kind: plural, singular or short name')
    .argument('<name>', 'object name')
    .option('-n, --namespace <ns>', 'namespace (default: wherever the name is found)')
    .option('--no-reconcile', 'do not run the controllers afterwards')
    .addHelpText('after', `\n${FAILED_EXIT_HELP}`);
  withDir(cmd).action(async (kindName: string, name: string, o: DeleteOptions) => {
    const kind = kindFromCli(kindName);
    const c = embeddedControllers(existingStateDir(o.dir));
    if (kind.kind === 'Secret') {
      const list = (await c.secrets.list(o.namespace)).filter((s) => s.ref.name === name);
      if (list.length !== 1)
        throw new MeshcaError(
          list.length === 0 ? 'not_found' : 'invalid_argument',
          'not_found',
          list.length === 0 ? `secrets "${name}" not found` : `secret "${name}" exists in several namespaces; pick one with -n`,
        );
      await c.secrets.delete(list[0].ref, { user: true });
      process.stdout.write(`secret "${name}" deleted\n`);
    } else {
      const [obj] = await findObjects(c.store, kind, name, o.namespace);
      if (kind === CERTIFICATE) await deleteCertificateDependents(c, obj);
      await c.store.delete(kind, name, obj.metadata.namespace);
      process.stdout.write(`${kind.group ? `${kind.singular}.${kind.group}` : kind.singular} "${name}" deleted\n`);
    }
    if (o.reconcile) await reconcileAfterChange(o.dir);
  });
}

async function deleteCertificateDependents(c: ReturnType<typeof embeddedControllers>, cert: Resource): Promise<void> {
  const ns = cert.metadata.namespace!;
  for (const cr of await c.store.list(CERTIFICATE_REQUEST, ns)) {
    if (cr.metadata.ownerReferences?.some((r) => r.uid === cert.metadata.uid))
      await c.store.delete(CERTIFICATE_REQUEST, cr.metadata.name, ns);
  }
  try {
    await c.secrets.delete(
      { namespace: ns, name: nextKeySecretName(cert.metadata.name) },
      { owner: `Certificate/${ns}/${cert.metadata.name}` },
    );
  } catch {
    // Not ours: leave it.
  }
}
