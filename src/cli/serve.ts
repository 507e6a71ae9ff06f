import { trustBundlePath } from '../ca/trust-bundle-file.js';
import { nativeStatus } from '../pki/fast/native.js';
import { Option, type Command } from 'commander';
import { CONFIG_KEYS, ConfigSchema, FIELDS, RENAMED_KEYS, flagName, formatDuration, loadConfig, type ConfigKey } from '../config/index.js';
import { isClusterWorker, runWorker, startCluster, workerCount } from '../server/cluster.js';
import { createLogger, startServer, type StartOptions } from '../server/index.js';
import { logProgress } from './progress.js';
import { renamedFlag } from './renamed.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/** One flag per configuration key, generated from the schema's field table so none can be forgotten. */
function configOptions(): Option[] {
  const defaults = ConfigSchema.parse({}) as Record<string, unknown>;
  return CONFIG_KEYS.map((key) => {
    const f = FIELDS[key];
    const flag = flagName(key);
    const d = defaults[key];
    // Shown in --help only: the real defaults come from the schema when loadConfig runs.
    const shown =
      d === undefined || (Array.isArray(d) && d.length === 0)
        ? ''
        : ` (default: ${f.kind === 'duration' ? formatDuration(d as number) : Array.isArray(d) ? d.join(',') : String(d)})`;
    if (f.kind === 'bool') return new Option(`${flag} [bool]`, f.help + shown);
    if (f.kind === 'list') return new Option(`${flag} <list>`, `${f.help}; repeatable${shown}`).argParser(collect);
    return new Option(`${flag} <value>`, f.help + shown);
  });
}

/**
 * `meshca serve`: the Istio-compatible CA. `switches` come from the benchmark's entry (bench/serve.ts) only. Prints one JSON line on stdout once both listeners are
 * bound ({"event":"listening","grpc":"host:port","http":"host:port",...}); logs go to stderr.
 */
export function register(program: Command, switches: Pick<StartOptions, 'audit' | 'renewalPauseMs'> = {}): void {
  const cmd = program
    .command('serve')
    .description('run the Istio-compatible CA server (gRPC CreateCertificate, HTTP health/metrics/API)')
    .option('--config <file>', 'YAML configuration file (default: $MESHCA_CONFIG, or meshca.yaml in the state directory)');
  for (const o of configOptions()) cmd.addOption(o);
  for (const [was, key] of Object.entries(RENAMED_KEYS)) renamedFlag(cmd, flagName(key), flagName(was));
  cmd.action(async (opts: Record<string, unknown>) => {
    if (isClusterWorker()) return runWorker(switches);
    const flags: Partial<Record<ConfigKey, unknown>> = {};
    for (const key of CONFIG_KEYS) if (opts[key] !== undefined) flags[key] = opts[key];
    const config = loadConfig({ configFile: opts.config as string | undefined, flags });
    const log = createLogger(config.logLevel, config.logFormat);
    const server =
      workerCount(config) > 1
        ? await startCluster(config, { logger: log, progress: logProgress(log), ...switches })
        : await startServer(config, { logger: log, progress: logProgress(log), ...switches });
    // Handlers go in before the "listening" line: a supervisor may send SIGTERM as soon as it reads it.
    const stopped = new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    process.stdout.write(
      `${JSON.stringify({
        event: 'listening',
        grpc: server.grpcAddress,
        http: server.httpAddress,
        tls: !config.plaintext,
        dir: config.dir,
        rootFingerprint: server.rootFingerprint,
        trustBundle: trustBundlePath(config.dir),
        createdRoot: server.createdRoot,
        ...(server.pcaApiUrl ? { pcaApi: server.pcaApiUrl } : {}),
      })}\n`,
    );
    log.info(
      { grpc: server.grpcAddress, http: server.httpAddress, config: config.configFile ?? null, nativeSignatureChecks: nativeStatus },
      'meshca serving',
    );
    log.info({ signal: await stopped }, 'shutting down');
    await server.close();
    log.info({}, 'stopped; audit flushed');
  });
}
