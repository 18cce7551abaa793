// A function's SQS and Kinesis events as Lambda event source mappings: found by function and
// source ARN, created, or updated in place when a setting differs; the function's other
// mappings over SQS queues and Kinesis streams are deleted (a SAM template owns its functions'
// event sources, as it owns their schedules).

package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Mapping is an event source mapping from an SQS or Kinesis event. Source may hold a
// reference. Unset fields take Lambda's defaults.
type Mapping struct {
	// Event is the SAM event's name.
	Event  string
	Source string
	// Both kinds.
	BatchSize, Window *int32 // BatchSize, MaximumBatchingWindowInSeconds
	Enabled           *bool
	Filters           []string // FilterCriteria's patterns
	ResponseTypes     []string // FunctionResponseTypes
	// SQS.
	MaxConcurrency *int32 // ScalingConfig.MaximumConcurrency
	// Kinesis.
	StartingPosition string
	Parallelization  *int32
	Bisect           *bool
	MaxRetries       *int32
	MaxRecordAge     *int32
	OnFailure        string // DestinationConfig.OnFailure.Destination
}

// isStreamSource reports whether arn is a Kinesis stream (else an SQS queue).
func isStreamSource(arn string) bool { return strings.HasPrefix(arn, "arn:aws:kinesis:") }

// managedSource reports whether a mapping's source is of a kind templates declare.
func managedSource(arn string) bool {
	return strings.HasPrefix(arn, "arn:aws:sqs:") || strings.HasPrefix(arn, "arn:aws:kinesis:")
}

// mappingWant is a mapping's desired settings with Lambda's defaults filled in.
type mappingWant struct {
	source, function         string // function: name or name:alias
	stream                   bool
	batch, window            int32
	enabled                  bool
	filters                  []string
	responseTypes            []string
	maxConcurrency           int32
	startingPosition         string
	parallelization          int32
	bisect                   bool
	maxRetries, maxRecordAge int32
	onFailure                string
}

func newMappingWant(m *Mapping, source, function string) mappingWant {
	w := mappingWant{source: source, function: function, stream: isStreamSource(source), batch: 10, enabled: true,
		filters: m.Filters, responseTypes: m.ResponseTypes, startingPosition: m.StartingPosition,
		parallelization: 1, maxRetries: -1, maxRecordAge: -1, onFailure: m.OnFailure}
	if w.stream {
		w.batch = 100
	}
	opt := func(dst *int32, v *int32) {
		if v != nil {
			*dst = *v
		}
	}
	opt(&w.batch, m.BatchSize)
	opt(&w.window, m.Window)
	opt(&w.maxConcurrency, m.MaxConcurrency)
	opt(&w.parallelization, m.Parallelization)
	opt(&w.maxRetries, m.MaxRetries)
	opt(&w.maxRecordAge, m.MaxRecordAge)
	if m.Enabled != nil {
		w.enabled = *m.Enabled
	}
	if m.Bisect != nil {
		w.bisect = *m.Bisect
	}
	return w
}

// diff names the settings of c that differ from w (StartingPosition excepted: it decides only
// where a new mapping starts, and Lambda cannot change it).
func (w mappingWant) diff(c *types.EventSourceMappingConfiguration, functionArn string) []string {
	var d []string
	add := func(name string, differs bool) {
		if differs {
			d = append(d, name)
		}
	}
	add("function", aws.ToString(c.FunctionArn) != functionArn)
	add("BatchSize", aws.ToInt32(c.BatchSize) != w.batch)
	add("MaximumBatchingWindowInSeconds", aws.ToInt32(c.MaximumBatchingWindowInSeconds) != w.window)
	state := aws.ToString(c.State)
	add("Enabled", (state == "Enabled" || state == "Enabling") != w.enabled)
	var filters []string
	if c.FilterCriteria != nil {
		for _, f := range c.FilterCriteria.Filters {
			filters = append(filters, aws.ToString(f.Pattern))
		}
	}
	add("FilterCriteria", !slices.Equal(filters, w.filters))
	var rt []string
	for _, t := range c.FunctionResponseTypes {
		rt = append(rt, string(t))
	}
	add("FunctionResponseTypes", !slices.Equal(rt, w.responseTypes))
	if !w.stream {
		var mc int32
		if c.ScalingConfig != nil {
			mc = aws.ToInt32(c.ScalingConfig.MaximumConcurrency)
		}
		add("ScalingConfig", mc != w.maxConcurrency)
		return d
	}
	add("ParallelizationFactor", aws.ToInt32(c.ParallelizationFactor) != w.parallelization)
	add("BisectBatchOnFunctionError", aws.ToBool(c.BisectBatchOnFunctionError) != w.bisect)
	add("MaximumRetryAttempts", aws.ToInt32(c.MaximumRetryAttempts) != w.maxRetries)
	add("MaximumRecordAgeInSeconds", aws.ToInt32(c.MaximumRecordAgeInSeconds) != w.maxRecordAge)
	var of string
	if c.DestinationConfig != nil && c.DestinationConfig.OnFailure != nil {
		of = aws.ToString(c.DestinationConfig.OnFailure.Destination)
	}
	add("DestinationConfig", of != w.onFailure)
	return d
}

func (w mappingWant) filterCriteria() *types.FilterCriteria {
	fc := &types.FilterCriteria{Filters: []types.Filter{}}
	for _, p := range w.filters {
		fc.Filters = append(fc.Filters, types.Filter{Pattern: aws.String(p)})
	}
	return fc
}

func (w mappingWant) responseTypeList() []types.FunctionResponseType {
	out := []types.FunctionResponseType{}
	for _, t := range w.responseTypes {
		out = append(out, types.FunctionResponseType(t))
	}
	return out
}

func (w mappingWant) create() *lambda.CreateEventSourceMappingInput {
	in := &lambda.CreateEventSourceMappingInput{EventSourceArn: aws.String(w.source), FunctionName: aws.String(w.function),
		BatchSize: aws.Int32(w.batch), MaximumBatchingWindowInSeconds: aws.Int32(w.window), Enabled: aws.Bool(w.enabled)}
	if len(w.filters) > 0 {
		in.FilterCriteria = w.filterCriteria()
	}
	if len(w.responseTypes) > 0 {
		in.FunctionResponseTypes = w.responseTypeList()
	}
	if !w.stream {
		if w.maxConcurrency > 0 {
			in.ScalingConfig = &types.ScalingConfig{MaximumConcurrency: aws.Int32(w.maxConcurrency)}
		}
		return in
	}
	in.StartingPosition = types.EventSourcePosition(w.startingPosition)
	in.ParallelizationFactor = aws.Int32(w.parallelization)
	in.BisectBatchOnFunctionError = aws.Bool(w.bisect)
	in.MaximumRetryAttempts = aws.Int32(w.maxRetries)
	in.MaximumRecordAgeInSeconds = aws.Int32(w.maxRecordAge)
	if w.onFailure != "" {
		in.DestinationConfig = &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(w.onFailure)}}
	}
	return in
}

// update sets every setting, so that one removed from the template goes back to its default.
func (w mappingWant) update(uuid string) *lambda.UpdateEventSourceMappingInput {
	in := &lambda.UpdateEventSourceMappingInput{UUID: aws.String(uuid), FunctionName: aws.String(w.function),
		BatchSize: aws.Int32(w.batch), MaximumBatchingWindowInSeconds: aws.Int32(w.window), Enabled: aws.Bool(w.enabled),
		FilterCriteria: w.filterCriteria(), FunctionResponseTypes: w.responseTypeList()}
	if !w.stream {
		in.ScalingConfig = &types.ScalingConfig{}
		if w.maxConcurrency > 0 {
			in.ScalingConfig.MaximumConcurrency = aws.Int32(w.maxConcurrency)
		}
		return in
	}
	in.ParallelizationFactor = aws.Int32(w.parallelization)
	in.BisectBatchOnFunctionError = aws.Bool(w.bisect)
	in.MaximumRetryAttempts = aws.Int32(w.maxRetries)
	in.MaximumRecordAgeInSeconds = aws.Int32(w.maxRecordAge)
	in.DestinationConfig = &types.DestinationConfig{OnFailure: &types.OnFailure{Destination: aws.String(w.onFailure)}}
	return in
}

// functionMappings are the mappings whose function is functionArn, with any qualifier.
func (d *Deployer) functionMappings(ctx context.Context, functionArn string) ([]types.EventSourceMappingConfiguration, error) {
	var out []types.EventSourceMappingConfiguration
	p := lambda.NewListEventSourceMappingsPaginator(d.Lambda, &lambda.ListEventSourceMappingsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list event source mappings: %w", err)
		}
		for _, m := range page.EventSourceMappings {
			if fa := aws.ToString(m.FunctionArn); fa == functionArn || strings.HasPrefix(fa, functionArn+":") {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// mappings brings function name's (on qualifier) mappings to the template's.
func (d *Deployer) mappings(ctx context.Context, res *Result, name, functionArn, qualifier string, want []*Mapping, r refs) error {
	function, target := name, functionArn
	if qualifier != "" {
		function, target = name+":"+qualifier, functionArn+":"+qualifier
	}
	bySource := map[string]mappingWant{}
	var order []string
	for _, m := range want {
		src, err := r.resolve(m.Source)
		if err != nil {
			return fmt.Errorf("event %s: %w", m.Event, err)
		}
		if _, dup := bySource[src]; dup {
			return fmt.Errorf("event %s: another event of the function already reads %s", m.Event, src)
		}
		bySource[src] = newMappingWant(m, src, function)
		order = append(order, src)
	}
	cur, err := d.functionMappings(ctx, functionArn)
	if err != nil {
		return err
	}
	found := map[string]types.EventSourceMappingConfiguration{}
	for _, c := range cur {
		src := aws.ToString(c.EventSourceArn)
		if _, ok := bySource[src]; ok && aws.ToString(c.State) != "Deleting" {
			if _, seen := found[src]; !seen || aws.ToString(c.FunctionArn) == target {
				found[src] = c
			}
		}
	}
	for _, src := range order {
		w := bySource[src]
		c, ok := found[src]
		if !ok {
			out, err := d.Lambda.CreateEventSourceMapping(ctx, w.create())
			if err != nil {
				return fmt.Errorf("event source mapping from %s: %w", src, err)
			}
			d.change(res, Change{Kind: "mapping", Name: name, Resource: src, Action: "created", Detail: aws.ToString(out.UUID)})
			continue
		}
		diff := w.diff(&c, target)
		if len(diff) == 0 {
			continue
		}
		if _, err := d.Lambda.UpdateEventSourceMapping(ctx, w.update(aws.ToString(c.UUID))); err != nil {
			return fmt.Errorf("event source mapping %s from %s: %w", aws.ToString(c.UUID), src, err)
		}
		d.change(res, Change{Kind: "mapping", Name: name, Resource: src, Action: "updated", Detail: strings.Join(diff, ", ")})
	}
	for _, c := range cur {
		src := aws.ToString(c.EventSourceArn)
		if f, ok := found[src]; (ok && aws.ToString(f.UUID) == aws.ToString(c.UUID)) || !managedSource(src) || aws.ToString(c.State) == "Deleting" {
			continue
		}
		if err := d.deleteMapping(ctx, res, name, c); err != nil {
			return err
		}
	}
	return nil
}

func (d *Deployer) deleteMapping(ctx context.Context, res *Result, name string, c types.EventSourceMappingConfiguration) error {
	if _, err := d.Lambda.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: c.UUID}); err != nil {
		return fmt.Errorf("delete event source mapping %s: %w", aws.ToString(c.UUID), err)
	}
	d.change(res, Change{Kind: "mapping", Name: name, Resource: aws.ToString(c.EventSourceArn), Action: "deleted", Detail: aws.ToString(c.UUID)})
	return nil
}
