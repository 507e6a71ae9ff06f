import type { AwsPcaIssuerSpec } from '../../resources/certmanager.js';
import type { Upstream } from '../../upstream/index.js';
import type { AwsCredentials } from './types.js';

/**
 * The real AWS PCA upstream for an AWSPCAIssuer. Loaded lazily so that processes that never talk
 * to AWS never import the SDK. Endpoint and default credentials follow the AWS chain
 * (AWS_ENDPOINT_URL_ACM_PCA points it at `meshca pca-api`); `secretRef` keys override them.
 */
export async function awsPcaUpstreamFor(spec: AwsPcaIssuerSpec, credentials: AwsCredentials | undefined, now: () => Date): Promise<Upstream> {
  const { awsPcaUpstreamSchema } = await import('../../upstream/awspca/config.js');
  const { createAwsPcaUpstream } = await import('../../upstream/awspca/index.js');
  const parsed = awsPcaUpstreamSchema.safeParse({ type: 'awspca', arn: spec.arn, ...(spec.region ? { region: spec.region } : {}) });
  if (!parsed.success) {
    throw new Error(`Failed to validate resource: ${parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const config = parsed.data;
  const deps = credentials ? { calls: await credentialedCalls(config.region ?? config.arn.split(':')[3], credentials, config.endpointUrl, config.requestTimeoutMs) } : {};
  return createAwsPcaUpstream(config, { now }, deps);
}

/** The upstream's SDK calls with explicit keys (its own client takes them from the default chain only). */
async function credentialedCalls(region: string, credentials: AwsCredentials, endpointUrl: string | undefined, timeoutMs: number) {
  const sdk = await import('@aws-sdk/client-acm-pca');
  const client = new sdk.ACMPCAClient({ region, maxAttempts: 1, credentials, ...(endpointUrl ? { endpoint: endpointUrl } : {}) });
  const opts = (signal?: AbortSignal) => ({ abortSignal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs) });
  return {
    issueCertificate: (input: import('@aws-sdk/client-acm-pca').IssueCertificateCommandInput, signal?: AbortSignal) => client.send(new sdk.IssueCertificateCommand(input), opts(signal)),
    getCertificate: (caArn: string, certArn: string, signal?: AbortSignal) =>
      client.send(new sdk.GetCertificateCommand({ CertificateAuthorityArn: caArn, CertificateArn: certArn }), opts(signal)),
    getCaCertificate: (caArn: string, signal?: AbortSignal) =>
      client.send(new sdk.GetCertificateAuthorityCertificateCommand({ CertificateAuthorityArn: caArn }), opts(signal)),
    describeCa: async (caArn: string, signal?: AbortSignal) => {
      const r = await client.send(new sdk.DescribeCertificateAuthorityCommand({ CertificateAuthorityArn: caArn }), opts(signal));
      const ca = r.CertificateAuthority ?? {};
      return {
        Status: ca.Status,
        Type: ca.Type,
        UsageMode: ca.UsageMode,
        KeyAlgorithm: ca.CertificateAuthorityConfiguration?.KeyAlgorithm,
        SigningAlgorithm: ca.CertificateAuthorityConfiguration?.SigningAlgorithm,
        NotAfter: ca.NotAfter,
      };
    },
    close: () => client.destroy(),
  };
}
