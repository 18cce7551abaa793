package store

import (
	"context"

	"github.com/flint-run/flint/internal/apigw"
)

// APIs is the repository of the API Gateway APIs (by name).
type APIs struct{ s *Store }

// APIs returns the repository of the API Gateway APIs (by name).
func (s *Store) APIs() APIs { return APIs{s} }

// Get returns the API with this name and its revision.
func (r APIs) Get(ctx context.Context, name string) (*apigw.API, uint64, error) {
	return r.s.apis.get(ctx, name)
}

// Create stores a new API (ErrExists if the name is taken); it returns the revision.
func (r APIs) Create(ctx context.Context, a *apigw.API) (uint64, error) {
	return r.s.apis.create(ctx, a.Name, a)
}

// Update replaces the API if it is still at rev (ErrConflict otherwise); it returns the new
// revision.
func (r APIs) Update(ctx context.Context, a *apigw.API, rev uint64) (uint64, error) {
	return r.s.apis.update(ctx, a.Name, a, rev)
}

// Delete removes an API; it returns the deletion's revision (or a later one).
func (r APIs) Delete(ctx context.Context, name string) (uint64, error) {
	return r.s.apis.remove(ctx, name)
}

// List returns every API, by name.
func (r APIs) List(ctx context.Context) ([]*apigw.API, error) {
	return r.s.apis.list(ctx, ">")
}

// Watch reports API changes (deletions: nil) by name.
func (r APIs) Watch(ctx context.Context, ready func(), fn func(name string, rev uint64, a *apigw.API)) error {
	return r.s.apis.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r APIs) Revision(ctx context.Context) (uint64, error) {
	return r.s.apis.revision(ctx, r.s.js)
}
