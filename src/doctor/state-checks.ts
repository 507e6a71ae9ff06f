import { certLabel, type ParsedCertificate } from '../pki/certificate.js';
import { chainsTo, fail, leadRenewal, lifetimeFinding, ok, renewalPoint, sh, warn, type Finding } from './findings.js';
import { renewalTime } from '../controllers/certificates/policy.js';
import type { CertificateSnapshot, ClusterSnapshot, KeyFile, StateSnapshot } from './state-read.js';

export interface StateCheckOptions {
  now: Date;
  /** Renewal lead time for intermediates no RootTrustPolicy owns (default: a third of their lifetime). */
  renewBeforeSeconds?: number;
}

/** A root has no automatic renewal: warn with a third of its life left, time enough for a RootRotation. */
const ROOT_RENEW_FRACTION = 1 / 3;

function keyFindings(check: string, k: KeyFile, mismatchFix: string, what: string): Finding[] {
  const out: Finding[] = [];
  if ((k.mode & 0o077) !== 0) {
    out.push(
      fail(
        check,
        `${k.path} is readable by group or others (mode ${k.mode.toString(8)}); meshca refuses to use it`,
        `chmod 600 ${sh(k.path)}`,
      ),
    );
  } else out.push(ok(check, `${k.path} is mode ${k.mode.toString(8)}`));
  if (k.error) out.push(warn(check, `cannot read ${k.path} to check it matches ${what}: ${k.error}`));
  else if (k.matches === false) out.push(fail(check, `${k.path} does not match ${what}`, mismatchFix));
  else if (k.matches) out.push(ok(check, `${k.path} matches ${what}`));
  return out;
}

function selfSignedCert(c: ParsedCertificate): boolean {
  try {
    return c.selfIssued && c.node.verify(c.publicKey);
  } catch {
    return false;
  }
}

/** The root most cluster bundles carry, when there is no state root to compare them with. */
function mostTrustedRoot(clusters: ClusterSnapshot[]): ParsedCertificate | undefined {
  const count = new Map<string, { root: ParsedCertificate; n: number }>();
  for (const r of clusters.flatMap((c) => c.roots)) {
    const e = count.get(r.fingerprint256) ?? { root: r, n: 0 };
    e.n++;
    count.set(r.fingerprint256, e);
  }
  return [...count.values()].sort((a, b) => b.n - a.n)[0]?.root;
}

function rootFindings(s: StateSnapshot, now: Date, dirFlag: string): Finding[] {
  const check = 'root';
  if (s.rootError)
    return [
      fail(
        check,
        `the root certificate is unreadable: ${s.rootError}`,
        `meshca root import ${dirFlag} --cert ROOT-CERT.pem --key ROOT-KEY.pem --force`,
      ),
    ];
  if (!s.root) {
    return [fail(check, `no root in ${s.dir} (${s.rootPath} is missing)`, `meshca init ${dirFlag}`)];
  }
  const r = s.root;
  const out: Finding[] = [];
  const selfSigned = selfSignedCert(r);
  if (!r.isCA) out.push(fail(check, `${certLabel(r)} is not a CA certificate (basicConstraints CA:TRUE missing)`));
  else if (!selfSigned) out.push(fail(check, `${certLabel(r)} is not self-signed; the state root must be the top of the hierarchy`));
  else out.push(ok(check, `${certLabel(r)} is a self-signed CA, SHA-256 ${r.fingerprint256}`));
  out.push(
    lifetimeFinding(check, r, now, {
      renewal: {
        at: renewalPoint(r, ROOT_RENEW_FRACTION),
        rule: 'a third of its lifetime left; rotate it with a RootRotation',
        severity: 'warn',
      },
      fix: `meshca apply ${dirFlag} -f ROOTROTATION.yaml   # a RootRotation, see docs/declarative-pki.md`,
    }),
  );
  if (s.rootKey) {
    out.push(
      ...keyFindings(
        'root key',
        s.rootKey,
        `meshca root import ${dirFlag} --cert ${sh(s.rootPath)} --key THE-MATCHING-KEY.pem --force`,
        s.rootPath,
      ),
    );
  } else out.push(ok('root key', 'the root was imported without its key: cluster intermediates come from `meshca ca import`'));
  return out;
}

/** The command that gives a cluster a fresh, correct intermediate, by who manages it. */
function reissueFix(s: StateSnapshot, c: ClusterSnapshot, dirFlag: string): string {
  if (c.owner?.startsWith('RootTrustPolicy/')) return `meshca reconcile ${dirFlag}`;
  if (s.rootKey) return `meshca intermediate ${dirFlag} --cluster ${c.name} --out ./${c.name}-cacerts`;
  return `meshca ca import NEW-BUNDLE-DIR --cluster ${c.name} --force ${dirFlag}`;
}

function clusterFindings(s: StateSnapshot, c: ClusterSnapshot, o: StateCheckOptions, dirFlag: string, rootName: string): Finding[] {
  const check = `cluster ${c.name}`;
  const fix = reissueFix(s, c, dirFlag);
  if (!c.caCert && !c.readError) {
    return [fail(check, `cluster ${c.name} is registered but has no intermediate in ${c.dir}`, `meshca reconcile ${dirFlag}`)];
  }
  if (c.readError || !c.caCert) return [fail(check, `the bundle in ${c.dir} is unreadable: ${c.readError}`, fix)];
  const out: Finding[] = [];
  const ca = c.caCert;
  const chain = c.chain.length > 0 ? c.chain : [ca];
  if (!chain[0].der.equals(ca.der)) out.push(fail(check, `cert-chain.pem does not start with ca-cert.pem (${certLabel(ca)})`, fix));
  if (s.root) {
    const problems = chainsTo(chain, [s.root]);
    if (problems.length > 0) {
      out.push(
        fail(check, `the intermediate ${certLabel(ca)} does not chain to ${rootName} ${certLabel(s.root)}: ${problems.join('; ')}`, fix),
      );
    } else out.push(ok(check, `${certLabel(ca)} chains to ${rootName}`));
    const fps = c.roots.map((r) => r.fingerprint256);
    if (!fps.includes(s.root.fingerprint256)) {
      out.push(
        fail(
          check,
          `root-cert.pem holds ${c.roots.map(certLabel).join(', ') || 'nothing'}, not ${rootName} ${certLabel(s.root)} (${s.root.fingerprint256}): this cluster's workloads would not trust the others`,
          fix,
        ),
      );
    } else
      out.push(
        ok(check, `root-cert.pem holds ${rootName}${c.roots.length > 1 ? ` and ${c.roots.length - 1} other root(s) (a rotation)` : ''}`),
      );
  }
  const renewal =
    c.policyRatio !== undefined
      ? {
          at: renewalPoint(ca, c.policyRatio),
          rule: `${c.owner}: secretRotationGracePeriodRatio ${c.policyRatio}`,
          severity: 'fail' as const,
        }
      : o.renewBeforeSeconds === undefined && s.serveRenewBefore
        ? leadRenewal(ca, s.serveRenewBefore.seconds, `renewBefore in ${s.serveRenewBefore.file}`)
        : leadRenewal(ca, o.renewBeforeSeconds);
  // The controller renews what is expiring, not what starts later: for that, the bundle must go first.
  const future = o.now.getTime() < ca.notBefore.getTime() && c.owner?.startsWith('RootTrustPolicy/');
  const timeFix = future ? `rm -r ${sh(c.dir)} && meshca reconcile ${dirFlag}` : fix;
  out.push(lifetimeFinding(`${check} intermediate`, ca, o.now, { renewal, fix: timeFix }));
  if (c.key) out.push(...keyFindings(`${check} key`, c.key, fix, `${c.dir}/ca-cert.pem`));
  return out;
}

/** A Certificate's Secret as its controller would judge it: chain to ca.crt, dates against renewBefore, key. */
function certificateFindings(c: CertificateSnapshot, now: Date, dirFlag: string): Finding[] {
  const check = `certificate ${c.name}`;
  const fix = `meshca reconcile ${dirFlag}`;
  if (c.readError || c.chain.length === 0) return [fail(check, c.readError ?? `${c.secretDir}/tls.crt holds no certificate`, fix)];
  const leaf = c.chain[0];
  const out: Finding[] = [];
  if (c.cas.length === 0) out.push(warn(check, `${c.secretDir}/ca.crt is empty: there is no CA to check ${certLabel(leaf)} against`));
  else {
    const problems = chainsTo(c.chain, c.cas);
    if (problems.length > 0) out.push(fail(check, `tls.crt does not chain to ca.crt: ${problems.join('; ')}`, fix));
    else out.push(ok(check, `${certLabel(leaf)} chains to ca.crt ${c.cas.map(certLabel).join(', ')}`));
  }
  const rule =
    c.spec.renewBefore !== undefined
      ? `renewBefore ${c.spec.renewBefore}`
      : c.spec.renewBeforePercentage !== undefined
        ? `renewBeforePercentage ${c.spec.renewBeforePercentage}`
        : 'a third of its lifetime left';
  const at = renewalTime(leaf.notBefore, leaf.notAfter, c.spec);
  out.push(lifetimeFinding(check, leaf, now, { renewal: { at, rule, severity: 'fail' }, fix }));
  if (c.key) out.push(...keyFindings(`${check} key`, c.key, fix, `${c.secretDir}/tls.crt`));
  return out;
}

function databaseFindings(s: StateSnapshot, dirFlag: string): Finding[] {
  const d = s.database;
  if (!d) return [ok('database', `no ${s.dir}/meshca.db yet (\`meshca serve\` and \`meshca token\` create it)`)];
  const out: Finding[] = [];
  if ((d.mode & 0o077) !== 0)
    out.push(
      fail(
        'database',
        `${d.path} is readable by group or others (mode ${d.mode.toString(8)}); it holds token-issuer keys`,
        `chmod 600 ${sh(d.path)}`,
      ),
    );
  if (d.error) out.push(fail('database', `${d.path} is unreadable: ${d.error}`));
  else if (d.schema !== undefined && d.schema > d.latest) {
    out.push(
      fail('database', `${d.path} has schema version ${d.schema}, newer than this meshca's ${d.latest}: it was written by a newer meshca`),
    );
  } else
    out.push(
      ok(
        'database',
        `${d.path} is readable (schema version ${d.schema}${d.schema! < d.latest ? `; \`meshca serve ${dirFlag}\` migrates it to ${d.latest}` : ''})`,
      ),
    );
  return out;
}

/**
 * A state without root/: an upstream CA (AWS PCA, a Kubernetes signer), a RootTrustPolicy's Secret or
 * cert-manager issuers keep the root's key. The reference root is then the one the cluster bundles
 * carry, else the one serve gave agents in trust-bundle.pem; none at all is a state with no root yet.
 */
function borrowedRoot(snap: StateSnapshot, o: StateCheckOptions): { findings: Finding[]; root?: ParsedCertificate } | undefined {
  if (snap.root || snap.rootError) return undefined;
  const certs = snap.certificates ?? [];
  const bundle = snap.trustBundle;
  const out: Finding[] = [];
  if (bundle?.error)
    out.push(fail('trust bundle', `${bundle.path} is unreadable: ${bundle.error}`, `meshca serve --dir ${sh(snap.dir)}   # rewrites it`));
  const root = mostTrustedRoot(snap.clusters) ?? bundle?.roots[0];
  const keepers = "an upstream such as AWS Private CA or a Kubernetes signer, or a RootTrustPolicy's secretRef";
  if (root) {
    const from = mostTrustedRoot(snap.clusters) ? 'the root their bundles carry' : `the root serve gives agents in ${bundle!.path}`;
    out.unshift(
      ok(
        'root',
        `no ${snap.rootPath}: meshca signs under a CA it does not keep as its root (${keepers}); checking against ${certLabel(root)} (${root.fingerprint256}), ${from}`,
      ),
    );
    for (const r of bundle?.roots ?? [root]) out.push(lifetimeFinding('root', r, o.now));
    if (bundle && bundle.roots.length > 0 && !bundle.roots.some((r) => r.fingerprint256 === root.fingerprint256))
      out.push(
        fail(
          'trust bundle',
          `${bundle.path} does not hold ${certLabel(root)}, the root the cluster bundles carry: agents given it reject their peers`,
        ),
      );
    return { findings: out, root };
  }
  if (certs.length === 0) return undefined;
  out.unshift(
    ok(
      'root',
      `no ${snap.rootPath}: the CAs here come from the issuers of ${certs.length} cert-manager Certificate(s), which keep their roots; each is checked against its Secret's ca.crt`,
    ),
  );
  return { findings: out };
}

/** Every finding about a state directory: root, its key, each cluster's bundle, failed resources, the database. */
export function stateFindings(snap: StateSnapshot, o: StateCheckOptions): Finding[] {
  const dirFlag = `--dir ${sh(snap.dir)}`;
  const borrowed = borrowedRoot(snap, o);
  const s = borrowed?.root ? { ...snap, root: borrowed.root } : snap;
  const rootName = borrowed?.root ? 'the root the clusters trust' : 'the state root';
  const certs = snap.certificates ?? [];
  const out = borrowed ? borrowed.findings : rootFindings(s, o.now, dirFlag);
  if (s.clusters.length === 0 && (!borrowed || borrowed.root)) out.push(ok('clusters', 'no cluster intermediates yet'));
  for (const c of s.clusters) out.push(...clusterFindings(s, c, o, dirFlag, rootName));
  if (s.root && s.clusters.length > 1) {
    const apart = s.clusters.filter((c) => c.caCert && !c.roots.some((r) => r.fingerprint256 === s.root!.fingerprint256));
    if (apart.length === 0) out.push(ok('shared root', `all ${s.clusters.length} cluster bundles trust root ${certLabel(s.root)}`));
    else
      out.push(
        fail(
          'shared root',
          `cluster(s) ${apart.map((c) => c.name).join(', ')} do not trust the root the others share; cross-cluster mTLS between them fails`,
        ),
      );
  }
  for (const c of certs) out.push(...certificateFindings(c, o.now, dirFlag));
  if (s.resourcesError) out.push(fail('resources', `the stored resources are unreadable: ${s.resourcesError}`));
  else if (s.failed.length === 0) out.push(ok('resources', 'no resource records a failure'));
  for (const f of s.failed) {
    out.push(fail(`resource ${f.object}`, `${f.reason}: ${f.message}; fix the cause, then reconcile`, `meshca reconcile ${dirFlag}`));
  }
  out.push(...databaseFindings(s, dirFlag));
  return out;
}
