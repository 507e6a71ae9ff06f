import type { V1Secret } from '@kubernetes/client-node';
import { MeshcaError } from '../pki/errors.js';
import type { CaMaterialKind, CaMaterialRow, CaMaterialRows, PendingRenewal, UpstreamRenewals } from '../store/ca-material.js';
import type { Store } from '../store/index.js';
import type { KubeClient } from './client.js';
import { readSecret, updateStateSecret } from './state-secret.js';

/** Generations kept in the Secret (a Secret holds at most 1 MiB); older ones are dropped as new ones land. */
const KEEP = 8;

type Row = CaMaterialRow | PendingRenewal;
const DATES = new Set(['notBefore', 'notAfter', 'createdAt', 'requestedAt']);
const revive = (k: string, v: unknown) => (DATES.has(k) && typeof v === 'string' ? new Date(v) : v);

/**
 * The replicated CA's rows (intermediates by generation, upstream requests in progress) in one
 * Secret, for replicas in Kubernetes without a database. Every write is a read-modify-replace on
 * the Secret's resourceVersion, made only while this replica holds the Lease: two writers of one
 * generation cannot both succeed (the second sees the key present, or a 409 and re-reads), and a
 * replica that lost the Lease writes nothing. Replicas learn of new generations by polling.
 */
export class SecretMaterialRows
  implements Pick<CaMaterialRows, 'latestMaterial' | 'materialHistory' | 'commitMaterial' | 'watchMaterial'>, UpstreamRenewals
{
  constructor(
    private readonly client: KubeClient,
    private readonly ref: { namespace: string; name: string },
    private readonly leading: () => boolean,
    private readonly meta: Pick<Store, 'setMeta'>,
  ) {}

  get description(): string {
    return `secret ${this.ref.namespace}/${this.ref.name}`;
  }

  private read(): Promise<V1Secret | undefined> {
    return readSecret(this.client, this.ref, `the CA ${this.description}`);
  }

  private async rows<T extends Row>(prefix: string): Promise<{ gen: number; row: T }[]> {
    const data = (await this.read())?.data ?? {};
    return Object.entries(data)
      .filter(([k]) => k.startsWith(prefix) && /^\d+$/.test(k.slice(prefix.length)))
      .map(([k, v]) => ({ gen: Number(k.slice(prefix.length)), row: JSON.parse(Buffer.from(v, 'base64').toString('utf8'), revive) as T }))
      .sort((a, b) => a.gen - b.gen);
  }

  /** Applies `change` to the Secret's data (false: nothing to write) under the Lease, retrying conflicts. */
  private write(what: string, change: (data: Record<string, string>) => boolean): Promise<boolean> {
    return updateStateSecret(this.client, this.ref, what, change, () => {
      if (!this.leading()) throw new MeshcaError('unavailable', 'not_leader', `this replica does not hold the Lease; ${what} not written`);
    });
  }

  private static put(data: Record<string, string>, prefix: string, gen: number, row: Row): void {
    data[`${prefix}${gen}`] = Buffer.from(JSON.stringify(row)).toString('base64');
    for (const k of Object.keys(data)) {
      if (k.startsWith(prefix) && Number(k.slice(prefix.length)) <= gen - KEEP) delete data[k];
    }
  }

  async latestMaterial(kind: CaMaterialKind, cluster: string): Promise<CaMaterialRow | undefined> {
    return (await this.rows<CaMaterialRow>(`${kind}.${cluster}.`)).pop()?.row;
  }

  async materialHistory(kind: CaMaterialKind, cluster = ''): Promise<CaMaterialRow[]> {
    return (await this.rows<CaMaterialRow>(`${kind}.${cluster}.`)).map((r) => r.row);
  }

  commitMaterial(m: CaMaterialRow): Promise<boolean> {
    const prefix = `${m.kind}.${m.cluster}.`;
    return this.write(`${m.kind} ${m.cluster} generation ${m.generation}`, (data) => {
      if (data[`${prefix}${m.generation}`]) return false;
      SecretMaterialRows.put(data, prefix, m.generation, m);
      return true;
    });
  }

  /** No watch: the Secret is polled (MaterialFollower's interval). */
  async watchMaterial(): Promise<() => Promise<void>> {
    return async () => {};
  }

  setMeta(key: string, value: string): Promise<void> {
    return this.meta.setMeta(key, value);
  }

  async pendingRenewal(cluster: string, generation: number): Promise<PendingRenewal | undefined> {
    return (await this.rows<PendingRenewal>(`pending.${cluster}.`)).find((r) => r.gen === generation)?.row;
  }

  async beginRenewal(p: PendingRenewal): Promise<PendingRenewal> {
    const prefix = `pending.${p.cluster}.`;
    await this.write(`the request for generation ${p.generation}`, (data) => {
      const had = data[`${prefix}${p.generation}`];
      if (had && (JSON.parse(Buffer.from(had, 'base64').toString('utf8')) as PendingRenewal).upstream === p.upstream) return false;
      SecretMaterialRows.put(data, prefix, p.generation, p);
      return true;
    });
    return (await this.pendingRenewal(p.cluster, p.generation)) ?? p;
  }

  async recordRenewalRef(cluster: string, generation: number, ref: string): Promise<void> {
    const key = `pending.${cluster}.${generation}`;
    await this.write(`certificate ${ref} of generation ${generation}`, (data) => {
      if (!data[key]) return false;
      const p = JSON.parse(Buffer.from(data[key], 'base64').toString('utf8'), revive) as PendingRenewal;
      if (p.certificateRef) return false;
      data[key] = Buffer.from(JSON.stringify({ ...p, certificateRef: ref })).toString('base64');
      return true;
    });
  }
}
