package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/apigw"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
)

// API Gateway APIs answer on http(s)://{apiId}.execute-api.{region}.localhost:{port}/{stage}/…
// and, with no DNS at all, on http://{host}:{port}/execute-api/{apiId}/{stage}/… (an HTTP API's
// $default stage has no stage segment). They are public, as API Gateway routes without an
// authorizer are; /flint/v1/apis manages them (signed like every Flint API).
const apiPathPrefix = "/execute-api/"

// apiMaxBody is API Gateway's payload limit: a larger request is refused before it is read.
const apiMaxBody = 10 << 20

// storedAPI is an API as the management API shows it: the stored document and its address.
type storedAPI struct {
	*apigw.API
	Endpoint string `json:"endpoint"`
}

func (a *API) storedAPI(r *http.Request, api *apigw.API) storedAPI {
	port := ""
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = ":" + p
	}
	ep := scheme(r) + api.APIID + ".execute-api." + a.account.Region + ".localhost" + port + "/"
	if api.Stage != apigw.DefaultStage {
		ep += api.Stage + "/"
	}
	return storedAPI{API: api, Endpoint: ep}
}

// handleAPIs is handle for the management API of APIs, whose errors carry their code in
// __type (as API Gateway's JSON answers do) and a lowercase message.
func (a *API) handleAPIs(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		w.Header()["X-Amzn-Requestid"] = []string{id}
		err := h(w, r, id)
		if err == nil {
			return
		}
		e := apierr.As(control.AWSError(err))
		if e.Status >= 500 {
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		} else if a.log.Enabled(r.Context(), slog.LevelDebug) {
			a.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "code", e.Code, "message", e.Message)
		}
		b, _ := json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{e.Code, e.Message})
		w.Header().Set("X-Amzn-ErrorType", e.Code)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(e.Status)
		_, _ = w.Write(b)
	}
}

func (a *API) putAPI(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.APIInput
	if err := decodeBody(r, 1<<20, "PutApi", &in); err != nil {
		return err
	}
	api, err := a.ctl.APIs.Put(r.Context(), r.PathValue("name"), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.storedAPI(r, api))
}

func (a *API) getAPI(w http.ResponseWriter, r *http.Request, _ string) error {
	api, err := a.ctl.APIs.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.storedAPI(r, api))
}

func (a *API) listAPIs(w http.ResponseWriter, r *http.Request, _ string) error {
	all, err := a.ctl.APIs.List(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		APIs []storedAPI `json:"apis"`
	}{APIs: []storedAPI{}}
	for _, api := range all {
		out.APIs = append(out.APIs, a.storedAPI(r, api))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteAPI(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.APIs.Delete(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiTarget recognises a request to an API: by host ({apiId}.execute-api.…) or by path
// (/execute-api/{apiId}/…). It returns the apiId and the path after it, escaped and decoded.
func apiTarget(r *http.Request) (id, rawPath, path string, ok bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if label, rest, found := strings.Cut(host, "."); found && strings.HasPrefix(rest, "execute-api.") && len(label) == 10 {
		return label, r.URL.EscapedPath(), r.URL.Path, true
	}
	rest, found := strings.CutPrefix(r.URL.Path, apiPathPrefix)
	if !found {
		return "", "", "", false
	}
	id, _, _ = strings.Cut(rest, "/")
	if len(id) != 10 {
		return "", "", "", false
	}
	prefix := apiPathPrefix + id
	path = strings.TrimPrefix(r.URL.Path, prefix)
	rawPath = strings.TrimPrefix(r.URL.EscapedPath(), prefix)
	if path == "" {
		path, rawPath = "/", "/"
	}
	return id, rawPath, path, true
}

// apiError writes API Gateway's answer of its own: {"message": …}.
func apiError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// The answers API Gateway words itself, per protocol.
func apiNoRoute(w http.ResponseWriter, rest bool) {
	if rest {
		apiError(w, http.StatusForbidden, "Missing Authentication Token")
		return
	}
	apiError(w, http.StatusNotFound, "Not Found")
}

// apiIntegrationFailed is a function that could not be invoked (gone, or over its limits): as
// Lambda's guide words it, API Gateway answers 500 when Lambda rejects the invocation.
func apiIntegrationFailed(w http.ResponseWriter) {
	apiError(w, http.StatusInternalServerError, "Internal server error")
}

// apiBadGateway is a function that failed or answered what its payload format cannot read.
func apiBadGateway(w http.ResponseWriter) {
	apiError(w, http.StatusBadGateway, "Internal server error")
}

// serveAPI invokes a route's function for an HTTP request to an API.
func (a *API) serveAPI(w http.ResponseWriter, r *http.Request, id, rawPath, path string) {
	rt, found := a.invoke.LookupAPI(id)
	if !found {
		// No such API: API Gateway's execute-api host answers as for an unknown route.
		apiError(w, http.StatusForbidden, "Forbidden")
		return
	}
	api := rt.API
	rest := api.Protocol == apigw.ProtocolREST
	reqID := uuid.NewString()
	if rest {
		w.Header().Set("X-Amzn-Requestid", reqID)
	} else {
		w.Header().Set("Apigw-Requestid", reqID)
	}
	routePath := path
	if api.Stage != apigw.DefaultStage {
		stage, tail, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
		if stage != api.Stage {
			if rest {
				apiError(w, http.StatusForbidden, "Forbidden")
			} else {
				apiError(w, http.StatusNotFound, "Not Found")
			}
			return
		}
		routePath = "/" + tail
	}
	m, ok := rt.Match(r.Method, routePath)
	if !ok {
		apiNoRoute(w, rest)
		return
	}
	// API Gateway's payload limit, known before the body when the client declares its length.
	if r.ContentLength > apiMaxBody {
		apiError(w, http.StatusRequestEntityTooLarge, "Request Too Long")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, apiMaxBody+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > apiMaxBody {
		apiError(w, http.StatusRequestEntityTooLarge, "Request Too Long")
		return
	}
	call := apigw.Call{Request: r, API: api, Match: m, RawPath: rawPath, Path: path, RoutePath: routePath,
		Domain: id + ".execute-api." + a.account.Region + ".localhost", AccountID: a.account.ID, RequestID: reqID,
		Body: body, Now: time.Now()}
	v1 := m.Route.PayloadFormatVersion == "1.0"
	var event []byte
	if v1 {
		event, err = apigw.NewV1Request(call)
	} else {
		event, err = apigw.NewV2Request(call)
	}
	if err != nil || len(event) > lambda.MaxSyncPayload {
		// Lambda refuses an event over its synchronous limit: the integration fails.
		apiIntegrationFailed(w)
		return
	}
	// The integration's timeout answers the caller while the function runs on (its own timeout
	// stops it): the first of the timer and the invocation writes, under mu, the other nothing.
	var (
		mu       sync.Mutex
		answered bool
	)
	answer := func(write func()) {
		mu.Lock()
		defer mu.Unlock()
		if !answered {
			answered = true
			write()
		}
	}
	timeout := m.Route.TimeoutInMillis
	if timeout == 0 {
		timeout = apigw.MaxTimeout(api.Protocol)
	}
	timer := time.AfterFunc(time.Duration(timeout)*time.Millisecond, func() {
		answer(func() {
			w.Header().Set("Connection", "close") // the connection stays busy until the function ends
			if rest {
				apiError(w, http.StatusGatewayTimeout, "Endpoint request timed out")
			} else {
				apiError(w, http.StatusServiceUnavailable, "Service Unavailable")
			}
			_ = http.NewResponseController(w).Flush()
		})
	})
	defer timer.Stop()
	fn, q := m.Route.Function, m.Route.Qualifier
	err = a.invoke.Invoke(r.Context(), invoke.Request{Function: fn, Qualifier: q, RequestID: reqID, Payload: event,
		InvokedARN: a.account.FunctionARN(fn, q)}, func(resp invoke.Response) { answer(func() { writeAPIResponse(w, v1, resp) }) })
	if err == nil {
		return
	}
	answer(func() {
		var th *invoke.Throttled
		switch {
		case errors.As(err, &th) && !rest:
			apiError(w, http.StatusTooManyRequests, "Too Many Requests")
		case errors.Is(err, invoke.ErrNotFound), errors.As(err, &th):
			apiIntegrationFailed(w)
		default:
			a.log.Error("api invoke", "api", api.Name, "function", fn, "err", err)
			apiIntegrationFailed(w)
		}
	})
}

// writeAPIResponse writes an invocation's result by its payload format's rules.
func writeAPIResponse(w http.ResponseWriter, v1 bool, resp invoke.Response) {
	if resp.FunctionError != "" {
		apiBadGateway(w)
		return
	}
	var out apigw.Response
	if v1 {
		var err error
		if out, err = apigw.ParseV1Response(resp.Payload); err != nil {
			apiBadGateway(w)
			return
		}
	} else {
		out = apigw.ParseV2Response(resp.Payload)
	}
	h := w.Header()
	for k, vs := range out.Headers {
		h[k] = vs
	}
	h.Set("Content-Length", strconv.Itoa(len(out.Body)))
	w.WriteHeader(out.Status)
	_, _ = w.Write(out.Body)
}
