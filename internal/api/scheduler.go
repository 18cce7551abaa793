package api

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/events"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/scheduler"
	"github.com/flint-run/flint/internal/store"
)

// The EventBridge Scheduler API (2021-06-30) on the same endpoint: `aws scheduler … --endpoint-url`.

var scheduleNamePattern = regexp.MustCompile(`^[0-9a-zA-Z-_.]{1,64}$`)

type scheduleInput struct {
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

func schedulerValidation(format string, args ...any) *apierr.Error {
	return apierr.Validation(format, args...)
}

func (a *API) scheduleArn(group, name string) string {
	return "arn:aws:scheduler:" + a.account.Region + ":" + a.account.ID + ":schedule/" + group + "/" + name
}

func scheduleGroup(r *http.Request, fromBody string) (string, error) {
	g := r.URL.Query().Get("groupName")
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

func (a *API) validateSchedule(name string, in *scheduleInput) error {
	if !scheduleNamePattern.MatchString(name) {
		return schedulerValidation("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$", name)
	}
	if _, err := events.ParseSchedule(in.ScheduleExpression, in.ScheduleExpressionTimezone); err != nil {
		return schedulerValidation("%s", err.Error())
	}
	ftw := in.FlexibleTimeWindow
	if ftw == nil {
		return schedulerValidation("1 validation error detected: Value null at 'flexibleTimeWindow' failed to satisfy constraint: Member must not be null")
	}
	switch ftw.Mode {
	case "OFF":
	case "FLEXIBLE":
		if ftw.MaximumWindowInMinutes == nil || *ftw.MaximumWindowInMinutes < 1 || *ftw.MaximumWindowInMinutes > 1440 {
			return schedulerValidation("MaximumWindowInMinutes must be between 1 and 1440 when Mode is FLEXIBLE.")
		}
	default:
		return schedulerValidation("1 validation error detected: Value '%s' at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]", ftw.Mode)
	}
	if in.Target == nil || in.Target.Arn == "" || in.Target.RoleArn == "" {
		return schedulerValidation("1 validation error detected: Value null at 'target' failed to satisfy constraint: Target Arn and RoleArn must not be null")
	}
	if !scheduler.ValidTarget(in.Target.Arn) {
		return schedulerValidation("Invalid target ARN %s: Flint schedules invoke Lambda functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME).", in.Target.Arn)
	}
	// A schedule and its function share a region and account (as CDK's LambdaInvoke target
	// requires); a firing must never reach the local function of the same name instead.
	if ref, err := lambda.ParseFunctionRef(in.Target.Arn); err != nil || ref.Region != a.account.Region || ref.Account != a.account.ID {
		return schedulerValidation("Invalid target ARN %s: the function must be in the schedule's region and account (%s, %s).", in.Target.Arn, a.account.Region, a.account.ID)
	}
	switch in.State {
	case "":
		in.State = "ENABLED"
	case "ENABLED", "DISABLED":
	default:
		return schedulerValidation("1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [DISABLED, ENABLED]", in.State)
	}
	switch in.ActionAfterCompletion {
	case "", "NONE", "DELETE":
	default:
		return schedulerValidation("1 validation error detected: Value '%s' at 'actionAfterCompletion' failed to satisfy constraint: Member must satisfy enum value set: [NONE, DELETE]", in.ActionAfterCompletion)
	}
	return nil
}

func epochNow() float64 { return float64(time.Now().UnixMilli()) / 1000 }

func (a *API) createSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	var in scheduleInput
	if err := decodeBody(r, 1<<20, "CreateSchedule", &in); err != nil {
		return err
	}
	name := r.PathValue("schedule")
	group, err := scheduleGroup(r, in.GroupName)
	if err != nil {
		return err
	}
	if err := a.validateSchedule(name, &in); err != nil {
		return err
	}
	now := epochNow()
	sc := &lambda.Schedule{Arn: a.scheduleArn(group, name), Name: name, GroupName: group, ScheduleExpression: in.ScheduleExpression,
		ScheduleExpressionTimezone: in.ScheduleExpressionTimezone, FlexibleTimeWindow: in.FlexibleTimeWindow, Target: in.Target,
		State: in.State, Description: in.Description, CreationDate: now, LastModificationDate: now, StartDate: in.StartDate,
		EndDate: in.EndDate, ActionAfterCompletion: in.ActionAfterCompletion}
	if err := a.store.Schedules().Create(r.Context(), sc); errors.Is(err, store.ErrExists) {
		return apierr.Conflict("Schedule %s already exists.", name)
	} else if err != nil {
		return err
	}
	a.schedules.Changed()
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": sc.Arn})
}

func (a *API) getSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	name := r.PathValue("schedule")
	group, err := scheduleGroup(r, "")
	if err != nil {
		return err
	}
	sc, err := a.store.Schedules().Get(r.Context(), group, name)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.ResourceNotFound("Schedule %s does not exist.", name)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sc)
}

func (a *API) updateSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	var in scheduleInput
	if err := decodeBody(r, 1<<20, "UpdateSchedule", &in); err != nil {
		return err
	}
	name := r.PathValue("schedule")
	group, err := scheduleGroup(r, in.GroupName)
	if err != nil {
		return err
	}
	if err := a.validateSchedule(name, &in); err != nil {
		return err
	}
	old, err := a.store.Schedules().Get(r.Context(), group, name)
	if errors.Is(err, store.ErrNotFound) {
		return apierr.ResourceNotFound("Schedule %s does not exist.", name)
	}
	if err != nil {
		return err
	}
	sc := *old
	sc.ScheduleExpression, sc.ScheduleExpressionTimezone, sc.FlexibleTimeWindow = in.ScheduleExpression, in.ScheduleExpressionTimezone, in.FlexibleTimeWindow
	sc.Target, sc.State, sc.Description, sc.StartDate, sc.EndDate = in.Target, in.State, in.Description, in.StartDate, in.EndDate
	sc.ActionAfterCompletion, sc.LastModificationDate = in.ActionAfterCompletion, epochNow()
	if err := a.store.Schedules().Update(r.Context(), &sc); err != nil {
		return err
	}
	a.schedules.Changed()
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": sc.Arn})
}

func (a *API) deleteSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	name := r.PathValue("schedule")
	group, err := scheduleGroup(r, "")
	if err != nil {
		return err
	}
	if err := a.store.Schedules().Delete(r.Context(), group, name); errors.Is(err, store.ErrNotFound) {
		return apierr.ResourceNotFound("Schedule %s does not exist.", name)
	} else if err != nil {
		return err
	}
	a.schedules.Changed()
	return writeJSON(w, http.StatusOK, struct{}{})
}

func (a *API) listSchedules(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	all, err := a.store.Schedules().List(r.Context())
	if err != nil {
		return err
	}
	maxResults := 100
	if s := q.Get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return schedulerValidation("1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", s)
		}
		maxResults = n
	}
	type summary struct {
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
	out := struct {
		Schedules []summary `json:"Schedules"`
		NextToken string    `json:"NextToken,omitempty"`
	}{Schedules: []summary{}}
	token := q.Get("NextToken")
	for _, sc := range all {
		if (token != "" && sc.Name <= token) || !strings.HasPrefix(sc.Name, q.Get("NamePrefix")) ||
			(q.Get("State") != "" && sc.State != q.Get("State")) || (q.Get("GroupName") != "" && sc.GroupName != q.Get("GroupName")) {
			continue
		}
		if len(out.Schedules) == maxResults {
			out.NextToken = out.Schedules[len(out.Schedules)-1].Name
			break
		}
		s := summary{Arn: sc.Arn, Name: sc.Name, GroupName: sc.GroupName, State: sc.State, CreationDate: sc.CreationDate, LastModificationDate: sc.LastModificationDate}
		s.Target.Arn = sc.Target.Arn
		out.Schedules = append(out.Schedules, s)
	}
	return writeJSON(w, http.StatusOK, out)
}
