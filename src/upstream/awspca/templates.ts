/** PCA's managed templates used by meshca; the partition follows the CA's ARN (aws, aws-cn, aws-us-gov). */
export function subordinateTemplateArn(pathLen: number, partition = 'aws'): string {
  return `arn:${partition}:acm-pca:::template/SubordinateCACertificate_PathLen${pathLen}/V1`;
}

export function endEntityTemplateArn(partition = 'aws'): string {
  return `arn:${partition}:acm-pca:::template/EndEntityCertificate/V1`;
}

/** PCA's short-lived certificate mode: validity of at most 7 days. */
export const SHORT_LIVED_MAX_SECONDS = 7 * 86_400;
