package store

// Repositories: one per kind of record, each a view of the Store that its consumers take
// through an interface of their own (only the methods they use).

// Versions is the repository of the published versions (immutable copies of a function, NAME.N).
type Versions struct{ s *Store }

// Versions returns the repository of the published versions (immutable copies of a function, NAME.N).
func (s *Store) Versions() Versions { return Versions{s} }

// Aliases is the repository of the aliases (NAME.ALIAS).
type Aliases struct{ s *Store }

// Aliases returns the repository of the aliases (NAME.ALIAS).
func (s *Store) Aliases() Aliases { return Aliases{s} }

// Provisioned is the repository of the provisioned-concurrency configs (NAME.QUALIFIER).
type Provisioned struct{ s *Store }

// Provisioned returns the repository of the provisioned-concurrency configs (NAME.QUALIFIER).
func (s *Store) Provisioned() Provisioned { return Provisioned{s} }

// Policies is the repository of the resource-based policies (NAME.QUALIFIER).
type Policies struct{ s *Store }

// Policies returns the repository of the resource-based policies (NAME.QUALIFIER).
func (s *Store) Policies() Policies { return Policies{s} }

// EventInvokeConfigs is the repository of the asynchronous invocation configs (NAME.QUALIFIER).
type EventInvokeConfigs struct{ s *Store }

// EventInvokeConfigs returns the repository of the asynchronous invocation configs (NAME.QUALIFIER).
func (s *Store) EventInvokeConfigs() EventInvokeConfigs { return EventInvokeConfigs{s} }

// URLs is the repository of the function URLs (by URL id).
type URLs struct{ s *Store }

// URLs returns the repository of the function URLs (by URL id).
func (s *Store) URLs() URLs { return URLs{s} }

// Schedules is the repository of the EventBridge Scheduler schedules (GROUP.NAME) and when each last fired.
type Schedules struct{ s *Store }

// Schedules returns the repository of the EventBridge Scheduler schedules (GROUP.NAME) and when each last fired.
func (s *Store) Schedules() Schedules { return Schedules{s} }

// Layers is the repository of the layer versions (NAME.N) and their version counters.
type Layers struct{ s *Store }

// Layers returns the repository of the layer versions (NAME.N) and their version counters.
func (s *Store) Layers() Layers { return Layers{s} }

// Mappings is the repository of the event source mappings (by UUID).
type Mappings struct{ s *Store }

// Mappings returns the repository of the event source mappings (by UUID).
func (s *Store) Mappings() Mappings { return Mappings{s} }

// Code is the repository of the code packages (object store, by SHA-256).
type Code struct{ s *Store }

// Code returns the repository of the code packages (object store, by SHA-256).
func (s *Store) Code() Code { return Code{s} }
