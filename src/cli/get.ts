import type { Command } from 'commander';
import { stringify } from 'yaml';
import { embeddedControllers } from '../controllers/index.js';
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
  Cluster: [{ header: 'AGE', value: age }, ...clusterDeliveryColumns()],
};

/** Where each cluster's bundle stands on its API server: state, digest, expiry, last write, last error. */
export function clusterDeliveryColumns(): Column[] {
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
    { header: 'EXPIRES', value: (o) => d(o)?.notAfter ?? '' },
    { header: 'LAST WRITE', value: (o) => d(o)?.lastWriteTime ?? '' },
    { header: 'LAST ERROR', value: (o) => d(o)?.lastError ?? '' },
  ];
}

function issuerColumns(): Column[] {
  return [
    { header: 'READY', value: cond('Ready') },
    { header: 'STATUS', wide: true, value: (o) => message(o) || ((o as Issuer | AwsPcaIssuer).status ? '' : 'not yet reconciled') },
    { header: 'AGE', value: age },
  ];
}

export function table(rows: Row[], headers: string[]): string {
  const widths = headers.map((h) => Math.max(h.length, ...rows.map((r) => (r[h] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map((r) => line(headers.map((h) => r[h] ?? '')))].join('\n') + '\n';
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
  output?: string;
  at?: string;
}

/** `meshca get KIND [NAME]`: kubectl-style listing; -o yaml|json prints the stored objects with status. */
export function register(program: Command): void {
  const cmd = program
    .command('get')
    .description(
      'list resources (certificates, certificaterequests, issuers, clusterissuers, awspcaissuers, roottrustpolicies, rootrotations, clusters, approvalpolicies, secrets)',
    )
    .argument('<kind>', 'kind: plural, singular or short name (certificate, certs, cr, rtp, ...)')
    .argument('[name]', 'one object by name')
    .option('-n, --namespace <ns>', 'only this namespace (default: every namespace)')
    .option('-o, --output <format>', 'wide, yaml, json or name')
    .option('--at <time>', 'compute time left and ages as of this time (ISO 8601 or +DURATION)');
  withDir(cmd).action(async (kindName: string, name: string | undefined, o: GetOptions) => {
    const kind = kindFromCli(kindName);
    const c = embeddedControllers(existingStateDir(o.dir));
    const now = parseAt(o.at);
    const format = o.output ?? '';
    if (!['', 'wide', 'yaml', 'json', 'name'].includes(format)) throw invalid('bad_output', `-o ${format}: use wide, yaml, json or name`);
    if (kind.kind === 'Secret') {
      const list = await findSecrets(c.secrets, name, o.namespace);
      return printSecrets(list, format, o.namespace);
    }
    const objects = await findObjects(c.store, kind, name, o.namespace);
    if (format === 'yaml' || format === 'json') {
      const doc = name ? objects[0] : { apiVersion: 'v1', kind: 'List', items: objects };
      process.stdout.write(format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }));
      return;
    }
    if (format === 'name') {
      for (const ob of objects) process.stdout.write(`${qualifiedName(kind)}/${ob.metadata.name}\n`);
      return;
    }
    if (objects.length === 0) {
      process.stdout.write(`No resources found${o.namespace && kind.namespaced ? ` in ${o.namespace} namespace` : ''}.\n`);
      return;
    }
    const cols = (COLUMNS[kind.kind] ?? [{ header: 'AGE', value: age }]).filter((col) => format === 'wide' || !col.wide);
    const showNs = kind.namespaced && !o.namespace;
    const headers = [...(showNs ? ['NAMESPACE'] : []), 'NAME', ...cols.map((col) => col.header)];
    const rows = objects.map((ob) => {
      const r: Row = { NAMESPACE: ob.metadata.namespace ?? '', NAME: ob.metadata.name };
      for (const col of cols) r[col.header] = col.value(ob, now);
      return r;
    });
    process.stdout.write(table(rows, headers));
  });
}

function printSecrets(list: StoredSecret[], format: string, namespace: string | undefined): void {
  if (format === 'yaml' || format === 'json') {
    const items = list.map((s) => ({
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
    }));
    const doc = items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items };
    process.stdout.write(format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }));
    return;
  }
  if (list.length === 0) {
    process.stdout.write(`No resources found${namespace ? ` in ${namespace} namespace` : ''}.\n`);
    return;
  }
  const rows = list.map((s) => ({
    NAMESPACE: s.ref.namespace,
    NAME: s.ref.name,
    TYPE: s.type ?? 'Opaque',
    DATA: String(Object.keys(s.data).length),
    OWNER: s.annotations?.[OWNER_ANNOTATION] ?? '(user)',
  }));
  process.stdout.write(table(rows, [...(namespace ? [] : ['NAMESPACE']), 'NAME', 'TYPE', 'DATA', 'OWNER']));
}
