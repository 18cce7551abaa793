package control

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/eventfilter"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// FunctionView finds a function version as an invoke would (invoke.Service.Lookup): a mapping
// is accepted only for a function and qualifier that can be invoked.
type FunctionView interface {
	Lookup(ctx context.Context, name, qualifier string) (*invoke.Entry, error)
}

// mappingStore is the event source mappings repository (store.Mappings).
type mappingStore interface {
	Create(ctx context.Context, m *lambda.EventSourceMapping) error
	Get(ctx context.Context, uuid string) (*lambda.EventSourceMapping, uint64, error)
	Update(ctx context.Context, m *lambda.EventSourceMapping, rev uint64) error
	List(ctx context.Context) ([]*lambda.EventSourceMapping, error)
}

// Mappings serves CreateEventSourceMapping, GetEventSourceMapping, UpdateEventSourceMapping,
// DeleteEventSourceMapping and ListEventSourceMappings. It writes what the user asked for with
// a transitional state (Enabling, Disabling, Deleting); esm's manager, watching the mappings,
// starts and stops the pollers and records the state reached.
type Mappings struct {
	account     lambda.Account
	functions   FunctionView
	mappings    mappingStore
	js          jetstream.JetStream // where the queues and streams mappings read live
	checkpoints esm.Checkpoints     // stream mappings' positions
	sqs         esm.SQSQueues       // the SQS API's queues (arn:aws:sqs); nil: none
}

// MappingInput is CreateEventSourceMapping's and UpdateEventSourceMapping's request body.
type MappingInput struct {
	EventSourceArn                 *string                   `json:"EventSourceArn"`
	FunctionName                   *string                   `json:"FunctionName"`
	Enabled                        *bool                     `json:"Enabled"`
	BatchSize                      *int                      `json:"BatchSize"`
	MaximumBatchingWindowInSeconds *int                      `json:"MaximumBatchingWindowInSeconds"`
	FunctionResponseTypes          *[]string                 `json:"FunctionResponseTypes"`
	ScalingConfig                  *lambda.ScalingConfig     `json:"ScalingConfig"`
	DestinationConfig              *lambda.DestinationConfig `json:"DestinationConfig"`
	MaximumReceiveCount            *int                      `json:"MaximumReceiveCount"`
	VisibilityTimeoutSeconds       *float64                  `json:"VisibilityTimeoutSeconds"`
	StartingPosition               *string                   `json:"StartingPosition"`
	StartingPositionTimestamp      *float64                  `json:"StartingPositionTimestamp"`
	ParallelizationFactor          *int                      `json:"ParallelizationFactor"`
	BisectBatchOnFunctionError     *bool                     `json:"BisectBatchOnFunctionError"`
	MaximumRetryAttempts           *int                      `json:"MaximumRetryAttempts"`
	MaximumRecordAgeInSeconds      *int                      `json:"MaximumRecordAgeInSeconds"`
	TumblingWindowInSeconds        *int                      `json:"TumblingWindowInSeconds"`
	FilterCriteria                 *lambda.FilterCriteria    `json:"FilterCriteria"`
}

// MappingFilter is what ListEventSourceMappings selects by; empty fields select all.
type MappingFilter struct {
	FunctionName   string
	EventSourceArn string
}

// MappingList is ListEventSourceMappings's answer.
type MappingList struct {
	EventSourceMappings []*lambda.EventSourceMapping `json:"EventSourceMappings"`
	NextMarker          string                       `json:"NextMarker,omitempty"`
}

// unsupported is AWS's answer to a parameter the mapping's kind of event source does not take.
func unsupported(param string) error {
	return apierr.InvalidParameterValue("Unsupported %s parameter for given event source mapping type.", param)
}

// mappingNotFound is AWS's answer for a mapping that does not exist (it does not name it).
func mappingNotFound() *apierr.Error {
	return apierr.ResourceNotFound("The resource you requested does not exist.")
}

func epochNow() float64 { return float64(time.Now().UnixMilli()) / 1000 }

// kindCheck rejects the parameters of the other kind of event source (queue or stream).
func (in *MappingInput) kindCheck(stream bool) error {
	queueOnly := []struct {
		name string
		set  bool
	}{{"ScalingConfig", in.ScalingConfig != nil}, {"MaximumReceiveCount", in.MaximumReceiveCount != nil},
		{"VisibilityTimeoutSeconds", in.VisibilityTimeoutSeconds != nil}}
	streamOnly := []struct {
		name string
		set  bool
	}{{"StartingPosition", in.StartingPosition != nil}, {"StartingPositionTimestamp", in.StartingPositionTimestamp != nil},
		{"ParallelizationFactor", in.ParallelizationFactor != nil}, {"BisectBatchOnFunctionError", in.BisectBatchOnFunctionError != nil},
		{"MaximumRetryAttempts", in.MaximumRetryAttempts != nil}, {"MaximumRecordAgeInSeconds", in.MaximumRecordAgeInSeconds != nil}}
	other := streamOnly
	if stream {
		other = queueOnly
	}
	for _, p := range other {
		if p.set {
			return unsupported(p.name)
		}
	}
	if in.TumblingWindowInSeconds != nil && *in.TumblingWindowInSeconds != 0 {
		if !stream {
			return unsupported("TumblingWindowInSeconds")
		}
		return apierr.InvalidParameterValue("TumblingWindowInSeconds is not supported by Flint.")
	}
	return nil
}

// apply merges in into m (every field on create, the given ones on update) and validates the
// result; enabled is the state before, and apply returns the state desired. op is the
// operation, which decides how a function of another account is refused.
func (s *Mappings) apply(ctx context.Context, op string, m *lambda.EventSourceMapping, in *MappingInput, enabled bool) (bool, error) {
	if in.FunctionName != nil {
		ref, err := s.account.Resolve(*in.FunctionName, op)
		if err != nil {
			return false, err
		}
		if _, err := s.functions.Lookup(ctx, ref.Name, ref.Qualifier); errors.Is(err, invoke.ErrNotFound) {
			return false, apierr.ResourceNotFound("Function does not exist")
		} else if err != nil {
			return false, err
		}
		m.FunctionArn = s.account.FunctionARN(ref.Name, ref.Qualifier)
	}
	if in.Enabled != nil {
		enabled = *in.Enabled
	}
	set(&m.BatchSize, in.BatchSize)
	if in.FilterCriteria != nil {
		fc, err := checkFilterCriteria(in.FilterCriteria)
		if err != nil {
			return false, err
		}
		m.FilterCriteria = fc
	}
	set(&m.MaximumBatchingWindowInSeconds, in.MaximumBatchingWindowInSeconds)
	set(&m.FunctionResponseTypes, in.FunctionResponseTypes)
	if in.ScalingConfig != nil {
		m.ScalingConfig = in.ScalingConfig
		if m.ScalingConfig.MaximumConcurrency == 0 {
			m.ScalingConfig = nil
		}
	}
	if in.DestinationConfig != nil {
		m.DestinationConfig = in.DestinationConfig
	}
	set(&m.MaximumReceiveCount, in.MaximumReceiveCount)
	set(&m.VisibilityTimeoutSeconds, in.VisibilityTimeoutSeconds)
	stream := esm.IsStream(m.EventSourceArn)
	if err := in.kindCheck(stream); err != nil {
		return false, err
	}
	if esm.IsSQS(m.EventSourceArn) {
		// The queue's own VisibilityTimeout and RedrivePolicy decide what these Flint
		// extensions decide for arn:flint queues; Lambda takes no destination for SQS.
		switch {
		case in.MaximumReceiveCount != nil:
			return false, unsupported("MaximumReceiveCount")
		case in.VisibilityTimeoutSeconds != nil:
			return false, unsupported("VisibilityTimeoutSeconds")
		case in.DestinationConfig != nil && in.DestinationConfig.OnFailure != nil && in.DestinationConfig.OnFailure.Destination != "":
			return false, unsupported("DestinationConfig")
		}
	}
	if stream {
		if err := applyStream(m, in); err != nil {
			return false, err
		}
	}
	if m.BatchSize < 1 || m.BatchSize > 10000 {
		return false, apierr.Validation("1 validation error detected: Value '%d' at 'batchSize' failed to satisfy constraint: Member must have value between 1 and 10000", m.BatchSize)
	}
	if w := m.MaximumBatchingWindowInSeconds; w < 0 || w > 300 {
		return false, apierr.Validation("1 validation error detected: Value '%d' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value between 0 and 300", w)
	}
	if !stream && m.BatchSize > 10 && m.MaximumBatchingWindowInSeconds < 1 {
		return false, apierr.InvalidParameterValue("Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
	}
	if sc := m.ScalingConfig; sc != nil && (sc.MaximumConcurrency < 2 || sc.MaximumConcurrency > 1000) {
		return false, apierr.Validation("1 validation error detected: Value '%d' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value between 2 and 1000", sc.MaximumConcurrency)
	}
	for _, t := range m.FunctionResponseTypes {
		if t != "ReportBatchItemFailures" {
			return false, apierr.Validation("1 validation error detected: Value '[%s]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]", t)
		}
	}
	if d := m.DestinationConfig; d != nil {
		if d.OnSuccess != nil && d.OnSuccess.Destination != "" {
			return false, apierr.InvalidParameterValue("Unsupported DestinationConfig parameter for given event source mapping type.")
		}
		if d.OnFailure != nil && d.OnFailure.Destination != "" && !esm.ValidFailureDestination(d.OnFailure.Destination) {
			return false, apierr.InvalidParameterValue("The destination ARN %s is invalid. Event source mappings deliver to JetStream streams (arn:flint:jetstream:REGION:ACCOUNT:stream/NAME).", d.OnFailure.Destination)
		}
	}
	if n := m.MaximumReceiveCount; n < 0 || n > 1000 {
		return false, apierr.InvalidParameterValue("MaximumReceiveCount must be between 1 and 1000.")
	}
	if v := m.VisibilityTimeoutSeconds; v < 0 || v > 43200 {
		return false, apierr.InvalidParameterValue("VisibilityTimeoutSeconds must be between 0 and 43200.")
	}
	return enabled, nil
}

// maxFilters is Lambda's default quota of filters per event source mapping.
const maxFilters = 5

// checkFilterCriteria validates a mapping's filters; no filters (FilterCriteria {} or an empty
// list) removes filtering, as on Lambda.
func checkFilterCriteria(fc *lambda.FilterCriteria) (*lambda.FilterCriteria, error) {
	if len(fc.Filters) == 0 {
		return nil, nil
	}
	if len(fc.Filters) > maxFilters {
		return nil, apierr.InvalidParameterValue("The number of filters in FilterCriteria (%d) exceeds the limit of %d.", len(fc.Filters), maxFilters)
	}
	for _, f := range fc.Filters {
		if _, err := eventfilter.Compile(f.Pattern); err != nil {
			return nil, apierr.InvalidParameterValue("Invalid filter pattern definition.")
		}
	}
	return &lambda.FilterCriteria{Filters: slices.Clone(fc.Filters)}, nil
}

// applyStream merges and validates a stream mapping's own parameters.
func applyStream(m *lambda.EventSourceMapping, in *MappingInput) error {
	if in.StartingPosition != nil {
		if m.StartingPosition != "" { // set at creation only, as Lambda
			return apierr.InvalidParameterValue("StartingPosition cannot be updated.")
		}
		switch *in.StartingPosition {
		case "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP":
		default:
			return apierr.Validation("1 validation error detected: Value '%s' at 'startingPosition' failed to satisfy constraint: Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]", *in.StartingPosition)
		}
		m.StartingPosition = *in.StartingPosition
		set(&m.StartingPositionTimestamp, in.StartingPositionTimestamp)
		if (m.StartingPosition == "AT_TIMESTAMP") != (in.StartingPositionTimestamp != nil) {
			return apierr.InvalidParameterValue("StartingPositionTimestamp must be given with StartingPosition AT_TIMESTAMP, and only with it.")
		}
	} else if in.StartingPositionTimestamp != nil {
		return apierr.InvalidParameterValue("StartingPositionTimestamp cannot be updated.")
	}
	set(&m.ParallelizationFactor, in.ParallelizationFactor)
	if in.BisectBatchOnFunctionError != nil {
		m.BisectBatchOnFunctionError = in.BisectBatchOnFunctionError
	}
	if in.MaximumRetryAttempts != nil {
		m.MaximumRetryAttempts = in.MaximumRetryAttempts
	}
	if in.MaximumRecordAgeInSeconds != nil {
		m.MaximumRecordAgeInSeconds = in.MaximumRecordAgeInSeconds
	}
	if f := m.ParallelizationFactor; f < 1 || f > 10 {
		return apierr.Validation("1 validation error detected: Value '%d' at 'parallelizationFactor' failed to satisfy constraint: Member must have value between 1 and 10", f)
	}
	if n := *m.MaximumRetryAttempts; n < -1 || n > 10000 {
		return apierr.Validation("1 validation error detected: Value '%d' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value between -1 and 10000", n)
	}
	if n := *m.MaximumRecordAgeInSeconds; n < -1 || n > 604800 {
		return apierr.Validation("1 validation error detected: Value '%d' at 'maximumRecordAgeInSeconds' failed to satisfy constraint: Member must have value between -1 and 604800", n)
	} else if n >= 0 && n < 60 {
		return apierr.InvalidParameterValue("MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800.")
	}
	return nil
}

// Create validates and stores a new mapping, making its event source exist first. It returns
// the mapping as CreateEventSourceMapping answers it (State Creating).
func (s *Mappings) Create(ctx context.Context, in MappingInput) (*lambda.EventSourceMapping, error) {
	if in.FunctionName == nil || *in.FunctionName == "" {
		return nil, apierr.Validation("1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null")
	}
	if in.EventSourceArn == nil {
		return nil, apierr.InvalidParameterValue("Unrecognized event source.")
	}
	name, stream := esm.StreamName(*in.EventSourceArn)
	sqsQueue := esm.IsSQS(*in.EventSourceArn) && s.sqs != nil // without the SQS API, an unknown kind of ARN
	// AWS's order: a parameter the kind of source does not take, then a missing function, then
	// the source itself.
	if sqsQueue && in.DestinationConfig != nil {
		return nil, unsupported("DestinationConfig")
	}
	if ref, err := s.account.Resolve(*in.FunctionName, "CreateEventSourceMapping"); err == nil {
		if _, err := s.functions.Lookup(ctx, ref.Name, ref.Qualifier); errors.Is(err, invoke.ErrNotFound) {
			return nil, apierr.InvalidParameterValue("Function does not exist")
		}
	}
	if sqsQueue {
		if _, err := s.sqs.Source(ctx, *in.EventSourceArn); err != nil {
			return nil, apierr.InvalidParameterValue("Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue does not exist for this wsdl version.")
		}
	} else if !stream {
		var err error
		if name, err = esm.QueueName(*in.EventSourceArn); err != nil {
			return nil, apierr.InvalidParameterValue("Unrecognized event source: %v", err)
		}
	}
	if stream && in.StartingPosition == nil {
		return nil, apierr.InvalidParameterValue("StartingPosition is required for stream event sources (TRIM_HORIZON, LATEST or AT_TIMESTAMP).")
	}
	id := uuid.NewString()
	m := &lambda.EventSourceMapping{UUID: id, EventSourceArn: *in.EventSourceArn, BatchSize: esm.DefaultBatchSize,
		EventSourceMappingArn: "arn:aws:lambda:" + s.account.Region + ":" + s.account.ID + ":event-source-mapping:" + id,
		StateTransitionReason: "USER_INITIATED", LastModified: epochNow()}
	if stream {
		m.BatchSize, m.ParallelizationFactor = esm.DefaultStreamBatchSize, 1
		no, forever := false, -1
		m.BisectBatchOnFunctionError, m.MaximumRetryAttempts, m.MaximumRecordAgeInSeconds = &no, &forever, &forever
	}
	enabled, err := s.apply(ctx, "CreateEventSourceMapping", m, &in, true)
	if err != nil {
		return nil, err
	}
	all, err := s.mappings.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range all {
		if o.EventSourceArn != m.EventSourceArn {
			continue
		}
		if !stream && !sqsQueue { // an arn:flint queue admits one consumer
			return nil, apierr.ResourceConflict("An event source mapping with event source (\"%s\") already exists. Please update or delete the existing mapping with UUID %s", o.EventSourceArn, o.UUID)
		}
		if o.FunctionArn == m.FunctionArn {
			return nil, apierr.ResourceConflict("The event source arn (\" %s \") and function (\" %s \") provided mapping already exists. Please update or delete the existing mapping with UUID %s", o.EventSourceArn, o.FunctionArn, o.UUID)
		}
	}
	// The source exists once the 202 is out, so that clients can publish at once; a stream's
	// starting position is fixed now.
	if esm.IsKinesis(m.EventSourceArn) {
		// A Kinesis stream exists only once the Kinesis API created it (Lambda's words for a
		// stream it cannot read).
		if err := esm.CheckKinesis(ctx, s.js, name); errors.Is(err, esm.ErrNotKinesis) {
			return nil, apierr.InvalidParameterValue("Cannot access stream %s. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream.", m.EventSourceArn)
		} else if err != nil {
			return nil, err
		}
	}
	if stream {
		if _, err := esm.EnsureStream(ctx, s.js, name); err != nil {
			return nil, apierr.InvalidParameterValue("Invalid event source: %v", err)
		}
		if err := esm.InitStreamCheckpoint(ctx, s.js, s.checkpoints, id, m); err != nil {
			return nil, err
		}
	} else if sqsQueue {
		// The queue and its shared consumer exist (Source above).
	} else if _, err := esm.EnsureQueue(ctx, s.js, name); err != nil {
		return nil, apierr.InvalidParameterValue("Invalid event source: %v", err)
	}
	m.State = lambda.ESMDisabling
	if enabled {
		m.State = lambda.ESMEnabling
	}
	if err := s.mappings.Create(ctx, m); err != nil {
		if stream {
			_ = s.checkpoints.Delete(ctx, id)
		}
		return nil, err
	}
	out := *m
	out.State = lambda.ESMCreating
	return &out, nil
}

// Get returns mapping id.
func (s *Mappings) Get(ctx context.Context, id string) (*lambda.EventSourceMapping, error) {
	m, _, err := s.mappings.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, mappingNotFound()
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Update changes mapping id as in asks (not its event source) and returns it as
// UpdateEventSourceMapping answers it: Enabling or Disabling when in switches it on or off,
// else Updating.
func (s *Mappings) Update(ctx context.Context, id string, in MappingInput) (*lambda.EventSourceMapping, error) {
	if in.EventSourceArn != nil {
		return nil, apierr.InvalidParameterValue("EventSourceArn cannot be updated.")
	}
	shown := lambda.ESMUpdating // the state the answer shows
	m, err := s.modify(ctx, id, func(m *lambda.EventSourceMapping) error {
		if m.State == lambda.ESMDeleting {
			return apierr.ResourceConflict("The event source mapping is being deleted.")
		}
		was := m.State == lambda.ESMEnabled || m.State == lambda.ESMEnabling
		enabled, err := s.apply(ctx, "UpdateEventSourceMapping", m, &in, was)
		if err != nil {
			return err
		}
		shown = lambda.ESMUpdating
		switch {
		case enabled:
			m.State = lambda.ESMEnabling
			if !was {
				shown = lambda.ESMEnabling
			}
		default:
			m.State = lambda.ESMDisabling
			if was {
				shown = lambda.ESMDisabling
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := *m
	out.State = shown
	return &out, nil
}

// Delete marks mapping id Deleting (the manager stops its poller and removes it) and returns it.
func (s *Mappings) Delete(ctx context.Context, id string) (*lambda.EventSourceMapping, error) {
	return s.modify(ctx, id, func(m *lambda.EventSourceMapping) error {
		m.State = lambda.ESMDeleting
		return nil
	})
}

// modify applies a user's change to mapping id and stores it, starting again from a fresh read
// when the poller (or another request) wrote the mapping in between.
func (s *Mappings) modify(ctx context.Context, id string, change func(*lambda.EventSourceMapping) error) (*lambda.EventSourceMapping, error) {
	for range 5 {
		m, rev, err := s.mappings.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, mappingNotFound()
		}
		if err != nil {
			return nil, err
		}
		if err := change(m); err != nil {
			return nil, err
		}
		m.LastModified = epochNow()
		m.StateTransitionReason = "USER_INITIATED"
		if err := s.mappings.Update(ctx, m, rev); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, apierr.ResourceConflict("The event source mapping was modified concurrently; try again.")
}

// List returns a page of the mappings f selects, by UUID.
func (s *Mappings) List(ctx context.Context, f MappingFilter, p Page) (*MappingList, error) {
	var fnArn string
	if f.FunctionName != "" {
		ref, err := s.account.Resolve(f.FunctionName, "ListEventSourceMappings")
		if err != nil {
			return nil, err
		}
		fnArn = s.account.FunctionARN(ref.Name, ref.Qualifier)
	}
	all, err := s.mappings.List(ctx)
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(m *lambda.EventSourceMapping) bool {
		return (fnArn != "" && m.FunctionArn != fnArn) || (f.EventSourceArn != "" && m.EventSourceArn != f.EventSourceArn) ||
			(p.Marker != "" && m.UUID <= p.Marker)
	})
	out := &MappingList{EventSourceMappings: []*lambda.EventSourceMapping{}}
	out.EventSourceMappings = append(out.EventSourceMappings, all[:min(p.MaxItems, len(all))]...)
	if len(all) > p.MaxItems {
		out.NextMarker = all[p.MaxItems-1].UUID
	}
	return out, nil
}
