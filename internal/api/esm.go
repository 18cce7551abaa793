package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// esmInput is the body of CreateEventSourceMapping and UpdateEventSourceMapping.
type esmInput struct {
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
}

// unsupported is AWS's answer to a parameter the mapping's kind of event source does not take.
func unsupported(param string) error {
	return apierr.InvalidParameterValue("Unsupported %s parameter for given event source mapping type.", param)
}

// kindCheck rejects the parameters of the other kind of event source (queue or stream).
func (in *esmInput) kindCheck(stream bool) error {
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
// result; enabled reports the desired state.
func (a *API) applyESM(r *http.Request, m *lambda.EventSourceMapping, in *esmInput, enabled bool) (bool, error) {
	if in.FunctionName != nil {
		name, qualifier, err := a.resolve(r, *in.FunctionName)
		if err != nil {
			return false, err
		}
		if _, err := a.invoke.Lookup(r.Context(), name, qualifier); errors.Is(err, invoke.ErrNotFound) {
			return false, apierr.ResourceNotFound("Function does not exist")
		} else if err != nil {
			return false, err
		}
		m.FunctionArn = a.account.FunctionARN(name, qualifier)
	}
	if in.Enabled != nil {
		enabled = *in.Enabled
	}
	if in.BatchSize != nil {
		m.BatchSize = *in.BatchSize
	}
	if in.MaximumBatchingWindowInSeconds != nil {
		m.MaximumBatchingWindowInSeconds = *in.MaximumBatchingWindowInSeconds
	}
	if in.FunctionResponseTypes != nil {
		m.FunctionResponseTypes = *in.FunctionResponseTypes
	}
	if in.ScalingConfig != nil {
		m.ScalingConfig = in.ScalingConfig
		if m.ScalingConfig.MaximumConcurrency == 0 {
			m.ScalingConfig = nil
		}
	}
	if in.DestinationConfig != nil {
		m.DestinationConfig = in.DestinationConfig
	}
	if in.MaximumReceiveCount != nil {
		m.MaximumReceiveCount = *in.MaximumReceiveCount
	}
	if in.VisibilityTimeoutSeconds != nil {
		m.VisibilityTimeoutSeconds = *in.VisibilityTimeoutSeconds
	}
	stream := esm.IsStream(m.EventSourceArn)
	if err := in.kindCheck(stream); err != nil {
		return false, err
	}
	if stream {
		if err := applyStreamESM(m, in); err != nil {
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

func (a *API) createEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	var in esmInput
	if err := decodeBody(r, 1<<16, "CreateEventSourceMapping", &in); err != nil {
		return err
	}
	if in.FunctionName == nil || *in.FunctionName == "" {
		return apierr.Validation("1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null")
	}
	if in.EventSourceArn == nil {
		return apierr.InvalidParameterValue("Unrecognized event source, must be a Flint queue or stream ARN (arn:flint:jetstream:REGION:ACCOUNT:queue/NAME or stream/NAME).")
	}
	name, stream := esm.StreamName(*in.EventSourceArn)
	if !stream {
		var err error
		if name, err = esm.QueueName(*in.EventSourceArn); err != nil {
			return apierr.InvalidParameterValue("Unrecognized event source: %v", err)
		}
	}
	if stream && in.StartingPosition == nil {
		return apierr.InvalidParameterValue("StartingPosition is required for stream event sources (TRIM_HORIZON, LATEST or AT_TIMESTAMP).")
	}
	id := uuid.NewString()
	m := &lambda.EventSourceMapping{UUID: id, EventSourceArn: *in.EventSourceArn, BatchSize: esm.DefaultBatchSize,
		EventSourceMappingArn: "arn:aws:lambda:" + a.account.Region + ":" + a.account.ID + ":event-source-mapping:" + id,
		StateTransitionReason: "USER_INITIATED", LastModified: float64(time.Now().UnixMilli()) / 1000}
	if stream {
		m.BatchSize, m.ParallelizationFactor = esm.DefaultStreamBatchSize, 1
		no, forever := false, -1
		m.BisectBatchOnFunctionError, m.MaximumRetryAttempts, m.MaximumRecordAgeInSeconds = &no, &forever, &forever
	}
	enabled, err := a.applyESM(r, m, &in, true)
	if err != nil {
		return err
	}
	all, err := a.store.Mappings().List(r.Context())
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.EventSourceArn != m.EventSourceArn {
			continue
		}
		if !stream {
			return apierr.ResourceConflict("An event source mapping with event source (\"%s\") already exists. Please update or delete the existing mapping with UUID %s", o.EventSourceArn, o.UUID)
		}
		if o.FunctionArn == m.FunctionArn {
			return apierr.ResourceConflict("The event source arn (\" %s \") and function (\" %s \") provided mapping already exists. Please update or delete the existing mapping with UUID %s", o.EventSourceArn, o.FunctionArn, o.UUID)
		}
	}
	// The source exists once the 202 is out, so that clients can publish at once; a stream's
	// starting position is fixed now.
	if stream {
		if _, err := esm.EnsureStream(r.Context(), a.store.JetStream(), name); err != nil {
			return apierr.InvalidParameterValue("Invalid event source: %v", err)
		}
		if err := esm.InitStreamCheckpoint(r.Context(), a.store.JetStream(), a.store.Checkpoints(), id, m); err != nil {
			return err
		}
	} else if _, err := esm.EnsureQueue(r.Context(), a.store.JetStream(), name); err != nil {
		return apierr.InvalidParameterValue("Invalid event source: %v", err)
	}
	m.State = lambda.ESMDisabling
	if enabled {
		m.State = lambda.ESMEnabling
	}
	if err := a.store.Mappings().Create(r.Context(), m); err != nil {
		if stream {
			_ = a.store.Checkpoints().Delete(r.Context(), id)
		}
		return err
	}
	out := *m
	out.State = lambda.ESMCreating
	return writeJSON(w, http.StatusAccepted, out)
}

// applyStreamESM merges and validates a stream mapping's own parameters.
func applyStreamESM(m *lambda.EventSourceMapping, in *esmInput) error {
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
		if in.StartingPositionTimestamp != nil {
			m.StartingPositionTimestamp = *in.StartingPositionTimestamp
		}
		if (m.StartingPosition == "AT_TIMESTAMP") != (in.StartingPositionTimestamp != nil) {
			return apierr.InvalidParameterValue("StartingPositionTimestamp must be given with StartingPosition AT_TIMESTAMP, and only with it.")
		}
	} else if in.StartingPositionTimestamp != nil {
		return apierr.InvalidParameterValue("StartingPositionTimestamp cannot be updated.")
	}
	if in.ParallelizationFactor != nil {
		m.ParallelizationFactor = *in.ParallelizationFactor
	}
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

func (a *API) esmNotFound(id string) *apierr.Error {
	return apierr.ResourceNotFound("The resource you requested does not exist. (Service: Lambda, Status Code: 404, Request ID: %s)", id)
}

func (a *API) getEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	m, _, err := a.store.Mappings().Get(r.Context(), r.PathValue("uuid"))
	if errors.Is(err, store.ErrNotFound) {
		return a.esmNotFound(r.PathValue("uuid"))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}

func (a *API) updateEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	var in esmInput
	if err := decodeBody(r, 1<<16, "UpdateEventSourceMapping", &in); err != nil {
		return err
	}
	if in.EventSourceArn != nil {
		return apierr.InvalidParameterValue("EventSourceArn cannot be updated.")
	}
	shown := lambda.ESMUpdating // the state the answer shows
	m, err := a.modifyESM(r.Context(), r.PathValue("uuid"), func(m *lambda.EventSourceMapping) error {
		if m.State == lambda.ESMDeleting {
			return apierr.ResourceConflict("The event source mapping is being deleted.")
		}
		was := m.State == lambda.ESMEnabled || m.State == lambda.ESMEnabling
		enabled, err := a.applyESM(r, m, &in, was)
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
		return err
	}
	out := *m
	out.State = shown
	return writeJSON(w, http.StatusAccepted, out)
}

func (a *API) deleteEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	m, err := a.modifyESM(r.Context(), r.PathValue("uuid"), func(m *lambda.EventSourceMapping) error {
		m.State = lambda.ESMDeleting
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, m)
}

// modifyESM applies a user's change to mapping id and stores it, starting again from a fresh read
// when the poller (or another request) wrote the mapping in between.
func (a *API) modifyESM(ctx context.Context, id string, change func(*lambda.EventSourceMapping) error) (*lambda.EventSourceMapping, error) {
	for range 5 {
		m, rev, err := a.store.Mappings().Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, a.esmNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		if err := change(m); err != nil {
			return nil, err
		}
		m.LastModified = float64(time.Now().UnixMilli()) / 1000
		m.StateTransitionReason = "USER_INITIATED"
		if err := a.store.Mappings().Update(ctx, m, rev); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		return m, nil
	}
	return nil, apierr.ResourceConflict("The event source mapping was modified concurrently; try again.")
}

func (a *API) listEventSourceMappings(w http.ResponseWriter, r *http.Request, _ string) error {
	page, err := paging(r)
	if err != nil {
		return err
	}
	maxItems, marker := page.MaxItems, page.Marker
	q := r.URL.Query()
	var fnArn string
	if fn := q.Get("FunctionName"); fn != "" {
		name, qualifier, err := a.resolve(r, fn)
		if err != nil {
			return err
		}
		fnArn = a.account.FunctionARN(name, qualifier)
	}
	all, err := a.store.Mappings().List(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		EventSourceMappings []*lambda.EventSourceMapping `json:"EventSourceMappings"`
		NextMarker          string                       `json:"NextMarker,omitempty"`
	}{EventSourceMappings: []*lambda.EventSourceMapping{}}
	all = slices.DeleteFunc(all, func(m *lambda.EventSourceMapping) bool {
		return (fnArn != "" && m.FunctionArn != fnArn) || (q.Get("EventSourceArn") != "" && m.EventSourceArn != q.Get("EventSourceArn")) ||
			(marker != "" && m.UUID <= marker)
	})
	out.EventSourceMappings = append(out.EventSourceMappings, all[:min(maxItems, len(all))]...)
	if len(all) > maxItems {
		out.NextMarker = all[maxItems-1].UUID
	}
	return writeJSON(w, http.StatusOK, out)
}
