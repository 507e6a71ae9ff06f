/** RFC 9113 header field rules that both engines apply to a request's header list. */

/** Octets of a header name: RFC 9110 token characters, lowercase only (RFC 9113 8.2.1). */
const NAME_OCTET = (() => {
  const t = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1;
  return t;
})();

/**
 * RFC 9113 8.2.1-8.2.2 for one field: a name of lowercase token characters (after the ':' of a
 * pseudo-header), a value without NUL, CR or LF and without leading or trailing space or tab, and
 * `te` only as "trailers". A char-code loop: it runs for every field of every request.
 */
export function fieldError(n: string, v: string): string | undefined {
  const nl = n.length;
  if (nl === 0) return 'empty header name';
  for (let i = n.charCodeAt(0) === 0x3a ? 1 : 0; i < nl; i++) {
    const c = n.charCodeAt(i);
    if (c > 0xff || NAME_OCTET[c] === 0) return 'header name with a character outside lowercase token characters';
  }
  const vl = v.length;
  if (vl > 0) {
    const a = v.charCodeAt(0);
    const z = v.charCodeAt(vl - 1);
    if (a === 0x20 || a === 0x09 || z === 0x20 || z === 0x09) return 'header value with leading or trailing whitespace';
    for (let i = 0; i < vl; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x00 || c === 0x0a || c === 0x0d) return 'header value with NUL, CR or LF';
    }
  }
  if (nl === 2 && n === 'te' && v !== 'trailers') return 'te other than trailers';
  return undefined;
}

/** RFC 9113 8.2-8.3: valid fields, pseudo-headers first and known, the request pseudo-headers present once. */
export function malformed(list: ReadonlyArray<readonly [string, string]>): string | undefined {
  let regular = false;
  const seen = new Set<string>();
  for (const [n, v] of list) {
    const bad = fieldError(n, v);
    if (bad) return bad;
    if (n[0] === ':') {
      if (regular) return `pseudo-header ${n} after a regular header`;
      if (n !== ':method' && n !== ':path' && n !== ':scheme' && n !== ':authority') return `unknown pseudo-header ${n}`;
      if (seen.has(n)) return `pseudo-header ${n} repeated`;
      seen.add(n);
    } else {
      regular = true;
      if (n === 'connection' || n === 'keep-alive' || n === 'proxy-connection' || n === 'transfer-encoding' || n === 'upgrade')
        return `connection-specific header ${n}`;
    }
  }
  if (!seen.has(':method') || !seen.has(':path') || !seen.has(':scheme')) return 'missing :method, :path or :scheme';
  return undefined;
}
