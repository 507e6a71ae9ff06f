/**
 * The server-side Table kubectl asks for (`Accept: application/json;as=Table;...`) so that
 * `kubectl get csr` prints the columns a real API server sends for CSRs; other resources answer with
 * the plain object or list, and kubectl falls back to NAME and AGE.
 */
import type { IncomingMessage } from 'node:http';
import type { KubeObject } from './store.js';

export const wantsTable = (req: IncomingMessage, resource: string): boolean =>
  resource === 'certificatesigningrequests' && /;\s*as=Table\b/.test(req.headers.accept ?? '');

/** The apimachinery short duration kubectl shows (2m, 24h, 3d), for whole seconds. */
function human(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  const m = Math.floor(seconds / 60);
  if (m < 10) return seconds % 60 === 0 ? `${m}m` : `${m}m${seconds % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 === 0 || h >= 8 ? `${h}h` : `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d`;
}

function csrRow(o: KubeObject): unknown[] {
  const spec = (o.spec ?? {}) as { signerName?: string; username?: string; expirationSeconds?: number };
  const st = (o.status ?? {}) as { certificate?: string; conditions?: { type: string }[] };
  const conds = (st.conditions ?? []).map((c) => c.type);
  if (st.certificate) conds.push('Issued');
  const created = Date.parse(String(o.metadata.creationTimestamp));
  return [
    o.metadata.name,
    human(Math.max(0, Math.floor((Date.now() - created) / 1000))),
    spec.signerName ?? '',
    spec.username ?? '',
    spec.expirationSeconds !== undefined ? human(spec.expirationSeconds) : '<none>',
    conds.length > 0 ? conds.join(',') : 'Pending',
  ];
}

const COLUMNS = ['Name', 'Age', 'SignerName', 'Requestor', 'RequestedDuration', 'Condition'];

export function csrTable(items: KubeObject[], resourceVersion: string): Record<string, unknown> {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: COLUMNS.map((name) => ({
      name,
      type: 'string',
      format: name === 'Name' ? 'name' : '',
      description: '',
      priority: 0,
    })),
    rows: items.map((o) => ({
      cells: csrRow(o),
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
