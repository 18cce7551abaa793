// A function's alias: a version published when the function changed, and the alias moved to it at
// once or step by step (rollout.go).

package stack

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// alias publishes a version when the alias's version is not what the stack wants, and moves the
// alias to it as the deployment preference says.
func (d *Deployer) alias(ctx context.Context, res *Result, name string, f *Function, want desired, sha string, opts Options) error {
	al, err := d.Lambda.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(name), Name: aws.String(f.Alias)})
	var nf *types.ResourceNotFoundException
	exists := true
	switch {
	case errors.As(err, &nf):
		exists = false
	case err != nil:
		return err
	}
	if exists {
		cur, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: al.FunctionVersion})
		if err != nil {
			return err
		}
		split := al.RoutingConfig != nil && len(al.RoutingConfig.AdditionalVersionWeights) > 0
		if aws.ToString(cur.Configuration.CodeSha256) == sha && len(want.diff(cur.Configuration)) == 0 && !split {
			return nil
		}
	}
	pub, err := d.Lambda.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String(name), CodeSha256: aws.String(sha)})
	if err != nil {
		return fmt.Errorf("publish version: %w", err)
	}
	newV := aws.ToString(pub.Version)
	d.change(res, Change{Kind: "version", Name: name, Action: "published", Detail: "version " + newV})
	if !exists {
		if _, err := d.Lambda.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String(name),
			Name: aws.String(f.Alias), FunctionVersion: aws.String(newV)}); err != nil {
			return fmt.Errorf("create alias %s: %w", f.Alias, err)
		}
		d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "created", Detail: "→ " + newV})
		return nil
	}
	oldV := aws.ToString(al.FunctionVersion)
	if oldV == newV {
		// A previous rollout was interrupted part way: finish it at once.
		if err := d.route(ctx, name, f.Alias, newV, "", 0); err != nil {
			return err
		}
		d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "shifted", Detail: "→ " + newV})
		return nil
	}
	pref, _ := ParsePreference(f.Deploy)
	if opts.StepInterval > 0 {
		pref.Interval = opts.StepInterval
	}
	if err := d.rollout(ctx, name, f.Alias, oldV, newV, pref, opts.MaxErrorRate); err != nil {
		var rb *RollbackError
		if errors.As(err, &rb) {
			d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "rolled back", Detail: oldV + " ← " + newV})
		}
		return err
	}
	d.change(res, Change{Kind: "alias", Name: name, Resource: f.Alias, Action: "shifted", Detail: fmt.Sprintf("%s → %s (%s)", oldV, newV, pref.Type)})
	return nil
}

// route points alias at version, with weight of the traffic on extra when extra is not "".
func (d *Deployer) route(ctx context.Context, name, alias, version, extra string, weight float64) error {
	weights := map[string]float64{}
	if extra != "" {
		weights[extra] = weight
	}
	_, err := d.Lambda.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: aws.String(name), Name: aws.String(alias),
		FunctionVersion: aws.String(version), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: weights}})
	if err != nil {
		return fmt.Errorf("update alias %s: %w", alias, err)
	}
	return nil
}
