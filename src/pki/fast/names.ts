import { emptySans, type SubjectAltNames } from '../extensions.js';
import { DerError, TAG, checkAny, checkOidBody, expectTlv, readTlv, tlvSize, writeHeader, type Tlv } from './der.js';

/**
 * Checks that buf[t.body, t.end) is a Name: SEQUENCE OF SET OF SEQUENCE { OID, value }.
 * The library's AttributeValue accepts any type, so the value is checked as an ANY.
 */
export function checkName(buf: Uint8Array, t: Tlv): void {
  if (t.tag !== TAG.SEQUENCE) throw new DerError(`Name: expected SEQUENCE at offset ${t.start}`);
  for (let p = t.body; p < t.end;) {
    const rdn = expectTlv(buf, p, t.end, TAG.SET, 'RelativeDistinguishedName');
    if (rdn.body === rdn.end) throw new DerError(`empty RelativeDistinguishedName at offset ${rdn.start}`);
    for (let q = rdn.body; q < rdn.end;) {
      const atv = expectTlv(buf, q, rdn.end, TAG.SEQUENCE, 'AttributeTypeAndValue');
      const type = expectTlv(buf, atv.body, atv.end, TAG.OID, 'attribute type');
      checkOidBody(buf, type);
      const value = readTlv(buf, type.end, atv.end);
      if (value.end !== atv.end) throw new DerError(`trailing data in AttributeTypeAndValue at offset ${atv.start}`);
      checkAny(buf, value);
      q = atv.end;
    }
    p = rdn.end;
  }
}

/** Latin-1 decoding, which is how the library decodes IA5String (one char per octet). */
function ia5(buf: Uint8Array, t: Tlv): string {
  return Buffer.from(buf.buffer, buf.byteOffset + t.body, t.end - t.body).toString('latin1');
}

/** IPv6 text as the library prints it: hex groups without leading zeros, the longest zero run (>1) as "::". */
function formatIPv6(b: Uint8Array, off: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(((b[off + i] << 8) | b[off + i + 1]).toString(16));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (parts[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return parts.join(':');
  return `${parts.slice(0, bestStart).join(':')}::${parts.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Parses GeneralNames (the SAN extension value) into the same shape and labels as the library.
 * Kinds never seen in workload requests (ediPartyName, odd-sized IP addresses) are refused
 * rather than half-understood.
 */
export function parseGeneralNames(buf: Uint8Array, t: Tlv): SubjectAltNames {
  if (t.tag !== TAG.SEQUENCE) throw new DerError('GeneralNames: expected SEQUENCE');
  if (t.body === t.end) throw new DerError('GeneralNames: empty');
  const out = emptySans();
  for (let p = t.body; p < t.end;) {
    const n = readTlv(buf, p, t.end);
    switch (n.tag) {
      case 0x86:
        out.uris.push(ia5(buf, n));
        break;
      case 0x82:
        out.dnsNames.push(ia5(buf, n));
        break;
      case 0x81:
        out.emailAddresses.push(ia5(buf, n));
        break;
      case 0x87: {
        const len = n.end - n.body;
        if (len === 4) out.ipAddresses.push(`${buf[n.body]}.${buf[n.body + 1]}.${buf[n.body + 2]}.${buf[n.body + 3]}`);
        else if (len === 16) out.ipAddresses.push(formatIPv6(buf, n.body));
        else throw new DerError(`iPAddress of ${len} octets`);
        break;
      }
      case 0xa0: {
        // otherName: [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
        const id = expectTlv(buf, n.body, n.end, TAG.OID, 'otherName type-id');
        checkOidBody(buf, id);
        const v = expectTlv(buf, id.end, n.end, 0xa0, 'otherName value');
        if (v.end !== n.end || readTlv(buf, v.body, v.end).end !== v.end) throw new DerError('otherName: trailing data');
        checkAny(buf, v);
        out.other.push('otherName');
        break;
      }
      case 0xa4: {
        // directoryName: [4] EXPLICIT Name
        const name = readTlv(buf, n.body, n.end);
        if (name.end !== n.end) throw new DerError('directoryName: trailing data');
        checkName(buf, name);
        out.other.push('directoryName');
        break;
      }
      case 0xa3: // x400Address: the library takes any (well-formed) content
        checkAny(buf, n);
        out.other.push('unknown');
        break;
      case 0x88: // registeredID: [8] IMPLICIT OBJECT IDENTIFIER
        checkOidBody(buf, n);
        out.other.push('unknown');
        break;
      default:
        throw new DerError(`GeneralName with tag 0x${n.tag.toString(16)}`);
    }
    p = n.end;
  }
  return out;
}

/**
 * DER GeneralNames holding URIs only: SEQUENCE OF [6] IA5String. Strings are written one
 * octet per UTF-16 unit (low byte), exactly as the library writes IA5String.
 */
export function encodeUriGeneralNames(uris: string[]): Buffer {
  let len = 0;
  for (const u of uris) len += tlvSize(u.length);
  const out = Buffer.allocUnsafe(tlvSize(len));
  let pos = writeHeader(out, 0, TAG.SEQUENCE, len);
  for (const u of uris) {
    pos = writeHeader(out, pos, 0x86, u.length);
    pos += out.write(u, pos, 'latin1');
  }
  return out;
}
