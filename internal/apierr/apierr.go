// Package apierr is the one catalogue of AWS API errors Flint returns and the one place that
// renders them to the wire. It imports no other Flint package; callers build errors with the
// constructors here and hand them to Write.
package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an AWS API error: the code clients branch on (X-Amzn-ErrorType), its HTTP status and
// message. Reason and RetryAfter are set for throttles.
type Error struct {
	Code       string
	Status     int
	Message    string
	Reason     string
	RetryAfter int // seconds; 0 = no header
	// JSON11 renders the error as the AWS JSON 1.1 protocol does (Secrets Manager): the code in
	// the body's __type, instead of REST-JSON's Type (User or Service).
	JSON11 bool
	cause  error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.cause }

// Wrap records the internal cause (logged, never sent) behind an API error.
func (e *Error) Wrap(cause error) *Error { c := *e; c.cause = cause; return &c }

func newf(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// The catalogue. Status codes follow the Lambda service model.
func InvalidParameterValue(format string, args ...any) *Error {
	return newf("InvalidParameterValueException", http.StatusBadRequest, format, args...)
}
func InvalidRequestContent(format string, args ...any) *Error {
	return newf("InvalidRequestContentException", http.StatusBadRequest, format, args...)
}
func ResourceNotFound(format string, args ...any) *Error {
	return newf("ResourceNotFoundException", http.StatusNotFound, format, args...)
}
func ResourceConflict(format string, args ...any) *Error {
	return newf("ResourceConflictException", http.StatusConflict, format, args...)
}
func CodeSigningConfigNotFound(format string, args ...any) *Error {
	return newf("CodeSigningConfigNotFoundException", http.StatusNotFound, format, args...)
}
func CodeVerificationFailed(format string, args ...any) *Error {
	return newf("CodeVerificationFailedException", http.StatusBadRequest, format, args...)
}
func ProvisionedConcurrencyConfigNotFound(format string, args ...any) *Error {
	return newf("ProvisionedConcurrencyConfigNotFoundException", http.StatusNotFound, format, args...)
}

// Conflict is the Scheduler API's ConflictException.
func Conflict(format string, args ...any) *Error {
	return newf("ConflictException", http.StatusConflict, format, args...)
}
func PolicyLengthExceeded(format string, args ...any) *Error {
	return newf("PolicyLengthExceededException", http.StatusBadRequest, format, args...)
}
func PreconditionFailed(format string, args ...any) *Error {
	return newf("PreconditionFailedException", http.StatusPreconditionFailed, format, args...)
}
func RequestTooLarge(format string, args ...any) *Error {
	return newf("RequestTooLargeException", http.StatusRequestEntityTooLarge, format, args...)
}
func RequestEntityTooLarge(format string, args ...any) *Error {
	return newf("RequestEntityTooLargeException", http.StatusRequestEntityTooLarge, format, args...)
}
func UnsupportedMediaType(format string, args ...any) *Error {
	return newf("UnsupportedMediaTypeException", http.StatusUnsupportedMediaType, format, args...)
}
func Validation(format string, args ...any) *Error {
	return newf("ValidationException", http.StatusBadRequest, format, args...)
}
func TooManyRequests(reason string, retryAfter int) *Error {
	e := newf("TooManyRequestsException", http.StatusTooManyRequests, "Rate Exceeded.")
	e.Reason, e.RetryAfter = reason, retryAfter
	return e
}
func ServiceUnavailable(format string, args ...any) *Error {
	return newf("ServiceException", http.StatusServiceUnavailable, format, args...)
}

// ServiceError is an internal failure (ServiceException, 500) the caller is told about, where
// Service keeps the cause to the log.
func ServiceError(format string, args ...any) *Error {
	return newf("ServiceException", http.StatusInternalServerError, format, args...)
}

// AccessDenied is IAM's refusal (403). An empty message is rendered as null, as AWS sends it
// where it gives no reason.
func AccessDenied(format string, args ...any) *Error {
	return newf("AccessDeniedException", http.StatusForbidden, format, args...)
}

func UnknownOperation(method, path string) *Error {
	return newf("UnknownOperationException", http.StatusNotFound, "Unknown operation %s %s", method, path)
}

// Service is the catch-all for internal failures; the cause is logged, not leaked.
func Service(cause error) *Error {
	e := newf("ServiceException", http.StatusInternalServerError, "An internal error occurred.")
	e.cause = cause
	return e
}

// As returns the API error inside err, or a ServiceException wrapping it.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Service(err)
}

type body struct {
	Type         string  `json:"Type,omitempty"`
	Code         string  `json:"__type,omitempty"`
	Message      *string `json:"Message"`
	LowerMessage *string `json:"message"`
	Reason       string  `json:"Reason,omitempty"`
}

// Write renders err as AWS does: X-Amzn-ErrorType, the status, and a JSON body carrying both
// message casings (botocore and the Go SDK each read a different one).
func Write(w http.ResponseWriter, err *Error) {
	h := w.Header()
	h.Set("X-Amzn-ErrorType", err.Code)
	h.Set("Content-Type", "application/json")
	if err.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(err.RetryAfter))
	}
	out := body{Reason: err.Reason}
	if err.Message != "" {
		out.Message, out.LowerMessage = &err.Message, &err.Message
	}
	switch {
	case err.JSON11:
		h.Set("Content-Type", "application/x-amz-json-1.1")
		out.Code = err.Code
	case err.Status >= 500:
		out.Type = "Service"
	default:
		out.Type = "User"
	}
	b, _ := json.Marshal(out)
	w.WriteHeader(err.Status)
	_, _ = w.Write(b)
}
