// A function's schedules as EventBridge Scheduler schedules, the rule-style ones delivering
// EventBridge's Scheduled Event document; the ones the stack no longer has are deleted.

package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// scheduleName is the name of a function's schedule: <function>-<name>, at most 64 characters.
func scheduleName(function, name string) string {
	s := function + "-" + sanitizeName(name)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// schedules creates or updates the function's schedules and deletes the ones that target it but
// the stack no longer has.
func (d *Deployer) schedules(ctx context.Context, res *Result, name, qualifier string, want map[string]*Schedule) error {
	fn, err := d.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		return err
	}
	arn := aws.ToString(fn.Configuration.FunctionArn)
	if qualifier != "" {
		arn += ":" + qualifier
	}
	keep := map[string]bool{}
	for _, s := range sortedKeys(want) {
		sc := want[s]
		sname := scheduleName(name, s)
		keep[sname] = true
		state := stypes.ScheduleStateEnabled
		if sc.Enabled != nil && !*sc.Enabled {
			state = stypes.ScheduleStateDisabled
		}
		input := sc.Input
		if sc.Rule && input == "" {
			rule := sc.RuleName
			if rule == "" {
				rule = sname
			}
			input = scheduledEvent(aws.ToString(fn.Configuration.FunctionArn), rule)
		}
		target := &stypes.Target{Arn: aws.String(arn), RoleArn: aws.String(defaultRole)}
		if input != "" {
			target.Input = aws.String(input)
		}
		got, err := d.Scheduler.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(sname)})
		var nf *stypes.ResourceNotFoundException
		exists := true
		switch {
		case errors.As(err, &nf):
			exists = false
		case err != nil:
			return fmt.Errorf("schedule %s: %w", sname, err)
		}
		if exists && aws.ToString(got.ScheduleExpression) == sc.Expression && got.State == state && got.Target != nil &&
			aws.ToString(got.Target.Arn) == arn && aws.ToString(got.Target.Input) == input {
			continue
		}
		ftw := &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff}
		action := "created"
		if exists {
			_, err = d.Scheduler.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{Name: aws.String(sname),
				ScheduleExpression: aws.String(sc.Expression), FlexibleTimeWindow: ftw, Target: target, State: state})
			action = "updated"
		} else {
			_, err = d.Scheduler.CreateSchedule(ctx, &scheduler.CreateScheduleInput{Name: aws.String(sname),
				ScheduleExpression: aws.String(sc.Expression), FlexibleTimeWindow: ftw, Target: target, State: state})
		}
		if err != nil {
			return fmt.Errorf("schedule %s: %w", sname, err)
		}
		d.change(res, Change{Kind: "schedule", Name: name, Resource: sname, Action: action, Detail: sc.Expression})
	}
	return d.deleteSchedules(ctx, res, name, aws.ToString(fn.Configuration.FunctionArn), keep)
}

// scheduledEvent is the Input that makes a Scheduler schedule deliver what an EventBridge rule
// named rule delivers to a function: EventBridge's "Scheduled Event" document, its id and time
// filled in per occurrence by Scheduler's context attributes (the time as EventBridge writes it,
// 2006-01-02T15:04:05Z; the id the same for every retry of one occurrence). functionArn gives
// the region and account.
func scheduledEvent(functionArn, rule string) string {
	parts := strings.Split(functionArn, ":") // arn:aws:lambda:REGION:ACCOUNT:function:NAME
	region, account := "", ""
	if len(parts) > 4 {
		region, account = parts[3], parts[4]
	}
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return `{"version":"0","id":"<aws.scheduler.execution-id>","detail-type":"Scheduled Event","source":"aws.events",` +
		`"account":` + str(account) + `,"time":"<aws.scheduler.scheduled-time>","region":` + str(region) +
		`,"resources":[` + str("arn:aws:events:"+region+":"+account+":rule/"+rule) + `],"detail":{}}`
}

// deleteSchedules deletes the schedules that target function (any qualifier) and are not in keep.
func (d *Deployer) deleteSchedules(ctx context.Context, res *Result, name, functionArn string, keep map[string]bool) error {
	p := scheduler.NewListSchedulesPaginator(d.Scheduler, &scheduler.ListSchedulesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list schedules: %w", err)
		}
		for _, s := range page.Schedules {
			if s.Target == nil || keep[aws.ToString(s.Name)] {
				continue
			}
			t := aws.ToString(s.Target.Arn)
			if t != functionArn && !strings.HasPrefix(t, functionArn+":") {
				continue
			}
			if _, err := d.Scheduler.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: s.Name}); err != nil {
				return fmt.Errorf("delete schedule %s: %w", aws.ToString(s.Name), err)
			}
			d.change(res, Change{Kind: "schedule", Name: name, Resource: aws.ToString(s.Name), Action: "deleted"})
		}
	}
	return nil
}
