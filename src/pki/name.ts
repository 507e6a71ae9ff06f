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
