import { toDer } from '../pem.js';

const LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'];
const BEGIN = '-----BEGIN CERTIFICATE REQUEST-----';
const END = '-----END CERTIFICATE REQUEST-----';

/**
 * A base64 body as the library accepts it (pem.ts: whitespace removed, then alphabet and at
 * most two trailing '='), written so that it can be tested without first removing whitespace.
 */
const BASE64_BODY = /^[A-Za-z0-9+/\r\n\t ]*(?:=[\r\n\t ]*){0,2}$/;
const NOT_BLANK = /[^\r\n\t ]/;

/**
 * The CSR's DER from PEM or DER input, with the library's semantics (pem.ts toDer). The common
 * case, a text holding exactly one "CERTIFICATE REQUEST" block, skips the library's block regex
 * and whitespace rewriting; every other shape goes through toDer itself, so results and errors
 * are the same.
 */
export function csrDer(input: string | Uint8Array, what: string): Buffer {
  if (typeof input === 'string') {
    const b = input.indexOf('-----BEGIN');
    if (b >= 0 && input.startsWith(BEGIN, b)) {
      const body = b + BEGIN.length;
      const e = input.indexOf(END, body);
      if (e > 0 && input.indexOf('-----BEGIN', e) < 0) {
        const text = input.slice(body, e);
        if (BASE64_BODY.test(text) && NOT_BLANK.test(text)) return Buffer.from(text, 'base64');
      }
    }
    return toDer(input, LABELS, what);
  }
  // A copy, as the library makes: the request must not change under the caller's later writes.
  if (input.length > 10 && input[0] === 0x2d) return toDer(input, LABELS, what);
  return Buffer.from(input);
}
