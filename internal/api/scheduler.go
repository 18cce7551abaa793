package api

import (
	"net/http"
	"strconv"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/control"
)

// The EventBridge Scheduler API (2021-06-30) on the same endpoint: `aws scheduler … --endpoint-url`.

func (a *API) createSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.ScheduleInput
	if err := decodeBody(r, 1<<20, "CreateSchedule", &in); err != nil {
		return err
	}
	sc, err := a.ctl.Schedules.Create(r.Context(), r.URL.Query().Get("groupName"), r.PathValue("schedule"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": sc.Arn})
}

func (a *API) getSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	sc, err := a.ctl.Schedules.Get(r.Context(), r.URL.Query().Get("groupName"), r.PathValue("schedule"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sc)
}

func (a *API) updateSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.ScheduleInput
	if err := decodeBody(r, 1<<20, "UpdateSchedule", &in); err != nil {
		return err
	}
	sc, err := a.ctl.Schedules.Update(r.Context(), r.URL.Query().Get("groupName"), r.PathValue("schedule"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"ScheduleArn": sc.Arn})
}

func (a *API) deleteSchedule(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.Schedules.Delete(r.Context(), r.URL.Query().Get("groupName"), r.PathValue("schedule")); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct{}{})
}

func (a *API) listSchedules(w http.ResponseWriter, r *http.Request, _ string) error {
	q := r.URL.Query()
	f := control.ScheduleFilter{NamePrefix: q.Get("NamePrefix"), State: q.Get("State"), GroupName: q.Get("GroupName"),
		NextToken: q.Get("NextToken"), MaxResults: 100}
	if s := q.Get("MaxResults"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			return apierr.Validation("1 validation error detected: Value '%s' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", s)
		}
		f.MaxResults = n
	}
	out, err := a.ctl.Schedules.List(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}
