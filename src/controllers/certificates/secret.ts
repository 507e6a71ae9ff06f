import { normalizeIssuerRef, type Certificate } from '../../resources/certmanager.js';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION, type SecretContent } from '../../resources/secrets.js';
import { ANNOTATIONS } from './policy.js';

export function certificateOwner(cert: Certificate): string {
  return `Certificate/${cert.metadata.namespace}/${cert.metadata.name}`;
}

/** The kubernetes.io/tls secret cert-manager writes, with its annotations, plus meshca's owner mark. */
export function certificateSecret(cert: Certificate, tlsCrt: string, tlsKey: string, caCrt: string): SecretContent {
  const ref = normalizeIssuerRef(cert.spec.issuerRef);
  const s = cert.spec;
  const annotations: Record<string, string> = {
    ...(s.secretTemplate?.annotations ?? {}),
    [ANNOTATIONS.certificateName]: cert.metadata.name,
    [ANNOTATIONS.issuerName]: ref.name,
    [ANNOTATIONS.issuerKind]: ref.kind,
    [ANNOTATIONS.issuerGroup]: ref.group,
    [OWNER_ANNOTATION]: certificateOwner(cert),
  };
  if (s.commonName) annotations[ANNOTATIONS.commonName] = s.commonName;
  if (s.dnsNames?.length) annotations[ANNOTATIONS.altNames] = s.dnsNames.join(',');
  if (s.ipAddresses?.length) annotations[ANNOTATIONS.ipSans] = s.ipAddresses.join(',');
  if (s.uris?.length) annotations[ANNOTATIONS.uriSans] = s.uris.join(',');
  return {
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(tlsCrt), 'tls.key': Buffer.from(tlsKey), 'ca.crt': Buffer.from(caCrt) },
    labels: { ...(s.secretTemplate?.labels ?? {}), 'controller.cert-manager.io/fao': 'true', [MANAGED_BY_LABEL]: 'meshca' },
    annotations,
  };
}
