package invoke

import (
	"context"

	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/worker"
)

// Recycled is what Recycle did on this node (worker.Pool.Recycle, summed over the versions).
type Recycled = worker.Recycled

// Recycle destroys this node's idle on-demand environments of name at qualifier ($LATEST, a
// version, or every version an alias routes to), so that the next invocation here cold-starts
// (POST /flint/v1/functions/{name}/recycle, `flint bench --cold`). Nothing stored changes: the
// configuration, its RevisionId and the pool stay; environments running or starting an
// invocation, and provisioned ones, are left alone. Only this node's environments go: in a
// cluster another node's warm environment may still take the next invocation.
func (s *Service) Recycle(ctx context.Context, name, qualifier string) (Recycled, error) {
	qualifiers := []string{qualifier}
	if qualifier != "" && qualifier != lambda.LatestVersion && !isVersion(qualifier) {
		a, err := s.alias(ctx, name, qualifier)
		if err != nil {
			return Recycled{}, err
		}
		qualifiers = []string{a.FunctionVersion}
		if rc := a.RoutingConfig; rc != nil {
			for v := range rc.AdditionalVersionWeights {
				qualifiers = append(qualifiers, v)
			}
		}
	}
	var r Recycled
	for _, q := range qualifiers {
		e, err := s.Lookup(ctx, name, q)
		if err != nil {
			return r, err
		}
		r = r.Add(e.pool.Recycle())
	}
	return r, nil
}
