import { SERVER_AND_CLIENT_AUTH, type CsrProfile } from '../../upstream/sign-csr.js';
import { OID } from '../../pki/oids.js';
import { pcaErr } from './errors.js';

const TEMPLATE = /^arn:aws[a-z-]*:acm-pca:::template\/([A-Za-z0-9_]+)\/V(\d+)$/;

const PROFILES: Record<string, CsrProfile> = {
  EndEntityCertificate: { kind: 'end-entity', ekus: SERVER_AND_CLIENT_AUTH },
  EndEntityClientAuthCertificate: { kind: 'end-entity', ekus: [OID.clientAuth] },
  EndEntityServerAuthCertificate: { kind: 'end-entity', ekus: [OID.serverAuth] },
  SubordinateCACertificate_PathLen0: { kind: 'ca', pathLen: 0 },
  SubordinateCACertificate_PathLen1: { kind: 'ca', pathLen: 1 },
  SubordinateCACertificate_PathLen2: { kind: 'ca', pathLen: 2 },
  SubordinateCACertificate_PathLen3: { kind: 'ca', pathLen: 3 },
};

/** The certificate profile of a PCA template ARN; PCA's default is EndEntityCertificate/V1. */
export function profileForTemplate(templateArn: string | undefined): CsrProfile {
  if (templateArn === undefined) return PROFILES.EndEntityCertificate;
  const m = TEMPLATE.exec(templateArn);
  if (!m) throw pcaErr.invalidArgs(`TemplateArn ${templateArn} is not a template ARN (arn:aws:acm-pca:::template/<Name>/V<n>)`);
  const profile = PROFILES[m[1]];
  if (!profile || m[2] !== '1') {
    throw pcaErr.invalidArgs(
      `TemplateArn ${templateArn} is not supported here; use ${Object.keys(PROFILES)
        .map((n) => `${n}/V1`)
        .join(', ')}`,
    );
  }
  return profile;
}
