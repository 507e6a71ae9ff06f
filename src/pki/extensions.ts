import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { invalid } from './errors.js';
import { EKU_NAMES, OID } from './oids.js';

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KU_FLAGS: Record<KeyUsageName, number> = {
  digitalSignature: KeyUsageFlags.digitalSignature,
  nonRepudiation: KeyUsageFlags.nonRepudiation,
  keyEncipherment: KeyUsageFlags.keyEncipherment,
  dataEncipherment: KeyUsageFlags.dataEncipherment,
  keyAgreement: KeyUsageFlags.keyAgreement,
  keyCertSign: KeyUsageFlags.keyCertSign,
  cRLSign: KeyUsageFlags.cRLSign,
  encipherOnly: KeyUsageFlags.encipherOnly,
  decipherOnly: KeyUsageFlags.decipherOnly,
};

export interface SubjectAltNames {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emailAddresses: string[];
  /** Names of any other GeneralName kinds present (otherName, directoryName, ...). */
  other: string[];
}

export function emptySans(): SubjectAltNames {
  return { uris: [], dnsNames: [], ipAddresses: [], emailAddresses: [], other: [] };
}

function ext(oid: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

export function basicConstraintsExt(ca: boolean, pathLen?: number): Extension {
  const bc = new BasicConstraints({ cA: ca });
  if (ca && pathLen !== undefined) bc.pathLenConstraint = pathLen;
  return ext(OID.basicConstraints, true, bc);
}

export function keyUsageExt(usages: KeyUsageName[]): Extension {
  let flags = 0;
  for (const u of usages) flags |= KU_FLAGS[u];
  return ext(OID.keyUsage, true, new KeyUsage(flags));
}

export function extKeyUsageExt(oids: string[]): Extension {
  return ext(OID.extKeyUsage, false, new ExtendedKeyUsage(oids));
}

export function subjectKeyIdExt(keyId: Buffer): Extension {
  return ext(OID.subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId));
}

export function authorityKeyIdExt(keyId: Buffer): Extension {
  return ext(OID.authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) }));
}

export function sanExt(sans: Partial<SubjectAltNames>, critical: boolean): Extension {
  const names: GeneralName[] = [];
  for (const d of sans.dnsNames ?? []) names.push(new GeneralName({ dNSName: d }));
  for (const e of sans.emailAddresses ?? []) names.push(new GeneralName({ rfc822Name: e }));
  for (const ip of sans.ipAddresses ?? []) names.push(new GeneralName({ iPAddress: ip }));
  for (const u of sans.uris ?? []) names.push(new GeneralName({ uniformResourceIdentifier: u }));
  if (names.length === 0) throw invalid('no_sans', 'subject alternative name extension would be empty');
  return ext(OID.subjectAltName, critical, new SubjectAlternativeName(names));
}

export function parseGeneralNames(names: GeneralName[]): SubjectAltNames {
  const out = emptySans();
  for (const n of names) {
    if (n.uniformResourceIdentifier !== undefined) out.uris.push(n.uniformResourceIdentifier);
    else if (n.dNSName !== undefined) out.dnsNames.push(n.dNSName);
    else if (n.iPAddress !== undefined) out.ipAddresses.push(n.iPAddress);
    else if (n.rfc822Name !== undefined) out.emailAddresses.push(n.rfc822Name);
    else if (n.otherName) out.other.push('otherName');
    else if (n.directoryName) out.other.push('directoryName');
    else out.other.push('unknown');
  }
  return out;
}

/** Parsed view of the extensions meshca cares about; unknown ones are listed by OID. */
export interface ParsedExtensions {
  basicConstraints?: { ca: boolean; pathLen?: number; critical: boolean };
  keyUsage?: { usages: KeyUsageName[]; critical: boolean };
  extKeyUsage?: { usages: string[]; critical: boolean };
  san?: SubjectAltNames & { critical: boolean };
  subjectKeyId?: string;
  authorityKeyId?: string;
  /** OIDs of extensions not interpreted above, with their criticality. */
  others: { oid: string; critical: boolean }[];
}

export function parseExtensions(exts: Extension[] | undefined, what: string): ParsedExtensions {
  const out: ParsedExtensions = { others: [] };
  const seen = new Set<string>();
  for (const e of exts ?? []) {
    if (seen.has(e.extnID)) throw invalid('duplicate_extension', `${what}: extension ${e.extnID} appears twice`);
    seen.add(e.extnID);
    const raw = e.extnValue.buffer;
    try {
      switch (e.extnID) {
        case OID.basicConstraints: {
          const bc = AsnConvert.parse(raw, BasicConstraints);
          out.basicConstraints = { ca: bc.cA, pathLen: bc.pathLenConstraint, critical: e.critical };
          break;
        }
        case OID.keyUsage: {
          const ku = AsnConvert.parse(raw, KeyUsage);
          const flags = ku.toNumber();
          const usages = (Object.keys(KU_FLAGS) as KeyUsageName[]).filter((k) => (flags & KU_FLAGS[k]) !== 0);
          out.keyUsage = { usages, critical: e.critical };
          break;
        }
        case OID.extKeyUsage: {
          const eku = AsnConvert.parse(raw, ExtendedKeyUsage);
          out.extKeyUsage = { usages: eku.map((o) => EKU_NAMES[o] ?? o), critical: e.critical };
          break;
        }
        case OID.subjectAltName: {
          const san = AsnConvert.parse(raw, SubjectAlternativeName);
          out.san = { ...parseGeneralNames(san), critical: e.critical };
          break;
        }
        case OID.subjectKeyIdentifier: {
          const ski = AsnConvert.parse(raw, SubjectKeyIdentifier);
          out.subjectKeyId = Buffer.from(ski.buffer).toString('hex');
          break;
        }
        case OID.authorityKeyIdentifier: {
          const aki = AsnConvert.parse(raw, AuthorityKeyIdentifier);
          if (aki.keyIdentifier) out.authorityKeyId = Buffer.from(aki.keyIdentifier.buffer).toString('hex');
          break;
        }
        default:
          out.others.push({ oid: e.extnID, critical: e.critical });
      }
    } catch (err) {
      if (err instanceof Error && err.name === 'MeshcaError') throw err;
      throw invalid('bad_extension', `${what}: extension ${e.extnID} is not valid DER`, err);
    }
  }
  return out;
}
