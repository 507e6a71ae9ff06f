import { Option, type Command } from 'commander';
import { invalid } from '../pki/errors.js';
import { PcaService, accessKeysFrom, pcaRegionOf, startPcaApi, usageModeOf, type PcaCa } from '../server/pca/index.js';
import { openState, parseIntOption, withDir } from './options.js';
import { renamedFlag } from './renamed.js';
import { emit, table, withOutput } from './output.js';

interface PcaApiOptions {
  dir?: string;
  pcaApiAddr: string;
  pcaRegion?: string;
  pcaAccount: string;
  pcaAccessKey: string[];
  pcaAccessKeysFile?: string;
  pcaInsecure?: boolean;
  pcaInjectThrottle: number;
  pcaIssueDelay: number;
  pcaUsageMode: 'general-purpose' | 'short-lived';
  listArns?: boolean;
  quiet?: boolean;
  output: string;
}

const collect = (v: string, acc: string[]): string[] => [...acc, v];

function caLine(ca: PcaCa): string {
  return `${ca.arn}\t${ca.type}\t${ca.name}\t${ca.cert.subject}`;
}

/** Bare ARNs by default, so that `ARN=$(meshca pca-api --list-arns | head -1)` is an ARN; details with -o. */
function listArns(cas: PcaCa[], format: string): void {
  const doc = cas.map((ca) => ({ arn: ca.arn, type: ca.type, name: ca.name, subject: ca.cert.subject }));
  const wide = () =>
    table(
      doc.map((d) => ({ ARN: d.arn, TYPE: d.type, NAME: d.name, SUBJECT: d.subject })),
      ['ARN', 'TYPE', 'NAME', 'SUBJECT'],
    );
  emit(format, doc, (isWide) => (isWide ? wide() : doc.map((d) => `${d.arn}\n`).join('')));
}

/** The PCA-flavoured options; the testing ones (fault injection) exist only on this standalone double. */
export function addPcaOptions(cmd: Command): Command {
  return cmd
    .option('--pca-region <region>', 'region in the ARNs and the SigV4 scope (default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)')
    .option('--pca-account <id>', '12-digit account id in the ARNs', '000000000000')
    .option(
      '--pca-access-key <ID:SECRET>',
      'access key accepted in SigV4 signatures, secret at least 8 characters, e.g. AKIDEXAMPLE:wJalrXUtnFEMI (repeatable)',
      collect,
      [],
    )
    .option('--pca-access-keys-file <file>', 'file of ID:SECRET lines (keeps secrets off the command line)')
    .option('--pca-insecure', 'allow running without access keys, on a loopback address only')
    .option(
      '--pca-inject-throttle <n>',
      'testing: the first N IssueCertificate calls answer ThrottlingException',
      parseIntOption('--pca-inject-throttle', 0, 1_000_000),
      0,
    )
    .option(
      '--pca-issue-delay <ms>',
      'testing: GetCertificate answers RequestInProgressException for this long',
      parseIntOption('--pca-issue-delay', 0, 3_600_000),
      0,
    )
    .addOption(
      new Option('--pca-usage-mode <mode>', 'CA usage mode reported and enforced (short-lived: validity at most 7 days)')
        .choices(['general-purpose', 'short-lived'])
        .default('general-purpose'),
    );
}

/** `meshca pca-api`: the ACM PCA JSON API over the CAs in the state directory, standalone. */
export function register(program: Command): void {
  const cmd = program
    .command('pca-api')
    .description('serve an AWS Private CA (ACM PCA) compatible API backed by the CAs in the state directory')
    .option('--pca-api-addr <host:port>', 'listen address (port 0 picks a free port)', '127.0.0.1:8443')
    .option('--list-arns', 'print the CA ARNs, one per line (root first), and exit; -o wide|json|yaml adds type, name, subject')
    .option('--quiet', 'do not log each call');
  addPcaOptions(cmd);
  renamedFlag(cmd, '--pca-api-addr', '--addr', '--pca-api');
  renamedFlag(cmd, '--pca-region', '--region');
  renamedFlag(cmd, '--pca-account', '--account');
  withOutput(withDir(cmd)).action(async (o: PcaApiOptions) => {
    if (!o.listArns && cmd.getOptionValueSource('output') === 'cli') throw invalid('bad_flag', '-o/--output applies to --list-arns only');
    const state = openState(o);
    const region = pcaRegionOf(o.pcaRegion);
    if (!/^\d{12}$/.test(o.pcaAccount)) throw invalid('bad_flag', `--pca-account must be 12 digits, got "${o.pcaAccount}"`);
    const warn = (m: string): void => void process.stderr.write(`meshca: warning: ${m}\n`);
    if (o.listArns) {
      const service = new PcaService({ state, region, account: o.pcaAccount, warn });
      listArns(service.list(), o.output);
      return;
    }
    const api = await startPcaApi({
      state,
      addr: o.pcaApiAddr,
      region,
      account: o.pcaAccount,
      accessKeys: accessKeysFrom(o),
      insecure: o.pcaInsecure,
      injectThrottle: o.pcaInjectThrottle,
      issueDelayMs: o.pcaIssueDelay,
      usageMode: usageModeOf(o.pcaUsageMode),
      warn,
      onCall: o.quiet
        ? undefined
        : (r) =>
            process.stdout.write(
              `${new Date().toISOString()} ${r.operation || '-'} ${r.status}${r.errorType ? ` ${r.errorType}` : ''}${r.idempotencyToken ? ` token=${r.idempotencyToken}` : ''}${r.certificateArn ? ` ${r.certificateArn}` : ''}\n`,
            ),
    });
    const cas = api.cas();
    // The CA lines come first so that whoever waits for the listening line has them all.
    if (cas.length === 0) warn(`no CA with a key in ${state.dir}; run \`meshca init\` first`);
    for (const ca of cas) process.stdout.write(`CA ${caLine(ca)}\n`);
    process.stdout.write(
      `PCA-compatible API listening on ${api.url} (region ${region}, account ${o.pcaAccount}, ${accessKeysFrom(o).length > 0 ? 'SigV4 required' : 'UNAUTHENTICATED'})\n`,
    );
    const stop = (): void => {
      void api.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // The listening server keeps the process alive until a signal.
  });
}
