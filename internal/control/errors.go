package control

import (
	"errors"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
)

// AWSError renders the lambda package's domain errors as the API errors AWS answers with;
// other errors are returned as they are. Every answer of the Lambda API passes through it.
func AWSError(err error) error {
	var (
		inv     *lambda.InvalidError
		region  *lambda.ForeignRegionError
		account *lambda.ForeignAccountError
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
	}
	return err
}
