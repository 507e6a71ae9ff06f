import type { X509Certificate } from 'node:crypto';
import type { ParsedCertificate } from '../../pki/certificate.js';
import { Authority, type SigningMaterial } from '../authority.js';
import { localServingIssuer } from '../serving.js';
import type { MaterialSource } from './source.js';

/** An issuer that was replaced, and the top of its chain (to tell whether a root still vouches for it). */
interface Retired {
  cert: ParsedCertificate;
  top: ParsedCertificate;
}

export interface HolderOptions {
  now: () => Date;
  /** Issuers replaced before this process started whose certificates may still renew over mTLS. */
  previous?: ParsedCertificate[];
  /**
   * Whether a replaced issuer stays trusted under the current roots; by default every one does
   * until it expires.
   */
  stillTrusted?: (top: ParsedCertificate, roots: ParsedCertificate[]) => boolean;
  /** A listener threw; without this the error reaches whoever swapped. */
  onListenerError?: (e: unknown) => void;
}

function topOf(m: SigningMaterial): ParsedCertificate {
  const s = m.signer;
  return s.chain.length > 0 ? s.chain[s.chain.length - 1] : s.cert;
}

/**
 * The current signing material of a source, the issuers it replaced and the listeners told of
 * each replacement. Workload certificates never outlive their issuer, so a replaced issuer is kept
 * only until it expires (and while the current roots still vouch for it).
 */
export class MaterialHolder {
  private current: SigningMaterial;
  private previous: Retired[];
  private trusted: X509Certificate[] = [];
  private readonly listeners: ((m: SigningMaterial) => void)[] = [];

  constructor(
    initial: SigningMaterial,
    private readonly o: HolderOptions,
  ) {
    this.current = initial;
    this.previous = (o.previous ?? []).map((cert) => ({ cert, top: cert }));
    this.recompute();
  }

  get material(): SigningMaterial {
    return this.current;
  }

  /**
   * Makes `m` current and tells the listeners. With the same issuing certificate nothing happens,
   * unless `always` (a bundle whose roots changed around the same intermediate).
   */
  swap(m: SigningMaterial, always = false): boolean {
    const old = this.current;
    const sameIssuer = old.signer.cert.der.equals(m.signer.cert.der);
    if (sameIssuer && !always) return false;
    if (!sameIssuer) this.previous.push({ cert: old.signer.cert, top: topOf(old) });
    this.current = m;
    this.recompute();
    for (const l of this.listeners) {
      if (!this.o.onListenerError) l(m);
      else {
        try {
          l(m);
        } catch (e) {
          this.o.onListenerError(e);
        }
      }
    }
    return true;
  }

  onSwap(l: (m: SigningMaterial) => void): void {
    this.listeners.push(l);
  }

  /** CAs whose workload certificates may renew over mTLS: the current one and earlier ones still valid. */
  issuers(): X509Certificate[] {
    const t = this.o.now().getTime();
    if (this.previous.some((p) => p.cert.notAfter.getTime() <= t)) this.recompute();
    return this.trusted;
  }

  private recompute(): void {
    const t = this.o.now().getTime();
    const roots = this.current.roots;
    const keep = this.o.stillTrusted;
    this.previous = this.previous.filter((p) => p.cert.notAfter.getTime() > t && (!keep || keep(p.top, roots)));
    this.trusted = [this.current.signer.cert.node, ...this.previous.map((p) => p.cert.node)];
  }
}

/**
 * A source around a holder: signed and served locally unless `own` says otherwise. Own members
 * are copied as descriptors, so that getters stay live.
 */
export function heldSource(h: MaterialHolder, own: Partial<MaterialSource> & Pick<MaterialSource, 'describe'>): MaterialSource {
  const base: Omit<MaterialSource, 'describe'> = {
    get material() {
      return h.material;
    },
    onSwap: (l) => h.onSwap(l),
    issuers: () => h.issuers(),
    createAuthority: (policy, now) => new Authority(h.material, policy, now),
    servingIssuer: localServingIssuer,
    createdRoot: false,
    createdIntermediate: false,
    reload: () => undefined,
    bundleWritten: () => undefined,
    close: () => undefined,
  };
  return Object.defineProperties(base, Object.getOwnPropertyDescriptors(own)) as MaterialSource;
}
