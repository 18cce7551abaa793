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

// GetVersion returns a published version and its KV revision.
func (s *Store) GetVersion(ctx context.Context, name string, n int) (*lambda.Function, uint64, error) {
	return s.versions.get(ctx, VersionKey(name, n))
}

// CreateVersion stores a published version (immutable).
func (s *Store) CreateVersion(ctx context.Context, v *lambda.Function, n int) (uint64, error) {
	return s.versions.create(ctx, VersionKey(v.Config.FunctionName, n), v)
}

// DeleteVersion removes a published version; it returns the deletion's revision (or a later one).
func (s *Store) DeleteVersion(ctx context.Context, name string, n int) (uint64, error) {
	return s.versions.remove(ctx, VersionKey(name, n))
}

// ListVersions returns a function's published versions in version order.
func (s *Store) ListVersions(ctx context.Context, name string) ([]*lambda.Function, error) {
	vs, err := s.versions.list(ctx, name+".*")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(vs, func(a, b *lambda.Function) int { return versionNumber(a) - versionNumber(b) })
	return vs, nil
}

func versionNumber(f *lambda.Function) int {
	n, _ := strconv.Atoi(f.Config.Version)
	return n
}

// WatchVersions reports version changes (deletions: v nil) with their KV keys.
func (s *Store) WatchVersions(ctx context.Context, ready func(), fn func(key string, rev uint64, v *lambda.Function)) error {
	return s.versions.watch(ctx, ready, fn)
}

// Alias is a stored alias with its revision.
type Alias struct {
	*lambda.Alias
	Revision uint64
}

// GetAlias returns an alias.
func (s *Store) GetAlias(ctx context.Context, name, alias string) (Alias, error) {
	a, rev, err := s.aliases.get(ctx, AliasKey(name, alias))
	if err != nil {
		return Alias{}, err
	}
	return Alias{Alias: a, Revision: rev}, nil
}

// CreateAlias stores a new alias; ErrExists if taken.
func (s *Store) CreateAlias(ctx context.Context, name string, a *lambda.Alias) (uint64, error) {
	return s.aliases.create(ctx, AliasKey(name, a.Name), a)
}

// UpdateAlias replaces an alias at revision rev; ErrConflict otherwise.
func (s *Store) UpdateAlias(ctx context.Context, name string, a *lambda.Alias, rev uint64) (uint64, error) {
	return s.aliases.update(ctx, AliasKey(name, a.Name), a, rev)
}

// DeleteAlias removes an alias; it returns the deletion's revision (or a later one).
func (s *Store) DeleteAlias(ctx context.Context, name, alias string) (uint64, error) {
	return s.aliases.remove(ctx, AliasKey(name, alias))
}

// ListAliases returns a function's aliases by name.
func (s *Store) ListAliases(ctx context.Context, name string) ([]*lambda.Alias, error) {
	return s.aliases.list(ctx, name+".*")
}

// WatchAliases reports alias changes (deletions: a nil) with their KV keys.
func (s *Store) WatchAliases(ctx context.Context, ready func(), fn func(key string, rev uint64, a *lambda.Alias)) error {
	return s.aliases.watch(ctx, ready, fn)
}

// PutProvisioned stores a provisioned-concurrency config for NAME.QUALIFIER.
func (s *Store) PutProvisioned(ctx context.Context, name, qualifier string, pc *lambda.ProvisionedConcurrency) (uint64, error) {
	return s.prov.put(ctx, AliasKey(name, qualifier), pc)
}

// GetProvisioned returns the provisioned-concurrency config of NAME.QUALIFIER.
func (s *Store) GetProvisioned(ctx context.Context, name, qualifier string) (*lambda.ProvisionedConcurrency, uint64, error) {
	return s.prov.get(ctx, AliasKey(name, qualifier))
}

// DeleteProvisioned removes a provisioned-concurrency config; it returns the deletion's revision
// (or a later one).
func (s *Store) DeleteProvisioned(ctx context.Context, name, qualifier string) (uint64, error) {
	return s.prov.remove(ctx, AliasKey(name, qualifier))
}

// ListProvisioned returns a function's provisioned-concurrency configs by qualifier.
func (s *Store) ListProvisioned(ctx context.Context, name string) (map[string]*lambda.ProvisionedConcurrency, error) {
	keys, err := s.prov.keys(ctx, name+".*")
	if err != nil {
		return nil, err
	}
	out := make(map[string]*lambda.ProvisionedConcurrency, len(keys))
	for _, k := range keys {
		pc, _, err := s.prov.get(ctx, k)
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

// WatchProvisioned reports provisioned-concurrency changes (deletions: nil) by KV key.
func (s *Store) WatchProvisioned(ctx context.Context, ready func(), fn func(key string, rev uint64, pc *lambda.ProvisionedConcurrency)) error {
	return s.prov.watch(ctx, ready, fn)
}

// PolicyKey is the KV key of the policy of NAME's qualifier ("": the unqualified function).
func PolicyKey(name, qualifier string) string {
	if qualifier == "" {
		return name + ".=" // '=' cannot appear in a version or alias name
	}
	return name + "." + qualifier
}

// GetPolicy returns a policy and its revision (ErrNotFound if none).
func (s *Store) GetPolicy(ctx context.Context, name, qualifier string) (*lambda.StoredPolicy, uint64, error) {
	return s.policies.get(ctx, PolicyKey(name, qualifier))
}

// PutPolicy stores a policy: created when rev is 0, else replaced if still at rev (ErrConflict).
// It returns the new revision.
func (s *Store) PutPolicy(ctx context.Context, name, qualifier string, p *lambda.StoredPolicy, rev uint64) (uint64, error) {
	if rev == 0 {
		n, err := s.policies.create(ctx, PolicyKey(name, qualifier), p)
		if errors.Is(err, ErrExists) {
			err = fmt.Errorf("policy %s: %w", PolicyKey(name, qualifier), ErrConflict)
		}
		return n, err
	}
	return s.policies.update(ctx, PolicyKey(name, qualifier), p, rev)
}

// DeletePolicy removes a policy; it returns the deletion's revision (or a later one).
func (s *Store) DeletePolicy(ctx context.Context, name, qualifier string) (uint64, error) {
	return s.policies.remove(ctx, PolicyKey(name, qualifier))
}

// WatchPolicies reports policy changes (deletions: p nil) with their KV keys.
func (s *Store) WatchPolicies(ctx context.Context, ready func(), fn func(key string, rev uint64, p *lambda.StoredPolicy)) error {
	return s.policies.watch(ctx, ready, fn)
}

// eicKey is the KV key of NAME's config for qualifier ("" or $LATEST: the unqualified function).
func eicKey(name, qualifier string) string {
	if qualifier == "" || qualifier == lambda.LatestVersion {
		return name + ".=latest" // '=' cannot appear in a version or alias name
	}
	return name + "." + qualifier
}

// PutEventInvokeConfig stores (creates or replaces) an asynchronous invocation config.
func (s *Store) PutEventInvokeConfig(ctx context.Context, name, qualifier string, c *lambda.EventInvokeConfig) error {
	_, err := s.eic.put(ctx, eicKey(name, qualifier), c)
	return err
}

// GetEventInvokeConfig returns an asynchronous invocation config.
func (s *Store) GetEventInvokeConfig(ctx context.Context, name, qualifier string) (*lambda.EventInvokeConfig, error) {
	c, _, err := s.eic.get(ctx, eicKey(name, qualifier))
	return c, err
}

// DeleteEventInvokeConfig removes an asynchronous invocation config.
func (s *Store) DeleteEventInvokeConfig(ctx context.Context, name, qualifier string) error {
	return s.eic.delete(ctx, eicKey(name, qualifier))
}

// ListEventInvokeConfigs returns a function's asynchronous invocation configs.
func (s *Store) ListEventInvokeConfigs(ctx context.Context, name string) ([]*lambda.EventInvokeConfig, error) {
	return s.eic.list(ctx, name+".*")
}

// CreateFunctionURL stores a new function URL under its id; it returns the revision.
func (s *Store) CreateFunctionURL(ctx context.Context, u *lambda.FunctionURL) (uint64, error) {
	return s.urls.create(ctx, u.ID, u)
}

// UpdateFunctionURL replaces a function URL; it returns the new revision.
func (s *Store) UpdateFunctionURL(ctx context.Context, u *lambda.FunctionURL) (uint64, error) {
	_, rev, err := s.urls.get(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	return s.urls.update(ctx, u.ID, u, rev)
}

// GetFunctionURLByID returns the function URL with this id.
func (s *Store) GetFunctionURLByID(ctx context.Context, id string) (*lambda.FunctionURL, error) {
	u, _, err := s.urls.get(ctx, id)
	return u, err
}

// DeleteFunctionURL removes a function URL; it returns the deletion's revision (or a later one).
func (s *Store) DeleteFunctionURL(ctx context.Context, id string) (uint64, error) {
	return s.urls.remove(ctx, id)
}

// ListFunctionURLs returns a function's URLs (one per qualifier).
func (s *Store) ListFunctionURLs(ctx context.Context, name string) ([]*lambda.FunctionURL, error) {
	all, err := s.urls.list(ctx, ">")
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

// WatchFunctionURLs reports function URL changes (deletions: nil) by URL id.
func (s *Store) WatchFunctionURLs(ctx context.Context, ready func(), fn func(id string, rev uint64, u *lambda.FunctionURL)) error {
	return s.urls.watch(ctx, ready, fn)
}

func scheduleKey(group, name string) string { return group + "." + name }

// CreateSchedule stores a new schedule; ErrExists if taken.
func (s *Store) CreateSchedule(ctx context.Context, sc *lambda.Schedule) error {
	_, err := s.scheds.create(ctx, scheduleKey(sc.GroupName, sc.Name), sc)
	return err
}

// UpdateSchedule replaces a schedule; ErrNotFound if absent.
func (s *Store) UpdateSchedule(ctx context.Context, sc *lambda.Schedule) error {
	key := scheduleKey(sc.GroupName, sc.Name)
	_, rev, err := s.scheds.get(ctx, key)
	if err != nil {
		return err
	}
	_, err = s.scheds.update(ctx, key, sc, rev)
	return err
}

// GetSchedule returns a schedule.
func (s *Store) GetSchedule(ctx context.Context, group, name string) (*lambda.Schedule, error) {
	sc, _, err := s.scheds.get(ctx, scheduleKey(group, name))
	return sc, err
}

// DeleteSchedule removes a schedule and its firing state.
func (s *Store) DeleteSchedule(ctx context.Context, group, name string) error {
	if err := s.scheds.delete(ctx, scheduleKey(group, name)); err != nil {
		return err
	}
	if err := s.schedSt.delete(ctx, scheduleKey(group, name)); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// ListSchedules returns every schedule, by group and name.
func (s *Store) ListSchedules(ctx context.Context) ([]*lambda.Schedule, error) {
	return s.scheds.list(ctx, ">")
}

// WatchSchedules reports schedule changes (deletions: nil).
func (s *Store) WatchSchedules(ctx context.Context, ready func(), fn func(key string, rev uint64, sc *lambda.Schedule)) error {
	return s.scheds.watch(ctx, ready, fn)
}

// ScheduleState returns when a schedule last fired (zero if never).
func (s *Store) ScheduleState(ctx context.Context, group, name string) (lambda.ScheduleState, error) {
	st, _, err := s.schedSt.get(ctx, scheduleKey(group, name))
	if errors.Is(err, ErrNotFound) {
		return lambda.ScheduleState{}, nil
	}
	if err != nil {
		return lambda.ScheduleState{}, err
	}
	return *st, nil
}

// PutScheduleState records a schedule's last firing.
func (s *Store) PutScheduleState(ctx context.Context, group, name string, st lambda.ScheduleState) error {
	_, err := s.schedSt.put(ctx, scheduleKey(group, name), &st)
	return err
}

// NextLayerVersion claims the next version number of a layer (never reused).
func (s *Store) NextLayerVersion(ctx context.Context, name string) (int, error) {
	for attempt := 0; attempt < 10; attempt++ {
		last, rev, err := s.layerSeq.get(ctx, name)
		if errors.Is(err, ErrNotFound) {
			one := 1
			if _, err := s.layerSeq.create(ctx, name, &one); errors.Is(err, ErrExists) {
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
		if _, err := s.layerSeq.update(ctx, name, &next, rev); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return 0, err
		}
		return next, nil
	}
	return 0, fmt.Errorf("layer %s: %w", name, ErrConflict)
}

// PutLayerVersion stores a published layer version.
func (s *Store) PutLayerVersion(ctx context.Context, name string, l *lambda.StoredLayer) error {
	_, err := s.layers.create(ctx, VersionKey(name, l.Layer.Version), l)
	return err
}

// GetLayerVersion returns a layer version.
func (s *Store) GetLayerVersion(ctx context.Context, name string, n int) (*lambda.StoredLayer, error) {
	l, _, err := s.layers.get(ctx, VersionKey(name, n))
	return l, err
}

// DeleteLayerVersion removes a layer version (its content stays for the functions using it).
func (s *Store) DeleteLayerVersion(ctx context.Context, name string, n int) error {
	return s.layers.delete(ctx, VersionKey(name, n))
}

// ListLayerVersions returns every layer version, or one layer's when name is set, by name and
// version.
func (s *Store) ListLayerVersions(ctx context.Context, name string) ([]*lambda.StoredLayer, error) {
	filter := ">"
	if name != "" {
		filter = name + ".*"
	}
	all, err := s.layers.list(ctx, filter)
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

// CreateEventSourceMapping stores a new event source mapping under its UUID.
func (s *Store) CreateEventSourceMapping(ctx context.Context, m *lambda.EventSourceMapping) error {
	_, err := s.esms.create(ctx, m.UUID, m)
	return err
}

// GetEventSourceMapping returns a mapping and its revision (ErrNotFound if none).
func (s *Store) GetEventSourceMapping(ctx context.Context, uuid string) (*lambda.EventSourceMapping, uint64, error) {
	return s.esms.get(ctx, uuid)
}

// UpdateEventSourceMapping replaces a mapping if it is still at rev (ErrConflict otherwise).
func (s *Store) UpdateEventSourceMapping(ctx context.Context, m *lambda.EventSourceMapping, rev uint64) error {
	_, err := s.esms.update(ctx, m.UUID, m, rev)
	return err
}

// DeleteEventSourceMapping removes a mapping.
func (s *Store) DeleteEventSourceMapping(ctx context.Context, uuid string) error {
	return s.esms.delete(ctx, uuid)
}

// ListEventSourceMappings returns every mapping in UUID order.
func (s *Store) ListEventSourceMappings(ctx context.Context) ([]*lambda.EventSourceMapping, error) {
	return s.esms.list(ctx, ">")
}

// WatchEventSourceMappings reports mapping changes (deletions: nil) by UUID.
func (s *Store) WatchEventSourceMappings(ctx context.Context, ready func(), fn func(uuid string, rev uint64, m *lambda.EventSourceMapping)) error {
	return s.esms.watch(ctx, ready, fn)
}
