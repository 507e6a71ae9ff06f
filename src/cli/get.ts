import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { CaState } from '../ca/state.js';
import { embeddedControllers } from '../controllers/index.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import type { AwsPcaIssuer, Certificate, CertificateRequest, Issuer } from '../resources/certmanager.js';
import { humanDuration } from '../resources/duration.js';
import type { RootTrustPolicy } from '../resources/gloo.js';
import { kindFromCli, qualifiedName, type KindInfo } from '../resources/kinds.js';
import type { ApprovalPolicy, Cluster, RootRotation } from '../resources/meshca.js';
import { getCondition, type Resource } from '../resources/meta.js';
import type { ResourceStore } from '../resources/store.js';
import { OWNER_ANNOTATION, type SecretSink, type StoredSecret } from '../resources/secrets.js';
import { existingStateDir, withDir } from './options.js';
import { isStructured, table, withOutput, writeStructured, type OutputFormat } from './output.js';
import { parseAt } from './reconcile.js';

type Row = Record<string, string>;
export interface Column {
  header: string;
  wide?: boolean;
  value: (o: Resource, now: Date) => string;
}

const age = (o: Resource, now: Date) => humanDuration(now.getTime() - Date.parse(o.metadata.creationTimestamp));
const cond = (type: string) => (o: Resource) => getCondition((o.status as { conditions?: [] } | undefined)?.conditions, type)?.status ?? '';
const message = (o: Resource) => getCondition((o.status as { conditions?: [] } | undefined)?.conditions, 'Ready')?.message ?? '';
const until = (iso: string | undefined, now: Date) => (iso ? humanDuration(Date.parse(iso) - now.getTime()) : '');

/** Printer columns per kind, after cert-manager's and Gloo's CRDs, plus time left and renewal time. */
const COLUMNS: Record<string, Column[]> = {
  Certificate: [
    { header: 'READY', value: cond('Ready') },
    { header: 'SECRET', value: (o) => (o as Certificate).spec.secretName },
    { header: 'ISSUER', value: (o) => (o as Certificate).spec.issuerRef.name },
    { header: 'REVISION', value: (o) => String((o as Certificate).status?.revision ?? '') },
    { header: 'TIME LEFT', value: (o, now) => until((o as Certificate).status?.notAfter, now) },
    { header: 'RENEWAL TIME', value: (o) => (o as Certificate).status?.renewalTime ?? '' },
    { header: 'RENEWS IN', value: (o, now) => until((o as Certificate).status?.renewalTime, now) },
    { header: 'NOT AFTER', wide: true, value: (o) => (o as Certificate).status?.notAfter ?? '' },
    { header: 'STATUS', wide: true, value: message },
    { header: 'AGE', value: age },
  ],
  CertificateRequest: [
    { header: 'APPROVED', value: cond('Approved') },
    { header: 'DENIED', value: cond('Denied') },
    { header: 'READY', value: cond('Ready') },
    { header: 'ISSUER', value: (o) => (o as CertificateRequest).spec.issuerRef.name },
    { header: 'STATUS', wide: true, value: message },
    { header: 'AGE', value: age },
  ],
  Issuer: issuerColumns(),
  ClusterIssuer: issuerColumns(),
  AWSPCAIssuer: issuerColumns(),
  AWSPCAClusterIssuer: issuerColumns(),
  RootTrustPolicy: [
    { header: 'STATE', value: (o) => (o as RootTrustPolicy).status?.state ?? '' },
    { header: 'CLUSTERS', value: (o) => Object.keys((o as RootTrustPolicy).status?.clusters ?? {}).join(',') },
    {
      header: 'NEXT RENEWAL',
      value: (o) =>
        Object.values((o as RootTrustPolicy).status?.clusters ?? {})
          .map((c) => c.renewalTime ?? '')
          .filter(Boolean)
          .sort()[0] ?? '',
    },
    { header: 'ROOT', wide: true, value: (o) => (o as RootTrustPolicy).status?.rootFingerprint?.slice(0, 23) ?? '' },
    { header: 'STATUS', wide: true, value: message },
    { header: 'AGE', value: age },
  ],
  RootRotation: [
    { header: 'POLICY', value: (o) => (o as RootRotation).spec.rootTrustPolicyRef.name },
    { header: 'PHASE', value: (o) => (o as RootRotation).status?.phase ?? 'Pending' },
    { header: 'MESSAGE', value: (o) => (o as RootRotation).status?.message ?? '' },
    { header: 'AGE', value: age },
  ],
  ApprovalPolicy: [
    { header: 'DENY RULES', value: (o) => String((o as ApprovalPolicy).spec.deny?.length ?? 0) },
    { header: 'AGE', value: age },
  ],
};

/**
 * Where each cluster's bundle stands on its API server: state, digest, expiry, last write, last error.
 * A cluster with only files expires with the intermediate in the state directory.
 */
export function clusterDeliveryColumns(state: CaState): Column[] {
  const d = (o: Resource) => (o as Cluster).status?.delivery;
  return [
    {
      header: 'DELIVERY',
      value: (o) => {
        if (!(o as Cluster).spec.kubeconfig) return 'files only';
        const s = d(o);
        return s?.lastError ? 'Failing' : s?.digest ? 'Delivered' : 'Pending';
      },
    },
    { header: 'SERVER', wide: true, value: (o) => d(o)?.server ?? '' },
    { header: 'DIGEST', value: (o) => d(o)?.digest?.slice(0, 12) ?? '' },
    {
      header: 'EXPIRES',
      value: (o) =>
        ((o as Cluster).spec.kubeconfig ? d(o)?.notAfter : intermediateCert(state, o.metadata.name)?.notAfter.toISOString()) ?? '',
    },
    { header: 'LAST WRITE', value: (o) => d(o)?.lastWriteTime ?? '' },
    { header: 'LAST ERROR', value: (o) => d(o)?.lastError ?? '' },
  ];
}

/** A cluster's intermediate from ca-cert.pem alone: listing must work without the key's passphrase. Unreadable counts as none. */
export function intermediateCert(state: CaState, cluster: string): ParsedCertificate | undefined {
  const file = join(state.clusterDir(cluster), 'ca-cert.pem');
  try {
    return existsSync(file) ? parseCertificate(readFileSync(file, 'utf8'), file) : undefined;
  } catch {
    return undefined;
  }
}

function issuerColumns(): Column[] {
  return [
    { header: 'READY', value: cond('Ready') },
    { header: 'STATUS', wide: true, value: (o) => message(o) || ((o as Issuer | AwsPcaIssuer).status ? '' : 'not yet reconciled') },
    { header: 'AGE', value: age },
  ];
}

export function notFound(kind: KindInfo, name: string): MeshcaError {
  return new MeshcaError('not_found', 'not_found', `${kind.group ? `${kind.plural}.${kind.group}` : kind.plural} "${name}" not found`);
}

/**
 * Finds objects: by name in one namespace, or (no -n) in whichever namespace holds it, so that
 * `meshca get certificate istio-ca` works without knowing where the manifest put it.
 */
export async function findObjects(
  store: ResourceStore,
  kind: KindInfo,
  name: string | undefined,
  namespace: string | undefined,
): Promise<Resource[]> {
  const all = await store.list(kind, kind.namespaced ? namespace : undefined);
  if (!name) return all;
  const hits = all.filter((o) => o.metadata.name === name);
  if (hits.length === 0) throw notFound(kind, name);
  if (hits.length > 1) {
    throw invalid(
      'ambiguous',
      `${qualifiedName(kind)} "${name}" exists in namespaces ${hits.map((h) => h.metadata.namespace).join(', ')}; pick one with -n`,
    );
  }
  return hits;
}

async function findSecrets(secrets: SecretSink, name: string | undefined, namespace: string | undefined): Promise<StoredSecret[]> {
  const all = (await secrets.list(namespace)).filter((s) => !name || s.ref.name === name);
  if (name && all.length === 0) throw new MeshcaError('not_found', 'not_found', `secrets "${name}" not found`);
  return all;
}

interface GetOptions {
  dir?: string;
  namespace?: string;
  output: OutputFormat;
  at?: string;
}

/** `meshca get KIND[,KIND...] [NAME]`: kubectl-style listing; -o yaml|json prints the stored objects with status. */
export function register(program: Command): void {
  const cmd = program
    .command('get')
    .description(
      'list resources (certificates, certificaterequests, issuers, clusterissuers, awspcaissuers, roottrustpolicies, rootrotations, clusters, approvalpolicies, secrets)',
    )
    .argument(
      '<kind>',
      'kind: plural, singular or short name (certificate, certs, cr, rtp, ...); several separated by commas; or KIND/NAME',
    )
    .argument('[name]', 'one object by name')
    .option('-n, --namespace <ns>', 'only this namespace (default: every namespace)')
    .option('--at <time>', 'compute time left and ages as of this time (ISO 8601 or +DURATION)');
  withOutput(withDir(cmd), ['name']).action(async (kindArg: string, nameArg: string | undefined, o: GetOptions) => {
    const { kindNames, name } = splitKindName(kindArg, nameArg);
    const kinds = kindNames.split(',').map((k) => kindFromCli(k.trim()));
    if (kinds.length > 1 && name) throw invalid('bad_args', `a NAME needs a single kind, got ${kindNames}`);
    const c = embeddedControllers(existingStateDir(o.dir));
    const now = parseAt(o.at);
    const sections: { kind: KindInfo; items: unknown[]; text: string }[] = [];
    for (const kind of kinds) sections.push(await getKind(c, kind, name, o, now, kinds.length > 1));
    if (isStructured(o.output)) {
      const items = sections.flatMap((s) => s.items);
      writeStructured(o.output, name && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items });
      return;
    }
    // One section per kind, as kubectl prints `get a,b`: a blank line between tables, none between names.
    process.stdout.write(sections.map((s) => s.text).join(o.output === 'name' ? '' : '\n'));
  });
}

/** kubectl's `get TYPE/NAME` (`secret/istio-ca`, what the guides type) as well as `get TYPE NAME`. */
function splitKindName(kindArg: string, nameArg: string | undefined): { kindNames: string; name: string | undefined } {
  const slash = kindArg.indexOf('/');
  if (slash < 0) return { kindNames: kindArg, name: nameArg };
  const kindNames = kindArg.slice(0, slash);
  const name = kindArg.slice(slash + 1);
  if (nameArg !== undefined) throw invalid('bad_args', `give KIND NAME or KIND/NAME, not both (got ${kindArg} ${nameArg})`);
  if (!kindNames || !name || name.includes('/') || kindNames.includes(','))
    throw invalid('bad_args', `${kindArg} is not KIND/NAME (one kind, one name)`);
  return { kindNames, name };
}

/** One kind's objects, and their text in the chosen format (table, wide or name). */
async function getKind(
  c: ReturnType<typeof embeddedControllers>,
  kind: KindInfo,
  name: string | undefined,
  o: GetOptions,
  now: Date,
  multi: boolean,
): Promise<{ kind: KindInfo; items: unknown[]; text: string }> {
  if (kind.kind === 'Secret') {
    const list = await findSecrets(c.secrets, name, o.namespace);
    return { kind, items: list.map(secretObject), text: secretsText(list, o.output, o.namespace, multi) };
  }
  const objects = await findObjects(c.store, kind, name, o.namespace);
  if (o.output === 'name')
    return { kind, items: objects, text: objects.map((ob) => `${qualifiedName(kind)}/${ob.metadata.name}\n`).join('') };
  if (objects.length === 0) {
    const where = o.namespace && kind.namespaced ? ` in ${o.namespace} namespace` : '';
    return { kind, items: objects, text: `No resources found${where}${multi ? ` (${qualifiedName(kind)})` : ''}.\n` };
  }
  const all = kind.kind === 'Cluster' ? [{ header: 'AGE', value: age }, ...clusterDeliveryColumns(c.state)] : COLUMNS[kind.kind];
  const cols = (all ?? [{ header: 'AGE', value: age }]).filter((col) => o.output === 'wide' || !col.wide);
  const showNs = kind.namespaced && !o.namespace;
  const headers = [...(showNs ? ['NAMESPACE'] : []), 'NAME', ...cols.map((col) => col.header)];
  const rows = objects.map((ob) => {
    const r: Row = { NAMESPACE: ob.metadata.namespace ?? '', NAME: ob.metadata.name };
    for (const col of cols) r[col.header] = col.value(ob, now);
    return r;
  });
  return { kind, items: objects, text: table(rows, headers) };
}

function secretObject(s: StoredSecret): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: s.ref.name,
      namespace: s.ref.namespace,
      ...(s.labels ? { labels: s.labels } : {}),
      ...(s.annotations ? { annotations: s.annotations } : {}),
    },
    ...(s.type ? { type: s.type } : {}),
    data: Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, v.toString('base64')])),
  };
}

function secretsText(list: StoredSecret[], format: string, namespace: string | undefined, multi: boolean): string {
  if (format === 'name') return list.map((s) => `secret/${s.ref.name}\n`).join('');
  if (list.length === 0) return `No resources found${namespace ? ` in ${namespace} namespace` : ''}${multi ? ' (secrets)' : ''}.\n`;
  const rows = list.map((s) => ({
    NAMESPACE: s.ref.namespace,
    NAME: s.ref.name,
    TYPE: s.type ?? 'Opaque',
    DATA: String(Object.keys(s.data).length),
    OWNER: s.annotations?.[OWNER_ANNOTATION] ?? '(user)',
  }));
  return table(rows, [...(namespace ? [] : ['NAMESPACE']), 'NAME', 'TYPE', 'DATA', 'OWNER']);
}
