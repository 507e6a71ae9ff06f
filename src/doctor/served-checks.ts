import { certLabel } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { chainsTo, fail, lifetimeFinding, ok, renewalPoint, sh, span, warn, type Finding } from './findings.js';
import type { HttpObservation, ServedObservation } from './served.js';

/** Beyond this, certificates that start "now" on one side are not yet valid, or expire early, on the other. */
export const MAX_CLOCK_SKEW_MS = 60_000;

function trustFix(o: ServedObservation): string | undefined {
  return o.http ? `curl -fsS 'http://${o.http.addr}/v1/trust-bundle?format=pem' -o ${sh(o.caRootFile)}` : undefined;
}

function tlsFindings(o: ServedObservation, now: Date): Finding[] {
  const check = `CA ${o.caAddr}`;
  if (o.tlsError || !o.tls)
    return [fail(check, `no TLS connection to ${o.caAddr}: ${o.tlsError}; is \`meshca serve\` running and listening there?`)];
  const out: Finding[] = [];
  const { chain, alpn } = o.tls;
  if (alpn !== 'h2') out.push(fail(check, `the server did not offer HTTP/2 (ALPN ${alpn || 'none'}); gRPC clients need h2`));
  if (chain.length === 0) return [...out, fail(check, 'the server sent no certificate')];
  const leaf = chain[0];
  const problems = chainsTo(chain, o.caRoots);
  if (problems.length > 0) {
    out.push(
      fail(
        check,
        `the serving certificate does not chain to --ca-root ${o.caRootFile} (${o.caRoots.map(certLabel).join(', ')}): ${problems.join('; ')}; istio-agent with this root would refuse the CA`,
        trustFix(o),
      ),
    );
  } else out.push(ok(check, `the serving certificate ${certLabel(leaf)} chains to --ca-root ${o.caRootFile}`));
  const names = [...(leaf.ext.san?.dnsNames ?? []), ...(leaf.ext.san?.ipAddresses ?? [])];
  if (!names.includes(o.serverName)) {
    out.push(
      fail(
        check,
        `the serving certificate names ${names.join(', ') || 'nothing'}, not ${o.serverName}; clients that check that name (istio-agent checks istiod.istio-system.svc) refuse it`,
        `meshca serve --serving-sans ${sh([o.serverName, ...names].join(','))}   # add the name clients use`,
      ),
    );
  } else out.push(ok(check, `the serving certificate names ${o.serverName}`));
  // meshca serve renews its serving certificate at half life.
  out.push(
    lifetimeFinding(`${check} serving certificate`, leaf, now, {
      renewal: { at: renewalPoint(leaf, 0.4), rule: 'meshca serve renews it at half life', severity: 'warn' },
    }),
  );
  // The CA that signs workloads travels in the same chain: its expiry ends every workload's.
  for (const c of chain.slice(1).filter((x) => !x.selfIssued)) out.push(lifetimeFinding(`${check} issuing CA`, c, now));
  return out;
}

function httpFindings(o: ServedObservation, h: HttpObservation): Finding[] {
  const check = `HTTP ${h.addr}`;
  const out: Finding[] = h.errors.map((e) => fail(check, e));
  if (h.readyz) {
    const reason = typeof h.readyz.body.reason === 'string' ? `: ${h.readyz.body.reason}` : '';
    if (h.readyz.status === 200) out.push(ok(check, '/readyz: ready'));
    else out.push(fail(check, `/readyz answered ${h.readyz.status}${reason}; the CA does not issue certificates`));
  }
  if (h.trustBundle) {
    const served = new Set(h.trustBundle.map((r) => r.fingerprint256));
    const mine = new Set(o.caRoots.map((r) => r.fingerprint256));
    const missing = o.caRoots.filter((r) => !served.has(r.fingerprint256));
    const extra = h.trustBundle.filter((r) => !mine.has(r.fingerprint256));
    if (missing.length === o.caRoots.length) {
      out.push(
        fail(
          'trust bundle',
          `the server trusts ${h.trustBundle.map(certLabel).join(', ')}, none of which is in --ca-root ${o.caRootFile}`,
          trustFix(o),
        ),
      );
    } else if (extra.length > 0) {
      out.push(
        warn(
          'trust bundle',
          `the server also trusts ${extra.map(certLabel).join(', ')}, which --ca-root ${o.caRootFile} lacks (a root rotation?); clients need every root`,
          trustFix(o),
        ),
      );
    } else out.push(ok('trust bundle', `the server's trust bundle matches --ca-root ${o.caRootFile}`));
  }
  if (h.serverDate && h.localDate) {
    const skew = h.serverDate.getTime() - h.localDate.getTime();
    // The Date header has whole seconds: a second either way is rounding, not skew.
    const beyond = Math.abs(skew) - 1000;
    const dir = skew > 0 ? 'ahead of' : 'behind';
    if (beyond > MAX_CLOCK_SKEW_MS) {
      out.push(
        warn(
          'clock',
          `the server's clock is ${span(skew)} ${dir} this machine's: certificates are valid from the moment they are signed (back-dated 60s), so a peer whose clock is behind the signer's by more than that rejects them as not yet valid, and one ahead sees them expire early; run NTP on both`,
        ),
      );
    } else out.push(ok('clock', `the server's clock is within ${span(Math.max(Math.abs(skew), 1000))} of this machine's`));
  }
  return out;
}

function tokenFindings(o: ServedObservation, now: Date): Finding[] {
  const t = o.token;
  if (!t) return [];
  const check = 'test certificate';
  if (t.error || !t.chain) return [fail(check, `CreateCertificate with the token in ${t.file} failed: ${t.error}`)];
  const r = verifyChain(t.chain, { now, roots: o.caRoots, leafIsEndEntity: true });
  if (!r.ok)
    return [fail(check, `the issued certificate does not verify to --ca-root ${o.caRootFile}: ${r.problems.join('; ')}`, trustFix(o))];
  const uris = t.chain[0].ext.san?.uris ?? [];
  if (!uris.includes(t.identity!)) return [fail(check, `the issued certificate names ${uris.join(', ') || 'nothing'}, not ${t.identity}`)];
  return [
    ok(check, `issued ${t.identity}, valid until ${t.chain[0].notAfter.toISOString()}; the chain verifies to --ca-root ${o.caRootFile}`),
  ];
}

/** Findings for a served CA: its TLS identity, readiness, trust bundle, clock and, with a token, a real issuance. */
export function servedFindings(o: ServedObservation, now: Date): Finding[] {
  return [...tlsFindings(o, now), ...(o.http ? httpFindings(o, o.http) : []), ...tokenFindings(o, now)];
}
