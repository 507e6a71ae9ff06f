import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeInteger,
  encodeLiteral,
  encodeString,
  HpackDecoder,
  HpackError,
  huffmanCode,
  huffmanDecode,
  huffmanEncode,
  STATIC_TABLE,
} from './hpack.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(d: HpackDecoder, block: Buffer): [string, string][] {
  const flat: string[] = [];
  d.decode(block, 0, block.length, flat);
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

describe('Huffman code (RFC 7541 Appendix B)', () => {
  test('codes rebuilt from the lengths match the appendix', () => {
    // [symbol, code as hex, length] as printed in Appendix B, at least one per length.
    const printed: [number, number, number][] = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [2, 0xfffffe2, 28],
      [9, 0xffffea, 24],
      [10, 0x3ffffffc, 30],
      [13, 0x3ffffffd, 30],
      [22, 0x3ffffffe, 30],
      [31, 0xffffffb, 28],
      [32, 0x14, 6],
      [33, 0x3f8, 10],
      [35, 0xffa, 12],
      [36, 0x1ff9, 13],
      [38, 0xf8, 8],
      [39, 0x7fa, 11],
      [48, 0x0, 5],
      [50, 0x2, 5],
      [58, 0x5c, 7],
      [60, 0x7ffc, 15],
      [61, 0x20, 6],
      [63, 0x3fc, 10],
      [90, 0xfd, 8],
      [92, 0x7fff0, 19],
      [94, 0x3ffc, 14],
      [96, 0x7ffd, 15],
      [97, 0x3, 5],
      [116, 0x9, 5],
      [122, 0x7b, 7],
      [123, 0x7ffe, 15],
      [124, 0x7fc, 11],
      [125, 0x3ffd, 14],
      [126, 0x1ffd, 13],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [129, 0x3fffd2, 22],
      [153, 0x1fffdc, 21],
      [176, 0x1fffe0, 21],
      [192, 0x3ffffe0, 26],
      [195, 0x7fff1, 19],
      [199, 0x1ffffec, 25],
      [203, 0x7ffffde, 27],
      [208, 0x7fff2, 19],
      [220, 0xffffffd, 28],
      [230, 0x1fffe8, 21],
      [239, 0x7ffff4, 23],
      [249, 0xffffffe, 28],
      [254, 0x7fffff0, 27],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, len] of printed) assert.deepEqual(huffmanCode(sym), [code, len], `symbol ${sym}`);
  });

  test('C.4.1 www.example.com', () => {
    assert.deepEqual(huffmanEncode(Buffer.from('www.example.com')), hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'));
    assert.equal(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')), 'www.example.com');
  });

  test('every byte value round-trips', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assert.equal(huffmanDecode(huffmanEncode(all)), all.toString('latin1'));
    for (let i = 0; i < 256; i++) {
      const one = Buffer.from([i, 255 - i, i]);
      assert.equal(huffmanDecode(huffmanEncode(one)), one.toString('latin1'), `byte ${i}`);
    }
    assert.equal(huffmanDecode(Buffer.alloc(0)), '');
  });

  test('invalid padding and EOS are rejected', () => {
    // '0' is 00000: padded with zeros instead of ones.
    assert.throws(() => huffmanDecode(Buffer.from([0x00])), HpackError);
    // A full byte of padding (more than 7 bits): 'a' (00011) + 111 then 0xff.
    assert.throws(() => huffmanDecode(Buffer.from([0x1f, 0xff])), HpackError);
    // EOS itself (30 ones) inside the string.
    assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff])), HpackError);
    // Valid: 'a' padded with three ones.
    assert.equal(huffmanDecode(Buffer.from([0x1f])), 'a');
  });
});

describe('integers (RFC 7541 5.1, C.1)', () => {
  test('C.1 examples', () => {
    assert.deepEqual(encodeInteger(10, 5), hex('0a'));
    assert.deepEqual(encodeInteger(1337, 5), hex('1f9a0a'));
    assert.deepEqual(encodeInteger(42, 8), hex('2a'));
    // 1337 as an indexed-field index (7-bit prefix) past the table: decoder reads it, then rejects the index.
    assert.throws(() => decode(new HpackDecoder(), encodeInteger(1337, 7, 0x80)), /index 1337/);
  });

  test('truncated and overflowing integers are rejected', () => {
    assert.throws(() => decode(new HpackDecoder(), hex('ff')), /truncated integer/);
    assert.throws(() => decode(new HpackDecoder(), hex('ff ffffffff0f')), /overflow/);
  });
});

describe('header blocks (RFC 7541 C.2)', () => {
  test('C.2.1 literal with indexing', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572')), [['custom-key', 'custom-header']]);
    assert.deepEqual(d.entries(), [['custom-key', 'custom-header']]);
    assert.equal(d.size, 55);
  });

  test('C.2.2 literal without indexing', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
    assert.deepEqual(d.entries(), []);
    assert.equal(d.size, 0);
  });

  test('C.2.3 literal never indexed', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, hex('1008 7061 7373 776f 7264 0673 6563 7265 74')), [['password', 'secret']]);
    assert.deepEqual(d.entries(), []);
    assert.equal(d.size, 0);
  });

  test('C.2.4 indexed', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, hex('82')), [[':method', 'GET']]);
    assert.deepEqual(d.entries(), []);
  });
});

const REQ1: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', '/'],
  [':authority', 'www.example.com'],
];
const REQ2: [string, string][] = [...REQ1, ['cache-control', 'no-cache']];
const REQ3: [string, string][] = [
  [':method', 'GET'],
  [':scheme', 'https'],
  [':path', '/index.html'],
  [':authority', 'www.example.com'],
  ['custom-key', 'custom-value'],
];
const REQ_TABLES: { table: [string, string][]; size: number }[] = [
  { table: [[':authority', 'www.example.com']], size: 57 },
  {
    table: [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 110,
  },
  {
    table: [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    size: 164,
  },
];

function requestSequence(blocks: string[]): void {
  const d = new HpackDecoder();
  for (const [i, want] of [REQ1, REQ2, REQ3].entries()) {
    assert.deepEqual(decode(d, hex(blocks[i])), want, `request ${i + 1}`);
    assert.deepEqual(d.entries(), REQ_TABLES[i].table, `table after request ${i + 1}`);
    assert.equal(d.size, REQ_TABLES[i].size);
  }
}

describe('request sequences (RFC 7541 C.3, C.4)', () => {
  test('C.3 without Huffman', () =>
    requestSequence([
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]));

  test('C.4 with Huffman', () =>
    requestSequence([
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]));
});

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const LOC = 'https://www.example.com';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';

function responseSequence(blocks: string[]): void {
  // SETTINGS_HEADER_TABLE_SIZE 256: entries get evicted.
  const d = new HpackDecoder(256);
  assert.deepEqual(decode(d, hex(blocks[0])), [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOC],
  ]);
  assert.deepEqual(d.entries(), [
    ['location', LOC],
    ['date', DATE1],
    ['cache-control', 'private'],
    [':status', '302'],
  ]);
  assert.equal(d.size, 222);
  assert.deepEqual(decode(d, hex(blocks[1])), [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', DATE1],
    ['location', LOC],
  ]);
  assert.deepEqual(d.entries(), [
    [':status', '307'],
    ['location', LOC],
    ['date', DATE1],
    ['cache-control', 'private'],
  ]);
  assert.equal(d.size, 222);
  assert.deepEqual(decode(d, hex(blocks[2])), [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', DATE2],
    ['location', LOC],
    ['content-encoding', 'gzip'],
    ['set-cookie', COOKIE],
  ]);
  assert.deepEqual(d.entries(), [
    ['set-cookie', COOKIE],
    ['content-encoding', 'gzip'],
    ['date', DATE2],
  ]);
  assert.equal(d.size, 215);
}

describe('response sequences with eviction (RFC 7541 C.5, C.6)', () => {
  test('C.5 without Huffman', () =>
    responseSequence([
      '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '4803 3330 37c1 c0bf',
      '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
    ]));

  test('C.6 with Huffman', () =>
    responseSequence([
      '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
      '4883 640e ffc1 c0bf',
      '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
    ]));
});

describe('dynamic table size updates and errors', () => {
  test('a size update evicts, may return up to the limit, and must lead the block', () => {
    const d = new HpackDecoder();
    decode(d, hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'));
    assert.equal(d.size, 55);
    assert.deepEqual(decode(d, hex('20 82')), [[':method', 'GET']]);
    assert.equal(d.maxSize, 0);
    assert.equal(d.size, 0);
    assert.deepEqual(d.entries(), []);
    // While the maximum is 0, an indexed literal is emitted but not stored.
    assert.deepEqual(decode(d, hex('4001 61 0162')), [['a', 'b']]);
    assert.deepEqual(d.entries(), []);
    assert.deepEqual(decode(d, Buffer.concat([encodeInteger(4096, 5, 0x20), hex('82')])), [[':method', 'GET']]);
    assert.equal(d.maxSize, 4096);
    assert.throws(() => decode(d, encodeInteger(4097, 5, 0x20)), /exceeds/);
    assert.throws(() => decode(new HpackDecoder(), hex('82 20')), /after a header field/);
  });

  test('shrinking the table evicts the oldest entries first', () => {
    const d = new HpackDecoder();
    decode(
      d,
      Buffer.concat([hex('40'), encodeString('aaaa'), encodeString('1111'), hex('40'), encodeString('bbbb'), encodeString('2222')]),
    );
    assert.equal(d.size, 80);
    decode(d, encodeInteger(40, 5, 0x20));
    assert.deepEqual(d.entries(), [['bbbb', '2222']]);
    assert.equal(d.size, 40);
  });

  test('an entry larger than the table empties it', () => {
    const d = new HpackDecoder(100);
    decode(d, Buffer.concat([hex('40'), encodeString('k'), encodeString('v')]));
    assert.equal(d.entries().length, 1);
    assert.deepEqual(decode(d, Buffer.concat([hex('40'), encodeString('big'), encodeString('x'.repeat(80))])), [['big', 'x'.repeat(80)]]);
    assert.deepEqual(d.entries(), []);
    assert.equal(d.size, 0);
  });

  test('a literal may name the entry it evicts (RFC 7541 4.4)', () => {
    const d = new HpackDecoder(64);
    decode(d, Buffer.concat([hex('40'), encodeString('name'), encodeString('v1')])); // 38 octets
    // Literal with indexing whose name is dynamic index 62, the entry that adding it evicts.
    assert.deepEqual(decode(d, Buffer.concat([hex('7e'), encodeString('v2')])), [['name', 'v2']]);
    assert.deepEqual(d.entries(), [['name', 'v2']]);
  });

  test('bad indexes and truncated strings are rejected', () => {
    assert.throws(() => decode(new HpackDecoder(), hex('80')), /index 0/);
    assert.throws(() => decode(new HpackDecoder(), hex('be')), /beyond the table/);
    assert.throws(() => decode(new HpackDecoder(), hex('400a 6375')), /runs past/);
    assert.throws(() => decode(new HpackDecoder(), hex('40')), /truncated/);
  });

  test('many blocks keep the table consistent', () => {
    const d = new HpackDecoder(200);
    for (let i = 0; i < 1000; i++) {
      const got = decode(d, Buffer.concat([hex('40'), encodeString(`k${i}`, true), encodeString(`v${i}`, true), hex('be')]));
      assert.deepEqual(got, [
        [`k${i}`, `v${i}`],
        [`k${i}`, `v${i}`],
      ]);
      assert.ok(d.size <= 200);
    }
    assert.deepEqual(d.entries()[0], ['k999', 'v999']);
  });
});

describe('encoder pieces', () => {
  test('literals without indexing, static names', () => {
    assert.deepEqual(encodeLiteral(':path', '/sample/path'), hex('040c 2f73 616d 706c 652f 7061 7468'));
    assert.deepEqual(encodeLiteral('content-type', 'application/grpc').subarray(0, 2), hex('0f10'));
    const d = new HpackDecoder();
    const block = Buffer.concat([encodeLiteral('te', 'trailers'), encodeLiteral('authorization', 'Bearer x', true)]);
    assert.deepEqual(decode(d, block), [
      ['te', 'trailers'],
      ['authorization', 'Bearer x'],
    ]);
    assert.deepEqual(d.entries(), []);
  });

  test('static table has the 61 entries of Appendix A', () => {
    assert.equal(STATIC_TABLE.length, 61);
    assert.deepEqual(STATIC_TABLE[2], [':method', 'POST']);
    assert.deepEqual(STATIC_TABLE[22], ['authorization', '']);
    assert.deepEqual(STATIC_TABLE[30], ['content-type', '']);
    assert.deepEqual(STATIC_TABLE[60], ['www-authenticate', '']);
  });
});
