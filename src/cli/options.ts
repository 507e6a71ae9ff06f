import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CaState } from '../ca/state.js';
import { MeshcaError, invalid } from '../errors.js';
import { stderrProgress } from './progress.js';

/** Adds --dir (state directory; default ./.meshca or $MESHCA_HOME). */
export function withDir(cmd: Command): Command {
  return cmd.addOption(new Option('--dir <dir>', 'state directory (default: $MESHCA_HOME or ./.meshca)'));
}

/** The state directory a command uses and where that choice came from, for messages about it. */
export function chooseStateDir(dir: string | undefined, from = '--dir'): { dir: string; from: string } {
  if (dir) return { dir: resolve(dir), from };
  if (process.env.MESHCA_HOME) return { dir: resolve(process.env.MESHCA_HOME), from: '$MESHCA_HOME' };
  return { dir: resolve('.meshca'), from: 'the default ./.meshca (no --dir, no $MESHCA_HOME)' };
}

/**
 * The state directory of a command that only reads or changes what is there: a mistyped --dir must
 * not leave a fresh, empty state behind (a token no server accepts, a stray database).
 */
export function existingStateDir(dir: string | undefined, from?: string): string {
  const c = chooseStateDir(dir, from);
  if (!existsSync(c.dir)) {
    throw new MeshcaError(
      'not_found',
      'no_state_dir',
      `state directory ${c.dir} does not exist (from ${c.from}); check the path, or create one with \`meshca init\``,
    );
  }
  if (!statSync(c.dir).isDirectory()) throw invalid('bad_state_dir', `state directory ${c.dir} (from ${c.from}) is not a directory`);
  return c.dir;
}

/**
 * The state directory of a command that creates material. It is created by the first write, so a
 * refused input leaves nothing behind; announce() then says on stderr that it is new.
 */
export function stateDirToCreate(dir: string | undefined): { dir: string; announce: () => void } {
  const c = chooseStateDir(dir);
  const existed = existsSync(c.dir);
  return {
    dir: c.dir,
    announce: () => {
      if (!existed && existsSync(c.dir)) process.stderr.write(`meshca: created state directory ${c.dir} (from ${c.from})\n`);
    },
  };
}

/** Opens an existing state directory, with the key passphrase from $MESHCA_KEY_PASSPHRASE when set. */
export function openState(opts: { dir?: string }): CaState {
  return new CaState(existingStateDir(opts.dir), { passphrase: process.env.MESHCA_KEY_PASSPHRASE, progress: stderrProgress() });
}

/** Opens the state directory of a command that creates material; see stateDirToCreate. */
export function openStateToCreate(opts: { dir?: string }, progress = stderrProgress()): { state: CaState; announce: () => void } {
  const { dir, announce } = stateDirToCreate(opts.dir);
  return { state: new CaState(dir, { passphrase: process.env.MESHCA_KEY_PASSPHRASE, progress }), announce };
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
