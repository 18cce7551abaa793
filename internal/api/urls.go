package api

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/events"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/store"
)

// Function URLs answer on http(s)://<url-id>.lambda-url.<region>.localhost:<port>/ (curl and
// browsers resolve *.localhost to loopback) and, with no DNS at all, on
// http://<host>:<port>/lambda-url/<url-id>/.
const urlPathPrefix = "/lambda-url/"

type urlInput struct {
	AuthType   *string      `json:"AuthType"`
	Cors       *lambda.Cors `json:"Cors"`
	InvokeMode *string      `json:"InvokeMode"`
}

func newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// urlFor renders a URL's address as a client of this request reaches Flint.
func (a *API) urlFor(r *http.Request, id string) string {
	port := ""
	if _, p, err := net.SplitHostPort(r.Host); err == nil {
		port = ":" + p
	}
	return scheme(r) + id + ".lambda-url." + a.account.Region + ".localhost" + port + "/"
}

// urlTarget resolves the function and the Qualifier of a function URL call: $LATEST or an alias.
func (a *API) urlTarget(r *http.Request) (store.Function, string, error) {
	f, err := a.latest(r)
	if err != nil {
		return f, "", err
	}
	q := r.URL.Query().Get("Qualifier")
	if q == lambda.LatestVersion {
		q = ""
	}
	if q != "" {
		if isNumber(q) {
			return f, "", apierr.InvalidParameterValue("Function URLs can point to an alias or $LATEST, not to a version: %s", q)
		}
		if _, err := a.store.Aliases().Get(r.Context(), f.Config.FunctionName, q); errors.Is(err, store.ErrNotFound) {
			return f, "", a.aliasNotFound(f.Config.FunctionName, q)
		} else if err != nil {
			return f, "", err
		}
	}
	return f, q, nil
}

func (a *API) findURL(r *http.Request, name, qualifier string) (*lambda.FunctionURL, error) {
	all, err := a.store.URLs().List(r.Context(), name)
	if err != nil {
		return nil, err
	}
	for _, u := range all {
		if u.Qualifier == qualifier {
			return u, nil
		}
	}
	return nil, apierr.ResourceNotFound("The resource you requested does not exist.")
}

func validateURLInput(in *urlInput, create bool) error {
	if in.AuthType == nil {
		if create {
			return apierr.Validation("1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null")
		}
	} else if *in.AuthType != "NONE" && *in.AuthType != "AWS_IAM" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'authType' failed to satisfy constraint: Member must satisfy enum value set: [AWS_IAM, NONE]", *in.AuthType)
	}
	if in.InvokeMode != nil && *in.InvokeMode != "BUFFERED" && *in.InvokeMode != "RESPONSE_STREAM" {
		return apierr.Validation("1 validation error detected: Value '%s' at 'invokeMode' failed to satisfy constraint: Member must satisfy enum value set: [BUFFERED, RESPONSE_STREAM]", *in.InvokeMode)
	}
	if c := in.Cors; c != nil {
		if c.MaxAge != nil && (*c.MaxAge < 0 || *c.MaxAge > 86400) {
			return apierr.Validation("1 validation error detected: Value '%d' at 'cors.maxAge' failed to satisfy constraint: Member must have value between 0 and 86400", *c.MaxAge)
		}
		if len(c.AllowMethods) > 6 || len(c.AllowOrigins) > 100 || len(c.AllowHeaders) > 100 {
			return apierr.Validation("1 validation error detected: cors lists exceed their limits (AllowMethods 6, AllowOrigins 100, AllowHeaders 100)")
		}
	}
	return nil
}

func (a *API) createFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	var in urlInput
	if err := decodeBody(r, 1<<16, "CreateFunctionUrlConfig", &in); err != nil {
		return err
	}
	if err := validateURLInput(&in, true); err != nil {
		return err
	}
	f, q, err := a.urlTarget(r)
	if err != nil {
		return err
	}
	name := f.Config.FunctionName
	arn := a.account.FunctionARN(name, q)
	if _, err := a.findURL(r, name, q); err == nil {
		return apierr.ResourceConflict("Failed to create function url config for [functionArn = %s]. Error message:  FunctionUrlConfig exists for this Lambda function", arn)
	}
	now := lambda.FormatTime(time.Now())
	u := &lambda.FunctionURL{ID: newURLID(), Function: name, Qualifier: q, Config: lambda.FunctionURLConfig{
		FunctionArn: arn, AuthType: *in.AuthType, Cors: in.Cors, CreationTime: now, LastModifiedTime: now, InvokeMode: "BUFFERED"}}
	if in.InvokeMode != nil {
		u.Config.InvokeMode = *in.InvokeMode
	}
	rev, err := a.store.URLs().Create(r.Context(), u)
	if err != nil {
		return err
	}
	a.await(r, invoke.URLs, rev)
	out := u.Config
	out.FunctionUrl, out.LastModifiedTime = a.urlFor(r, u.ID), ""
	return writeJSON(w, http.StatusCreated, out)
}

func (a *API) getFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	f, q, err := a.urlTarget(r)
	if err != nil {
		return err
	}
	u, err := a.findURL(r, f.Config.FunctionName, q)
	if err != nil {
		return err
	}
	out := u.Config
	out.FunctionUrl = a.urlFor(r, u.ID)
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) updateFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	var in urlInput
	if err := decodeBody(r, 1<<16, "UpdateFunctionUrlConfig", &in); err != nil {
		return err
	}
	if err := validateURLInput(&in, false); err != nil {
		return err
	}
	f, q, err := a.urlTarget(r)
	if err != nil {
		return err
	}
	u, err := a.findURL(r, f.Config.FunctionName, q)
	if err != nil {
		return err
	}
	set(&u.Config.AuthType, in.AuthType)
	set(&u.Config.InvokeMode, in.InvokeMode)
	if in.Cors != nil {
		u.Config.Cors = in.Cors
	}
	u.Config.LastModifiedTime = lambda.FormatTime(time.Now())
	rev, err := a.store.URLs().Update(r.Context(), u)
	if err != nil {
		return err
	}
	a.await(r, invoke.URLs, rev)
	out := u.Config
	out.FunctionUrl = a.urlFor(r, u.ID)
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) deleteFunctionURL(w http.ResponseWriter, r *http.Request, _ string) error {
	f, q, err := a.urlTarget(r)
	if err != nil {
		return err
	}
	u, err := a.findURL(r, f.Config.FunctionName, q)
	if err != nil {
		return err
	}
	rev, err := a.store.URLs().Delete(r.Context(), u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		a.await(r, invoke.URLs, rev)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) listFunctionURLs(w http.ResponseWriter, r *http.Request, _ string) error {
	f, err := a.latest(r)
	if err != nil {
		return err
	}
	all, err := a.store.URLs().List(r.Context(), f.Config.FunctionName)
	if err != nil {
		return err
	}
	out := struct {
		FunctionUrlConfigs []lambda.FunctionURLConfig `json:"FunctionUrlConfigs"`
	}{FunctionUrlConfigs: []lambda.FunctionURLConfig{}}
	for _, u := range all {
		c := u.Config
		c.FunctionUrl = a.urlFor(r, u.ID)
		out.FunctionUrlConfigs = append(out.FunctionUrlConfigs, c)
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
	event, err := events.NewURLRequest(r, path, id, domain, a.account.ID, reqID, body, time.Now())
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
	out := events.ParseURLResponse(resp.Payload)
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
