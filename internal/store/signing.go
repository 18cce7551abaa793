package store

import (
	"context"

	"github.com/flint-run/flint/internal/lambda"
)

// CodeSigningConfigs is the repository of the code signing configurations (by id, csc-…);
// which functions use one is on the functions' records.
type CodeSigningConfigs struct{ s *Store }

// CodeSigningConfigs returns the repository of the code signing configurations.
func (s *Store) CodeSigningConfigs() CodeSigningConfigs { return CodeSigningConfigs{s} }

// Create stores a new configuration; ErrExists if its id is taken.
func (r CodeSigningConfigs) Create(ctx context.Context, c *lambda.CodeSigningConfig) error {
	_, err := r.s.signing.create(ctx, c.CodeSigningConfigId, c)
	return err
}

// Get returns a configuration and its revision (ErrNotFound if none).
func (r CodeSigningConfigs) Get(ctx context.Context, id string) (*lambda.CodeSigningConfig, uint64, error) {
	return r.s.signing.get(ctx, id)
}

// Update replaces a configuration if it is still at revision rev (ErrConflict otherwise).
func (r CodeSigningConfigs) Update(ctx context.Context, c *lambda.CodeSigningConfig, rev uint64) error {
	_, err := r.s.signing.update(ctx, c.CodeSigningConfigId, c, rev)
	return err
}

// Delete removes a configuration (ErrNotFound if none).
func (r CodeSigningConfigs) Delete(ctx context.Context, id string) error {
	return r.s.signing.delete(ctx, id)
}

// List returns every configuration, by id.
func (r CodeSigningConfigs) List(ctx context.Context) ([]*lambda.CodeSigningConfig, error) {
	return r.s.signing.list(ctx, ">")
}
