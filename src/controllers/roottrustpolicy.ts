import { istioBundleFiles, type CaBundle } from '../ca/bundle.js';
import { certLabel, type ParsedCertificate } from '../pki/certificate.js';
import { errorMessage } from '../pki/errors.js';
import { generateKeyPairAsync, type KeyAlgorithm } from '../pki/keys.js';
import { nameFromDer, nameValues } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { createIntermediateCertificate } from '../pki/profiles.js';
import { RTP_DEFAULTS, type ClusterCaStatus, type RootTrustPolicy, type RootTrustPolicyStatus } from '../resources/gloo.js';
import { CACERTS } from '../resources/file-secrets.js';
import { CLUSTER, ROOT_TRUST_POLICY } from '../resources/kinds.js';
import type { Cluster } from '../resources/meshca.js';
import { objectKey, setCondition } from '../resources/meta.js';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION, type SecretRef, type StoredSecret } from '../resources/secrets.js';
import { generatingKey } from '../util/progress.js';
import { caFromSecret, type SigningCa } from './ca-material.js';
import { guarded, record, wakeAt, type ControllerContext } from './context.js';
import { basePlan, type TrustPlan } from './trust-plan.js';
import { rotationPlan } from './rootrotation.js';

export function policyOwner(rtp: RootTrustPolicy): string {
  return `RootTrustPolicy/${rtp.metadata.namespace}/${rtp.metadata.name}`;
}

export function cacertsRef(cluster: string): SecretRef {
  return { cluster, ...CACERTS };
}

function label(rtp: RootTrustPolicy): string {
  return `RootTrustPolicy ${objectKey(rtp.metadata)}`;
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

interface Options {
  ttlDays: number;
  keyBits: number;
  orgName: string;
  ratio: number;
}

function options(rtp: RootTrustPolicy): Options {
  const o = rtp.spec.config?.intermediateCertOptions ?? {};
  return {
    ttlDays: o.ttlDays ?? RTP_DEFAULTS.ttlDays,
    keyBits: o.rsaKeySizeBytes ?? RTP_DEFAULTS.rsaKeySizeBytes,
    orgName: o.orgName ?? RTP_DEFAULTS.orgName,
    ratio: o.secretRotationGracePeriodRatio ?? RTP_DEFAULTS.secretRotationGracePeriodRatio,
  };
}

/** Renew when `ratio` of the lifetime is left (Gloo's secretRotationGracePeriodRatio, like istio-agent's). */
export function intermediateRenewalTime(cert: ParsedCertificate, ratio: number): Date {
  const life = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(Math.floor((cert.notAfter.getTime() - ratio * life) / 1000) * 1000);
}

function fingerprints(certs: ParsedCertificate[]): string[] {
  return certs.map((c) => c.fingerprint256);
}

function sameRoots(a: ParsedCertificate[], b: ParsedCertificate[]): boolean {
  const x = fingerprints(a).sort().join();
  const y = fingerprints(b).sort().join();
  return x === y;
}

function signedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  if (!cert.issuerDer.equals(issuer.subjectDer)) return false;
  try {
    return cert.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Why this cluster's intermediate must be (re)issued now, or undefined when it is current. */
function reissueReason(current: SigningCa | undefined, plan: TrustPlan, o: Options, now: Date): string | undefined {
  if (!current) return 'no intermediate yet';
  const c = current.cert;
  if (!signedBy(c, plan.signer.cert))
    return `the intermediate is signed by "${c.issuer}", not by the policy's CA ${certLabel(plan.signer.cert)}`;
  if (now.getTime() >= c.notAfter.getTime()) return `the intermediate expired at ${iso(c.notAfter)}`;
  const at = intermediateRenewalTime(c, o.ratio);
  if (now.getTime() >= at.getTime()) return `renewal was scheduled at ${iso(at)}`;
  if (c.keyInfo.family !== 'rsa' || c.keyInfo.bits !== o.keyBits)
    return `the key is ${c.keyInfo.label}, the policy asks for RSA ${o.keyBits}`;
  const orgs = nameValues(nameFromDer(c.subjectDer), OID.organization);
  if (orgs.length !== 1 || orgs[0] !== o.orgName) return `the organization is "${orgs.join(', ')}", the policy asks for "${o.orgName}"`;
  return undefined;
}

function bundleSecret(
  rtp: RootTrustPolicy,
  b: CaBundle,
): { data: Record<string, Buffer>; labels: Record<string, string>; annotations: Record<string, string> } {
  const data: Record<string, Buffer> = {};
  for (const f of istioBundleFiles(b)) data[f.name] = Buffer.from(f.data);
  return { data, labels: { [MANAGED_BY_LABEL]: 'meshca' }, annotations: { [OWNER_ANNOTATION]: policyOwner(rtp) } };
}

/**
 * The key is generated on libuv's thread pool: an RSA-4096 key (the policy's default) takes
 * seconds on a small machine, and `meshca serve` runs this reconcile on the event loop that also
 * answers certificate requests; generated synchronously, it stalled renewals in the middle of a
 * rotation (test/e2e/rotation-live.test.ts saw a workload certificate expire under load).
 */
async function issueIntermediate(ctx: ControllerContext, cluster: string, plan: TrustPlan, o: Options): Promise<CaBundle> {
  const alg = `rsa-${o.keyBits}` as KeyAlgorithm;
  const kp = await generatingKey(ctx.progress, alg, `the intermediate of cluster "${cluster}"`, () => generateKeyPairAsync(alg));
  const now = ctx.now;
  const { cert } = createIntermediateCertificate({
    issuerCert: plan.signer.cert,
    issuerKey: plan.signer.key,
    publicKey: kp.publicKey,
    subject: { organization: [o.orgName], commonName: `meshca intermediate ${cluster}` },
    days: o.ttlDays,
    pathLen: 0,
    now,
  });
  return { caCert: cert, caKey: kp.privateKey, chain: [cert, plan.signer.cert, ...plan.signer.above], roots: plan.trustRoots };
}

function readCurrent(s: StoredSecret | undefined, what: string): SigningCa | undefined {
  if (!s) return undefined;
  try {
    return caFromSecret(s, what);
  } catch {
    return undefined;
  }
}

/**
 * Gloo's RootTrustPolicy: one `cacerts` intermediate per registered cluster, signed by the
 * policy's CA (meshca's generated root, or the CA in `mgmtServerCa.secretRef`), kept renewed
 * when `secretRotationGracePeriodRatio` of its lifetime is left, and root-cert.pem kept equal to
 * the trust bundle (which a root rotation widens and narrows, see rootrotation.ts).
 */
export async function reconcileRootTrustPolicy(ctx: ControllerContext, rtp: RootTrustPolicy): Promise<void> {
  const now = ctx.now;
  const o = options(rtp);
  const owner = policyOwner(rtp);
  const status: RootTrustPolicyStatus = { ...(rtp.status ?? {}), observedGeneration: rtp.metadata.generation };
  const clustersStatus: Record<string, ClusterCaStatus> = { ...(status.clusters ?? {}) };
  let plan: TrustPlan;
  try {
    const base = await basePlan(ctx, rtp);
    plan = (await rotationPlan(ctx, rtp, base)) ?? base;
  } catch (e) {
    const message = errorMessage(e);
    status.state = 'FAILED';
    status.conditions = setCondition(
      status.conditions,
      { type: 'Ready', status: 'False', reason: 'CAUnavailable', message, observedGeneration: rtp.metadata.generation },
      now,
    );
    record(ctx, { object: label(rtp), action: 'failed', message, warning: true });
    if (!ctx.dryRun) await save(ctx, rtp, status);
    return;
  }
  status.rootFingerprint = plan.signerRoot.fingerprint256;
  const registered = (await ctx.store.list<Cluster>(CLUSTER)).map((c) => c.metadata.name);
  for (const cluster of registered) {
    const ref = cacertsRef(cluster);
    const what = `cluster ${cluster} cacerts`;
    const prev = clustersStatus[cluster];
    try {
      const existing = await ctx.secrets.get(ref);
      const existingOwner = existing?.annotations?.[OWNER_ANNOTATION];
      if (existing && existingOwner !== owner) {
        throw new Error(
          `${what} exists and is ${existingOwner ? `managed by ${existingOwner}` : 'not managed by meshca'}; refusing to replace it (remove it to let this policy issue one)`,
        );
      }
      const current = readCurrent(existing, what);
      const why = reissueReason(current, plan, o, now);
      let bundle: CaBundle | undefined;
      if (why) {
        if (ctx.dryRun) {
          record(ctx, { object: label(rtp), action: current ? 'would-renew' : 'would-issue', message: `cluster ${cluster}: ${why}` });
          continue;
        }
        bundle = await issueIntermediate(ctx, cluster, plan, o);
        record(ctx, {
          object: label(rtp),
          action: current ? 'renewed' : 'issued',
          message: `cluster ${cluster}: ${why}; new intermediate serial ${bundle.caCert.serialHex}`,
        });
      } else if (!sameRoots(current!.roots, plan.trustRoots)) {
        if (ctx.dryRun) {
          record(ctx, {
            object: label(rtp),
            action: 'would-update-trust',
            message: `cluster ${cluster}: root-cert.pem would hold ${plan.trustRoots.length} root(s)`,
          });
          continue;
        }
        bundle = { caCert: current!.cert, caKey: current!.key, chain: [current!.cert, ...current!.above], roots: plan.trustRoots };
        record(ctx, {
          object: label(rtp),
          action: 'trust-updated',
          message: `cluster ${cluster}: root-cert.pem now holds ${plan.trustRoots.map(certLabel).join(' and ')}`,
        });
      }
      if (bundle) {
        if (await ctx.secrets.put(ref, bundleSecret(rtp, bundle), { owner })) ctx.changed = true;
      }
      const cert = bundle?.caCert ?? current!.cert;
      const renewAt = intermediateRenewalTime(cert, o.ratio);
      wakeAt(ctx, renewAt);
      clustersStatus[cluster] = {
        state: 'ISSUED',
        serialNumber: cert.serialHex,
        notBefore: iso(cert.notBefore),
        notAfter: iso(cert.notAfter),
        renewalTime: iso(renewAt),
        issuerFingerprint: plan.signer.cert.fingerprint256,
        trustedRoots: fingerprints(bundle?.roots ?? current!.roots),
      };
    } catch (e) {
      const message = errorMessage(e);
      record(ctx, { object: label(rtp), action: 'failed', message: `cluster ${cluster}: ${message}`, warning: true });
      // The same failure again changes nothing, so a stuck cluster does not rewrite status every pass.
      if (prev?.state === 'FAILED' && prev.message === message) continue;
      clustersStatus[cluster] = {
        ...(prev ?? {}),
        state: 'FAILED',
        message,
        lastFailureTime: iso(now),
        failedAttempts: (prev?.state === 'FAILED' ? (prev.failedAttempts ?? 0) : 0) + 1,
      };
    }
  }
  for (const cluster of Object.keys(clustersStatus)) {
    if (registered.includes(cluster)) continue;
    if (!ctx.dryRun) {
      try {
        await ctx.secrets.delete(cacertsRef(cluster), { owner });
      } catch {
        // Not ours any more: leave it where it is.
      }
      record(ctx, {
        object: label(rtp),
        action: 'removed',
        message: `cluster ${cluster} is no longer registered; its intermediate was removed`,
      });
    }
    delete clustersStatus[cluster];
  }
  status.clusters = clustersStatus;
  const failing = Object.entries(clustersStatus).filter(([, c]) => c.state === 'FAILED');
  status.state = failing.length > 0 ? 'FAILED' : 'ACCEPTED';
  const cond =
    registered.length === 0
      ? { status: 'False' as const, reason: 'NoClusters', message: 'no clusters registered; run `meshca cluster add NAME`' }
      : failing.length > 0
        ? { status: 'False' as const, reason: 'ClustersFailing', message: failing.map(([n, c]) => `${n}: ${c.message}`).join('; ') }
        : {
            status: 'True' as const,
            reason: 'Ready',
            message: `${registered.length} cluster(s) hold a current intermediate signed by ${certLabel(plan.signer.cert)}`,
          };
  status.conditions = setCondition(status.conditions, { type: 'Ready', ...cond, observedGeneration: rtp.metadata.generation }, now);
  if (!ctx.dryRun) await save(ctx, rtp, status);
}

async function save(ctx: ControllerContext, rtp: RootTrustPolicy, status: RootTrustPolicyStatus): Promise<void> {
  const saved = await ctx.store.updateStatus(ROOT_TRUST_POLICY, { ...rtp, status });
  if (saved.metadata.resourceVersion !== rtp.metadata.resourceVersion) ctx.changed = true;
}

export async function reconcileRootTrustPolicies(ctx: ControllerContext): Promise<void> {
  for (const rtp of await ctx.store.list<RootTrustPolicy>(ROOT_TRUST_POLICY)) {
    await guarded(ctx, label(rtp), () => reconcileRootTrustPolicy(ctx, rtp));
  }
}
