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
