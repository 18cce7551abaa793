// Console patching: every console method writes one line to stdout in AWS's text format,
// `<ISO time>\t<request id>\t<LEVEL>\t<message>`, or with AWS_LAMBDA_LOG_FORMAT=JSON as one
// JSON object (timestamp, level, requestId, message), with newlines inside the message turned
// into \r so that one call stays one line. Writes are synchronous so that everything logged
// during an invocation is out before its response is posted.

import fs from 'node:fs';
import util from 'node:util';
import { intoError, toFormatted } from './errors.mjs';

// Shared with AWS's runtime so libraries that read it keep working.
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');

export function setRequestId(id) {
  globalThis[REQUEST_ID] = id;
}

const LEVELS = Object.freeze({
  TRACE: { name: 'TRACE', priority: 1 },
  DEBUG: { name: 'DEBUG', priority: 2 },
  INFO: { name: 'INFO', priority: 3 },
  WARN: { name: 'WARN', priority: 4 },
  ERROR: { name: 'ERROR', priority: 5 },
  FATAL: { name: 'FATAL', priority: 6 },
});

const pause = new Int32Array(new SharedArrayBuffer(4));

// writeStdout writes all of text to fd 1, waiting out EAGAIN on a non-blocking pipe. If
// stdout is gone the line is dropped: logging must never fail the function.
function writeStdout(text) {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (err) {
      if (err.code !== 'EAGAIN') {
        return;
      }
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function logText(level, message, ...params) {
  const line = `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level.name}\t${util.format(message, ...params)}`;
  writeStdout(line.replace(/\n/g, '\r') + '\n');
}

// errorFields is an Error as the JSON format writes it: its type, message and stack lines, then
// its own enumerable properties.
function errorFields(err) {
  return Object.assign(
    {
      errorType: err?.constructor?.name ?? 'UnknownError',
      errorMessage: err.message,
      stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : err.stack,
    },
    err,
  );
}

const errorReplacer = (_k, v) => (v instanceof Error ? errorFields(v) : v);

// logJSON writes one record in Lambda's JSON format: a lone argument is the message as it is
// (an object stays an object); several are formatted as console.log does, with the first
// Error's fields beside.
function logJSON(level, ...params) {
  const record = { timestamp: new Date().toISOString(), level: level.name, requestId: globalThis[REQUEST_ID] };
  let line;
  if (params.length === 1) {
    record.message = params[0];
    try {
      line = JSON.stringify(record, errorReplacer);
    } catch (_) {
      record.message = util.format(params[0]);
      line = JSON.stringify(record);
    }
  } else {
    record.message = util.format(...params);
    const err = params.find((p) => p instanceof Error);
    if (err) {
      const { errorType, errorMessage, stackTrace } = errorFields(err);
      Object.assign(record, { errorType, errorMessage, stackTrace });
    }
    line = JSON.stringify(record);
  }
  writeStdout(line.replace(/\n/g, '\r') + '\n');
}

let log = logText;

// logError logs an error the way the runtime reports it: `<label> \t{json}` at ERROR, or in
// the JSON format the error itself as the record's message.
export function logError(label, err) {
  if (log === logJSON) {
    log(LEVELS.ERROR, intoError(err));
  } else {
    log(LEVELS.ERROR, label, toFormatted(intoError(err)));
  }
}

export function patchConsole() {
  log = process.env.AWS_LAMBDA_LOG_FORMAT?.toUpperCase() === 'JSON' ? logJSON : logText;
  const min = LEVELS[process.env.AWS_LAMBDA_LOG_LEVEL?.toUpperCase()] ?? LEVELS.TRACE;
  const nop = () => {};
  const method = (level) =>
    level.priority >= min.priority ? (message, ...params) => log(level, message, ...params) : nop;
  console.trace = method(LEVELS.TRACE);
  console.debug = method(LEVELS.DEBUG);
  console.info = method(LEVELS.INFO);
  console.log = console.info;
  console.warn = method(LEVELS.WARN);
  console.error = method(LEVELS.ERROR);
  console.fatal = (message, ...params) => log(LEVELS.FATAL, message, ...params);
}
