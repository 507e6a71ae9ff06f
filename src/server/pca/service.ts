import { join } from 'node:path';
import type { CaState } from '../../ca/state.js';
import { certsToPem, type ParsedCertificate } from '../../pki/certificate.js';
import { parseCsr, type ParsedCsr } from '../../pki/csr.js';
import { errorMessage, isMeshcaError } from '../../pki/errors.js';
import { signatureAlgorithmByOid, type SignatureAlgorithm } from '../../pki/keys.js';
import { nameFromDer, nameValues } from '../../pki/name.js';
import { OID } from '../../pki/oids.js';
import { signCsr } from '../../upstream/sign-csr.js';
import { DEFAULT_ACCOUNT, certificateArn, newCertificateId, parseCaArnStrict, parseCertificateArn, type ArnScope } from './arn.js';
import { loadCas, type PcaCa } from './cas.js';
import { PcaError, pcaErr } from './errors.js';
import { PcaStore, requestHash } from './store.js';
import { profileForTemplate } from './templates.js';
import { resolveValidity, type PcaValidity } from './validity.js';

export type UsageMode = 'GENERAL_PURPOSE' | 'SHORT_LIVED_CERTIFICATE';

export interface PcaServiceOptions {
  state: CaState;
  region: string;
  account?: string;
  partition?: string;
  now?: () => Date;
  /** Fault injection: the first N IssueCertificate calls answer ThrottlingException. */
  injectThrottle?: number;
  /** Fault injection: GetCertificate answers RequestInProgressException for this long after issuance. */
  issueDelayMs?: number;
  /** SHORT_LIVED_CERTIFICATE: every CA reports that mode and refuses validity over 7 days, as PCA does. */
  usageMode?: UsageMode;
  warn?: (message: string) => void;
}

const SIGNING: Record<string, { oid: string; family: 'rsa' | 'ec' }> = {
  SHA256WITHRSA: { oid: OID.sha256WithRSA, family: 'rsa' },
  SHA384WITHRSA: { oid: OID.sha384WithRSA, family: 'rsa' },
  SHA512WITHRSA: { oid: OID.sha512WithRSA, family: 'rsa' },
  SHA256WITHECDSA: { oid: OID.ecdsaWithSHA256, family: 'ec' },
  SHA384WITHECDSA: { oid: OID.ecdsaWithSHA384, family: 'ec' },
  SHA512WITHECDSA: { oid: OID.ecdsaWithSHA512, family: 'ec' },
};

const TOKEN_TTL_MS = 5 * 60_000;
const SHORT_LIVED_MAX_MS = 7 * 86_400_000;
const BACKDATE_MS = 60 * 60_000;

type Input = Record<string, unknown>;

function str(input: Input, field: string, required: true): string;
function str(input: Input, field: string, required?: false): string | undefined;
function str(input: Input, field: string, required = false): string | undefined {
  const v = input[field];
  if (v === undefined || v === null) {
    if (required)
      throw pcaErr.validation(
        `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
      );
    return undefined;
  }
  if (typeof v !== 'string') throw pcaErr.validation(`${field} must be a string`);
  return v;
}

function epoch(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

function keyAlgorithmName(c: ParsedCertificate): string {
  const k = c.keyInfo;
  if (k.family === 'rsa') return `RSA_${k.bits}`;
  return k.curve === 'P-384' ? 'EC_secp384r1' : k.curve === 'P-521' ? 'EC_secp521r1' : 'EC_prime256v1';
}

function defaultSigningName(c: ParsedCertificate): string {
  return c.keyInfo.family === 'rsa' ? 'SHA256WITHRSA' : c.keyInfo.curve === 'P-384' ? 'SHA384WITHECDSA' : 'SHA256WITHECDSA';
}

/** PCA's ASN1Subject: one value per field, as DescribeCertificateAuthority shows it. */
function asn1Subject(c: ParsedCertificate): Record<string, string> {
  const name = nameFromDer(c.subjectDer);
  const fields: [string, string][] = [
    ['Country', OID.country],
    ['Organization', OID.organization],
    ['OrganizationalUnit', OID.organizationalUnit],
    ['State', OID.province],
    ['Locality', OID.locality],
    ['CommonName', OID.commonName],
    ['SerialNumber', OID.serialNumber],
  ];
  const out: Record<string, string> = {};
  for (const [k, oid] of fields) {
    const v = nameValues(name, oid);
    if (v.length > 0) out[k] = v[0];
  }
  return out;
}

/**
 * The ACM PCA operations over meshca's own CAs, independent of HTTP: inputs are the decoded JSON
 * bodies, outputs the JSON to send, failures PcaError. Issuance is synchronous from token check to
 * persistence, so two concurrent requests with one IdempotencyToken cannot both issue.
 */
export class PcaService {
  readonly scope: ArnScope;
  readonly store: PcaStore;
  /** Counters for tests and logs. */
  readonly stats = { issued: 0, throttled: 0, idempotentReplays: 0 };
  private throttleLeft: number;
  private cas: PcaCa[] = [];
  private loadedAt = 0;
  private readonly now: () => Date;

  constructor(private readonly o: PcaServiceOptions) {
    this.scope = { partition: o.partition ?? 'aws', region: o.region, account: o.account ?? DEFAULT_ACCOUNT };
    this.store = new PcaStore(join(o.state.dir, 'pca'));
    this.throttleLeft = o.injectThrottle ?? 0;
    this.now = o.now ?? (() => new Date());
    this.store.pruneTokens(this.now().getTime(), TOKEN_TTL_MS);
    this.reload();
  }

  /** Re-reads the CAs from the state directory (new clusters appear without a restart). */
  reload(): PcaCa[] {
    this.cas = loadCas(this.o.state, this.scope, this.o.warn);
    this.loadedAt = Date.now();
    return this.cas;
  }

  list(): PcaCa[] {
    return [...this.cas];
  }

  private findCa(field: string, arn: string): PcaCa {
    const parsed = parseCaArnStrict(arn);
    if (!parsed) throw pcaErr.invalidArn(`${field} ${arn} is not a valid certificate authority ARN`);
    let ca = this.cas.find((c) => c.arn === arn);
    if (!ca && Date.now() - this.loadedAt > 1000) ca = this.reload().find((c) => c.arn === arn);
    if (!ca) throw pcaErr.notFound(`Could not find certificate authority ${arn}.`);
    return ca;
  }

  handle(operation: string, input: Input): unknown {
    switch (operation) {
      case 'IssueCertificate':
        return this.issueCertificate(input);
      case 'GetCertificate':
        return this.getCertificate(input);
      case 'GetCertificateAuthorityCertificate':
        return this.getCaCertificate(input);
      case 'DescribeCertificateAuthority':
        return this.describeCa(input);
      case 'ListCertificateAuthorities':
        return this.listCas(input);
      default:
        throw new PcaError('UnknownOperationException', `Operation ${operation} is not supported by this PCA-compatible API`);
    }
  }

  issueCertificate(input: Input): { CertificateArn: string } {
    if (this.throttleLeft > 0) {
      this.throttleLeft--;
      this.stats.throttled++;
      throw pcaErr.throttling();
    }
    const ca = this.findCa('CertificateAuthorityArn', str(input, 'CertificateAuthorityArn', true));
    if (this.now().getTime() > ca.cert.notAfter.getTime()) {
      throw new PcaError('InvalidStateException', `The certificate authority ${ca.arn} is in state EXPIRED and cannot issue certificates.`);
    }
    const csr = decodeCsr(str(input, 'Csr', true));
    const signing = this.signingAlgorithm(ca, str(input, 'SigningAlgorithm', true));
    const templateArn = str(input, 'TemplateArn');
    const profile = profileForTemplate(templateArn);
    const token = str(input, 'IdempotencyToken');
    if (token !== undefined && (token.length < 1 || token.length > 36 || !/^[\t\n\r\u0020-\u00FF]*$/.test(token))) {
      throw pcaErr.validation('IdempotencyToken must be 1 to 36 characters');
    }
    const now = this.now();
    const rHash = requestHash([
      csr.der.toString('base64'),
      signing.name,
      templateArn ?? '',
      input.Validity ?? null,
      input.ValidityNotBefore ?? null,
    ]);
    if (token !== undefined) {
      const prior = this.store.getToken(ca.arn, token);
      if (prior && now.getTime() - prior.createdAt < TOKEN_TTL_MS) {
        if (prior.requestHash !== rHash) {
          throw pcaErr.invalidRequest(`IdempotencyToken "${token}" was used within the last 5 minutes for a different request`);
        }
        this.stats.idempotentReplays++;
        return { CertificateArn: prior.certificateArn };
      }
    }
    const { notBefore, notAfter } = this.validity(ca, input, now);
    let cert: ParsedCertificate;
    try {
      cert = signCsr({ issuerCert: ca.cert, issuerKey: ca.key, csr, profile, notBefore, notAfter, now, signatureAlgorithm: signing.alg });
    } catch (e) {
      if (isMeshcaError(e)) throw pcaErr.invalidArgs(e.message);
      throw e;
    }
    const certId = newCertificateId();
    const arn = certificateArn(ca.arn, certId);
    this.store.saveCertificate(ca.id, certId, {
      certificateArn: arn,
      caArn: ca.arn,
      certificatePem: cert.pem,
      chainPem: certsToPem([ca.cert, ...ca.chain]),
      readyAt: now.getTime() + (this.o.issueDelayMs ?? 0),
      issuedAt: now.getTime(),
    });
    if (token !== undefined) this.store.saveToken(ca.arn, token, { certificateArn: arn, createdAt: now.getTime(), requestHash: rHash });
    this.stats.issued++;
    return { CertificateArn: arn };
  }

  private signingAlgorithm(ca: PcaCa, name: string): { name: string; alg: SignatureAlgorithm } {
    const s = SIGNING[name];
    if (!s) throw pcaErr.invalidArgs(`SigningAlgorithm ${name} is not one of ${Object.keys(SIGNING).join(', ')}`);
    if (s.family !== ca.cert.keyInfo.family) {
      throw pcaErr.invalidArgs(`SigningAlgorithm ${name} does not match the key algorithm ${keyAlgorithmName(ca.cert)} of ${ca.arn}`);
    }
    return { name, alg: signatureAlgorithmByOid(s.oid)! };
  }

  private validity(ca: PcaCa, input: Input, now: Date): { notBefore: Date; notAfter: Date } {
    const notAfter = resolveValidity(input.Validity as PcaValidity | undefined, now);
    const nb = input.ValidityNotBefore;
    const notBefore =
      nb === undefined || nb === null
        ? new Date(Math.max(now.getTime() - BACKDATE_MS, ca.cert.notBefore.getTime()))
        : resolveValidity(nb as PcaValidity, now, 'ValidityNotBefore', ['ABSOLUTE', 'END_DATE']);
    for (const [f, d] of [
      ['Validity', notAfter],
      ['ValidityNotBefore', notBefore],
    ] as const) {
      if (Number.isNaN(d.getTime()) || d.getUTCFullYear() > 9999) throw pcaErr.invalidArgs(`${f} is out of range`);
    }
    if (notAfter.getTime() <= now.getTime())
      throw pcaErr.invalidArgs(`Validity ends at ${notAfter.toISOString()}, which is not in the future`);
    if (notBefore.getTime() >= notAfter.getTime()) throw pcaErr.invalidArgs('ValidityNotBefore must be before the end of Validity');
    if (notAfter.getTime() > ca.cert.notAfter.getTime()) {
      throw pcaErr.invalidArgs(
        `The certificate validity specified exceeds the certificate authority validity (${ca.cert.notAfter.toISOString()})`,
      );
    }
    if (notBefore.getTime() < ca.cert.notBefore.getTime()) {
      throw pcaErr.invalidArgs(
        `ValidityNotBefore is before the certificate authority's own NotBefore (${ca.cert.notBefore.toISOString()})`,
      );
    }
    if (this.o.usageMode === 'SHORT_LIVED_CERTIFICATE' && notAfter.getTime() - now.getTime() > SHORT_LIVED_MAX_MS) {
      throw pcaErr.invalidArgs('The certificate authority is in SHORT_LIVED_CERTIFICATE mode: Validity must not exceed 7 days');
    }
    return { notBefore, notAfter };
  }

  getCertificate(input: Input): { Certificate: string; CertificateChain: string } {
    const ca = this.findCa('CertificateAuthorityArn', str(input, 'CertificateAuthorityArn', true));
    const arn = str(input, 'CertificateArn', true);
    const parsed = parseCertificateArn(arn);
    if (!parsed) throw pcaErr.invalidArn(`CertificateArn ${arn} is not a valid certificate ARN`);
    const c = parsed.caArn === ca.arn ? this.store.getCertificate(ca.id, parsed.certId) : undefined;
    if (!c) throw pcaErr.notFound(`Could not find certificate ${arn} in ${ca.arn}.`);
    if (this.now().getTime() < c.readyAt)
      throw pcaErr.inProgress(`The request to issue certificate ${arn} is still in progress. Try again later.`);
    return { Certificate: c.certificatePem.trimEnd(), CertificateChain: c.chainPem.trimEnd() };
  }

  getCaCertificate(input: Input): { Certificate: string; CertificateChain?: string } {
    const ca = this.findCa('CertificateAuthorityArn', str(input, 'CertificateAuthorityArn', true));
    const out: { Certificate: string; CertificateChain?: string } = { Certificate: ca.cert.pem.trimEnd() };
    if (ca.chain.length > 0) out.CertificateChain = certsToPem(ca.chain).trimEnd();
    return out;
  }

  describeCa(input: Input): { CertificateAuthority: Record<string, unknown> } {
    return { CertificateAuthority: this.describe(this.findCa('CertificateAuthorityArn', str(input, 'CertificateAuthorityArn', true))) };
  }

  private describe(ca: PcaCa): Record<string, unknown> {
    const expired = this.now().getTime() > ca.cert.notAfter.getTime();
    return {
      Arn: ca.arn,
      OwnerAccount: this.scope.account,
      CreatedAt: epoch(ca.cert.notBefore),
      LastStateChangeAt: epoch(ca.cert.notBefore),
      Type: ca.type,
      Serial: ca.cert.serialHex,
      Status: expired ? 'EXPIRED' : 'ACTIVE',
      NotBefore: epoch(ca.cert.notBefore),
      NotAfter: epoch(ca.cert.notAfter),
      CertificateAuthorityConfiguration: {
        KeyAlgorithm: keyAlgorithmName(ca.cert),
        SigningAlgorithm: defaultSigningName(ca.cert),
        Subject: asn1Subject(ca.cert),
      },
      RevocationConfiguration: { CrlConfiguration: { Enabled: false }, OcspConfiguration: { Enabled: false } },
      KeyStorageSecurityStandard: 'FIPS_140_2_LEVEL_3_OR_HIGHER',
      UsageMode: this.o.usageMode ?? 'GENERAL_PURPOSE',
    };
  }

  listCas(input: Input): { CertificateAuthorities: Record<string, unknown>[]; NextToken?: string } {
    const max = input.MaxResults === undefined ? 1000 : input.MaxResults;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 1000)
      throw pcaErr.validation('MaxResults must be an integer from 1 to 1000');
    const next = str(input, 'NextToken');
    const start = next === undefined ? 0 : Number(Buffer.from(next, 'base64').toString('utf8'));
    if (!Number.isInteger(start) || start < 0) throw pcaErr.invalidArgs('NextToken is not valid');
    this.reload();
    const page = this.cas.slice(start, start + max);
    const out: { CertificateAuthorities: Record<string, unknown>[]; NextToken?: string } = {
      CertificateAuthorities: page.map((c) => this.describe(c)),
    };
    if (start + max < this.cas.length) out.NextToken = Buffer.from(String(start + max)).toString('base64');
    return out;
  }
}

/** Csr is a blob: base64 in JSON of the PEM text (or of DER, which PCA also takes). */
function decodeCsr(b64: string): ParsedCsr {
  const clean = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length === 0) throw pcaErr.malformedCsr('Csr is not base64-encoded');
  try {
    return parseCsr(Buffer.from(clean, 'base64'), 'Csr');
  } catch (e) {
    throw pcaErr.malformedCsr(errorMessage(e));
  }
}
