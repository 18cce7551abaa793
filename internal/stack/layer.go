// A stack's layers: a new version published only when the content or runtimes differ from the
// latest one.

package stack

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// layer publishes a new version of a stack layer when its content differs from the latest one,
// and returns the version ARN to use.
func (d *Deployer) layer(ctx context.Context, res *Result, name string, l *Layer, a artifact) (string, error) {
	list, err := d.Lambda.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return "", err
	}
	if err == nil && len(list.LayerVersions) > 0 {
		latest := list.LayerVersions[0]
		for _, v := range list.LayerVersions[1:] {
			if v.Version > latest.Version {
				latest = v
			}
		}
		got, err := d.Lambda.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String(name), VersionNumber: aws.Int64(latest.Version)})
		if err != nil {
			return "", err
		}
		if got.Content != nil && aws.ToString(got.Content.CodeSha256) == a.sha &&
			slices.Equal(runtimeStrings(got.CompatibleRuntimes), l.Runtimes) {
			return aws.ToString(got.LayerVersionArn), nil
		}
	}
	in := &lambda.PublishLayerVersionInput{LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: a.zip}}
	for _, r := range l.Runtimes {
		in.CompatibleRuntimes = append(in.CompatibleRuntimes, types.Runtime(r))
	}
	out, err := d.Lambda.PublishLayerVersion(ctx, in)
	if err != nil {
		return "", err
	}
	d.change(res, Change{Kind: "layer", Name: name, Action: "published", Detail: fmt.Sprintf("version %d", out.Version)})
	return aws.ToString(out.LayerVersionArn), nil
}

func runtimeStrings(rs []types.Runtime) []string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r))
	}
	return out
}
