package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
)

var (
	hdrExecutedVersion = []string{lambda.LatestVersion}
	hdrUnhandled       = []string{"Unhandled"}
	hdrJSON            = []string{"application/json"}
	emptyEvent         = []byte("{}")
)

// invokeFunction is the hot path: no disk, no JetStream, one pass over the body.
func (a *API) invokeFunction(w http.ResponseWriter, r *http.Request) {
	id := uuid.New().String()
	w.Header()["X-Amzn-Requestid"] = []string{id}
	if err := a.invokeFunctionErr(w, r, id); err != nil {
		a.writeError(w, r, id, err)
	}
}

func (a *API) invokeFunctionErr(w http.ResponseWriter, r *http.Request, id string) error {
	name, qualifier, err := a.ctl.Function(a.target(r))
	if err != nil {
		return err
	}
	h := r.Header
	dryRun, event := false, false
	switch t := h.Get("X-Amz-Invocation-Type"); t {
	case "", "RequestResponse":
	case "DryRun":
		dryRun = true
	case "Event":
		event = true
	default:
		return apierr.Validation("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", t)
	}
	tail := false
	switch t := h.Get("X-Amz-Log-Type"); t {
	case "", "None":
	case "Tail":
		tail = true
	default:
		return apierr.Validation("1 validation error detected: Value '%s' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [None, Tail]", t)
	}
	var clientContext string
	if cc := h.Get("X-Amz-Client-Context"); cc != "" {
		if len(cc) > lambda.MaxClientContextBytes {
			return apierr.InvalidParameterValue("Client context must be at most %d bytes.", lambda.MaxClientContextBytes)
		}
		b, err := base64.StdEncoding.DecodeString(cc)
		if err != nil || !json.Valid(b) {
			return apierr.InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")
		}
		clientContext = string(b)
	}
	entry, err := a.invoke.Lookup(r.Context(), name, qualifier)
	if errors.Is(err, invoke.ErrNotFound) {
		return a.invokeNotFound(name, qualifier)
	}
	if err != nil {
		return err
	}
	// The payload is not pooled: a timed-out environment may still be reading it.
	size := 512
	if r.ContentLength > 0 && r.ContentLength <= lambda.MaxSyncPayload {
		size = int(r.ContentLength) + 1
	}
	payload, err := readPayload(r.Body, make([]byte, 0, size))
	if errors.Is(err, errPayloadTooLarge) {
		return apierr.RequestTooLarge("Request must be smaller than %d bytes for the InvokeFunction operation", lambda.MaxSyncPayload)
	}
	if err != nil {
		return apierr.InvalidRequestContent("Could not read request body: %v", err)
	}
	if len(payload) == 0 {
		payload = emptyEvent
	} else if !json.Valid(payload) {
		return apierr.InvalidRequestContent("Could not parse request body into json: Could not parse payload into json: Unexpected character: was expecting a JSON value")
	}
	if dryRun {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if event {
		if err := a.enqueue(r.Context(), id, name, qualifier, h.Get("X-Amzn-Trace-Id"), payload); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	err = a.invoke.Invoke(r.Context(), invoke.Request{Function: name, Qualifier: qualifier, Resolved: entry,
		RequestID: id, Payload: payload, InvokedARN: a.account.FunctionARN(name, qualifier), ClientContext: clientContext,
		TraceID: h.Get("X-Amzn-Trace-Id"), Tail: tail}, func(resp invoke.Response) { writeInvokeResponse(w, resp) })
	if err == nil {
		return nil
	}
	var th *invoke.Throttled // declared only on the error path: errors.As moves it to the heap
	switch {
	case errors.As(err, &th):
		return throttled(th.Reason, err)
	case errors.Is(err, invoke.ErrNotFound):
		return a.invokeNotFound(name, qualifier)
	}
	return err
}

// throttled is Lambda's throttle for an invocation not admitted; one refused because this node
// lost the cluster's quorum (it cannot lease concurrency) says so.
func throttled(reason string, err error) *apierr.Error {
	e := apierr.TooManyRequests(reason, 1).Wrap(err)
	if errors.Is(err, cluster.ErrNoQuorum) {
		e.Message += " This Flint node has lost the cluster's quorum, so it cannot lease concurrency for new invocations; invoke through another node."
	}
	return e
}

// writeInvokeResponse writes an invocation's result as the Invoke API's response.
// invokeNotFound is Invoke's 404: AWS names the version an unqualified invoke runs.
func (a *API) invokeNotFound(name, qualifier string) error {
	if qualifier == "" {
		qualifier = lambda.LatestVersion
	}
	return a.notFound(name, qualifier)
}

func writeInvokeResponse(w http.ResponseWriter, resp invoke.Response) {
	wh := w.Header()
	ct := resp.ContentType
	if ct == "" {
		wh["Content-Type"] = hdrJSON
	} else {
		wh["Content-Type"] = []string{ct}
	}
	if v := resp.ExecutedVersion; v == lambda.LatestVersion {
		wh["X-Amz-Executed-Version"] = hdrExecutedVersion
	} else {
		wh["X-Amz-Executed-Version"] = []string{v}
	}
	if resp.FunctionError != "" {
		wh["X-Amz-Function-Error"] = hdrUnhandled
	}
	if resp.LogResult != "" {
		wh["X-Amz-Log-Result"] = []string{resp.LogResult}
	}
	wh["Content-Length"] = []string{strconv.Itoa(len(resp.Payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Payload)
	if f, ok := w.(http.Flusher); ok {
		f.Flush() // the caller has its answer; log bookkeeping follows
	}
}

var errPayloadTooLarge = errors.New("payload too large")

// readPayload reads the whole body into buf, refusing more than Lambda's sync limit.
func readPayload(body io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > lambda.MaxSyncPayload {
			return buf, errPayloadTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
