import { Option, type Command } from 'commander';
import { CaState, defaultStateDir } from '../ca/state.js';
import { invalid } from '../errors.js';

/** Adds --dir (state directory; default ./.meshca or $MESHCA_HOME). */
export function withDir(cmd: Command): Command {
  return cmd.addOption(new Option('--dir <dir>', 'state directory (default: $MESHCA_HOME or ./.meshca)'));
}

/** Opens the state directory, with the key passphrase from $MESHCA_KEY_PASSPHRASE when set. */
export function openState(opts: { dir?: string }): CaState {
  return new CaState(opts.dir ?? defaultStateDir(), { passphrase: process.env.MESHCA_KEY_PASSPHRASE });
}

export function parseIntOption(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw invalid('bad_flag', `${name} must be an integer, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) throw invalid('bad_flag', `${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

/** Parses durations such as 90s, 15m, 24h, 30d, 2160h or a bare number of seconds. */
export function parseDuration(value: string, name = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw invalid('bad_duration', `${name} "${value}" is not a duration (examples: 90s, 15m, 24h, 30d)`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[unit]!;
  const seconds = n * mult;
  if (!(seconds > 0)) throw invalid('bad_duration', `${name} must be positive, got "${value}"`);
  return seconds;
}
