import { createHash, randomBytes } from 'node:crypto';

/** Region and account that the PCA-compatible API answers for (they appear in every ARN). */
export interface ArnScope {
  partition: string;
  region: string;
  account: string;
}

export const DEFAULT_ACCOUNT = '000000000000';

/**
 * A UUID derived from the CA certificate (SHA-256 of its DER, RFC 9562 version 8 "custom" layout):
 * the same CA keeps the same ARN across restarts and machines, a new CA certificate gets a new one.
 */
export function caIdFromDer(der: Uint8Array): string {
  const h = createHash('sha256').update(der).digest().subarray(0, 16);
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function caArn(scope: ArnScope, caId: string): string {
  return `arn:${scope.partition}:acm-pca:${scope.region}:${scope.account}:certificate-authority/${caId}`;
}

export function certificateArn(caArnValue: string, certId: string): string {
  return `${caArnValue}/certificate/${certId}`;
}

/** A 32-hex-digit certificate id, like PCA's (which is the serial in hex). */
export function newCertificateId(random: (n: number) => Buffer = randomBytes): string {
  return random(16).toString('hex');
}

const CA_ARN = /^arn:(aws[a-z-]*):acm-pca:([a-z0-9-]+):(\d{12}):certificate-authority\/([0-9a-f-]{36})$/;
const CERT_ARN = /^(arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority\/[0-9a-f-]{36})\/certificate\/([0-9a-f]{32})$/;

export function parseCaArnStrict(arn: string): { partition: string; region: string; account: string; id: string } | undefined {
  const m = CA_ARN.exec(arn);
  return m ? { partition: m[1], region: m[2], account: m[3], id: m[4] } : undefined;
}

export function parseCertificateArn(arn: string): { caArn: string; certId: string } | undefined {
  const m = CERT_ARN.exec(arn);
  return m ? { caArn: m[1], certId: m[2] } : undefined;
}
