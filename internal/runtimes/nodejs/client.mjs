// Runtime API client: one keep-alive HTTP/1.1 connection to $AWS_LAMBDA_RUNTIME_API, no
// timeouts. A small hand-written client on node:net: node:http's client costs several times
// more per request, and the runtime makes two requests per invocation. The socket is unref'd
// while no request is in flight, so an idle connection never keeps the event loop alive (the
// 'beforeExit' hook callback handlers rely on still fires).

import net from 'node:net';
import { toRapidResponse } from './errors.mjs';

const API = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const CRLFCRLF = Buffer.from('\r\n\r\n');

export class RuntimeClient {
  constructor(address) {
    if (!address) {
      throw new Error('AWS_LAMBDA_RUNTIME_API is not set');
    }
    const colon = address.lastIndexOf(':');
    this.address = address;
    this.host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    this.port = Number(address.slice(colon + 1));
    this.conn = new Connection(this.host, this.port);
  }

  // next resolves with the next invocation's headers (lower-case names) and body.
  async next() {
    const res = await this.request(this.conn, 'GET', API + '/invocation/next', {}, '');
    if (res.status !== 200) {
      throw new Error(`Runtime API /next returned ${res.status}: ${res.body}`);
    }
    return res;
  }

  postInvocationResponse(result, id, callback) {
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (_) {
      this.postInvocationError(new Error('Unable to stringify response body'), id, callback);
      return;
    }
    this.post(`${API}/invocation/${encodeURIComponent(id)}/response`, body, {}, callback);
  }

  // postInvocationError reports error for invocation id. fresh uses a new connection, for
  // fatal paths where the kept-alive one may be busy with /next.
  postInvocationError(error, id, callback, fresh = false) {
    this.postError(`${API}/invocation/${encodeURIComponent(id)}/error`, error, callback, fresh);
  }

  postInitError(error, callback) {
    this.postError(`${API}/init/error`, error, callback, false);
  }

  postError(path, error, callback, fresh) {
    const response = toRapidResponse(error);
    let type = String(response.errorType);
    if (!/^[\x20-\x7e]+$/.test(type)) {
      type = 'Runtime.Unknown';
    }
    this.post(path, JSON.stringify(response), { [ERROR_TYPE_HEADER]: type }, callback, fresh);
  }

  post(path, body, headers, callback, fresh = false) {
    const conn = fresh ? new Connection(this.host, this.port) : this.conn;
    headers['Content-Type'] = 'application/json';
    this.request(conn, 'POST', path, headers, body).then(
      () => {
        if (fresh) {
          conn.close();
        }
        if (callback) {
          callback();
        }
      },
      (err) => {
        process.stderr.write(`Runtime API POST ${path} failed: ${err}\n`);
        process.exit(1);
      },
    );
  }

  request(conn, method, path, headers, body) {
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.address}\r\n`;
    for (const name in headers) {
      head += `${name}: ${headers[name]}\r\n`;
    }
    if (method !== 'GET') {
      head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    }
    return conn.request(head + '\r\n' + body);
  }
}

// Connection is one HTTP/1.1 connection carrying one request at a time; requests made while
// one is in flight wait their turn.
class Connection {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.socket = null;
    this.queue = [];
    this.current = null; // {data, resolve, reject, retried, sawBytes}
    this.buf = null;
    this.res = null; // response being parsed
  }

  request(data) {
    return new Promise((resolve, reject) => {
      this.queue.push({ data, resolve, reject, retried: false, sawBytes: false });
      if (!this.current) {
        this.startNext();
      }
    });
  }

  close() {
    if (this.socket) {
      this.socket.destroy();
      this.socket = null;
    }
  }

  startNext() {
    this.current = this.queue.shift() || null;
    if (!this.current) {
      if (this.socket) {
        this.socket.unref();
      }
      return;
    }
    this.buf = null;
    this.res = null;
    this.current.reused = this.socket !== null;
    if (!this.socket) {
      this.connect();
    }
    this.socket.ref();
    this.socket.write(this.current.data);
  }

  connect() {
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    socket.on('data', (chunk) => {
      if (this.socket === socket) {
        this.onData(chunk);
      }
    });
    socket.on('error', () => {}); // 'close' follows and carries the failure
    socket.on('close', (hadError) => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      const cur = this.current;
      if (!cur) {
        return;
      }
      if (this.res && this.res.untilClose) {
        this.finish(this.buf ? this.buf.toString('utf8') : '');
        return;
      }
      // A kept-alive socket the server closed before answering: try once on a new one.
      if (cur.reused && !cur.sawBytes && !cur.retried) {
        cur.retried = true;
        this.queue.unshift(cur);
        this.startNext();
        return;
      }
      this.current = null;
      cur.reject(new Error(`Runtime API connection closed${hadError ? ' with an error' : ''}`));
      this.startNext();
    });
  }

  onData(chunk) {
    const cur = this.current;
    if (!cur) {
      return; // unsolicited bytes on an idle connection: ignore
    }
    cur.sawBytes = true;
    this.buf = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    try {
      this.parse();
    } catch (err) {
      this.current = null;
      this.close();
      cur.reject(err);
      this.startNext();
    }
  }

  parse() {
    if (!this.res) {
      const end = this.buf.indexOf(CRLFCRLF);
      if (end < 0) {
        return;
      }
      const lines = this.buf.toString('utf8', 0, end).split('\r\n');
      this.buf = this.buf.subarray(end + 4);
      const status = Number(lines[0].split(' ', 2)[1]);
      if (!/^HTTP\/1\.\d /.test(lines[0]) || !(status >= 100)) {
        throw new Error(`bad Runtime API status line ${JSON.stringify(lines[0].slice(0, 100))}`);
      }
      const headers = {};
      for (let i = 1; i < lines.length; i++) {
        const colon = lines[i].indexOf(':');
        if (colon > 0) {
          headers[lines[i].slice(0, colon).trim().toLowerCase()] = lines[i].slice(colon + 1).trim();
        }
      }
      if (status < 200) {
        return this.parse(); // 1xx: the real response follows
      }
      const res = { status, headers, chunked: false, length: 0, untilClose: false, chunks: [] };
      if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        res.chunked = true;
      } else if (headers['content-length'] !== undefined) {
        res.length = Number(headers['content-length']);
      } else if (status !== 204 && status !== 304) {
        res.untilClose = true;
      }
      res.close = /close/i.test(headers.connection || '') || res.untilClose;
      this.res = res;
    }
    const res = this.res;
    if (res.untilClose) {
      return; // finished by 'close'
    }
    if (!res.chunked) {
      if (this.buf.length < res.length) {
        return;
      }
      this.finish(this.buf.toString('utf8', 0, res.length));
      return;
    }
    for (;;) {
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) {
        return;
      }
      const size = parseInt(this.buf.toString('latin1', 0, eol), 16);
      if (Number.isNaN(size)) {
        throw new Error('bad chunk size from the Runtime API');
      }
      if (size === 0) {
        const end = this.buf.indexOf(CRLFCRLF, eol - 2 < 0 ? 0 : eol - 2);
        if (end < 0) {
          return; // trailers not complete yet
        }
        this.finish(Buffer.concat(res.chunks).toString('utf8'));
        return;
      }
      if (this.buf.length < eol + 2 + size + 2) {
        return;
      }
      res.chunks.push(this.buf.subarray(eol + 2, eol + 2 + size));
      this.buf = this.buf.subarray(eol + 2 + size + 2);
    }
  }

  finish(body) {
    const cur = this.current;
    const res = this.res;
    this.current = null;
    this.res = null;
    this.buf = null;
    if (res.close) {
      this.close();
    }
    cur.resolve({ status: res.status, headers: res.headers, body });
    this.startNext();
  }
}
