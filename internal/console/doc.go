// Package console serves Flint's web console at /console/: a functions list with each
// function's last hour (invocations, errors, p50/p99 duration, cold starts), a function page
// (configuration, versions, aliases with their weights, charts, recent invocations, an Invoke
// form, the live log tail), and the async queue, event source mappings and secrets (names
// only). The pages are plain HTML, CSS and JavaScript modules embedded in the binary; they draw
// themselves from the JSON endpoints under /console/api/, polled every two seconds, and follow
// logs as server-sent events.
//
// Its figures come from Stats, an in-memory aggregator the worker feeds as an Observer
// (bounded: see MaxFunctions, Window, RecentInvocations); functions, versions and aliases from
// the control plane; invocations go through invoke.Service as the Invoke API's do; logs come
// from the log store (logs.Store.Follow), whose records also give each invocation's request ID.
//
// Who may see it: in local-development mode (no access keys, loopback) anyone who can reach the
// loopback address by a loopback name; otherwise only a browser signed in with an access key
// (a session cookie: random 256-bit ID, HttpOnly, SameSite=Strict, Secure over TLS, 12 h).
// Every POST must come from the console's own origin and, with a session, carry the session's
// CSRF token. Nothing but the sign-in page is served without a session. Failed sign-ins are
// limited per client address (IPv6: per /64) by a token bucket (limit.go): past it, a failure
// gets 429 with Retry-After; a right secret is always accepted, as the API's signatures are.
//
// The package must not reach environments or the store directly (it reads through the control
// plane and invokes through the invocation service), must not keep unbounded state, and adds
// nothing to the invoke path but Stats.Invoked, called off it by the worker's record writer.
package console
