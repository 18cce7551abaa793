package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flint-run/flint/internal/lambda"
)

// VersionKey is the KV key of version n of a function.
func VersionKey(name string, n int) string { return name + "." + strconv.Itoa(n) }

// AliasKey is the KV key of an alias.
func AliasKey(name, alias string) string { return name + "." + alias }

// Get returns a published version and its KV revision.
func (r Versions) Get(ctx context.Context, name string, n int) (*lambda.Function, uint64, error) {
	return r.s.versions.get(ctx, VersionKey(name, n))
}

// Create stores a published version (immutable).
func (r Versions) Create(ctx context.Context, v *lambda.Function, n int) (uint64, error) {
	return r.s.versions.create(ctx, VersionKey(v.Config.FunctionName, n), v)
}

// Delete removes a published version; it returns the deletion's revision (or a later one).
func (r Versions) Delete(ctx context.Context, name string, n int) (uint64, error) {
	return r.s.versions.remove(ctx, VersionKey(name, n))
}

// List returns a function's published versions in version order.
func (r Versions) List(ctx context.Context, name string) ([]*lambda.Function, error) {
	vs, err := r.s.versions.list(ctx, name+".*")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(vs, func(a, b *lambda.Function) int { return versionNumber(a) - versionNumber(b) })
	return vs, nil
}

// All returns every function's published versions, in key order: one listing, not one a
// function.
func (r Versions) All(ctx context.Context) ([]*lambda.Function, error) {
	return r.s.versions.list(ctx, ">")
}

func versionNumber(f *lambda.Function) int {
	n, _ := strconv.Atoi(f.Config.Version)
	return n
}

// Watch reports version changes (deletions: v nil) with their KV keys.
func (r Versions) Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, v *lambda.Function)) error {
	return r.s.versions.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r Versions) Revision(ctx context.Context) (uint64, error) {
	return r.s.versions.revision(ctx, r.s.js)
}

// Alias is a stored alias with its revision.
type Alias struct {
	*lambda.Alias
	Revision uint64
}

// Get returns an alias.
func (r Aliases) Get(ctx context.Context, name, alias string) (Alias, error) {
	a, rev, err := r.s.aliases.get(ctx, AliasKey(name, alias))
	if err != nil {
		return Alias{}, err
	}
	return Alias{Alias: a, Revision: rev}, nil
}

// Create stores a new alias; ErrExists if taken.
func (r Aliases) Create(ctx context.Context, name string, a *lambda.Alias) (uint64, error) {
	return r.s.aliases.create(ctx, AliasKey(name, a.Name), a)
}

// Update replaces an alias at revision rev; ErrConflict otherwise.
func (r Aliases) Update(ctx context.Context, name string, a *lambda.Alias, rev uint64) (uint64, error) {
	return r.s.aliases.update(ctx, AliasKey(name, a.Name), a, rev)
}

// Delete removes an alias; it returns the deletion's revision (or a later one).
func (r Aliases) Delete(ctx context.Context, name, alias string) (uint64, error) {
	return r.s.aliases.remove(ctx, AliasKey(name, alias))
}

// List returns a function's aliases by name.
func (r Aliases) List(ctx context.Context, name string) ([]*lambda.Alias, error) {
	return r.s.aliases.list(ctx, name+".*")
}

// Watch reports alias changes (deletions: a nil) with their KV keys.
func (r Aliases) Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, a *lambda.Alias)) error {
	return r.s.aliases.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r Aliases) Revision(ctx context.Context) (uint64, error) {
	return r.s.aliases.revision(ctx, r.s.js)
}

// Put stores a provisioned-concurrency config for NAME.QUALIFIER.
func (r Provisioned) Put(ctx context.Context, name, qualifier string, pc *lambda.ProvisionedConcurrency) (uint64, error) {
	return r.s.prov.put(ctx, AliasKey(name, qualifier), pc)
}

// Get returns the provisioned-concurrency config of NAME.QUALIFIER.
func (r Provisioned) Get(ctx context.Context, name, qualifier string) (*lambda.ProvisionedConcurrency, uint64, error) {
	return r.s.prov.get(ctx, AliasKey(name, qualifier))
}

// Delete removes a provisioned-concurrency config; it returns the deletion's revision
// (or a later one).
func (r Provisioned) Delete(ctx context.Context, name, qualifier string) (uint64, error) {
	return r.s.prov.remove(ctx, AliasKey(name, qualifier))
}

// List returns a function's provisioned-concurrency configs by qualifier.
func (r Provisioned) List(ctx context.Context, name string) (map[string]*lambda.ProvisionedConcurrency, error) {
	keys, err := r.s.prov.keys(ctx, name+".*")
	if err != nil {
		return nil, err
	}
	out := make(map[string]*lambda.ProvisionedConcurrency, len(keys))
	for _, k := range keys {
		pc, _, err := r.s.prov.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(k, name+".")] = pc
	}
	return out, nil
}

// Watch reports provisioned-concurrency changes (deletions: nil) by KV key.
func (r Provisioned) Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, pc *lambda.ProvisionedConcurrency)) error {
	return r.s.prov.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r Provisioned) Revision(ctx context.Context) (uint64, error) {
	return r.s.prov.revision(ctx, r.s.js)
}

// PolicyKey is the KV key of the policy of NAME's qualifier ("": the unqualified function).
func PolicyKey(name, qualifier string) string {
	if qualifier == "" {
		return name + ".=" // '=' cannot appear in a version or alias name
	}
	return name + "." + qualifier
}

// Get returns a policy and its revision (ErrNotFound if none).
func (r Policies) Get(ctx context.Context, name, qualifier string) (*lambda.StoredPolicy, uint64, error) {
	return r.s.policies.get(ctx, PolicyKey(name, qualifier))
}

// Put stores a policy: created when rev is 0, else replaced if still at rev (ErrConflict).
// It returns the new revision.
func (r Policies) Put(ctx context.Context, name, qualifier string, p *lambda.StoredPolicy, rev uint64) (uint64, error) {
	if rev == 0 {
		n, err := r.s.policies.create(ctx, PolicyKey(name, qualifier), p)
		if errors.Is(err, ErrExists) {
			err = fmt.Errorf("policy %s: %w", PolicyKey(name, qualifier), ErrConflict)
		}
		return n, err
	}
	return r.s.policies.update(ctx, PolicyKey(name, qualifier), p, rev)
}

// Delete removes a policy; it returns the deletion's revision (or a later one).
func (r Policies) Delete(ctx context.Context, name, qualifier string) (uint64, error) {
	return r.s.policies.remove(ctx, PolicyKey(name, qualifier))
}

// Watch reports policy changes (deletions: p nil) with their KV keys.
func (r Policies) Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, p *lambda.StoredPolicy)) error {
	return r.s.policies.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r Policies) Revision(ctx context.Context) (uint64, error) {
	return r.s.policies.revision(ctx, r.s.js)
}

// EventInvokeConfigKey is the KV key of NAME's asynchronous invocation config for qualifier (""
// or $LATEST: the unqualified function), as Watch reports it.
func EventInvokeConfigKey(name, qualifier string) string { return eicKey(name, qualifier) }

// eicKey is the KV key of NAME's config for qualifier ("" or $LATEST: the unqualified function).
func eicKey(name, qualifier string) string {
	if qualifier == "" || qualifier == lambda.LatestVersion {
		return name + ".=latest" // '=' cannot appear in a version or alias name
	}
	return name + "." + qualifier
}

// Put stores (creates or replaces) an asynchronous invocation config; it returns the revision.
func (r EventInvokeConfigs) Put(ctx context.Context, name, qualifier string, c *lambda.EventInvokeConfig) (uint64, error) {
	return r.s.eic.put(ctx, eicKey(name, qualifier), c)
}

// Get returns an asynchronous invocation config.
func (r EventInvokeConfigs) Get(ctx context.Context, name, qualifier string) (*lambda.EventInvokeConfig, error) {
	c, _, err := r.s.eic.get(ctx, eicKey(name, qualifier))
	return c, err
}

// Delete removes an asynchronous invocation config; it returns the deletion's revision (or a
// later one).
func (r EventInvokeConfigs) Delete(ctx context.Context, name, qualifier string) (uint64, error) {
	return r.s.eic.remove(ctx, eicKey(name, qualifier))
}

// Watch reports config changes (deletions: c nil) with their KV keys (EventInvokeConfigKey).
func (r EventInvokeConfigs) Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, c *lambda.EventInvokeConfig)) error {
	return r.s.eic.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r EventInvokeConfigs) Revision(ctx context.Context) (uint64, error) {
	return r.s.eic.revision(ctx, r.s.js)
}

// List returns a function's asynchronous invocation configs.
func (r EventInvokeConfigs) List(ctx context.Context, name string) ([]*lambda.EventInvokeConfig, error) {
	return r.s.eic.list(ctx, name+".*")
}

// Create stores a new function URL under its id; it returns the revision.
func (r URLs) Create(ctx context.Context, u *lambda.FunctionURL) (uint64, error) {
	return r.s.urls.create(ctx, u.ID, u)
}

// Update replaces a function URL; it returns the new revision.
func (r URLs) Update(ctx context.Context, u *lambda.FunctionURL) (uint64, error) {
	_, rev, err := r.s.urls.get(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	return r.s.urls.update(ctx, u.ID, u, rev)
}

// Get returns the function URL with this id.
func (r URLs) Get(ctx context.Context, id string) (*lambda.FunctionURL, error) {
	u, _, err := r.s.urls.get(ctx, id)
	return u, err
}

// Delete removes a function URL; it returns the deletion's revision (or a later one).
func (r URLs) Delete(ctx context.Context, id string) (uint64, error) {
	return r.s.urls.remove(ctx, id)
}

// List returns a function's URLs (one per qualifier).
func (r URLs) List(ctx context.Context, name string) ([]*lambda.FunctionURL, error) {
	all, err := r.s.urls.list(ctx, ">")
	if err != nil {
		return nil, err
	}
	var out []*lambda.FunctionURL
	for _, u := range all {
		if u.Function == name {
			out = append(out, u)
		}
	}
	return out, nil
}

// Watch reports function URL changes (deletions: nil) by URL id.
func (r URLs) Watch(ctx context.Context, ready func(), fn func(id string, rev uint64, u *lambda.FunctionURL)) error {
	return r.s.urls.watch(ctx, r.s.js, ready, fn)
}

// Revision is the newest revision of the bucket Watch follows: a watcher that has seen it is
// current.
func (r URLs) Revision(ctx context.Context) (uint64, error) {
	return r.s.urls.revision(ctx, r.s.js)
}

func scheduleKey(group, name string) string { return group + "." + name }

// Create stores a new schedule; ErrExists if taken.
func (r Schedules) Create(ctx context.Context, sc *lambda.Schedule) error {
	_, err := r.s.scheds.create(ctx, scheduleKey(sc.GroupName, sc.Name), sc)
	return err
}

// Update replaces a schedule; ErrNotFound if absent.
func (r Schedules) Update(ctx context.Context, sc *lambda.Schedule) error {
	key := scheduleKey(sc.GroupName, sc.Name)
	_, rev, err := r.s.scheds.get(ctx, key)
	if err != nil {
		return err
	}
	_, err = r.s.scheds.update(ctx, key, sc, rev)
	return err
}

// Get returns a schedule.
func (r Schedules) Get(ctx context.Context, group, name string) (*lambda.Schedule, error) {
	sc, _, err := r.s.scheds.get(ctx, scheduleKey(group, name))
	return sc, err
}

// Delete removes a schedule and its firing state.
func (r Schedules) Delete(ctx context.Context, group, name string) error {
	if err := r.s.scheds.delete(ctx, scheduleKey(group, name)); err != nil {
		return err
	}
	if err := r.s.schedSt.delete(ctx, scheduleKey(group, name)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// List returns every schedule, by group and name.
func (r Schedules) List(ctx context.Context) ([]*lambda.Schedule, error) {
	return r.s.scheds.list(ctx, ">")
}

// Watch reports schedule changes (deletions: nil).
func (r Schedules) Watch(ctx context.Context, ready func(), fn func(key string, rev uint64, sc *lambda.Schedule)) error {
	return r.s.scheds.watch(ctx, r.s.js, ready, fn)
}

// State returns when a schedule last fired (zero if never).
func (r Schedules) State(ctx context.Context, group, name string) (lambda.ScheduleState, error) {
	st, _, err := r.s.schedSt.get(ctx, scheduleKey(group, name))
	if errors.Is(err, ErrNotFound) {
		return lambda.ScheduleState{}, nil
	}
	if err != nil {
		return lambda.ScheduleState{}, err
	}
	return *st, nil
}

// AdvanceState records a schedule's last firing unless a later one is recorded already: every
// node's scheduler fires a due occurrence (the queue drops the copies by their request id), and
// a slow node must not move the record back to an occurrence that the others have passed.
func (r Schedules) AdvanceState(ctx context.Context, group, name string, st lambda.ScheduleState) error {
	key := scheduleKey(group, name)
	for attempt := 0; attempt < 10; attempt++ {
		cur, rev, err := r.s.schedSt.get(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			_, err = r.s.schedSt.create(ctx, key, &st)
		case err != nil:
			return err
		case !st.LastFire.After(cur.LastFire):
			return nil
		default:
			_, err = r.s.schedSt.update(ctx, key, &st, rev)
		}
		if errors.Is(err, ErrExists) || errors.Is(err, ErrConflict) {
			continue // another node wrote meanwhile: compare with its record
		}
		return err
	}
	return fmt.Errorf("schedule state %s: %w", key, ErrConflict)
}

// Next claims the next version number of a layer (never reused).
func (r Layers) Next(ctx context.Context, name string) (int, error) {
	for attempt := 0; attempt < 10; attempt++ {
		last, rev, err := r.s.layerSeq.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			one := 1
			if _, err := r.s.layerSeq.create(ctx, name, &one); errors.Is(err, ErrExists) {
				continue
			} else if err != nil {
				return 0, err
			}
			return 1, nil
		}
		if err != nil {
			return 0, err
		}
		next := *last + 1
		if _, err := r.s.layerSeq.update(ctx, name, &next, rev); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return 0, err
		}
		return next, nil
	}
	return 0, fmt.Errorf("layer %s: %w", name, ErrConflict)
}

// Put stores a published layer version.
func (r Layers) Put(ctx context.Context, name string, l *lambda.StoredLayer) error {
	_, err := r.s.layers.create(ctx, VersionKey(name, l.Layer.Version), l)
	return err
}

// Get returns a layer version.
func (r Layers) Get(ctx context.Context, name string, n int) (*lambda.StoredLayer, error) {
	l, _, err := r.s.layers.get(ctx, VersionKey(name, n))
	return l, err
}

// GetRevision returns a layer version and its KV revision, which Update checks.
func (r Layers) GetRevision(ctx context.Context, name string, n int) (*lambda.StoredLayer, uint64, error) {
	return r.s.layers.get(ctx, VersionKey(name, n))
}

// Update replaces a layer version's record (its policy) if it is still at revision rev;
// ErrConflict otherwise, ErrNotFound once the version is deleted.
func (r Layers) Update(ctx context.Context, name string, l *lambda.StoredLayer, rev uint64) error {
	_, err := r.s.layers.update(ctx, VersionKey(name, l.Layer.Version), l, rev)
	return err
}

// Delete removes a layer version (its content stays for the functions using it).
func (r Layers) Delete(ctx context.Context, name string, n int) error {
	return r.s.layers.delete(ctx, VersionKey(name, n))
}

// List returns every layer version, or one layer's when name is set, by name and
// version.
func (r Layers) List(ctx context.Context, name string) ([]*lambda.StoredLayer, error) {
	filter := ">"
	if name != "" {
		filter = name + ".*"
	}
	all, err := r.s.layers.list(ctx, filter)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b *lambda.StoredLayer) int {
		if c := strings.Compare(a.Layer.LayerArn, b.Layer.LayerArn); c != 0 {
			return c
		}
		return a.Layer.Version - b.Layer.Version
	})
	return all, nil
}

// Create stores a new event source mapping under its UUID.
func (r Mappings) Create(ctx context.Context, m *lambda.EventSourceMapping) error {
	_, err := r.s.esms.create(ctx, m.UUID, m)
	return err
}

// Get returns a mapping and its revision (ErrNotFound if none).
func (r Mappings) Get(ctx context.Context, uuid string) (*lambda.EventSourceMapping, uint64, error) {
	return r.s.esms.get(ctx, uuid)
}

// Update replaces a mapping if it is still at rev (ErrConflict otherwise).
func (r Mappings) Update(ctx context.Context, m *lambda.EventSourceMapping, rev uint64) error {
	_, err := r.s.esms.update(ctx, m.UUID, m, rev)
	return err
}

// Delete removes a mapping.
func (r Mappings) Delete(ctx context.Context, uuid string) error {
	return r.s.esms.delete(ctx, uuid)
}

// List returns every mapping in UUID order.
func (r Mappings) List(ctx context.Context) ([]*lambda.EventSourceMapping, error) {
	return r.s.esms.list(ctx, ">")
}

// Watch reports mapping changes (deletions: nil) by UUID.
func (r Mappings) Watch(ctx context.Context, ready func(), fn func(uuid string, rev uint64, m *lambda.EventSourceMapping)) error {
	return r.s.esms.watch(ctx, r.s.js, ready, fn)
}
