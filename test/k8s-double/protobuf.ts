/**
 * Reads the Kubernetes protobuf encoding of a CertificateSigningRequest: kubectl's typed clients
 * (`kubectl certificate approve`) send it instead of JSON. Only the fields the double acts on are
 * decoded (metadata name/resourceVersion, status conditions and certificate); the others are skipped.
 */
import { ApiError, type KubeObject } from './store.js';

export const PROTOBUF = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from('k8s\0', 'binary');

type Value = bigint | Buffer;

/** Protobuf wire format: field number -> values in order (varints as bigint, length-delimited as Buffer). */
function fields(buf: Buffer): Map<number, Value[]> {
  const out = new Map<number, Value[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new ApiError(400, 'BadRequest', 'truncated protobuf body');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const [no, wire] = [key >>> 3, key & 7];
    let v: Value;
    if (wire === 0) v = varint();
    else if (wire === 2) {
      const len = Number(varint());
      if (i + len > buf.length) throw new ApiError(400, 'BadRequest', 'truncated protobuf body');
      v = buf.subarray(i, (i += len));
    } else if (wire === 1 || wire === 5) v = buf.subarray(i, (i += wire === 1 ? 8 : 4));
    else throw new ApiError(400, 'BadRequest', `unsupported protobuf wire type ${wire}`);
    out.set(no, [...(out.get(no) ?? []), v]);
  }
  return out;
}

const str = (f: Map<number, Value[]>, no: number): string | undefined => {
  const v = f.get(no)?.[0];
  return v instanceof Buffer ? v.toString('utf8') : undefined;
};
const msg = (f: Map<number, Value[]>, no: number): Map<number, Value[]> => {
  const v = f.get(no)?.[0];
  return v instanceof Buffer ? fields(v) : new Map();
};
const time = (f: Map<number, Value[]>, no: number): string | undefined => {
  const seconds = msg(f, no).get(1)?.[0];
  return typeof seconds === 'bigint' ? new Date(Number(seconds) * 1000).toISOString().replace('.000Z', 'Z') : undefined;
};

/** The JSON form of a protobuf-encoded CertificateSigningRequest body. */
export function decodeCsr(body: Buffer): KubeObject {
  if (!body.subarray(0, 4).equals(MAGIC)) throw new ApiError(400, 'BadRequest', 'protobuf body without the k8s envelope');
  const unknown = fields(body.subarray(4));
  const typeMeta = msg(unknown, 1);
  const kind = str(typeMeta, 2);
  if (kind !== 'CertificateSigningRequest')
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      `the double decodes protobuf only for CertificateSigningRequest, got ${kind}; send JSON`,
    );
  const raw = unknown.get(2)?.[0];
  const o = raw instanceof Buffer ? fields(raw) : new Map<number, Value[]>();
  const meta = msg(o, 1);
  const st = msg(o, 3);
  const conditions = (st.get(1) ?? []).map((c) => {
    const f = fields(c as Buffer);
    const cond: Record<string, string | undefined> = {
      type: str(f, 1),
      status: str(f, 6),
      reason: str(f, 2),
      message: str(f, 3),
      lastUpdateTime: time(f, 4),
      lastTransitionTime: time(f, 5),
    };
    return Object.fromEntries(Object.entries(cond).filter(([, v]) => v !== undefined));
  });
  const cert = st.get(2)?.[0];
  return {
    apiVersion: str(typeMeta, 1),
    kind,
    metadata: { name: str(meta, 1) ?? '', resourceVersion: str(meta, 6) },
    status: { conditions, ...(cert instanceof Buffer ? { certificate: cert.toString('base64') } : {}) },
  };
}
