package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// enqueue stores an Event invocation; the caller answers 202 only once it returns nil (JetStream
// holds the event).
func (a *API) enqueue(ctx context.Context, id, name, qualifier string, payload []byte) error {
	if len(payload) > lambda.MaxAsyncPayload {
		return apierr.RequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", lambda.MaxAsyncPayload)
	}
	if _, err := a.invoke.Lookup(ctx, name, qualifier); errors.Is(err, invoke.ErrNotFound) {
		return a.notFound(name, qualifier)
	} else if err != nil {
		return err
	}
	if qualifier == lambda.LatestVersion {
		qualifier = ""
	}
	ev := asyncq.Event{RequestID: id, Function: name, Qualifier: qualifier, Payload: payload,
		EnqueuedAt: time.Now(), FunctionArn: a.account.FunctionARN(name, "")}
	return a.queue.Enqueue(ctx, ev)
}

// invokeAsyncLegacy is the deprecated InvokeAsync API (2014-11-13).
func (a *API) invokeAsyncLegacy(w http.ResponseWriter, r *http.Request, id string) error {
	name, qualifier, err := a.functionName(r)
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
	if err := a.enqueue(r.Context(), id, name, qualifier, payload); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, map[string]int{"Status": http.StatusAccepted})
}

type eventInvokeConfigInput struct {
	MaximumRetryAttempts     *int                      `json:"MaximumRetryAttempts"`
	MaximumEventAgeInSeconds *int                      `json:"MaximumEventAgeInSeconds"`
	DestinationConfig        *lambda.DestinationConfig `json:"DestinationConfig"`
}

func (a *API) validateEventInvokeConfig(c *lambda.EventInvokeConfig) error {
	if n := c.MaximumRetryAttempts; n != nil && (*n < 0 || *n > 2) {
		return apierr.Validation("1 validation error detected: Value '%d' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and 2", *n)
	}
	if n := c.MaximumEventAgeInSeconds; n != nil && (*n < 60 || *n > 21600) {
		return apierr.Validation("1 validation error detected: Value '%d' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600", *n)
	}
	if d := c.DestinationConfig; d != nil {
		for _, dest := range []*lambda.Destination{d.OnSuccess, d.OnFailure} {
			if dest != nil && dest.Destination != "" && !asyncq.ValidDestination(dest.Destination) {
				return apierr.InvalidParameterValue("The destination ARN %s is invalid. Flint delivers to functions (arn:aws:lambda:REGION:ACCOUNT:function:NAME) and JetStream streams (arn:flint:jetstream:REGION:ACCOUNT:stream/NAME).", dest.Destination)
			}
		}
	}
	return nil
}

// eventInvokeTarget resolves the function and Qualifier of an event-invoke-config call.
func (a *API) eventInvokeTarget(r *http.Request) (store.Function, string, error) {
	f, err := a.latest(r)
	if err != nil {
		return f, "", err
	}
	q := r.URL.Query().Get("Qualifier")
	if q != "" && q != lambda.LatestVersion {
		if _, err := a.invoke.Lookup(r.Context(), f.Config.FunctionName, q); errors.Is(err, invoke.ErrNotFound) {
			return f, "", a.notFound(f.Config.FunctionName, q)
		} else if err != nil {
			return f, "", err
		}
	}
	if q == "" {
		q = lambda.LatestVersion
	}
	return f, q, nil
}

func (a *API) putEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	return a.writeEventInvokeConfig(w, r, false)
}

func (a *API) updateEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	return a.writeEventInvokeConfig(w, r, true)
}

// writeEventInvokeConfig is Put (replace everything) and Update (merge the given fields).
func (a *API) writeEventInvokeConfig(w http.ResponseWriter, r *http.Request, merge bool) error {
	var in eventInvokeConfigInput
	if err := decodeBody(r, 1<<16, "PutFunctionEventInvokeConfig", &in); err != nil {
		return err
	}
	f, q, err := a.eventInvokeTarget(r)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	c := &lambda.EventInvokeConfig{}
	if merge {
		if old, err := a.store.EventInvokeConfigs().Get(r.Context(), name, q); err == nil {
			c = old
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if in.MaximumRetryAttempts != nil {
			c.MaximumRetryAttempts = in.MaximumRetryAttempts
		}
		if in.MaximumEventAgeInSeconds != nil {
			c.MaximumEventAgeInSeconds = in.MaximumEventAgeInSeconds
		}
		if in.DestinationConfig != nil {
			c.DestinationConfig = in.DestinationConfig
		}
	} else {
		c = &lambda.EventInvokeConfig{MaximumRetryAttempts: in.MaximumRetryAttempts,
			MaximumEventAgeInSeconds: in.MaximumEventAgeInSeconds, DestinationConfig: in.DestinationConfig}
	}
	c.FunctionArn = a.account.FunctionARN(name, q)
	c.LastModified = float64(time.Now().UnixMilli()) / 1000
	if err := a.validateEventInvokeConfig(c); err != nil {
		return err
	}
	if err := a.store.EventInvokeConfigs().Put(r.Context(), name, q, c); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) eventInvokeConfigNotFound(name, q string) *apierr.Error {
	return apierr.ResourceNotFound("The function %s doesn't have an EventInvokeConfig", a.account.FunctionARN(name, q))
}

func (a *API) getEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	f, q, err := a.eventInvokeTarget(r)
	if err != nil {
		return err
	}
	c, err := a.store.EventInvokeConfigs().Get(r.Context(), f.Config.FunctionName, q)
	if errors.Is(err, store.ErrNotFound) {
		return a.eventInvokeConfigNotFound(f.Config.FunctionName, q)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (a *API) deleteEventInvokeConfig(w http.ResponseWriter, r *http.Request, _ string) error {
	f, q, err := a.eventInvokeTarget(r)
	if err != nil {
		return err
	}
	if err := a.store.EventInvokeConfigs().Delete(r.Context(), f.Config.FunctionName, q); errors.Is(err, store.ErrNotFound) {
		return a.eventInvokeConfigNotFound(f.Config.FunctionName, q)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listEventInvokeConfigs(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.latest(r)
	if err != nil {
		return err
	}
	page, err := paging(r)
	if err != nil {
		return err
	}
	maxItems, marker := page.MaxItems, page.Marker
	all, err := a.store.EventInvokeConfigs().List(r.Context(), f.Config.FunctionName)
	if err != nil {
		return err
	}
	out := struct {
		FunctionEventInvokeConfigs []*lambda.EventInvokeConfig `json:"FunctionEventInvokeConfigs"`
		NextMarker                 string                      `json:"NextMarker,omitempty"`
	}{FunctionEventInvokeConfigs: []*lambda.EventInvokeConfig{}}
	start := 0
	if marker != "" {
		if n, err := strconv.Atoi(marker); err == nil && n > 0 && n <= len(all) {
			start = n
		}
	}
	end := min(start+maxItems, len(all))
	out.FunctionEventInvokeConfigs = append(out.FunctionEventInvokeConfigs, all[start:end]...)
	if end < len(all) {
		out.NextMarker = strconv.Itoa(end)
	}
	return writeJSON(w, http.StatusOK, out)
}

// asyncQueue reports the queue per function (flint queue).
func (a *API) asyncQueue(w http.ResponseWriter, r *http.Request, _ string) error {
	st, err := a.queue.Stats(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Functions []asyncq.FunctionStats `json:"functions"`
	}{st})
}
