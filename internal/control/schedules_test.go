package control_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/lambda"
)

// changes counts the scheduler's Changed notifications: the contract with the scheduler is
// one after each write (the server tests run the real scheduler on it).
type changes struct{ n atomic.Int32 }

func (c *changes) Changed() { c.n.Add(1) }

func TestSchedules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	notes := &changes{}
	svc := planeWith(e, func(c *control.Config) { c.Scheduler = notes }).Schedules
	target := &lambda.ScheduleTarget{Arn: e.account.FunctionARN("fn", ""), RoleArn: "arn:aws:iam::123456789012:role/r"}
	valid := func(change func(*control.ScheduleInput)) control.ScheduleInput {
		in := control.ScheduleInput{ScheduleExpression: "rate(5 minutes)", FlexibleTimeWindow: &lambda.FlexibleTimeWindow{Mode: "OFF"}, Target: target}
		if change != nil {
			change(&in)
		}
		return in
	}

	// Rejections store nothing and tell the scheduler nothing.
	for _, tt := range []struct {
		name, group, schedule string
		in                    control.ScheduleInput
		code, msg             string
	}{
		{"bad name", "", "a b", valid(nil), "ValidationException", "at 'name'"},
		{"long name", "", string(make([]byte, 65)), valid(nil), "ValidationException", "at 'name'"},
		{"other group", "other", "s", valid(nil), "ResourceNotFoundException", "Schedule group other does not exist"},
		{"other group in the body", "", "s", valid(func(in *control.ScheduleInput) { in.GroupName = "other" }), "ResourceNotFoundException", "Schedule group other"},
		{"no expression", "", "s", valid(func(in *control.ScheduleInput) { in.ScheduleExpression = "" }), "ValidationException", "Invalid Schedule Expression"},
		{"bad rate", "", "s", valid(func(in *control.ScheduleInput) { in.ScheduleExpression = "rate(0 minutes)" }), "ValidationException", "positive integer"},
		{"bad time zone", "", "s", valid(func(in *control.ScheduleInput) { in.ScheduleExpressionTimezone = "Mars/Base" }), "ValidationException", "Mars/Base"},
		{"no window", "", "s", valid(func(in *control.ScheduleInput) { in.FlexibleTimeWindow = nil }), "ValidationException", "'flexibleTimeWindow'"},
		{"bad mode", "", "s", valid(func(in *control.ScheduleInput) { in.FlexibleTimeWindow = &lambda.FlexibleTimeWindow{Mode: "X"} }), "ValidationException", "'flexibleTimeWindow.mode'"},
		{"flexible without window", "", "s", valid(func(in *control.ScheduleInput) { in.FlexibleTimeWindow = &lambda.FlexibleTimeWindow{Mode: "FLEXIBLE"} }), "ValidationException", "MaximumWindowInMinutes"},
		{"flexible window 0", "", "s", valid(func(in *control.ScheduleInput) {
			in.FlexibleTimeWindow = &lambda.FlexibleTimeWindow{Mode: "FLEXIBLE", MaximumWindowInMinutes: ptr(0)}
		}), "ValidationException", "MaximumWindowInMinutes"},
		{"no target", "", "s", valid(func(in *control.ScheduleInput) { in.Target = nil }), "ValidationException", "'target'"},
		{"no role", "", "s", valid(func(in *control.ScheduleInput) { in.Target = &lambda.ScheduleTarget{Arn: target.Arn} }), "ValidationException", "'target'"},
		{"not a function", "", "s", valid(func(in *control.ScheduleInput) {
			in.Target = &lambda.ScheduleTarget{Arn: "arn:aws:sqs:us-east-1:123456789012:q", RoleArn: target.RoleArn}
		}), "ValidationException", "Flint schedules invoke Lambda functions"},
		{"other account's function", "", "s", valid(func(in *control.ScheduleInput) {
			in.Target = &lambda.ScheduleTarget{Arn: "arn:aws:lambda:us-east-1:999999999999:function:fn", RoleArn: target.RoleArn}
		}), "ValidationException", "region and account (us-east-1, 123456789012)"},
		{"other region's function", "", "s", valid(func(in *control.ScheduleInput) {
			in.Target = &lambda.ScheduleTarget{Arn: "arn:aws:lambda:eu-west-1:123456789012:function:fn", RoleArn: target.RoleArn}
		}), "ValidationException", "region and account"},
		{"bad state", "", "s", valid(func(in *control.ScheduleInput) { in.State = "on" }), "ValidationException", "at 'state'"},
		{"bad action", "", "s", valid(func(in *control.ScheduleInput) { in.ActionAfterCompletion = "KEEP" }), "ValidationException", "'actionAfterCompletion'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Create(ctx, tt.group, tt.schedule, tt.in)
			wantErr(t, err, tt.code, tt.msg)
		})
	}
	if all, err := e.st.Schedules().List(ctx); err != nil || len(all) != 0 || notes.n.Load() != 0 {
		t.Fatalf("after rejections: %v, %v, %d notifications", all, err, notes.n.Load())
	}

	// Create: enabled by default, in the default group; each write tells the scheduler once.
	sc, err := svc.Create(ctx, "", "s1", valid(func(in *control.ScheduleInput) { in.Description = "one" }))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Arn != "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s1" || sc.State != "ENABLED" || sc.GroupName != "default" ||
		sc.CreationDate == 0 || sc.LastModificationDate != sc.CreationDate || notes.n.Load() != 1 {
		t.Fatalf("created %+v (%d notifications)", sc, notes.n.Load())
	}
	_, err = svc.Create(ctx, "default", "s1", valid(nil))
	wantErr(t, err, "ConflictException", "Schedule s1 already exists.")
	if got, err := svc.Get(ctx, "", "s1"); err != nil || got.Description != "one" || notes.n.Load() != 1 {
		t.Fatalf("after a conflict: %+v, %v, %d notifications", got, err, notes.n.Load())
	}
	_, err = svc.Get(ctx, "", "nope")
	wantErr(t, err, "ResourceNotFoundException", "Schedule nope does not exist.")
	_, err = svc.Get(ctx, "other", "s1")
	wantErr(t, err, "ResourceNotFoundException", "Schedule group other")

	// Update replaces the body, keeps the identity; a rejected one changes nothing.
	_, err = svc.Update(ctx, "", "s1", valid(func(in *control.ScheduleInput) { in.State = "PAUSED" }))
	wantErr(t, err, "ValidationException", "at 'state'")
	_, err = svc.Update(ctx, "", "nope", valid(nil))
	wantErr(t, err, "ResourceNotFoundException", "Schedule nope does not exist.")
	up, err := svc.Update(ctx, "", "s1", valid(func(in *control.ScheduleInput) {
		in.ScheduleExpression, in.State = "cron(0 12 * * ? *)", "DISABLED"
	}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc.Get(ctx, "", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ScheduleExpression != "cron(0 12 * * ? *)" || got.State != "DISABLED" || got.Description != "" || got.Arn != sc.Arn ||
		got.CreationDate != sc.CreationDate || got.LastModificationDate < sc.LastModificationDate || up.Arn != sc.Arn || notes.n.Load() != 2 {
		t.Fatalf("updated %+v (%d notifications)", got, notes.n.Load())
	}

	// Lists: by prefix, state and group, paged by name.
	for _, n := range []string{"s2", "s3", "t1"} {
		if _, err := svc.Create(ctx, "", n, valid(nil)); err != nil {
			t.Fatal(err)
		}
	}
	names := func(l *control.ScheduleList) (out []string) {
		for _, s := range l.Schedules {
			out = append(out, s.Name)
		}
		return out
	}
	for _, tt := range []struct {
		name string
		f    control.ScheduleFilter
		want []string
		next string
	}{
		{"all", control.ScheduleFilter{MaxResults: 100}, []string{"s1", "s2", "s3", "t1"}, ""},
		{"prefix", control.ScheduleFilter{NamePrefix: "s", MaxResults: 100}, []string{"s1", "s2", "s3"}, ""},
		{"enabled", control.ScheduleFilter{State: "ENABLED", MaxResults: 100}, []string{"s2", "s3", "t1"}, ""},
		{"group", control.ScheduleFilter{GroupName: "default", NamePrefix: "t", MaxResults: 100}, []string{"t1"}, ""},
		{"other group", control.ScheduleFilter{GroupName: "other", MaxResults: 100}, nil, ""},
		{"first page", control.ScheduleFilter{NamePrefix: "s", MaxResults: 2}, []string{"s1", "s2"}, "s2"},
		{"next page", control.ScheduleFilter{NamePrefix: "s", MaxResults: 2, NextToken: "s2"}, []string{"s3"}, ""},
	} {
		t.Run("list "+tt.name, func(t *testing.T) {
			l, err := svc.List(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(l); !slices.Equal(got, tt.want) || l.NextToken != tt.next {
				t.Fatalf("got %v next %q, want %v next %q", got, l.NextToken, tt.want, tt.next)
			}
		})
	}
	if l, _ := svc.List(ctx, control.ScheduleFilter{NamePrefix: "s1", MaxResults: 1}); len(l.Schedules) != 1 || l.Schedules[0].Target.Arn != target.Arn ||
		l.Schedules[0].Arn != sc.Arn || l.Schedules[0].State != "DISABLED" {
		t.Fatalf("summary %+v", l.Schedules)
	}

	// Delete.
	before := notes.n.Load()
	if err := svc.Delete(ctx, "", "s1"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, svc.Delete(ctx, "", "s1"), "ResourceNotFoundException", "Schedule s1 does not exist.")
	wantErr(t, svc.Delete(ctx, "other", "s2"), "ResourceNotFoundException", "Schedule group other")
	if notes.n.Load() != before+1 {
		t.Fatalf("%d notifications for one deletion", notes.n.Load()-before)
	}
	if _, err := svc.Get(ctx, "", "s2"); err != nil {
		t.Fatalf("a refused delete removed s2: %v", err)
	}

	// Without a scheduler to tell, writes still work.
	if _, err := e.plane.Schedules.Create(ctx, "", "quiet", valid(nil)); err != nil {
		t.Fatal(err)
	}
}
