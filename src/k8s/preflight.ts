import { kubeError, type KubeClient } from './client.js';

/**
 * One CertificateSigningRequest list call, bounded in time: a signer that cannot reach the API
 * server (or may not list CSRs) fails at once, naming the server and the kubeconfig, instead of
 * creating state and retrying its watch forever.
 */
export async function checkCsrAccess(client: KubeClient, kubeconfig: string, timeoutMs = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs);
  });
  try {
    await Promise.race([client.certificates.listCertificateSigningRequest({ limit: 1 }), timeout]);
  } catch (e) {
    throw kubeError(`cannot list CertificateSigningRequests at ${client.server} (kubeconfig ${kubeconfig})`, e);
  } finally {
    clearTimeout(timer);
  }
}
