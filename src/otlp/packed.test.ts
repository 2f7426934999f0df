import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import protobuf from 'protobufjs/minimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpanBatch } from '../telemetry/batch.js';
import { appendSources, batchSource, columnDdl, type RowSource } from '../telemetry/duckdb-chunks.js';
import { SPAN_COLUMNS } from '../telemetry/duckdb-schema.js';
import { packedColumns } from '../telemetry/packed-text.js';
import { makeRealisticTracePayload } from './fixtures.js';
import { decodeTraces, ingestCounters, LIMITS } from './index.js';

/**
 * The protobuf span decoder carries attributes, events and links as UTF-8 bytes to the DuckDB
 * chunks (telemetry/packed-text.ts). Oracle: the same batch as plain string columns (what the
 * decoder made before, and what the JSON decoder and every reader still see), loaded through
 * the string path of the same loader.
 */

const { Writer } = protobuf;
type W = protobuf.Writer;

interface TestSpan {
  trace?: Uint8Array;
  span?: Uint8Array;
  attrs?: Array<[string, Uint8Array | string | number]>;
  events?: string[];
  link?: boolean;
}

const id = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

/** One resource, one scope, the given spans; string values given as bytes are written raw. */
function request(spans: TestSpan[]): Uint8Array {
  const w: W = Writer.create();
  w.uint32(10).fork(); // resource_spans
  w.uint32(10).fork().uint32(10).fork().uint32(10).string('service.name').uint32(18).fork().uint32(10).string('svc').ldelim().ldelim().ldelim();
  w.uint32(18).fork(); // scope_spans
  spans.forEach((s, n) => {
    w.uint32(18).fork();
    w.uint32(10).bytes(s.trace ?? id(16, 0xab)).uint32(18).bytes(s.span ?? id(8, n + 1));
    w.uint32(42).string(`op${n}`);
    w.uint32(57).fixed32(0).fixed32(400_000_000).uint32(65).fixed32(1000).fixed32(400_000_000);
    for (const [k, v] of s.attrs ?? []) {
      w.uint32(74).fork().uint32(10).string(k).uint32(18).fork();
      if (typeof v === 'number') w.uint32(24).int64(v);
      else if (typeof v === 'string') w.uint32(10).string(v);
      else w.uint32(10).bytes(v);
      w.ldelim().ldelim();
    }
    for (const e of s.events ?? []) w.uint32(90).fork().uint32(9).fixed32(5).fixed32(400_000_000).uint32(18).string(e).ldelim();
    if (s.link) w.uint32(106).fork().uint32(10).bytes(id(16, 0x11)).uint32(18).bytes(id(8, 0x22)).ldelim();
    w.ldelim();
  });
  return w.ldelim().ldelim().finish();
}

/** The batch as plain string columns (own data properties, no bytes). */
const plain = (b: SpanBatch): SpanBatch => Object.fromEntries(Object.entries(b)) as unknown as SpanBatch;

let instance: DuckDBInstance;
let con: DuckDBConnection;
beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
  con = await instance.connect();
});
afterAll(() => {
  con.closeSync();
  instance.closeSync();
});

async function load(table: string, sources: RowSource[]): Promise<unknown[]> {
  await con.run(`CREATE OR REPLACE TABLE ${table} (${columnDdl(SPAN_COLUMNS)})`);
  const appender = await con.createAppender(table);
  appendSources(appender, SPAN_COLUMNS, sources);
  appender.closeSync();
  return (await con.runAndReadAll(`SELECT * FROM ${table} ORDER BY rowid`)).getRowObjectsJS();
}

const extra = (b: { length: number }): Record<string, unknown> => ({ resourceId: new Uint32Array(2 * b.length), ingestedUs: 7 });

describe('span text columns as bytes', () => {
  it('a rejected span leaves none of its attributes, events or links in the next row', () => {
    const { batch, rejected } = decodeTraces(request([
      { trace: id(16, 0), attrs: [['bad', 'x']], events: ['bad-event'], link: true },
      { attrs: [['b', 2]] },
      { span: id(7, 1), attrs: [['bad', 'y'.repeat(40)]], link: true },
      { events: ['e'] },
      { trace: id(15, 1), attrs: [['bad', 1]] },
    ]), 'protobuf');
    expect(rejected).toBe(3);
    expect(batch.attrs).toEqual(['{"b":2}', '{}']);
    expect(batch.events).toEqual(['[]', '[{"timeUs":1717986918400000,"name":"e","attrs":{}}]']);
    expect(batch.links).toEqual(['[]', '[]']);
  });

  it('invalid UTF-8 is replaced and counted once, in the strings and in what is loaded', async () => {
    const before = ingestCounters.invalidUtf8;
    const { batch } = decodeTraces(request([{ attrs: [['k', Uint8Array.from([0x61, 0xff, 0x62])], ['ü', 'é😀']] }, { attrs: [['ok', 'ascii']] }]), 'protobuf');
    expect(ingestCounters.invalidUtf8).toBe(before + 1);
    expect(batch.attrs).toEqual(['{"k":"a\uFFFDb","ü":"é😀"}', '{"ok":"ascii"}']);
    const rows = await load('utf8', [batchSource(batch, extra(batch))]) as Array<{ attrs: string }>;
    expect(rows.map((r) => r.attrs)).toEqual(batch.attrs);
    expect(ingestCounters.invalidUtf8).toBe(before + 1);
  });

  it('loads exactly the rows the string columns load (chunk edges, mixed sources, long and short values)', async () => {
    const big = decodeTraces(makeRealisticTracePayload(3000), 'protobuf').batch; // > one 2,048-row chunk
    const odd = decodeTraces(request([
      { attrs: [['a', 1]] }, // 7 bytes: inline
      { attrs: [['k', 'exactly12by']] }, // {"k":"exactly12by"} 19 bytes
      { attrs: [['long', 'v'.repeat(3000)], ['ü', 'ß']], events: ['one', 'two'], link: true },
      {},
      { trace: id(16, 0), attrs: [['gone', 1]] },
      { attrs: [['ctl', 'tab\there "quote" \\ nul\u0000']] },
    ]), 'protobuf').batch;
    const small = decodeTraces(makeRealisticTracePayload(30), 'protobuf').batch;
    for (const b of [big, odd, small]) expect(packedColumns(b)?.attrs).toBeDefined();
    const withBytes = await load('bytes', [big, odd, plain(small), small, odd].map((b) => batchSource(b, extra(b))));
    const strings = await load('strings', [big, odd, small, small, odd].map((b) => batchSource(plain(b), extra(b))));
    expect(withBytes.length).toBe(3000 + 5 + 30 + 30 + 5);
    expect(withBytes).toEqual(strings);
    // And the strings themselves are what the rows say (not only the same on both sides).
    const rows = withBytes as Array<{ attrs: string; events: string; links: string }>;
    expect(rows[3000 + 2].attrs).toBe(`{"long":"${'v'.repeat(3000)}","ü":"ß"}`);
    expect(JSON.parse(rows[3000 + 4].attrs)).toEqual({ ctl: 'tab\there "quote" \\ nul\u0000' });
    expect(rows[3000 + 2].links).toBe('[{"traceId":"11111111111111111111111111111111","spanId":"2222222222222222","traceState":"","attrs":{}}]');
  });

  it('limits still apply: over-long values are cut and attributes past the count dropped, as strings', () => {
    const dropped = ingestCounters.droppedItems, cut = ingestCounters.truncatedValues;
    const many = Array.from({ length: LIMITS.attributes + 5 }, (_, k): [string, number] => [`a${k}`, k]);
    const { batch } = decodeTraces(request([{ attrs: many }, { attrs: [['v', 'x'.repeat(LIMITS.value + 10)]] }, { attrs: [['s', 1]] }]), 'protobuf');
    expect(Object.keys(JSON.parse(batch.attrs[0]) as object)).toHaveLength(LIMITS.attributes);
    expect((JSON.parse(batch.attrs[1]) as { v: string }).v).toBe(`${'x'.repeat(LIMITS.value)}…[truncated 10 chars]`);
    expect(batch.attrs[2]).toBe('{"s":1}');
    expect(ingestCounters.droppedItems).toBe(dropped + 5);
    expect(ingestCounters.truncatedValues).toBe(cut + 1);
    expect(packedColumns(batch)?.attrs).toBeUndefined(); // limited as strings: the bytes are gone
    expect(packedColumns(batch)?.events).toBeDefined();
  });

  it('the string view cannot be changed in place; assigning a column replaces it and its bytes', async () => {
    const { batch } = decodeTraces(request([{ attrs: [['a', 1]] }, { attrs: [['b', 2]] }]), 'protobuf');
    expect(() => { (batch.attrs)[0] = '{"changed":1}'; }).toThrow(TypeError);
    expect(batch.attrs[0]).toBe('{"a":1}');
    batch.attrs = ['{"x":1}', '{"y":2}'];
    expect(packedColumns(batch)?.attrs).toBeUndefined();
    batch.attrs[1] = '{"y":3}';
    const rows = await load('assigned', [batchSource(batch, extra(batch))]) as Array<{ attrs: string; events: string }>;
    expect(rows.map((r) => r.attrs)).toEqual(['{"x":1}', '{"y":3}']);
    // Copies (a spread, Object.entries as the span floor does) hold strings, never the bytes.
    const copy = { ...batch };
    expect(packedColumns(copy)).toBeUndefined();
    expect(copy.events).toEqual(['[]', '[]']);
    expect(JSON.parse(JSON.stringify(batch)) as SpanBatch).toMatchObject({ attrs: ['{"x":1}', '{"y":3}'], events: ['[]', '[]'] });
  });
});
