import { invalid } from './errors.js';

export interface PemBlock {
  label: string;
  der: Buffer;
}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block in the text, in order. Text outside blocks is ignored, as openssl does. */
export function decodePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(PEM_RE)) {
    const body = m[2].replace(/[\r\n\t ]/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length === 0) {
      throw invalid('bad_pem', `PEM block "${m[1]}" has an invalid base64 body`);
    }
    blocks.push({ label: m[1], der: Buffer.from(body, 'base64') });
  }
  return blocks;
}

export function encodePem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The DER bodies of every block with one of the given labels; throws naming what was expected. */
export function pemBodies(text: string, labels: string[], what: string): Buffer[] {
  const blocks = decodePemBlocks(text).filter((b) => labels.includes(b.label));
  if (blocks.length === 0) {
    throw invalid('bad_pem', `${what}: no PEM block labelled ${labels.map((l) => `"${l}"`).join(' or ')} found`);
  }
  return blocks.map((b) => b.der);
}

/** Normalises a PEM or DER input to DER for a single object. */
export function toDer(input: string | Uint8Array, labels: string[], what: string): Buffer {
  if (typeof input === 'string') return pemBodies(input, labels, what)[0];
  const buf = Buffer.from(input);
  // A buffer holding PEM text is accepted too.
  if (buf.length > 10 && buf.subarray(0, 10).toString('latin1') === '-----BEGIN') {
    return pemBodies(buf.toString('utf8'), labels, what)[0];
  }
  return buf;
}
