import { withTimeout } from '../util/timeout.js';
import { kubeError, type KubeClient } from './client.js';

/**
 * One CertificateSigningRequest list call, bounded in time: a signer that cannot reach the API
 * server (or may not list CSRs) fails at once, naming the server and the kubeconfig, instead of
 * creating state and retrying its watch forever.
 */
export async function checkCsrAccess(client: KubeClient, kubeconfig: string, timeoutMs = 15_000): Promise<void> {
  const what = `cannot list CertificateSigningRequests at ${client.server} (kubeconfig ${kubeconfig})`;
  try {
    await withTimeout(
      client.certificates.listCertificateSigningRequest({ limit: 1 }),
      timeoutMs,
      `${what}: no answer within ${timeoutMs / 1000}s`,
    );
  } catch (e) {
    throw kubeError(what, e);
  }
}
