package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/cwlogs"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/logs"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Keys finds an access key's secret (sigv4.Keys).
type Keys interface {
	Lookup(id string) (secret string, ok bool)
}

// Environments counts this node's environments by state.
type Environments struct {
	Starting    int `json:"starting"`
	Idle        int `json:"idle"`
	Busy        int `json:"busy"`
	Frozen      int `json:"frozen"`
	Provisioned int `json:"provisioned"`
	Spares      int `json:"spares"`
}

// MappingLag is how far an event source mapping is behind its source.
type MappingLag struct {
	Behind    uint64        // records not yet finished
	OldestAge time.Duration // of the oldest of them
}

// Config wires a Console.
type Config struct {
	Control *control.Plane
	Invoke  *invoke.Service
	Logs    *logs.Store
	Queue   *asyncq.Queue // nil: no async queue to show
	// Secrets answers Secrets Manager calls (secrets.Service); the console sends it ListSecrets
	// only, and keeps only names and dates from the answer. nil: none.
	Secrets http.Handler
	Stats   *Stats
	Account lambda.Account
	// Keys are the access keys a browser signs in with; DevMode, when it returns true, opens
	// the console without a session (no access keys, loopback only), as the API does.
	Keys    Keys
	DevMode func() bool
	// TLS: the server serves HTTPS, so the session cookie is Secure.
	TLS          bool
	Environments func() Environments // nil: not shown
	// FunctionEnvironments counts one function's environments on this node (all its versions;
	// Spares stays 0). nil: not shown.
	FunctionEnvironments func(function string) Environments
	// MappingLag reports each event source mapping's lag by UUID. nil: not shown.
	MappingLag func(ctx context.Context) map[string]MappingLag
	Log        *slog.Logger
	Now        func() time.Time // nil: time.Now
}

// Console is the web console's HTTP handler, for everything under Prefix.
type Console struct {
	cfg      Config
	mux      *http.ServeMux
	sessions sessions
	limiter  signInLimiter // failed sign-ins per client address
	static   http.Handler
	signin   *template.Template
}

// New builds the console.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DevMode == nil {
		cfg.DevMode = func() bool { return false }
	}
	sub, _ := fs.Sub(assets, "assets") // the directory is embedded: never fails
	c := &Console{cfg: cfg, mux: http.NewServeMux(),
		static: http.StripPrefix(Prefix+"assets/", http.FileServerFS(sub)),
		signin: template.Must(template.ParseFS(assets, "assets/signin.html"))}
	m := c.mux
	m.HandleFunc("GET /console/{$}", c.page)
	m.HandleFunc("GET /console/assets/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") { // files only, no listings
			http.NotFound(w, r)
			return
		}
		c.static.ServeHTTP(w, r)
	})
	m.HandleFunc("GET /console/api/session", c.sessionInfo)
	m.HandleFunc("GET /console/api/functions", c.listFunctions)
	m.HandleFunc("GET /console/api/functions/{name}", c.getFunction)
	m.HandleFunc("POST /console/api/functions/{name}/invoke", c.invokeFunction)
	m.HandleFunc("GET /console/api/functions/{name}/logs", c.followLogs)
	m.HandleFunc("GET /console/api/resources", c.resources)
	m.HandleFunc("POST /console/signout", c.signOut)
	return c
}

// ServeHTTP serves one console request: the sign-in page and form without a session, the rest
// only to a signed-in browser (or to anyone on loopback in local-development mode).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	if r.URL.Path == "/console" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	dev := c.cfg.DevMode()
	if dev && !loopbackHost(r) {
		http.Error(w, "the console answers only loopback host names in local-development mode", http.StatusForbidden)
		return
	}
	if r.URL.Path == Prefix+"signin" {
		c.signIn(w, r, dev)
		return
	}
	var sess session
	if !dev {
		var ok bool
		if sess, ok = c.session(r); !ok {
			c.refuse(w, r)
			return
		}
	}
	if r.Method == http.MethodPost && (!sameOrigin(r) || (!dev && !equalSecret(r.Header.Get("X-Flint-Csrf"), sess.csrf))) {
		writeJSON(w, http.StatusForbidden, errorBody{"cross-site request refused: the console's own pages send Origin and its CSRF token"})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess))
	c.mux.ServeHTTP(w, r)
}

type sessionKey struct{}

// session returns r's session, when its cookie names a live one whose key still exists.
func (c *Console) session(r *http.Request) (session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return session{}, false
	}
	sess, ok := c.sessions.get(ck.Value, c.cfg.Now())
	if !ok {
		return session{}, false
	}
	if c.cfg.Keys == nil {
		return session{}, false
	}
	if _, ok := c.cfg.Keys.Lookup(sess.keyID); !ok {
		c.sessions.delete(ck.Value)
		return session{}, false
	}
	return sess, true
}

// refuse answers a request without a session: a page request is sent to sign in, the rest get
// 401 and nothing of the console.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == Prefix {
		http.Redirect(w, r, Prefix+"signin", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusUnauthorized, errorBody{"sign in to the console first (" + Prefix + "signin)"})
}

// signIn shows the sign-in form (GET) or checks an access key against the key file (POST).
func (c *Console) signIn(w http.ResponseWriter, r *http.Request, dev bool) {
	switch r.Method {
	case http.MethodGet:
		if dev {
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
			return
		}
		c.renderSignIn(w, http.StatusOK, "")
	case http.MethodPost:
		if !sameOrigin(r) {
			c.renderSignIn(w, http.StatusForbidden, "Cross-site sign-in refused.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxSignInBody)
		if err := r.ParseForm(); err != nil {
			if c.limited(w, r) {
				return
			}
			c.renderSignIn(w, http.StatusBadRequest, "The sign-in form could not be read.")
			return
		}
		id, secret := strings.TrimSpace(r.PostForm.Get("access_key_id")), r.PostForm.Get("secret_access_key")
		want, ok := "", false
		if c.cfg.Keys != nil && id != "" {
			want, ok = c.cfg.Keys.Lookup(id)
		}
		// Compare even for an unknown key, so the answer's timing does not say which keys exist.
		if match := equalSecret(secret, want); !ok || !match || secret == "" {
			if c.limited(w, r) {
				return
			}
			c.cfg.Log.Info("console sign-in refused", "access_key_id", id, "remote", r.RemoteAddr)
			c.renderSignIn(w, http.StatusUnauthorized, "Unknown access key ID or wrong secret access key.")
			return
		}
		sid, sess := c.sessions.create(id, c.cfg.Now())
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: sid, Path: Prefix, Expires: sess.expires,
			MaxAge: int(sessionTTL / time.Second), HttpOnly: true, Secure: c.cfg.TLS, SameSite: http.SameSiteStrictMode})
		c.cfg.Log.Info("console sign-in", "access_key_id", id, "remote", r.RemoteAddr)
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// limited counts a failed sign-in against its client's address and, when the address is past
// its limit, answers 429 (not logged one by one) and reports true. Only failures count: as with
// the API's signatures, a right secret is always accepted, so no one behind the same proxy or
// NAT as a failing client is locked out by it (the secrets are keys' 240 random bits: what the
// limit buys is quiet logs and a back-off signal, not protection from guessing).
func (c *Console) limited(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := c.limiter.take(clientKey(r.RemoteAddr), c.cfg.Now())
	if ok {
		return false
	}
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	c.renderSignIn(w, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from your address. Try again in %d seconds.", secs))
	return true
}

func (c *Console) renderSignIn(w http.ResponseWriter, status int, msg string) {
	// The sign-in page is whole in itself (no script, its style inline): nothing else of the
	// console is served before sign-in.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = c.signin.Execute(w, struct{ Error string }{msg})
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(cookieName); err == nil {
		c.sessions.delete(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: c.cfg.TLS, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, struct {
		SignedOut bool `json:"signedOut"`
	}{true})
}

// page serves the console's one HTML page; the script draws each view from the JSON API.
func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, assets, "assets/index.html")
}

func (c *Console) sessionInfo(w http.ResponseWriter, r *http.Request) {
	sess, _ := r.Context().Value(sessionKey{}).(session)
	writeJSON(w, http.StatusOK, struct {
		DevMode bool   `json:"devMode"`
		KeyID   string `json:"accessKeyId,omitempty"`
		CSRF    string `json:"csrf,omitempty"`
		Region  string `json:"region"`
	}{c.cfg.DevMode(), sess.keyID, sess.csrf, c.cfg.Account.Region})
}

// Paging bounds for the functions list.
const (
	defaultPage = 50
	maxPage     = 200
)

// FunctionRow is one line of the functions list.
type FunctionRow struct {
	Name         string  `json:"name"`
	Runtime      string  `json:"runtime"`
	MemorySize   int     `json:"memorySize"`
	LastModified string  `json:"lastModified"`
	Stats        Summary `json:"stats"`
}

// FunctionPage is one page of the functions list, each with its last hour's figures: one
// request per page, whatever the number of functions.
type FunctionPage struct {
	Functions    []FunctionRow `json:"functions"`
	NextMarker   string        `json:"nextMarker,omitempty"`
	Environments *Environments `json:"environments,omitempty"`
}

func (c *Console) listFunctions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			writeJSON(w, http.StatusBadRequest, errorBody{"limit must be an integer from 1 to " + strconv.Itoa(maxPage)})
			return
		}
		limit = n
	}
	list, err := c.cfg.Control.Functions.List(r.Context(), "", control.Page{MaxItems: limit, Marker: q.Get("marker")})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := FunctionPage{Functions: make([]FunctionRow, 0, len(list.Functions)), NextMarker: list.NextMarker}
	for _, f := range list.Functions {
		out.Functions = append(out.Functions, FunctionRow{Name: f.FunctionName, Runtime: f.Runtime, MemorySize: f.MemorySize,
			LastModified: f.LastModified, Stats: c.cfg.Stats.Summary(f.FunctionName)})
	}
	if c.cfg.Environments != nil {
		env := c.cfg.Environments()
		out.Environments = &env
	}
	writeJSON(w, http.StatusOK, out)
}

// FunctionDetail is the function page's data.
type FunctionDetail struct {
	Configuration       lambda.FunctionConfiguration   `json:"configuration"`
	ReservedConcurrency *int                           `json:"reservedConcurrency,omitempty"`
	Versions            []lambda.FunctionConfiguration `json:"versions"`
	Aliases             []lambda.Alias                 `json:"aliases"`
	Stats               Summary                        `json:"stats"`
	Series              []Point                        `json:"series"`
	Recent              []Invocation                   `json:"recent"`
	Async               *asyncq.FunctionStats          `json:"async,omitempty"`
	Environments        *Environments                  `json:"environments,omitempty"`
	// FunctionEnvironments are the function's own (Environments: the node's).
	FunctionEnvironments *Environments `json:"functionEnvironments,omitempty"`
}

// pageOf is the versions and aliases a function page lists.
const pageOf = 50

func (c *Console) getFunction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t := control.Target{Op: "GetFunction", Name: r.PathValue("name")}
	fn, err := c.cfg.Control.Functions.Get(ctx, t)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	name := fn.Config.FunctionName
	vs, err := c.cfg.Control.Versions.List(ctx, control.Target{Op: "ListVersionsByFunction", Name: name},
		func() (control.Page, error) { return control.Page{MaxItems: pageOf}, nil })
	if err != nil {
		c.fail(w, r, err)
		return
	}
	as, err := c.cfg.Control.Aliases.List(ctx, control.Target{Op: "ListAliases", Name: name}, "", control.Page{MaxItems: pageOf})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := FunctionDetail{Configuration: fn.Config, ReservedConcurrency: fn.ReservedConcurrency,
		Versions: vs.Versions, Aliases: as.Aliases, Stats: c.cfg.Stats.Summary(name), Series: c.cfg.Stats.Series(name),
		Recent: c.cfg.Stats.Recent(name)}
	if out.Aliases == nil {
		out.Aliases = []lambda.Alias{}
	}
	if c.cfg.Queue != nil {
		st, err := c.cfg.Queue.Stats(ctx)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := range st {
			if st[i].Function == name {
				out.Async = &st[i]
			}
		}
	}
	if c.cfg.Environments != nil {
		env := c.cfg.Environments()
		out.Environments = &env
	}
	if c.cfg.FunctionEnvironments != nil {
		env := c.cfg.FunctionEnvironments(name)
		out.FunctionEnvironments = &env
	}
	writeJSON(w, http.StatusOK, out)
}

// InvokeResult is what the Invoke button shows.
type InvokeResult struct {
	RequestID       string  `json:"requestId"`
	ExecutedVersion string  `json:"executedVersion,omitempty"`
	FunctionError   string  `json:"functionError,omitempty"`
	Payload         string  `json:"payload"`
	LogTail         string  `json:"logResult,omitempty"` // base64, as X-Amz-Log-Result
	DurationMs      float64 `json:"durationMs"`
}

// invokeFunction runs the function once through the invocation service, as Invoke does
// (RequestResponse, log tail), with the request body as the event.
func (c *Console) invokeFunction(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, qualifier, err := c.cfg.Control.Function(control.Target{Op: "Invoke", Name: r.PathValue("name"), Qualifier: r.URL.Query().Get("qualifier")})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lambda.MaxSyncPayload))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{"the event must be at most " + strconv.Itoa(lambda.MaxSyncPayload) + " bytes"})
		return
	}
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = []byte("{}")
	} else if !json.Valid(payload) {
		writeJSON(w, http.StatusBadRequest, errorBody{"the event is not valid JSON"})
		return
	}
	entry, err := c.cfg.Invoke.Lookup(ctx, name, qualifier)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	id := uuid.NewString()
	var out InvokeResult
	start := c.cfg.Now()
	err = c.cfg.Invoke.Invoke(ctx, invoke.Request{Function: name, Qualifier: qualifier, Resolved: entry, RequestID: id,
		Payload: payload, InvokedARN: c.cfg.Account.FunctionARN(name, qualifier), Tail: true},
		func(resp invoke.Response) {
			out = InvokeResult{RequestID: id, ExecutedVersion: resp.ExecutedVersion, FunctionError: resp.FunctionError,
				Payload: string(resp.Payload), LogTail: resp.LogResult}
		})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out.DurationMs = ms(c.cfg.Now().Sub(start))
	writeJSON(w, http.StatusOK, out)
}

// logHistory is how many stored records the live tail starts with.
const logHistory = 50

// followLogs streams the function's stored log records as server-sent events: the newest
// logHistory first, then each one as it is stored, until the browser goes away. Each event's
// data is a JSON object: the record's time and text, and the invocation's report when the
// record has one.
func (c *Console) followLogs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name, _, err := c.cfg.Control.Function(control.Target{Op: "GetFunction", Name: r.PathValue("name")})
	if err == nil {
		_, err = c.cfg.Control.Functions.Get(ctx, control.Target{Op: "GetFunction", Name: name})
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var pattern *cwlogs.Pattern
	if f := r.URL.Query().Get("filter"); f != "" {
		if pattern, err = cwlogs.ParsePattern(f); err != nil {
			c.fail(w, r, apierr.InvalidParameterValue("%s", err.Error()))
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	// The stream lasts as long as the page is open: no write deadline between events.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	var buf bytes.Buffer
	var clientErr error
	err = c.cfg.Logs.Follow(ctx, name, logHistory, func(rec logs.Record) error {
		if pattern != nil && !matches(pattern, string(rec.Text)) {
			return nil
		}
		ev := struct {
			Time   time.Time `json:"time"`
			Text   string    `json:"text"`
			Report *Report   `json:"report,omitempty"`
		}{Time: rec.Time, Text: string(rec.Text)}
		if rep, ok := logs.ParseReport(rec.Text); ok {
			ev.Report = &rep
		}
		buf.Reset()
		buf.WriteString("event: record\ndata: ")
		if err := json.NewEncoder(&buf).Encode(ev); err != nil { // ends with the line's \n
			return err
		}
		buf.WriteString("\n")
		if err := rc.SetWriteDeadline(time.Now().Add(30 * time.Second)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			clientErr = err
			return err
		}
		if _, clientErr = w.Write(buf.Bytes()); clientErr != nil {
			return clientErr
		}
		clientErr = rc.Flush()
		return clientErr
	})
	if err != nil && err != clientErr && ctx.Err() == nil {
		c.cfg.Log.Warn("console log tail", "function", name, "err", err)
	}
}

// Resources is the queues, mappings and secrets page's data.
type Resources struct {
	Async    []asyncq.FunctionStats `json:"async"`
	Mappings []MappingRow           `json:"mappings"`
	// MoreMappings: there are more mappings than the page shows.
	MoreMappings bool        `json:"moreMappings,omitempty"`
	Secrets      []SecretRow `json:"secrets"`
	MoreSecrets  bool        `json:"moreSecrets,omitempty"`
}

// MappingRow is one event source mapping.
type MappingRow struct {
	UUID           string `json:"uuid"`
	EventSourceArn string `json:"eventSourceArn"`
	FunctionArn    string `json:"functionArn"`
	State          string `json:"state"`
	StateReason    string `json:"stateReason,omitempty"`
	BatchSize      int    `json:"batchSize"`
	// Behind and OldestAgeMs: the mapping's lag, when this node reads it.
	Behind      *uint64  `json:"behind,omitempty"`
	OldestAgeMs *float64 `json:"oldestAgeMs,omitempty"`
}

// SecretRow is one secret, named, never with its value.
type SecretRow struct {
	Name            string  `json:"name"`
	ARN             string  `json:"arn"`
	Description     string  `json:"description,omitempty"`
	LastChangedDate float64 `json:"lastChangedDate,omitempty"`
}

// resourcesPage bounds the mappings and secrets the page lists.
const resourcesPage = 100

func (c *Console) resources(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := Resources{Async: []asyncq.FunctionStats{}, Mappings: []MappingRow{}, Secrets: []SecretRow{}}
	if c.cfg.Queue != nil {
		st, err := c.cfg.Queue.Stats(ctx)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		out.Async = append(out.Async, st...)
	}
	ms, err := c.cfg.Control.Mappings.List(ctx, control.MappingFilter{}, control.Page{MaxItems: resourcesPage})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var lag map[string]MappingLag
	if c.cfg.MappingLag != nil {
		lag = c.cfg.MappingLag(ctx)
	}
	for _, m := range ms.EventSourceMappings {
		row := MappingRow{UUID: m.UUID, EventSourceArn: m.EventSourceArn, FunctionArn: m.FunctionArn,
			State: m.State, StateReason: m.StateTransitionReason, BatchSize: m.BatchSize}
		if l, ok := lag[m.UUID]; ok {
			age := float64(l.OldestAge) / float64(time.Millisecond)
			row.Behind, row.OldestAgeMs = &l.Behind, &age
		}
		out.Mappings = append(out.Mappings, row)
	}
	out.MoreMappings = ms.NextMarker != ""
	if c.cfg.Secrets != nil {
		if out.Secrets, out.MoreSecrets, err = c.secretNames(ctx); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// secretNames asks the Secrets Manager service for ListSecrets in-process and keeps names,
// ARNs, descriptions and dates: ListSecrets returns no values, and these fields could not hold
// one anyway.
func (c *Console) secretNames(ctx context.Context) ([]SecretRow, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(`{"MaxResults":`+strconv.Itoa(resourcesPage)+`}`))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-Amz-Target", "secretsmanager.ListSecrets")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.cfg.Secrets.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		return nil, false, errors.New("list secrets: " + strconv.Itoa(rec.status) + " " + rec.body.String())
	}
	var out struct {
		SecretList []struct {
			Name            string  `json:"Name"`
			ARN             string  `json:"ARN"`
			Description     string  `json:"Description"`
			LastChangedDate float64 `json:"LastChangedDate"`
		} `json:"SecretList"`
		NextToken string `json:"NextToken"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &out); err != nil {
		return nil, false, errors.New("list secrets: " + err.Error())
	}
	rows := make([]SecretRow, 0, len(out.SecretList))
	for _, s := range out.SecretList {
		rows = append(rows, SecretRow{Name: s.Name, ARN: s.ARN, Description: s.Description, LastChangedDate: s.LastChangedDate})
	}
	return rows, out.NextToken != "", nil
}

// recorder is the http.ResponseWriter an in-process call writes to.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

type errorBody struct {
	Error string `json:"error"`
}

// fail renders err: the AWS error's status and message for the control plane's and the
// invocation service's errors, 500 with the cause logged for the rest.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apierr.Error
	var th *invoke.Throttled
	switch {
	case errors.As(err, &ae):
		writeJSON(w, ae.Status, errorBody{ae.Code + ": " + ae.Message})
	case errors.As(err, &th):
		writeJSON(w, http.StatusTooManyRequests, errorBody{"TooManyRequestsException: Rate Exceeded. (" + th.Reason + ")"})
	case errors.Is(err, invoke.ErrNotFound):
		writeJSON(w, http.StatusNotFound, errorBody{"ResourceNotFoundException: Function not found: " + r.PathValue("name")})
	default:
		if r.Context().Err() != nil {
			return
		}
		c.cfg.Log.Error("console request failed", "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{"internal error (see the server's log)"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// matches reports whether a record is one the log view's filter pattern keeps: the pattern
// matches the whole record (the invocation's lines together, for text patterns) or one of its
// lines (an event, as CloudWatch Logs filters them: JSON patterns).
func matches(p *cwlogs.Pattern, record string) bool {
	if p.Match(record) {
		return true
	}
	for line := range strings.Lines(record) {
		if p.Match(strings.TrimSuffix(line, "\n")) {
			return true
		}
	}
	return false
}
