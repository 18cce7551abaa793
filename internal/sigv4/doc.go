// Package sigv4 authenticates Flint's AWS-compatible HTTP APIs with AWS Signature Version 4,
// the way AWS's own front end does, so that the AWS SDKs and CLI work unchanged against Flint
// and get the same error codes they get from AWS. It owns the access-key store (Keys) and the
// verification (Verifier, and Middleware to wrap a handler). It does not authorise: an Identity
// says who signed, and what that caller may do is the caller's business. It does not decide
// which routes need a signature (function URLs with AuthType NONE, a local development mode):
// the server wires the Middleware where it applies.
//
// # What is verified
//
// Both forms AWS accepts: the Authorization header (AWS4-HMAC-SHA256 Credential=…,
// SignedHeaders=…, Signature=…, with X-Amz-Date or else Date), and presigned URLs
// (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Signature and
// optional X-Amz-Expires). The canonical request is built as the AWS SDKs build it, not only as
// the specification describes it, because the SDKs are what clients run:
//
//   - the path as sent on the wire, escaped a second time (every AWS service but S3 does this;
//     a function ARN in the path is sent as arn%3Aaws… and signed as arn%253Aaws…);
//   - the query parsed as url.ParseQuery parses it, every name and value escaped per RFC 3986,
//     sorted by name then value, without X-Amz-Signature in the presigned form;
//   - each signed header's values trimmed, runs of spaces collapsed, joined with commas; host
//     is the request's Host and must be signed, or a signature could be replayed at another
//     endpoint;
//   - the payload hash: the SHA-256 of the body, for both forms. Every API Flint serves or
//     plans (Lambda, Scheduler, Secrets Manager; CloudWatch Logs, SQS, SNS, Kinesis) is one
//     whose payload AWS signs: UNSIGNED-PAYLOAD is S3's (botocore uses it only for S3 and the
//     few operations modelled "v4-unsigned-body", none of these services'), so a request signed over it, or over any hash
//     that is not its body's, fails as a signature mismatch, as AWS's front end answers it,
//     and a signed body cannot be swapped. Presigned URLs are checked as botocore's
//     SigV4QueryAuth signs them for these services, over the body's hash (of the empty body for
//     a GET). X-Amz-Content-Sha256, when it holds a hash, is the client's claim of that hash,
//     which lets the Middleware check the signature before reading the body (below).
//
// The credential scope must end in aws4_request, carry the request's date, and name
// Config.Region and the service Config.Service expects when those are set. Signatures are
// compared in constant time. Session tokens (X-Amz-Security-Token) are refused with
// UnrecognizedClientException: Flint's keys are long-term keys and it issues no tokens, so a
// token is one it cannot honour, and ignoring it would accept a request AWS would refuse.
//
// # Errors
//
// Failures are *Error values with AWS's code, message and status, checked in the order AWS
// checks them (so a request with several faults gets the error AWS would give). Codes and
// messages come from AWS's responses as recorded in public reports and in emulators that were
// checked against AWS (dynalite's notes on DynamoDB's front end, scratchstack-aws-signature):
//
//	no signature, or another scheme             403 MissingAuthenticationTokenException "Missing Authentication Token"
//	malformed header or query parameters        403 IncompleteSignatureException (AWS's wording, naming what is wrong)
//	bad signature, skew, scope, host not signed 403 InvalidSignatureException
//	unknown access key, any session token       403 UnrecognizedClientException "The security token included in the request is invalid."
//	presigned URL past X-Amz-Expires            403 AccessDenied "Request has expired" (S3's: the service whose expiry this copies)
//	unusable X-Amz-Expires                      400 AuthorizationQueryParametersError (S3's)
//	failure by an address or key over its limit 429 ThrottlingException "Rate exceeded", with Retry-After
//	no room to hold an unauthenticated body     429 ThrottlingException "Rate exceeded", Retry-After 1
//
// # Defaults and why
//
//   - MaxSkew 5 minutes: Lambda's window ("Signature expired: … (… - 5 min.)"). It bounds how
//     long a captured request can be replayed.
//   - FailureLimit 20 per FailureWindow of 10 seconds, counted per client address (IPv6 by
//     /64) and per access key (ours only: made-up key IDs cost nothing to vary). Past it, the
//     address's or key's further failures are answered with ThrottlingException until the
//     window ends and are not logged one by one (one Warn when the limit is reached); a
//     correctly signed request is always served, so a client behind the same proxy or NAT as
//     a failing one, or sharing its key, is never locked out by it. Guessing a secret through
//     HMAC-SHA256 is hopeless anyway; what the limit buys is quiet logs and a back-off signal.
//     It adds no penalty on reading bodies: before they are read, a failing client's bodies
//     cannot be told from those of a correct one at the same address. At
//     most 10000 addresses and keys are remembered; the limiter prunes itself on the calls it
//     receives and has no goroutine. The address is the TCP peer: behind a reverse proxy every
//     client shares the proxy's count.
//   - Middleware MaxBody 70 MiB: CreateFunction with a base64 zip is Lambda's largest request.
//
// # Bodies before authentication
//
// A SigV4 signature covers the body's hash, and the AWS SDKs send Lambda's requests without
// X-Amz-Content-Sha256, so most bodies must be read and hashed before their signature can be
// checked. The Middleware checks everything the request line and headers allow first (an
// unsigned, malformed, expired or unknown-key request costs no body); a request with no body,
// or declaring its hash, has its signature checked before its body is read, and the body must
// then have the declared hash before the handler sees any of it. The bodies it must read
// first are held under bounds (MaxPendingBody 256 MiB across the server, MaxPendingBodyPerClient
// 70 MiB per address, room taken before a buffer of the declared length is allocated, waiting in
// arrival order up to MaxPendingWait 20 s, then ThrottlingException), and dropped as soon as
// their signature fails. Measured on a built server, 20 concurrent 60 MB bodies with a bad
// signature: before, 2.3 GB RSS held for minutes; after, about 2x the bytes admitted (the
// garbage collector's headroom) at the peak, back to the baseline when the burst ends, because
// the gate hands the memory of refused bodies back to the OS (debug.FreeOSMemory, at most once
// a second, once 64 MiB of them were refused and none is held).
//
// # Cost
//
// Verify runs on every request, the warm Invoke path included. Derived signing keys are cached
// (per secret, date, region and service; bounded; only after a signature verified with them),
// the canonical request is built in a pooled buffer, and HMAC uses pads computed once per key,
// so a typical Invoke verifies without allocating (BenchmarkVerify), and an uncontended pass
// through the body gate allocates nothing either (BenchmarkMiddleware). The buffer pool is the
// package's only global mutable state.
package sigv4
