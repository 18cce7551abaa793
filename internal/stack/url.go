// A function's URL: created, updated or deleted to match the stack, and opened to anyone when its
// AuthType is NONE.

package stack

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// url creates, updates or deletes the function URL on qualifier ("" for the unqualified function).
func (d *Deployer) url(ctx context.Context, res *Result, name, qualifier string, u *URL) error {
	var q *string
	if qualifier != "" {
		q = aws.String(qualifier)
	}
	got, err := d.Lambda.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name), Qualifier: q})
	var nf *types.ResourceNotFoundException
	exists := true
	switch {
	case errors.As(err, &nf):
		exists = false
	case err != nil:
		return err
	}
	if u == nil {
		if exists {
			if _, err := d.Lambda.DeleteFunctionUrlConfig(ctx, &lambda.DeleteFunctionUrlConfigInput{FunctionName: aws.String(name), Qualifier: q}); err != nil {
				return err
			}
			d.change(res, Change{Kind: "url", Name: name, Resource: qualifier, Action: "deleted", Detail: aws.ToString(got.FunctionUrl)})
		}
		return nil
	}
	auth := types.FunctionUrlAuthType(u.Auth)
	if auth == "" {
		auth = types.FunctionUrlAuthTypeNone
	}
	cors := u.Cors.sdk()
	if !exists {
		out, err := d.Lambda.CreateFunctionUrlConfig(ctx, &lambda.CreateFunctionUrlConfigInput{FunctionName: aws.String(name),
			Qualifier: q, AuthType: auth, Cors: cors})
		if err != nil {
			return err
		}
		d.change(res, Change{Kind: "url", Name: name, Resource: qualifier, Action: "created", Detail: aws.ToString(out.FunctionUrl)})
		return d.publicURL(ctx, name, q, auth)
	}
	if got.AuthType == auth && corsEqual(got.Cors, cors) {
		return d.publicURL(ctx, name, q, auth)
	}
	if cors == nil {
		cors = &types.Cors{}
	}
	if _, err := d.Lambda.UpdateFunctionUrlConfig(ctx, &lambda.UpdateFunctionUrlConfigInput{FunctionName: aws.String(name),
		Qualifier: q, AuthType: auth, Cors: cors}); err != nil {
		return err
	}
	d.change(res, Change{Kind: "url", Name: name, Resource: qualifier, Action: "updated", Detail: aws.ToString(got.FunctionUrl)})
	return d.publicURL(ctx, name, q, auth)
}

// publicURLStatement is the statement that opens a NONE function URL to anyone; SAM adds the
// same permission for a FunctionUrlConfig with AuthType NONE.
const publicURLStatement = "FunctionURLAllowPublicAccess"

// publicURL grants anyone lambda:InvokeFunctionUrl when the URL's AuthType is NONE (without it
// Lambda answers 403), once.
func (d *Deployer) publicURL(ctx context.Context, name string, qualifier *string, auth types.FunctionUrlAuthType) error {
	if auth != types.FunctionUrlAuthTypeNone {
		return nil
	}
	_, err := d.Lambda.AddPermission(ctx, &lambda.AddPermissionInput{FunctionName: aws.String(name), Qualifier: qualifier,
		StatementId: aws.String(publicURLStatement), Action: aws.String("lambda:InvokeFunctionUrl"), Principal: aws.String("*"),
		FunctionUrlAuthType: types.FunctionUrlAuthTypeNone})
	var exists *types.ResourceConflictException
	if errors.As(err, &exists) {
		return nil
	}
	return err
}

func (c *Cors) sdk() *types.Cors {
	if c == nil {
		return nil
	}
	out := &types.Cors{AllowOrigins: c.Origins, AllowMethods: c.Methods, AllowHeaders: c.Headers, ExposeHeaders: c.Expose}
	if c.Credentials {
		out.AllowCredentials = aws.Bool(true)
	}
	if c.MaxAge > 0 {
		out.MaxAge = aws.Int32(c.MaxAge)
	}
	return out
}

func corsEqual(a, b *types.Cors) bool {
	empty := func(c *types.Cors) bool {
		return c == nil || (len(c.AllowOrigins) == 0 && len(c.AllowMethods) == 0 && len(c.AllowHeaders) == 0 &&
			len(c.ExposeHeaders) == 0 && !aws.ToBool(c.AllowCredentials) && aws.ToInt32(c.MaxAge) == 0)
	}
	if empty(a) || empty(b) {
		return empty(a) && empty(b)
	}
	return slices.Equal(a.AllowOrigins, b.AllowOrigins) && slices.Equal(a.AllowMethods, b.AllowMethods) &&
		slices.Equal(a.AllowHeaders, b.AllowHeaders) && slices.Equal(a.ExposeHeaders, b.ExposeHeaders) &&
		aws.ToBool(a.AllowCredentials) == aws.ToBool(b.AllowCredentials) && aws.ToInt32(a.MaxAge) == aws.ToInt32(b.MaxAge)
}
