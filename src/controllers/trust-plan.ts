import type { ParsedCertificate } from '../pki/certificate.js';
import { certLabel } from '../pki/certificate.js';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair, type KeyAlgorithm } from '../pki/keys.js';
import { createRootCertificate } from '../pki/profiles.js';
import type { CertOptions, RootTrustPolicy } from '../resources/gloo.js';
import { caFromSecret, type SigningCa } from './ca-material.js';
import type { ControllerContext } from './context.js';

/**
 * What a policy's clusters should carry: the CA that signs their intermediates and the roots in
 * their root-cert.pem. Normally the policy's CA and its root; during a root rotation the two
 * differ (both roots trusted, old or new signer), see rootrotation.ts.
 */
export interface TrustPlan {
  signer: SigningCa;
  /** The root the signer chains to. */
  signerRoot: ParsedCertificate;
  trustRoots: ParsedCertificate[];
}

export function planFromCa(ca: SigningCa): TrustPlan {
  const top = ca.above.length > 0 ? ca.above[ca.above.length - 1] : ca.cert;
  const signerRoot = ca.roots.find((r) => r.der.equals(top.der)) ?? ca.roots[0];
  return { signer: ca, signerRoot, trustRoots: ca.roots };
}

/** Root options of `mgmtServerCa.generated`, Gloo's CommonCertOptions with root-sized defaults. */
export function generatedRootOptions(g: CertOptions | undefined): { alg: KeyAlgorithm; orgName: string; days: number } {
  return { alg: `rsa-${g?.rsaKeySizeBytes ?? 4096}` as KeyAlgorithm, orgName: g?.orgName ?? 'gloo-mesh', days: g?.ttlDays ?? 3650 };
}

/**
 * `generated` means meshca's own root (the state directory's root/, the one `meshca init` makes
 * and `meshca serve` trusts); it is created on first use. A dry run never writes it: it plans
 * with a throwaway root instead.
 */
export function ensureStateRoot(ctx: ControllerContext, g: CertOptions | undefined): SigningCa {
  if (!ctx.state.hasRoot()) {
    const o = generatedRootOptions(g);
    if (ctx.dryRun) {
      const kp = generateKeyPair('ec-p256');
      const cert = createRootCertificate({
        key: kp.privateKey,
        subject: { organization: [o.orgName], commonName: 'meshca root (not yet created)' },
        days: o.days,
        now: ctx.now,
      });
      return { cert, key: kp.privateKey, above: [], roots: [cert] };
    }
    ctx.state.initRoot({ alg: o.alg, subject: { organization: [o.orgName], commonName: 'meshca root' }, days: o.days, now: ctx.now });
    ctx.changed = true;
  }
  const root = ctx.state.loadRoot();
  if (!root.key) {
    throw new MeshcaError(
      'failed_precondition',
      'no_root_key',
      `the meshca root ${certLabel(root.cert)} in ${ctx.state.dir} was imported without its key; a generated RootTrustPolicy signs with it, so use mgmtServerCa.secretRef with a CA that has its key`,
    );
  }
  return { cert: root.cert, key: root.key, above: [], roots: [root.cert] };
}

/** The policy's own CA, from its spec: the referenced secret, or meshca's generated root. */
export async function basePlan(ctx: ControllerContext, rtp: RootTrustPolicy): Promise<TrustPlan> {
  const m = rtp.spec.config?.mgmtServerCa;
  if (m?.secretRef) {
    const namespace = m.secretRef.namespace ?? rtp.metadata.namespace!;
    const s = await ctx.secrets.get({ namespace, name: m.secretRef.name });
    if (!s) {
      throw new MeshcaError(
        'not_found',
        'ca_secret_missing',
        `mgmtServerCa.secretRef: secret ${namespace}/${m.secretRef.name} not found; create it (meshca apply -f secret.yaml) with ca-cert.pem, ca-key.pem, cert-chain.pem and root-cert.pem`,
      );
    }
    return planFromCa(caFromSecret(s, `secret ${namespace}/${m.secretRef.name}`));
  }
  return planFromCa(ensureStateRoot(ctx, m?.generated));
}
