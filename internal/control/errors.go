package control

import (
	"errors"
	"strings"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// AWSError renders the lambda package's domain errors as the API errors AWS answers with;
// other errors are returned as they are. Every answer of the Lambda API passes through it.
func AWSError(err error) error {
	var (
		inv     *lambda.InvalidError
		region  *lambda.ForeignRegionError
		account *lambda.ForeignAccountError
		quorum  *store.NoQuorumError
	)
	switch {
	case errors.As(err, &inv):
		if inv.Model {
			return apierr.Validation("%s", inv.Message)
		}
		return apierr.InvalidParameterValue("%s", inv.Message)
	case errors.As(err, &region):
		return apierr.ResourceNotFound("%s", region.Error())
	case errors.As(err, &account):
		return apierr.AccessDenied("%s", account.Message)
	case errors.As(err, &quorum):
		// Lambda's internal error (500): SDKs retry it, and the message says what to do. Not
		// a throttle (no limit was reached) nor a conflict (nothing about the resource).
		return apierr.ServiceError("Flint node %s has lost the cluster's quorum (it reaches %d of %d nodes, %d needed): it makes no changes and cannot answer this request; nothing was changed. Retry through another node.",
			quorum.Node, quorum.Reach, quorum.Size, quorum.Needs).Wrap(err)
	}
	return err
}

// validationErrors is AWS's ValidationException for every failed constraint of a request
// (nil for none), in the order given.
func validationErrors(parts []string) error {
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return apierr.Validation("1 validation error detected: %s", parts[0])
	}
	return apierr.Validation("%d validation errors detected: %s", len(parts), strings.Join(parts, "; "))
}
