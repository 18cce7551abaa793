package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
)

// enqueue stores an Event invocation of a function the caller has resolved in the invocation
// view (Lookup: the data plane's, as Invoke is, never the store); the caller answers 202 only
// once it returns nil (JetStream holds the event). trace is the caller's X-Amzn-Trace-Id ("":
// the queue starts a new trace).
func (a *API) enqueue(ctx context.Context, id, name, qualifier, trace string, payload []byte) error {
	if len(payload) > lambda.MaxAsyncPayload {
		return apierr.RequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", lambda.MaxAsyncPayload)
	}
	if qualifier == lambda.LatestVersion {
		qualifier = ""
	}
	ev := asyncq.Event{RequestID: id, Function: name, Qualifier: qualifier, Payload: payload,
		EnqueuedAt: time.Now(), FunctionArn: a.account.FunctionARN(name, ""), TraceID: trace}
	return a.queue.Enqueue(ctx, ev)
}

// invokeAsyncLegacy is the deprecated InvokeAsync API (2014-11-13).
func (a *API) invokeAsyncLegacy(w http.ResponseWriter, r *http.Request, id string) error {
	name, qualifier, err := a.ctl.Function(a.target(r))
	if err != nil {
		return err
	}
	payload, err := readPayload(r.Body, make([]byte, 0, 512))
	if errors.Is(err, errPayloadTooLarge) || len(payload) > lambda.MaxAsyncPayload {
		return apierr.RequestTooLarge("Request must be smaller than %d bytes for the InvokeAsync operation", lambda.MaxAsyncPayload)
	}
	if err != nil {
		return apierr.InvalidRequestContent("Could not read request body: %v", err)
	}
	if _, err := a.invoke.Lookup(r.Context(), name, qualifier); errors.Is(err, invoke.ErrNotFound) {
		return a.notFound(name, qualifier)
	} else if err != nil {
		return err
	}
	if err := a.enqueue(r.Context(), id, name, qualifier, r.Header.Get("X-Amzn-Trace-Id"), payload); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]int{"Status": http.StatusAccepted})
}

func (a *API) putEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.EventInvokeConfigInput
	if err := decodeBody(r, 1<<16, "PutFunctionEventInvokeConfig", &in); err != nil {
		return err
	}
	c, err := a.ctl.EventInvokeConfigs.Put(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) updateEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.EventInvokeConfigInput
	if err := decodeBody(r, 1<<16, "PutFunctionEventInvokeConfig", &in); err != nil {
		return err
	}
	c, err := a.ctl.EventInvokeConfigs.Update(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) getEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	c, err := a.ctl.EventInvokeConfigs.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.EventInvokeConfigs.Delete(r.Context(), a.target(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listEventInvokeConfigs(w http.ResponseWriter, r *http.Request, _ string) error {
	out, err := a.ctl.EventInvokeConfigs.List(r.Context(), a.target(r), func() (control.Page, error) { return paging(r) })
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// asyncQueue reports the queue per function (flint queue) and, in a cluster, the node leading
// its consumer.
func (a *API) asyncQueue(w http.ResponseWriter, r *http.Request, _ string) error {
	st, err := a.queue.Stats(r.Context())
	if err != nil {
		return err
	}
	// Unknown while the consumer elects a leader: left out rather than failing the stats.
	leader, _ := a.queue.ConsumerLeader(r.Context())
	return writeJSON(w, http.StatusOK, struct {
		Functions      []asyncq.FunctionStats `json:"functions"`
		ConsumerLeader string                 `json:"consumer_leader,omitempty"`
	}{st, leader})
}

// listViews reports how far this node's in-memory views of the store have come (invoke.Views):
// a node whose views are behind runs invocations with the configuration it has.
func (a *API) listViews(w http.ResponseWriter, r *http.Request, _ string) error {
	views, err := a.invoke.Views(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Views []invoke.ViewState `json:"views"`
	}{views})
}
