import { createHash, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certLabel, type ParsedCertificate } from '../../pki/certificate.js';
import { verifyChain } from '../../pki/chain.js';
import { MeshcaError, errorMessage } from '../../pki/errors.js';
import { CACERTS, FileSecretSink } from '../../resources/file-secrets.js';
import { watchSecret } from '../../resources/watch.js';
import type { SigningMaterial } from '../authority.js';
import { ISTIO_FILES, type CaBundle } from '../bundle.js';
import { signerFromBundle, type CaState } from '../state.js';
import { MaterialHolder } from './holder.js';

/**
 * Hot reload of the served cluster's bundle (<dir>/clusters/<cluster>/cacerts/) for the local CA:
 * whoever rewrites it (the controllers in this process, `meshca apply` or `meshca reconcile` in
 * another, `meshca intermediate`), the server signs with the new intermediate and trusts the new
 * root-cert.pem without a restart. Requests never fail over it: the new material is read and
 * validated completely before Authority.setMaterial swaps it in one assignment, and a bundle that
 * does not validate leaves the current material in place.
 *
 * Change detection, cheapest first: the in-process sink's onChange (controllers in this server),
 * stat polling of the sink's .meta.json marker (written last, so every file is in place when it
 * changes), and a periodic digest of the four files for writers that leave no marker.
 */

export interface BundleReloadOptions {
  state: CaState;
  cluster: string;
  /** What bootstrap loaded: the material the server starts with. */
  initial: CaBundle;
  now: () => Date;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
  /** Watch the change marker (the single process and the primary; workers reload when told). */
  watchMarker: boolean;
  markerIntervalMs?: number;
  /** Fallback digest check; 0 disables it. */
  pollMs?: number;
}

/** Why a bundle must not be served now, or undefined when it can be. */
export function bundleProblem(b: CaBundle, now: Date): string | undefined {
  if (!b.caCert.isCA) return `${certLabel(b.caCert)} is not a CA certificate`;
  if (b.roots.length === 0) return 'root-cert.pem holds no root';
  const chain = b.chain[0]?.der.equals(b.caCert.der) ? b.chain : [b.caCert, ...b.chain];
  // Every link, validity included: a bundle not yet valid (issued "as if at" a later time) or
  // expired would make every request fail, so it waits and the current material stays.
  const v = verifyChain(chain, { roots: b.roots, now });
  if (!v.ok) return v.problems.join('; ');
  return undefined;
}

function digestOf(dir: string): string {
  const h = createHash('sha256');
  for (const f of ISTIO_FILES) {
    try {
      h.update(f)
        .update('\0')
        .update(readFileSync(join(dir, f)))
        .update('\0');
    } catch {
      h.update(f).update('\0missing\0');
    }
  }
  return h.digest('hex');
}

/** Whether a replaced issuer's chain top is, or is signed by, one of the current roots. */
export function chainsTo(top: ParsedCertificate, roots: ParsedCertificate[]): boolean {
  return roots.some((r) => r.der.equals(top.der) || (top.issuerDer.equals(r.subjectDer) && safeVerify(top, r)));
}

function safeVerify(c: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return c.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

export class ClusterBundleReload {
  private readonly dir: string;
  private digest: string;
  private current: CaBundle;
  /** The material in use; the bundle's digest decides when it is replaced. */
  readonly holder: MaterialHolder;
  private failedDigest: string | undefined;
  private readonly stops: (() => void)[] = [];
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: BundleReloadOptions) {
    this.dir = o.state.clusterDir(o.cluster);
    this.current = o.initial;
    this.digest = digestOf(this.dir);
    // After a rotation re-issues the intermediate, workloads renew with certificates from the old
    // one while it is valid and chains to a root still in the trust bundle.
    this.holder = new MaterialHolder(
      { signer: signerFromBundle(o.initial), roots: o.initial.roots },
      {
        now: o.now,
        stillTrusted: chainsTo,
        onListenerError: (e) => o.log.error({ err: errorMessage(e) }, 'a listener of the reloaded cluster bundle failed'),
      },
    );
    if (o.watchMarker) {
      const sink = new FileSecretSink(o.state.dir);
      this.stops.push(watchSecret(sink, { cluster: o.cluster, ...CACERTS }, () => this.check(), { intervalMs: o.markerIntervalMs ?? 250 }));
    }
    const poll = o.pollMs ?? 10_000;
    if (poll > 0) {
      const t = setInterval(() => this.check(), poll);
      t.unref();
      this.stops.push(() => clearInterval(t));
    }
  }

  get material(): SigningMaterial {
    return this.holder.material;
  }

  /** Called with every material swapped in. */
  onSwap(l: (m: SigningMaterial) => void): void {
    this.holder.onSwap(l);
  }

  /** Workload issuers whose certificates may renew over mTLS (see MaterialHolder). */
  issuers(): X509Certificate[] {
    return this.holder.issuers();
  }

  /**
   * Reloads when the files changed since the last look. Returns true when new material was
   * swapped in. Never throws: a bundle that cannot be read or validated is logged and the current
   * material stays; a torn read (files replaced one by one by a writer without a marker) is
   * retried once shortly after.
   */
  check(): boolean {
    const d = digestOf(this.dir);
    if (d === this.digest) return false;
    let next: CaBundle;
    try {
      next = this.o.state.loadCluster(this.o.cluster);
      const problem = bundleProblem(next, this.o.now());
      if (problem) throw new MeshcaError('failed_precondition', 'bad_bundle', problem);
    } catch (e) {
      if (this.failedDigest !== d) {
        this.failedDigest = d;
        this.o.log.warn(
          { cluster: this.o.cluster, dir: this.dir, err: errorMessage(e) },
          'the changed cluster bundle is not usable; still signing with the current intermediate',
        );
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.check(), 500);
        this.retry.unref();
      }
      return false;
    }
    this.digest = d;
    this.failedDigest = undefined;
    this.swap(next);
    return true;
  }

  private swap(next: CaBundle): void {
    const prev = this.current;
    if (!next.roots.some((r) => prev.roots.some((p) => p.der.equals(r.der)))) {
      this.o.log.warn(
        { cluster: this.o.cluster },
        'the new trust bundle shares no root with the previous one: workloads holding certificates from the previous root are refused until they renew with a token',
      );
    }
    this.current = next;
    this.o.log.info(
      {
        cluster: this.o.cluster,
        intermediate: next.caCert.serialHex,
        notAfter: next.caCert.notAfter.toISOString(),
        roots: next.roots.map((r) => r.fingerprint256),
      },
      'reloaded the cluster bundle',
    );
    this.holder.swap({ signer: signerFromBundle(next), roots: next.roots }, true);
  }

  close(): void {
    clearTimeout(this.retry);
    for (const s of this.stops) s();
  }
}
