import { MeshcaError } from '../../pki/errors.js';
import type { AwsPcaIssuerSpec } from '../../resources/certmanager.js';
import type { SecretSink } from '../../resources/secrets.js';
import type { Upstream } from '../../upstream/index.js';
import { splitChain } from './chain.js';
import type { AwsCredentials, IssuerBackend, SignRequest, SignResult, UpstreamFactory } from './types.js';

/** Reads AWS keys from `spec.secretRef` the way aws-privateca-issuer does (default keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY). */
export async function awsCredentials(
  secrets: SecretSink,
  spec: AwsPcaIssuerSpec,
  issuerNamespace: string | undefined,
): Promise<AwsCredentials | undefined> {
  const ref = spec.secretRef;
  if (!ref) return undefined;
  const namespace = ref.namespace ?? issuerNamespace ?? 'default';
  const s = await secrets.get({ namespace, name: ref.name });
  if (!s)
    throw new MeshcaError('failed_precondition', 'aws_secret', `Failed to retrieve secret: secret "${namespace}/${ref.name}" not found`);
  const idKey = ref.accessKeyIDSelector?.key ?? 'AWS_ACCESS_KEY_ID';
  const secretKey = ref.secretAccessKeySelector?.key ?? 'AWS_SECRET_ACCESS_KEY';
  const id = s.data[idKey];
  const secret = s.data[secretKey];
  if (!id) throw new MeshcaError('failed_precondition', 'aws_secret', `secret value ${idKey} was not found`);
  if (!secret) throw new MeshcaError('failed_precondition', 'aws_secret', `secret value ${secretKey} was not found`);
  return { accessKeyId: id.toString('utf8').trim(), secretAccessKey: secret.toString('utf8').trim() };
}

/**
 * aws-privateca-issuer's behaviour on meshca's AWS PCA upstream: Ready ("Verified", "Issuer
 * verified") once DescribeCertificateAuthority shows an ACTIVE CA; `isCA` requests go through a
 * SubordinateCACertificate template, others through the end-entity one.
 */
export function awsPcaBackend(
  spec: AwsPcaIssuerSpec,
  credentials: () => Promise<AwsCredentials | undefined>,
  factory: UpstreamFactory,
  now: Date,
): IssuerBackend {
  const withUpstream = async <T>(f: (u: Upstream) => Promise<T>): Promise<T> => {
    const u = await factory(spec, await credentials(), () => new Date(now.getTime()));
    try {
      return await f(u);
    } finally {
      u.close?.();
    }
  };
  return {
    notReadyReason: 'Error',
    async verify() {
      await withUpstream((u) => u.check());
      return { reason: 'Verified', message: 'Issuer verified' };
    },
    async sign(req: SignRequest): Promise<SignResult> {
      const ttlSeconds = Math.floor(req.durationMs / 1000);
      const out = await withUpstream(async (u) => {
        if (req.isCA) return u.signIntermediate({ csrPem: req.csrPem, ttlSeconds, pathLen: 0 });
        if (!u.signWorkload)
          throw new MeshcaError(
            'failed_precondition',
            'no_end_entity',
            `AWS Private CA ${u.source} cannot sign end-entity certificates here`,
          );
        return u.signWorkload({ csrPem: req.csrPem, ttlSeconds });
      });
      return splitChain([out.cert, ...out.chain]);
    },
  };
}
