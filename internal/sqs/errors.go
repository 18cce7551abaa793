package sqs

import (
	"errors"
	"fmt"
	"github.com/flint-run/flint/internal/awsquery"
	"net/http"
)

// Error is an SQS API error (awsquery's): the JSON protocol's __type, the query protocol's
// code, the HTTP status and the message, as AWS sends them.
type Error = awsquery.Error

func newError(typ, code, format string, args ...any) *Error {
	return &Error{Type: typ, Code: code, Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

func errNotExist() *Error {
	return newError("com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue",
		"The specified queue does not exist.")
}

func errInvalidParameter(format string, args ...any) *Error {
	return newError("com.amazon.coral.service#InvalidParameterValueException", "InvalidParameterValue", format, args...)
}

func errInvalidAttributeName(name string) *Error {
	return newError("com.amazonaws.sqs#InvalidAttributeName", "InvalidAttributeName", "Unknown Attribute %s.", name)
}

func errInvalidAttributeValue(name string) *Error {
	return newError("com.amazonaws.sqs#InvalidAttributeValue", "InvalidAttributeValue",
		"Invalid value for the parameter %s.", name)
}

func errMissing(param string) *Error {
	return newError("com.amazon.coral.service#MissingParameterException", "MissingParameter",
		"The request must contain the parameter %s.", param)
}

func errQueueExists(attr string) *Error {
	return newError("com.amazonaws.sqs#QueueNameExists", "QueueAlreadyExists",
		"A queue already exists with the same name and a different value for attribute %s", attr)
}

func errTooManyEntries(n int) *Error {
	return newError("com.amazonaws.sqs#TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
		"Maximum number of entries per request are 10. You have sent %d.", n)
}

func errEmptyBatch(entry string) *Error {
	return newError("com.amazonaws.sqs#EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
		"There should be at least one %s in the request.", entry)
}

func errIDsNotDistinct(id string) *Error {
	return newError("com.amazonaws.sqs#BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
		"Id %s repeated.", id)
}

func errInvalidBatchID() *Error {
	return newError("com.amazonaws.sqs#InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId",
		"A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
}

func errBatchTooLong(n int) *Error {
	return newError("com.amazonaws.sqs#BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
		"Batch requests cannot be longer than 262144 bytes. You have sent %d bytes.", n)
}

func errReceiptHandle(h string) *Error {
	return newError("com.amazonaws.sqs#ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid",
		"The input receipt handle \"%s\" is not a valid receipt handle.", h)
}

func errUnknownOperation(op string) *Error {
	return newError("com.amazon.coral.service#UnknownOperationException", "InvalidAction",
		"The action %s is not valid for this web service.", op)
}

func errSerialization(format string, args ...any) *Error {
	return newError("com.amazon.coral.service#SerializationException", "MalformedQueryString", format, args...)
}

// errInternal hides an internal failure; the cause is logged, never sent.
func errInternal(cause error) *Error {
	return &Error{Type: "com.amazon.coral.service#InternalFailure", Code: "InternalError", Status: http.StatusInternalServerError,
		Message: "We encountered an internal error. Please try again.", Cause: cause}
}

// asError returns the API error inside err, or an internal one wrapping it.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errInternal(err)
}

func isNotExist(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == "AWS.SimpleQueueService.NonExistentQueue"
}
