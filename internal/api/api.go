// Package api serves the Lambda REST API (2015-03-31 and the dated paths beside it) over HTTP:
// routes, decoding requests into the control plane's inputs and encoding its answers in AWS's
// JSON shapes and error wire format, and the Invoke hot path's HTTP side. It holds no state and
// touches no store: every other operation is a call to a control-plane service (internal/control),
// and every invocation runs through invoke.Service.Invoke (api never reaches a worker pool).
//
// Every request but function URLs (which check their own AuthType), the web console (which has
// its own sign-in, internal/console), /metrics and the presigned code and layer download links
// must carry a valid SigV4 signature by a known access key, unless Config.DevMode says the server runs in local-development mode (no keys, loopback
// only), where signatures are not checked.
package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/flint-run/flint/internal/apierr"
	"github.com/flint-run/flint/internal/asyncq"
	"github.com/flint-run/flint/internal/cluster"
	"github.com/flint-run/flint/internal/control"
	"github.com/flint-run/flint/internal/crypt"
	"github.com/flint-run/flint/internal/cwlogs"
	"github.com/flint-run/flint/internal/esm"
	"github.com/flint-run/flint/internal/invoke"
	"github.com/flint-run/flint/internal/kinesis"
	"github.com/flint-run/flint/internal/lambda"
	"github.com/flint-run/flint/internal/logs"
	"github.com/flint-run/flint/internal/runtimes"
	"github.com/flint-run/flint/internal/secrets"
	"github.com/flint-run/flint/internal/sigv4"
	"github.com/flint-run/flint/internal/sns"
	"github.com/flint-run/flint/internal/sqs"
	"github.com/flint-run/flint/internal/telemetry"
)

// API is the HTTP handler for every Flint endpoint.
type API struct {
	ctl       *control.Plane
	invoke    *invoke.Service
	logs      *logs.Store
	queue     *asyncq.Queue
	account   lambda.Account
	log       *slog.Logger
	mux       *http.ServeMux
	secrets   *secrets.Service
	cwlogs    *cwlogs.Service
	kinesis   *kinesis.Service
	sqs       *sqs.Service
	signedSQS [2]http.Handler // auth's middleware for the SQS API: query protocol, JSON 1.0
	sns       *sns.Service
	signedSNS http.Handler // auth's middleware for the SNS API
	auth      *sigv4.Verifier
	signed    http.Handler // auth's middleware around route
	signedURL http.Handler // auth's middleware around AWS_IAM function URL calls
	signedRPC http.Handler // auth's middleware for the JSON 1.1 APIs: refusals carry __type, which botocore reads (not X-Amzn-ErrorType)
	devMode   func() bool
	linkKey   []byte // signs download links when there is no keyring (see linkKeys)
	keyring   *crypt.Keyring
	runtimes  *runtimes.Table
	nodes     Nodes
	console   http.Handler
	lag       func(ctx context.Context) []esm.Lag
}

// Nodes lists the cluster's nodes and drains them (cluster.Membership).
type Nodes interface {
	Status(ctx context.Context) (cluster.Listing, error)
	Drain(ctx context.Context, name string) (cluster.Node, error)
	Undrain(ctx context.Context, name string) (cluster.Node, error)
}

// Config wires an API.
type Config struct {
	// Control is the control plane, whose services the handlers call.
	Control *control.Plane
	// Invoke is the invocation service: Invoke, function URLs and InvokeAsync run through it.
	Invoke  *invoke.Service
	Logs    *logs.Store
	Metrics *telemetry.Metrics
	Queue   *asyncq.Queue
	Account lambda.Account
	Log     *slog.Logger
	Secrets *secrets.Service // the Secrets Manager API on the same endpoint; nil: none
	CWLogs  *cwlogs.Service  // the CloudWatch Logs API on the same endpoint; nil: none
	Kinesis *kinesis.Service // the Kinesis Data Streams API on the same endpoint; nil: none
	SQS     *sqs.Service     // the SQS API on the same endpoint; nil: none
	SNS     *sns.Service     // the SNS API on the same endpoint; nil: none
	// Auth verifies SigV4 signatures. DevMode, when it returns true, skips verification (local
	// development: no access keys, loopback only); nil Auth is the same as DevMode always true.
	Auth    *sigv4.Verifier
	DevMode func() bool
	Keyring *crypt.Keyring // the master keys (download links' signing keys derive from them)
	// Nodes lists the cluster's nodes (GET /flint/v1/nodes) and drains them (POST
	// /flint/v1/nodes/{node}/drain, …/undrain).
	Nodes Nodes
	// Runtimes is this node's interpreter per runtime (GET /flint/v1/runtimes, strict mode);
	// nil: runtimes.Default().
	Runtimes *runtimes.Table
	// Console serves the web console under /console/ with its own sign-in (internal/console);
	// nil: none.
	Console http.Handler
	// MappingLag reports how far behind each event source mapping this node runs is (GET
	// /flint/v1/mappings/lag); nil: none listed.
	MappingLag func(ctx context.Context) []esm.Lag
}

// IsInvoke reports whether a request with this method and escaped path is an Invoke call, the
// requests the API's plain-HTTP front door (httpfront) serves without net/http's per-request
// machinery. Whatever else a request is (a function URL's host, a signature) the API decides
// as for any other.
func IsInvoke(method, path string) bool {
	if method != http.MethodPost || len(path) <= len(invokePrefix)+len(invokeSuffix) ||
		!strings.HasPrefix(path, invokePrefix) || !strings.HasSuffix(path, invokeSuffix) {
		return false
	}
	return !strings.Contains(path[len(invokePrefix):len(path)-len(invokeSuffix)], "/")
}

// invokePrefix and invokeSuffix frame the Invoke route's {name} (TestIsInvokeIsTheInvokeRoute
// holds IsInvoke to the route).
const invokePrefix, invokeSuffix = "/2015-03-31/functions/", "/invocations"

// New builds the API and its routes.
func New(cfg Config) *API {
	a := &API{ctl: cfg.Control, invoke: cfg.Invoke, logs: cfg.Logs, queue: cfg.Queue,
		account: cfg.Account, log: cfg.Log, mux: http.NewServeMux(), secrets: cfg.Secrets, auth: cfg.Auth, devMode: cfg.DevMode, keyring: cfg.Keyring,
		linkKey: make([]byte, 32), runtimes: cfg.Runtimes, nodes: cfg.Nodes, console: cfg.Console, lag: cfg.MappingLag}
	_, _ = rand.Read(a.linkKey)
	a.cwlogs = cfg.CWLogs
	a.kinesis = cfg.Kinesis
	a.sqs = cfg.SQS
	a.sns = cfg.SNS
	if a.devMode == nil {
		a.devMode = func() bool { return false }
	}
	if a.auth != nil {
		a.signed = a.auth.Middleware(http.HandlerFunc(a.route), sigv4.MiddlewareOptions{Log: cfg.Log})
		a.signedRPC = a.auth.Middleware(http.HandlerFunc(a.route), sigv4.MiddlewareOptions{Log: cfg.Log,
			Render: func(w http.ResponseWriter, e *apierr.Error) { c := *e; c.JSON11 = true; apierr.Write(w, &c) }})
		for i, json10 := range []bool{false, true} {
			a.signedSQS[i] = a.auth.Middleware(http.HandlerFunc(a.route), sigv4.MiddlewareOptions{Log: cfg.Log, Render: sqs.Refusal(json10)})
		}
		a.signedSNS = a.auth.Middleware(http.HandlerFunc(a.route), sigv4.MiddlewareOptions{Log: cfg.Log, Render: sns.Refusal})
		a.signedURL = a.auth.Middleware(http.HandlerFunc(a.serveSignedURL),
			sigv4.MiddlewareOptions{MaxBody: lambda.MaxSyncPayload, Render: urlRefusal, Log: cfg.Log})
	}
	m := a.mux
	m.HandleFunc("POST /2015-03-31/functions/{name}/invocations", a.invokeFunction)
	m.HandleFunc("POST /2015-03-31/functions", a.handle(a.createFunction))
	m.HandleFunc("POST /2015-03-31/functions/{$}", a.handle(a.createFunction))
	m.HandleFunc("GET /2015-03-31/functions", a.handle(a.listFunctions))
	m.HandleFunc("GET /2015-03-31/functions/{$}", a.handle(a.listFunctions))
	m.HandleFunc("GET /2015-03-31/functions/{name}", a.handle(a.getFunction))
	m.HandleFunc("DELETE /2015-03-31/functions/{name}", a.handle(a.deleteFunction))
	m.HandleFunc("GET /2015-03-31/functions/{name}/configuration", a.handle(a.getFunctionConfiguration))
	m.HandleFunc("PUT /2015-03-31/functions/{name}/configuration", a.handle(a.updateFunctionConfiguration))
	m.HandleFunc("PUT /2015-03-31/functions/{name}/code", a.handle(a.updateFunctionCode))
	m.HandleFunc("POST /2015-03-31/functions/{name}/versions", a.handle(a.publishVersion))
	m.HandleFunc("GET /2015-03-31/functions/{name}/versions", a.handle(a.listVersions))
	m.HandleFunc("POST /2015-03-31/functions/{name}/aliases", a.handle(a.createAlias))
	m.HandleFunc("GET /2015-03-31/functions/{name}/aliases", a.handle(a.listAliases))
	m.HandleFunc("GET /2015-03-31/functions/{name}/aliases/{alias}", a.handle(a.getAlias))
	m.HandleFunc("PUT /2015-03-31/functions/{name}/aliases/{alias}", a.handle(a.updateAlias))
	m.HandleFunc("DELETE /2015-03-31/functions/{name}/aliases/{alias}", a.handle(a.deleteAlias))
	m.HandleFunc("PUT /2017-10-31/functions/{name}/concurrency", a.handle(a.putFunctionConcurrency))
	m.HandleFunc("DELETE /2017-10-31/functions/{name}/concurrency", a.handle(a.deleteFunctionConcurrency))
	m.HandleFunc("GET /2019-09-30/functions/{name}/concurrency", a.handle(a.getFunctionConcurrency))
	m.HandleFunc("PUT /2019-09-30/functions/{name}/provisioned-concurrency", a.handle(a.putProvisioned))
	m.HandleFunc("GET /2019-09-30/functions/{name}/provisioned-concurrency", a.handle(a.getProvisioned))
	m.HandleFunc("DELETE /2019-09-30/functions/{name}/provisioned-concurrency", a.handle(a.deleteProvisioned))
	m.HandleFunc("POST /2014-11-13/functions/{name}/invoke-async", a.handle(a.invokeAsyncLegacy))
	m.HandleFunc("POST /2014-11-13/functions/{name}/invoke-async/{$}", a.handle(a.invokeAsyncLegacy))
	m.HandleFunc("PUT /2019-09-25/functions/{name}/event-invoke-config", a.handle(a.putEventInvokeConfig))
	m.HandleFunc("POST /2019-09-25/functions/{name}/event-invoke-config", a.handle(a.updateEventInvokeConfig))
	m.HandleFunc("GET /2019-09-25/functions/{name}/event-invoke-config", a.handle(a.getEventInvokeConfig))
	m.HandleFunc("DELETE /2019-09-25/functions/{name}/event-invoke-config", a.handle(a.deleteEventInvokeConfig))
	m.HandleFunc("GET /2019-09-25/functions/{name}/event-invoke-config/list", a.handle(a.listEventInvokeConfigs))
	m.HandleFunc("GET /flint/v1/async", a.handle(a.asyncQueue))
	m.HandleFunc("GET /flint/v1/mappings/lag", a.handle(a.mappingLag))
	m.HandleFunc("GET /flint/v1/runtimes", a.handle(a.listRuntimes))
	m.HandleFunc("GET /flint/v1/views", a.handle(a.listViews))
	if cfg.Nodes != nil {
		m.HandleFunc("GET /flint/v1/nodes", a.handle(a.listNodes))
		m.HandleFunc("POST /flint/v1/nodes/{node}/drain", a.handle(a.drainNode))
		m.HandleFunc("POST /flint/v1/nodes/{node}/undrain", a.handle(a.undrainNode))
	}
	m.HandleFunc("POST /2018-10-31/layers/{layer}/versions", a.handle(a.publishLayerVersion))
	m.HandleFunc("GET /2018-10-31/layers/{layer}/versions", a.handle(a.listLayerVersions))
	m.HandleFunc("GET /2018-10-31/layers/{layer}/versions/{version}", a.handle(a.getLayerVersion))
	m.HandleFunc("DELETE /2018-10-31/layers/{layer}/versions/{version}", a.handle(a.deleteLayerVersion))
	m.HandleFunc("POST /2018-10-31/layers/{layer}/versions/{version}/policy", a.handle(a.addLayerVersionPermission))
	m.HandleFunc("GET /2018-10-31/layers/{layer}/versions/{version}/policy", a.handle(a.getLayerVersionPolicy))
	m.HandleFunc("DELETE /2018-10-31/layers/{layer}/versions/{version}/policy/{sid}", a.handle(a.removeLayerVersionPermission))
	m.HandleFunc("GET /2018-10-31/layers", a.handle(a.listLayers))
	m.HandleFunc("GET /2018-10-31/layers/{$}", a.handle(a.listLayers))
	m.HandleFunc("GET /flint/v1/layers/{layer}/versions/{version}/content", a.handle(a.layerContent))
	m.HandleFunc("POST /schedules/{schedule}", a.handle(a.createSchedule))
	m.HandleFunc("GET /schedules/{schedule}", a.handle(a.getSchedule))
	m.HandleFunc("PUT /schedules/{schedule}", a.handle(a.updateSchedule))
	m.HandleFunc("DELETE /schedules/{schedule}", a.handle(a.deleteSchedule))
	m.HandleFunc("GET /schedules", a.handle(a.listSchedules))
	m.HandleFunc("POST /2021-10-31/functions/{name}/url", a.handle(a.createFunctionURL))
	m.HandleFunc("GET /2021-10-31/functions/{name}/url", a.handle(a.getFunctionURL))
	m.HandleFunc("PUT /2021-10-31/functions/{name}/url", a.handle(a.updateFunctionURL))
	m.HandleFunc("DELETE /2021-10-31/functions/{name}/url", a.handle(a.deleteFunctionURL))
	m.HandleFunc("GET /2021-10-31/functions/{name}/urls", a.handle(a.listFunctionURLs))
	m.HandleFunc("GET /2017-03-31/tags/{arn}", a.handle(a.listTags))
	m.HandleFunc("POST /2017-03-31/tags/{arn}", a.handle(a.tagResource))
	m.HandleFunc("DELETE /2017-03-31/tags/{arn}", a.handle(a.untagResource))
	m.HandleFunc("POST /2015-03-31/functions/{name}/policy", a.handle(a.addPermission))
	m.HandleFunc("GET /2015-03-31/functions/{name}/policy", a.handle(a.getPolicy))
	m.HandleFunc("DELETE /2015-03-31/functions/{name}/policy/{sid}", a.handle(a.removePermission))
	m.HandleFunc("POST /2020-04-22/code-signing-configs", a.handle(a.createCodeSigningConfig))
	m.HandleFunc("POST /2020-04-22/code-signing-configs/{$}", a.handle(a.createCodeSigningConfig))
	m.HandleFunc("GET /2020-04-22/code-signing-configs", a.handle(a.listCodeSigningConfigs))
	m.HandleFunc("GET /2020-04-22/code-signing-configs/{$}", a.handle(a.listCodeSigningConfigs))
	m.HandleFunc("GET /2020-04-22/code-signing-configs/{arn}", a.handle(a.getCodeSigningConfig))
	m.HandleFunc("PUT /2020-04-22/code-signing-configs/{arn}", a.handle(a.updateCodeSigningConfig))
	m.HandleFunc("DELETE /2020-04-22/code-signing-configs/{arn}", a.handle(a.deleteCodeSigningConfig))
	m.HandleFunc("GET /2020-04-22/code-signing-configs/{arn}/functions", a.handle(a.listFunctionsByCodeSigningConfig))
	m.HandleFunc("PUT /2020-06-30/functions/{name}/code-signing-config", a.handle(a.putFunctionCodeSigningConfig))
	m.HandleFunc("GET /2020-06-30/functions/{name}/code-signing-config", a.handle(a.getFunctionCodeSigningConfig))
	m.HandleFunc("DELETE /2020-06-30/functions/{name}/code-signing-config", a.handle(a.deleteFunctionCodeSigningConfig))
	m.HandleFunc("PUT /2024-08-31/functions/{name}/recursion-config", a.handle(a.putFunctionRecursionConfig))
	m.HandleFunc("GET /2024-08-31/functions/{name}/recursion-config", a.handle(a.getFunctionRecursionConfig))
	m.HandleFunc("POST /2015-03-31/event-source-mappings", a.handle(a.createEventSourceMapping))
	m.HandleFunc("POST /2015-03-31/event-source-mappings/{$}", a.handle(a.createEventSourceMapping))
	m.HandleFunc("GET /2015-03-31/event-source-mappings", a.handle(a.listEventSourceMappings))
	m.HandleFunc("GET /2015-03-31/event-source-mappings/{$}", a.handle(a.listEventSourceMappings))
	m.HandleFunc("GET /2015-03-31/event-source-mappings/{uuid}", a.handle(a.getEventSourceMapping))
	m.HandleFunc("PUT /2015-03-31/event-source-mappings/{uuid}", a.handle(a.updateEventSourceMapping))
	m.HandleFunc("DELETE /2015-03-31/event-source-mappings/{uuid}", a.handle(a.deleteEventSourceMapping))
	m.HandleFunc("GET /2016-08-19/account-settings", a.handle(a.getAccountSettings))
	m.HandleFunc("GET /2016-08-19/account-settings/{$}", a.handle(a.getAccountSettings))
	m.HandleFunc("GET /flint/v1/functions/{name}/logs", a.handle(a.functionLogs))
	m.HandleFunc("GET /flint/v1/functions/{name}/code", a.handle(a.functionCode))
	m.HandleFunc("POST /flint/v1/functions/{name}/recycle", a.handle(a.recycleFunction))
	m.HandleFunc("POST /flint/v1/master-key/rotate", a.handle(a.rotateMasterKey))
	m.HandleFunc("PUT /flint/v1/apis/{name}", a.handleAPIs(a.putAPI))
	m.HandleFunc("GET /flint/v1/apis/{name}", a.handleAPIs(a.getAPI))
	m.HandleFunc("DELETE /flint/v1/apis/{name}", a.handleAPIs(a.deleteAPI))
	m.HandleFunc("GET /flint/v1/apis", a.handleAPIs(a.listAPIs))
	if cfg.Metrics != nil {
		m.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	m.HandleFunc("/", a.handle(func(w http.ResponseWriter, r *http.Request, _ string) error {
		return apierr.UnknownOperation(r.Method, r.URL.Path)
	}))
	return a
}

// controlConfig wires the control plane from the API's parts; a part that is absent stays a
// nil interface (not an interface holding a nil pointer), which the services check.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, path, ok := urlID(r); ok {
		a.serveFunctionURL(w, r, id, path)
		return
	}
	if id, rawPath, path, ok := apiTarget(r); ok {
		a.serveAPI(w, r, id, rawPath, path) // public, as API Gateway routes without an authorizer
		return
	}
	if a.console != nil && (r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/")) {
		// Browsers do not sign requests: the console checks its own sessions.
		a.console.ServeHTTP(w, r)
		return
	}
	if a.auth == nil || a.devMode() || r.URL.Path == "/metrics" || a.validLink(r) {
		a.route(w, r)
		return
	}
	// SNS topics: a SubscribeURL's GET is unsigned (its token is the credential), and SNS is
	// told from SQS (which takes unsigned form POSTs to /) before SQS is asked.
	if a.sns != nil && sns.IsConfirmURL(r) {
		a.sns.ServeHTTP(w, r)
		return
	}
	if a.sns != nil && sns.IsSNSRequest(r) {
		a.signedSNS.ServeHTTP(w, r)
		return
	}
	if secrets.IsSecretsManagerRequest(r) || cwlogs.IsLogsRequest(r) || kinesis.IsKinesisRequest(r) {
		a.signedRPC.ServeHTTP(w, r)
		return
	}
	if a.sqs != nil && sqs.IsSQSRequest(r) {
		if r.Header.Get("X-Amz-Target") != "" {
			a.signedSQS[1].ServeHTTP(w, r)
		} else {
			a.signedSQS[0].ServeHTTP(w, r)
		}
		return
	}
	a.signed.ServeHTTP(w, r)
}

// route dispatches a request whose caller is settled.
func (a *API) route(w http.ResponseWriter, r *http.Request) {
	if a.secrets != nil && secrets.IsSecretsManagerRequest(r) {
		a.secrets.ServeHTTP(w, r)
		return
	}
	if a.cwlogs != nil && cwlogs.IsLogsRequest(r) {
		a.cwlogs.ServeHTTP(w, r)
		return
	}
	if a.sns != nil && sns.IsSNSRequest(r) {
		a.sns.ServeHTTP(w, r)
		return
	}
	if a.kinesis != nil && kinesis.IsKinesisRequest(r) {
		a.kinesis.ServeHTTP(w, r)
		return
	}
	if a.sqs != nil && sqs.IsSQSRequest(r) {
		a.sqs.ServeHTTP(w, r)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// SigningService is the SigV4 signing name a request to this endpoint is scoped to.
func SigningService(r *http.Request) string {
	switch {
	case secrets.IsSecretsManagerRequest(r):
		return "secretsmanager"
	case cwlogs.IsLogsRequest(r):
		return "logs"
	case sns.IsSNSRequest(r):
		return "sns"
	case kinesis.IsKinesisRequest(r):
		return "kinesis"
	case sqs.IsSQSRequest(r):
		return "sqs"
	case strings.HasPrefix(r.URL.Path, "/schedules"):
		return "scheduler"
	}
	return "lambda"
}

// linkTTL is how long a download link (GetFunction's Code.Location) works, as S3's presigned
// URLs that Lambda returns (10 minutes).
const linkTTL = 10 * time.Minute

// link returns a download URL for path that works without credentials until linkTTL passes.
func (a *API) link(r *http.Request, path string) string {
	exp := strconv.FormatInt(time.Now().Add(linkTTL).Unix(), 10)
	return scheme(r) + r.Host + path + "?X-Flint-Expires=" + exp + "&X-Flint-Signature=" + linkSignature(a.linkKeys()[0], path, exp)
}

// linkKeys are the keys that sign download links, the signing one first: derived from the master
// keys, so that a link stays good across a restart and on every node with the same master keys,
// as an S3 presigned URL does; without a keyring, one made at start.
func (a *API) linkKeys() [][]byte {
	if a.keyring != nil {
		return a.keyring.DerivedKeys("download links")
	}
	return [][]byte{a.linkKey}
}

func linkSignature(key []byte, path, exp string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(path + "\x00" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// validLink reports whether r is a GET of a download link that has not expired.
func (a *API) validLink(r *http.Request) bool {
	// Cheap checks first: every signed request (invokes too) passes through here.
	if r.Method != http.MethodGet || r.URL.RawQuery == "" || !strings.HasPrefix(r.URL.Path, "/flint/v1/") {
		return false
	}
	q := r.URL.Query()
	exp, sig := q.Get("X-Flint-Expires"), q.Get("X-Flint-Signature")
	if exp == "" || sig == "" {
		return false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > n {
		return false
	}
	for _, key := range a.linkKeys() {
		if hmac.Equal([]byte(sig), []byte(linkSignature(key, r.URL.Path, exp))) {
			return true
		}
	}
	return false
}

// handler is a control-plane handler: it returns an error to render, or writes its response.
type handler func(w http.ResponseWriter, r *http.Request, requestID string) error

// handle adds the request id and renders errors; the one place control-plane errors are written.
func (a *API) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := uuid.NewString()
		w.Header()["X-Amzn-Requestid"] = []string{id}
		if err := h(w, r, id); err != nil {
			a.writeError(w, r, id, err)
		}
	}
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	e := apierr.As(control.AWSError(err))
	if e.Status >= 500 {
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID, "err", err)
	} else if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "code", e.Code, "message", e.Message)
	}
	apierr.Write(w, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return apierr.Service(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// writeZip returns the writer of a code package download: a package, or the error to render.
func writeZip(w http.ResponseWriter) func([]byte, error) error {
	return func(b []byte, err error) error {
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		return nil
	}
}

// decodeBody reads a JSON request body of at most limit bytes into v.
func decodeBody(r *http.Request, limit int64, op string, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return apierr.InvalidRequestContent("Could not read request body: %v", err)
	}
	if int64(len(b)) > limit {
		return apierr.RequestEntityTooLarge("Request must be smaller than %d bytes for the %s operation", limit, op)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		b = []byte("{}")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return apierr.InvalidRequestContent("Could not parse request body into json: Cannot deserialize value at '%s': expected %s", te.Field, te.Type)
		}
		return apierr.InvalidRequestContent("Could not parse request body into json: %v", err)
	}
	return nil
}

func (a *API) notFound(name, qualifier string) *apierr.Error {
	return apierr.ResourceNotFound("Function not found: %s", a.account.FunctionARN(name, qualifier))
}

// await makes a handler read its own write: it returns once the invocation service's view
// (written only by the store's watches) holds revision rev of bucket v, so that an invoke
// after the response sees the change. The write stands if the view is late; that is logged.
func (a *API) await(r *http.Request, v invoke.View, rev uint64) { a.awaitCtx(r.Context(), v, rev) }

func (a *API) awaitCtx(ctx context.Context, v invoke.View, rev uint64) {
	if err := a.invoke.Await(ctx, v, rev); err != nil {
		a.log.Warn("the in-memory view is behind a write", "bucket", v, "revision", rev, "err", err)
	}
}

// paging reads MaxItems (1–10000, pages of at most 50) and Marker.
func paging(r *http.Request) (control.Page, error) {
	q := r.URL.Query()
	maxItems := 50
	if s := q.Get("MaxItems"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return control.Page{}, apierr.Validation("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000", s)
		}
		maxItems = min(n, 50)
	}
	return control.Page{MaxItems: maxItems, Marker: q.Get("Marker")}, nil
}
