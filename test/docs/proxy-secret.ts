// Prints what `istioctl proxy-config secret <pod> -o json` shows for a proxy holding the workload
// certificate in the given directory (cert-chain.pem, root-cert.pem): the stand-in that
// test/docs/commands.test.ts uses where the documentation asks a real cluster's proxy.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? '.';
const b64 = (f: string): string => readFileSync(join(dir, f)).toString('base64');
const dump = {
  dynamicActiveSecrets: [
    {
      name: 'default',
      secret: {
        name: 'default',
        tlsCertificate: {
          certificateChain: { inlineBytes: b64('cert-chain.pem') },
          privateKey: { inlineBytes: Buffer.from('[redacted]').toString('base64') },
        },
      },
    },
    { name: 'ROOTCA', secret: { name: 'ROOTCA', validationContext: { trustedCa: { inlineBytes: b64('root-cert.pem') } } } },
  ],
};
process.stdout.write(`${JSON.stringify(dump, null, 2)}\n`);
