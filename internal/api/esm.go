package api

import (
	"net/http"
	"time"

	"github.com/flint-run/flint/internal/control"
)

func (a *API) createEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.MappingInput
	if err := decodeBody(r, 1<<16, "CreateEventSourceMapping", &in); err != nil {
		return err
	}
	m, err := a.ctl.Mappings.Create(r.Context(), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, m)
}

func (a *API) getEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	m, err := a.ctl.Mappings.Get(r.Context(), r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}

func (a *API) updateEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.MappingInput
	if err := decodeBody(r, 1<<16, "UpdateEventSourceMapping", &in); err != nil {
		return err
	}
	m, err := a.ctl.Mappings.Update(r.Context(), r.PathValue("uuid"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, m)
}

func (a *API) deleteEventSourceMapping(w http.ResponseWriter, r *http.Request, _ string) error {
	m, err := a.ctl.Mappings.Delete(r.Context(), r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, m)
}

func (a *API) listEventSourceMappings(w http.ResponseWriter, r *http.Request, _ string) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out, err := a.ctl.Mappings.List(r.Context(), control.MappingFilter{FunctionName: q.Get("FunctionName"), EventSourceArn: q.Get("EventSourceArn")}, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// mappingLagEntry is one mapping's lag as GET /flint/v1/mappings/lag reports it.
type mappingLagEntry struct {
	UUID           string        `json:"uuid"`
	FunctionArn    string        `json:"function_arn"`
	EventSourceArn string        `json:"event_source_arn"`
	Behind         uint64        `json:"behind"`
	OldestAge      time.Duration `json:"oldest_age_ns"`
}

// mappingLag serves GET /flint/v1/mappings/lag: the mappings this node runs, with the records
// or messages each has not finished and the oldest one's age (flint queues, flint streams).
func (a *API) mappingLag(w http.ResponseWriter, r *http.Request, _ string) error {
	out := []mappingLagEntry{}
	if a.lag != nil {
		for _, l := range a.lag(r.Context()) {
			out = append(out, mappingLagEntry{UUID: l.UUID, FunctionArn: l.FunctionArn, EventSourceArn: l.EventSourceArn,
				Behind: l.Behind, OldestAge: l.OldestAge})
		}
	}
	return writeJSON(w, http.StatusOK, struct {
		Mappings []mappingLagEntry `json:"mappings"`
	}{out})
}
