import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { nativeStatus } from '../pki/fast/native.js';

/** What a bug report needs: meshca's own version and the runtime that does its cryptography. */
export function versionInfo(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    meshca: pkg.version,
    node: process.versions.node,
    openssl: process.versions.openssl,
    platform: `${process.platform}/${process.arch}`,
    nativeModule: nativeStatus,
  };
}

/** `meshca version [-o json]`. */
export function register(program: Command): void {
  program
    .command('version')
    .description("print meshca's version and the Node.js and OpenSSL versions it runs on")
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((o: { output: string }) => {
      const info = versionInfo();
      if (o.output === 'json') process.stdout.write(`${JSON.stringify(info)}\n`);
      else {
        const width = Math.max(...Object.keys(info).map((k) => k.length));
        process.stdout.write(
          Object.entries(info)
            .map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}\n`)
            .join(''),
        );
      }
    });
}
