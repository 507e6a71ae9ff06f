import { z } from 'zod';

/** `upstream: {type: files}`: a CA certificate and key given as PEM files (a root, or an intermediate plus its chain). */
export const filesUpstreamSchema = z.strictObject({
  type: z.literal('files'),
  certFile: z.string().min(1),
  keyFile: z.string().min(1),
  /** Issuers above certFile, nearest first, root last; needed when certFile is not the root. */
  chainFile: z.string().min(1).optional(),
  /** Environment variable holding the key's passphrase (never the passphrase itself in a config file). */
  keyPassphraseEnv: z.string().min(1).optional(),
});

export type FilesUpstreamConfig = z.infer<typeof filesUpstreamSchema>;
