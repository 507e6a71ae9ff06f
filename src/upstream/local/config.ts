import { z } from 'zod';

/** `upstream: {type: local}`: the root key kept in meshca's state directory. */
export const localUpstreamSchema = z.strictObject({
  type: z.literal('local'),
  /** State directory; default: the server's own. */
  dir: z.string().min(1).optional(),
});

export type LocalUpstreamConfig = z.infer<typeof localUpstreamSchema>;
