// Handler loading: "path/to/file.export[.nested]" relative to LAMBDA_TASK_ROOT, resolved the
// way AWS's Node runtime does it.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import {
  HandlerNotFound,
  ImportModuleError,
  MalformedHandlerName,
  UserCodeSyntaxError,
} from './errors.mjs';

const require = createRequire(import.meta.url);

// loadHandler returns the handler function or throws a Runtime.* error (or the error user code
// threw while loading).
export async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes('..')) {
    throw new MalformedHandlerName(
      `'${fullHandler}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  // "dir/sub/file.a.b" -> module root "dir/sub/", module "file", export path "a.b".
  const base = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(base));
  const match = base.match(/^([^.]*)\.(.*)$/);
  if (!match) {
    throw new MalformedHandlerName('Bad handler');
  }
  const [, moduleName, exportPath] = match;

  let userApp;
  try {
    userApp = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new UserCodeSyntaxError(e);
    }
    if (e?.code === 'MODULE_NOT_FOUND') {
      throw new ImportModuleError(e);
    }
    throw e;
  }

  const fn = exportPath.split('.').reduce((obj, key) => obj && obj[key], userApp);
  if (!fn) {
    throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  }
  if (typeof fn !== 'function') {
    throw new HandlerNotFound(`${fullHandler} is not a function`);
  }
  return fn;
}

// loadModule tries, in order: the extensionless file (require), file.js (require, or import if
// the nearest package.json says "type": "module"), file.mjs (import), file.cjs (require), and
// finally Node's own resolution of the bare name from the app root.
async function loadModule(appRoot, moduleRoot, moduleName) {
  const file = path.resolve(appRoot, moduleRoot, moduleName);

  const extensionless = tryRequire(file);
  if (extensionless) {
    return extensionless;
  }
  const isESM = packageTypeIsModule(path.dirname(file));
  if (!isESM) {
    const cjs = tryRequire(file + '.js');
    if (cjs) {
      return cjs;
    }
  }
  const loaded =
    (isESM && (await tryImport(file + '.js'))) ||
    (await tryImport(file + '.mjs')) ||
    tryRequire(file + '.cjs');
  if (loaded) {
    return loaded;
  }
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

function tryRequire(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function tryImport(file) {
  return fs.existsSync(file) ? await importReadingSync(file) : undefined;
}

// importReadingSync imports file as an ES module, its own imports included, with Node's loader
// reading their sources synchronously. The loader reads each module with fs.promises.readFile:
// open, stat, read and close, each a trip to libuv's thread pool and back. After the idle wait of
// a pre-initialized runtime every such trip wakes a sleeping thread, so a handler of 41 small
// modules took 9.3 ms to import here and takes 5.7 ms reading synchronously (a hello module:
// 1.1 → 0.6 ms). Only the loader's calls (a file URL, no options) are served synchronously, with
// what the asynchronous read would have returned, and only until the import settles; a
// replacement user code makes meanwhile (a mock file system) is left in place.
async function importReadingSync(file) {
  const promises = fs.promises;
  const readFile = promises.readFile;
  const readSync = function (path, options) {
    if (options === undefined && path instanceof URL) {
      try {
        return Promise.resolve(fs.readFileSync(path));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return readFile.apply(this, arguments);
  };
  promises.readFile = readSync;
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    if (promises.readFile === readSync) {
      promises.readFile = readFile;
    }
  }
}

// packageTypeIsModule walks up from dir to the nearest package.json (stopping at node_modules
// or the root) and reports whether it declares "type": "module".
function packageTypeIsModule(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) {
      return false;
    }
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(
          `${pj} cannot be read, it will be ignored for ES module detection purposes.`,
          e,
        );
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      return false;
    }
    dir = parent;
  }
}
