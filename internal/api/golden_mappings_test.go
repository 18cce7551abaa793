package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"
)

const (
	goldenQueue  = "arn:flint:jetstream:us-east-1:123456789012:queue/golden-esm-q"
	goldenStream = "arn:flint:jetstream:us-east-1:123456789012:stream/golden-esm-s"
)

// TestGoldenMappings: CreateEventSourceMapping, GetEventSourceMapping, UpdateEventSourceMapping,
// ListEventSourceMappings, DeleteEventSourceMapping and their rejections, for a queue and a
// stream. The pollers move a mapping's state on their own, so the steps that show a state run
// once the mappings have settled, and the lists show one mapping: the order of several is their
// random UUIDs' (control's TestMappings pages through several).
func TestGoldenMappings(t *testing.T) {
	const path = "/2015-03-31/event-source-mappings"
	runGolden(t, append(createFunction("golden-esm"), []step{
		{"create-no-function", "POST", path, `{"EventSourceArn":"` + goldenQueue + `"}`},
		{"create-no-source", "POST", path, `{"FunctionName":"golden-esm"}`},
		{"create-bad-source", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"arn:aws:sqs:us-east-1:123456789012:q"}`},
		{"create-reserved-queue", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"arn:flint:jetstream:us-east-1:123456789012:queue/FLINT_x"}`},
		{"create-missing-function", "POST", path, `{"FunctionName":"golden-esm-nope","EventSourceArn":"` + goldenQueue + `"}`},
		{"create-missing-alias", "POST", path, `{"FunctionName":"golden-esm:nope","EventSourceArn":"` + goldenQueue + `"}`},
		{"create-foreign-account", "POST", path, `{"FunctionName":"arn:aws:lambda:us-east-1:999999999999:function:golden-esm","EventSourceArn":"` + goldenQueue + `"}`},
		{"create-bad-json", "POST", path, `{"FunctionName":`},
		{"create-wrong-type", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","BatchSize":"5"}`},
		{"create-batch-too-big", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","BatchSize":20000}`},
		{"create-window-needed", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","BatchSize":20}`},
		{"create-window-too-long", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","MaximumBatchingWindowInSeconds":301}`},
		{"create-stream-param-on-queue", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","StartingPosition":"LATEST"}`},
		{"create-bad-scaling", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","ScalingConfig":{"MaximumConcurrency":1}}`},
		{"create-bad-response-type", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","FunctionResponseTypes":["All"]}`},
		{"create-bad-destination", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","DestinationConfig":{"OnFailure":{"Destination":"arn:aws:sqs:us-east-1:123456789012:dlq"}}}`},
		{"create-on-success", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","DestinationConfig":{"OnSuccess":{"Destination":"arn:flint:jetstream:us-east-1:123456789012:stream/ok"}}}`},
		{"create-receive-count", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","MaximumReceiveCount":2000}`},
		{"create-visibility", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","VisibilityTimeoutSeconds":50000}`},
		{"create-tumbling-on-queue", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","TumblingWindowInSeconds":10}`},
		{"create", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `","BatchSize":5,"ScalingConfig":{"MaximumConcurrency":2},` +
			`"DestinationConfig":{"OnFailure":{"Destination":"arn:flint:jetstream:us-east-1:123456789012:stream/golden-esm-dlq"}},"MaximumReceiveCount":3,"FunctionResponseTypes":["ReportBatchItemFailures"]}`},
		{"create-queue-taken", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenQueue + `"}`},
		{"create-stream-no-position", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `"}`},
		{"create-stream-bad-position", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"NOW"}`},
		{"create-stream-timestamp-not-at", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","StartingPositionTimestamp":1700000000}`},
		{"create-stream-at-no-timestamp", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"AT_TIMESTAMP"}`},
		{"create-stream-parallel", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","ParallelizationFactor":11}`},
		{"create-stream-retries", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","MaximumRetryAttempts":-2}`},
		{"create-stream-record-age", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","MaximumRecordAgeInSeconds":30}`},
		{"create-stream-record-age-max", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","MaximumRecordAgeInSeconds":604801}`},
		{"create-queue-param-on-stream", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","VisibilityTimeoutSeconds":10}`},
		{"create-stream-tumbling", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST","TumblingWindowInSeconds":10}`},
		{"create-stream", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"TRIM_HORIZON","Enabled":false,"BatchSize":200,"MaximumRetryAttempts":3}`},
		{"create-stream-taken", "POST", path, `{"FunctionName":"golden-esm","EventSourceArn":"` + goldenStream + `","StartingPosition":"LATEST"}`},
	}...))

	ids := esmSettled(t, "golden-esm", 2)
	queue, stream := ids[goldenQueue], ids[goldenStream]
	runGolden(t, []step{
		{"get", "GET", path + "/" + queue, ""},
		{"get-stream", "GET", path + "/" + stream, ""},
		{"get-missing", "GET", path + "/00000000-0000-0000-0000-000000000000", ""},
		{"list", "GET", path + "?FunctionName=golden-esm&EventSourceArn=" + goldenQueue, ""},
		{"list-by-source", "GET", path + "?EventSourceArn=" + goldenStream, ""},
		{"list-by-arn", "GET", path + "?EventSourceArn=" + goldenStream + "&FunctionName=arn:aws:lambda:us-east-1:000000000000:function:golden-esm", ""},
		{"list-one", "GET", path + "?EventSourceArn=" + goldenQueue + "&MaxItems=1", ""},
		{"list-after-marker", "GET", path + "?EventSourceArn=" + goldenQueue + "&Marker=" + queue, ""},
		{"list-before-marker", "GET", path + "?EventSourceArn=" + goldenQueue + "&Marker=00000000-0000-0000-0000-000000000000", ""},
		{"list-bad-max", "GET", path + "?MaxItems=0", ""},
		{"list-foreign-function", "GET", path + "?FunctionName=arn:aws:lambda:us-east-1:999999999999:function:golden-esm", ""},
		{"list-other-function", "GET", path + "?FunctionName=golden-esm-nope", ""},
		{"update-source", "PUT", path + "/" + queue, `{"EventSourceArn":"` + goldenStream + `"}`},
		{"update-bad-batch", "PUT", path + "/" + queue, `{"BatchSize":0}`},
		{"update-bad-json", "PUT", path + "/" + queue, `{"BatchSize":`},
		{"update-missing", "PUT", path + "/00000000-0000-0000-0000-000000000000", `{"BatchSize":2}`},
		{"update-missing-function", "PUT", path + "/" + queue, `{"FunctionName":"golden-esm-nope"}`},
		{"update-stream-param-on-queue", "PUT", path + "/" + queue, `{"ParallelizationFactor":2}`},
		{"update-stream-position", "PUT", path + "/" + stream, `{"StartingPosition":"LATEST"}`},
		{"update-stream-timestamp", "PUT", path + "/" + stream, `{"StartingPositionTimestamp":1700000000}`},
		{"update-queue-param-on-stream", "PUT", path + "/" + stream, `{"ScalingConfig":{"MaximumConcurrency":5}}`},
		{"update", "PUT", path + "/" + queue, `{"BatchSize":8,"MaximumBatchingWindowInSeconds":2}`},
		{"update-disable", "PUT", path + "/" + queue, `{"Enabled":false,"ScalingConfig":{"MaximumConcurrency":0}}`},
		{"update-stream-enable", "PUT", path + "/" + stream, `{"Enabled":true,"FunctionName":"golden-esm","ParallelizationFactor":2,"BisectBatchOnFunctionError":true}`},
	})

	esmSettled(t, "golden-esm", 2)
	runGolden(t, []step{
		{"get-updated", "GET", path + "/" + queue, ""},
		{"get-stream-updated", "GET", path + "/" + stream, ""},
		{"delete", "DELETE", path + "/" + queue, ""},
		{"delete-stream", "DELETE", path + "/" + stream, ""},
		{"delete-missing", "DELETE", path + "/00000000-0000-0000-0000-000000000000", ""},
	})

	esmSettled(t, "golden-esm", 0)
	runGolden(t, []step{
		{"get-deleted", "GET", path + "/" + queue, ""},
		{"list-empty", "GET", path + "?FunctionName=golden-esm", ""},
	})
}

// esmSettled waits until function fn has n mappings and none is between states (the poller has
// applied every change), and returns their UUIDs by event source ARN.
func esmSettled(t *testing.T, fn string, n int) map[string]string {
	t.Helper()
	url := sharedServer(t) + "/2015-03-31/event-source-mappings?FunctionName=" + fn
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			EventSourceMappings []struct{ UUID, EventSourceArn, State string }
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]string{}
		settled := len(out.EventSourceMappings) == n
		for _, m := range out.EventSourceMappings {
			ids[m.EventSourceArn] = m.UUID
			settled = settled && slices.Contains([]string{"Enabled", "Disabled"}, m.State)
		}
		if settled {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("mappings of %s did not settle: %+v", fn, out.EventSourceMappings)
		}
	}
}
