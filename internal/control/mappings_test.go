package control_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// planeWith is a control plane on e's store and view with the parts newEnv leaves out: the
// invocation view as the function lookup, and what change adds.
func planeWith(e *env, change func(*control.Config)) *control.Plane {
	cfg := control.Config{Store: e.st, View: e.view, Invoke: e.view, Account: e.account, Log: slog.New(slog.DiscardHandler)}
	if change != nil {
		change(&cfg)
	}
	return control.New(cfg)
}

const (
	queueA  = "arn:flint:jetstream:us-east-1:123456789012:queue/qa"
	queueB  = "arn:flint:jetstream:us-east-1:123456789012:queue/qb"
	queueC  = "arn:flint:jetstream:us-east-1:123456789012:queue/qc"
	streamS = "arn:flint:jetstream:us-east-1:123456789012:stream/ss"
)

// setState writes a mapping's state as esm's manager does once a transition is done.
func setState(t *testing.T, e *env, id, state string) {
	t.Helper()
	m, rev, err := e.st.Mappings().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	m.State = state
	if err := e.st.Mappings().Update(context.Background(), m, rev); err != nil {
		t.Fatal(err)
	}
}

func TestMappings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.function(t, "fn")
	e.function(t, "other")
	svc := planeWith(e, nil).Mappings
	fnARN := e.account.FunctionARN("fn", "")

	// Rejections store nothing and make no event source.
	for _, tt := range []struct {
		name      string
		in        control.MappingInput
		code, msg string
	}{
		{"no function", control.MappingInput{EventSourceArn: ptr(queueA)}, "ValidationException", "Value null at 'functionName'"},
		{"empty function", control.MappingInput{FunctionName: ptr(""), EventSourceArn: ptr(queueA)}, "ValidationException", "Value null at 'functionName'"},
		{"no source", control.MappingInput{FunctionName: ptr("fn")}, "InvalidParameterValueException", "Unrecognized event source."},
		{"foreign source", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr("arn:aws:sqs:us-east-1:123456789012:qa")}, "InvalidParameterValueException", "Unrecognized event source: unknown event source ARN"},
		{"Flint's own stream", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr("arn:flint:jetstream:us-east-1:123456789012:queue/KV_x")}, "InvalidParameterValueException", "Flint's own streams"},
		{"missing function", control.MappingInput{FunctionName: ptr("nope"), EventSourceArn: ptr(queueA)}, "InvalidParameterValueException", "Function does not exist"},
		{"missing alias", control.MappingInput{FunctionName: ptr("fn:live"), EventSourceArn: ptr(queueA)}, "InvalidParameterValueException", "Function does not exist"},
		{"other account", control.MappingInput{FunctionName: ptr("arn:aws:lambda:us-east-1:999999999999:function:fn"), EventSourceArn: ptr(queueA)}, "AccessDeniedException", ""},
		{"other region", control.MappingInput{FunctionName: ptr("arn:aws:lambda:eu-west-1:123456789012:function:fn"), EventSourceArn: ptr(queueA)}, "ResourceNotFoundException", "eu-west-1"},
		{"batch 0", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), BatchSize: ptr(0)}, "ValidationException", "'batchSize'"},
		{"batch above 10 without window", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), BatchSize: ptr(11)}, "InvalidParameterValueException", "Maximum batch window"},
		{"window 301", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), MaximumBatchingWindowInSeconds: ptr(301)}, "ValidationException", "'maximumBatchingWindowInSeconds'"},
		{"concurrency 1", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), ScalingConfig: &lambda.ScalingConfig{MaximumConcurrency: 1}}, "ValidationException", "'scalingConfig.maximumConcurrency'"},
		{"response type", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), FunctionResponseTypes: ptr([]string{"x"})}, "ValidationException", "'functionResponseTypes'"},
		{"on success", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), DestinationConfig: &lambda.DestinationConfig{OnSuccess: &lambda.Destination{Destination: streamS}}}, "InvalidParameterValueException", "Unsupported DestinationConfig"},
		{"on failure to a queue", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), DestinationConfig: &lambda.DestinationConfig{OnFailure: &lambda.Destination{Destination: queueB}}}, "InvalidParameterValueException", "The destination ARN"},
		{"receive count", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), MaximumReceiveCount: ptr(1001)}, "InvalidParameterValueException", "MaximumReceiveCount"},
		{"visibility", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), VisibilityTimeoutSeconds: ptr(-1.0)}, "InvalidParameterValueException", "VisibilityTimeoutSeconds"},
		{"stream parameter on a queue", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), MaximumRetryAttempts: ptr(1)}, "InvalidParameterValueException", "Unsupported MaximumRetryAttempts"},
		{"tumbling window on a queue", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA), TumblingWindowInSeconds: ptr(5)}, "InvalidParameterValueException", "Unsupported TumblingWindowInSeconds"},
		{"stream without position", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS)}, "InvalidParameterValueException", "StartingPosition is required"},
		{"stream bad position", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("NOW")}, "ValidationException", "'startingPosition'"},
		{"AT_TIMESTAMP without timestamp", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("AT_TIMESTAMP")}, "InvalidParameterValueException", "StartingPositionTimestamp must be given"},
		{"timestamp without AT_TIMESTAMP", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), StartingPositionTimestamp: ptr(1.0)}, "InvalidParameterValueException", "StartingPositionTimestamp must be given"},
		{"parallelization 0", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), ParallelizationFactor: ptr(0)}, "ValidationException", "'parallelizationFactor'"},
		{"retries -2", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), MaximumRetryAttempts: ptr(-2)}, "ValidationException", "'maximumRetryAttempts'"},
		{"record age 59", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), MaximumRecordAgeInSeconds: ptr(59)}, "InvalidParameterValueException", "MaximumRecordAgeInSeconds"},
		{"record age above a week", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), MaximumRecordAgeInSeconds: ptr(604801)}, "ValidationException", "'maximumRecordAgeInSeconds'"},
		{"queue parameter on a stream", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), ScalingConfig: &lambda.ScalingConfig{MaximumConcurrency: 2}}, "InvalidParameterValueException", "Unsupported ScalingConfig"},
		{"tumbling window on a stream", control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), TumblingWindowInSeconds: ptr(5)}, "InvalidParameterValueException", "not supported by Flint"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if all, err := e.st.Mappings().List(ctx); err != nil || len(all) != 0 {
		t.Fatalf("mappings after rejections: %v, %v", all, err)
	}
	for _, name := range []string{"qa", "ss"} {
		if _, err := e.st.JetStream().Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("stream %s after rejections: %v", name, err)
		}
	}

	// A queue mapping: the answer says Creating, the record asks the manager for Enabling, and
	// the queue exists before the answer. A second mapping of the queue is refused.
	qa, err := svc.Create(ctx, control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueA)})
	if err != nil {
		t.Fatal(err)
	}
	if qa.State != lambda.ESMCreating || qa.BatchSize != 10 || qa.FunctionArn != fnARN || qa.StateTransitionReason != "USER_INITIATED" ||
		qa.EventSourceMappingArn != "arn:aws:lambda:us-east-1:123456789012:event-source-mapping:"+qa.UUID {
		t.Fatalf("created %+v", qa)
	}
	if got, _, err := e.st.Mappings().Get(ctx, qa.UUID); err != nil || got.State != lambda.ESMEnabling {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if _, err := e.st.JetStream().Stream(ctx, "qa"); err != nil {
		t.Fatalf("queue qa: %v", err)
	}
	_, err = svc.Create(ctx, control.MappingInput{FunctionName: ptr("other"), EventSourceArn: ptr(queueA)})
	wantErr(t, err, "ResourceConflictException", qa.UUID)

	// A stream mapping starts disabled when asked, has the stream's defaults and a checkpoint;
	// a stream takes one mapping per function.
	ss, err := svc.Create(ctx, control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST"), Enabled: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if ss.BatchSize != 100 || ss.ParallelizationFactor != 1 || *ss.BisectBatchOnFunctionError || *ss.MaximumRetryAttempts != -1 || *ss.MaximumRecordAgeInSeconds != -1 {
		t.Fatalf("stream mapping %+v", ss)
	}
	if got, _, err := e.st.Mappings().Get(ctx, ss.UUID); err != nil || got.State != lambda.ESMDisabling {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if _, _, err := e.st.Checkpoints().Get(ctx, ss.UUID); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	_, err = svc.Create(ctx, control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(streamS), StartingPosition: ptr("LATEST")})
	wantErr(t, err, "ResourceConflictException", "provided mapping already exists")
	if _, err := svc.Create(ctx, control.MappingInput{FunctionName: ptr("other"), EventSourceArn: ptr(streamS), StartingPosition: ptr("TRIM_HORIZON")}); err != nil {
		t.Fatalf("a second function on the stream: %v", err)
	}

	// Updates: the answer's state says what changes; rejected ones change nothing.
	setState(t, e, qa.UUID, lambda.ESMEnabled)
	before, err := svc.Get(ctx, qa.UUID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		id        string
		in        control.MappingInput
		code, msg string
	}{
		{"source", qa.UUID, control.MappingInput{EventSourceArn: ptr(queueB)}, "InvalidParameterValueException", "EventSourceArn cannot be updated"},
		{"missing", "00000000-0000-0000-0000-000000000000", control.MappingInput{BatchSize: ptr(2)}, "ResourceNotFoundException", "The resource you requested does not exist."},
		{"batch", qa.UUID, control.MappingInput{BatchSize: ptr(10001)}, "ValidationException", "'batchSize'"},
		{"missing function", qa.UUID, control.MappingInput{FunctionName: ptr("nope")}, "ResourceNotFoundException", "Function does not exist"},
		{"stream parameter", qa.UUID, control.MappingInput{ParallelizationFactor: ptr(2)}, "InvalidParameterValueException", "Unsupported ParallelizationFactor"},
		{"stream position", ss.UUID, control.MappingInput{StartingPosition: ptr("TRIM_HORIZON")}, "InvalidParameterValueException", "StartingPosition cannot be updated"},
		{"stream timestamp", ss.UUID, control.MappingInput{StartingPositionTimestamp: ptr(1.0)}, "InvalidParameterValueException", "StartingPositionTimestamp cannot be updated"},
	} {
		t.Run("update "+tt.name, func(t *testing.T) {
			_, err := svc.Update(ctx, tt.id, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if after, err := svc.Get(ctx, qa.UUID); err != nil || after.BatchSize != before.BatchSize || after.LastModified != before.LastModified || after.State != lambda.ESMEnabled {
		t.Fatalf("after rejected updates %+v, %v (before %+v)", after, err, before)
	}
	for _, tt := range []struct {
		name          string
		id, from      string
		in            control.MappingInput
		shown, stored string
	}{
		{"change while enabled", qa.UUID, lambda.ESMEnabled, control.MappingInput{BatchSize: ptr(5)}, lambda.ESMUpdating, lambda.ESMEnabling},
		{"change while enabling", qa.UUID, lambda.ESMEnabling, control.MappingInput{BatchSize: ptr(6)}, lambda.ESMUpdating, lambda.ESMEnabling},
		{"disable", qa.UUID, lambda.ESMEnabled, control.MappingInput{Enabled: ptr(false)}, lambda.ESMDisabling, lambda.ESMDisabling},
		{"change while disabled", qa.UUID, lambda.ESMDisabled, control.MappingInput{BatchSize: ptr(7)}, lambda.ESMUpdating, lambda.ESMDisabling},
		{"enable", ss.UUID, lambda.ESMDisabled, control.MappingInput{Enabled: ptr(true), ParallelizationFactor: ptr(3)}, lambda.ESMEnabling, lambda.ESMEnabling},
	} {
		t.Run("update "+tt.name, func(t *testing.T) {
			setState(t, e, tt.id, tt.from)
			got, err := svc.Update(ctx, tt.id, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			stored, _, err := e.st.Mappings().Get(ctx, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tt.shown || stored.State != tt.stored {
				t.Fatalf("shown %s, stored %s; want %s, %s", got.State, stored.State, tt.shown, tt.stored)
			}
			if tt.in.BatchSize != nil && stored.BatchSize != *tt.in.BatchSize || tt.in.ParallelizationFactor != nil && stored.ParallelizationFactor != *tt.in.ParallelizationFactor {
				t.Fatalf("stored %+v", stored)
			}
		})
	}
	if m, _ := svc.Get(ctx, qa.UUID); m.ScalingConfig != nil {
		t.Fatalf("scaling config %+v", m.ScalingConfig)
	}
	if _, err := svc.Update(ctx, qa.UUID, control.MappingInput{ScalingConfig: &lambda.ScalingConfig{MaximumConcurrency: 4}}); err != nil {
		t.Fatal(err)
	}
	if m, _ := svc.Update(ctx, qa.UUID, control.MappingInput{ScalingConfig: &lambda.ScalingConfig{}}); m.ScalingConfig != nil {
		t.Fatalf("MaximumConcurrency 0 keeps the scaling config: %+v", m.ScalingConfig)
	}

	// Lists: by function (name or ARN) and source, paged by UUID.
	if _, err := svc.Create(ctx, control.MappingInput{FunctionName: ptr("fn"), EventSourceArn: ptr(queueB)}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Create(ctx, control.MappingInput{FunctionName: ptr(fnARN), EventSourceArn: ptr(queueC)}); err != nil {
		t.Fatal(err)
	}
	all, err := svc.List(ctx, control.MappingFilter{FunctionName: "fn"}, control.Page{MaxItems: 50})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range all.EventSourceMappings {
		ids = append(ids, m.UUID)
	}
	if len(ids) != 4 || !slices.IsSorted(ids) || all.NextMarker != "" {
		t.Fatalf("fn's mappings %v, next %q", ids, all.NextMarker)
	}
	var paged []string
	for p := (control.Page{MaxItems: 3}); ; {
		page, err := svc.List(ctx, control.MappingFilter{FunctionName: fnARN}, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.EventSourceMappings {
			paged = append(paged, m.UUID)
		}
		if page.NextMarker == "" {
			break
		}
		if page.NextMarker != paged[len(paged)-1] {
			t.Fatalf("NextMarker %s is not the page's last", page.NextMarker)
		}
		p.Marker = page.NextMarker
	}
	if !slices.Equal(paged, ids) {
		t.Fatalf("paged %v, want %v", paged, ids)
	}
	if l, err := svc.List(ctx, control.MappingFilter{EventSourceArn: streamS}, control.Page{MaxItems: 50}); err != nil || len(l.EventSourceMappings) != 2 {
		t.Fatalf("stream's mappings %+v, %v", l, err)
	}
	if l, err := svc.List(ctx, control.MappingFilter{FunctionName: "other", EventSourceArn: queueA}, control.Page{MaxItems: 50}); err != nil || len(l.EventSourceMappings) != 0 {
		t.Fatalf("other's mappings of queue A %+v, %v", l, err)
	}
	_, err = svc.List(ctx, control.MappingFilter{FunctionName: "arn:aws:lambda:us-east-1:999999999999:function:fn"}, control.Page{MaxItems: 50})
	wantErr(t, err, "AccessDeniedException", "")

	// Delete marks the mapping for the manager; a mapping being deleted takes no update.
	del, err := svc.Delete(ctx, qa.UUID)
	if err != nil || del.State != lambda.ESMDeleting {
		t.Fatalf("deleted %+v, %v", del, err)
	}
	if m, _, err := e.st.Mappings().Get(ctx, qa.UUID); err != nil || m.State != lambda.ESMDeleting {
		t.Fatalf("stored %+v, %v", m, err)
	}
	_, err = svc.Update(ctx, qa.UUID, control.MappingInput{BatchSize: ptr(2)})
	wantErr(t, err, "ResourceConflictException", "being deleted")
	_, err = svc.Delete(ctx, "00000000-0000-0000-0000-000000000000")
	wantErr(t, err, "ResourceNotFoundException", "does not exist")
	if _, _, err := e.st.Mappings().Get(ctx, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed delete stored %v", err)
	}
}
