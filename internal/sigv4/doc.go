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
//   - the payload hash: X-Amz-Content-Sha256 when sent (UNSIGNED-PAYLOAD included), otherwise
//     the SHA-256 of the body, or UNSIGNED-PAYLOAD for a presigned URL. A declared hex hash
//     must also be the body's, or the request fails after its signature checks out.
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
//	X-Amz-Content-Sha256 not the body's         400 XAmzContentSHA256Mismatch (S3's)
//	too many failures from one address          429 ThrottlingException "Rate exceeded", with Retry-After
//
// # Defaults and why
//
//   - MaxSkew 5 minutes: Lambda's window ("Signature expired: … (… - 5 min.)"). It bounds how
//     long a captured request can be replayed.
//   - FailureLimit 20 per FailureWindow of 10 seconds per client address (IPv6 by /64), then
//     ThrottlingException until the window ends: generous enough that a misconfigured client
//     sees its real error many times, tight enough that guessing keys or flooding the logs from
//     one address is slow. At most 10000 addresses are remembered; the limiter prunes itself on
//     the calls it receives and has no goroutine. The address is the TCP peer: behind a reverse
//     proxy every client shares the proxy's budget.
//   - Middleware MaxBody 70 MiB: CreateFunction with a base64 zip is Lambda's largest request.
//
// # Cost
//
// Verify runs on every request, the warm Invoke path included. Derived signing keys are cached
// (per secret, date, region and service; bounded; only after a signature verified with them),
// the canonical request is built in a pooled buffer, and HMAC uses pads computed once per key,
// so a typical Invoke verifies without allocating (BenchmarkVerify). The buffer pool
// is the package's only global mutable state.
package sigv4
