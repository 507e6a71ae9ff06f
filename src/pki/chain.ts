import { certLabel, type ParsedCertificate } from './certificate.js';

export interface ChainOptions {
  now: Date;
  /** Trust anchors. A self-issued certificate at the end of the chain must be one of them. */
  roots: ParsedCertificate[];
  /** Require the first certificate to be an end entity (CA:FALSE), as for workload chains. */
  leafIsEndEntity?: boolean;
}

export interface LinkReport {
  index: number;
  label: string;
  role: 'leaf' | 'intermediate' | 'root';
  problems: string[];
}

export interface ChainResult {
  ok: boolean;
  /** One entry per certificate on the verified path, leaf first, ending at the trust anchor when found. */
  links: LinkReport[];
  /** Every problem, each naming the certificate at fault. */
  problems: string[];
  anchor?: ParsedCertificate;
  /** The path actually followed, leaf first. */
  path: ParsedCertificate[];
}

function sameCert(a: ParsedCertificate, b: ParsedCertificate): boolean {
  return a.der.equals(b.der);
}

function signedBy(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return child.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function validityProblems(c: ParsedCertificate, now: Date): string[] {
  const p: string[] = [];
  if (now.getTime() < c.notBefore.getTime()) p.push(`${certLabel(c)} is not valid before ${c.notBefore.toISOString()}`);
  if (now.getTime() > c.notAfter.getTime()) p.push(`${certLabel(c)} expired at ${c.notAfter.toISOString()}`);
  return p;
}

/** Problems with `issuer` signing `child`, where `below` CA certificates sit between issuer and the leaf. */
function linkProblems(child: ParsedCertificate, issuer: ParsedCertificate, below: number): string[] {
  const p: string[] = [];
  const c = certLabel(child);
  const i = certLabel(issuer);
  if (!child.issuerDer.equals(issuer.subjectDer))
    p.push(`${c} names issuer "${child.issuer}" but the next certificate is "${issuer.subject}"`);
  if (child.ext.authorityKeyId && issuer.ext.subjectKeyId && child.ext.authorityKeyId !== issuer.ext.subjectKeyId) {
    p.push(`${c} authority key id ${child.ext.authorityKeyId} does not match ${i} subject key id ${issuer.ext.subjectKeyId}`);
  }
  if (!issuer.ext.basicConstraints) p.push(`${i} signs ${c} but has no basicConstraints extension (not a CA)`);
  else if (!issuer.ext.basicConstraints.ca) p.push(`${i} signs ${c} but is not a CA (CA:FALSE)`);
  if (issuer.ext.keyUsage && !issuer.ext.keyUsage.usages.includes('keyCertSign')) {
    p.push(`${i} signs ${c} but its key usage lacks keyCertSign`);
  }
  const pathLen = issuer.ext.basicConstraints?.pathLen;
  if (pathLen !== undefined && below > pathLen) {
    p.push(`pathlen violation: ${i} has pathlen ${pathLen} but ${below} CA certificate(s) follow it`);
  }
  if (!signedBy(child, issuer)) p.push(`${c} signature does not verify with the public key of ${i}`);
  return p;
}

/**
 * Verifies a chain (leaf first) up to one of the given roots: signatures, validity windows,
 * basicConstraints and pathlen, keyUsage, issuer/subject and AKI/SKI linkage. Every failed
 * link is explained; nothing short-circuits, so an operator sees all problems at once.
 */
export function verifyChain(chain: ParsedCertificate[], o: ChainOptions): ChainResult {
  const problems: string[] = [];
  const links: LinkReport[] = [];
  if (chain.length === 0) return { ok: false, links, problems: ['the chain is empty'], path: [] };
  const path: ParsedCertificate[] = [chain[0]];
  const used = new Set<number>([0]);
  let anchor: ParsedCertificate | undefined;
  const leaf = chain[0];
  const leafProblems = validityProblems(leaf, o.now);
  if (o.leafIsEndEntity && leaf.isCA) leafProblems.push(`${certLabel(leaf)} is a CA certificate, not an end entity`);
  links.push({ index: 0, label: certLabel(leaf), role: 'leaf', problems: leafProblems });

  let current = leaf;
  for (let guard = 0; guard < chain.length + 2; guard++) {
    if (current.selfIssued && signedBy(current, current)) {
      const trusted = o.roots.find(
        (r) => sameCert(r, current) || (r.subjectDer.equals(current.subjectDer) && r.publicKey.equals(current.publicKey)),
      );
      if (trusted) anchor = trusted;
      else links[links.length - 1].problems.push(`${certLabel(current)} is self-signed but is not one of the trusted roots`);
      break;
    }
    // The issuer should be the next certificate in the chain.
    const nextIdx = path.length < chain.length ? chain.findIndex((c, i) => !used.has(i) && c.subjectDer.equals(current.issuerDer)) : -1;
    let issuer: ParsedCertificate | undefined;
    let fromRoots = false;
    if (nextIdx >= 0) {
      const expected = chain.findIndex((_, i) => !used.has(i));
      if (nextIdx !== expected) {
        links[links.length - 1].problems.push(
          `wrong chain order: the issuer of ${certLabel(current)} is certificate #${nextIdx + 1} but certificate #${expected + 1} comes next`,
        );
      }
      issuer = chain[nextIdx];
      used.add(nextIdx);
    } else {
      issuer =
        o.roots.find((r) => r.subjectDer.equals(current.issuerDer) && signedBy(current, r)) ??
        o.roots.find((r) => r.subjectDer.equals(current.issuerDer));
      fromRoots = issuer !== undefined;
    }
    if (!issuer) {
      links[links.length - 1].problems.push(
        `the issuer "${current.issuer}" of ${certLabel(current)} is neither in the chain nor a trusted root`,
      );
      break;
    }
    // RFC 5280: pathlen counts the non-self-issued intermediates between the issuer and the leaf.
    const below = path.slice(1).filter((c) => !c.selfIssued).length;
    links[links.length - 1].problems.push(...linkProblems(current, issuer, below));
    path.push(issuer);
    const role = issuer.selfIssued ? 'root' : 'intermediate';
    links.push({
      index: fromRoots ? -1 : chain.indexOf(issuer),
      label: certLabel(issuer),
      role,
      problems: validityProblems(issuer, o.now),
    });
    if (fromRoots) {
      anchor = issuer;
      if (!issuer.selfIssued) {
        // A trusted intermediate used as anchor: accepted, as openssl does with partial chains only on request.
        links[links.length - 1].problems.push(`${certLabel(issuer)} is a trust anchor but not self-signed`);
      }
      break;
    }
    current = issuer;
  }
  for (let i = 0; i < chain.length; i++) {
    if (!used.has(i)) problems.push(`certificate #${i + 1} ${certLabel(chain[i])} is not part of the path to the root`);
  }
  if (!anchor && !links.some((l) => l.problems.length > 0)) problems.push('the chain does not end at a trusted root');
  for (const l of links) problems.push(...l.problems);
  return { ok: problems.length === 0 && anchor !== undefined, links, problems, anchor, path };
}
