package sns

import (
	"fmt"
	"net/http"

	"github.com/flint-run/flint/internal/awsquery"
)

// Error is an SNS API error, with AWS's query-protocol codes (the sns SDK's error codes).
type Error = awsquery.Error

func newError(code string, status int, format string, args ...any) *Error {
	return &Error{Type: code, Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

func errNotFound(format string, args ...any) *Error {
	return newError("NotFound", http.StatusNotFound, format, args...)
}

func errTopicNotFound() *Error { return errNotFound("Topic does not exist") }

// errInvalid is InvalidParameter with AWS's "Invalid parameter: WHAT" message.
func errInvalid(what string) *Error {
	return newError("InvalidParameter", http.StatusBadRequest, "Invalid parameter: %s", what)
}

func errInvalidValue(format string, args ...any) *Error {
	return newError("InvalidParameterValue", http.StatusBadRequest, format, args...)
}

func errTooManyEntries() *Error {
	return newError("TooManyEntriesInBatchRequest", http.StatusBadRequest, "The batch request contains more entries than permissible.")
}

func errEmptyBatch() *Error {
	return newError("EmptyBatchRequest", http.StatusBadRequest, "The batch request doesn't contain any entries.")
}

func errIDsNotDistinct() *Error {
	return newError("BatchEntryIdsNotDistinct", http.StatusBadRequest, "Two or more batch entries in the request have the same Id.")
}

func errInvalidBatchID() *Error {
	return newError("InvalidBatchEntryId", http.StatusBadRequest, "The Id of a batch entry in a batch request doesn't abide by the specification.")
}

func errUnknownOperation(op string) *Error {
	return newError("InvalidAction", http.StatusBadRequest, "The action %s is not valid for this web service.", op)
}

func errMalformed(format string, args ...any) *Error {
	return newError("MalformedQueryString", http.StatusBadRequest, format, args...)
}

// errInternal hides an internal failure; the cause is logged, never sent.
func errInternal(cause error) *Error {
	return &Error{Type: "InternalError", Code: "InternalError", Status: http.StatusInternalServerError,
		Message: "Internal Error", Cause: cause}
}

func asError(err error) *Error {
	if e := awsquery.As(err); e != nil {
		return e
	}
	return errInternal(err)
}
