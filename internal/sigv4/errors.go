package sigv4

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flint-run/flint/internal/apierr"
)

// The error codes Verify returns, as AWS's front end names them in X-Amzn-ErrorType. Callers
// branch on Error.Code; the messages are AWS's and are not meant to be matched.
const (
	// CodeMissingAuthenticationToken: no Authorization header, no presigned query, or an
	// Authorization header of another scheme (not AWS4-*).
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	// CodeIncompleteSignature: a SigV4 Authorization header or presigned query that cannot be
	// parsed (missing parameters, a bad date, an unsupported algorithm, a malformed credential).
	CodeIncompleteSignature = "IncompleteSignatureException"
	// CodeInvalidSignature: the signature does not match, is outside the clock-skew window, the
	// credential scope is wrong, or host is not signed.
	CodeInvalidSignature = "InvalidSignatureException"
	// CodeUnrecognizedClient: the access key ID is unknown, or a session token was sent.
	CodeUnrecognizedClient = "UnrecognizedClientException"
	// CodeAccessDenied: a presigned URL past its X-Amz-Expires (S3's code for this case).
	CodeAccessDenied = "AccessDenied"
	// CodeAuthorizationQueryParametersError: an unusable X-Amz-Expires (S3's code).
	CodeAuthorizationQueryParametersError = "AuthorizationQueryParametersError"
	// CodeThrottling: a failed attempt from an address or with an access key that has failed
	// too often lately, or a body the server has no room to hold while its signature is
	// unchecked.
	CodeThrottling = "ThrottlingException"
)

// Error is an authentication failure with the code, message and HTTP status AWS uses for it.
type Error struct {
	Code    string
	Message string
	Status  int
	// RetryAfter is set on throttling: whole seconds until the caller's failures are forgotten.
	RetryAfter int
	// Detail is for operator logs and is never sent to the client: for a signature mismatch it
	// holds the canonical request and string to sign Flint computed, which is what a client
	// author needs to find an escaping difference.
	Detail string
	// limitReached marks the failure that put an address or key over its limit: the one
	// throttled failure worth an operator's attention (the rest are not logged one by one).
	limitReached bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// APIError converts e to the catalogue type that apierr.Write renders, so auth failures reach
// the wire through the same function as every other API error.
func (e *Error) APIError() *apierr.Error {
	return &apierr.Error{Code: e.Code, Status: e.Status, Message: e.Message, RetryAfter: e.RetryAfter}
}

// As lets errors.As (and so apierr.As) find an *apierr.Error in a verification failure, so a
// caller that hands Verify's error to the API's error path renders it as AWS does rather than
// as a ServiceException.
func (e *Error) As(target any) bool {
	if t, ok := target.(**apierr.Error); ok {
		*t = e.APIError()
		return true
	}
	return false
}

func newError(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

// Messages are AWS's own wording, gathered from its responses as quoted in public reports; see
// the package documentation for the sources.
const (
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken  = "The security token included in the request is invalid."
	msgHostNotSigned = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
)

func errMissingToken() *Error {
	return newError(CodeMissingAuthenticationToken, http.StatusForbidden, "Missing Authentication Token")
}

func errIncomplete(msg string) *Error {
	return newError(CodeIncompleteSignature, http.StatusForbidden, msg)
}

func errInvalid(msg string) *Error {
	return newError(CodeInvalidSignature, http.StatusForbidden, msg)
}

func errSignatureMismatch() *Error { return errInvalid(msgSignatureMismatch) }

func errUnrecognizedClient() *Error {
	return newError(CodeUnrecognizedClient, http.StatusForbidden, msgInvalidToken)
}

func errNoEqualSign(param, header string) *Error {
	return errIncomplete(fmt.Sprintf("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", param, header))
}

func errBadDate(got string) *Error {
	return errIncomplete(fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", got))
}

func errUnsupportedAlgorithm(alg string) *Error {
	return errIncomplete(fmt.Sprintf("Unsupported AWS 'algorithm': '%s' (only AWS4-HMAC-SHA256 for now). ", alg))
}

func errCredentialElements(cred string) *Error {
	return errIncomplete(fmt.Sprintf("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", cred))
}

func errExpired(reqTime, now time.Time, skew time.Duration) *Error {
	return errInvalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
		reqTime.Format(timeFormat), now.Add(-skew).Format(timeFormat), now.Format(timeFormat), minutes(skew)))
}

func errNotYetCurrent(reqTime, now time.Time, skew time.Duration) *Error {
	return errInvalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
		reqTime.Format(timeFormat), now.Add(skew).Format(timeFormat), now.Format(timeFormat), minutes(skew)))
}

// minutes renders the skew window as AWS does ("5 min.").
func minutes(d time.Duration) string {
	return strconv.FormatFloat(d.Minutes(), 'f', -1, 64) + " min."
}

func errPresignExpired() *Error {
	return newError(CodeAccessDenied, http.StatusForbidden, "Request has expired")
}

func errExpires(msg string) *Error {
	return newError(CodeAuthorizationQueryParametersError, http.StatusBadRequest, msg)
}

func errThrottled(wait time.Duration) *Error {
	e := newError(CodeThrottling, http.StatusTooManyRequests, "Rate exceeded")
	e.RetryAfter = max(1, int((wait+time.Second-1)/time.Second))
	return e
}

// missingParams renders the IncompleteSignatureException for an Authorization header that
// lacks parameters: every missing one is named, then the header as received.
func missingParams(missing []string, noDate bool, header string) *Error {
	var b strings.Builder
	for _, p := range missing {
		fmt.Fprintf(&b, "Authorization header requires '%s' parameter. ", p)
	}
	if noDate {
		b.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
	}
	b.WriteString("Authorization=")
	b.WriteString(header)
	return errIncomplete(b.String())
}

// missingQueryParams is missingParams for a presigned query string.
func missingQueryParams(missing []string) *Error {
	var b strings.Builder
	for _, p := range missing {
		fmt.Fprintf(&b, "AWS query-string parameters must include '%s'. ", p)
	}
	b.WriteString("Re-examine the query-string parameters.")
	return errIncomplete(b.String())
}
