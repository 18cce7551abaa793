// Error types raised by the runtime and the shapes errors take on the wire and in the log,
// as AWS's Node runtime produces them.

import util from 'node:util';

export class ImportModuleError extends Error {}
export class HandlerNotFound extends Error {}
export class MalformedHandlerName extends Error {}
export class UserCodeSyntaxError extends Error {}
export class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
export class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}

for (const cls of [
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  UnhandledPromiseRejection,
  NodeJsExit,
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
}

function looksLikeError(obj) {
  return (
    obj &&
    typeof obj.name === 'string' &&
    obj.name &&
    typeof obj.message === 'string' &&
    obj.message &&
    typeof obj.stack === 'string' &&
    obj.stack
  );
}

export function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// toRapidResponse is the body posted to /error and /init/error.
export function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: error.stack.split('\n'),
      };
    }
    return {
      errorType: typeof error,
      errorMessage: error.toString(),
      trace: [],
    };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// toFormatted renders an error for the log: a tab, then JSON including the usually
// non-enumerable name, message, code and stack.
export function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

function withEnumerableProperties(error) {
  if (!(error instanceof Error)) {
    return error;
  }
  const ret = Object.assign(
    { errorType: error.name, errorMessage: error.message, code: error.code },
    error,
  );
  if (typeof error.stack === 'string') {
    ret.stack = error.stack.split('\n');
  }
  return ret;
}
