// The composition root lives in src/serve/; these names stay importable from here for the CLI and tests.
export {
  createLogger,
  grpcBindError,
  joinHostPort,
  splitHostPort,
  startServer,
  type RunningServer,
  type ServerRole,
  type StartOptions,
} from '../serve/index.js';
