package secrets

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/flint-run/flint/internal/apierr"
)

// Secrets Manager's errors, with AWS's codes and messages. They are *apierr.Error values (the
// one error type of Flint's APIs) but with Secrets Manager's status codes, which differ from
// Lambda's: every client error is a 400 and an internal one is InternalServiceError, 500.
// writeError renders them in the JSON 1.1 protocol's shape, not apierr.Write's REST-JSON one.

func smError(code, format string, args ...any) *apierr.Error {
	return &apierr.Error{Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errNotFound() *apierr.Error {
	return smError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

func errExists(name string) *apierr.Error {
	return smError("ResourceExistsException", "The operation failed because the secret %s already exists.", name)
}

func errMarkedForDeletion() *apierr.Error {
	return smError("InvalidRequestException",
		"You can't perform this operation on the secret because it was marked for deletion.")
}

func errInvalidParameter(format string, args ...any) *apierr.Error {
	return smError("InvalidParameterException", format, args...)
}

func errInvalidRequest(format string, args ...any) *apierr.Error {
	return smError("InvalidRequestException", format, args...)
}

func errValidation(format string, args ...any) *apierr.Error {
	return smError("ValidationException", format, args...)
}

// errDecryption is what AWS answers when the KMS key cannot open a secret; here the master key
// is missing or the stored envelope was altered. The cause is logged, never sent.
func errDecryption(cause error) *apierr.Error {
	return smError("DecryptionFailure",
		"Secrets Manager can't decrypt the protected secret text using the provided KMS key.").Wrap(cause)
}

// errInternal hides an internal failure behind Secrets Manager's InternalServiceError.
func errInternal(cause error) *apierr.Error {
	return (&apierr.Error{Code: "InternalServiceError", Status: http.StatusInternalServerError,
		Message: "An error occurred on the server side."}).Wrap(cause)
}

// writeError renders an API error for the JSON 1.1 protocol (through apierr.Write, the one
// renderer): the Go SDK reads __type (or X-Amzn-ErrorType) and either casing of the message;
// botocore reads "message" first, then "Message"; both are sent.
func writeError(w http.ResponseWriter, e *apierr.Error) {
	c := *e
	c.JSON11 = true
	apierr.Write(w, &c)
}

// asError returns the API error inside err, or an InternalServiceError wrapping it.
func asError(err error) *apierr.Error {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e
	}
	return errInternal(err)
}
