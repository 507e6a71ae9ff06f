import { z } from 'zod';

/** Kubernetes signer names look like example.com/foo (a domain, a slash, a path). */
export const SIGNER_NAME_RE = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9._/-]+$/;

/**
 * `upstream: {type: k8s-csr}`: every certificate becomes a certificates.k8s.io/v1
 * CertificateSigningRequest for `signerName`, which a signer controller in the cluster signs
 * (istiod's EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API, with K8S_SIGNER).
 */
export const k8sCsrUpstreamSchema = z.strictObject({
  type: z.literal('k8s-csr'),
  signerName: z.string().regex(SIGNER_NAME_RE, 'expected a Kubernetes signer name such as example.com/foo'),
  /** Approve our own CSRs through /approval (needs RBAC `approve` on signers/<signerName>); otherwise wait for an approver. */
  approve: z.boolean().default(false),
  /** How long to wait for status.certificate, in seconds. */
  timeoutSeconds: z.number().positive().max(3600).default(30),
  /** PEM file with the root(s) the signer chains to, like istiod's /etc/external-ca-cert/root-cert.pem. */
  externalCaRoot: z.string().min(1),
  /** kubeconfig path, "in-cluster", or unset for the default loading rules. */
  kubeconfig: z.string().min(1).optional(),
});

export type K8sCsrUpstreamConfig = z.infer<typeof k8sCsrUpstreamSchema>;
