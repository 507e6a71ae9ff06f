import { spawn, type ChildProcess } from 'node:child_process';
import { MESHCA_BIN, REPO_ROOT } from '../helpers/run.js';

/** `meshca k8s-signer` as a process of its own (the "external CA"); resolves with its first line (its root file). */
export function startK8sSigner(
  o: { dir: string; signerName: string; kubeconfig: string; args?: string[] },
  onChild: (c: ChildProcess) => void,
): Promise<{ rootFile: string }> {
  const child = spawn(
    process.execPath,
    [
      MESHCA_BIN,
      'k8s-signer',
      '--dir',
      o.dir,
      '--signer-names',
      o.signerName,
      '--kubeconfig',
      o.kubeconfig,
      '--log-level',
      'warn',
      ...(o.args ?? []),
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  onChild(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as { rootFile: string });
    });
    child.on('close', (code) => reject(new Error(`k8s-signer exited ${code}: ${err}`)));
  });
}
