import type { AwsPcaIssuerSpec } from '../../resources/certmanager.js';
import type { Upstream } from '../../upstream/index.js';
import type { AwsCredentials } from './types.js';

/**
 * The real AWS PCA upstream for an AWSPCAIssuer. Loaded lazily so that processes that never talk
 * to AWS never import the SDK. Endpoint and default credentials follow the AWS chain
 * (AWS_ENDPOINT_URL_ACM_PCA points it at `meshca pca-api`); `secretRef` keys override them.
 */
export async function awsPcaUpstreamFor(
  spec: AwsPcaIssuerSpec,
  credentials: AwsCredentials | undefined,
  now: () => Date,
): Promise<Upstream> {
  const { awsPcaUpstreamSchema } = await import('../../upstream/awspca/config.js');
  const { createAwsPcaUpstream } = await import('../../upstream/awspca/index.js');
  const parsed = awsPcaUpstreamSchema.safeParse({ type: 'awspca', arn: spec.arn, ...(spec.region ? { region: spec.region } : {}) });
  if (!parsed.success) {
    throw new Error(`Failed to validate resource: ${parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  // secretRef keys replace the default credential chain in the upstream's own SDK client.
  return createAwsPcaUpstream(parsed.data, { now }, credentials ? { credentials } : {});
}
