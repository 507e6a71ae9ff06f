import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { HUFFMAN_CODES, HpackDecoder, HpackError, encodeHeaders, huffmanDecode, huffmanEncode } from './hpack.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function run(d: HpackDecoder, block: string) {
  const b = hex(block);
  return d.decode(b, 0, b.length).headers;
}

test('Huffman codes match RFC 7541 Appendix B where spot-checked', () => {
  const expect: Array<[number, number, number]> = [
    [0, 0x1ff8, 13],
    [32, 0x14, 6],
    [47, 0x18, 6],
    [48, 0x0, 5],
    [65, 0x21, 6],
    [97, 0x3, 5],
    [122, 0x7b, 7],
    [255, 0x3ffffee, 26],
    [256, 0x3fffffff, 30],
  ];
  for (const [sym, code, len] of expect) assert.deepEqual(HUFFMAN_CODES[sym], [code, len], `symbol ${sym}`);
  // Kraft equality: a complete prefix code.
  assert.equal(
    HUFFMAN_CODES.reduce((a, [, len]) => a + 2 ** -len, 0),
    1,
  );
});

test('Huffman strings of RFC 7541 Appendix C, and random octets round-trip', () => {
  const cases: Array<[string, string]> = [
    ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'],
    ['no-cache', 'a8eb 1064 9cbf'],
    ['custom-key', '25a8 49e9 5ba9 7d7f'],
    ['custom-value', '25a8 49e9 5bb8 e8b4 bf'],
  ];
  for (const [text, code] of cases) {
    assert.equal(huffmanEncode(text).toString('hex'), code.replace(/ /g, ''));
    const b = hex(code);
    assert.equal(huffmanDecode(b, 0, b.length), text);
  }
  for (let i = 0; i < 300; i++) {
    const s = randomBytes(i % 90).toString('latin1');
    const e = huffmanEncode(s);
    assert.equal(huffmanDecode(e, 0, e.length), s);
  }
});

test('Huffman errors: EOS inside, padding longer than 7 bits or not ones', () => {
  const eos = Buffer.from([0xff, 0xff, 0xff, 0xfc]); // 30 one-bits: EOS, then zeros
  assert.throws(() => huffmanDecode(eos, 0, eos.length), HpackError);
  const longPad = Buffer.concat([huffmanEncode('a'), Buffer.from([0xff])]);
  assert.throws(() => huffmanDecode(longPad, 0, longPad.length), /padding/);
  const zeroPad = Buffer.from([0x18]); // 'a' (00011) then 000: padding must be ones
  assert.throws(() => huffmanDecode(zeroPad, 0, zeroPad.length), /padding|EOS/);
});

test('RFC 7541 C.2: literal forms', () => {
  const d = new HpackDecoder();
  assert.deepEqual(run(d, '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'), [['custom-key', 'custom-header']]);
  assert.equal(d.tableSize, 55);
  assert.deepEqual(run(d, '040c 2f73 616d 706c 652f 7061 7468'), [[':path', '/sample/path']]);
  assert.deepEqual(run(d, '1008 7061 7373 776f 7264 0673 6563 7265 74'), [['password', 'secret']]);
  assert.equal(d.tableSize, 55, 'neither form indexes');
  assert.deepEqual(run(d, '82'), [[':method', 'GET']]);
});

for (const [name, blocks] of [
  [
    'C.3 (plain)',
    [
      '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ],
  ],
  [
    'C.4 (Huffman)',
    [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ],
  ],
] as const) {
  test(`RFC 7541 ${name}: three requests sharing the dynamic table`, () => {
    const d = new HpackDecoder();
    assert.deepEqual(run(d, blocks[0]), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.equal(d.tableSize, 57);
    assert.deepEqual(run(d, blocks[1]), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    assert.equal(d.tableSize, 110);
    assert.deepEqual(run(d, blocks[2]), [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
    assert.equal(d.tableSize, 164);
    assert.deepEqual(d.tableEntries, [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ]);
  });
}

test('RFC 7541 C.5: responses with eviction in a 256-octet table', () => {
  const d = new HpackDecoder(256);
  const dateA = 'Mon, 21 Oct 2013 20:13:21 GMT';
  // The decoder's limit is 256; the peer announces it with a size update first (allowed at block start).
  assert.deepEqual(run(d, '3fe1 01'), []);
  assert.deepEqual(
    run(
      d,
      '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    ),
    [
      [':status', '302'],
      ['cache-control', 'private'],
      ['date', dateA],
      ['location', 'https://www.example.com'],
    ],
  );
  assert.equal(d.tableSize, 222);
  assert.deepEqual(run(d, '4803 3330 37c1 c0bf'), [
    [':status', '307'],
    ['cache-control', 'private'],
    ['date', dateA],
    ['location', 'https://www.example.com'],
  ]);
  assert.equal(d.tableSize, 222);
  assert.equal(d.tableEntries[0][1], '307');
  assert.ok(!d.tableEntries.some(([n, v]) => n === ':status' && v === '302'), '302 was evicted');
});

test('decoder errors: index 0, index past the table, truncation, size update too large or misplaced, huge integers', () => {
  const bad = ['80', 'ff00', 'bf', '41', '4103 6162', '3fe2 1f', '82 20', 'ff ff ff ff ff 0f'];
  for (const b of bad) assert.throws(() => run(new HpackDecoder(), b), HpackError, b);
});

test('a header list over the limit is reported, and the table stays in step', () => {
  const d = new HpackDecoder();
  const r1 = d.decode(hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572'), 0, 26, 10);
  assert.equal(r1.tooLarge, true);
  assert.equal(d.tableSize, 55, 'indexed although the list was too large');
  assert.deepEqual(run(d, 'be'), [['custom-key', 'custom-header']]);
});

test('encodeHeaders: static matches indexed, names by index, others literal; the decoder reads them back', () => {
  const fields: Array<[string, string]> = [
    [':status', '200'],
    ['content-type', 'application/grpc'],
    ['grpc-status', '0'],
    ['grpc-message', 'a%20b'],
    [':status', '431'],
  ];
  const e = encodeHeaders(fields);
  assert.equal(e[0], 0x88);
  assert.deepEqual(new HpackDecoder().decode(e, 0, e.length).headers, fields);
  const long: Array<[string, string]> = [['x-long', 'v'.repeat(300)]];
  const el = encodeHeaders(long);
  assert.deepEqual(new HpackDecoder().decode(el, 0, el.length).headers, long);
});
