package control_test

import (
	"context"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

func TestEventInvokeConfigs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	plane := e.withInvoke()
	e.function(t, "fn")
	e.function(t, "dlq")
	e.version(t, "fn", 1)
	if _, err := plane.Aliases.Create(ctx, control.Target{Op: "CreateAlias", Name: "fn"}, control.AliasInput{Name: "live", FunctionVersion: ptr("1")}); err != nil {
		t.Fatal(err)
	}
	svc := plane.EventInvokeConfigs
	at := func(name, q string) control.Target {
		return control.Target{Op: "PutFunctionEventInvokeConfig", Name: name, Qualifier: q}
	}
	fn := at("fn", "")
	dest := func(arn string) *lambda.DestinationConfig {
		return &lambda.DestinationConfig{OnFailure: &lambda.Destination{Destination: arn}}
	}

	// Rejections store nothing.
	for _, tt := range []struct {
		name      string
		target    control.Target
		in        control.EventInvokeConfigInput
		code, msg string
	}{
		{"retries over 2", fn, control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(3)}, "ValidationException", "Value '3' at 'maximumRetryAttempts'"},
		{"negative retries", fn, control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(-1)}, "ValidationException", "at 'maximumRetryAttempts'"},
		{"age under a minute", fn, control.EventInvokeConfigInput{MaximumEventAgeInSeconds: ptr(59)}, "ValidationException", "Value '59' at 'maximumEventAgeInSeconds'"},
		{"age over 6 hours", fn, control.EventInvokeConfigInput{MaximumEventAgeInSeconds: ptr(21601)}, "ValidationException", "at 'maximumEventAgeInSeconds'"},
		{"SQS destination", fn, control.EventInvokeConfigInput{DestinationConfig: dest("arn:aws:sqs:us-east-1:123456789012:q")}, "InvalidParameterValueException",
			"The provided destination config DestinationConfig(onSuccess=null, onFailure=OnFailure(destination=arn:aws:sqs:us-east-1:123456789012:q)) is invalid."},
		{"Flint's own stream", fn, control.EventInvokeConfigInput{DestinationConfig: dest("arn:flint:jetstream:us-east-1:123456789012:stream/KV_x")}, "InvalidParameterValueException", "stream/KV_x)) is invalid."},
		{"malformed destination", fn, control.EventInvokeConfigInput{DestinationConfig: dest("arn:aws:_-/!lambda:us-east-1:123456789012:function:dlq")}, "ValidationException", "at 'destinationConfig.onFailure.destination'"},
		{"missing destination function", fn, control.EventInvokeConfigInput{DestinationConfig: dest("arn:aws:lambda:us-east-1:123456789012:function:nope")}, "InvalidParameterValueException", "The destination ARN arn:aws:lambda:us-east-1:123456789012:function:nope is invalid."},
		{"itself", fn, control.EventInvokeConfigInput{DestinationConfig: dest("arn:aws:lambda:us-east-1:123456789012:function:fn")}, "InvalidParameterValueException", "You can't specify the function as a destination for itself."},
		{"no settings", fn, control.EventInvokeConfigInput{}, "InvalidParameterValueException", "You must specify at least one of error handling or destination setting."},
		{"missing version", at("fn", "9"), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1)}, "ResourceNotFoundException", "The function doesn't exist."},
		{"missing alias", at("fn", "nope"), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1)}, "ResourceNotFoundException", "The function doesn't exist."},
		{"qualifier mismatch", at("fn:1", "live"), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1)}, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier."},
		{"missing function", at("nope", ""), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1)}, "ResourceNotFoundException", "The function doesn't exist."},
		{"another region", at("arn:aws:lambda:eu-west-1:123456789012:function:fn", ""), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1)}, "ResourceNotFoundException", "not reachable in this region"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Put(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
			_, err = svc.Update(ctx, tt.target, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	_, err := svc.Get(ctx, fn)
	wantErr(t, err, "ResourceNotFoundException", "The function arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST doesn't have an EventInvokeConfig")

	// Put replaces every field, Update only those given; "" and $LATEST are one config.
	failure := dest("arn:aws:lambda:us-east-1:123456789012:function:dlq")
	c, err := svc.Put(ctx, fn, control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(1), MaximumEventAgeInSeconds: ptr(600), DestinationConfig: failure})
	if err != nil {
		t.Fatal(err)
	}
	if c.FunctionArn != e.account.FunctionARN("fn", "$LATEST") || c.LastModified == 0 {
		t.Fatalf("put = %+v", c)
	}
	c, err = svc.Update(ctx, at("fn", "$LATEST"), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(0)})
	if err != nil {
		t.Fatal(err)
	}
	if *c.MaximumRetryAttempts != 0 || c.MaximumEventAgeInSeconds == nil || *c.MaximumEventAgeInSeconds != 600 || c.DestinationConfig == nil {
		t.Fatalf("update = %+v", c)
	}
	c, err = svc.Put(ctx, fn, control.EventInvokeConfigInput{MaximumEventAgeInSeconds: ptr(120)})
	if err != nil {
		t.Fatal(err)
	}
	// AWS answers DestinationConfig with both destinations, empty when not set.
	if c.MaximumRetryAttempts != nil || c.DestinationConfig == nil || c.DestinationConfig.OnFailure == nil || c.DestinationConfig.OnFailure.Destination != "" ||
		c.DestinationConfig.OnSuccess == nil || c.DestinationConfig.OnSuccess.Destination != "" {
		t.Fatalf("put kept fields it did not give: %+v", c)
	}
	got, err := svc.Get(ctx, fn)
	if err != nil || *got.MaximumEventAgeInSeconds != 120 || got.MaximumRetryAttempts != nil {
		t.Fatalf("get = %+v, %v", got, err)
	}
	// Update of a qualifier without a config is AWS's 404; Put creates it.
	_, err = svc.Update(ctx, at("fn", "1"), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(2)})
	wantErr(t, err, "ResourceNotFoundException", "The function arn:aws:lambda:us-east-1:123456789012:function:fn:1 doesn't have an EventInvokeConfig")
	if c, err := svc.Put(ctx, at("fn", "1"), control.EventInvokeConfigInput{MaximumRetryAttempts: ptr(2)}); err != nil || c.FunctionArn != e.account.FunctionARN("fn", "1") {
		t.Fatalf("put of version 1 = %+v, %v", c, err)
	}
	if _, err := svc.Put(ctx, at("fn", "live"), control.EventInvokeConfigInput{MaximumEventAgeInSeconds: ptr(21600)}); err != nil {
		t.Fatal(err)
	}
	// The queue reads the config of the version it invokes.
	if cfg, err := e.view.AsyncConfig(ctx, "fn", "1"); err != nil || cfg.MaximumRetryAttempts != 2 {
		t.Fatalf("the queue's config of version 1: %+v, %v", cfg, err)
	}

	// Listing in pages: the marker is the next index.
	list, err := svc.List(ctx, at("fn", "live"), pageOf(control.Page{MaxItems: 2}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.FunctionEventInvokeConfigs) != 2 || list.NextMarker != "2" {
		t.Fatalf("first page %+v", list)
	}
	list, err = svc.List(ctx, fn, pageOf(control.Page{MaxItems: 2, Marker: "2"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.FunctionEventInvokeConfigs) != 1 || list.NextMarker != "" {
		t.Fatalf("second page %+v", list)
	}
	if list, err := svc.List(ctx, fn, pageOf(control.Page{MaxItems: 50, Marker: "x"})); err != nil || len(list.FunctionEventInvokeConfigs) != 3 {
		t.Fatalf("a bad marker starts at the first: %+v, %v", list, err)
	}

	_, err = svc.List(ctx, at("nope", ""), badPage)
	wantErr(t, err, "ResourceNotFoundException", "The function doesn't exist.")
	_, err = svc.List(ctx, fn, badPage)
	wantErr(t, err, "ValidationException", "maxItems")

	// Delete, then nothing to delete.
	if err := svc.Delete(ctx, at("fn", "1")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, svc.Delete(ctx, at("fn", "1")), "ResourceNotFoundException", "function:fn:1 doesn't have an EventInvokeConfig")
	_, err = svc.Get(ctx, at("fn", "1"))
	wantErr(t, err, "ResourceNotFoundException", "doesn't have an EventInvokeConfig")
}

func TestPlaneFunction(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		target          control.Target
		name, qualifier string
		code            string
	}{
		{control.Target{Op: "InvokeAsync", Name: "fn"}, "fn", "", ""},
		{control.Target{Op: "InvokeAsync", Name: "fn:live"}, "fn", "live", ""},
		{control.Target{Op: "InvokeAsync", Name: "fn", Qualifier: "1"}, "fn", "1", ""},
		{control.Target{Op: "InvokeAsync", Name: "arn:aws:lambda:us-east-1:123456789012:function:fn:1", Qualifier: "1"}, "fn", "1", ""},
		{control.Target{Op: "InvokeAsync", Name: "fn:1", Qualifier: "2"}, "", "", "InvalidParameterValueException"},
		{control.Target{Op: "InvokeAsync", Name: "fn", Qualifier: "a!b"}, "", "", "ValidationException"},
		{control.Target{Op: "InvokeAsync", Name: "arn:aws:lambda:eu-west-1:123456789012:function:fn"}, "", "", "ResourceNotFoundException"},
		{control.Target{Op: "InvokeAsync", Name: "arn:aws:lambda:us-east-1:210987654321:function:fn"}, "", "", "AccessDeniedException"},
	} {
		name, q, err := e.plane.Function(tt.target)
		wantErr(t, err, tt.code, "")
		if name != tt.name || q != tt.qualifier {
			t.Errorf("%+v: %q %q, want %q %q", tt.target, name, q, tt.name, tt.qualifier)
		}
	}
}
