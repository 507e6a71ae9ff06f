import { invalid } from '../errors.js';
import type { SubjectAltNames } from '../extensions.js';
import { decodeOid } from '../keys.js';
import { OID } from '../oids.js';
import { DerError, TAG, checkOidBody, encodeOid, expectTlv, readSmallInt, readTlv, type Tlv } from './der.js';
import { parseGeneralNames } from './names.js';

export interface RequestedExtensions {
  /** OIDs of every extension, in order. */
  oids: string[];
  san?: SubjectAltNames;
  /** Asks for CA powers: basicConstraints cA TRUE, or keyUsage keyCertSign or cRLSign. */
  ca: boolean;
}

interface RawExtension {
  oid: string;
  value: Tlv;
}

/** Dotted forms of the OIDs meshca names, keyed by their DER bytes, so known ones are not decoded per request. */
const KNOWN_OIDS = new Map<string, string>(Object.values(OID).map((o) => [encodeOid(o).toString('latin1'), o]));

function oidText(buf: Uint8Array, t: Tlv): string {
  const der = Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start);
  return KNOWN_OIDS.get(der.toString('latin1')) ?? decodeOid(der);
}

/** Extensions ::= SEQUENCE OF SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
function walkExtensions(buf: Uint8Array, v: Tlv): RawExtension[] {
  if (v.tag !== TAG.SEQUENCE) throw new DerError('Extensions: expected SEQUENCE');
  const out: RawExtension[] = [];
  for (let p = v.body; p < v.end;) {
    const ext = expectTlv(buf, p, v.end, TAG.SEQUENCE, 'Extension');
    const id = expectTlv(buf, ext.body, ext.end, TAG.OID, 'extnID');
    checkOidBody(buf, id);
    let next = readTlv(buf, id.end, ext.end);
    if (next.tag === TAG.BOOLEAN) {
      // DER writes only TRUE (0xff); FALSE is the default and must be absent.
      if (next.end - next.body !== 1 || buf[next.body] !== 0xff) throw new DerError('critical: not DER TRUE');
      next = readTlv(buf, next.end, ext.end);
    }
    if (next.tag !== TAG.OCTET_STRING || next.end !== ext.end) throw new DerError('extnValue: expected a final OCTET STRING');
    out.push({ oid: oidText(buf, id), value: next });
    p = ext.end;
  }
  return out;
}

/** The single TLV that makes up an OCTET STRING's contents. */
function inner(buf: Uint8Array, octets: Tlv, tag?: number): Tlv {
  const t = readTlv(buf, octets.body, octets.end);
  if (t.end !== octets.end) throw new DerError('trailing data in extension value');
  if (tag !== undefined && t.tag !== tag) throw new DerError(`extension value: unexpected tag 0x${t.tag.toString(16)}`);
  return t;
}

/** Checks a SEQUENCE whose members are optional context tags in increasing order (AKI, basicConstraints-like). */
function checkTaggedSequence(buf: Uint8Array, seq: Tlv, allowed: number[]): void {
  let i = 0;
  for (let p = seq.body; p < seq.end;) {
    const t = readTlv(buf, p, seq.end);
    while (i < allowed.length && allowed[i] !== t.tag) i++;
    if (i === allowed.length) throw new DerError(`unexpected tag 0x${t.tag.toString(16)}`);
    i++;
    p = t.end;
  }
}

/** basicConstraints: SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }; returns cA. */
function basicConstraintsCA(buf: Uint8Array, seq: Tlv): boolean {
  let p = seq.body;
  let ca = false;
  if (p < seq.end && buf[p] === TAG.BOOLEAN) {
    const b = readTlv(buf, p, seq.end);
    if (b.end - b.body !== 1 || buf[b.body] !== 0xff) throw new DerError('cA: not DER TRUE');
    ca = true;
    p = b.end;
  }
  if (p < seq.end) {
    const n = expectTlv(buf, p, seq.end, TAG.INTEGER, 'pathLenConstraint');
    readSmallInt(buf, n);
    if (n.end !== seq.end) throw new DerError('basicConstraints: trailing data');
  }
  return ca;
}

/**
 * keyCertSign (bit 5) and cRLSign (bit 6) in the first octet of a keyUsage BIT STRING, read from
 * the bytes whatever the unused-bits count says, as src/pki/csr.ts reads them.
 */
const KU_CA_BITS = 0x04 | 0x02;

function parseOne(buf: Uint8Array, e: RawExtension, out: RequestedExtensions): void {
  switch (e.oid) {
    case OID.subjectAltName:
      out.san = parseGeneralNames(buf, inner(buf, e.value));
      break;
    case OID.basicConstraints:
      if (basicConstraintsCA(buf, inner(buf, e.value, TAG.SEQUENCE))) out.ca = true;
      break;
    case OID.keyUsage: {
      const bits = inner(buf, e.value, TAG.BIT_STRING);
      if (bits.end === bits.body || buf[bits.body] > 7) throw new DerError('keyUsage: bad BIT STRING');
      if (bits.end > bits.body + 1 && (buf[bits.body + 1] & KU_CA_BITS) !== 0) out.ca = true;
      break;
    }
    case OID.extKeyUsage: {
      const seq = inner(buf, e.value, TAG.SEQUENCE);
      for (let p = seq.body; p < seq.end;) {
        const o = expectTlv(buf, p, seq.end, TAG.OID, 'KeyPurposeId');
        checkOidBody(buf, o);
        p = o.end;
      }
      break;
    }
    case OID.subjectKeyIdentifier:
      inner(buf, e.value, TAG.OCTET_STRING);
      break;
    case OID.authorityKeyIdentifier: {
      const seq = inner(buf, e.value, TAG.SEQUENCE);
      checkTaggedSequence(buf, seq, [0x80, 0xa1, 0x82]);
      for (let p = seq.body; p < seq.end;) {
        const t = readTlv(buf, p, seq.end);
        if (t.tag === 0xa1) parseGeneralNames(buf, { ...t, tag: TAG.SEQUENCE });
        p = t.end;
      }
      break;
    }
    default:
    // Extensions meshca does not interpret are listed, as the library lists them.
  }
}

/**
 * One extensionRequest attribute value, with the checks of the library's parseExtensions:
 * the DER must parse (malformed_csr), no extension twice (duplicate_extension), and the
 * extensions meshca knows must decode (bad_extension), each checked in request order.
 */
export function parseRequestedExtensions(buf: Uint8Array, v: Tlv, what: string): RequestedExtensions {
  let exts: RawExtension[];
  try {
    exts = walkExtensions(buf, v);
  } catch (e) {
    if (e instanceof DerError) throw invalid('malformed_csr', `${what}: extensionRequest attribute is not valid DER`, e);
    throw e;
  }
  const out: RequestedExtensions = { oids: [], ca: false };
  const seen = new Set<string>();
  for (const e of exts) {
    if (seen.has(e.oid)) throw invalid('duplicate_extension', `${what}: extension ${e.oid} appears twice`);
    seen.add(e.oid);
    try {
      parseOne(buf, e, out);
    } catch (err) {
      if (err instanceof DerError) throw invalid('bad_extension', `${what}: extension ${e.oid} is not valid DER`, err);
      throw err;
    }
  }
  for (const e of exts) out.oids.push(e.oid);
  return out;
}
