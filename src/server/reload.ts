import { createHash, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SigningMaterial } from '../ca/authority.js';
import { ISTIO_FILES, type CaBundle } from '../ca/bundle.js';
import { signerFromBundle, type CaState } from '../ca/state.js';
import { certLabel, type ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { MeshcaError, errorMessage } from '../pki/errors.js';
import { CACERTS, FileSecretSink } from '../resources/file-secrets.js';
import { watchSecret } from '../resources/watch.js';

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

/** A signer that issued workload certificates before a swap; they renew over mTLS while it is valid and trusted. */
interface Previous {
  cert: ParsedCertificate;
  top: ParsedCertificate;
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
      h.update(f).update('\0').update(readFileSync(join(dir, f))).update('\0');
    } catch {
      h.update(f).update('\0missing\0');
    }
  }
  return h.digest('hex');
}

function topOf(b: CaBundle): ParsedCertificate {
  return b.chain.length > 0 ? b.chain[b.chain.length - 1] : b.caCert;
}

function chainsTo(top: ParsedCertificate, roots: ParsedCertificate[]): boolean {
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
  private previous: Previous[] = [];
  private trustedIssuers: X509Certificate[];
  private failedDigest: string | undefined;
  private readonly listeners: ((m: SigningMaterial) => void)[] = [];
  private readonly stops: (() => void)[] = [];
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: BundleReloadOptions) {
    this.dir = o.state.clusterDir(o.cluster);
    this.current = o.initial;
    this.digest = digestOf(this.dir);
    this.trustedIssuers = [o.initial.caCert.node];
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

  /** Called with every material swapped in. */
  onSwap(l: (m: SigningMaterial) => void): void {
    this.listeners.push(l);
  }

  /**
   * Workload issuers whose certificates may renew over mTLS: the current intermediate, and earlier
   * ones while they are valid and chain to a root still in the trust bundle (after a rotation
   * re-issues the intermediate, workloads renew with certificates from the old one).
   */
  issuers(): X509Certificate[] {
    const t = this.o.now().getTime();
    if (this.previous.some((p) => p.cert.notAfter.getTime() <= t)) this.recomputeIssuers();
    return this.trustedIssuers;
  }

  private recomputeIssuers(): void {
    const t = this.o.now().getTime();
    const roots = this.current.roots;
    this.previous = this.previous.filter((p) => p.cert.notAfter.getTime() > t && chainsTo(p.top, roots));
    this.trustedIssuers = [this.current.caCert.node, ...this.previous.map((p) => p.cert.node)];
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
        this.o.log.warn({ cluster: this.o.cluster, dir: this.dir, err: errorMessage(e) }, 'the changed cluster bundle is not usable; still signing with the current intermediate');
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
    if (!prev.caCert.der.equals(next.caCert.der)) this.previous.push({ cert: prev.caCert, top: topOf(prev) });
    if (!next.roots.some((r) => prev.roots.some((p) => p.der.equals(r.der)))) {
      this.o.log.warn({ cluster: this.o.cluster }, 'the new trust bundle shares no root with the previous one: workloads holding certificates from the previous root are refused until they renew with a token');
    }
    this.current = next;
    this.recomputeIssuers();
    const material: SigningMaterial = { signer: signerFromBundle(next), roots: next.roots };
    this.o.log.info(
      { cluster: this.o.cluster, intermediate: next.caCert.serialHex, notAfter: next.caCert.notAfter.toISOString(), roots: next.roots.map((r) => r.fingerprint256) },
      'reloaded the cluster bundle',
    );
    for (const l of this.listeners) {
      try {
        l(material);
      } catch (e) {
        this.o.log.error({ err: errorMessage(e) }, 'a listener of the reloaded cluster bundle failed');
      }
    }
  }

  close(): void {
    clearTimeout(this.retry);
    for (const s of this.stops) s();
  }
}
