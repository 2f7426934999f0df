#!/usr/bin/env node
/**
 * A test engine: ClickHouse's HTTP interface (the part `@clickhouse/client` uses) in front of a real
 * ClickHouse engine — chdb, ClickHouse compiled as a library — so tightloop's ClickHouse store runs
 * its SQL on ClickHouse itself. Nothing here interprets SQL: every statement goes to the engine as
 * sent — except that an INSERT's data is read by the engine from a file (`FROM INFILE`, see
 * fromInfile), as ClickHouse's HTTP handler reads it from the body apart from the statement —
 * query parameters bound by the engine, settings applied by the engine.
 *
 *   node test/clickhouse-engine/server.mjs --path DIR [--port 8123] [--host 127.0.0.1] [--user NAME:PASSWORD]
 *
 * Prints one JSON line `{"listening":"http://host:port","version":"26.x"}` once it accepts requests.
 * Several tightloop processes may share one engine. Requests run one at a time (one chdb session
 * per data directory, which libchdb allows once per process); each request runs with exactly its
 * own settings (the session's are changed where they differ, others reset to their defaults).
 *
 * HTTP: GET/POST `/` with `query` in the URL or the body (the body is an INSERT's data when the
 * URL has the query), `database`, `param_<name>` (values in ClickHouse's escaped text form, passed
 * to the engine unchanged), `default_format`, `query_id`, any other URL parameter as a setting;
 * credentials from X-ClickHouse-User/Key, Basic auth or `user`/`password`; gzip/deflate request
 * bodies; `/ping`. Responses carry X-ClickHouse-Query-Id, -Format, -Timezone, -Summary; errors
 * ClickHouse's text (`Code: N. DB::Exception: ... (NAME)`) with X-ClickHouse-Exception-Code.
 * Not served: sessions (session_id is accepted and ignored: one shared session), response
 * compression, GET's read-only mode, multipart parameters.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, inflateSync } from 'node:zlib';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { Session } = require('chdb');
/** The addon's own entry points: `queryBindAsync` would escape parameter values a second time. */
const native = require(join(dirname(require.resolve('chdb')), 'dist', 'loader.js')).loadNative();

/** URL parameters of the HTTP interface that are not settings. */
const NOT_SETTINGS = new Set(['query', 'database', 'default_format', 'query_id', 'session_id', 'session_timeout', 'session_check',
  'user', 'password', 'quota_key', 'compress', 'decompress', 'role', 'buffer_size', 'wait_end_of_query', 'enable_http_compression']);
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** ClickHouse error codes and the HTTP status its HTTP handler answers them with. */
function httpStatus(code) {
  if ([516, 192, 194, 195, 497].includes(code)) return 403; // authentication / access
  if ([60, 81, 83].includes(code)) return 404; // unknown table / database
  if ([62, 27, 26, 36, 38, 41, 47, 53, 69, 70, 72, 115, 130, 241, 456, 457].includes(code)) return 400;
  return 500;
}

/** `Code: N. DB::Exception: message (NAME)`, the engine's own text when it has one. */
function engineError(err) {
  const text = String(err?.message ?? err);
  const m = /Code: (\d+)\./.exec(text);
  return { code: m ? Number(m[1]) : 1002, text: m ? text : `Code: 1002. DB::Exception: ${text}. (UNKNOWN_EXCEPTION)` };
}

const clientError = (code, name, message) => ({ code, text: `Code: ${code}. DB::Exception: ${message}. (${name})` });

/**
 * `INSERT INTO target [(columns)] FORMAT name` with its data read by the engine from `file`
 * (`FROM INFILE`, the data as the file's bytes). chdb takes an INSERT's data only as part of the
 * statement's text otherwise (its raw insert appends the data to the statement), and the engine
 * then ends the data where its multi-statement splitting sees a statement end — binary data
 * (RowBinary) holding bytes such as two line feeds in a row was cut there: the INSERT failed with
 * a parse error, or stored the rows before the cut and failed on the rest read as SQL, or even
 * stored only those and succeeded. This is the one statement the server rewrites, and only this
 * exact shape (what `@clickhouse/client` sends for inserts); any other INSERT with data is refused.
 */
function fromInfile(statement, file) {
  const m = /^\s*(INSERT\s+INTO\s+[\s\S]+?)\s+FORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$/i.exec(statement);
  if (!m) throw clientError(48, 'NOT_IMPLEMENTED', 'The test engine takes data only for INSERT INTO table [(columns)] FORMAT name');
  return `${m[1]} FROM INFILE ${sqlString(file)} COMPRESSION 'none' FORMAT ${m[2]}`;
}

function sqlString(v) {
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export async function startEngine({ path, host = '127.0.0.1', port = 8123, users = { default: '' } }) {
  mkdirSync(path, { recursive: true });
  /** INSERT data waiting for its statement (fromInfile), one file per request. */
  const bodies = mkdtempSync(join(tmpdir(), 'chdb-engine-inserts-'));
  const session = new Session(path);
  const version = JSON.parse(new TextDecoder().decode((await native.QueryAsyncConnection(session.connection, 'SELECT version() AS v', 'JSONEachRow')).bytes)).v;
  let database = 'default';
  /** Settings the session has from earlier requests (name → value as sent). */
  const current = new Map();
  let tail = Promise.resolve();
  /** Runs one request's statements alone on the session (settings and database are session state). */
  const exclusive = (fn) => {
    const run = tail.then(fn);
    tail = run.then(() => undefined, () => undefined);
    return run;
  };
  const run = (sql, format, params) => (params ? native.QueryAsyncConnection(session.connection, sql, format, params)
    : native.QueryAsyncConnection(session.connection, sql, format));

  function authenticate(req, url) {
    let user = req.headers['x-clickhouse-user'] ?? url.searchParams.get('user') ?? undefined;
    let password = req.headers['x-clickhouse-key'] ?? url.searchParams.get('password') ?? '';
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      user = decoded.slice(0, i < 0 ? undefined : i);
      password = i < 0 ? '' : decoded.slice(i + 1);
    }
    user ??= 'default';
    const want = users[user];
    const ok = want !== undefined && want.length === password.length && timingSafeEqual(Buffer.from(want), Buffer.from(password));
    return ok ? null : clientError(516, 'AUTHENTICATION_FAILED', `${user}: Authentication failed: password is incorrect, or there is no user with such name`);
  }

  async function execute(url, body) {
    const p = url.searchParams;
    const urlQuery = p.get('query');
    const sql = () => (urlQuery === null ? body.toString('utf8') : body.length > 0 ? `${urlQuery}\n${body.toString('utf8')}` : urlQuery);
    if ((urlQuery ?? '').trim() === '' && body.toString('utf8').trim() === '') throw clientError(62, 'SYNTAX_ERROR', 'Empty query');
    const params = {};
    const settings = [];
    for (const [k, v] of p) {
      if (k.startsWith('param_')) params[k.slice(6)] = v;
      else if (!NOT_SETTINGS.has(k)) {
        if (!SETTING_NAME.test(k)) throw clientError(115, 'UNKNOWN_SETTING', `Setting ${k} is neither a builtin setting nor started with the prefix 'custom_'`);
        settings.push([k, v]);
      }
    }
    const format = p.get('default_format') ?? 'TabSeparated';
    // An INSERT's data (the body when the URL has the statement) reaches the engine from a file,
    // never inside the statement's text: see fromInfile.
    let dataFile;
    if (urlQuery !== null && body.length > 0 && /^\s*INSERT\b/i.test(urlQuery)) {
      if (Object.keys(params).length > 0) throw clientError(48, 'NOT_IMPLEMENTED', 'The test engine takes no query parameters in an INSERT with data');
      fromInfile(urlQuery, '');
      dataFile = join(bodies, `${randomUUID()}.bin`);
      await writeFile(dataFile, body);
    }
    return exclusive(async () => {
      const db = p.get('database') ?? 'default';
      if (db !== database) {
        await run(`USE ${'`'}${db.replace(/`/g, '``')}${'`'}`, 'TabSeparated');
        database = db;
      }
      // Applied by the engine (an unknown or ill-typed setting fails there). The session keeps
      // them: each request sets what differs from the session's and resets what it does not ask for.
      const wanted = new Map(settings);
      for (const [k] of current) {
        if (wanted.has(k)) continue;
        await run(`SET ${k} = DEFAULT`, 'TabSeparated');
        current.delete(k);
      }
      for (const [k, v] of wanted) {
        if (current.get(k) === v) continue;
        current.delete(k);
        await run(`SET ${k} = ${sqlString(v)}`, 'TabSeparated');
        current.set(k, v);
      }
      if (dataFile !== undefined) return await run(fromInfile(urlQuery, dataFile), format);
      return Object.keys(params).length > 0 ? await run(sql(), format, params) : await run(sql(), format);
    }).finally(() => (dataFile === undefined ? undefined : rm(dataFile, { force: true })));
  }

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://engine');
      const queryId = url.searchParams.get('query_id') ?? randomUUID();
      const headers = {
        'X-ClickHouse-Server-Display-Name': 'chdb-engine', 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Timezone': 'UTC',
        'Keep-Alive': 'timeout=10', 'Content-Type': 'text/plain; charset=UTF-8',
      };
      const fail = (e) => {
        res.writeHead(httpStatus(e.code), { ...headers, 'X-ClickHouse-Exception-Code': String(e.code) });
        res.end(`${e.text}${e.text.includes('(version ') ? '' : ` (version ${version})`}\n`);
      };
      if (url.pathname === '/ping' || (url.pathname === '/' && req.method === 'GET' && !url.searchParams.has('query'))) {
        res.writeHead(200, headers);
        res.end('Ok.\n');
        return;
      }
      if (url.pathname !== '/') return fail(clientError(1002, 'UNKNOWN_EXCEPTION', `There is no handle ${url.pathname}`));
      const denied = authenticate(req, url);
      if (denied) return fail(denied);
      let body = Buffer.concat(chunks);
      try {
        const enc = req.headers['content-encoding'];
        if (enc === 'gzip') body = gunzipSync(body);
        else if (enc === 'deflate') body = inflateSync(body);
        else if (enc !== undefined && enc !== 'identity') return fail(clientError(1002, 'UNKNOWN_EXCEPTION', `Unknown Content-Encoding ${enc}`));
      } catch {
        return fail(clientError(354, 'CANNOT_DECOMPRESS', 'Cannot decompress the request body'));
      }
      execute(url, body).then((r) => {
        const summary = { read_rows: String(r.rowsRead ?? 0), read_bytes: String(r.bytesRead ?? 0), written_rows: String(r.rowsWritten ?? 0), written_bytes: String(r.bytesWritten ?? 0),
          total_rows_to_read: '0', result_rows: '0', result_bytes: String(r.bytes?.length ?? 0), elapsed_ns: String(Math.round((r.elapsed ?? 0) * 1e9)) };
        res.writeHead(200, { ...headers, 'X-ClickHouse-Format': url.searchParams.get('default_format') ?? 'TabSeparated', 'X-ClickHouse-Summary': JSON.stringify(summary) });
        res.end(r.bytes ? Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength) : '');
      }, (err) => fail(err && typeof err.code === 'number' && typeof err.text === 'string' ? err : engineError(err)));
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    version,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => exclusive(() => session.cleanup?.() ?? session.close?.()).finally(() => rmSync(bodies, { recursive: true, force: true })).then(resolve, resolve));
    }),
  };
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { values } = parseArgs({ options: { path: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' }, user: { type: 'string', multiple: true } } });
  if (!values.path) {
    process.stderr.write('usage: server.mjs --path DIR [--port 8123] [--host 127.0.0.1] [--user NAME:PASSWORD ...]\n');
    process.exit(2);
  }
  const users = values.user?.length ? Object.fromEntries(values.user.map((u) => {
    const i = u.indexOf(':');
    return i < 0 ? [u, ''] : [u.slice(0, i), u.slice(i + 1)];
  })) : { default: '' };
  const engine = await startEngine({ path: values.path, host: values.host ?? '127.0.0.1', port: Number(values.port ?? 8123), users });
  process.stdout.write(`${JSON.stringify({ listening: engine.url, version: engine.version })}\n`);
  const stop = () => { engine.close().then(() => process.exit(0), () => process.exit(1)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
