/**
 * Kubernetes for meshca: the API client, the CSR signer controller and the RA's CSR
 * round trip, the Secret sink, CA state in a Secret, the Istio publisher, and the serve wiring.
 * Leader election is in src/leader/, the k8s-csr upstream in src/upstream/k8s-csr/.
 */
export { KubeClient, apiStatus, apiMessage, kubeError, type KubeClientOptions, type KubeWatchEvent } from './client.js';
export { CSR_PATH, csrPhase, type CsrPhase, type KubeCsr } from './csr.js';
export { submitCsr, type CsrSubmission } from './csr-request.js';
export { CsrSignerController, type SignerControllerOptions, type SignerOutcome } from './signer-controller.js';
export { signKubeCsr, grantedTtl, MIN_EXPIRATION_SECONDS, type CsrSigningPolicy } from './sign.js';
export { mapUsages, WORKLOAD_USAGES, ALLOWED_USAGES } from './usages.js';
export { runReflector, type ReflectorSource, type ReflectorHandlers } from './reflector.js';
export { WorkQueue } from './queue.js';
export { KubeSecretSink, type KubeSecretSinkOptions } from './secret-sink.js';
export { SecretStateBackend, DirStateBackend, type StateBackend } from './state-secret.js';
export { IstioPublisher, cacertsContent, PUBLISHER_OWNER } from './istio-publisher.js';
export { prepareKubernetesState, kubernetesLeadership, startKubernetesControllers } from './serve.js';
