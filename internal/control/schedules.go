package control

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/scheduler"
	"github.com/flint-run/flint/internal/store"
)

// Notifier is told after a write to the schedules, so that the scheduler (scheduler.Service)
// plans its next firing from them at once rather than on its KV watch.
type Notifier interface {
	Changed()
}

// scheduleStore is the schedules repository (store.Schedules).
type scheduleStore interface {
	Create(ctx context.Context, sc *lambda.Schedule) error
	Update(ctx context.Context, sc *lambda.Schedule) error
	Get(ctx context.Context, group, name string) (*lambda.Schedule, error)
	Delete(ctx context.Context, group, name string) error
	List(ctx context.Context) ([]*lambda.Schedule, error)
}

// Schedules serves the EventBridge Scheduler API (2021-06-30): CreateSchedule, GetSchedule,
// UpdateSchedule, DeleteSchedule and ListSchedules. Flint has one schedule group, "default".
type Schedules struct {
	account   lambda.Account
	schedules scheduleStore
	scheduler Notifier // nil: none to tell
}

// ScheduleInput is CreateSchedule's and UpdateSchedule's request body.
type ScheduleInput struct {
	ScheduleExpression         string                     `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string                     `json:"ScheduleExpressionTimezone"`
	FlexibleTimeWindow         *lambda.FlexibleTimeWindow `json:"FlexibleTimeWindow"`
	Target                     *lambda.ScheduleTarget     `json:"Target"`
	State                      string                     `json:"State"`
	Description                string                     `json:"Description"`
	GroupName                  string                     `json:"GroupName"`
	StartDate                  *float64                   `json:"StartDate"`
	EndDate                    *float64                   `json:"EndDate"`
	ActionAfterCompletion      string                     `json:"ActionAfterCompletion"`
}

// ScheduleFilter is what ListSchedules selects by; empty fields select all. NextToken is the
// name of the last schedule of the page before.
type ScheduleFilter struct {
	NamePrefix, State, GroupName, NextToken string
	MaxResults                              int
}

// ScheduleSummary is a schedule as ListSchedules shows it.
type ScheduleSummary struct {
	Arn                  string  `json:"Arn"`
	Name                 string  `json:"Name"`
	GroupName            string  `json:"GroupName"`
	State                string  `json:"State"`
	CreationDate         float64 `json:"CreationDate"`
	LastModificationDate float64 `json:"LastModificationDate"`
	Target               struct {
		Arn string `json:"Arn"`
	} `json:"Target"`
}

// ScheduleList is ListSchedules's answer.
type ScheduleList struct {
	Schedules []ScheduleSummary `json:"Schedules"`
	NextToken string            `json:"NextToken,omitempty"`
}

var scheduleNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-zA-Z-_.]{1,64}$`) })

func (s *Schedules) arn(group, name string) string {
	return "arn:aws:scheduler:" + s.account.Region + ":" + s.account.ID + ":schedule/" + group + "/" + name
}

func scheduleNotFound(name string) *apierr.Error {
	return apierr.ResourceNotFound("Schedule %s does not exist.", name)
}

// group is the schedule group a request names: the groupName parameter, else the body's
// GroupName, else "default", the only one there is.
func scheduleGroup(param, fromBody string) (string, error) {
	g := param
	if g == "" {
		g = fromBody
	}
	if g == "" {
		g = "default"
	}
	if g != "default" {
		return "", apierr.ResourceNotFound("Schedule group %s does not exist.", g)
	}
	return g, nil
}

// validate checks a schedule's name and body, and sets the default State.
func (s *Schedules) validate(name string, in *ScheduleInput) error {
	if !scheduleNamePattern().MatchString(name) {
		return apierr.Validation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$", name)
	}
	if _, err := scheduler.ParseSchedule(in.ScheduleExpression, in.ScheduleExpressionTimezone); err != nil {
		return apierr.Validation("%s", err.Error())
	}
	ftw := in.FlexibleTimeWindow
	if ftw == nil {
		return apierr.Validation("1 validation error detected: Value null at 'flexibleTimeWindow' failed to satisfy constraint: Member must not be null")
	}
	switch ftw.Mode {
	case "OFF":
	case "FLEXIBLE":
		if ftw.MaximumWindowInMinutes == nil || *ftw.MaximumWindowInMinutes < 1 || *ftw.MaximumWindowInMinutes > 1440 {
			return apierr.Validation("MaximumWindowInMinutes must be between 1 and 1440 when Mode is FLEXIBLE.")
		}
	default:
		return apierr.Validation("1 validation error detected: Value '%s' at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]", ftw.Mode)
	}
	if in.Target == nil || in.Target.Arn == "" || in.Target.RoleArn == "" {
		return apierr.Validation("1 validation error detected: Value null at 'target' failed to satisfy constraint: Target Arn and RoleArn must not be null")
	}
	if !scheduler.ValidTarget(in.Target.Arn) {
		return apierr.Validation("Invalid target ARN %s: Flint schedules invoke Lambda functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME).", in.Target.Arn)
	}
	// A schedule and its function share a region and account (as CDK's LambdaInvoke target
	// requires); a firing must never reach the local function of the same name instead.
	if ref, err := lambda.ParseFunctionRef(in.Target.Arn); err != nil || ref.Region != s.account.Region || ref.Account != s.account.ID {
		return apierr.Validation("Invalid target ARN %s: the function must be in the schedule's region and account (%s, %s).", in.Target.Arn, s.account.Region, s.account.ID)
	}
	switch in.State {
	case "":
		in.State = "ENABLED"
	case "ENABLED", "DISABLED":
	default:
		return apierr.Validation("1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [DISABLED, ENABLED]", in.State)
	}
	switch in.ActionAfterCompletion {
	case "", "NONE", "DELETE":
	default:
		return apierr.Validation("1 validation error detected: Value '%s' at 'actionAfterCompletion' failed to satisfy constraint: Member must satisfy enum value set: [NONE, DELETE]", in.ActionAfterCompletion)
	}
	return nil
}

func (s *Schedules) changed() {
	if s.scheduler != nil {
		s.scheduler.Changed()
	}
}

// Create stores schedule name in the group named by the groupName parameter or the body.
func (s *Schedules) Create(ctx context.Context, groupParam, name string, in ScheduleInput) (*lambda.Schedule, error) {
	group, err := scheduleGroup(groupParam, in.GroupName)
	if err != nil {
		return nil, err
	}
	if err := s.validate(name, &in); err != nil {
		return nil, err
	}
	now := epochNow()
	sc := &lambda.Schedule{Arn: s.arn(group, name), Name: name, GroupName: group, ScheduleExpression: in.ScheduleExpression,
		ScheduleExpressionTimezone: in.ScheduleExpressionTimezone, FlexibleTimeWindow: in.FlexibleTimeWindow, Target: in.Target,
		State: in.State, Description: in.Description, CreationDate: now, LastModificationDate: now, StartDate: in.StartDate,
		EndDate: in.EndDate, ActionAfterCompletion: in.ActionAfterCompletion}
	if err := s.schedules.Create(ctx, sc); errors.Is(err, store.ErrExists) {
		return nil, apierr.Conflict("Schedule %s already exists.", name)
	} else if err != nil {
		return nil, err
	}
	s.changed()
	return sc, nil
}

// Get returns schedule name of the group the groupName parameter names.
func (s *Schedules) Get(ctx context.Context, groupParam, name string) (*lambda.Schedule, error) {
	group, err := scheduleGroup(groupParam, "")
	if err != nil {
		return nil, err
	}
	sc, err := s.schedules.Get(ctx, group, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, scheduleNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// Update replaces what a schedule does (UpdateSchedule takes every field, as CreateSchedule);
// its ARN, name, group and creation date stay.
func (s *Schedules) Update(ctx context.Context, groupParam, name string, in ScheduleInput) (*lambda.Schedule, error) {
	group, err := scheduleGroup(groupParam, in.GroupName)
	if err != nil {
		return nil, err
	}
	if err := s.validate(name, &in); err != nil {
		return nil, err
	}
	old, err := s.schedules.Get(ctx, group, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, scheduleNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	sc := *old
	sc.ScheduleExpression, sc.ScheduleExpressionTimezone, sc.FlexibleTimeWindow = in.ScheduleExpression, in.ScheduleExpressionTimezone, in.FlexibleTimeWindow
	sc.Target, sc.State, sc.Description, sc.StartDate, sc.EndDate = in.Target, in.State, in.Description, in.StartDate, in.EndDate
	sc.ActionAfterCompletion, sc.LastModificationDate = in.ActionAfterCompletion, epochNow()
	if err := s.schedules.Update(ctx, &sc); err != nil {
		return nil, err
	}
	s.changed()
	return &sc, nil
}

// Delete removes schedule name of the group the groupName parameter names.
func (s *Schedules) Delete(ctx context.Context, groupParam, name string) error {
	group, err := scheduleGroup(groupParam, "")
	if err != nil {
		return err
	}
	if err := s.schedules.Delete(ctx, group, name); errors.Is(err, store.ErrNotFound) {
		return scheduleNotFound(name)
	} else if err != nil {
		return err
	}
	s.changed()
	return nil
}

// List returns a page of the schedules f selects, by name.
func (s *Schedules) List(ctx context.Context, f ScheduleFilter) (*ScheduleList, error) {
	all, err := s.schedules.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &ScheduleList{Schedules: []ScheduleSummary{}}
	for _, sc := range all {
		if (f.NextToken != "" && sc.Name <= f.NextToken) || !strings.HasPrefix(sc.Name, f.NamePrefix) ||
			(f.State != "" && sc.State != f.State) || (f.GroupName != "" && sc.GroupName != f.GroupName) {
			continue
		}
		if len(out.Schedules) == f.MaxResults {
			out.NextToken = out.Schedules[len(out.Schedules)-1].Name
			break
		}
		sum := ScheduleSummary{Arn: sc.Arn, Name: sc.Name, GroupName: sc.GroupName, State: sc.State, CreationDate: sc.CreationDate, LastModificationDate: sc.LastModificationDate}
		sum.Target.Arn = sc.Target.Arn
		out.Schedules = append(out.Schedules, sum)
	}
	return out, nil
}
