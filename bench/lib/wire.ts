/**
 * Hand-rolled gRPC framing for the load generator, so that the client spends as little CPU as
 * possible (it shares the 2 cores with the server). Independent of the server's code: the
 * message layout comes from Istio's ca.proto (csr = 1, validity_duration = 3; cert_chain = 1).
 */

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** One length-prefixed gRPC message carrying an IstioCertificateRequest. */
export function requestFrame(csrPem: string, validitySeconds: number): Buffer {
  const csr = Buffer.from(csrPem);
  const msg = Buffer.concat([Buffer.from([0x0a]), varint(csr.length), csr, Buffer.from([0x18]), varint(validitySeconds)]);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

function readVarint(b: Buffer, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const byte = b[pos++];
    v += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) return [v, pos];
    mul *= 128;
  }
}

/** The cert_chain strings of an IstioCertificateResponse inside one gRPC frame. */
export function decodeChain(frame: Buffer): string[] {
  const len = frame.readUInt32BE(1);
  const msg = frame.subarray(5, 5 + len);
  const out: string[] = [];
  let pos = 0;
  while (pos < msg.length) {
    const [tag, p1] = readVarint(msg, pos);
    const [n, p2] = readVarint(msg, p1);
    if (tag >> 3 === 1) out.push(msg.subarray(p2, p2 + n).toString());
    pos = p2 + n;
  }
  return out;
}
