package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/functionurl"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
)

// Function URLs answer on http(s)://<url-id>.lambda-url.<region>.localhost:<port>/ (curl and
// browsers resolve *.localhost to loopback) and, with no DNS at all, on
// http://<host>:<port>/lambda-url/<url-id>/.
const urlPathPrefix = "/lambda-url/"

// urlFor renders a URL's address as a client of this request reaches Flint.
func (a *API) urlFor(r *http.Request, id string) string {
	port := ""
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = ":" + p
	}
	return scheme(r) + id + ".lambda-url." + a.account.Region + ".localhost" + port + "/"
}

// urlConfig is a URL's configuration as the API shows it, with its address.
func (a *API) urlConfig(r *http.Request, u *lambda.FunctionURL) lambda.FunctionURLConfig {
	c := u.Config
	c.FunctionUrl = a.urlFor(r, u.ID)
	return c
}

func (a *API) createFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.URLInput
	if err := decodeBody(r, 1<<16, "CreateFunctionUrlConfig", &in); err != nil {
		return err
	}
	u, err := a.ctl.URLs.Create(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	out := a.urlConfig(r, u)
	out.LastModifiedTime = "" // CreateFunctionUrlConfig's answer has none
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	u, err := a.ctl.URLs.Get(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.urlConfig(r, u))
}

func (a *API) updateFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	var in control.URLInput
	if err := decodeBody(r, 1<<16, "UpdateFunctionUrlConfig", &in); err != nil {
		return err
	}
	u, err := a.ctl.URLs.Update(r.Context(), a.target(r), in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.urlConfig(r, u))
}

func (a *API) deleteFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	if err := a.ctl.URLs.Delete(r.Context(), a.target(r)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listFunctionURLs(w http.ResponseWriter, r *http.Request, _ string) error {
	all, err := a.ctl.URLs.List(r.Context(), a.target(r))
	if err != nil {
		return err
	}
	out := struct {
		FunctionUrlConfigs []lambda.FunctionURLConfig `json:"FunctionUrlConfigs"`
	}{FunctionUrlConfigs: []lambda.FunctionURLConfig{}}
	for _, u := range all {
		out.FunctionUrlConfigs = append(out.FunctionUrlConfigs, a.urlConfig(r, u))
	}
	return writeJSON(w, http.StatusOK, out)
}

// urlID recognises a function URL request: by host (<id>.lambda-url.…) or by path
// (/lambda-url/<id>/…). It returns the id and the path the function sees.
func urlID(r *http.Request) (id, path string, ok bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if label, rest, found := strings.Cut(host, "."); found && strings.HasPrefix(rest, "lambda-url.") && len(label) == 32 {
		return label, r.URL.Path, true
	}
	if rest, found := strings.CutPrefix(r.URL.Path, urlPathPrefix); found {
		id, path, _ := strings.Cut(rest, "/")
		return id, "/" + path, len(id) == 32
	}
	return "", "", false
}

func urlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"Message":"` + msg + `"}`))
}

// serveFunctionURL invokes a function for an HTTP request to its URL.
func (a *API) serveFunctionURL(w http.ResponseWriter, r *http.Request, id, path string) {
	reqID := uuid.NewString()
	w.Header().Set("X-Amzn-Requestid", reqID)
	u, err := a.invoke.LookupURL(r.Context(), id)
	if err != nil {
		if !errors.Is(err, invoke.ErrNotFound) {
			a.log.Error("function url lookup", "id", id, "err", err)
		}
		urlError(w, http.StatusForbidden, "Forbidden")
		return
	}
	cors := u.Config.Cors
	if cors != nil && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		applyCors(w, r, cors, true)
		w.WriteHeader(http.StatusOK)
		return
	}
	call := urlCall{fn: u, id: id, path: path, reqID: reqID}
	switch {
	case u.Config.AuthType == "NONE":
		// Whether anyone may call is known before the body: an unopened URL reads nothing.
		if !a.invoke.PublicURL(r.Context(), u.Function, u.Qualifier) {
			urlError(w, http.StatusForbidden, "Forbidden")
			return
		}
	case a.auth != nil && !a.devMode():
		// The signature is checked as the API's are: what the headers allow before any of
		// the body is read, and unauthenticated bodies held within the same bounds.
		a.signedURL.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), urlCallKey{}, &call)))
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") && r.URL.Query().Get("X-Amz-Signature") == "":
		// Local-development mode verifies nothing, but AWS_IAM never serves an anonymous caller.
		urlError(w, http.StatusForbidden, "Forbidden")
		return
	}
	a.invokeURL(w, r, &call)
}

// urlCall is a function URL request whose URL is known, on its way to the function.
type urlCall struct {
	fn              *lambda.FunctionURL
	id, path, reqID string
}

type urlCallKey struct{}

// serveSignedURL goes on with an AWS_IAM URL request once the middleware has authenticated it.
func (a *API) serveSignedURL(w http.ResponseWriter, r *http.Request) {
	a.invokeURL(w, r, r.Context().Value(urlCallKey{}).(*urlCall))
}

// urlRefusal renders the sigv4 middleware's refusals as function URLs word theirs.
func urlRefusal(w http.ResponseWriter, e *apierr.Error) {
	switch e.Status {
	case http.StatusRequestEntityTooLarge:
		urlError(w, e.Status, "Request Entity Too Large")
	case http.StatusTooManyRequests:
		if e.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
		}
		urlError(w, e.Status, "Rate Exceeded.")
	case http.StatusBadRequest:
		urlError(w, e.Status, "Bad Request")
	default:
		urlError(w, http.StatusForbidden, "Forbidden")
	}
}

// invokeURL reads the body of a caller let in and runs the function.
func (a *API) invokeURL(w http.ResponseWriter, r *http.Request, call *urlCall) {
	u, id, path, reqID := call.fn, call.id, call.path, call.reqID
	cors := u.Config.Cors
	body, err := readPayload(r.Body, make([]byte, 0, 512))
	if err != nil {
		urlError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	domain := id + ".lambda-url." + a.account.Region + ".localhost"
	event, err := functionurl.NewURLRequest(r, path, id, domain, a.account.ID, reqID, body, time.Now())
	if err != nil {
		urlError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	err = a.invoke.Invoke(r.Context(), invoke.Request{Function: u.Function, Qualifier: u.Qualifier, RequestID: reqID, Payload: event,
		InvokedARN: a.account.FunctionARN(u.Function, u.Qualifier)}, func(resp invoke.Response) { writeURLResponse(w, r, cors, resp) })
	if err == nil {
		return
	}
	var th *invoke.Throttled // declared only on the error path: errors.As moves it to the heap
	switch {
	case errors.Is(err, invoke.ErrNotFound):
		urlError(w, http.StatusForbidden, "Forbidden")
	case errors.As(err, &th):
		urlError(w, http.StatusTooManyRequests, "Rate Exceeded.")
	default:
		a.log.Error("function url invoke", "function", u.Function, "err", err)
		urlError(w, http.StatusInternalServerError, "Internal Server Error")
	}
}

// writeURLResponse writes an invocation's result by Lambda's function URL response rules.
func writeURLResponse(w http.ResponseWriter, r *http.Request, cors *lambda.Cors, resp invoke.Response) {
	if resp.FunctionError != "" {
		urlError(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	out := functionurl.ParseURLResponse(resp.Payload)
	h := w.Header()
	for k, vs := range out.Headers {
		h[k] = vs
	}
	if cors != nil {
		applyCors(w, r, cors, false)
	}
	h.Set("Content-Length", strconv.Itoa(len(out.Body)))
	w.WriteHeader(out.Status)
	_, _ = w.Write(out.Body)
}

// applyCors adds the CORS headers for an allowed origin (and, for preflights, methods, headers
// and max age).
func applyCors(w http.ResponseWriter, r *http.Request, c *lambda.Cors, preflight bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	allowed := ""
	for _, o := range c.AllowOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			allowed = o
			if o == "*" && c.AllowCredentials != nil && *c.AllowCredentials {
				allowed = origin
			}
			break
		}
	}
	if allowed == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", allowed)
	if c.AllowCredentials != nil && *c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
	if preflight {
		if len(c.AllowMethods) > 0 {
			h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		}
		if len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		}
		if c.MaxAge != nil {
			h.Set("Access-Control-Max-Age", strconv.Itoa(*c.MaxAge))
		}
	}
	if !slices.Contains(h.Values("Vary"), "Origin") {
		h.Add("Vary", "Origin")
	}
}

// scheme is how the client reached this server: addresses Flint hands out use the same.
func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https://"
	}
	return "http://"
}
