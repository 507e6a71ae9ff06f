import { AsnConvert } from '@peculiar/asn1-schema';
import { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName } from '@peculiar/asn1-x509';
import { invalid } from './errors.js';
import { OID } from './oids.js';

/** A distinguished name as operators write it. Multi-valued fields follow Go's pkix.Name (and getistio's YAML). */
export interface SubjectSpec {
  commonName?: string;
  organization?: string[];
  organizationalUnit?: string[];
  country?: string[];
  province?: string[];
  locality?: string[];
  streetAddress?: string[];
  postalCode?: string[];
  serialNumber?: string;
}

const SHORT: Record<string, string> = {
  [OID.commonName]: 'CN',
  [OID.country]: 'C',
  [OID.locality]: 'L',
  [OID.province]: 'ST',
  [OID.streetAddress]: 'street',
  [OID.organization]: 'O',
  [OID.organizationalUnit]: 'OU',
  [OID.serialNumber]: 'serialNumber',
  [OID.postalCode]: 'postalCode',
  [OID.emailAddress]: 'emailAddress',
};

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function attr(type: string, value: string): RelativeDistinguishedName {
  if (value.length === 0) throw invalid('bad_subject', `subject ${SHORT[type] ?? type} must not be empty`);
  if (type === OID.country && !/^[A-Za-z]{2}$/.test(value)) {
    throw invalid('bad_subject', `subject country "${value}" must be a two-letter ISO 3166 code`);
  }
  // Like Go's crypto/x509: PrintableString when the value allows it, UTF8String otherwise.
  const v = PRINTABLE.test(value) ? new AttributeValue({ printableString: value }) : new AttributeValue({ utf8String: value });
  return new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: v })]);
}

/** Builds a Name in the conventional order C, ST, L, street, postalCode, O, OU, serialNumber, CN. */
export function buildName(spec: SubjectSpec): Name {
  const rdns: RelativeDistinguishedName[] = [];
  for (const c of spec.country ?? []) rdns.push(attr(OID.country, c));
  for (const s of spec.province ?? []) rdns.push(attr(OID.province, s));
  for (const l of spec.locality ?? []) rdns.push(attr(OID.locality, l));
  for (const s of spec.streetAddress ?? []) rdns.push(attr(OID.streetAddress, s));
  for (const p of spec.postalCode ?? []) rdns.push(attr(OID.postalCode, p));
  for (const o of spec.organization ?? []) rdns.push(attr(OID.organization, o));
  for (const ou of spec.organizationalUnit ?? []) rdns.push(attr(OID.organizationalUnit, ou));
  if (spec.serialNumber) rdns.push(attr(OID.serialNumber, spec.serialNumber));
  if (spec.commonName) rdns.push(attr(OID.commonName, spec.commonName));
  return new Name(rdns);
}

export function nameToDer(name: Name): Buffer {
  return Buffer.from(AsnConvert.serialize(name));
}

export function isEmptyName(name: Name): boolean {
  return name.length === 0;
}

/** openssl-style one-line rendering: "C = US, O = Istio, CN = root". */
export function renderName(name: Name): string {
  const parts: string[] = [];
  for (const rdn of name) {
    for (const atv of rdn) {
      const key = SHORT[atv.type] ?? atv.type;
      parts.push(`${key} = ${atv.value.toString()}`);
    }
  }
  return parts.join(', ');
}

export function nameFromDer(der: Uint8Array): Name {
  return AsnConvert.parse(der, Name);
}

/** Values of one attribute, for example every O of a subject. */
export function nameValues(name: Name, type: string): string[] {
  const out: string[] = [];
  for (const rdn of name) for (const atv of rdn) if (atv.type === type) out.push(atv.value.toString());
  return out;
}

const SPEC_KEYS: Record<string, keyof SubjectSpec> = {
  c: 'country',
  st: 'province',
  l: 'locality',
  street: 'streetAddress',
  postalcode: 'postalCode',
  o: 'organization',
  ou: 'organizationalUnit',
  serialnumber: 'serialNumber',
  cn: 'commonName',
};

/**
 * Parses a subject as operators type it: openssl's `/C=US/O=Example/CN=Root CA` (it starts with a
 * slash) or RFC 4514's `CN=Root CA,O=Example,C=US`. A backslash escapes the next character.
 */
export function parseSubject(text: string): SubjectSpec {
  const slashed = text.startsWith('/');
  const parts = splitEscaped(slashed ? text.slice(1) : text, slashed ? '/' : ',');
  const spec: SubjectSpec = {};
  for (const part of parts) {
    const eq = part.indexOf('=');
    const key = SPEC_KEYS[part.slice(0, Math.max(eq, 0)).trim().toLowerCase()];
    if (eq < 0 || !key) {
      throw invalid(
        'bad_subject',
        `subject "${text}": "${part}" is not KEY=value with KEY one of C, ST, L, street, postalCode, O, OU, serialNumber, CN`,
      );
    }
    const value = part.slice(eq + 1).trim();
    if (value === '') throw invalid('bad_subject', `subject "${text}": ${part.slice(0, eq).trim()} has no value`);
    if (key === 'commonName' || key === 'serialNumber') {
      if (spec[key] !== undefined) throw invalid('bad_subject', `subject "${text}" gives ${part.slice(0, eq).trim()} twice`);
      spec[key] = value;
    } else {
      spec[key] = [...(spec[key] ?? []), value];
    }
  }
  if (parts.length === 0) throw invalid('bad_subject', 'subject must name at least one attribute, e.g. /O=Example/CN=Root CA');
  buildName(spec); // refuses empty values and bad countries now, naming the attribute
  return spec;
}

function splitEscaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && i + 1 < text.length) cur += text[++i];
    else if (text[i] === sep) {
      parts.push(cur);
      cur = '';
    } else cur += text[i];
  }
  if (cur.trim() !== '') parts.push(cur); // a trailing separator is harmless
  return parts;
}
