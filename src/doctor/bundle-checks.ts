import { DEFAULT_RENEW_AT } from '../agent/schedule.js';
import { sourceRoots, type Source } from '../ca/sources.js';
import { certLabel, type ParsedCertificate } from '../pki/certificate.js';
import { chainsTo, fail, leadRenewal, lifetimeFinding, ok, renewalPoint, sh, type Finding } from './findings.js';

export interface BundleCheckOptions {
  now: Date;
  /** The root every source must lead to (--root), and the file it came from. */
  expected?: { roots: ParsedCertificate[]; file: string };
  renewBeforeSeconds?: number;
}

/** istio-agent renews at half life, jittered by up to a tenth of that; later than this it is overdue. */
const WORKLOAD_OVERDUE = 1 - DEFAULT_RENEW_AT * 1.1;

function reissue(src: Source, o: BundleCheckOptions): string {
  return src.kind === 'proxy secret'
    ? `meshca doctor --ca-addr ISTIOD:15012 --ca-root ${o.expected ? sh(o.expected.file) : 'ROOT-CERT.pem'}   # istio-agent renews it: check it can reach the CA`
    : `meshca intermediate --dir STATE-DIR --cluster CLUSTER --out ${sh(src.path)}   # a new intermediate under the shared root`;
}

function sourceFindings(src: Source, o: BundleCheckOptions): Finding[] {
  const check = src.path;
  const out: Finding[] = [];
  const own = sourceRoots(src);
  const fix = reissue(src, o);
  if (src.chain.length === 0) return [fail(check, `${src.path} holds no certificate chain to check`)];
  if (own.length === 0)
    out.push(fail(check, `${src.path} carries no root (root-cert.pem, ca.crt or the ROOTCA secret), so nothing says which root it trusts`));
  const top = src.chain[src.chain.length - 1];
  if (src.roots.length > 0 && top.selfIssued && !src.roots.some((r) => r.fingerprint256 === top.fingerprint256)) {
    out.push(
      fail(
        check,
        `${src.rootsFrom} holds ${src.roots.map(certLabel).join(', ')} but the chain ends at ${certLabel(top)} (${top.fingerprint256})`,
        fix,
      ),
    );
  }
  if (own.length > 0) {
    const problems = chainsTo(src.chain, own);
    if (problems.length > 0) out.push(fail(check, `the chain does not verify to its own root: ${problems.join('; ')}`, fix));
    else out.push(ok(check, `the chain verifies to ${own.length === 1 ? `root ${certLabel(own[0])}` : `one of its ${own.length} roots`}`));
  }
  if (o.expected) {
    const problems = chainsTo(src.chain, o.expected.roots);
    if (problems.length > 0) out.push(fail(check, `the chain does not verify to --root ${o.expected.file}: ${problems.join('; ')}`, fix));
    else out.push(ok(check, `the chain verifies to --root ${o.expected.file}`));
  }
  const first = src.chain[0];
  const ca = src.caBundle || first.isCA;
  const renewal = ca
    ? leadRenewal(first, o.renewBeforeSeconds)
    : { at: renewalPoint(first, WORKLOAD_OVERDUE), rule: 'istio-agent renews at half life', severity: 'fail' as const };
  out.push(lifetimeFinding(`${check} ${ca ? 'intermediate' : 'workload certificate'}`, first, o.now, { renewal, fix }));
  for (const c of src.chain.slice(1).filter((x) => !x.selfIssued)) out.push(lifetimeFinding(`${check} chain`, c, o.now, { fix }));
  for (const r of own) out.push(lifetimeFinding(`${check} root`, r, o.now));
  return out;
}

/** Whether the sources trust one root, and which ones are apart from the rest. */
function sharedRootFindings(sources: Source[], o: BundleCheckOptions): Finding[] {
  if (sources.length < 2 && !o.expected) return [];
  const groups = new Map<string, { root: ParsedCertificate; sources: Source[] }>();
  for (const s of sources) {
    for (const r of sourceRoots(s)) {
      const g = groups.get(r.fingerprint256) ?? { root: r, sources: [] };
      g.sources.push(s);
      groups.set(r.fingerprint256, g);
    }
  }
  const wanted = o.expected?.roots.map((r) => r.fingerprint256);
  const common = [...groups.values()].filter(
    (g) => g.sources.length === sources.length && (!wanted || wanted.includes(g.root.fingerprint256)),
  );
  if (common.length > 0)
    return [
      ok('shared root', `all ${sources.length} source(s) trust root ${certLabel(common[0].root)} (${common[0].root.fingerprint256})`),
    ];
  // The root most sources trust (or --root) is the mesh's; the others are the odd ones out.
  const best = wanted
    ? [...groups.values()].find((g) => wanted.includes(g.root.fingerprint256))
    : [...groups.values()].sort((a, b) => b.sources.length - a.sources.length)[0];
  const apart = sources.filter((s) => !best || !best.sources.includes(s));
  const list = [...groups.values()].map(
    (g) => `${certLabel(g.root)} (${g.root.fingerprint256}): ${g.sources.map((s) => s.path).join(', ')}`,
  );
  const tied = !wanted && best && [...groups.values()].some((g) => g !== best && g.sources.length === best.sources.length);
  if (tied) {
    // No majority: which side is the odd one out is the operator's call.
    return [
      fail(
        'shared root',
        `the sources do not share a root, and no root is trusted by more of them than another: ${list.join('; ')}`,
        `meshca doctor --root MESH-ROOT.pem ${sources.map((s) => sh(s.path)).join(' ')}   # name the mesh's root to see which to replace`,
      ),
    ];
  }
  return apart.map((s) =>
    fail(
      'shared root',
      `${s.path} does not trust ${best ? `root ${certLabel(best.root)}, which ${wanted ? '--root names' : `${best.sources.length} other source(s) trust`}` : 'any root'}; workloads under it cannot do mTLS with the others. Roots: ${list.join('; ')}`,
      reissue(s, o),
    ),
  );
}

/** Findings for cluster bundles, Secret manifests and proxy secrets, each on its own and all together. */
export function bundleFindings(sources: Source[], o: BundleCheckOptions): Finding[] {
  return [...sources.flatMap((s) => sourceFindings(s, o)), ...sharedRootFindings(sources, o)];
}
