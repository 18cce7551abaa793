// Flint's Node.js runtime interface client.
//
// Runs a Lambda handler against the Runtime API (2018-06-01) at $AWS_LAMBDA_RUNTIME_API and
// behaves for user code like AWS's aws-lambda-nodejs-runtime-interface-client: handler
// resolution (CommonJS and ES modules), async and callback handlers, the context object, error
// shapes and the console log format. No dependencies beyond Node's standard library.
//
// Started as: node /var/runtime/nodejs/index.mjs, with _HANDLER, LAMBDA_TASK_ROOT and the usual
// AWS_LAMBDA_* variables set by the platform.

import { loadHandler } from './loader.mjs';
import { RuntimeClient } from './client.mjs';
import { UnhandledPromiseRejection, NodeJsExit, intoError } from './errors.mjs';
import { patchConsole, setRequestId, logError } from './logging.mjs';
import { closeSync, readSync, writeSync } from 'node:fs';
import Module from 'node:module';
import net from 'node:net';
import util from 'node:util';
import { fileURLToPath } from 'node:url';

await bind();
patchConsole();

const client = new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API);

// The function's data in every context object; process.env reads are slow, so read them once.
const functionData = Object.freeze({
  functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
  logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
});

// What to do with an error nobody caught. Until the first invoke it fails init; afterwards it
// fails the current invocation. Either way the process then exits, as on Lambda.
const errorCallbacks = {
  uncaughtException: (error) => client.postInitError(error, () => process.exit(129)),
  unhandledRejection: (error) => client.postInitError(error, () => process.exit(128)),
};

process.on('uncaughtException', (error) => {
  logError('Uncaught Exception', error);
  errorCallbacks.uncaughtException(error);
});

process.on('unhandledRejection', (reason, promise) => {
  const error = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', error);
  errorCallbacks.unhandledRejection(error);
});

// The 'beforeExit' hook fires when the event loop has nothing left to do. Callback handlers
// that wait for an empty event loop post their response from here.
let beforeExitListener = () => {};
process.on('beforeExit', () => beforeExitListener());

// Exit cleanly on SIGTERM unless user code has its own listener.
process.on('SIGTERM', () => {
  if (process.listenerCount('SIGTERM') === 1) {
    process.exit(0);
  }
});

let handler;
try {
  handler = await loadHandler(
    process.env.LAMBDA_TASK_ROOT || process.cwd(),
    process.env._HANDLER || '',
  );
} catch (error) {
  logError('Uncaught Exception', error);
  client.postInitError(error, () => process.exit(129));
}

if (handler !== undefined) {
  const isAsync = handler.constructor?.name === 'AsyncFunction';
  scheduleIteration();

  function scheduleIteration() {
    setImmediate(() => {
      handleOnce().catch((err) => {
        console.log(`Unexpected Top Level Error: ${err}`);
        errorCallbacks.uncaughtException(intoError(err));
      });
    });
  }

  async function handleOnce() {
    const { headers, body } = await client.next();
    const requestId = headers['lambda-runtime-aws-request-id'];
    setRequestId(requestId);

    const [callback, context, markCompleted] = buildCallbackContext(requestId);
    try {
      errorCallbacks.uncaughtException = (error) =>
        client.postInvocationError(error, requestId, () => process.exit(129), true);
      errorCallbacks.unhandledRejection = (error) =>
        client.postInvocationError(error, requestId, () => process.exit(128), true);

      // If the event loop empties before the handler reports: a promise that never settles
      // fails the invoke, a callback never called succeeds with null.
      beforeExitListener = () => {
        markCompleted();
        if (isAsync) {
          const error = new NodeJsExit();
          logError('Invoke Error', error);
          client.postInvocationError(error, requestId, scheduleIteration);
        } else {
          client.postInvocationResponse(null, requestId, scheduleIteration);
        }
      };

      attachEnvironmentData(context, headers);
      const result = handler(JSON.parse(body), context, callback);
      if (result && typeof result.then === 'function') {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  // buildCallbackContext returns the handler's callback, the part of the context holding
  // succeed/fail/done and callbackWaitsForEmptyEventLoop, and a function that marks the
  // invocation as reported. Only the first call to any of callback/succeed/fail/done counts.
  function buildCallbackContext(requestId) {
    const postError = (err) => {
      logError('Invoke Error', err);
      client.postInvocationError(err, requestId, scheduleIteration);
    };

    let completed = false;
    const complete = (result) => {
      if (completed) {
        console.error(
          'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
        );
        return;
      }
      completed = true;
      client.postInvocationResponse(result, requestId, scheduleIteration);
    };

    let waitForEmptyEventLoop = true;
    const callback = (err, result) => {
      beforeExitListener = () => {};
      if (err !== undefined && err !== null) {
        postError(err);
      } else if (!waitForEmptyEventLoop) {
        complete(result);
      } else {
        beforeExitListener = () => setImmediate(() => complete(result));
      }
    };
    const done = (err, result) => {
      beforeExitListener = () => {};
      if (err !== undefined && err !== null) {
        postError(err);
      } else {
        complete(result);
      }
    };

    let finished = false;
    const once = (fn) =>
      function (...args) {
        if (!finished) {
          fn(...args);
          finished = true;
        }
      };
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      succeed: once((result) => done(null, result)),
      fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
      done: once(done),
    };
    return [once(callback), context, () => (completed = true)];
  }
}

// bind: a pre-initialized runtime, started before its function was known, waits here for it.
// Flint starts such runtimes with the runtime's own variables only, and _FLINT_BIND_FD naming a
// socket on which the runtime says it waits (one byte) and, once the function's code and layers
// are mounted and its limits apply, the function's whole environment arrives: JSON
// {"cwd": DIR, "env": ["KEY=VALUE", ...]}. From then on everything is as if node had started
// with that environment: process.env, NODE_PATH's module paths, the working directory, the time
// zone (node resets it when TZ is set). Variables only node's start reads (NODE_OPTIONS, LD_*)
// are never bound this way: Flint starts such functions' runtimes afresh.
async function bind() {
  const fd = process.env._FLINT_BIND_FD;
  if (fd === undefined) {
    return;
  }
  try {
    await warm();
  } catch (_) {
    // Only slower: what warm runs is compiled on first use instead.
  }
  try {
    writeSync(Number(fd), 'w'); // waiting: Flint starts the next spare once this one waits
  } catch (_) {
    // Flint went away; the read below says so.
  }
  const data = readBinding(Number(fd)); // blocks until the function arrives
  closeSync(Number(fd));
  if (data.length === 0) {
    process.exit(0); // the spare was discarded
  }
  const { cwd, env } = JSON.parse(data);
  const next = new Map();
  for (const kv of env) {
    const at = kv.indexOf('=');
    next.set(kv.slice(0, at), kv.slice(at + 1));
  }
  // Only what changes: node resets its time zone whenever TZ is set or deleted, and without TZ
  // ICU may look for /etc/localtime's zone by reading every file under /usr/share/zoneinfo.
  for (const k of Object.keys(process.env)) {
    if (!next.has(k)) {
      delete process.env[k];
    }
  }
  for (const [k, v] of next) {
    if (process.env[k] !== v) {
      process.env[k] = v;
    }
  }
  process.chdir(cwd);
  Module._initPaths();
}

// readBinding reads the bind socket to its end. Flint may close its end with our waiting byte
// unread (it took the spare before reading it): the socket then reports a reset once the
// binding, written whole before the close, has been read, and that is its end too.
function readBinding(fd) {
  const chunks = [];
  const buf = Buffer.allocUnsafe(64 << 10);
  for (;;) {
    let n;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      if (err.code === 'ECONNRESET') {
        break;
      }
      throw err;
    }
    if (n === 0) {
      break;
    }
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

// warm runs once, while a spare waits, what every cold start runs first (a Runtime API
// exchange over node:net, loading a module both ways), so that V8 has compiled it before the function
// arrives: about 5 ms of a bound runtime's start here. The exchange is with a server of its own
// on the environment's loopback, closed before the function arrives.
async function warm() {
  const server = net.createServer((s) =>
    s.on('data', (d) =>
      s.write(
        d.toString('latin1', 0, 4) === 'GET '
          ? 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nLambda-Runtime-Aws-Request-Id: warm\r\n\r\n{}'
          : 'HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"status":"OK"}\n',
      ),
    ),
  );
  await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  try {
    const client = new RuntimeClient(`127.0.0.1:${server.address().port}`);
    const { body } = await client.next();
    // What an invoke then does first: the event parsed, a log line formatted (not written), a
    // response posted.
    const event = JSON.parse(body);
    const line = `${new Date().toISOString()}\twarm\tINFO\t${util.format('%s: %o', 'warm', { event, a: [1, 'b', null] })}`;
    Buffer.from(line.replace(/\n/g, '\r') + '\n', 'utf8');
    await new Promise((resolve) => client.postInvocationResponse({ message: line, event }, 'warm', resolve));
    client.conn.close();
  } finally {
    server.close();
  }
  // The two ways a handler's module is loaded: through the handler loader as an ES module
  // (which also compiles the loader's own code) and by require.
  await loadHandler(fileURLToPath(new URL('.', import.meta.url)), 'warm.handler');
  Module.createRequire(import.meta.url)('./warm.cjs');
}

// attachEnvironmentData adds the invocation's data to the context object.
function attachEnvironmentData(context, headers) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) {
    process.env._X_AMZN_TRACE_ID = trace;
  } else {
    delete process.env._X_AMZN_TRACE_ID;
  }
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(context, functionData, {
    clientContext: parseJSONHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJSONHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: () => deadline - Date.now(),
  });
}

function parseJSONHeader(value, name) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}
