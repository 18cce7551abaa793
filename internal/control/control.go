// Package control is Flint's control plane: one service per kind of resource (functions,
// versions, aliases, layers, mappings, …). A service validates a request, reads and changes its
// part of the store with the records' revisions, and, after a write the data plane must see,
// waits until the invocation service's view holds that revision (read-your-writes). It knows no
// HTTP: api decodes requests into the services' inputs, calls them and encodes what they return;
// errors are apierr's (AWS's codes and messages) or the lambda package's domain errors.
package control

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// View is the invocation service's in-memory view of the store (invoke.Service), which only the
// store's watches write: a service that wrote waits until the view has the write's revision.
type View interface {
	Await(ctx context.Context, v invoke.View, rev uint64) error
}

// Target is the function an operation addresses, as the request gave it: a name or an ARN
// (possibly with a qualifier) and the Qualifier parameter. Op is the Lambda API operation's
// name: it decides how an ARN of another account or region is refused (lambda.Account.Resolve).
type Target struct {
	Op        string
	Name      string
	Qualifier string
}

// Page is a list operation's MaxItems (already bounded) and Marker.
type Page struct {
	MaxItems int
	Marker   string
}

// functionReader reads functions' $LATEST records (store.Functions).
type functionReader interface {
	Get(ctx context.Context, name string) (store.Function, error)
}

// versionReader reads published versions (store.Versions).
type versionReader interface {
	Get(ctx context.Context, name string, n int) (*lambda.Function, uint64, error)
}

// aliasReader reads aliases (store.Aliases).
type aliasReader interface {
	Get(ctx context.Context, name, alias string) (store.Alias, error)
}

// resolver turns a Target into a function record; the services that address functions share it.
type resolver struct {
	account   lambda.Account
	functions functionReader
	versions  versionReader
	aliases   aliasReader
}

// name parses t into the bare function name and its qualifier (from the ARN or the Qualifier
// parameter, which must agree).
func (r resolver) name(t Target) (name, qualifier string, err error) {
	ref, err := r.account.ResolveTarget(t.Name, t.Qualifier, t.Op)
	if err != nil {
		return "", "", err
	}
	name, qualifier = ref.Name, ref.Qualifier
	if q := t.Qualifier; q != "" {
		if qualifier != "" && qualifier != q {
			return "", "", apierr.InvalidParameterValue("The derived qualifier from the function name does not match the specified qualifier.")
		}
		qualifier = q
	}
	return name, qualifier, nil
}

func (r resolver) notFound(name, qualifier string) *apierr.Error {
	return apierr.ResourceNotFound("Function not found: %s", r.account.FunctionARN(name, qualifier))
}

// latest reads the function t names, which must be unqualified or $LATEST.
func (r resolver) latest(ctx context.Context, t Target) (store.Function, error) {
	name, qualifier, err := r.name(t)
	if err != nil {
		return store.Function{}, err
	}
	if qualifier != "" && qualifier != lambda.LatestVersion {
		return store.Function{}, r.notFound(name, qualifier)
	}
	f, err := r.functions.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Function{}, r.notFound(name, "")
	}
	return f, err
}

// unqualified reads the function t names, which must not carry a qualifier: on the paths of
// per-qualifier settings, t.Qualifier names the version or alias to configure instead.
func (r resolver) unqualified(ctx context.Context, t Target) (store.Function, error) {
	ref, err := r.account.Resolve(t.Name, t.Op)
	if err != nil {
		return store.Function{}, err
	}
	if ref.Qualifier != "" {
		return store.Function{}, apierr.InvalidParameterValue("The function name must not carry a qualifier here; use the Qualifier parameter.")
	}
	f, err := r.functions.Get(ctx, ref.Name)
	if errors.Is(err, store.ErrNotFound) {
		return f, r.notFound(ref.Name, "")
	}
	return f, err
}

// qualified reads the configuration t's qualifier names: $LATEST, a published version, or the
// version an alias points to (its primary version).
func (r resolver) qualified(ctx context.Context, t Target) (*lambda.Function, error) {
	name, qualifier, err := r.name(t)
	if err != nil {
		return nil, err
	}
	f, err := r.functions.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, r.notFound(name, qualifier) // AWS names the qualifier asked for, $LATEST too
	}
	if err != nil {
		return nil, err
	}
	if qualifier == "" || qualifier == lambda.LatestVersion {
		return f.Function, nil
	}
	version := qualifier
	if _, err := strconv.Atoi(qualifier); err != nil {
		al, err := r.aliases.Get(ctx, name, qualifier)
		if errors.Is(err, store.ErrNotFound) {
			return nil, r.notFound(name, qualifier)
		}
		if err != nil {
			return nil, err
		}
		version = al.FunctionVersion
	}
	if version == lambda.LatestVersion {
		return f.Function, nil
	}
	n, _ := strconv.Atoi(version)
	v, _, err := r.versions.Get(ctx, name, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, r.notFound(name, qualifier)
	}
	return v, err
}

// awaiter makes a service read its own write: await returns once the view holds revision rev of
// bucket v, so that an invoke after the service's answer sees the change. The write stands if
// the view is late; that is logged.
type awaiter struct {
	view View
	log  *slog.Logger
}

func (a awaiter) await(ctx context.Context, v invoke.View, rev uint64) {
	if err := a.view.Await(ctx, v, rev); err != nil {
		a.log.Warn("the in-memory view is behind a write", "bucket", v, "revision", rev, "err", err)
	}
}

// functionRecords is the functions repository (store.Functions) as the services that keep a
// setting on $LATEST's record (tags, code signing bindings, recursion) use it.
type functionRecords interface {
	Get(ctx context.Context, name string) (store.Function, error)
	Update(ctx context.Context, f *lambda.Function, rev uint64) (uint64, error)
}

// rewriteFunction changes a field of a function's record that is not its configuration (tags,
// bindings, settings: its RevisionId and environments stay). change edits a copy of the record
// read and reports whether there is anything to write; the write happens only if the function is
// still at the revision read, else it starts again from a fresh read (five tries). It returns the
// record last read, and once written waits for the view.
func (a awaiter) rewriteFunction(ctx context.Context, fns functionRecords, read func() (store.Function, error),
	change func(next *lambda.Function) (bool, error)) (store.Function, error) {
	for range 5 {
		f, err := read()
		if err != nil {
			return f, err
		}
		next := *f.Function
		if write, err := change(&next); err != nil || !write {
			return f, err
		}
		rev, err := fns.Update(ctx, &next, f.Revision)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return f, err
		}
		a.await(ctx, invoke.Functions, rev)
		return f, nil
	}
	return store.Function{}, apierr.ResourceConflict("The function was modified concurrently; try again.")
}

// set copies *src into *dst when the request gave it (src not nil).
func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
