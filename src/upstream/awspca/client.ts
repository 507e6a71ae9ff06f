import {
  ACMPCAClient,
  DescribeCertificateAuthorityCommand,
  GetCertificateAuthorityCertificateCommand,
  GetCertificateCommand,
  IssueCertificateCommand,
  type IssueCertificateCommandInput,
} from '@aws-sdk/client-acm-pca';

/** The four PCA calls meshca makes; an interface so tests can substitute a fake without a server. */
export interface PcaCalls {
  issueCertificate(input: IssueCertificateCommandInput, signal?: AbortSignal): Promise<{ CertificateArn?: string }>;
  getCertificate(caArn: string, certArn: string, signal?: AbortSignal): Promise<{ Certificate?: string; CertificateChain?: string }>;
  getCaCertificate(caArn: string, signal?: AbortSignal): Promise<{ Certificate?: string; CertificateChain?: string }>;
  describeCa(caArn: string, signal?: AbortSignal): Promise<CaDescription>;
  close(): void;
}

export interface CaDescription {
  Status?: string;
  Type?: string;
  UsageMode?: string;
  KeyAlgorithm?: string;
  SigningAlgorithm?: string;
  NotAfter?: Date;
}

export interface SdkClientOptions {
  region: string;
  endpointUrl?: string;
  requestTimeoutMs: number;
  /** Default: the SDK's credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

function withTimeout(ms: number, signal?: AbortSignal): AbortSignal {
  const t = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, t]) : t;
}

/**
 * The real SDK client. Its own retries are off (maxAttempts 1): meshca's retry layer decides,
 * so that one IssueCertificate request keeps one IdempotencyToken and one backoff budget.
 * Credentials come from the SDK's default chain (env, profiles, SSO, container and instance roles);
 * the endpoint from the option, else AWS_ENDPOINT_URL(_ACM_PCA) or the profile's endpoint_url.
 */
export function sdkPcaCalls(o: SdkClientOptions): PcaCalls {
  const client = new ACMPCAClient({
    region: o.region,
    maxAttempts: 1,
    ...(o.credentials ? { credentials: o.credentials } : {}),
    ...(o.endpointUrl ? { endpoint: o.endpointUrl } : {}),
  });
  const opts = (signal?: AbortSignal) => ({ abortSignal: withTimeout(o.requestTimeoutMs, signal) });
  return {
    issueCertificate: (input, signal) => client.send(new IssueCertificateCommand(input), opts(signal)),
    getCertificate: (caArn, certArn, signal) =>
      client.send(new GetCertificateCommand({ CertificateAuthorityArn: caArn, CertificateArn: certArn }), opts(signal)),
    getCaCertificate: (caArn, signal) =>
      client.send(new GetCertificateAuthorityCertificateCommand({ CertificateAuthorityArn: caArn }), opts(signal)),
    describeCa: async (caArn, signal) => {
      const r = await client.send(new DescribeCertificateAuthorityCommand({ CertificateAuthorityArn: caArn }), opts(signal));
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
